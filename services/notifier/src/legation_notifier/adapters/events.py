"""Kafka side of the notifier: the events that need people in; episodes and notifications
recorded.

Each batch is decided in one transaction on the episodes (``NotifierState.decide``), then
the loop commits the offsets. A redelivered event is in its episode's recent events, and
its notifications exist already: it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter

from legation_core.consumer import BatchResult, Incoming
from legation_core.state import Transaction
from legation_core.topic_names import (
    ENGAGE_APPROVALS_V1,
    ENGAGE_CONVERSATIONS_V1,
    EVALUATE_OBJECTIVE_STATUS_V1,
    LISTEN_ALERTS_V1,
    LISTEN_SOURCE_HEALTH_V1,
    PUBLISH_APPROVALS_V1,
    PUBLISH_POSTS_V1,
)
from legation_notifier.adapters.state import EpisodeState, NotifierState
from legation_notifier.domain.decide import Decider, Outcome
from legation_notifier.domain.people import Directory
from legation_notifier.domain.signals import signals_of

TOPICS = (
    LISTEN_ALERTS_V1,
    LISTEN_SOURCE_HEALTH_V1,
    PUBLISH_APPROVALS_V1,
    PUBLISH_POSTS_V1,
    ENGAGE_APPROVALS_V1,
    ENGAGE_CONVERSATIONS_V1,
    EVALUATE_OBJECTIVE_STATUS_V1,
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DecisionHandler:
    """Turns every consumed event into its signals and decides who hears about them."""

    def __init__(
        self,
        state: NotifierState,
        directory: Directory,
        *,
        max_event_age: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] = _utc_now,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.state = state
        self.directory = directory
        self.max_event_age = max_event_age
        self.clock = clock
        self.decided = Counter(
            "legation_notifier_notifications_total",
            "Notifications decided, by kind, phase (open, resolved) and mode",
            ["kind", "phase", "mode"],
            registry=registry,
        )
        self.signals = Counter(
            "legation_notifier_signals_total",
            "Signals read from events, by kind (most repeat an open episode and tell nobody)",
            ["kind"],
            registry=registry,
        )

    def __call__(self, batch: Sequence[Incoming]) -> BatchResult:
        now = self.clock()

        def work(transaction: Transaction[EpisodeState]) -> list[Outcome]:
            decider = Decider(self.directory, transaction.get, self.max_event_age)
            outcomes = []
            for incoming in batch:
                for signal in signals_of(incoming.envelope, self.directory.console_url):
                    self.signals.labels(kind=signal.kind).inc()
                    outcome = decider.decide(signal, now)
                    if outcome.episode is not None:
                        # The next signal of the batch sees this one's episode.
                        transaction.put(outcome.episode)
                    outcomes.append(outcome)
            return outcomes

        for outcome in self.state.decide(work):
            for notification in outcome.notifications:
                self.decided.labels(
                    kind=notification.kind,
                    phase=notification.phase,
                    mode="digest" if notification.digest else "immediate",
                ).inc()
        return BatchResult()
