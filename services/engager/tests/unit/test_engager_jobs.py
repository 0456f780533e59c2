"""EngagerJobs against a fake channel: replies and published answers go through the
outbox once, "sending" is recorded before the channel is called, an interrupted delivery is
recovered after a restart, SLA breaches once; the first-response and resolution histograms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from engager_fakes import handle, mention
from prometheus_client import CollectorRegistry

from legation.events.v1 import engage_pb2, publish_pb2
from legation_channels.base import ChannelLimits, Delivered, Outgoing, Reconcile
from legation_core.testing import RecordingProducer
from legation_core.topic_names import ENGAGE_CONVERSATIONS_V1, ENGAGE_INTERACTIONS_V1
from legation_engager.adapters.delivery import EngagerJobs
from legation_engager.adapters.store import EngagerState
from legation_engager.domain import inbox, questions
from legation_engager.domain.inbox import conversation_id_for

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CID = conversation_id_for("m-1")


@dataclass
class FakeChannel:
    name: str = "mastodon"
    kind: str = "mastodon"
    reconcile: Reconcile = "idempotency-key"
    limits: ChannelLimits = field(
        default_factory=lambda: ChannelLimits(max_text_length=500, supports_replies=True)
    )
    posted: dict[str, Outgoing] = field(default_factory=dict)
    crash: bool = False

    def deliver(self, message: Outgoing) -> Delivered:
        newly = message.idempotency_key not in self.posted
        self.posted.setdefault(message.idempotency_key, message)
        if self.crash:
            raise SystemExit("the process dies after the platform took the message")
        return Delivered(
            f"id-{len(self.posted)}", f"https://social.example/{len(self.posted)}", NOW, newly
        )

    def find(self, idempotency_key: str) -> Delivered | None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def queue_reply(state: EngagerState) -> str:
    with state.change_conversations() as writer:
        current = writer.get(CID)
        assert current is not None
        change = inbox.add_reply(current, "r1", "ana", "Nine to five.", "", "", False, True, NOW)
        writer.put(change)
    return change.state.replies[0].reply_id


def test_a_reply_goes_out_once_even_when_the_process_dies_mid_send() -> None:
    producer = RecordingProducer("engager")
    registry = CollectorRegistry()
    state = EngagerState(producer, registry)
    handle(state, [mention("m-1", source="mastodon")])
    current = state.conversations.get(CID)
    assert current is not None
    # The rules send mastodon sources nowhere; route this conversation to the fake channel.
    routed = engage_pb2.ConversationState()
    routed.CopyFrom(current)
    routed.channel = "mastodon"
    routed.version += 1
    with state.conversations.transaction() as transaction:
        transaction.put(routed)
    reply_id = queue_reply(state)
    channel = FakeChannel(crash=True)
    clock = Clock()
    jobs = EngagerJobs(state, {"mastodon": channel}, clock=clock, registry=registry)
    with pytest.raises(SystemExit):
        jobs.deliver_replies()
    recorded = [
        e.conversation_state
        for c in producer.calls
        for t, _, e in c
        if t == ENGAGE_CONVERSATIONS_V1
    ]
    assert recorded[-1].replies[0].delivery.status == publish_pb2.DELIVERY_STATUS_SENDING

    # A restart: a fresh state rebuilt from what was written, a fresh jobs runner.
    restarted = EngagerState(producer, registry=CollectorRegistry())
    for batch in producer.calls:
        for topic, _, envelope in batch:
            if topic == ENGAGE_CONVERSATIONS_V1:
                restarted.conversations.apply(envelope)
    channel.crash = False
    clock.now = NOW + timedelta(minutes=2)
    EngagerJobs(restarted, {"mastodon": channel}, clock=clock).run_once()
    done = restarted.conversations.get(CID)
    assert done is not None
    assert done.replies[0].status == engage_pb2.REPLY_STATUS_DELIVERED
    assert done.replies[0].delivery.attempts == 2
    assert list(channel.posted) == [reply_id]  # the platform holds it once
    replied = [
        e.interaction
        for c in producer.calls
        for t, _, e in c
        if t == ENGAGE_INTERACTIONS_V1 and e.interaction.kind == engage_pb2.Interaction.KIND_REPLIED
    ]
    assert len(replied) == 1 and replied[0].channel_item_id == "id-1"


def test_sla_breach_once_and_the_histograms() -> None:
    producer = RecordingProducer("engager")
    registry = CollectorRegistry()
    state = EngagerState(producer, registry)
    handle(state, [mention("m-1"), mention("m-2")])
    clock = Clock()
    jobs = EngagerJobs(state, {}, clock=clock, registry=registry)
    clock.now = NOW + timedelta(days=2)
    jobs.run_once()
    jobs.run_once()
    breached = [
        e.interaction.conversation_id
        for c in producer.calls
        for t, _, e in c
        if t == ENGAGE_INTERACTIONS_V1
        and e.interaction.kind == engage_pb2.Interaction.KIND_BREACHED
    ]
    assert sorted(breached) == sorted([CID, conversation_id_for("m-2")])
    with state.change_conversations() as writer:
        current = writer.get(CID)
        assert current is not None
        answered = inbox.add_reply(current, "r1", "ana", "Nine.", "", "", False, False, clock.now)
        writer.put(answered)
        writer.put(inbox.set_status(answered.state, inbox.CLOSED, "", "ana", clock.now))
    count = registry.get_sample_value
    assert count("legation_engager_first_response_seconds_count", {"priority": "normal"}) == 1
    assert count("legation_engager_resolution_seconds_count", {"priority": "normal"}) == 1
    assert count("legation_engager_sla_breaches_total", {"priority": "PRIORITY_NORMAL"}) == 2


def test_an_approved_question_is_answered_on_the_answer_channel() -> None:
    producer = RecordingProducer("engager")
    state = EngagerState(producer)
    campaign = questions.create("r", "c", "i", "Ask", "", "mastodon", {"mastodon"}, "ana", NOW)
    campaign = questions.submit(campaign, "q1", "form", "Ana", "Why?", "en", NOW) or campaign
    campaign = questions.moderate(campaign, "q1", True, "", "lead", NOW)
    campaign = questions.answer(campaign, "q1", "Because.", "lead", NOW)
    with state.questions.transaction() as transaction:
        transaction.put(campaign)
    channel = FakeChannel()
    EngagerJobs(state, {"mastodon": channel}).run_once()
    done = state.questions.get(campaign.questions_id)
    assert done is not None
    assert done.questions[0].status == engage_pb2.QUESTION_STATUS_ANSWERED
    [message] = channel.posted.values()
    assert message.text == "Ana asked: Why?\n\nBecause."


def test_on_a_channel_without_replies_the_reply_links_the_post_it_answers() -> None:
    state = EngagerState(RecordingProducer("engager"))
    handle(state, [mention("m-1")])
    current = state.conversations.get(CID)
    assert current is not None
    routed = engage_pb2.ConversationState()
    routed.CopyFrom(current)
    routed.channel = "partners"
    routed.version += 1
    with state.conversations.transaction() as transaction:
        transaction.put(routed)
    with state.change_conversations() as writer:
        writer.put(inbox.add_reply(routed, "r1", "ana", "Nine.", "", "", False, False, NOW))
    hook = FakeChannel(name="partners", kind="webhook", limits=ChannelLimits())
    EngagerJobs(state, {"partners": hook}).run_once()
    [message] = hook.posted.values()
    assert (message.in_reply_to, message.link) == ("", "https://social.example/posts/m-1")
