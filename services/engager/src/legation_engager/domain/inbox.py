"""The inbox: which mentions open a conversation, how replies join it, triage, and every
change that can happen to a conversation. Plain functions over ``ConversationState``; no
I/O, no clock reads (``now`` is passed in).

Every function returns a :class:`Change`: the conversation's next version and the
Interaction events that tell the rest of the platform about it. The caller records both
in one acknowledged write before anything else sees them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from legation.events.v1 import engage_pb2, listen_pb2, publish_pb2
from legation_channels import outbox
from legation_channels.records import from_outbox, to_outbox
from legation_core.calls import Conflict, InvalidArgument
from legation_core.ids import stable_id
from legation_engager.domain.rules import Condition, Rules

Interaction = engage_pb2.Interaction
ConversationState = engage_pb2.ConversationState
Status = engage_pb2.ConversationStatus

NEW = engage_pb2.CONVERSATION_STATUS_NEW
ASSIGNED = engage_pb2.CONVERSATION_STATUS_ASSIGNED
WAITING = engage_pb2.CONVERSATION_STATUS_WAITING
ANSWERED = engage_pb2.CONVERSATION_STATUS_ANSWERED
CLOSED = engage_pb2.CONVERSATION_STATUS_CLOSED
STATUS_NAMES = {
    NEW: "new",
    ASSIGNED: "assigned",
    WAITING: "waiting",
    ANSWERED: "answered",
    CLOSED: "closed",
}

# Interrogative openings in the languages the platform listens to most; a question mark
# (Latin, Spanish opening, Arabic, Greek-style, full-width) is the stronger signal.
_QUESTION_MARKS = re.compile(r"[?\u00bf\u061f\uff1f\u037e]")
_INTERROGATIVES = re.compile(
    r"^\s*(who|what|when|where|why|how|which|is|are|will|would|can|could|should|does|do|did|"
    r"qui|que|quoi|quand|où|pourquoi|comment|est-ce|qu['\u2019]est-ce|"
    r"quién|qué|cuándo|dónde|por qué|cómo|cuál|"
    r"wer|was|wann|wo|warum|wie|"
    r"кто|что|когда|где|почему|как)\b",
    re.IGNORECASE,
)


def asks_question(text: str) -> bool:
    """True when ``text`` contains a question (a question mark, or a sentence that opens
    with an interrogative word)."""
    if _QUESTION_MARKS.search(text):
        return True
    return any(_INTERROGATIVES.match(sentence) for sentence in re.split(r"[.!\n]+", text))


def conversation_id_for(mention_id: str) -> str:
    """One mention opens at most one conversation, whatever the redeliveries."""
    return stable_id("conversation", mention_id)


def reply_id_for(conversation_id: str, request_id: str) -> str:
    """Our reply's id, also its idempotency key on the channel."""
    return stable_id("reply", conversation_id, request_id)


class ConversationError(InvalidArgument):
    """A request the conversation cannot take; the message names the field or says which
    states allow it."""


class InvalidStatusChange(Conflict, ConversationError):
    """A status change the conversation's current status does not allow
    (``FAILED_PRECONDITION``)."""


@dataclass
class Change:
    """A conversation's next version and the interactions it emits."""

    state: ConversationState
    interactions: list[Interaction] = field(default_factory=list)


def _text(mention: listen_pb2.Mention) -> str:
    return f"{mention.title}\n{mention.text}"


def thread_keys(mention: listen_pb2.Mention) -> list[str]:
    """The platform ids by which later replies find this mention's conversation."""
    keys = [mention.item_id, mention.url, mention.thread_id]
    return [key for key in dict.fromkeys(keys) if key]


def is_ours(mention: listen_pb2.Mention, rules: Rules) -> bool:
    """A reply to or mention of one of our accounts or publications."""
    accounts = {account.lstrip("@") for account in rules.our_accounts}
    mentioned = {account.lower().lstrip("@") for account in mention.mentioned_accounts}
    if accounts & mentioned:
        return True
    targets = [mention.in_reply_to, *mention.links]
    return any(
        target.startswith(prefix) for target in targets if target for prefix in rules.our_urls
    )


class SentimentBaseline:
    """Each issue's recent mean sentiment (an exponentially weighted mean of the mentions
    with a known sentiment), so a negative turn can be told from an issue that is always
    discussed negatively. Known after ``min_count`` mentions."""

    def __init__(self, weight: float = 0.1, min_count: int = 5) -> None:
        self.weight = weight
        self.min_count = min_count
        self._means: dict[str, tuple[float, int]] = {}

    def mean(self, issue_id: str) -> float | None:
        mean, count = self._means.get(issue_id, (0.0, 0))
        return mean if count >= self.min_count else None

    def observe(self, issue_id: str, mention: listen_pb2.Mention) -> None:
        if mention.sentiment.value in ("", "unknown"):
            return
        mean, count = self._means.get(issue_id, (mention.sentiment.score, 0))
        mean += self.weight * (mention.sentiment.score - mean)
        self._means[issue_id] = (mean, count + 1)


def open_reasons(
    mention: listen_pb2.Mention, rules: Rules, baseline: float | None = None
) -> list[str]:
    """Why this mention deserves a conversation (empty: it does not). ``baseline`` is the
    issue's recent mean sentiment, when known."""
    reasons = []
    if rules.questions and asks_question(_text(mention)):
        reasons.append("question")
    if is_ours(mention, rules):
        reasons.append("ours")
    if rules.min_influence is not None and mention.influence >= rules.min_influence:
        reasons.append("influence")
    sentiment = mention.sentiment
    if (
        rules.negative_turn is not None
        and sentiment.value == "negative"
        and sentiment.score <= rules.negative_turn
        and (
            rules.negative_drop is None
            or baseline is None
            or sentiment.score <= baseline - rules.negative_drop
        )
    ):
        reasons.append("negative-turn")
    return reasons


def priority_score(mention: listen_pb2.Mention, reasons: Sequence[str], rules: Rules) -> float:
    """The triage score in [0, 100]: influence, urgency, negativity, stance against, and
    whether a question was asked, each weighted by the rules."""
    weights = rules.weights
    words = set(re.findall(r"\w+", _text(mention).lower()))
    urgency = 1.0 if words & set(rules.urgent_words) else 0.5 if "ours" in reasons else 0.0
    negativity = max(0.0, -mention.sentiment.score) if mention.sentiment.value else 0.0
    against = 1.0 if mention.stance.value == "against" else 0.0
    question = 1.0 if asks_question(_text(mention)) else 0.0
    score = (
        weights.influence * max(0.0, min(1.0, mention.influence))
        + weights.urgency * urgency
        + weights.negativity * negativity
        + weights.against * against
        + weights.question * question
    )
    return round(min(100.0, score), 2)


def matches(
    when: Condition,
    mention: listen_pb2.Mention,
    issue_id: str,
    reasons: Sequence[str],
    priority: engage_pb2.Priority.ValueType,
) -> bool:
    """True when every part of ``when`` holds for this mention."""
    if when.issues and issue_id not in when.issues:
        return False
    if when.languages and mention.language not in when.languages:
        return False
    if when.stances and mention.stance.value not in when.stances:
        return False
    if when.hashtags and not when.hashtags & {h.lower() for h in mention.hashtags}:
        return False
    if when.reasons and not when.reasons & set(reasons):
        return False
    if when.min_influence is not None and mention.influence < when.min_influence:
        return False
    if priority < when.min_priority:
        return False
    return when.question is None or when.question == asks_question(_text(mention))


def reply_channel_for(mention: listen_pb2.Mention, rules: Rules) -> str:
    """The configured channel replies to this mention go through ("" = record only)."""
    for rule in rules.reply_channels:
        if rule.source and rule.source != mention.source:
            continue
        if rule.url_prefix and not (
            mention.url.startswith(rule.url_prefix)
            or mention.source_url.startswith(rule.url_prefix)
        ):
            continue
        return rule.channel
    return ""


def _interaction(
    state: ConversationState, kind: Interaction.Kind.ValueType, interaction_id: str, actor: str
) -> Interaction:
    opening = state.mentions[0] if state.mentions else listen_pb2.Mention()
    return Interaction(
        interaction_id=interaction_id,
        conversation_id=state.conversation_id,
        kind=kind,
        mention_id=opening.mention_id,
        channel=state.channel or opening.source_url,
        actor=actor,
        url=opening.url,
        language=opening.language,
        priority=state.priority,
        status=state.status,
        assignee=state.assignee,
        team=state.team,
        labels=state.labels,
    )


def _next(
    current: ConversationState, action: str, user: str, now: datetime, comment: str = ""
) -> ConversationState:
    state = ConversationState()
    state.CopyFrom(current)
    state.version = current.version + 1
    state.change.Clear()
    state.change.action = action
    state.change.user = user
    state.change.from_status = current.status
    state.change.to_status = current.status
    state.change.comment = comment
    state.change.at.FromDatetime(now)
    return state


def _set_status(state: ConversationState, status: Status.ValueType, now: datetime) -> None:
    state.status = status
    state.change.to_status = status
    if status == CLOSED:
        state.closed_at.FromDatetime(now)
    else:
        state.ClearField("closed_at")


def open_conversation(
    mention: listen_pb2.Mention,
    campaign_id: str,
    issue_id: str,
    reasons: Sequence[str],
    rules: Rules,
    now: datetime,
    load: Mapping[str, int] | None = None,
) -> Change:
    """A new conversation for a mention worth joining: triaged, labelled, assigned by the
    first matching rule (among a rule's officers, the one with the fewest open
    conversations in ``load``), with its SLA deadline."""
    conversation_id = conversation_id_for(mention.mention_id)
    score = priority_score(mention, reasons, rules)
    priority = rules.level(score)
    labels = sorted(
        {
            rule.label
            for rule in rules.labels
            if matches(rule.when, mention, issue_id, reasons, priority)
        }
    )
    rule = next(
        (r for r in rules.assignment if matches(r.when, mention, issue_id, reasons, priority)),
        None,
    )
    state = ConversationState(
        conversation_id=conversation_id,
        campaign_id=campaign_id,
        issue_id=issue_id,
        status=NEW,
        priority=priority,
        priority_score=score,
        labels=labels,
        mentions=[mention],
        channel=reply_channel_for(mention, rules),
        rules=list(reasons),
        version=1,
        thread_keys=thread_keys(mention),
    )
    state.opened_at.FromDatetime(now)
    if mention.HasField("published_at"):
        state.asked_at.CopyFrom(mention.published_at)
    else:
        state.asked_at.FromDatetime(now)
    state.sla_due_at.FromDatetime(now + timedelta(seconds=rules.sla_for(priority)))
    state.change.action = "open"
    state.change.user = mention.author
    state.change.to_status = NEW
    state.change.at.FromDatetime(now)
    opened = _interaction(
        state, Interaction.KIND_OPENED, stable_id("interaction", conversation_id, "opened"), ""
    )
    opened.actor = mention.author
    opened.text = mention.text or mention.title
    opened.is_question = asks_question(_text(mention))
    change = Change(state, [opened])
    if rule is not None:
        officer = rule.officer
        if rule.officers:
            counts = load or {}
            officer = min(rule.officers, key=lambda name: counts.get(name, 0))
        assigned = assign(state, officer, rule.team, "rules", now)
        assigned.state.version = 1  # one record for the opening and its rule assignment
        assigned.state.change.action = "open"
        assigned.state.change.from_status = engage_pb2.CONVERSATION_STATUS_UNSPECIFIED
        change = Change(assigned.state, [opened, *assigned.interactions])
    return change


def join(
    current: ConversationState,
    mention: listen_pb2.Mention,
    now: datetime,
    rules: Rules | None = None,
) -> Change:
    """A further mention (a reply in the thread) joins its conversation; a conversation we
    answered, were waiting on or closed comes back to the inbox. A thread that heats up (a
    reply scoring above the conversation) raises its priority, and an unanswered one gets
    the earlier deadline of the new priority."""
    state = _next(current, "join", mention.author, now)
    state.mentions.append(mention)
    if rules is not None:
        score = priority_score(mention, open_reasons(mention, rules), rules)
        if score > state.priority_score:
            state.priority_score = score
            priority = rules.level(score)
            if priority > state.priority:
                state.priority = priority
                due = state.opened_at.ToDatetime(tzinfo=UTC) + timedelta(
                    seconds=rules.sla_for(priority)
                )
                if not state.sla_breached and due < state.sla_due_at.ToDatetime(tzinfo=UTC):
                    state.sla_due_at.FromDatetime(due)
    for key in thread_keys(mention):
        if key not in state.thread_keys:
            state.thread_keys.append(key)
    if current.status in (WAITING, ANSWERED, CLOSED):
        _set_status(state, ASSIGNED if state.assignee or state.team else NEW, now)
    joined = _interaction(
        state,
        Interaction.KIND_JOINED,
        stable_id("interaction", state.conversation_id, "joined", mention.mention_id),
        mention.author,
    )
    joined.mention_id = mention.mention_id
    joined.text = mention.text or mention.title
    joined.url = mention.url
    joined.is_question = asks_question(_text(mention))
    return Change(state, [joined])


def assign(current: ConversationState, officer: str, team: str, user: str, now: datetime) -> Change:
    """Assigns to an officer and/or a team (both empty: unassigns)."""
    if current.status == CLOSED:
        raise InvalidStatusChange("conversation is closed; reopen it before assigning")
    state = _next(current, "assign", user, now)
    state.assignee = officer
    state.team = team
    if current.status in (NEW, ASSIGNED):
        _set_status(state, ASSIGNED if officer or team else NEW, now)
    interaction = _interaction(
        state,
        Interaction.KIND_ASSIGNED,
        stable_id("interaction", state.conversation_id, "assigned", str(state.version)),
        user,
    )
    return Change(state, [interaction])


def label(
    current: ConversationState, add: Iterable[str], remove: Iterable[str], user: str, now: datetime
) -> Change:
    """Adds and removes labels (no interaction: labels ride on the next one)."""
    state = _next(current, "label", user, now)
    labels = (set(current.labels) | set(add)) - set(remove)
    del state.labels[:]
    state.labels.extend(sorted(labels))
    return Change(state)


def prioritize(
    current: ConversationState,
    priority: engage_pb2.Priority.ValueType,
    rules: Rules,
    user: str,
    comment: str,
    now: datetime,
) -> Change:
    """A person overrides the triage; an unanswered, unbreached conversation's deadline
    follows the new priority (counted from when it entered the inbox)."""
    if priority == engage_pb2.PRIORITY_UNSPECIFIED:
        raise ConversationError("priority: is required")
    state = _next(current, "prioritize", user, now, comment)
    state.priority = priority
    if not state.sla_breached and not state.HasField("first_response_at"):
        opened = state.opened_at.ToDatetime(tzinfo=UTC)
        state.sla_due_at.FromDatetime(opened + timedelta(seconds=rules.sla_for(priority)))
    return Change(state)


# The manual status changes and the statuses they may come from.
_MANUAL: dict[Status.ValueType, tuple[Status.ValueType, ...]] = {
    WAITING: (NEW, ASSIGNED, ANSWERED),
    CLOSED: (NEW, ASSIGNED, WAITING, ANSWERED),
    NEW: (CLOSED, WAITING),  # reopen; lands on assigned when someone holds it
}


def set_status(
    current: ConversationState, status: Status.ValueType, comment: str, user: str, now: datetime
) -> Change:
    """Moves to waiting, closes, or reopens (``NEW``); assigned and answered follow from
    assigning and replying. Raises InvalidStatusChange naming what is allowed."""
    allowed = _MANUAL.get(status)
    if allowed is None:
        raise ConversationError(
            "status: expected CONVERSATION_STATUS_WAITING, _CLOSED or _NEW (reopen); assigned "
            "and answered follow from assigning and replying"
        )
    if current.status not in allowed:
        raise InvalidStatusChange(
            f"cannot move a {STATUS_NAMES[current.status]} conversation to "
            f"{STATUS_NAMES[status]}: only from {', '.join(STATUS_NAMES[s] for s in allowed)}"
        )
    state = _next(current, "close" if status == CLOSED else "status", user, now, comment)
    target = ASSIGNED if status == NEW and (state.assignee or state.team) else status
    _set_status(state, target, now)
    kind = Interaction.KIND_CLOSED if status == CLOSED else Interaction.KIND_STATUS_CHANGED
    interaction = _interaction(
        state,
        kind,
        stable_id("interaction", state.conversation_id, "status", str(state.version)),
        user,
    )
    interaction.text = comment
    return Change(state, [interaction])


def add_reply(
    current: ConversationState,
    request_id: str,
    officer: str,
    text: str,
    language: str,
    saved_reply_id: str,
    needs_approval: bool,
    supports_replies: bool,
    now: datetime,
) -> Change:
    """Our reply, drafted: awaiting approval on a sensitive conversation, else queued for
    the conversation's channel (or recorded at once when it has none)."""
    if not text.strip():
        raise ConversationError("text: is required (or saved_reply_id)")
    if not officer.strip():
        raise ConversationError("officer: is required")
    if current.status == CLOSED:
        raise InvalidStatusChange("conversation is closed; reopen it before replying")
    reply_id = reply_id_for(current.conversation_id, request_id)
    state = _next(current, "reply", officer, now)
    opening = current.mentions[0] if current.mentions else listen_pb2.Mention()
    reply = engage_pb2.Reply(
        reply_id=reply_id,
        request_id=request_id,
        officer=officer,
        text=text,
        language=language or opening.language,
        saved_reply_id=saved_reply_id,
        in_reply_to=_answered_item(current) if current.channel and supports_replies else "",
    )
    reply.created_at.FromDatetime(now)
    if needs_approval:
        reply.status = engage_pb2.REPLY_STATUS_AWAITING_APPROVAL
        state.replies.append(reply)
        return Change(state)
    state.replies.append(reply)
    return _release(state, reply_id, now)


def _answered_item(state: ConversationState) -> str:
    # We answer the latest mention of the thread (the platform's own item id).
    return state.mentions[-1].item_id if state.mentions else ""


def _release(state: ConversationState, reply_id: str, now: datetime) -> Change:
    """A reply cleared to go: queued on the conversation's channel, or recorded now."""
    reply = _reply(state, reply_id)
    if state.channel:
        reply.status = engage_pb2.REPLY_STATUS_SENDING
        reply.delivery.CopyFrom(
            from_outbox(outbox.new_delivery(reply_id, state.channel, now), reply.language, now)
        )
        return Change(state)
    reply.status = engage_pb2.REPLY_STATUS_RECORDED
    return Change(state, [_replied(state, reply, now)])


def _reply(state: ConversationState, reply_id: str) -> engage_pb2.Reply:
    for reply in state.replies:
        if reply.reply_id == reply_id:
            return reply
    raise ConversationError(f"reply_id: conversation has no reply {reply_id}")


def find_reply(state: ConversationState, request_id: str) -> engage_pb2.Reply | None:
    """The reply a request made, if it was made (retried requests are no-ops)."""
    reply_id = reply_id_for(state.conversation_id, request_id)
    return next((r for r in state.replies if r.reply_id == reply_id), None)


def _replied(state: ConversationState, reply: engage_pb2.Reply, now: datetime) -> Interaction:
    """Our reply is out: the REPLIED interaction, the status answered, first response."""
    if not state.HasField("first_response_at"):
        state.first_response_at.FromDatetime(now)
    if state.status != CLOSED:
        _set_status(state, ANSWERED, now)
    interaction = _interaction(
        state,
        Interaction.KIND_REPLIED,
        stable_id("interaction", state.conversation_id, "reply", reply.request_id),
        reply.officer,
    )
    interaction.text = reply.text
    interaction.language = reply.language
    interaction.response_seconds = max(
        0.0, (now - state.asked_at.ToDatetime(tzinfo=UTC)).total_seconds()
    )
    interaction.channel_item_id = reply.delivery.channel_item_id
    if reply.delivery.url:
        interaction.url = reply.delivery.url
    return interaction


def review_reply(
    current: ConversationState,
    reply_id: str,
    approve: bool,
    user: str,
    comment: str,
    now: datetime,
) -> Change:
    """An approver lets a reply go, or refuses it (with a comment)."""
    reply = _reply(current, reply_id)
    if reply.status != engage_pb2.REPLY_STATUS_AWAITING_APPROVAL:
        raise InvalidStatusChange(f"reply {reply_id} is not awaiting approval")
    if reply.officer == user:
        raise ConversationError("reply_id: a reply cannot be approved by the officer who wrote it")
    state = _next(current, "approve" if approve else "reject", user, now, comment)
    target = _reply(state, reply_id)
    target.approved_by = user
    target.comment = comment
    if not approve:
        if not comment.strip():
            raise ConversationError("comment: is required when rejecting a reply")
        target.status = engage_pb2.REPLY_STATUS_REJECTED
        return Change(state)
    return _release(state, reply_id, now)


def deliveries_due(state: ConversationState) -> list[engage_pb2.Reply]:
    """Replies with a delivery to drive: pending or interrupted mid-send."""
    return [
        reply
        for reply in state.replies
        if reply.status == engage_pb2.REPLY_STATUS_SENDING
        and reply.delivery.status
        in (publish_pb2.DELIVERY_STATUS_PENDING, publish_pb2.DELIVERY_STATUS_SENDING)
    ]


def record_delivery(
    current: ConversationState, reply_id: str, delivery: outbox.Delivery, now: datetime
) -> Change:
    """Records a step of a reply's delivery; when it is on the channel, the REPLIED
    interaction goes out and the conversation is answered."""
    state = _next(current, "deliver", _reply(current, reply_id).officer, now)
    reply = _reply(state, reply_id)
    reply.delivery.CopyFrom(from_outbox(delivery, reply.language, now))
    if delivery.state == "delivered":
        reply.status = engage_pb2.REPLY_STATUS_DELIVERED
        return Change(state, [_replied(state, reply, now)])
    if delivery.state in ("failed", "needs-check", "cancelled"):
        reply.status = engage_pb2.REPLY_STATUS_FAILED
    else:
        reply.status = engage_pb2.REPLY_STATUS_SENDING
    return Change(state)


RESOLUTIONS = ("retry", "cancel", "confirm")
OPEN = (NEW, ASSIGNED, WAITING)


def open_load(conversations: Iterable[ConversationState]) -> dict[str, int]:
    """Open conversations (new, assigned, waiting) per assignee."""
    load: dict[str, int] = {}
    for conversation in conversations:
        if conversation.assignee and conversation.status in OPEN:
            load[conversation.assignee] = load.get(conversation.assignee, 0) + 1
    return load


def resolve_delivery(
    current: ConversationState,
    reply_id: str,
    action: str,
    user: str,
    reason: str,
    now: datetime,
    channel_item_id: str = "",
    url: str = "",
) -> Change:
    """A person settles a failed or needs-check reply delivery with the outbox's own
    transitions: retry (sent again under the same key), cancel, or confirm delivered.
    Raises InvalidStatusChange naming the delivery's state and what it allows."""
    reply = _reply(current, reply_id)
    if not reply.HasField("delivery") or not reply.delivery.delivery_id:
        raise InvalidStatusChange(f"reply {reply_id} has no channel delivery to settle")
    delivery = to_outbox(reply.delivery)
    try:
        if action == "retry":
            settled = outbox.retry(delivery, now)
        elif action == "cancel":
            settled = outbox.cancel(delivery, now, reason)
        elif action == "confirm":
            settled = outbox.confirm_delivered(delivery, now, channel_item_id, url)
        else:
            raise ConversationError(f"action: expected one of {', '.join(RESOLUTIONS)}")
    except outbox.InvalidTransition as error:
        raise InvalidStatusChange(str(error)) from None
    change = record_delivery(current, reply_id, settled, now)
    change.state.change.user = user
    change.state.change.comment = reason
    return change


def breach(current: ConversationState, now: datetime) -> Change | None:
    """The BREACHED interaction, once, when the first-response deadline passed unanswered
    on an open conversation; None otherwise."""
    if (
        current.sla_breached
        or current.HasField("first_response_at")
        or current.status in (ANSWERED, CLOSED)
        or not current.HasField("sla_due_at")
        or current.sla_due_at.ToDatetime(tzinfo=UTC) > now
    ):
        return None
    state = _next(current, "breach", "sla", now)
    state.sla_breached = True
    interaction = _interaction(
        state,
        Interaction.KIND_BREACHED,
        stable_id("interaction", state.conversation_id, "breached"),
        "sla",
    )
    late = (now - current.sla_due_at.ToDatetime(tzinfo=UTC)).total_seconds()
    interaction.text = f"no first response {late:.0f} s after the deadline"
    return Change(state, [interaction])
