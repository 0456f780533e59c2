"""The partner register's domain (no I/O): who a mention's author is a contact of, and a
partner's conversation put on its timeline once."""

from __future__ import annotations

from engager_fakes import NOW, mention

from legation.events.v1 import engage_pb2
from legation_core.ids import stable_id
from legation_engager.domain import partners

Kind = engage_pb2.PartnerActivity


def ocean() -> engage_pb2.PartnerState:
    """A partner one of whose contacts speaks as ``https://social.example/@Ocean``."""
    return engage_pb2.PartnerState(
        partner_id="ocean",
        name="Ocean Alliance",
        version=3,
        stage=engage_pb2.RELATIONSHIP_STAGE_ENGAGED,
        issue_ids=["oceans", "climate"],
        contacts=[engage_pb2.PartnerContact(name="W", accounts=["https://social.example/@Ocean"])],
    )


def conversation(issue_id: str = "issue-1") -> engage_pb2.ConversationState:
    return engage_pb2.ConversationState(
        conversation_id="conv-1", campaign_id="camp-1", issue_id=issue_id
    )


def test_the_partner_is_found_by_any_of_its_contacts_accounts_whatever_the_case() -> None:
    others = engage_pb2.PartnerState(partner_id="other")
    found = partners.partner_for_accounts([others, ocean()], ["", "https://social.example/@ocean"])
    assert found is not None and found.partner_id == "ocean"
    assert partners.partner_for_accounts([others, ocean()], ["@citizen", ""]) is None


def test_a_partner_speaking_in_a_conversation_is_a_conversation_activity() -> None:
    said = mention("p1", "Agreed, we will share it", author_id="https://social.example/@ocean")
    recorded = partners.conversation_activity([ocean()], conversation(), said, NOW)
    assert recorded is not None
    partner, activity = recorded
    assert activity == partner.timeline[-1]
    assert activity.activity_id == stable_id("partner-activity", "ocean", "p1")
    assert (activity.partner_id, activity.partner_name) == ("ocean", "Ocean Alliance")
    assert activity.kind == Kind.KIND_CONVERSATION and not activity.joint
    assert activity.title == "Agreed, we will share it"
    assert activity.url == said.url
    assert activity.recorded_by == "engager"
    assert list(activity.issue_ids) == ["issue-1"]  # the conversation's, not the partner's
    assert activity.stage == engage_pb2.RELATIONSHIP_STAGE_ENGAGED
    assert activity.note == "conversation conv-1"
    assert activity.occurred_at.ToDatetime(tzinfo=NOW.tzinfo) == NOW
    assert (partner.version, partner.updated_by) == (4, "engager")
    assert partner.updated_at.ToDatetime(tzinfo=NOW.tzinfo) == NOW


def test_a_conversation_activity_has_a_short_title_and_no_issue_without_one() -> None:
    said = mention("p2", "x" * 300, title="", author="https://social.example/@OCEAN")
    recorded = partners.conversation_activity([ocean()], conversation(issue_id=""), said, NOW)
    assert recorded is not None
    _, activity = recorded
    assert activity.title == "x" * 200
    assert list(activity.issue_ids) == []


def test_a_conversation_activity_is_recorded_once_and_only_for_partners() -> None:
    said = mention("p1", author_id="https://social.example/@ocean")
    first = partners.conversation_activity([ocean()], conversation(), said, NOW)
    assert first is not None
    again = partners.conversation_activity([first[0]], conversation(), said, NOW)
    assert again is None  # a redelivered mention: already on the timeline
    assert partners.conversation_activity([ocean()], conversation(), mention("c1"), NOW) is None


def test_the_partner_given_is_left_as_it_was() -> None:
    before = ocean()
    said = mention("p1", author_id="https://social.example/@ocean")
    partners.conversation_activity([before], conversation(), said, NOW)
    assert before == ocean()
