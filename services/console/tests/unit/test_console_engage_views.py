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


APPROVER = Person("april", "April", frozenset({"approver", "viewer"}), frozenset())


def test_the_inbox_filters_source_and_language_and_says_so() -> None:
    spanish = conversation("es", engage_pb2.PRIORITY_HIGH, timedelta(hours=1))
    spanish.detail.mentions[0].language = "es"
    spanish.detail.mentions[0].source = "mastodon"
    english = conversation("en", engage_pb2.PRIORITY_HIGH, timedelta(hours=1))
    english.detail.mentions[0].language = "en"
    english.detail.mentions[0].source = "rss"
    filters = views.inbox_filters(
        {"status": "bogus", "source": "mastodon", "language": "ES", "label": "press"}
    )
    assert filters.status == ""
    assert filters.query == "source=mastodon&language=es&label=press"
    page = views.inbox_page([spanish, english], OFFICER, mine=False, now=NOW, filters=filters)
    assert [row.conversation_id for row in page.rows] == ["es"]
    assert page.summary == (
        "1 conversation, 1 open, filtered by source mastodon; language es; label press"
    )
    assert views.inbox_filters({"status": "closed"}).status_value == (
        engage_pb2.CONVERSATION_STATUS_CLOSED
    )


def test_a_conversation_offers_labels_priority_and_languages_to_an_officer_only() -> None:
    found = conversation("c1", engage_pb2.PRIORITY_NORMAL, timedelta(hours=1))
    found.detail.labels.extend(["press", "hostile"])
    saved = [
        engager_pb.SavedReply(saved_reply_id="t", title="Thanks", variants={"es": "x", "en": "y"})
    ]
    page = views.conversation_page(found, saved, OFFICER, NOW)
    assert page.label_list == ("press", "hostile")
    assert page.can_label and page.can_assign
    assert page.priority_key == "normal"
    assert [name for _, name in page.priorities] == ["Urgent", "High", "Normal", "Low"]
    assert page.reply_languages == ("en", "es")
    viewer = views.conversation_page(found, [], VIEWER, NOW)
    assert not viewer.can_label and not viewer.can_assign and viewer.priorities == ()
    assert views.labels_of(" press, ,hostile,press ") == ("press", "hostile")
    assert views.priority_choice("urgent") == engage_pb2.PRIORITY_URGENT
    assert views.priority_choice("panic") is None
    assert views.reply_form("t", "", " ES ").language == "es"


def test_replies_awaiting_approval_are_reviewable_by_an_approver_not_their_author() -> None:
    found = conversation("c1", engage_pb2.PRIORITY_HIGH, timedelta(hours=1))
    found.detail.replies.extend(
        [
            engage_pb2.Reply(
                reply_id="r1",
                officer="pat",
                text="<b>Our</b> answer",
                status=engage_pb2.REPLY_STATUS_AWAITING_APPROVAL,
            ),
            engage_pb2.Reply(reply_id="r0", status=engage_pb2.REPLY_STATUS_DELIVERED),
        ]
    )
    page = views.approvals_page([found], APPROVER)
    assert page.summary == "1 reply awaiting approval"
    [pending] = page.replies
    assert (pending.reply_id, pending.text, pending.can_review) == ("r1", "<b>Our</b> answer", True)
    assert pending.conversation_title == "Q c1?"
    assert not views.approvals_page([found], OFFICER).replies[0].can_review
    assert views.review_decision("approve", "") == (True, "")
    assert views.review_decision("reject", " ") == (False, "Say why the reply is rejected")
    assert views.review_decision("reject", "tone") == (False, "")
    assert views.review_decision("maybe", "")[0] is None


def test_a_questions_campaign_lists_pending_first_with_the_officers_actions() -> None:
    campaign = engage_pb2.QuestionsCampaign(
        questions_id="qa-1",
        title="Ask the ambassador",
        hashtag="AskAmb",
        open=True,
        questions=[
            engage_pb2.Question(
                question_id="q2", text="Answered?", status=engage_pb2.QUESTION_STATUS_APPROVED
            ),
            engage_pb2.Question(
                question_id="q1", text="When?", status=engage_pb2.QUESTION_STATUS_PENDING
            ),
        ],
    )
    response = engager_pb.QuestionsCampaignResponse(questions_campaign=campaign)
    page = views.questions_campaign_page(response, OFFICER)
    assert page.hashtag == "#AskAmb"
    assert page.summary == "2 questions, 1 awaiting moderation"
    assert [(q.question_id, q.status, q.can_moderate, q.can_answer) for q in page.questions] == [
        ("q1", "Awaiting moderation", True, False),
        ("q2", "Accepted", False, True),
    ]
    viewer = views.questions_campaign_page(response, VIEWER)
    assert not any(q.can_moderate or q.can_answer for q in viewer.questions)
    form = views.questions_campaign_form(" Ask ", "", "#AskAmb", "")
    assert form.hashtag == "AskAmb"
    assert set(form.errors) == {"issue_id"}


def test_the_partner_register_and_a_partners_timeline_newest_first() -> None:
    partner = engage_pb2.PartnerState(
        partner_id="ocean-ngo",
        name="Ocean NGO",
        kind=engage_pb2.PARTNER_KIND_NGO,
        countries=["ES"],
        stage=engage_pb2.RELATIONSHIP_STAGE_CONTACTED,
        timeline=[
            engage_pb2.PartnerActivity(kind=engage_pb2.PartnerActivity.KIND_MEETING, title="First"),
            engage_pb2.PartnerActivity(
                kind=engage_pb2.PartnerActivity.KIND_CO_PUBLICATION,
                title="Op-ed",
                joint=True,
                url="javascript:alert(1)",
            ),
        ],
    )
    register = views.partners_page([partner], OFFICER)
    assert register.summary == "1 partner"
    assert register.rows[0].activities == "2 activities"
    assert register.rows[0].stage == "Contacted"
    assert register.can_register and not views.partners_page([], VIEWER).can_register
    page = views.partner_page(partner, OFFICER)
    assert [(a.kind, a.title, a.joint, a.url) for a in page.timeline] == [
        ("Co-publication", "Op-ed", True, None),
        ("Meeting", "First", False, None),
    ]
    assert not views.partner_page(partner, VIEWER).can_record
    changed = views.restage(partner, str(engage_pb2.RELATIONSHIP_STAGE_ENGAGED))
    assert changed is not None and changed.stage == engage_pb2.RELATIONSHIP_STAGE_ENGAGED
    assert list(changed.countries) == ["ES"] and changed.name == "Ocean NGO"
    assert views.restage(partner, "99") is None


def test_the_partner_and_activity_forms() -> None:
    form = views.partner_form(
        {
            "name": "Blue Seas Trust",
            "kind": "1",
            "stage": "2",
            "countries": "es, ke",
            "languages": "ES",
        }
    )
    assert form.errors == {}
    assert form.request.partner_id == "blue-seas-trust"
    assert list(form.request.countries) == ["ES", "KE"]
    assert list(form.request.languages) == ["es"]
    assert set(views.partner_form({"kind": "x"}).errors) == {"name", "kind", "stage"}
    assert views.activity_form("1", "Lunch", "", "").error == ""
    assert views.activity_form("6", "Lunch", "", "").error == "Choose what kind of activity it was"
    assert views.activity_form("1", "", "", "").error == "Enter what happened"
    assert views.activity_form("1", "Lunch", "ftp://x", "").error.startswith("Enter a link")
