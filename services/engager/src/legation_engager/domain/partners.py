"""The partner register: organisations and online groups, their contacts and relationship
stage, and the timeline of everything we did together, a partner's accounts speaking in our
conversations included. No I/O.

Every timeline entry is also a PartnerActivity event for the evaluator; co-publications,
endorsements and events are *joint* activities, which it counts as partnership output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from legation.engager.v1 import engager_service_pb2 as pb
from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.calls import InvalidArgument
from legation_core.ids import stable_id

PartnerState = engage_pb2.PartnerState
PartnerActivity = engage_pb2.PartnerActivity

JOINT = frozenset(
    {
        PartnerActivity.KIND_CO_PUBLICATION,
        PartnerActivity.KIND_ENDORSEMENT,
        PartnerActivity.KIND_EVENT,
    }
)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# Who recorded the activities the engager itself puts on a timeline.
RECORDED_BY_ENGAGER = "engager"


class PartnerError(InvalidArgument):
    """A request the register cannot take; the message names the field."""


def _check(request: pb.RegisterPartnerRequest) -> None:
    problems = []
    if not _ID.match(request.partner_id):
        problems.append("partner_id: expected lower-case letters, digits and -")
    if not request.name.strip():
        problems.append("name: is required")
    if request.kind == engage_pb2.PARTNER_KIND_UNSPECIFIED:
        problems.append("kind: is required")
    bad = [c for c in request.countries if not _COUNTRY.match(c)]
    if bad:
        problems.append(f"countries: {', '.join(bad)} are not ISO 3166 alpha-2 codes")
    for position, contact in enumerate(request.contacts):
        if not contact.name.strip():
            problems.append(f"contacts[{position}].name: is required")
        if contact.email and "@" not in contact.email:
            problems.append(f"contacts[{position}].email: {contact.email!r} is not an address")
    if problems:
        raise PartnerError("; ".join(problems))


def _activity(
    partner: PartnerState,
    activity_id: str,
    kind: PartnerActivity.Kind.ValueType,
    title: str,
    user: str,
    when: datetime,
) -> PartnerActivity:
    activity = PartnerActivity(
        activity_id=activity_id,
        partner_id=partner.partner_id,
        partner_name=partner.name,
        kind=kind,
        title=title,
        recorded_by=user,
        issue_ids=partner.issue_ids,
        joint=kind in JOINT,
        stage=partner.stage,
    )
    activity.occurred_at.FromDatetime(when)
    return activity


def _on_timeline(partner: PartnerState, activity_id: str) -> bool:
    return any(entry.activity_id == activity_id for entry in partner.timeline)


def _with_activity(
    current: PartnerState, activity: PartnerActivity, user: str, now: datetime
) -> PartnerState:
    """A copy of ``current`` with ``activity`` on its timeline, as the next version."""
    partner = PartnerState()
    partner.CopyFrom(current)
    partner.timeline.append(activity)
    _touch(partner, user, now)
    return partner


def _touch(partner: PartnerState, user: str, now: datetime) -> None:
    partner.version += 1
    partner.updated_by = user
    partner.updated_at.FromDatetime(now)


def register(
    current: PartnerState | None, request: pb.RegisterPartnerRequest, user: str, now: datetime
) -> tuple[PartnerState, list[PartnerActivity]]:
    """Creates or updates a partner; a stage change goes on the timeline."""
    _check(request)
    partner = PartnerState()
    if current is not None:
        partner.CopyFrom(current)
    partner.partner_id = request.partner_id
    partner.name = request.name
    partner.kind = request.kind
    for name in ("countries", "languages", "issue_ids", "contacts"):
        partner.ClearField(name)
    partner.countries.extend(request.countries)
    partner.languages.extend(request.languages)
    partner.issue_ids.extend(request.issue_ids)
    partner.contacts.extend(request.contacts)
    stage = request.stage or (
        current.stage if current else engage_pb2.RELATIONSHIP_STAGE_IDENTIFIED
    )
    activities = []
    if current is None or current.stage != stage:
        partner.stage = stage
        activity = _activity(
            partner,
            stable_id("partner-activity", partner.partner_id, "stage", str(partner.version + 1)),
            PartnerActivity.KIND_STAGE_CHANGE,
            f"stage: {engage_pb2.RelationshipStage.Name(stage)}",
            user,
            now,
        )
        partner.timeline.append(activity)
        activities.append(activity)
    _touch(partner, user, now)
    return partner, activities


def record_activity(
    current: PartnerState, request: pb.RecordPartnerActivityRequest, user: str, now: datetime
) -> tuple[PartnerState, PartnerActivity | None]:
    """Adds an activity to the timeline; the same request_id again records nothing."""
    problems = []
    if not request.request_id.strip():
        problems.append("request_id: is required")
    if request.kind in (PartnerActivity.KIND_UNSPECIFIED, PartnerActivity.KIND_STAGE_CHANGE):
        problems.append("kind: expected a meeting, correspondence or joint activity")
    if not request.title.strip():
        problems.append("title: is required")
    if request.url and not re.match(r"^https?://", request.url):
        problems.append(f"url: {request.url!r} is not an http(s) URL")
    if problems:
        raise PartnerError("; ".join(problems))
    activity_id = stable_id("partner-activity", current.partner_id, request.request_id)
    if _on_timeline(current, activity_id):
        return current, None
    when = request.occurred_at.ToDatetime() if request.HasField("occurred_at") else now
    activity = _activity(current, activity_id, request.kind, request.title, user, when)
    if request.HasField("occurred_at"):
        activity.occurred_at.CopyFrom(request.occurred_at)
    activity.url = request.url
    activity.note = request.note
    if request.issue_ids:
        del activity.issue_ids[:]
        activity.issue_ids.extend(request.issue_ids)
    return _with_activity(current, activity, user, now), activity


def conversation_activity(
    partners: Sequence[PartnerState],
    conversation: engage_pb2.ConversationState,
    mention: listen_pb2.Mention,
    now: datetime,
) -> tuple[PartnerState, PartnerActivity] | None:
    """One of a partner's accounts spoke in ``conversation`` with ``mention``: the partner's
    next version with the activity on its timeline, and the activity (recorded by the
    engager). None when the author is no partner's contact, or when the mention is on the
    timeline already (a redelivery)."""
    partner = partner_for_accounts(partners, [mention.author_id, mention.author])
    if partner is None:
        return None
    activity_id = stable_id("partner-activity", partner.partner_id, mention.mention_id)
    if _on_timeline(partner, activity_id):
        return None
    activity = _activity(
        partner,
        activity_id,
        PartnerActivity.KIND_CONVERSATION,
        (mention.title or mention.text)[:200],
        RECORDED_BY_ENGAGER,
        now,
    )
    # The conversation's issue, not the partner's: that is what the activity was about.
    del activity.issue_ids[:]
    if conversation.issue_id:
        activity.issue_ids.append(conversation.issue_id)
    activity.url = mention.url
    activity.note = f"conversation {conversation.conversation_id}"
    return _with_activity(partner, activity, RECORDED_BY_ENGAGER, now), activity


def partner_for_accounts(
    partners: Sequence[PartnerState], accounts: Sequence[str]
) -> PartnerState | None:
    """The partner one of whose contacts holds one of ``accounts`` (case-insensitive)."""
    wanted = {account.lower() for account in accounts if account}
    for partner in partners:
        for contact in partner.contacts:
            if wanted & {account.lower() for account in contact.accounts}:
                return partner
    return None
