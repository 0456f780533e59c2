"""The index notices it lost its data, and the evaluator rebuilds it from Kafka by itself.

:class:`IndexGuard` reads the marker document (``domain/rebuild.py``) every few seconds,
at start-up, after an index error and when a campaign cannot be found. A missing marker
means the index server lost what it held (it restarted empty, was restored from nothing,
its indices were deleted): the guard claims the rebuild with a create-if-absent write of the
marker, so one replica of the evaluator rebuilds while the others wait, and runs the same
rebuild as ``legation-evaluator reindex`` (``reindex.rebuild``) in a thread of its own. A
heartbeat renews the claim with compare-and-set; a rebuild whose claim vanished (the index
lost its data again, or another replica took over a stalled claim) stops and starts over.
When it reaches the end offsets of its start the marker becomes "complete".

The live indexer keeps indexing meanwhile. The two never undo each other: every document is
written with its event's observed time as its external version (``domain/documents.py``),
so a rebuild writing an old copy of an event after the live indexer wrote a newer one
leaves the newer one. Scorecards are served meanwhile, marked ``rebuilding``; KPI snapshots,
reviews and reports wait for the rebuild to end.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from opensearchpy import ConflictError, NotFoundError, TransportError
from opensearchpy import ConnectionError as OpenSearchConnectionError
from prometheus_client import CollectorRegistry, Gauge

from legation_core.calls import Unavailable
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable
from legation_evaluator.domain.rebuild import (
    COMPLETE,
    REBUILDING,
    Marker,
    Verdict,
    marker_from,
    marker_index,
    verdict,
)

log = logging.getLogger(__name__)
MARKER_ID = "marker"
# A rebuild whose heartbeat is older than this is taken to be dead, and taken over.
LEASE_SECONDS = 30.0
HEARTBEAT_SECONDS = 5.0
# How fresh an answer to "is the index being rebuilt?" must be before a caller acts on it.
CONFIRM_SECONDS = 1.0

# Runs one rebuild until the end or until the event is set; reports events as it goes
# (progress) and returns how many it indexed.
Rebuild = Callable[[threading.Event, Callable[[int], object]], int]


class IndexRebuilding(IndexUnavailable, Unavailable):
    """The index is being rebuilt from Kafka: what was asked for may not be back yet (a gRPC
    call it ends is UNAVAILABLE with this message, which names nothing internal)."""


class IndexGuard:
    """Checks the marker and runs the rebuild when the index lost its data."""

    def __init__(
        self,
        index: EventIndex,
        rebuild: Rebuild,
        *,
        stop: threading.Event,
        owner: str,
        check_seconds: float = 5.0,
        lease_seconds: float = LEASE_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.index = index
        self.rebuild = rebuild
        self.stop = stop
        self.owner = owner
        self.check_seconds = check_seconds
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._rebuilding = False
        self._suspect = True  # look at the first tick
        self._checked = float("-inf")
        self._warned = float("-inf")
        # Our rebuild: its marker as last written and that write's (seq_no, primary_term).
        self._marker: Marker | None = None
        self._claiming: Marker | None = None  # a claim written, its answer not known
        self._version: tuple[int, int] | None = None
        self._events = 0
        self._thread: threading.Thread | None = None
        self.last_seconds: float | None = None  # how long the last rebuild here took
        self._gauge: Gauge | None = None
        if registry is not None:
            self._gauge = Gauge(
                "legation_evaluator_index_rebuilding",
                "1 while the index is being rebuilt from Kafka (by this replica or another)",
                registry=registry,
            )
            self._seconds = Gauge(
                "legation_evaluator_index_rebuild_seconds",
                "How long the last rebuild of the index from Kafka took on this replica",
                registry=registry,
            )

    @property
    def rebuilding(self) -> bool:
        """The index is being rebuilt (as of the last check): counts may be incomplete."""
        return self._rebuilding

    @property
    def index_name(self) -> str:
        return marker_index(self.index.prefix)

    def tick(self) -> None:
        """The periodic job (every second): checks when due, or at once after an error.
        An index that does not answer is checked again at the next tick (the live indexer
        and the API say it is down; one warning a minute here)."""
        if not (self._suspect or time.monotonic() - self._checked >= self.check_seconds):
            return
        try:
            self.check()
        except IndexUnavailable as error:
            if time.monotonic() - self._warned >= 60.0:
                self._warned = time.monotonic()
                log.warning("cannot check the index marker", extra={"error": str(error)})

    def suspect(self) -> None:
        """An index request failed: check the marker at the next tick."""
        self._suspect = True

    def confirm(self) -> bool:
        """Whether the index is being rebuilt, checked within the last second (an index
        that does not answer leaves the last answer)."""
        if time.monotonic() - self._checked > CONFIRM_SECONDS:
            with contextlib.suppress(IndexUnavailable):
                self.check()
        return self._rebuilding

    def check(self) -> bool:
        """Reads the marker and acts on it; returns whether the index is being rebuilt.
        Raises IndexUnavailable when the index does not answer."""
        with self._lock:
            self._suspect = True  # until this check succeeds
            marker, version = self._read()
            self._checked = time.monotonic()
            self._suspect = False
            own = self._marker.token if self._marker is not None else None
            claimed = self._claiming.token if self._claiming is not None else None
            if own is None and marker is not None and version and marker.token == claimed:
                self._start(marker, version)  # our claim went through after all
                return True
            decision = verdict(marker, own, self.clock(), self.lease_seconds)
            if decision is Verdict.READY:
                self._set_rebuilding(False)
            elif decision in (Verdict.OURS, Verdict.ELSEWHERE):
                self._set_rebuilding(True)
            elif own is not None:
                # Our rebuild's marker is gone: its heartbeat stops it, then we claim again.
                self._set_rebuilding(True)
            else:
                if decision is Verdict.CLAIM:
                    log.warning(
                        "the index has no marker: it lost its data (or was never built); "
                        "rebuilding it from Kafka",
                        extra={"index": self.index_name},
                    )
                else:
                    log.warning(
                        "taking over a stalled rebuild of the index",
                        extra={"owner": marker.owner if marker else "", "index": self.index_name},
                    )
                self._claim(version)
            return self._rebuilding

    def _set_rebuilding(self, value: bool) -> None:
        self._rebuilding = value
        if self._gauge is not None:
            self._gauge.set(1 if value else 0)

    def _read(self) -> tuple[Marker | None, tuple[int, int] | None]:
        """The marker and its version; raises IndexUnavailable when the index does not
        answer."""
        try:
            return self._read_raw()
        except (OpenSearchConnectionError, TransportError) as error:
            raise IndexUnavailable(f"cannot read the index marker: {error}") from error

    def _read_raw(self) -> tuple[Marker | None, tuple[int, int] | None]:
        # A missing marker (or marker index) is an answer, not an error to log.
        found = self.index.client.get(index=self.index_name, id=MARKER_ID, ignore=404)
        if not isinstance(found, dict) or not found.get("found"):
            return None, None
        return marker_from(found.get("_source") or {}), _version_of(found)

    def _write(self, marker: Marker, version: tuple[int, int] | None) -> tuple[int, int]:
        """Writes the marker: only if absent (``version`` None) or only over that version.
        Raises ConflictError when another write came first."""
        params: dict[str, Any] = {}  # a GET by id is real-time: no refresh needed
        if version is None:
            params["op_type"] = "create"
        else:
            params["if_seq_no"], params["if_primary_term"] = version
        written = self.index.client.index(
            index=self.index_name, id=MARKER_ID, body=marker.body(), params=params
        )
        return _version_of(written) or (0, 0)

    def _claim(self, version: tuple[int, int] | None) -> None:
        now = self.clock()
        marker = Marker(
            state=REBUILDING,
            token=uuid.uuid4().hex,
            owner=self.owner,
            heartbeat=now,
            started_at=now,
        )
        # A claim whose answer timed out may have been written: the next check adopts it.
        self._claiming = marker
        try:
            written = self._write(marker, version)
        except (ConflictError, NotFoundError):
            self._claiming = None
            log.info("another replica claimed the rebuild of the index")
            self._set_rebuilding(True)
            return
        except (OpenSearchConnectionError, TransportError) as error:
            raise IndexUnavailable(f"cannot claim the rebuild: {error}") from error
        self._start(marker, written)

    def _start(self, marker: Marker, version: tuple[int, int]) -> None:
        self._claiming = None
        self._marker, self._version, self._events = marker, version, 0
        self._set_rebuilding(True)
        halt = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(marker.token, halt), name="index-rebuild", daemon=True
        )
        self._thread.start()

    def _run(self, token: str, halt: threading.Event) -> None:
        started = time.monotonic()
        beating = threading.Thread(
            target=self._heartbeat, args=(token, halt), name="index-rebuild-heartbeat", daemon=True
        )
        beating.start()
        log.info("rebuilding the index from Kafka", extra={"index": self.index.prefix})
        try:
            events = self.rebuild(halt, self._progress)
            if not halt.is_set():
                self._finish(token, events, time.monotonic() - started)
        except Exception as error:
            if self.stop.is_set():
                # Shutting down: leave the claim to whoever starts next, at once.
                log.info("index rebuild stopped: the service is stopping")
                self._release(token)
            elif halt.is_set():
                log.info("index rebuild stopped", extra={"reason": str(error)})
            else:
                log.exception("index rebuild failed; it starts over once its claim lapses")
        finally:
            halt.set()
            beating.join(timeout=5)
            with self._lock:
                if self._marker is not None and self._marker.token == token:
                    self._marker, self._version = None, None
                self._suspect = True

    def _progress(self, events: int) -> None:
        self._events += events

    def _heartbeat(self, token: str, halt: threading.Event) -> None:
        """Renews the claim until the rebuild ends; stops it when the claim is gone (the
        index lost its data again, or another replica took over) or the service stops."""
        beat_at = time.monotonic() + self.heartbeat_seconds
        while not halt.wait(0.2):
            if self.stop.is_set():
                halt.set()
                return
            if time.monotonic() < beat_at:
                continue
            beat_at = time.monotonic() + self.heartbeat_seconds
            try:
                self._renew(token, state=REBUILDING)
            except (ConflictError, NotFoundError):
                log.warning(
                    "the claim of this rebuild is gone (the index lost its data again, or "
                    "another replica took over): stopping it",
                    extra={"index": self.index_name},
                )
                halt.set()
            except (OpenSearchConnectionError, TransportError) as error:
                log.warning("cannot renew the rebuild's claim", extra={"error": str(error)})

    def _renew(self, token: str, *, state: str, completed_at: float | None = None) -> None:
        """Rewrites our marker (heartbeat, progress, state) over the version we wrote last.
        A write that timed out may have been applied all the same, moving the version on:
        a conflict is therefore checked by reading the marker back, and only a marker that
        is gone or another rebuild's means the claim is lost (ConflictError)."""
        with self._lock:
            if self._marker is None or self._marker.token != token:
                raise ConflictError(409, "version_conflict_engine_exception", "not ours")
            marker = replace(
                self._marker,
                state=state,
                heartbeat=self.clock(),
                events=self._events,
                completed_at=completed_at,
            )
            try:
                self._version = self._write(marker, self._version)
            except ConflictError:
                current, version = self._read_raw()
                if current is None or current.token != token or version is None:
                    raise
                self._version = self._write(marker, version)
            self._marker = marker

    def _release(self, token: str) -> None:
        """Marks our claim as lapsed (a heartbeat of 0), so the next replica to look takes
        the rebuild over without waiting for the lease."""
        try:
            with self._lock:
                if self._marker is None or self._marker.token != token:
                    return
                marker = replace(self._marker, heartbeat=0.0, events=self._events)
                self._version = self._write(marker, self._version)
                self._marker = marker
        except (OpenSearchConnectionError, TransportError) as error:
            log.info("could not release the rebuild's claim", extra={"error": str(error)})

    def _finish(self, token: str, events: int, seconds: float) -> None:
        for attempt in range(10):
            try:
                self._renew(token, state=COMPLETE, completed_at=self.clock())
                break
            except (ConflictError, NotFoundError):
                log.warning("the index lost its data during the rebuild: starting over")
                return
            except (OpenSearchConnectionError, TransportError) as error:
                if attempt == 9 or self.stop.wait(1.0):
                    raise IndexUnavailable(f"cannot mark the rebuild complete: {error}") from error
        self._set_rebuilding(False)
        self.last_seconds = seconds
        if self._gauge is not None:
            self._seconds.set(seconds)
        log.info(
            "index rebuilt from Kafka",
            extra={"events": events, "seconds": round(seconds, 1), "index": self.index.prefix},
        )


def _version_of(response: Any) -> tuple[int, int] | None:
    if not isinstance(response, dict) or "_seq_no" not in response:
        return None
    return int(response["_seq_no"]), int(response["_primary_term"])
