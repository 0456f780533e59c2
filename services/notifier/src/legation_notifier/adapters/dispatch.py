"""The notifier's periodic work: close episodes whose time has come (a spike gone quiet, a
recovery that held) with their follow-ups, group due notifications into messages (one each,
or a person's daily digest), and deliver every unfinished message through the shared outbox.

The outbox's never-twice rule holds as in the publisher and the engager: a message is
recorded before its delivery begins, :meth:`Deliverer.run` hands every step to ``save``,
which records it and waits for Kafka's acknowledgement, so "sending" is on Kafka before the
channel is called; a message found "sending" after a restart is recovered by its channel's
reconcile mode (sent again under the same key on Matrix and the signed webhook, handed to a
person as needs-check on e-mail, Slack and Teams).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge

from legation_channels import outbox
from legation_channels.base import Outgoing
from legation_channels.records import to_outbox
from legation_core.state import Transaction
from legation_notifier.adapters.channels import PersonChannels
from legation_notifier.adapters.state import EpisodeState, NotificationMessage, NotifierState
from legation_notifier.domain.decide import Decider, Outcome
from legation_notifier.domain.messages import plan_messages
from legation_notifier.domain.people import CHANNEL_KINDS, Directory

log = logging.getLogger(__name__)
MORE = "\n… (more in the console)"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Run :meth:`run_once` periodically from one thread."""

    def __init__(
        self,
        state: NotifierState,
        directory: Directory,
        channels: PersonChannels,
        deliverer: outbox.Deliverer | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
        registry: CollectorRegistry | None = None,
        max_event_age: timedelta = timedelta(hours=24),
    ) -> None:
        self.state = state
        self.directory = directory
        self.channels = channels
        self.clock = clock
        self.deliverer = deliverer or outbox.Deliverer(clock=clock)
        self.max_event_age = max_event_age
        self.steps = Counter(
            "legation_notifier_deliveries_total",
            "Notification delivery steps by channel and the state they ended in",
            ["channel", "state"],
            registry=registry,
        )
        self.needing = Gauge(
            "legation_notifier_messages_attention",
            "Notification messages that failed or need a check (a person must look)",
            ["state"],
            registry=registry,
        )
        self.open_episodes = Gauge(
            "legation_notifier_episodes_open",
            "Conditions open now (spikes, failing sources, approvals waiting, breaches...)",
            registry=registry,
        )

    def run_once(self) -> None:
        """One turn: closings, planning, deliveries."""
        now = self.clock()
        self.close_due(now)
        planned = plan_messages(self.state.waiting_notifications(), self.state.taken_ids(), now)
        self.state.record_messages(planned, now)
        for message in self.state.unfinished_messages():
            try:
                self.deliver(message)
            except Exception:
                # One message must not stop the others; it is tried again next turn.
                log.exception(
                    "notification delivery failed", extra={"message_id": message.message_id}
                )
        for state, count in self.state.attention_counts().items():
            self.needing.labels(state=state).set(count)

    def close_due(self, now: datetime) -> None:
        """Closes every open episode whose ``closes_at`` passed, with its follow-ups."""

        def work(transaction: Transaction[EpisodeState]) -> list[Outcome]:
            decider = Decider(self.directory, transaction.get, self.max_event_age)
            outcomes = []
            open_count = 0
            for episode in self.state.episodes.all():
                if not episode.open:
                    continue
                open_count += 1
                outcome = decider.close(episode, now)
                if outcome.episode is not None:
                    outcomes.append(outcome)
                    open_count -= 1
            self.open_episodes.set(open_count)
            return outcomes

        self.state.decide(work)

    def deliver(self, message: NotificationMessage) -> None:
        """One outbox turn for one message."""
        delivery = to_outbox(message.delivery)
        channel = self.channels.get(message.person, message.channel)

        def save(step: outbox.Delivery) -> None:
            self.state.save_delivery(message.message_id, step)
            label = message.channel if message.channel in CHANNEL_KINDS else "other"
            self.steps.labels(channel=label, state=step.state).inc()

        if channel is None:
            # The person lost that channel (the people file changed): visible, not dropped.
            save(
                replace(
                    delivery,
                    state="failed",
                    reason=f"{message.person} has no {message.channel} channel any more",
                    reason_field="channel",
                    next_attempt_at=None,
                    updated_at=self.clock(),
                )
            )
            return
        text = message.text
        most = channel.limits.max_text_length
        if most is not None and len(text) > most:
            # A long digest on a chat room: what fits, and where the rest is.
            text = text[: most - len(MORE)] + MORE
        outgoing = Outgoing(
            idempotency_key=message.message_id,
            text=text,
            title=message.subject,
            link=message.link,
        )
        self.deliverer.run(delivery, channel, outgoing, save)
