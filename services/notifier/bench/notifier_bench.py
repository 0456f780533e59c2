"""``make bench-notifier`` (``python services/notifier/bench/notifier_bench.py [events]``):
notifications decided per second against the raw consume rate of the same events, in one run.

One Kafka stand-in; EVENTS events of the notifier's seven topics as their services produce
them (spike alerts re-firing, conversations changing with SLA breaches and reply deliveries,
posts with deliveries failing and published, approval requests, objective changes, sources
failing and recovering), for a team of PEOPLE people. Then, one at a time, over the same
records:

1. raw kafka-python consume (no decoding): the client's limit;
2. raw consume + the runtime's decode and validation (``EventCodec.decode``);
3. the notifier's consume loop (``ConsumerLoop`` with ``DecisionHandler``): decode, signals,
   episodes, recipients, and the acknowledged writes of episodes and notifications, then
   the commit;
4. the decisions alone in memory (signals, episodes, recipients; no Kafka).

Each figure is events per second (wall) and this process's CPU per event; ratios are against
the raw consume of the same run, so they compare whatever the machine's load.

Not part of ``make test`` nor of the installed service: ``make bench`` runs it (it needs the
development install, which brings the stand-ins).
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation_core import topic_names
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import BatchResult, ConsumerLoop, Incoming
from legation_core.kafka import EventProducer, client_options, ensure_topics
from legation_core.metrics import Metrics
from legation_devstack import bench
from legation_devstack.bench import Clock
from legation_notifier.adapters.events import TOPICS, DecisionHandler
from legation_notifier.adapters.state import NotifierState
from legation_notifier.domain.decide import Decider, EpisodeState
from legation_notifier.domain.people import Directory, parse_people
from legation_notifier.domain.signals import signals_of

EVENTS = 20_000
PEOPLE = 60
BATCH = 500
SEED = 16


@dataclass(frozen=True)
class Figure(bench.Figure):
    """One measured path, with the notifications it decided."""

    notifications: int = 0


def measured(clock: Clock, label: str, events: int, notifications: int = 0) -> Figure:
    """What ``clock`` measured since it started, as a figure of ``events`` events."""
    return Figure(**asdict(clock.figure(label, events)), notifications=notifications)


def team(people: int) -> Directory:
    """``people`` people: analysts, officers, approvers, editors, publishers, admins,
    campaign owners, viewers; each with an e-mail address, some with digests and quiet
    hours, some owning or following campaigns and issues."""
    roles = ["analyst", "officer", "approver", "editor", "publisher", "admin", "viewer", ""]
    zones = ["Europe/Paris", "Africa/Nairobi", "America/New_York", "Asia/Tokyo", "UTC"]
    entries: list[dict[str, Any]] = []
    for number in range(people):
        role = roles[number % len(roles)]
        entry: dict[str, Any] = {
            "name": f"person-{number}",
            "roles": [role] if role else [],
            "time_zone": zones[number % len(zones)],
            "channels": {"email": {"address": f"person-{number}@m.example"}},
        }
        if number % 3 == 0:
            entry["mode"] = "digest"
        if number % 4 == 0:
            entry["quiet_hours"] = {"from": "22:00", "to": "07:00"}
        if not role:
            entry["owns"] = {"campaigns": [f"campaign-{number % 5}"]}
        if number % 7 == 0:
            entry["follows"] = {"issues": [f"issue-{number % 40}"]}
        entries.append(entry)
    return parse_people({"people": entries}, {})


def events(count: int, seed: int = SEED) -> list[tuple[str, str, str, Envelope]]:
    """(service, topic, key, envelope) of ``count`` events, in the order produced."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    produced: list[tuple[str, str, str, Envelope]] = []
    versions: dict[str, int] = {}

    def version(key: str) -> int:
        versions[key] = versions.get(key, 0) + 1
        return versions[key]

    for number in range(count):
        at = now - timedelta(seconds=count - number)
        draw = rng.random()
        issue = f"issue-{rng.randrange(40)}"
        campaign = f"campaign-{rng.randrange(5)}"
        event_id = f"bench-{number}"
        if draw < 0.30:
            alert = listen_pb2.Alert(
                alert_id=event_id, issue_id=issue, count=40, threshold=7.0, campaign_ids=[campaign]
            )
            alert.window_start.FromDatetime(at - timedelta(hours=1))
            alert.window_end.FromDatetime(at)
            envelope = make_envelope(
                alert, event_id=event_id, source_service="listener", occurred_at=at, issue_id=issue
            )
            produced.append(("listener", topic_names.LISTEN_ALERTS_V1, issue, envelope))
        elif draw < 0.70:
            conversation_id = f"conv-{rng.randrange(400)}"
            v = version(conversation_id)
            state = engage_pb2.ConversationState(
                conversation_id=conversation_id,
                campaign_id=campaign,
                issue_id=issue,
                assignee=f"person-{rng.randrange(PEOPLE)}" if rng.random() < 0.5 else "",
                sla_breached=v > 2,
                version=v,
            )
            state.change.at.FromDatetime(at)
            state.sla_due_at.FromDatetime(at)
            if v > 4:
                state.first_response_at.FromDatetime(at)
            if v % 3 == 0:
                status = rng.choice(
                    [
                        publish_pb2.DELIVERY_STATUS_NEEDS_CHECK,
                        publish_pb2.DELIVERY_STATUS_PUBLISHED,
                        publish_pb2.DELIVERY_STATUS_SENDING,
                    ]
                )
                state.replies.append(
                    engage_pb2.Reply(
                        reply_id=f"{conversation_id}-r",
                        officer=f"person-{rng.randrange(PEOPLE)}",
                        delivery=publish_pb2.Delivery(
                            delivery_id=f"{conversation_id}-r", channel="mastodon", status=status
                        ),
                    )
                )
            envelope = make_envelope(
                state, event_id=event_id, source_service="engager", occurred_at=at
            )
            produced.append(
                ("engager", topic_names.ENGAGE_CONVERSATIONS_V1, conversation_id, envelope)
            )
        elif draw < 0.85:
            post_id = f"post-{rng.randrange(200)}"
            post = publish_pb2.PostState(
                post_id=post_id,
                campaign_id=campaign,
                created_by="person-3",
                version=version(post_id),
            )
            post.variants.add(language="en", title="A post")
            for channel in ("newsletter", "mastodon"):
                post.deliveries.add(
                    delivery_id=f"{post_id}-{channel}",
                    channel=channel,
                    status=rng.choice(
                        [
                            publish_pb2.DELIVERY_STATUS_PENDING,
                            publish_pb2.DELIVERY_STATUS_FAILED,
                            publish_pb2.DELIVERY_STATUS_PUBLISHED,
                        ]
                    ),
                )
            post.transition.at.FromDatetime(at)
            envelope = make_envelope(
                post, event_id=event_id, source_service="publisher", occurred_at=at
            )
            produced.append(("publisher", topic_names.PUBLISH_POSTS_V1, post_id, envelope))
        elif draw < 0.92:
            post_id = f"post-{rng.randrange(200)}"
            request = publish_pb2.ApprovalRequest(
                request_id=event_id,
                subject="post",
                subject_id=post_id,
                step="policy-desk",
                role="approver",
                state=rng.choice(
                    [publish_pb2.APPROVAL_STATE_AWAITING, publish_pb2.APPROVAL_STATE_APPROVED]
                ),
                requested_by="person-3",
                decided_by="person-2",
            )
            request.at.FromDatetime(at)
            envelope = make_envelope(
                request,
                event_id=event_id,
                source_service="publisher",
                occurred_at=at,
                campaign_id=campaign,
            )
            produced.append(("publisher", topic_names.PUBLISH_APPROVALS_V1, post_id, envelope))
        elif draw < 0.96:
            change = evaluate_pb2.ObjectiveStatusChange(
                change_id=event_id,
                campaign_id=campaign,
                objective_id=f"objective-{rng.randrange(4)}",
                to_status=rng.choice(
                    [
                        evaluate_pb2.ObjectiveStatus.STATUS_AT_RISK,
                        evaluate_pb2.ObjectiveStatus.STATUS_ON_TRACK,
                    ]
                ),
            )
            change.at.FromDatetime(at)
            envelope = make_envelope(
                change, event_id=event_id, source_service="evaluator", occurred_at=at
            )
            produced.append(
                ("evaluator", topic_names.EVALUATE_OBJECTIVE_STATUS_V1, campaign, envelope)
            )
        else:
            health = listen_pb2.SourceHealth(
                health_id=event_id,
                issue_id=issue,
                source=f"https://feeds.example.org/{rng.randrange(30)}.xml",
                kind="rss",
                state=rng.choice(
                    [listen_pb2.SourceHealth.STATE_FAILING, listen_pb2.SourceHealth.STATE_RECOVERED]
                ),
                consecutive_failures=3,
            )
            health.at.FromDatetime(at)
            envelope = make_envelope(
                health, event_id=event_id, source_service="listener", occurred_at=at
            )
            produced.append(("listener", topic_names.LISTEN_SOURCE_HEALTH_V1, issue, envelope))
    return produced


class Bench:
    def __init__(self, settings: CoreSettings, count: int = EVENTS, people: int = PEOPLE) -> None:
        self.settings = settings
        self.count = count
        self.catalog = default_catalog()
        self.codec = EventCodec(self.catalog)
        self.directory = team(people)

    def produce(self, items: Sequence[tuple[str, str, str, Envelope]]) -> None:
        producers: dict[str, EventProducer] = {}
        for start in range(0, len(items), BATCH):
            by_service: dict[str, list[tuple[str, str, Envelope]]] = {}
            for service, topic, key, envelope in items[start : start + BATCH]:
                by_service.setdefault(service, []).append((topic, key, envelope))
            for service, batch in by_service.items():
                if service not in producers:
                    producers[service] = EventProducer(
                        self.settings, service, self.catalog, Metrics()
                    )
                producers[service].send_and_wait(batch)
        for producer in producers.values():
            producer.close()

    def raw(self, decode: bool) -> Figure:
        consumer = KafkaConsumer(
            *TOPICS,
            **client_options(self.settings),
            group_id=f"bench.raw.{decode}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=BATCH,
        )
        clock, count = Clock(), 0
        while count < self.count:
            for records in consumer.poll(timeout_ms=500).values():
                clock.start()  # from the first records: not the group's join
                for record in records:
                    if decode:
                        self.codec.decode(record.topic, record.value)
                    count += 1
        result = measured(
            clock, "raw kafka-python consume" + (" + decode" if decode else ""), count
        )
        consumer.close(autocommit=False)
        return result

    def notifier(self) -> Figure:
        metrics = Metrics()
        producer = EventProducer(self.settings, "notifier", self.catalog, metrics)
        state = NotifierState(producer)
        handler = DecisionHandler(state, self.directory, registry=metrics.registry)
        stop = threading.Event()
        clock, seen = Clock(), 0

        def counting(batch: Sequence[Incoming]) -> BatchResult:
            nonlocal seen
            clock.start()
            result = handler(batch)
            seen += len(batch)
            if seen >= self.count:
                stop.set()  # the loop still commits this batch
            return result

        ConsumerLoop(
            settings=self.settings,
            service="notifier",
            group="bench.notifier",
            topics=TOPICS,
            handler=counting,
            codec=self.codec,
            producer=producer,
            metrics=metrics,
            stop=stop,
        ).run()
        result = measured(
            clock,
            "notifier: consume loop, decisions, acknowledged state",
            seen,
            len(state.notifications),
        )
        producer.close()
        return result

    def in_memory(self, items: Sequence[tuple[str, str, str, Envelope]]) -> Figure:
        episodes: dict[str, EpisodeState] = {}
        decider = Decider(self.directory, episodes.get)
        decided = 0
        now = datetime.now(UTC)
        clock = Clock()
        clock.start()
        for _service, _topic, _key, envelope in items:
            for signal in signals_of(envelope, self.directory.console_url):
                outcome = decider.decide(signal, now)
                if outcome.episode is not None:
                    episodes[outcome.episode.condition] = outcome.episode
                decided += len(outcome.notifications)
        return measured(clock, "decisions alone, in memory (no Kafka)", len(items), decided)

    def run(self) -> int:
        ensure_topics(self.settings, self.catalog, replication_factor=1)
        items = events(self.count)
        self.produce(items)
        raw = self.raw(decode=False)
        decoded = self.raw(decode=True)
        notifier = self.notifier()
        memory = self.in_memory(items)
        print(
            f"{self.count} events on {len(TOPICS)} topics, {len(self.directory.people)} people "
            "(one process; ratios against the raw consume of this run)\n"
        )
        print(
            f"{'path':<56} {'events/s':>10} {'÷ raw':>6} {'CPU µs/ev':>10} {'x raw':>6} "
            f"{'notif./s':>9}"
        )
        for figure in (raw, decoded, notifier, memory):
            notifications = (
                f"{figure.notifications / figure.seconds:9.0f}" if figure.notifications else ""
            )
            print(
                f"{figure.label:<56} {figure.rate:10.0f} {figure.rate / raw.rate:6.2f} "
                f"{figure.cpu_us:10.1f} {figure.cpu_us / raw.cpu_us:6.1f} {notifications:>9}"
            )
        print(
            f"\nnotifications decided: {notifier.notifications} by the notifier "
            f"({memory.notifications} in memory: the same events, the same people)"
        )
        return 0


def main(argv: Sequence[str] = ()) -> int:
    count = int(argv[0]) if argv else EVENTS
    # The stand-in broker comes with the development tools, not with the service's image.
    from legation_devstack.standins import start_kafka

    workdir = Path(tempfile.mkdtemp(prefix="legation-notifier-bench-"))
    kafka = start_kafka(workdir / "data", workdir / "logs")
    try:
        settings = CoreSettings(kafka_bootstrap_servers=kafka.bootstrap_servers)
        return Bench(settings, count).run()
    finally:
        kafka.process.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
