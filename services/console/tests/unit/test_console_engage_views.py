"""The Engage pages' view models: the inbox's order and deadlines, a conversation's actions,
the reply form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.events.v1 import engage_pb2, listen_pb2
from legation_console.domain.people import Person
from legation_console.domain.views import engage as views

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
OFFICER = Person("pat", "Pat", frozenset({"officer", "viewer"}), frozenset())
VIEWER = Person("vic", "Vic", frozenset({"viewer"}), frozenset())


def conversation(
    conversation_id: str,
    priority: engage_pb2.Priority.ValueType,
    due_in: timedelta | None,
    status: engage_pb2.ConversationStatus.ValueType = engage_pb2.CONVERSATION_STATUS_NEW,
    assignee: str = "",
    answered: bool = False,
) -> engager_pb.Conversation:
    state = engage_pb2.ConversationState(
        conversation_id=conversation_id,
        priority=priority,
        status=status,
        assignee=assignee,
        mentions=[listen_pb2.Mention(title=f"Q {conversation_id}?", author="maria", url="x:y")],
    )
    if due_in is not None:
        state.sla_due_at.FromDatetime(NOW + due_in)
    if answered:
        state.first_response_at.FromDatetime(NOW)
    return engager_pb.Conversation(conversation_id=conversation_id, detail=state)


def test_the_inbox_is_by_priority_then_nearest_deadline() -> None:
    found = [
        conversation("low", engage_pb2.PRIORITY_LOW, timedelta(hours=1)),
        conversation("urgent-later", engage_pb2.PRIORITY_URGENT, timedelta(hours=2)),
        conversation("urgent-overdue", engage_pb2.PRIORITY_URGENT, timedelta(hours=-2)),
        conversation(
            "mine",
            engage_pb2.PRIORITY_HIGH,
            None,
            engage_pb2.CONVERSATION_STATUS_ANSWERED,
            assignee="pat",
            answered=True,
        ),
    ]
    page = views.inbox_page(found, OFFICER, mine=False, now=NOW)
    assert [row.conversation_id for row in page.rows] == [
        "urgent-overdue",
        "urgent-later",
        "mine",
        "low",
    ]
    overdue, later, mine, low = page.rows
    assert (overdue.deadline, overdue.overdue, overdue.priority) == (
        "2.0 h overdue",
        True,
        "Urgent",
    )
    assert (later.deadline, later.overdue) == ("in 2.0 h", False)
    assert (mine.deadline, mine.mine, mine.status) == ("answered", True, "Answered")
    assert (low.priority_tag, low.assignee, low.title) == ("govuk-tag--grey", "nobody", "Q low?")
    assert page.summary == "4 conversations, 3 open"
    assert views.inbox_page(found[3:], OFFICER, True, NOW).summary.endswith("assigned to you (pat)")


def test_a_conversations_actions_follow_roles_and_state() -> None:
    saved = [
        engager_pb.SavedReply(saved_reply_id="t", title="Thanks", variants={"es": "", "en": ""})
    ]
    new = conversation("c", engage_pb2.PRIORITY_NORMAL, timedelta(hours=5))
    page = views.conversation_page(new, saved, OFFICER, NOW)
    assert page.can_assign_to_me and page.can_reply
    assert page.saved_replies == (views.SavedReplyOption("t", "Thanks", "en, es"),)
    assert page.mentions[0].url is None  # not an http(s) link
    assert not views.conversation_page(new, [], VIEWER, NOW).can_reply
    assert not views.conversation_page(new, [], VIEWER, NOW).can_assign_to_me
    taken = conversation(
        "c", engage_pb2.PRIORITY_NORMAL, None, engage_pb2.CONVERSATION_STATUS_ASSIGNED, "pat"
    )
    assert not views.conversation_page(taken, [], OFFICER, NOW).can_assign_to_me
    closed = conversation(
        "c", engage_pb2.PRIORITY_NORMAL, None, engage_pb2.CONVERSATION_STATUS_CLOSED
    )
    page = views.conversation_page(closed, [], OFFICER, NOW)
    assert not page.can_reply and not page.can_assign_to_me
    assert page.deadline == "closed"
    assert page.status_actions == (("new", "Reopen"),)
    assert views.conversation_page(new, [], OFFICER, NOW).status_actions == (
        ("waiting", "Mark as waiting"),
        ("closed", "Close"),
    )
    assert views.conversation_page(new, [], VIEWER, NOW).status_actions == ()
    assert views.status_change("closed") == engage_pb2.CONVERSATION_STATUS_CLOSED
    assert views.status_change("answered") is None


def test_the_reply_form_wants_one_of_saved_or_own() -> None:
    assert views.reply_form("", " ").error == "Choose a saved reply or write a reply"
    assert "not both" in views.reply_form("t", "hello").error
    assert views.reply_form("t", "").error == ""
    assert views.reply_form("", "hello").text == "hello"
