"""The notifier's handler and dispatcher with a test clock, over in-memory state and
recording channels: a daily digest at 08:00 in the person's time zone, quiet hours, one
message per notification, a failed channel visible, and the state rebuilt from what was
produced deciding nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from notifier_people import directory, people_file
from test_notifier_decide import alert, conversation

from legation.events.v1 import publish_pb2
from legation_channels.base import ChannelLimits, ChannelUnavailable, Delivered, Outgoing, Reconcile
from legation_channels.outbox import Deliverer, RetryPolicy
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec
from legation_core.consumer import Incoming
from legation_notifier.adapters.dispatch import Dispatcher
from legation_notifier.adapters.events import DecisionHandler
from legation_notifier.adapters.state import NotifierState
from legation_notifier.domain.people import Directory

PARIS = ZoneInfo("Europe/Paris")
NAIROBI = ZoneInfo("Africa/Nairobi")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sink:
    """What Kafka would hold: every produced record, checked against the catalog."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, Envelope]] = []

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        for topic, _key, envelope in events:
            EventCodec.validate(default_catalog().check_produce("notifier", topic), envelope)
        self.records.extend(events)


class Room:
    """A channel that records what it shows; ``down`` makes it unreachable."""

    reconcile: Reconcile = "idempotency-key"
    limits = ChannelLimits(max_text_length=3000)

    def __init__(self, name: str) -> None:
        self.name = self.kind = name
        self.shown: list[Outgoing] = []
        self.down = False

    def deliver(self, message: Outgoing) -> Delivered:
        if self.down:
            raise ChannelUnavailable("connection refused")
        self.shown.append(message)
        return Delivered(message.idempotency_key, "", datetime.now(UTC), True)

    def find(self, idempotency_key: str) -> Delivered | None:
        return None


class Rooms:
    def __init__(self) -> None:
        self.rooms: dict[tuple[str, str], Room] = {}

    def get(self, person: str, channel: str) -> Room:
        return self.rooms.setdefault((person, channel), Room(channel))

    def shown(self, person: str, channel: str) -> list[Outgoing]:
        return self.get(person, channel).shown


class Notifier:
    def __init__(self, team: Directory, clock: Clock, sink: Sink | None = None) -> None:
        self.sink = sink or Sink()
        self.state = NotifierState(self.sink)
        self.rooms = Rooms()
        self.handler = DecisionHandler(self.state, team, clock=clock)
        self.dispatcher = Dispatcher(
            self.state,
            team,
            self.rooms,  # type: ignore[arg-type]
            Deliverer(RetryPolicy(max_attempts=3), clock=clock),
            clock=clock,
        )

    def feed(self, *envelopes: Envelope) -> None:
        self.handler([Incoming("t", 0, i, None, e) for i, e in enumerate(envelopes)])

    def rebuilt(self, clock: Clock) -> Notifier:
        """A notifier restarted over what this one produced."""
        again = Notifier(self.handler.directory, clock, Sink())
        for _topic, _key, envelope in self.sink.records:
            for table in (again.state.messages, again.state.notifications, again.state.episodes):
                table.apply(envelope)
        again.rooms = self.rooms
        again.dispatcher.channels = self.rooms  # type: ignore[assignment]
        return again


def test_three_spikes_in_a_day_are_one_digest_at_eight_in_paris_and_quiet_hours_hold() -> None:
    ana = people_file()["people"][0] | {
        "kinds": {"spike": {"mode": "digest"}},
        "quiet_hours": {"from": "22:00", "to": "07:00"},
    }
    omar = people_file()["people"][1] | {"quiet_hours": {"from": "22:00", "to": "06:00"}}
    clock = Clock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    notifier = Notifier(directory(ana=ana, omar=omar), clock)
    for hour, issue in ((9, "plastics-treaty"), (14, "ocean-day"), (20, "cop-31")):
        clock.now = datetime(2026, 11, 20, hour + 1, 0, tzinfo=UTC)
        notifier.feed(alert(hour, issue=issue))
        notifier.dispatcher.run_once()
    assert notifier.rooms.shown("ana", "slack") == []  # all three wait for the digest
    # An SLA breach for omar at 23:30 in Nairobi: his quiet hours hold it until 06:00.
    clock.now = datetime(2026, 11, 20, 23, 30, tzinfo=NAIROBI).astimezone(UTC)
    notifier.feed(conversation(2, breached=True, answered=False, assignee="omar"))
    notifier.dispatcher.run_once()
    assert notifier.rooms.shown("omar", "teams") == []
    clock.now = datetime(2026, 11, 21, 5, 59, tzinfo=NAIROBI).astimezone(UTC)
    notifier.dispatcher.run_once()
    assert notifier.rooms.shown("omar", "teams") == []
    clock.now = datetime(2026, 11, 21, 6, 0, tzinfo=NAIROBI).astimezone(UTC)
    notifier.dispatcher.run_once()
    [breach] = notifier.rooms.shown("omar", "teams")
    assert "SLA breached" in breach.title and breach.link.endswith("/engage/conversations/conv-1")
    # 07:59 in Paris: nothing yet; 08:00: one digest of the three.
    clock.now = datetime(2026, 11, 21, 7, 59, tzinfo=PARIS).astimezone(UTC)
    notifier.dispatcher.run_once()
    assert notifier.rooms.shown("ana", "slack") == []
    clock.now = datetime(2026, 11, 21, 8, 0, tzinfo=PARIS).astimezone(UTC)
    notifier.dispatcher.run_once()
    [digest] = notifier.rooms.shown("ana", "slack")
    assert digest.title.startswith("Legation digest: 3 items")
    for issue in ("plastics-treaty", "ocean-day", "cop-31"):
        assert f"Spike on {issue}" in digest.text
    clock.now += timedelta(hours=1)
    notifier.dispatcher.run_once()
    notifier.feed(alert(9, issue="plastics-treaty"))  # a redelivered event
    notifier.dispatcher.run_once()
    assert len(notifier.rooms.shown("ana", "slack")) == 1
    assert len(notifier.rooms.shown("omar", "teams")) == 1


def test_a_condition_that_comes_back_after_closing_is_a_new_recorded_episode() -> None:
    clock = Clock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    notifier = Notifier(directory(), clock)
    notifier.feed(conversation(2, breached=True, answered=False, assignee="omar"))
    notifier.feed(conversation(3, breached=True, answered=True, assignee="omar"))
    closed = notifier.state.episodes.get("sla:conv-1")
    assert closed is not None and not closed.open
    notifier.feed(conversation(4, breached=True, answered=False, assignee="omar"))
    reopened = notifier.state.episodes.get("sla:conv-1")
    assert reopened is not None and reopened.open and reopened.version > closed.version
    # What Kafka holds rebuilds the same: the newest episode of the condition wins.
    again = notifier.rebuilt(clock).state.episodes.get("sla:conv-1")
    assert again is not None and again.episode_id == reopened.episode_id


def test_a_channel_that_stays_down_fails_visibly_and_a_restart_sends_nothing_twice() -> None:
    clock = Clock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    notifier = Notifier(directory(), clock)
    notifier.rooms.get("ana", "slack").down = True
    notifier.feed(alert(9))
    for _ in range(3):  # three attempts within the spike's episode (it closes at 13:00)
        notifier.dispatcher.run_once()
        clock.now += timedelta(minutes=20)
    assert notifier.state.attention_counts() == {"failed": 1, "needs-check": 0}
    [failed] = [
        m for m in notifier.state.messages.all() if m.person == "ana" and m.channel == "slack"
    ]
    assert failed.delivery.status == publish_pb2.DELIVERY_STATUS_FAILED
    assert "gave up after 3 attempts" in failed.delivery.reason
    # lea's digest copy went at her 08:00 the next day, once, even across a restart.
    clock.now = datetime(2026, 11, 21, 8, 0, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    restarted = notifier.rebuilt(clock)
    restarted.feed(alert(9))  # the last batch redelivered after the restart
    restarted.dispatcher.run_once()
    restarted.dispatcher.run_once()
    [lea] = restarted.rooms.shown("lea", "matrix")
    assert "Spike on plastics-treaty" in lea.text
    assert restarted.rooms.shown("ana", "slack") == []
