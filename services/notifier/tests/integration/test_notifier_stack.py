"""The notifier over the local stack: the Kafka stand-in, the publisher and the notifier as
processes, a local SMTP server requiring STARTTLS (aiosmtpd), a chat server speaking Slack,
Teams and Matrix, and a signed-webhook receiver (``legation_devstack.notify_local``).

A spike alert, an approval request, an SLA breach, a reply delivery that needs a check and
an objective at risk each reach the right people, with what they need to act (what, where,
a link into the console), and the wrong people receive nothing. The approval request comes
from the publisher's API; the others are produced as the listener, engager and evaluator
produce them (their producers are unit-tested in their services), with the same codec and
the catalog's produce rights.

Then the notifier is killed (SIGKILL, by pid) while a room holds its answer, twice: on
Matrix (which deduplicates on the transaction id: resent after the restart, shown once,
delivered) and on Slack (which cannot be asked: shown once, and the message needs a
check, visible on the messages topic and the API, where a publisher confirms it): every
notification arrives exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, notify_pb2, publish_pb2
from legation.notifier.v1 import notifier_service_pb2 as notifier_pb
from legation.notifier.v1 import notifier_service_pb2_grpc as notifier_grpc
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation.publisher.v1 import publisher_service_pb2_grpc as pb_grpc
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer, read_topic
from legation_core.metrics import Metrics
from legation_devstack.notify_local import CAMPAIGN, ISSUE, MATRIX_ROOM, NotifyServers
from legation_devstack.processes import wait_until
from legation_devstack.stack import NOTIFIER, Stack

pytestmark = pytest.mark.integration

CONSOLE = "http://127.0.0.1:8080"
HOLD = 60.0  # seconds a room holds its answer; the notifier is killed long before
WAIT = 90.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Stack, NotifyServers]]:
    servers = NotifyServers(tmp_path / "notify").start()
    stack = Stack(tmp_path / "stack", extra_env=servers.env())
    try:
        stack.start_infrastructure()
        stack.start_service("publisher")
        stack.start_service(NOTIFIER)
        yield stack, servers
    finally:
        stack.stop()
        servers.stop()


def settings_of(stack: Stack) -> CoreSettings:
    assert stack.kafka is not None
    return CoreSettings(kafka_bootstrap_servers=stack.kafka.bootstrap_servers)


def produce(stack: Stack, service: str, topic: str, key: str, envelope: Envelope) -> None:
    """Produces as ``service`` does: its catalog rights, acknowledged."""
    producer = EventProducer(settings_of(stack), service, default_catalog(), Metrics())
    try:
        producer.send_and_wait([(topic, key, envelope)])
    finally:
        producer.close()


def spike(issue: str) -> Envelope:
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0)
    alert = listen_pb2.Alert(
        alert_id=str(uuid.uuid4()),
        issue_id=issue,
        count=42,
        baseline_mean=3.5,
        baseline_stddev=1.2,
        baseline_hours=12,
        threshold=7.1,
        top_terms=[listen_pb2.Alert.Count(value="production cap", count=12)],
        campaign_ids=[CAMPAIGN],
    )
    alert.window_start.FromDatetime(start)
    alert.window_end.FromDatetime(start + timedelta(hours=1))
    return make_envelope(
        alert, event_id=alert.alert_id, source_service="listener", occurred_at=now, issue_id=issue
    )


def conversation(conversation_id: str, *, breached: bool, reply_status: int = 0) -> Envelope:
    now = datetime.now(UTC)
    state = engage_pb2.ConversationState(
        conversation_id=conversation_id,
        campaign_id=CAMPAIGN,
        issue_id=ISSUE,
        status=engage_pb2.CONVERSATION_STATUS_ASSIGNED,
        assignee="officer",
        sla_breached=breached,
        version=3,
        mentions=[listen_pb2.Mention(mention_id="m-1", author="@oceans_ngo", text="When?")],
        change=engage_pb2.ConversationChange(action="breach" if breached else "deliver"),
    )
    state.change.at.FromDatetime(now)
    state.sla_due_at.FromDatetime(now - timedelta(hours=1))
    if reply_status:
        delivery = publish_pb2.Delivery(
            delivery_id=f"{conversation_id}-reply",
            channel="mastodon-main",
            status=reply_status,  # type: ignore[arg-type]
            reason="interrupted while sending; this channel cannot be asked whether it arrived",
        )
        state.replies.append(
            engage_pb2.Reply(
                reply_id=f"{conversation_id}-reply",
                officer="officer",
                text="The vote is on Friday.",
                status=engage_pb2.REPLY_STATUS_FAILED,
                delivery=delivery,
            )
        )
    return make_envelope(
        state,
        event_id=f"{conversation_id}-v3",
        source_service="engager",
        occurred_at=now,
        campaign_id=CAMPAIGN,
        issue_id=ISSUE,
    )


def at_risk() -> Envelope:
    now = datetime.now(UTC)
    change = evaluate_pb2.ObjectiveStatusChange(
        change_id=str(uuid.uuid4()),
        campaign_id=CAMPAIGN,
        campaign_name="Plastics treaty 2026",
        objective_id="fast-answers",
        description="Answer questions within four hours",
        metric="median_response_seconds",
        from_status=evaluate_pb2.ObjectiveStatus.STATUS_ON_TRACK,
        to_status=evaluate_pb2.ObjectiveStatus.STATUS_AT_RISK,
        reason="median_response_seconds is 5.08 days, target at most 4 h",
    )
    change.at.FromDatetime(now)
    return make_envelope(
        change,
        event_id=change.change_id,
        source_service="evaluator",
        occurred_at=now,
        campaign_id=CAMPAIGN,
    )


def submit_post(stack: Stack, request_id: str, title: str) -> str:
    with stack.channel("publisher", user="editor") as channel:
        stub = pb_grpc.PublisherServiceStub(channel)
        post = stub.CreatePost(
            pb.CreatePostRequest(
                request_id=request_id,
                campaign_id=CAMPAIGN,
                issue_id=ISSUE,
                content=pb.VariantContent(
                    title=title, body="We support a binding cap.", author="Press office"
                ),
            ),
            timeout=10,
        ).post
        stub.SubmitForReview(pb.ReviewRequest(post_id=post.post_id), timeout=10)
    return post.post_id


def messages(stack: Stack) -> list[notify_pb2.NotificationMessage]:
    latest: dict[str, notify_pb2.NotificationMessage] = {}
    codec = EventCodec(default_catalog())
    for envelope in read_topic(
        settings_of(stack), "notifier", codec, "legation.notify.messages.v1", timeout=30
    ):
        message = envelope.notification_message
        if message.version >= latest.get(message.message_id, message).version:
            latest[message.message_id] = message
    return list(latest.values())


def kill_while_held(stack: Stack, servers: NotifyServers, held_before: int) -> None:
    wait_until(
        lambda: len(servers.chat.held) > held_before, WAIT, "a room holding the notifier's send"
    )
    stack.kill_service(NOTIFIER)
    stack.start_service(NOTIFIER)


def test_the_right_people_hear_once_and_the_wrong_people_nothing_across_sigkills(
    stack: tuple[Stack, NotifyServers],
) -> None:
    local, servers = stack
    chat, smtp = servers.chat, servers.smtp
    assert smtp is not None
    post_id = submit_post(local, "notify-approval-1", "Why a production cap matters")
    produce(local, "listener", "legation.listen.alerts.v1", ISSUE, spike(ISSUE))
    breach = conversation("conv-breach", breached=True)
    produce(local, "engager", "legation.engage.conversations.v1", "conv-breach", breach)
    check = conversation(
        "conv-check", breached=False, reply_status=publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
    )
    produce(local, "engager", "legation.engage.conversations.v1", "conv-check", check)
    produce(local, "evaluator", "legation.evaluate.objective-status.v1", CAMPAIGN, at_risk())

    def everyone_told() -> bool:
        return (
            len(chat.in_room("slack", "analyst")) >= 1
            and len(chat.in_room("teams", "officer")) >= 2
            and len(chat.in_room("matrix", MATRIX_ROOM)) >= 1
            and len(smtp.accepted) >= 1
        )

    wait_until(everyone_told, WAIT, "every notification delivered")
    # The analyst: the spike, with its figures and a link to the issue's alerts.
    [spike_message] = chat.in_room("slack", "analyst")
    assert "Spike on plastics-treaty: 42 mentions in an hour" in spike_message.text
    assert f"{CONSOLE}/listen/alerts?issue_id={ISSUE}" in spike_message.text
    # The officer (assignee, author of the reply): the breach and the delivery to check.
    teams = sorted(chat.in_room("teams", "officer"), key=lambda m: m.text)
    assert len(teams) == 2
    assert any(
        "SLA breached" in m.text and "/engage/conversations/conv-breach" in m.text for m in teams
    )
    assert any(
        "Delivery needs a check on mastodon-main" in m.text
        and "/engage/conversations/conv-check" in m.text
        for m in teams
    )
    # The approver: the post waiting at the first step, with a link to it.
    [approval] = chat.in_room("matrix", MATRIX_ROOM)
    assert "Approval needed (policy-desk): Why a production cap matters" in approval.text
    assert f"{CONSOLE}/publish/posts/{post_id}" in approval.text
    # The campaign owner: the objective at risk, by e-mail over STARTTLS, at once (the
    # spike and the breach wait for the owner's digest).
    [mail] = smtp.accepted
    assert mail.recipients == ("campaign-owner@legation.local",)
    assert "Objective at risk: fast-answers" in str(mail.message["Subject"])
    body = mail.message.get_body(("plain",))
    assert body is not None
    assert f"{CONSOLE}/evaluate/campaigns/{CAMPAIGN}" in body.get_content()
    # Nobody else: not the editor who asked for the approval, not the publisher, the viewer
    # or the admin; and nothing twice.
    assert servers.webhook.accepted == {}
    assert {m.kind for m in chat.messages} == {"slack", "teams", "matrix"}

    # A second approval request while the Matrix room holds its answer: killed mid-send.
    chat.answer_late(HOLD, "PUT", "/_matrix/")
    second = submit_post(local, "notify-approval-2", "What the cap means for ports")
    kill_while_held(local, servers, 0)
    wait_until(
        lambda: any(
            m.person == "approver" and m.delivery.status == publish_pb2.DELIVERY_STATUS_PUBLISHED
            for m in messages(local)
            if "What the cap means" in m.subject
        ),
        WAIT,
        "the interrupted Matrix message delivered after the restart",
    )
    shown = [m for m in chat.in_room("matrix", MATRIX_ROOM) if "What the cap means" in m.text]
    assert len(shown) == 1 and f"/publish/posts/{second}" in shown[0].text

    # A spike on another issue while Slack holds its answer: Slack cannot be asked, so the
    # message is shown once and needs a check.
    chat.answer_late(HOLD, "POST", "/slack/")
    produce(local, "listener", "legation.listen.alerts.v1", "ocean-day", spike("ocean-day"))
    kill_while_held(local, servers, 1)
    wait_until(
        lambda: any(
            m.person == "analyst"
            and m.delivery.status == publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
            and "ocean-day" in m.subject
            for m in messages(local)
        ),
        WAIT,
        "the interrupted Slack message marked needs-check",
    )
    ocean = [m for m in chat.in_room("slack", "analyst") if "ocean-day" in m.text]
    assert len(ocean) == 1
    # A publisher looks in the room, finds it, and says so over the notifier's API.
    [interrupted] = [
        m for m in messages(local) if "ocean-day" in m.subject and m.channel == "slack"
    ]
    with local.channel(NOTIFIER, user="publisher") as channel:
        stub = notifier_grpc.NotifierServiceStub(channel)
        waiting = stub.ListMessages(
            notifier_pb.ListMessagesRequest(statuses=[publish_pb2.DELIVERY_STATUS_NEEDS_CHECK]),
            timeout=10,
        )
        assert [m.message_id for m in waiting.messages] == [interrupted.message_id]
        confirmed = stub.ConfirmMessage(
            notifier_pb.MessageRequest(message_id=interrupted.message_id), timeout=10
        )
    assert confirmed.message.delivery.status == publish_pb2.DELIVERY_STATUS_PUBLISHED

    # Exactly once everywhere, after two kills and restarts.
    assert len(chat.in_room("slack", "analyst")) == 2
    assert len(chat.in_room("teams", "officer")) == 2
    assert len(chat.in_room("matrix", MATRIX_ROOM)) == 2
    assert [m.recipients for m in smtp.accepted] == [("campaign-owner@legation.local",)]
    assert servers.webhook.accepted == {}
    # Each of those is also in its person's console inbox, once, across the kills too.
    final = messages(local)
    for person, own in (("analyst", "slack"), ("officer", "teams"), ("approver", "matrix")):
        told = sorted(m.subject for m in final if m.person == person and m.channel == own)
        inbox = [m for m in final if m.person == person and m.channel == "console"]
        assert sorted(m.subject for m in inbox) == told, person
        assert {m.delivery.status for m in inbox} == {publish_pb2.DELIVERY_STATUS_PUBLISHED}
    with local.channel(NOTIFIER, user="approver") as channel:
        mine = notifier_grpc.NotifierServiceStub(channel).ListMyNotifications(
            notifier_pb.ListMyNotificationsRequest(), timeout=10
        )
    assert mine.unread_count == 2 and {m.person for m in mine.notifications} == {"approver"}
