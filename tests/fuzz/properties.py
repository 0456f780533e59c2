"""The properties every fuzz target checks, shared by the gRPC, HTTP, parser, config and
decoder tests: an answer free of internal text, within its time limit, with an allowed
status, in bounded memory.

A failed property raises :class:`PropertyFailed` (an AssertionError) whose message names the
failure class first (``UNKNOWN status``, ``internal text``, ``too slow``...), so a report can
group failures by class.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

T = TypeVar("T")


def _seconds(variable: str, default: float) -> float:
    return float(os.environ.get(variable, default))


# The time limits of one answer (environment variables override them, e.g. on a slow CI).
GRPC_LIMIT_SECONDS = _seconds("LEGATION_FUZZ_GRPC_SECONDS", 5.0)
HTTP_LIMIT_SECONDS = _seconds("LEGATION_FUZZ_HTTP_SECONDS", 5.0)
PARSE_LIMIT_SECONDS = _seconds("LEGATION_FUZZ_PARSE_SECONDS", 2.0)
# A computation (parsing, decoding, matching) is held to its limit in CPU seconds, which a
# loaded machine does not stretch (0.5 s of CPU took 2.1 s of wall time on two shared
# cores); one still running after this many times its limit, in wall time, has hung.
HUNG_FACTOR = 5
# How much a fuzz test may grow this process's peak memory (the servers run in it).
MEMORY_LIMIT_BYTES = int(_seconds("LEGATION_FUZZ_MEMORY_MB", 256)) * 1024 * 1024

# Status codes a gRPC call may end with: each says what the caller should do. UNKNOWN (an
# exception escaped the servicer) and DEADLINE_EXCEEDED (slower than the limit) never;
# INTERNAL only with a message that gives nothing away.
ALLOWED_CODES = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.INTERNAL,
    }
)


class PropertyFailed(AssertionError):
    """A fuzz property does not hold; ``kind`` is the failure class. Create it with
    :func:`failure`, which gives each class its own subclass: Hypothesis tells distinct
    bugs apart by exception type, so a thorough run reports every class it meets."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


_CLASSES: dict[str, type[PropertyFailed]] = {}


def failure(kind: str, detail: str) -> PropertyFailed:
    """The PropertyFailed of failure class ``kind`` (one exception type per class)."""
    if kind not in _CLASSES:
        name = "".join(part[0].upper() + part[1:] for part in re.findall(r"[A-Za-z0-9]+", kind))
        _CLASSES[kind] = type(f"{name}Failure", (PropertyFailed,), {})
    return _CLASSES[kind](kind, detail)


def _internal_patterns() -> list[re.Pattern[str]]:
    places = {str(Path.cwd()), sys.prefix, tempfile.gettempdir(), str(Path.home())}
    return [
        re.compile(r"Traceback \(most recent call last\)"),
        re.compile(r"File \"[^\"]+\", line \d+"),
        re.compile(r"Exception (calling application|iterating responses|serializing)"),
        # Anchored at the start of a run of path characters: without the lookbehind, every
        # position of a long run (a 3 MB value echoed back) rescans it, quadratic.
        re.compile(r"(?<![\w./-])[\w./-]*/[\w.-]+\.py\b"),
        re.compile(r"(site|dist)-packages"),
        re.compile(r"\bobject at 0x[0-9a-fA-F]+"),
        re.compile(r"<(class|module|function) '?[\w.]+"),
        re.compile(r"\b[A-Z]\w*(Error|Exception)\b(?=[:(])"),
        re.compile(r"\[Errno -?\d+\]"),
        re.compile(r"\[Error \d+\] \w+"),  # kafka-python's errors
        re.compile(r"maximum recursion depth"),
        re.compile(r"(HTTP|HTTPS)ConnectionPool\(|Max retries exceeded"),
        re.compile(r"(?<![\w.])(\d{1,3}\.){3}\d{1,3}:\d{1,5}\b"),
        re.compile(r"\blocalhost:\d{1,5}\b"),
        re.compile(r"\[[0-9a-fA-F:]*:[0-9a-fA-F:]*\]:\d{1,5}\b"),
        *(re.compile(re.escape(place)) for place in sorted(places) if len(place) > 1),
    ]


INTERNAL_PATTERNS = _internal_patterns()


def internal_text(text: str, echoed: Iterable[str] = ()) -> str | None:
    """The first piece of ``text`` that tells how the service is built or where it runs (a
    traceback, a source path, an exception class, a host and port, a local folder), unless
    the caller sent that piece itself (``echoed``); None when there is none."""
    sent = [value for value in echoed if value]
    for pattern in INTERNAL_PATTERNS:
        for match in pattern.finditer(text):
            piece = match.group(0)
            if not any(piece in value for value in sent):
                start = max(0, match.start() - 60)
                return text[start : match.end() + 60]
    return None


def check_grpc(
    method: str,
    code: grpc.StatusCode,
    details: str,
    elapsed: float,
    echoed: Iterable[str] = (),
) -> None:
    """The outcome of one gRPC call: an allowed code, in time, with a clean message."""
    where = f"{method} -> {code.name} {details[:300]!r}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED or elapsed > GRPC_LIMIT_SECONDS:
        raise failure("too slow", f"{method} took {elapsed:.1f} s ({code.name})")
    if code not in ALLOWED_CODES:
        raise failure(f"{code.name} status", where)
    leaked = internal_text(details, echoed)
    if leaked is not None:
        raise failure("internal text", f"{where}: {leaked!r}")


def check_http(
    surface: str,
    status: int | None,
    body: bytes,
    elapsed: float,
    echoed: Iterable[str] = (),
    *,
    may_close: bool = False,
    also: Collection[int] = (),
) -> None:
    """The outcome of one HTTP request: 2xx, 3xx, 4xx or a 503 that says why (or a status
    in ``also``), in time, with a body free of internal text. ``status`` None means the
    server closed the connection without an answer, allowed only when ``may_close`` (the
    request was not HTTP/1.x at all)."""
    text = body.decode("utf-8", "replace")
    where = f"{surface} -> {status} {text[:300]!r}"
    if elapsed > HTTP_LIMIT_SECONDS:
        raise failure("too slow", f"{surface}: no complete answer in {elapsed:.1f} s")
    if status is None:
        if not may_close:
            raise failure("no answer", f"{surface} closed the connection without a status")
        return
    if status == 503:
        if not text.strip():
            raise failure("503 without a reason", where)
    elif not 200 <= status < 500 and status not in also:
        raise failure(f"HTTP {status}", where)
    leaked = internal_text(text, echoed)
    if leaked is not None:
        raise failure("internal text", f"{where}: {leaked!r}")


def bounded(
    call: Callable[[], T],
    seconds: float = PARSE_LIMIT_SECONDS,
    what: str = "",
    *,
    cpu: bool = True,
) -> T:
    """The result of ``call()``, run on a worker thread; PropertyFailed("too slow") when it
    used more than ``seconds`` of CPU (``cpu``, for a computation) or of wall time (for
    work that waits on I/O), or is still running after HUNG_FACTOR times ``seconds`` (the
    thread is left to finish on its own)."""
    outcome: list[T] = []
    errors: list[BaseException] = []
    used: list[float] = []

    def run() -> None:
        started_cpu = time.thread_time()
        try:
            outcome.append(call())
        except BaseException as error:  # handed to the caller below
            errors.append(error)
        finally:
            used.append(time.thread_time() - started_cpu)

    worker = threading.Thread(target=run, name="fuzz-bounded", daemon=True)
    started = time.perf_counter()
    worker.start()
    worker.join(seconds * HUNG_FACTOR if cpu else seconds)
    if worker.is_alive():
        waited = seconds * HUNG_FACTOR if cpu else seconds
        raise failure("too slow", f"{what or 'call'} still running after {waited:g} s")
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    if cpu and used[0] > seconds:
        raise failure("too slow", f"{what or 'call'} took {used[0]:.1f} s of CPU")
    if not cpu and elapsed > seconds:
        raise failure("too slow", f"{what or 'call'} took {elapsed:.1f} s")
    return outcome[0]


def peak_memory() -> int:
    """This process's peak resident memory so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class MemoryBound:
    """Checks that the peak memory grew at most ``limit`` bytes since it was created."""

    limit: int = MEMORY_LIMIT_BYTES
    start: int = 0

    def __post_init__(self) -> None:
        self.start = peak_memory()

    def check(self, what: str) -> None:
        grown = peak_memory() - self.start
        if grown > self.limit:
            raise failure(
                "memory",
                f"{what}: peak memory grew {grown / 2**20:.0f} MiB (limit "
                f"{self.limit / 2**20:.0f} MiB)",
            )
