"""Signals: what an event says about a condition that needs people.

Each consumed event becomes zero or more :class:`Signal` s, each opening or resolving one
*condition* (a spike on an issue, a source of an issue failing, an approval step of a post
waiting, a conversation's SLA breached, a delivery failed or needing a check, an objective
at risk), with who it concerns (roles, named people, campaigns and issues) and what a
person needs to act: what happened, where, and a link into the console.

State topics (posts, conversations) carry the whole entity on every change, so their
signals repeat on every record; the episode logic (``episodes.py``) makes one notification
per episode of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from google.protobuf.timestamp_pb2 import Timestamp

from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation_core.codec import Envelope

Phase = Literal["open", "resolve"]

SPIKE_QUIET = timedelta(hours=3)
"""A spike episode closes by itself this long after the end of its last alert's hour: the
alerts of a surge that goes on hour after hour are one episode."""
SOURCE_SETTLE = timedelta(minutes=10)
"""A source that recovers is reported recovered only if it stays so this long: one that
flaps between failing and working is one episode."""

S = evaluate_pb2.ObjectiveStatus
A = publish_pb2.ApprovalState
ATTENTION = (publish_pb2.DELIVERY_STATUS_FAILED, publish_pb2.DELIVERY_STATUS_NEEDS_CHECK)
SETTLED = (publish_pb2.DELIVERY_STATUS_PUBLISHED, publish_pb2.DELIVERY_STATUS_CANCELLED)
STATUS_WORDS = {
    S.STATUS_ON_TRACK: "on track",
    S.STATUS_AT_RISK: "at risk",
    S.STATUS_ACHIEVED: "achieved",
    S.STATUS_MISSED: "missed",
    S.STATUS_UNSPECIFIED: "unknown",
}


@dataclass(frozen=True)
class Signal:
    """One event's word on one condition."""

    event_id: str
    kind: str
    condition: str
    phase: Phase
    at: datetime
    title: str
    text: str
    link: str
    campaign_ids: frozenset[str] = frozenset()
    issue_ids: frozenset[str] = frozenset()
    # Roles the condition concerns, and people it names (an assignee, an author).
    roles: frozenset[str] = frozenset()
    people: frozenset[str] = frozenset()
    # Who caused it: they are not told about their own act.
    actor: str = ""
    # open: an episode without a resolving event closes this long after ``at`` (spikes).
    quiet: timedelta | None = None
    # resolve: the follow-up waits this long, in case the condition comes back.
    settle: timedelta = timedelta(0)


def signals_of(envelope: Envelope, console_url: str) -> list[Signal]:
    """The signals of one event (none for events that concern nobody)."""
    field = envelope.WhichOneof("payload")
    if field == "alert":
        return [_spike(envelope, envelope.alert, console_url)]
    if field == "source_health":
        return [_source(envelope, envelope.source_health, console_url)]
    if field == "approval_request":
        return [_approval(envelope, envelope.approval_request, console_url)]
    if field == "objective_status_change":
        signal = _objective(envelope, envelope.objective_status_change, console_url)
        return [signal] if signal is not None else []
    if field == "conversation_state":
        return _conversation(envelope, envelope.conversation_state, console_url)
    if field == "post_state":
        return _post(envelope, envelope.post_state, console_url)
    return []


def _time(stamp: Timestamp, fallback: Timestamp) -> datetime:
    chosen = stamp if stamp.seconds or stamp.nanos else fallback
    return chosen.ToDatetime(tzinfo=UTC)


def _ids(*values: str) -> frozenset[str]:
    return frozenset(value for value in values if value)


def _link(console_url: str, path: str) -> str:
    return f"{console_url}{path}"


def _spike(envelope: Envelope, alert: listen_pb2.Alert, console_url: str) -> Signal:
    end = alert.window_end.ToDatetime(tzinfo=UTC)
    start = alert.window_start.ToDatetime(tzinfo=UTC)
    terms = ", ".join(f"{term.value} ({term.count})" for term in alert.top_terms[:5])
    sources = ", ".join(source.value for source in alert.top_sources[:3])
    text = (
        f"{alert.count} mentions of {alert.issue_id} published between {start:%Y-%m-%d %H:%M} "
        f"and {end:%H:%M} UTC, above the threshold of {alert.threshold:.1f} "
        f"(usual {alert.baseline_mean:.1f} an hour)."
    )
    if terms:
        text += f"\nTop terms: {terms}."
    if sources:
        text += f"\nTop sources: {sources}."
    return Signal(
        event_id=envelope.event_id,
        kind="spike",
        condition=f"spike:{alert.issue_id}",
        phase="open",
        at=end,
        title=f"Spike on {alert.issue_id}: {alert.count} mentions in an hour",
        text=text,
        link=_link(console_url, f"/listen/alerts?issue_id={quote(alert.issue_id)}"),
        campaign_ids=frozenset(alert.campaign_ids) | _ids(envelope.campaign_id),
        issue_ids=_ids(alert.issue_id),
        roles=frozenset({"analyst"}),
        quiet=SPIKE_QUIET,
    )


def _source(envelope: Envelope, health: listen_pb2.SourceHealth, console_url: str) -> Signal:
    failing = health.state == listen_pb2.SourceHealth.STATE_FAILING
    if failing:
        title = f"Source failing for {health.issue_id}: {health.source}"
        text = (
            f"{health.source} ({health.kind}) failed {health.consecutive_failures} reads in a "
            f"row for {health.issue_id}. Last error: {health.last_error}"
        )
    else:
        title = f"Source recovered for {health.issue_id}: {health.source}"
        text = (
            f"{health.source} ({health.kind}) works again for {health.issue_id} after "
            f"{health.consecutive_failures} failed reads."
        )
    return Signal(
        event_id=envelope.event_id,
        kind="source",
        condition=f"source:{health.issue_id}:{health.source}",
        phase="open" if failing else "resolve",
        at=_time(health.at, envelope.occurred_at),
        title=title,
        text=text,
        link=_link(console_url, f"/listen/sources?issue_id={quote(health.issue_id)}"),
        campaign_ids=frozenset(health.campaign_ids) | _ids(envelope.campaign_id),
        issue_ids=_ids(health.issue_id, envelope.issue_id),
        roles=frozenset({"analyst", "admin"}),
        settle=SOURCE_SETTLE,
    )


def _approval(envelope: Envelope, request: publish_pb2.ApprovalRequest, console_url: str) -> Signal:
    waiting = request.state == A.APPROVAL_STATE_AWAITING
    if request.subject == "reply":
        what = f"a reply to conversation {request.subject_id}"
        path = f"/engage/conversations/{quote(request.subject_id)}"
    else:
        languages = ", ".join(request.languages)
        what = f"post {request.subject_id}" + (f" ({languages})" if languages else "")
        path = f"/publish/posts/{quote(request.subject_id)}"
    outcome = {
        A.APPROVAL_STATE_APPROVED: "approved",
        A.APPROVAL_STATE_REJECTED: "sent back",
        A.APPROVAL_STATE_WITHDRAWN: "withdrawn",
    }.get(request.state, "decided")
    if waiting:
        title = f"Approval needed ({request.step}): {request.title or what}"
        text = (
            f"{request.requested_by or 'Someone'} asks for the {request.step} approval of "
            f"{what}, which needs the role {request.role}."
        )
    else:
        title = f"Approval {outcome} ({request.step}): {request.title or what}"
        text = f"The {request.step} approval of {what} was {outcome}"
        text += f" by {request.decided_by}." if request.decided_by else "."
    if request.comment:
        text += f"\nComment: {request.comment}"
    return Signal(
        event_id=envelope.event_id,
        kind="approval",
        condition=(
            f"approval:{request.subject}:{request.subject_id}:{request.item_id}:{request.step}"
        ),
        phase="open" if waiting else "resolve",
        at=_time(request.at, envelope.occurred_at),
        title=title,
        text=text,
        link=_link(console_url, path),
        campaign_ids=_ids(envelope.campaign_id),
        issue_ids=_ids(envelope.issue_id),
        roles=frozenset({request.role}) if waiting else frozenset(),
        # The requester hears the outcome; nobody is told about their own act.
        people=frozenset() if waiting else _ids(request.requested_by),
        actor=request.requested_by if waiting else request.decided_by,
    )


def _objective(
    envelope: Envelope, change: evaluate_pb2.ObjectiveStatusChange, console_url: str
) -> Signal | None:
    if change.to_status in (S.STATUS_AT_RISK, S.STATUS_MISSED):
        phase: Phase = "open"
    elif change.to_status in (S.STATUS_ON_TRACK, S.STATUS_ACHIEVED):
        phase = "resolve"
    else:
        return None
    name = change.campaign_name or change.campaign_id
    status = STATUS_WORDS.get(change.to_status, "changed")
    text = f"Objective {change.objective_id} of {name} is {status}: {change.reason}"
    if change.description:
        text += f"\nObjective: {change.description}"
    return Signal(
        event_id=envelope.event_id,
        kind="objective",
        condition=f"objective:{change.campaign_id}:{change.objective_id}",
        phase=phase,
        at=_time(change.at, envelope.occurred_at),
        title=f"Objective {status}: {change.objective_id} ({name})",
        text=text,
        link=_link(console_url, f"/evaluate/campaigns/{quote(change.campaign_id)}"),
        campaign_ids=_ids(change.campaign_id),
    )


def _conversation(
    envelope: Envelope, state: engage_pb2.ConversationState, console_url: str
) -> list[Signal]:
    link = _link(console_url, f"/engage/conversations/{quote(state.conversation_id)}")
    at = _time(state.change.at, envelope.occurred_at)
    campaigns, issues = _ids(state.campaign_id), _ids(state.issue_id)
    signals = []
    if state.sla_breached:
        answered = state.HasField("first_response_at") or (
            state.status == engage_pb2.CONVERSATION_STATUS_CLOSED
        )
        opening = state.mentions[0] if state.mentions else None
        about = f" from {opening.author}" if opening is not None and opening.author else ""
        due = state.sla_due_at.ToDatetime(tzinfo=UTC)
        signals.append(
            Signal(
                event_id=envelope.event_id,
                kind="sla-breach",
                condition=f"sla:{state.conversation_id}",
                phase="resolve" if answered else "open",
                at=at,
                title=(
                    f"SLA {'met late' if answered else 'breached'}: conversation "
                    f"{state.conversation_id}{about}"
                ),
                text=(
                    f"Conversation {state.conversation_id} on {state.issue_id or 'no issue'} "
                    f"was due an answer by {due:%Y-%m-%d %H:%M} UTC"
                    + (" and has been answered since." if answered else " and has none yet.")
                    + (f"\nIt starts: {opening.text[:300]}" if opening is not None else "")
                ),
                link=link,
                campaign_ids=campaigns,
                issue_ids=issues,
                roles=frozenset() if state.assignee else frozenset({"officer"}),
                people=_ids(state.assignee),
            )
        )
    for reply in state.replies:
        if not reply.HasField("delivery"):
            continue
        delivery = reply.delivery
        signal = _delivery(
            envelope,
            delivery,
            at,
            f"reply {reply.reply_id} to conversation {state.conversation_id}",
            link,
            campaigns,
            issues,
            roles=frozenset({"officer"}) if not state.assignee else frozenset(),
            people=_ids(reply.officer, state.assignee),
        )
        if signal is not None:
            signals.append(signal)
    return signals


def _post(envelope: Envelope, post: publish_pb2.PostState, console_url: str) -> list[Signal]:
    link = _link(console_url, f"/publish/posts/{quote(post.post_id)}")
    at = _time(post.transition.at, envelope.occurred_at)
    title = post.variants[0].title if post.variants else post.post_id
    signals = []
    for delivery in post.deliveries:
        signal = _delivery(
            envelope,
            delivery,
            at,
            f"post {post.post_id} “{title}” ({delivery.language})",
            link,
            _ids(post.campaign_id),
            _ids(post.issue_id),
            roles=frozenset({"publisher"}),
            people=_ids(post.created_by),
        )
        if signal is not None:
            signals.append(signal)
    return signals


def _delivery(
    envelope: Envelope,
    delivery: publish_pb2.Delivery,
    at: datetime,
    what: str,
    link: str,
    campaigns: frozenset[str],
    issues: frozenset[str],
    *,
    roles: frozenset[str],
    people: frozenset[str],
) -> Signal | None:
    if delivery.status in ATTENTION:
        needs_check = delivery.status == publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
        state = "needs a check" if needs_check else "failed"
        action = (
            "Look on the channel, then confirm it or retry it."
            if needs_check
            else "Fix what the channel refused, then retry or cancel it."
        )
        return Signal(
            event_id=envelope.event_id,
            kind="delivery",
            condition=f"delivery:{delivery.delivery_id}",
            phase="open",
            at=at,
            title=f"Delivery {state} on {delivery.channel}: {what}",
            text=f"The delivery of {what} to {delivery.channel} {state}: {delivery.reason}\n"
            + action,
            link=link,
            campaign_ids=campaigns,
            issue_ids=issues,
            roles=roles,
            people=people,
        )
    if delivery.status in SETTLED:
        done = (
            "published" if delivery.status == publish_pb2.DELIVERY_STATUS_PUBLISHED else "cancelled"
        )
        return Signal(
            event_id=envelope.event_id,
            kind="delivery",
            condition=f"delivery:{delivery.delivery_id}",
            phase="resolve",
            at=at,
            title=f"Delivery {done} on {delivery.channel}: {what}",
            text=f"The delivery of {what} to {delivery.channel} is {done} now.",
            link=link,
            campaign_ids=campaigns,
            issue_ids=issues,
            people=people,
        )
    return None
