"""StateTable: a compacted topic's entities in memory; changes written (acknowledged)
before they are applied, versions never go back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from legation.events.v1 import engage_pb2
from legation_core.calls import InvalidArgument, NotFound
from legation_core.codec import Envelope, InvalidEvent, make_envelope
from legation_core.kafka import RecordTooLarge
from legation_core.state import StateTable, StoreUnavailable, changing, existing

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOPIC = "legation.engage.partners.v1"


class Sink:
    def __init__(self) -> None:
        self.sent: list[list[tuple[str, str, Envelope]]] = []
        self.failing: Exception | None = None

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        if self.failing is not None:
            raise self.failing
        self.sent.append(events)


def envelope(partner: engage_pb2.PartnerState) -> Envelope:
    return make_envelope(
        partner,
        event_id=f"{partner.partner_id}-{partner.version}",
        source_service="engager",
        occurred_at=NOW,
    )


def table(sink: Sink, changed: list[str] | None = None) -> StateTable[engage_pb2.PartnerState]:
    return StateTable(
        TOPIC,
        engage_pb2.PartnerState,
        lambda p: p.partner_id,
        lambda p: p.version,
        envelope,
        sink,
        on_change=(lambda p: changed.append(f"{p.partner_id}@{p.version}"))
        if changed is not None
        else None,
    )


def partner(partner_id: str, version: int, name: str = "x") -> engage_pb2.PartnerState:
    return engage_pb2.PartnerState(partner_id=partner_id, version=version, name=name)


def test_the_latest_version_wins_whatever_the_order() -> None:
    changed: list[str] = []
    states = table(Sink(), changed)
    assert states.apply(envelope(partner("a", 2, "new")))
    assert not states.apply(envelope(partner("a", 1, "old")))  # a replayed older record
    assert not states.apply(envelope(partner("a", 2, "new")))  # redelivered
    states.apply(envelope(partner("b", 1)))
    assert [p.name for p in states.all()] == ["new", "x"]
    assert changed == ["a@2", "b@1"]
    assert len(states) == 2


def test_without_versions_each_record_replaces_the_one_before() -> None:
    """A table of entities without a version (the listener's tracked issues and cursors):
    records are taken in topic order, the last one per key is the entity."""
    sink = Sink()
    states: StateTable[engage_pb2.PartnerState] = StateTable(
        TOPIC, engage_pb2.PartnerState, lambda p: p.partner_id, None, envelope, sink
    )
    assert states.apply(envelope(partner("a", 0, "first")))
    assert states.apply(envelope(partner("a", 0, "second")))
    with states.transaction() as transaction:
        transaction.put(partner("a", 0, "third"))
    assert [p.name for p in states.all()] == ["third"]
    [[(topic, key, written)]] = sink.sent
    assert (topic, key, written.partner_state.name) == (TOPIC, "a", "third")


def test_a_transaction_writes_its_events_then_its_entities_then_applies_them() -> None:
    sink = Sink()
    states = table(sink)
    extra = ("legation.engage.partner-activities.v1", "a", envelope(partner("z", 9)))
    with states.transaction() as transaction:
        transaction.put(partner("a", 1))
        assert states.get("a") is None  # staged, not applied
        assert transaction.get("a") == partner("a", 1)
        transaction.put(partner("a", 2), extra)
    events, entities = sink.sent
    assert [(topic, key) for topic, key, _ in events] == [extra[:2]]
    assert [(topic, key) for topic, key, _ in entities] == [(TOPIC, "a")]
    assert states.get("a") == partner("a", 2)


class FailsOnSecondWrite(Sink):
    """Acknowledges the events, then loses the entities' write (a crash between them)."""

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        if len(self.sent) == 1:
            self.sent.append([])
            raise RuntimeError("killed between the writes")
        super().send_and_wait(events)


def test_a_change_cut_off_between_its_events_and_its_entity_is_made_again_whole() -> None:
    sink = FailsOnSecondWrite()
    states = table(sink)
    extra = ("legation.engage.partner-activities.v1", "a", envelope(partner("z", 9)))
    with pytest.raises(StoreUnavailable), states.transaction() as transaction:
        transaction.put(partner("a", 1), extra)
    assert states.get("a") is None  # not recorded, so a redelivery makes the change again
    with states.transaction() as transaction:
        transaction.put(partner("a", 1), extra)
    first, _, again, entities = sink.sent
    assert first == again  # the same events, the same ids: counted once downstream
    assert [key for _, key, _ in entities] == ["a"]
    assert states.get("a") == partner("a", 1)


def test_nothing_is_applied_when_kafka_does_not_acknowledge() -> None:
    sink = Sink()
    sink.failing = RuntimeError("broker down")
    states = table(sink)
    with pytest.raises(StoreUnavailable, match="broker down"):
        put(states, partner("a", 1))
    assert states.get("a") is None
    sink.failing = InvalidEvent("a bug")
    with pytest.raises(InvalidEvent):  # a bug is not "unavailable"
        put(states, partner("a", 1))


def put(states: StateTable[engage_pb2.PartnerState], item: engage_pb2.PartnerState) -> None:
    with states.transaction() as transaction:
        transaction.put(item)


def refuse(states: StateTable[engage_pb2.PartnerState]) -> None:
    with states.transaction() as transaction:
        transaction.put(partner("a", 1))
        raise ValueError("refused")


def test_a_block_that_raises_writes_nothing() -> None:
    sink = Sink()
    states = table(sink)
    with pytest.raises(ValueError, match="refused"):
        refuse(states)
    assert sink.sent == [] and states.get("a") is None


def test_a_read_only_table_refuses_to_write_and_a_producer_can_be_given() -> None:
    states: StateTable[engage_pb2.PartnerState] = StateTable(
        TOPIC, engage_pb2.PartnerState, lambda p: p.partner_id, lambda p: p.version, envelope
    )
    with pytest.raises(RuntimeError, match="has no producer"):
        put(states, partner("a", 1))
    sink = Sink()
    with states.transaction(sink) as transaction:
        transaction.put(partner("a", 1))
    assert len(sink.sent) == 1 and states.get("a") is not None


def test_a_change_too_large_for_kafka_is_refused_whole_before_any_write() -> None:
    sink = Sink()
    states = table(sink)
    extra = ("legation.engage.partner-activities.v1", "a", envelope(partner("z", 9)))
    with pytest.raises(RecordTooLarge), states.transaction() as transaction:
        transaction.put(partner("a", 1, name="é" * 600_000), extra)  # 1.2 MB of UTF-8
    assert sink.sent == []  # not even the events
    assert states.get("a") is None


def test_what_a_call_names_is_found_or_changed_or_said_missing() -> None:
    sink = Sink()
    partners = table(sink)
    partners.apply(envelope(partner("a", 1, "old")))
    assert existing(partners, "partner", "partner_id", "a").name == "old"
    with pytest.raises(InvalidArgument, match=r"^partner_id is required$"):
        existing(partners, "partner", "partner_id", "")
    with pytest.raises(NotFound, match=r"^partner b does not exist$"):
        existing(partners, "partner", "partner_id", "b")
    with changing(partners, "partner", "partner_id", "a") as (transaction, current):
        transaction.put(partner("a", current.version + 1, "new"))
    assert existing(partners, "partner", "partner_id", "a").name == "new"
    with pytest.raises(NotFound), changing(partners, "partner", "partner_id", "b"):
        pass
    assert len(sink.sent) == 1  # the one change written; nothing for the missing one
