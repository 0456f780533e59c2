"""The index guard over an in-memory marker store: a lost index is noticed and rebuilt once,
by one replica, and a rebuild whose claim vanishes starts over."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from opensearchpy import ConflictError, ConnectionTimeout, NotFoundError

from legation_core.catalog import default_catalog
from legation_devstack.processes import wait_until
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable
from legation_evaluator.adapters.rebuild import IndexGuard
from legation_evaluator.domain.rebuild import (
    COMPLETE,
    REBUILDING,
    Marker,
    Verdict,
    marker_from,
    marker_index,
    rebuild_passes,
    verdict,
)

PREFIX = "legation-events-v1"


def test_a_missing_marker_means_rebuild_and_a_complete_one_means_ready() -> None:
    assert verdict(None, None, 100.0, 30.0) is Verdict.CLAIM
    complete = Marker(COMPLETE, "t1", "a", heartbeat=90.0, started_at=10.0)
    assert verdict(complete, None, 100.0, 30.0) is Verdict.READY
    running = Marker(REBUILDING, "t1", "a", heartbeat=90.0, started_at=10.0)
    assert verdict(running, "t1", 100.0, 30.0) is Verdict.OURS
    assert verdict(running, None, 100.0, 30.0) is Verdict.ELSEWHERE
    assert verdict(running, "t2", 121.0, 30.0) is Verdict.TAKE_OVER


def test_a_foreign_document_under_the_marker_id_is_no_marker() -> None:
    marker = Marker(REBUILDING, "t1", "host/1", heartbeat=5.0, started_at=1.0, events=3)
    assert marker_from(marker.body()) == marker
    assert marker_from({"state": "complete"}) is None
    assert marker_from({"hello": "world"}) is None


def test_the_marker_lives_outside_the_event_indices_pattern() -> None:
    assert not marker_index(PREFIX).startswith(f"{PREFIX}-")


def test_campaigns_and_other_kept_topics_are_rebuilt_first() -> None:
    catalog = default_catalog()
    topics = [spec.name for spec in catalog.consumed_by("evaluator")]
    first, rest = rebuild_passes(catalog, topics)
    assert "legation.evaluate.campaigns.v1" in first
    assert "legation.listen.mentions.v1" in rest
    assert sorted(first + rest) == sorted(topics)


class MarkerStore:
    """One marker document with OpenSearch's create and compare-and-set semantics."""

    def __init__(self) -> None:
        self.source: dict[str, Any] | None = None
        self.seq_no = -1
        self.writes = 0
        self.lock = threading.Lock()
        # Writes applied whose answer then times out (an overloaded index server).
        self.lost_answers = 0

    def lose_everything(self) -> None:
        with self.lock:
            self.source = None

    def get(self, index: str, id: str, ignore: int | None = None) -> dict[str, Any]:
        with self.lock:
            if self.source is None:
                if ignore == 404:
                    return {"_id": id, "found": False}
                raise NotFoundError(404, "not_found", {"found": False})
            return {
                "_source": dict(self.source),
                "found": True,
                "_seq_no": self.seq_no,
                "_primary_term": 1,
            }

    def index(
        self, index: str, id: str, body: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        with self.lock:
            if params.get("op_type") == "create" and self.source is not None:
                raise ConflictError(409, "version_conflict_engine_exception", "exists")
            if "if_seq_no" in params and (
                self.source is None or params["if_seq_no"] != self.seq_no
            ):
                raise ConflictError(409, "version_conflict_engine_exception", "changed")
            self.source = dict(body)
            self.seq_no += 1
            self.writes += 1
            if self.lost_answers:
                self.lost_answers -= 1
                raise ConnectionTimeout("TIMEOUT", "read timed out", None)
            return {"_seq_no": self.seq_no, "_primary_term": 1}


def state(store: MarkerStore) -> str | None:
    """The marker's state, None when there is no marker."""
    return None if store.source is None else str(store.source["state"])


def renewed(store: MarkerStore) -> bool:
    """Whether the marker's heartbeat was renewed since its claim."""
    return store.source is not None and store.source["heartbeat"] > store.source["started_at"]


class Index:
    def __init__(self, store: MarkerStore) -> None:
        self.prefix = PREFIX
        self.client = store
        self.forgotten = 0  # times the shared scorecard answers were dropped

    def forget_answers(self) -> None:
        self.forgotten += 1


class Rebuilds:
    """Counts rebuilds; each waits for ``release`` (or its halt) before it ends."""

    def __init__(self) -> None:
        self.started = 0
        self.release = threading.Event()
        self.halted = 0

    def __call__(self, halt: threading.Event, progress: Callable[[int], object]) -> int:
        self.started += 1
        progress(10)
        while not self.release.wait(0.01):
            if halt.is_set():
                self.halted += 1
                raise RuntimeError("stopped")
        return 10


def guard(
    store: MarkerStore, rebuilds: Rebuilds, stop: threading.Event, **options: Any
) -> IndexGuard:
    return IndexGuard(
        cast(EventIndex, Index(store)),
        rebuilds,
        stop=stop,
        owner="test",
        heartbeat_seconds=0.05,
        **options,
    )


def wait_for(condition: Callable[[], bool], what: str = "the condition") -> None:
    """The stack's poll helper, polling often: the guard's threads act within milliseconds."""
    wait_until(condition, 5.0, what, interval=0.01)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_lost_index_is_rebuilt_by_one_replica_and_then_ready(stop: threading.Event) -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    first, second = guard(store, rebuilds, stop), guard(store, rebuilds, stop)
    assert first.check() is True
    assert second.check() is True  # rebuilding elsewhere: it waits
    assert store.source is not None and store.source["state"] == REBUILDING
    wait_for(lambda: rebuilds.started == 1)
    # The claim is renewed (the heartbeat's first beat comes 0.2 s or more after the start).
    wait_for(lambda: renewed(store), "a heartbeat")
    assert second.check() is True  # the renewed claim holds: it still waits
    assert rebuilds.started == 1
    rebuilds.release.set()
    wait_for(lambda: store.source is not None and store.source["state"] == COMPLETE)
    wait_for(lambda: first.rebuilding is False)
    assert store.source["events"] == 10
    assert second.check() is False
    wait_for(lambda: first.last_seconds is not None)


def test_shared_scorecard_answers_are_dropped_when_a_rebuild_starts_and_ends(
    stop: threading.Event,
) -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    one = guard(store, rebuilds, stop)
    index = cast(Index, one.index)
    assert one.check() is True
    assert index.forgotten == 1  # started: answers from before the loss go
    one.check()  # still rebuilding: nothing changes, nothing dropped
    assert index.forgotten == 1
    rebuilds.release.set()
    wait_for(lambda: one.rebuilding is False)
    assert index.forgotten == 2  # ended: answers from mid-rebuild go
    assert one.check() is False
    assert index.forgotten == 2


def test_a_stalled_rebuild_is_taken_over(stop: threading.Event) -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    clock = [1000.0]
    stalled = Marker(REBUILDING, "dead", "gone/1", heartbeat=900.0, started_at=800.0)
    store.source, store.seq_no = stalled.body(), 4
    replica = guard(store, rebuilds, stop, clock=lambda: clock[0], lease_seconds=30.0)
    assert replica.check() is True
    wait_for(lambda: rebuilds.started == 1)
    assert store.source is not None and store.source["owner"] == "test"
    rebuilds.release.set()
    wait_for(lambda: store.source is not None and store.source["state"] == COMPLETE)


def test_an_index_lost_again_during_the_rebuild_stops_it_and_starts_over(
    stop: threading.Event,
) -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    replica = guard(store, rebuilds, stop)
    replica.check()
    wait_for(lambda: rebuilds.started == 1)
    store.lose_everything()
    wait_for(lambda: rebuilds.halted == 1)  # the heartbeat found its claim gone
    wait_for(lambda: not replica.check() or rebuilds.started == 2)
    wait_for(lambda: rebuilds.started == 2)
    rebuilds.release.set()
    wait_for(lambda: store.source is not None and store.source["state"] == COMPLETE)
    assert replica.check() is False


def test_stopping_the_service_hands_the_rebuild_over_at_once() -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    stop = threading.Event()
    first = guard(store, rebuilds, stop)
    first.check()
    wait_for(lambda: rebuilds.started == 1)
    stop.set()
    wait_for(lambda: store.source is not None and store.source["heartbeat"] == 0.0)
    rebuilds.release.set()
    successor_stop = threading.Event()
    try:
        successor = guard(store, rebuilds, successor_stop)
        assert successor.check() is True  # took over without waiting for the lease
        wait_for(lambda: store.source is not None and store.source["state"] == COMPLETE)
    finally:
        successor_stop.set()


def test_an_index_error_makes_the_next_tick_look() -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    store.source = Marker(COMPLETE, "t", "x", heartbeat=1.0, started_at=1.0).body()
    stop = threading.Event()
    replica = guard(store, rebuilds, stop, check_seconds=3600.0)
    replica.tick()
    assert replica.check() is False
    reads = store.writes
    store.lose_everything()
    replica.tick()  # not due: nothing read, nothing noticed
    assert store.writes == reads and state(store) is None
    replica.suspect()
    replica.tick()
    assert state(store) == REBUILDING
    rebuilds.release.set()
    stop.set()


def test_a_heartbeat_whose_answer_timed_out_does_not_lose_the_claim(
    stop: threading.Event,
) -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    replica = guard(store, rebuilds, stop)
    replica.check()
    wait_for(lambda: rebuilds.started == 1)
    store.lost_answers = 1  # the next heartbeat is written, its answer lost
    wait_for(lambda: store.lost_answers == 0)
    lost = store.writes
    # Two more heartbeats: their compare-and-set meets the unknown version.
    wait_for(lambda: store.writes >= lost + 2, "two more heartbeats")
    assert rebuilds.halted == 0
    rebuilds.release.set()
    wait_for(lambda: state(store) == COMPLETE)
    assert rebuilds.started == 1


def test_a_claim_whose_answer_timed_out_is_adopted(stop: threading.Event) -> None:
    store, rebuilds = MarkerStore(), Rebuilds()
    replica = guard(store, rebuilds, stop)
    store.lost_answers = 1
    with pytest.raises(IndexUnavailable):
        replica.check()
    assert state(store) == REBUILDING and rebuilds.started == 0
    assert replica.check() is True  # the marker is its own claim: it starts the rebuild
    wait_for(lambda: rebuilds.started == 1)
    rebuilds.release.set()
    wait_for(lambda: state(store) == COMPLETE)
