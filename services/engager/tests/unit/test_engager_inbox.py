"""The inbox domain and the mention handler: which mentions open a conversation, threading,
de-duplication, triage, assignment, status transitions, replies, approval, SLA breach."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from engager_fakes import NOW, RULES, handle, incoming, mention

from legation.events.v1 import engage_pb2, listen_pb2
from legation_channels import outbox
from legation_core.consumer import transient
from legation_core.state import StoreUnavailable
from legation_core.testing import RecordingProducer
from legation_core.topic_names import ENGAGE_CONVERSATIONS_V1, ENGAGE_INTERACTIONS_V1
from legation_engager.adapters.events import MentionHandler
from legation_engager.adapters.store import EngagerState
from legation_engager.domain import inbox
from legation_engager.domain.inbox import asks_question, conversation_id_for
from legation_engager.domain.rules import RulesError, parse_rules, render_saved_reply

Kind = engage_pb2.Interaction


def interactions(producer: RecordingProducer) -> list[engage_pb2.Interaction]:
    return [e.interaction for c in producer.calls for t, _, e in c if t == ENGAGE_INTERACTIONS_V1]


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer("engager")


@pytest.fixture
def state(producer: RecordingProducer) -> EngagerState:
    return EngagerState(producer)


@pytest.mark.parametrize(
    "text",
    [
        "When does the consulate open on Saturdays?",
        "How do I renew my passport",
        "Is the embassy closed today. Thanks",
        "Great event!\nwhere can I find the slides",
        "Pourquoi le consulat est-il fermé",
        "Est-ce que le visa est gratuit",
        "Qu\u2019est-ce que le programme Erasmus",
        "¿Dónde está la embajada?",
        "¿Dónde está la embajada",
        "Cuándo abre el consulado",
        "هل السفارة مفتوحة اليوم؟",
        "大使馆周六开门吗\uff1f",  # full-width question mark
    ],
)
def test_questions_in_several_languages_are_recognised(text: str) -> None:
    assert asks_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "The embassy opens at nine.",
        "This is how we celebrate national day.",
        "We explained why the office moved!",
        "Le consulat est fermé aujourd'hui.",
        "La embajada abre a las nueve.",
        "السفارة مفتوحة اليوم.",
        "大使馆今天开门。",
        "",
    ],
)
def test_statements_are_not_questions(text: str) -> None:
    assert not asks_question(text)


def test_a_question_opens_one_conversation_whatever_the_redeliveries(
    state: EngagerState, producer: RecordingProducer
) -> None:
    handle(state, [mention()])
    handle(state, [mention()])  # redelivered after a crash before the commit
    [conversation] = state.conversations.all()
    assert conversation.conversation_id == conversation_id_for("m-1")
    assert conversation.status == inbox.NEW
    assert conversation.rules == ["question"]
    assert conversation.version == 1
    assert [i.kind for i in interactions(producer)] == [Kind.KIND_OPENED]
    # One change written once: its event, then its conversation (the redelivery wrote nothing).
    assert [[t for t, _, _ in call] for call in producer.calls] == [
        [ENGAGE_INTERACTIONS_V1],
        [ENGAGE_CONVERSATIONS_V1],
    ]


def test_a_statement_opens_nothing_unless_a_rule_says_so(state: EngagerState) -> None:
    handle(
        state,
        [
            mention("plain", "The embassy opens at nine."),
            mention("ours", "Read this", mentioned_accounts=["@Embassy"]),
            mention("link", "Read this", in_reply_to="https://ministry.example/news/1"),
            mention("vip", "A statement.", influence=0.9),
            mention(
                "angry",
                "This is a disgrace.",
                sentiment=listen_pb2.Label(value="negative", score=-0.8),
            ),
        ],
    )
    reasons = {c.mentions[0].mention_id: list(c.rules) for c in state.conversations.all()}
    assert reasons == {
        "ours": ["ours"],
        "link": ["ours"],
        "vip": ["influence"],
        "angry": ["negative-turn"],
    }


def test_replies_join_their_conversation_and_duplicates_are_dropped(
    state: EngagerState, producer: RecordingProducer
) -> None:
    handle(
        state,
        [
            mention("root"),
            # Same batch: a reply by in_reply_to, then a statement deeper in the thread.
            mention(
                "r1", "Thanks, and on Sundays?", in_reply_to="item-root", thread_id="item-root"
            ),
            mention("r2", "Ok.", in_reply_to="item-r1", thread_id="item-root"),
            mention("copy", "When does the consulate open?", duplicate_of="root"),
        ],
    )
    handle(state, [mention("r3", "Anyone?", thread_id="item-root")])
    [conversation] = state.conversations.all()
    assert [m.mention_id for m in conversation.mentions] == ["root", "r1", "r2", "r3"]
    assert [i.kind for i in interactions(producer)] == [Kind.KIND_OPENED] + [Kind.KIND_JOINED] * 3


def test_a_reply_to_an_answered_conversation_brings_it_back(state: EngagerState) -> None:
    handle(state, [mention("root", language="fr")])
    [conversation] = state.conversations.all()
    assert (conversation.assignee, conversation.status) == ("claire", inbox.ASSIGNED)
    with state.change_conversations() as writer:
        current = writer.get(conversation.conversation_id)
        assert current is not None
        writer.put(
            inbox.add_reply(current, "q1", "claire", "Nine to five.", "", "", False, False, NOW)
        )
    assert state.conversations.all()[0].status == inbox.ANSWERED
    handle(state, [mention("again", "And Saturdays?", in_reply_to="item-root")])
    assert state.conversations.all()[0].status == inbox.ASSIGNED


def test_triage_ranks_influence_urgency_negativity_stance_and_questions() -> None:
    calm = mention("calm", "When does the consulate open?")
    hot = mention(
        "hot",
        "URGENT: why is the border closed?",
        influence=0.9,
        stance=listen_pb2.Label(value="against"),
        sentiment=listen_pb2.Label(value="negative", score=-0.7),
    )
    low = inbox.priority_score(calm, ["question"], RULES)
    high = inbox.priority_score(hot, ["question", "influence"], RULES)
    assert low == 15.0
    assert high == pytest.approx(35 * 0.9 + 20 + 20 * 0.7 + 10 + 15)
    assert RULES.level(low) == engage_pb2.PRIORITY_NORMAL
    assert RULES.level(high) == engage_pb2.PRIORITY_URGENT
    change = inbox.open_conversation(hot, "c", "i", ["question", "influence"], RULES, NOW)
    assert change.state.priority == engage_pb2.PRIORITY_URGENT
    assert list(change.state.labels) == ["hostile", "press"]
    assert (change.state.assignee, change.state.team) == ("", "duty-desk")
    assert change.state.sla_due_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=600)
    assert [i.kind for i in change.interactions] == [Kind.KIND_OPENED, Kind.KIND_ASSIGNED]


def opened(**fields: Any) -> engage_pb2.ConversationState:
    return inbox.open_conversation(mention(**fields), "c", "i", ["question"], RULES, NOW).state


def test_status_transitions_follow_the_table() -> None:
    state = opened()
    waiting = inbox.set_status(state, inbox.WAITING, "asked the visa desk", "ana", NOW).state
    assert waiting.status == inbox.WAITING
    closed = inbox.set_status(waiting, inbox.CLOSED, "", "ana", NOW)
    assert closed.state.status == inbox.CLOSED
    assert closed.interactions[0].kind == Kind.KIND_CLOSED
    with pytest.raises(inbox.InvalidStatusChange, match="only from new, assigned, answered"):
        inbox.set_status(closed.state, inbox.WAITING, "", "ana", NOW)
    with pytest.raises(inbox.ConversationError, match="status: expected"):
        inbox.set_status(state, inbox.ANSWERED, "", "ana", NOW)
    with pytest.raises(inbox.InvalidStatusChange, match="reopen it before assigning"):
        inbox.assign(closed.state, "ana", "", "ana", NOW)
    reopened = inbox.set_status(closed.state, inbox.NEW, "", "ana", NOW).state
    assert reopened.status == inbox.NEW
    assigned = inbox.assign(reopened, "ana", "", "lead", NOW).state
    assert assigned.status == inbox.ASSIGNED


def test_a_reply_on_a_channel_is_delivered_through_the_outbox() -> None:
    state = opened()
    state.channel = "mastodon"
    queued = inbox.add_reply(state, "q1", "ana", "Nine.", "", "", False, True, NOW)
    [reply] = queued.state.replies
    assert reply.status == engage_pb2.REPLY_STATUS_SENDING
    assert reply.in_reply_to == "item-m-1"
    assert queued.interactions == []  # nothing is "replied" before it is on the channel
    assert [r.reply_id for r in inbox.deliveries_due(queued.state)] == [reply.reply_id]
    delivered = outbox.Delivery(
        reply.reply_id, "mastodon", "delivered", 1, channel_item_id="42", url="https://x/42"
    )
    done = inbox.record_delivery(
        queued.state, reply.reply_id, delivered, NOW + timedelta(minutes=1)
    )
    assert done.state.status == inbox.ANSWERED
    [replied] = done.interactions
    assert (replied.kind, replied.channel_item_id) == (Kind.KIND_REPLIED, "42")
    assert replied.response_seconds == 360.0
    assert inbox.deliveries_due(done.state) == []


def test_a_sensitive_reply_waits_for_a_second_person() -> None:
    state = opened()
    draft = inbox.add_reply(state, "q1", "ana", "Nine.", "", "", True, False, NOW).state
    [reply] = draft.replies
    assert reply.status == engage_pb2.REPLY_STATUS_AWAITING_APPROVAL
    with pytest.raises(inbox.ConversationError, match="officer who wrote it"):
        inbox.review_reply(draft, reply.reply_id, True, "ana", "", NOW)
    with pytest.raises(inbox.ConversationError, match="comment: is required"):
        inbox.review_reply(draft, reply.reply_id, False, "amina", "", NOW)
    approved = inbox.review_reply(draft, reply.reply_id, True, "amina", "", NOW)
    assert approved.state.replies[0].status == engage_pb2.REPLY_STATUS_RECORDED
    assert approved.interactions[0].kind == Kind.KIND_REPLIED


def test_an_sla_breach_is_raised_once_and_not_after_an_answer() -> None:
    state = opened()
    assert inbox.breach(state, NOW) is None
    late = NOW + timedelta(days=2)
    breached = inbox.breach(state, late)
    assert breached is not None
    assert breached.interactions[0].kind == Kind.KIND_BREACHED
    assert inbox.breach(breached.state, late) is None
    answered = inbox.add_reply(state, "q1", "ana", "Nine.", "", "", False, False, NOW).state
    assert inbox.breach(answered, late) is None


def test_saved_replies_fill_variables_and_pick_the_language() -> None:
    saved = RULES.saved_replies["visa-info"]
    assert saved.variables == ["author", "link", "officer"]
    values = {"author": "Ana", "officer": "Claire", "link": "https://visa.example"}
    assert render_saved_reply(saved, "", ["fr", "en"], values) == (
        "fr",
        "Bonjour Ana, les visas sont sur https://visa.example. Claire",
    )
    assert render_saved_reply(saved, "", ["de"], values)[0] == "en"
    with pytest.raises(ValueError, match=r"variables\.link: is required"):
        render_saved_reply(saved, "en", [], {"author": "a", "officer": "b"})
    with pytest.raises(ValueError, match="language: saved reply 'visa-info' has no 'de'"):
        render_saved_reply(saved, "de", [], values)


def test_bad_rules_name_every_field() -> None:
    with pytest.raises(RulesError) as error:
        parse_rules(
            {
                "open": {"min_influence": 3},
                "sla": {"high": -1, "soon": 5},
                "labels": [{"label": "Bad Label"}],
                "assignment": [{"when": {"colour": "red"}, "officer": "x"}],
                "extra": 1,
            }
        )
    problems = error.value.problems
    assert "open.min_influence: expected a number in [0, 1]" in problems
    assert "sla.high: expected seconds > 0" in problems
    assert any(p.startswith("sla.soon:") for p in problems)
    assert any(p.startswith("labels[0].label:") for p in problems)
    assert any(p.startswith("assignment[0].when.colour: is not a condition") for p in problems)
    assert any(p.startswith("extra: is not a section") for p in problems)


def test_a_reply_seen_before_its_thread_opened_joins_when_it_opens(state: EngagerState) -> None:
    # Mentions are keyed by their own id, so a thread spreads over partitions.
    handler = MentionHandler(state, RULES, clock=lambda: NOW)
    handler([incoming(mention("late-r2", "Right.", in_reply_to="item-late-r1"))])
    handler([incoming(mention("late-r1", "Indeed.", in_reply_to="item-late"))])
    handler([incoming(mention("late"))])
    [conversation] = state.conversations.all()
    assert [m.mention_id for m in conversation.mentions] == ["late", "late-r1", "late-r2"]


def test_a_thread_that_heats_up_raises_the_priority_and_brings_the_deadline_forward() -> None:
    state = opened()
    assert state.priority == engage_pb2.PRIORITY_NORMAL
    hot = mention(
        "hot",
        "URGENT: this is a scandal",
        influence=1.0,
        stance=listen_pb2.Label(value="against"),
        sentiment=listen_pb2.Label(value="negative", score=-0.9),
    )
    joined = inbox.join(state, hot, NOW + timedelta(minutes=1), RULES).state
    assert joined.priority == engage_pb2.PRIORITY_URGENT
    assert joined.sla_due_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=600)
    calm = inbox.join(joined, mention("calm", "ok"), NOW, RULES).state
    assert calm.priority == engage_pb2.PRIORITY_URGENT  # never lowered by a calmer reply


def test_a_person_settles_a_delivery_with_the_outbox_transitions() -> None:
    state = opened()
    state.channel = "telegram"
    queued = inbox.add_reply(state, "q1", "ana", "Nine.", "", "", False, True, NOW).state
    reply_id = queued.replies[0].reply_id
    unsure = outbox.Delivery(reply_id, "telegram", "needs-check", 1, reason="interrupted")
    checking = inbox.record_delivery(queued, reply_id, unsure, NOW).state
    assert checking.replies[0].status == engage_pb2.REPLY_STATUS_FAILED
    retried = inbox.resolve_delivery(checking, reply_id, "retry", "lead", "not there", NOW)
    assert retried.state.replies[0].status == engage_pb2.REPLY_STATUS_SENDING
    assert inbox.deliveries_due(retried.state)
    confirmed = inbox.resolve_delivery(
        checking, reply_id, "confirm", "lead", "", NOW, channel_item_id="7", url="https://t.me/x/7"
    )
    assert confirmed.state.replies[0].status == engage_pb2.REPLY_STATUS_DELIVERED
    assert confirmed.interactions[0].kind == Kind.KIND_REPLIED
    with pytest.raises(inbox.InvalidStatusChange, match="it is delivered"):
        inbox.resolve_delivery(confirmed.state, reply_id, "retry", "lead", "", NOW)
    recorded = inbox.add_reply(opened(), "q2", "ana", "Nine.", "", "", False, False, NOW).state
    with pytest.raises(inbox.InvalidStatusChange, match="no channel delivery"):
        inbox.resolve_delivery(recorded, recorded.replies[0].reply_id, "cancel", "lead", "", NOW)


def test_a_negative_turn_is_measured_against_the_issue_baseline() -> None:
    rules = parse_rules({"open": {"questions": False, "negative_turn": -0.5, "negative_drop": 0.4}})
    baseline = inbox.SentimentBaseline(weight=0.5, min_count=2)
    sour = mention("sour", "Bad.", sentiment=listen_pb2.Label(value="negative", score=-0.7))
    assert inbox.open_reasons(sour, rules, baseline.mean("i")) == ["negative-turn"]  # no baseline
    for score in (-0.6, -0.6, -0.6):
        baseline.observe("i", mention(sentiment=listen_pb2.Label(value="negative", score=score)))
    assert inbox.open_reasons(sour, rules, baseline.mean("i")) == []  # always this negative
    for score in (0.5, 0.5, 0.5):
        baseline.observe("i", mention(sentiment=listen_pb2.Label(value="positive", score=score)))
    assert inbox.open_reasons(sour, rules, baseline.mean("i")) == ["negative-turn"]


def test_a_partner_speaking_in_a_conversation_goes_on_its_timeline(
    state: EngagerState, producer: RecordingProducer
) -> None:
    partner = engage_pb2.PartnerState(
        partner_id="ocean",
        name="Ocean Alliance",
        version=1,
        contacts=[engage_pb2.PartnerContact(name="W", accounts=["https://social.example/@ocean"])],
    )
    with state.partners.transaction() as transaction:
        transaction.put(partner)
    handle(
        state,
        [
            mention("root"),
            mention(
                "p1", "Agreed?", author_id="https://social.example/@ocean", in_reply_to="item-root"
            ),
        ],
    )
    handle(
        state,
        [
            mention(
                "p1", "Agreed?", author_id="https://social.example/@ocean", in_reply_to="item-root"
            )
        ],
    )
    timeline = state.partners.get("ocean")
    assert timeline is not None
    assert [a.kind for a in timeline.timeline] == [engage_pb2.PartnerActivity.KIND_CONVERSATION]
    activities = [
        e for c in producer.calls for t, _, e in c if t == "legation.engage.partner-activities.v1"
    ]
    assert [e.campaign_id for e in activities] == ["camp-1"]


def test_a_broker_failure_is_transient_and_changes_nothing(
    state: EngagerState, producer: RecordingProducer
) -> None:
    producer.failing = RuntimeError("broker down")
    with pytest.raises(StoreUnavailable) as error:
        handle(state, [mention()])
    assert transient(error.value)  # the consume loop pauses and retries the batch
    assert state.conversations.all() == []
    producer.failing = None
    handle(state, [mention()])
    assert len(state.conversations.all()) == 1


def test_a_team_rule_spreads_conversations_over_its_least_loaded_officers(
    producer: RecordingProducer,
) -> None:
    rules = parse_rules(
        {"assignment": [{"when": {"question": True}, "officers": ["ana", "ben"], "team": "desk"}]}
    )
    state = EngagerState(producer)
    handler = MentionHandler(state, rules, clock=lambda: NOW)
    handler([incoming(mention(f"q{n}", "Why?"), n) for n in range(3)])
    handler([incoming(mention("q3", "How?"))])
    by_officer = sorted(c.assignee for c in state.conversations.all())
    assert by_officer == ["ana", "ana", "ben", "ben"]
    with pytest.raises(RulesError, match="officer or officers, not both"):
        parse_rules({"assignment": [{"officer": "a", "officers": ["b"]}]})


def test_a_mention_without_id_is_rejected_alone(state: EngagerState) -> None:
    bad = incoming(listen_pb2.Mention(text="Why?", hashtags=["ask"]), 0)
    good = incoming(mention("ok"), 1)
    result = MentionHandler(state, RULES, clock=lambda: NOW)([bad, good])
    assert [(r.incoming.offset, r.reason) for r in result.rejected] == [
        (0, "mention has no mention_id")
    ]
    assert len(state.conversations.all()) == 1


def test_a_person_can_override_the_priority_and_the_deadline_follows() -> None:
    state = opened()
    urgent = inbox.prioritize(state, engage_pb2.PRIORITY_URGENT, RULES, "lead", "minister", NOW)
    assert urgent.state.priority == engage_pb2.PRIORITY_URGENT
    assert urgent.state.sla_due_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=600)
    with pytest.raises(inbox.ConversationError, match="priority: is required"):
        inbox.prioritize(state, engage_pb2.PRIORITY_UNSPECIFIED, RULES, "lead", "", NOW)


def test_a_reply_waiting_for_approval_opens_one_request_and_its_decision_closes_it() -> None:
    from legation.events.v1 import publish_pb2
    from legation_engager.domain.approvals import reply_approval_changes

    state = opened()
    draft = inbox.add_reply(state, "q1", "ana", "Nine.", "", "", True, False, NOW).state
    [request] = reply_approval_changes(state, draft, "approver")
    assert (request.state, request.role, request.requested_by, request.subject) == (
        publish_pb2.APPROVAL_STATE_AWAITING,
        "approver",
        "ana",
        "reply",
    )
    assert request.item_id == draft.replies[0].reply_id
    assert reply_approval_changes(draft, draft, "approver") == []  # nothing changed
    approved = inbox.review_reply(draft, draft.replies[0].reply_id, True, "amina", "", NOW).state
    [decision] = reply_approval_changes(draft, approved, "approver")
    assert (decision.state, decision.decided_by) == (publish_pb2.APPROVAL_STATE_APPROVED, "amina")
    refused = inbox.review_reply(draft, draft.replies[0].reply_id, False, "amina", "No.", NOW)
    [rejection] = reply_approval_changes(draft, refused.state, "approver")
    assert rejection.state == publish_pb2.APPROVAL_STATE_REJECTED


def test_the_conversation_write_that_makes_a_reply_wait_carries_its_approval_request() -> None:
    from legation.events.v1 import publish_pb2
    from legation_core.topic_names import ENGAGE_APPROVALS_V1

    producer = RecordingProducer("engager")
    state = EngagerState(producer, approval_role="press-approver")
    conversation = opened()
    with state.change_conversations() as writer:
        writer.put(inbox.Change(conversation))
    with state.change_conversations() as writer:
        current = writer.get(conversation.conversation_id)
        assert current is not None
        writer.put(inbox.add_reply(current, "q1", "ana", "Nine.", "", "", True, False, NOW))
    written = [e for call in producer.calls for t, _k, e in call if t == ENGAGE_APPROVALS_V1]
    [request] = [e.approval_request for e in written]
    assert (request.state, request.role, request.requested_by) == (
        publish_pb2.APPROVAL_STATE_AWAITING,
        "press-approver",
        "ana",
    )
