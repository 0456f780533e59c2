"""The engager's durable state: conversations, partners and questions campaigns, each on
its compacted topic (:class:`legation_core.state.StateTable`), rebuilt at start-up; and the
Interaction and PartnerActivity events recorded in the same acknowledged write as the
change that caused them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram

from legation.events.v1 import engage_pb2, publish_pb2
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_core.state import EventSink, StateTable, Transaction
from legation_core.topic_names import (
    ENGAGE_APPROVALS_V1,
    ENGAGE_CONVERSATIONS_V1,
    ENGAGE_INTERACTIONS_V1,
    ENGAGE_PARTNER_ACTIVITIES_V1,
    ENGAGE_PARTNERS_V1,
    ENGAGE_QUESTIONS_V1,
)
from legation_engager.domain.approvals import reply_approval_changes
from legation_engager.domain.inbox import Change, ConversationState
from legation_engager.domain.rules import PRIORITY_NAMES

SERVICE = "engager"

_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800)


def _at(state: ConversationState) -> datetime:
    return state.change.at.ToDatetime(tzinfo=UTC)


def conversation_envelope(state: ConversationState) -> Envelope:
    return make_envelope(
        state,
        event_id=_version_id("conversation-state", state.conversation_id, state.version),
        source_service=SERVICE,
        occurred_at=_at(state),
        campaign_id=state.campaign_id,
        issue_id=state.issue_id,
    )


def partner_envelope(partner: engage_pb2.PartnerState) -> Envelope:
    return make_envelope(
        partner,
        event_id=_version_id("partner-state", partner.partner_id, partner.version),
        source_service=SERVICE,
        occurred_at=partner.updated_at.ToDatetime(tzinfo=UTC),
    )


def questions_envelope(campaign: engage_pb2.QuestionsCampaign) -> Envelope:
    return make_envelope(
        campaign,
        event_id=_version_id("questions-state", campaign.questions_id, campaign.version),
        source_service=SERVICE,
        occurred_at=campaign.updated_at.ToDatetime(tzinfo=UTC),
        campaign_id=campaign.campaign_id,
        issue_id=campaign.issue_id,
    )


def _version_id(kind: str, key: str, version: int) -> str:
    return stable_id(kind, key, str(version))


def interaction_event(
    interaction: engage_pb2.Interaction,
    state: ConversationState,
    occurred_at: datetime,
    trace_id: str = "",
) -> tuple[str, str, Envelope]:
    """An Interaction on the interactions topic, keyed by conversation."""
    envelope = make_envelope(
        interaction,
        event_id=interaction.interaction_id,
        source_service=SERVICE,
        occurred_at=occurred_at,
        campaign_id=state.campaign_id,
        issue_id=state.issue_id,
        trace_id=trace_id,
    )
    return (ENGAGE_INTERACTIONS_V1, state.conversation_id, envelope)


def activity_event(
    activity: engage_pb2.PartnerActivity, campaign_id: str = ""
) -> tuple[str, str, Envelope]:
    """A PartnerActivity for the evaluator, keyed by partner."""
    envelope = make_envelope(
        activity,
        event_id=activity.activity_id,
        source_service=SERVICE,
        occurred_at=activity.occurred_at.ToDatetime(tzinfo=UTC),
        campaign_id=campaign_id,
        issue_id=activity.issue_ids[0] if activity.issue_ids else "",
    )
    return (ENGAGE_PARTNER_ACTIVITIES_V1, activity.partner_id, envelope)


def approval_event(
    request: publish_pb2.ApprovalRequest, state: ConversationState, trace_id: str = ""
) -> tuple[str, str, Envelope]:
    """The approvals-topic record of a reply's approval request."""
    envelope = make_envelope(
        request,
        event_id=request.request_id,
        source_service=SERVICE,
        occurred_at=_at(state),
        campaign_id=state.campaign_id,
        issue_id=state.issue_id,
        trace_id=trace_id,
    )
    return (ENGAGE_APPROVALS_V1, state.conversation_id, envelope)


class InboxMetrics:
    """First-response and resolution times, observed when they happen (not on rebuild)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.first_response = Histogram(
            "legation_engager_first_response_seconds",
            "From a conversation entering the inbox to our first reply on its channel",
            ["priority"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.resolution = Histogram(
            "legation_engager_resolution_seconds",
            "From a conversation entering the inbox to its closing",
            ["priority"],
            buckets=_BUCKETS,
            registry=registry,
        )

    def observe(self, before: ConversationState | None, after: ConversationState) -> None:
        opened = after.opened_at.ToDatetime(tzinfo=UTC)
        priority = PRIORITY_NAMES.get(after.priority, "normal")
        if after.HasField("first_response_at") and (
            before is None or not before.HasField("first_response_at")
        ):
            seconds = (after.first_response_at.ToDatetime(tzinfo=UTC) - opened).total_seconds()
            self.first_response.labels(priority=priority).observe(max(0.0, seconds))
        closed = engage_pb2.CONVERSATION_STATUS_CLOSED
        if after.status == closed and (before is None or before.status != closed):
            seconds = (after.closed_at.ToDatetime(tzinfo=UTC) - opened).total_seconds()
            self.resolution.labels(priority=priority).observe(max(0.0, seconds))


class EngagerState:
    """Every table of the engager, with the inbox's lookup indexes (by mention id and by
    the platform ids replies point at)."""

    def __init__(
        self,
        producer: EventSink,
        registry: CollectorRegistry | None = None,
        approval_role: str = "approver",
    ) -> None:
        # The role that approves replies (the rules' approval.role), named in the
        # ApprovalRequest events every conversation change that makes a reply wait carries.
        self.approval_role = approval_role
        self._index_lock = threading.Lock()
        self._by_mention: dict[str, str] = {}
        self._by_thread_key: dict[str, str] = {}
        self.metrics = InboxMetrics(registry)
        self.conversations: StateTable[ConversationState] = StateTable(
            ENGAGE_CONVERSATIONS_V1,
            ConversationState,
            lambda c: c.conversation_id,
            lambda c: c.version,
            conversation_envelope,
            producer,
            on_change=self._index,
        )
        self.partners: StateTable[engage_pb2.PartnerState] = StateTable(
            ENGAGE_PARTNERS_V1,
            engage_pb2.PartnerState,
            lambda p: p.partner_id,
            lambda p: p.version,
            partner_envelope,
            producer,
        )
        self.questions: StateTable[engage_pb2.QuestionsCampaign] = StateTable(
            ENGAGE_QUESTIONS_V1,
            engage_pb2.QuestionsCampaign,
            lambda q: q.questions_id,
            lambda q: q.version,
            questions_envelope,
            producer,
        )

    def rebuild(
        self, settings: CoreSettings, codec: EventCodec, dead_letters: EventProducer
    ) -> None:
        """Loads every table from its topic; records that do not decode go to the topic's
        DLQ through ``dead_letters``."""
        for table in (self.conversations, self.partners, self.questions):
            table.rebuild(settings, SERVICE, codec, dead_letters=dead_letters)

    def _index(self, state: ConversationState) -> None:
        with self._index_lock:
            for mention in state.mentions:
                self._by_mention[mention.mention_id] = state.conversation_id
            for key in state.thread_keys:
                self._by_thread_key.setdefault(key, state.conversation_id)

    def conversation_of_mention(self, mention_id: str) -> str | None:
        with self._index_lock:
            return self._by_mention.get(mention_id)

    def conversation_of_thread(self, *keys: str) -> str | None:
        with self._index_lock:
            for key in keys:
                if key and key in self._by_thread_key:
                    return self._by_thread_key[key]
        return None

    @contextmanager
    def change_conversations(self) -> Iterator[ConversationWriter]:
        """A transaction on conversations whose metrics are observed once it is written."""
        with self.conversations.transaction() as transaction:
            writer = ConversationWriter(transaction, self.approval_role)
            yield writer
            before = writer.before
        for key, after in writer.after.items():
            self.metrics.observe(before.get(key), after)


class ConversationWriter:
    """Stages conversation changes with their interactions."""

    def __init__(
        self, transaction: Transaction[ConversationState], approval_role: str = "approver"
    ) -> None:
        self.transaction = transaction
        self.approval_role = approval_role
        self.before: dict[str, ConversationState | None] = {}
        self.after: dict[str, ConversationState] = {}

    def get(self, conversation_id: str) -> ConversationState | None:
        return self.transaction.get(conversation_id)

    def put(
        self,
        change: Change,
        trace_id: str = "",
        occurred_at: Callable[[engage_pb2.Interaction], datetime] | None = None,
    ) -> ConversationState:
        state = change.state
        key = state.conversation_id
        if key not in self.before:
            self.before[key] = self.transaction.table.get(key)
        previous = self.transaction.get(key)
        events = [
            interaction_event(
                interaction,
                state,
                occurred_at(interaction) if occurred_at else _at(state),
                trace_id,
            )
            for interaction in change.interactions
        ]
        events.extend(
            approval_event(request, state, trace_id)
            for request in reply_approval_changes(previous, state, self.approval_role)
        )
        self.transaction.put(state, *events)
        self.after[key] = state
        return state

    def emit(self, *events: tuple[str, str, Envelope]) -> None:
        self.transaction.emit(*events)
