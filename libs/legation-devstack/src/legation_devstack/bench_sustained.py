"""``make bench-sustained RATE=… SECONDS=…`` and ``make bench-memory``: the whole pipeline
under sustained load, measured.

Starts the local stack on a temporary folder (free ports), tracks the demo issue over the
listener's signed webhook (``webhook:bench``) for the demo campaign, pushes one mention and
waits for it to be counted (the index's first write is a cold start), then, with the live
scorecard page polled as its script polls it and a ``WatchCampaignScorecard`` watcher
running, pushes the demo's generator (:func:`campaign_week.stream`) at ``--rate`` mentions
a second for ``--seconds``, in signed batches every ``--batch-seconds`` on a fixed schedule
(open loop: a slow webhook makes batches wait, it does not lower what is offered). A
batch is *produced* when the webhook answers (the listener answers once Kafka acknowledged
its mentions). A sampler reads the scorecard's mention count every ``--sample-seconds``;
see :mod:`legation_devstack.sustained` for how produced → counted is derived from it.

Prints the offered and achieved produce rates, mentions indexed (the index's own count)
and counted (the scorecard) against those produced, how long after the last batch the
count and the evaluator's consumer lag came back, produced → counted p50/p95/p99, each
process's CPU (share of a core, µs per mention) and resident memory (VmRSS after start-up
and at the end, VmHWM), the machine's load and its CPU used by others meanwhile: the
machine is shared, so read the figures with it. ``bench-memory`` is the same run with
defaults for the memory table (100,000 mentions).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as evaluator_grpc
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation_devstack import campaign_week
from legation_devstack.demo import CAMPAIGN_ID, ISSUE_ID, KEYWORDS, demo_campaign
from legation_devstack.processes import (
    cpu_seconds,
    free_port,
    load_average,
    machine_cpu_seconds,
    memory_kib,
    wait_until,
)
from legation_devstack.stack import Stack
from legation_devstack.sustained import (
    Point,
    cpu_shares,
    format_kib,
    hottest_frames,
    latencies,
    percentile,
    reached_at,
)

WEBHOOK_NAME = "bench"
# The webhook's documented signature (listener README, "Webhook and JSONL import"), as a
# platform sending to it computes it.
SIGNATURE_HEADER = "X-Legation-Signature"
INDEXER_GROUP = "legation.evaluator.indexer"
GOAL_P99_SECONDS = 2.0
GOAL_DRAIN_SECONDS = 30.0
SETTLE_SECONDS = 5.0  # after start-up, before the first memory reading


@dataclass
class Batch:
    """One signed webhook body and what became of it."""

    body: bytes
    size: int
    due: float = 0.0
    sent: float = math.nan
    acked: float = math.nan
    mentions: int = 0
    status: int = 0
    dropped: bool = False  # not sent: the webhook had fallen too far behind its schedule


@dataclass
class Readers:
    """The scorecard's readers during the run: the live page, a watcher and the sampler."""

    counted: list[Point] = field(default_factory=list)
    watcher_updates: int = 0
    page_reads: int = 0
    page_failures: int = 0
    page_seconds: list[float] = field(default_factory=list)
    sample_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, at: float, total: int) -> None:
        with self.lock:
            self.counted.append(Point(at, total))


def sign(secret: str, body: bytes) -> str:
    """The ``X-Legation-Signature`` of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _bodies(rate: float, seconds: float, batch_seconds: float, secret: str) -> list[Batch]:
    """The run's batches, signed in advance so the bench's own CPU stays off the schedule."""
    items = list(campaign_week.stream(datetime.now(UTC), rate, seconds))
    per_batch = max(1, round(rate * batch_seconds))
    run = secrets.token_hex(4)
    batches = []
    for start in range(0, len(items), per_batch):
        lines = [
            json.dumps(
                {
                    "id": f"bench-{run}-{start + n}",
                    "text": item.text,
                    "published_at": item.at.isoformat(),
                    "author": item.author,
                    "language": item.language,
                    "reach": item.followers,
                },
                ensure_ascii=False,
            )
            for n, item in enumerate(items[start : start + per_batch])
        ]
        body = "\n".join(lines).encode()
        batches.append(Batch(body, len(lines), due=start / rate))
    return batches


class Pusher:
    """Posts batches to the webhook from a few threads, one client each."""

    def __init__(self, url: str, secret: str, senders: int, give_up: float = math.inf) -> None:
        self.url = url
        self.secret = secret
        # A batch still unsent this long after its due time is dropped: a source that far
        # behind sheds load (and the run ends near its planned length).
        self.give_up = give_up
        self.started: float | None = None  # the schedule's start (None: no schedule yet)
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(senders, thread_name_prefix="webhook")

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = httpx.Client(timeout=120.0)
            self.local.client = client
        return client

    def push(self, batch: Batch) -> None:
        if self.started is not None and time.monotonic() > self.started + batch.due + self.give_up:
            batch.dropped = True
            return
        headers = {
            "Content-Type": "application/x-ndjson",
            SIGNATURE_HEADER: sign(self.secret, batch.body),
        }
        for attempt in range(5):  # a 503 (Kafka did not acknowledge) is worth sending again
            batch.sent = time.monotonic() if attempt == 0 else batch.sent
            response = self._client().post(self.url, content=batch.body, headers=headers)
            batch.status = response.status_code
            if response.status_code != 503:
                break
            time.sleep(0.5 * 2**attempt)
        batch.acked = time.monotonic()
        if batch.status == 200:
            batch.mentions = int(response.json()["mentions"])

    def submit(self, batch: Batch) -> Future[None]:
        return self.pool.submit(self.push, batch)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _every(interval: float, stop: threading.Event, work: Callable[[], None]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        work()
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def _lag(metrics_url: str) -> int | None:
    """The evaluator indexer's consumer lag, summed over partitions (None: not reported)."""
    text = httpx.get(metrics_url, timeout=10).text
    lags = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("legation_consumer_lag{") and f'group="{INDEXER_GROUP}"' in line
    ]
    return int(sum(lags)) if lags else None


def _indexed(opensearch_url: str, prefix: str = "legation-events-v1-mention") -> int:
    response = httpx.get(f"{opensearch_url}/{prefix}*/_count", timeout=60)
    response.raise_for_status()
    return int(response.json()["count"])


def _processes(stack: Stack) -> dict[str, int]:
    return dict(stack.pids())


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}


def _memory(pids: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {name: memory_kib(pid) or (0, 0) for name, pid in pids.items()}


def _start_readers(
    stack: Stack, readers: Readers, stop: threading.Event, sample_seconds: float
) -> list[threading.Thread]:
    """The live page's polling, a watcher stream and the count sampler, each in a thread."""
    assert stack.users is not None
    web = stack.ports["evaluator"].web
    page_url = f"http://127.0.0.1:{web}/api/campaigns/{CAMPAIGN_ID}"
    viewer = {"Authorization": f"Bearer {stack.users.token('viewer')}"}
    request = evaluator_pb.GetCampaignScorecardRequest(campaign_id=CAMPAIGN_ID)

    def page() -> None:  # what static/live.js does every LEGATION_WEB_REFRESH_SECONDS
        with httpx.Client(timeout=60.0, headers=viewer) as client:

            def read() -> None:
                started = time.monotonic()
                try:
                    ok = client.get(page_url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                readers.page_seconds.append(time.monotonic() - started)
                readers.page_reads += 1
                readers.page_failures += 0 if ok else 1

            _every(2.0, stop, read)

    def watch() -> None:
        with stack.channel("evaluator", user="viewer") as channel:
            stream = evaluator_grpc.EvaluatorServiceStub(channel).WatchCampaignScorecard(
                evaluator_pb.WatchCampaignScorecardRequest(
                    campaign_id=CAMPAIGN_ID, min_interval_seconds=1.0
                )
            )

            def cancel_at_stop() -> None:
                stop.wait()
                stream.cancel()  # type: ignore[no-untyped-call]

            stop_watch = threading.Thread(target=cancel_at_stop)
            stop_watch.start()
            try:
                for card in stream:
                    readers.watcher_updates += 1
                    readers.count(time.monotonic(), card.mentions)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED:
                    readers.errors.append(f"watcher: {error.code().name} {error.details()}")
            stop_watch.join()

    def sample() -> None:
        with stack.channel("evaluator") as channel:
            evaluator = evaluator_grpc.EvaluatorServiceStub(channel)

            def read() -> None:
                started = time.monotonic()
                try:
                    card = evaluator.GetCampaignScorecard(request, timeout=60)
                except grpc.RpcError as error:
                    readers.errors.append(f"sampler: {error.code().name}")
                    return
                done = time.monotonic()
                readers.sample_seconds.append(done - started)
                # Counted no later than the answer, no earlier than the request.
                readers.count(done, card.mentions)

            _every(sample_seconds, stop, read)

    threads = [
        threading.Thread(target=work, name=name, daemon=True)
        for name, work in (("live-page", page), ("watcher", watch), ("sampler", sample))
    ]
    for thread in threads:
        thread.start()
    return threads


def _setup(stack: Stack) -> None:
    with stack.channel("evaluator") as e_channel, stack.channel("listener") as l_channel:
        evaluator_grpc.EvaluatorServiceStub(e_channel).CreateCampaign(
            demo_campaign(datetime.now(UTC)), timeout=30
        )
        listener_grpc.ListenerServiceStub(l_channel).TrackIssue(
            listener_pb.TrackIssueRequest(
                issue_id=ISSUE_ID,
                name="Sustained load",
                keywords=KEYWORDS,
                feeds=[f"webhook:{WEBHOOK_NAME}"],
                campaign_ids=[CAMPAIGN_ID],
            ),
            timeout=30,
        )


def _counted_now(stack: Stack) -> int:
    with stack.channel("evaluator") as channel:
        card = evaluator_grpc.EvaluatorServiceStub(channel).GetCampaignScorecard(
            evaluator_pb.GetCampaignScorecardRequest(campaign_id=CAMPAIGN_ID), timeout=60
        )
    return int(card.mentions)


def _warm_up(stack: Stack, pusher: Pusher, timeout: float = 120.0) -> int:
    """One mention through the whole path (the listener learns the issue, the index
    creates the mention index); returns the count it left."""
    batch = Batch(
        json.dumps({"id": f"warm-up-{secrets.token_hex(4)}", "text": KEYWORDS[0]}).encode(), 1
    )

    def taken() -> bool:
        pusher.push(batch)
        return batch.status == 200 and batch.mentions == 1

    wait_until(taken, 60, "the webhook taking the warm-up mention (issue known)", 1.0)
    wait_until(lambda: _counted_now(stack) >= 1, timeout, "the warm-up mention counted", 0.5)
    return _counted_now(stack)


def _produce(pusher: Pusher, batches: list[Batch]) -> tuple[float, float]:
    """Submits each batch at its due time; returns (start, last answer) in monotonic time."""
    started = time.monotonic()
    pusher.started = started
    futures = []
    for batch in batches:
        time.sleep(max(0.0, started + batch.due - time.monotonic()))
        futures.append(pusher.submit(batch))
    for future in futures:
        future.result()
    return started, max((b.acked for b in batches if not b.dropped), default=started)


@dataclass
class Options:
    rate: float
    seconds: float
    batch_seconds: float
    senders: int
    sample_seconds: float
    drain: float
    give_up: float = 30.0
    profile: Path | None = None
    profiled: tuple[str, ...] = ("listener", "evaluator")
    # Settings every service of the run gets (an A/B of one setting in the same conditions).
    service_env: tuple[tuple[str, str], ...] = ()


def _start_profilers(
    pids: dict[str, int], options: Options
) -> list[tuple[str, Path, subprocess.Popen[bytes]]]:
    """py-spy sampling each profiled service (only samples holding the GIL: CPU, not
    waits) for the production's duration, into ``<profile>/<service>.txt`` (collapsed
    stacks)."""
    if options.profile is None:
        return []
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    options.profile.mkdir(parents=True, exist_ok=True)
    started = []
    for name in options.profiled:
        out = options.profile / f"{name}.txt"
        argv = [spy, "record", "--pid", str(pids[name]), "--duration", str(int(options.seconds))]
        argv += ["--format", "raw", "--gil", "--nonblocking", "--rate", "50", "-o", str(out)]
        started.append((name, out, subprocess.Popen(argv, stdout=subprocess.DEVNULL)))
    return started


def _print_profiles(profilers: list[tuple[str, Path, subprocess.Popen[bytes]]]) -> None:
    for name, out, process in profilers:
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if not out.exists():
            print(f"profile of {name}: py-spy wrote nothing (exit {process.returncode})")
            continue
        lines = out.read_text().splitlines()
        print(f"profile of {name} (GIL-holding samples, {out}): by own time")
        for frame, inclusive, own in hottest_frames(lines, top=12, by_own=True):
            print(f"  own {own:6.1%}  incl {inclusive:6.1%}  {frame[:110]}")
        print("  by inclusive time")
        for frame, inclusive, own in hottest_frames(lines, top=25):
            print(f"  incl {inclusive:6.1%}  own {own:6.1%}  {frame[:110]}")


def run(options: Options) -> int:
    """One sustained run on a fresh stack; prints its figures, returns 0 when every mention
    was produced, indexed and counted."""
    secret = secrets.token_urlsafe(32)
    webhook_port = free_port()
    batches = _bodies(options.rate, options.seconds, options.batch_seconds, secret)
    offered = sum(batch.size for batch in batches)
    with tempfile.TemporaryDirectory(prefix="legation-sustained-") as folder:
        stack = Stack(
            Path(folder),
            extra_env={
                "LEGATION_LISTENER_POLL_SECONDS": "3600",
                "LEGATION_LISTENER_WEBHOOK_SECRET": secret,
                "LEGATION_LISTENER_WEBHOOK_PORT": str(webhook_port),
                **dict(options.service_env),
            },
        )
        pusher = Pusher(
            f"http://127.0.0.1:{webhook_port}/webhooks/{WEBHOOK_NAME}",
            secret,
            options.senders,
            options.give_up,
        )
        stop = threading.Event()
        threads: list[threading.Thread] = []
        try:
            print("starting the stack ...", flush=True)
            stack.start()
            time.sleep(SETTLE_SECONDS)
            pids = _processes(stack)
            memory_at_start = _memory(pids)
            _setup(stack)
            base = _warm_up(stack, pusher)
            readers = Readers()
            threads = _start_readers(stack, readers, stop, options.sample_seconds)
            print(
                f"offering {offered:,} mentions at {options.rate:g}/s for {options.seconds:g} s"
                f" (batches of {batches[0].size} every {options.batch_seconds:g} s, "
                f"{options.senders} senders), live page + watcher + sampler reading ...",
                flush=True,
            )
            load_before = load_average()
            machine_before = machine_cpu_seconds()
            cpu_before = _cpu(pids)
            cpu_before["bench client"] = time.process_time()
            profilers = _start_profilers(pids, options)
            started, ended = _produce(pusher, batches)
            produced = sum(batch.mentions for batch in batches)
            expected = base + produced
            metrics_url = f"http://127.0.0.1:{stack.ports['evaluator'].metrics}/metrics"
            lag_zero_at = _drain(stack, readers, expected, metrics_url, options.drain)
            finished = time.monotonic()
            cpu_after = _cpu(pids)
            cpu_after["bench client"] = time.process_time()
            machine_after = machine_cpu_seconds()
            load_after = load_average()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            memory_at_end = _memory(pids)
            indexed = _indexed(stack.opensearch.url if stack.opensearch else "")
            _print_profiles(profilers)
        finally:
            stop.set()
            pusher.close()
            stack.stop()
    counted_points = sorted(readers.counted, key=lambda p: p.at)
    counted = max((p.total for p in counted_points), default=0)
    produced_curve = []
    total = base
    for batch in sorted(batches, key=lambda b: b.acked):
        total += batch.mentions
        produced_curve.append(Point(batch.acked, total))
    waits, missing = latencies(produced_curve, counted_points, already=base)
    all_counted_at = reached_at(counted_points, expected)
    wall = finished - started
    failed = [b for b in batches if b.status != 200 and not b.dropped]
    dropped = sum(b.size for b in batches if b.dropped)
    print()
    print(f"offered       {offered:,} mentions at {options.rate:,.0f}/s over {options.seconds:g} s")
    print(
        f"produced      {produced:,} mentions acknowledged in {ended - started:.1f} s: "
        f"{produced / (ended - started):,.0f}/s ({produced / (ended - started) / options.rate:.2f}"
        f" of offered); {len(failed)} batches refused; {dropped:,} mentions not sent (more than"
        f" {options.give_up:g} s behind their time)"
    )
    print(
        f"indexed       {indexed - base:,} of {produced:,} (index count, {base} warm-up excluded); "
        f"counted {counted - base:,} of {produced:,} (scorecard)"
    )
    drain = None if all_counted_at is None else max(0.0, all_counted_at - ended)
    lag_drain = None if lag_zero_at is None else max(0.0, lag_zero_at - ended)
    print(
        "drain         "
        + (f"counted all {drain:.1f} s after the last batch" if drain is not None else "never")
        + ", indexer lag 0 "
        + (f"{lag_drain:.1f} s after" if lag_drain is not None else "never")
        + f" (goal <= {GOAL_DRAIN_SECONDS:g} s)"
    )
    p50, p95, p99 = (percentile(waits, q) for q in (0.5, 0.95, 0.99))
    print(
        f"produced -> counted  p50 {p50:.2f} s  p95 {p95:.2f} s  p99 {p99:.2f} s "
        f"(goal p99 <= {GOAL_P99_SECONDS:g} s: {p99 / GOAL_P99_SECONDS:.2f} of it); "
        f"{missing:,} never counted; sampled every {options.sample_seconds:g} s"
    )
    print(
        f"readers       live page {readers.page_reads} reads ({readers.page_failures} failed, "
        f"p50 {percentile(readers.page_seconds, 0.5) * 1000:.0f} ms), watcher "
        f"{readers.watcher_updates} updates, sampler {len(readers.sample_seconds)} scorecards "
        f"(p50 {percentile(readers.sample_seconds, 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(readers.sample_seconds, 0.99) * 1000:.0f} ms)"
        + (f"; errors: {readers.errors[:3]}" if readers.errors else "")
    )
    ours = 0.0
    print(f"CPU over {wall:.0f} s (production and drain), share of one core, µs per mention:")
    for name, share in cpu_shares(cpu_before, cpu_after, wall, produced).items():
        ours += share.seconds
        per_event = f"{share.per_event_us:,.0f}" if share.per_event_us is not None else "-"
        print(f"  {name:<13} {share.share_of_core:6.1%}  {per_event:>7} µs")
    busy = machine_after[0] - machine_before[0]
    print(
        f"machine       {busy / wall:.2f} of its cores busy ({busy / wall - ours / wall:.2f} by"
        f" others); load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end"
    )
    print("resident memory (VmRSS after start-up -> at the end, VmHWM):")
    for name in pids:
        start_rss = memory_at_start[name][0]
        end_rss, hwm = memory_at_end[name]
        print(
            f"  {name:<13} {format_kib(start_rss):>12} -> {format_kib(end_rss):>12}  "
            f"peak {format_kib(hwm):>12}"
        )
    complete = produced == offered and indexed - base >= produced and counted - base >= produced
    return 0 if complete else 1


def _drain(
    stack: Stack, readers: Readers, expected: int, metrics_url: str, drain: float
) -> float | None:
    """Waits until the scorecard counted ``expected`` and the indexer's lag is 0 (or
    ``drain`` seconds); returns when the lag was first seen at 0."""
    deadline = time.monotonic() + drain
    # The lag gauge is set once a second: a reading from before the last batch is no answer.
    time.sleep(1.0)
    lag_zero_at = None
    while time.monotonic() < deadline:
        with readers.lock:
            counted = max((p.total for p in readers.counted), default=0)
        if lag_zero_at is None:
            try:
                if _lag(metrics_url) == 0:
                    lag_zero_at = time.monotonic()
            except httpx.HTTPError:
                pass
        if counted >= expected and lag_zero_at is not None:
            break
        time.sleep(0.2)
    return lag_zero_at


def _parser(
    prog: str, rate: float, seconds: float, give_up: float = 30.0
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--rate", type=float, default=rate, help="mentions offered a second")
    parser.add_argument("--seconds", type=float, default=seconds, help="how long to offer them")
    parser.add_argument("--batch-seconds", type=float, default=0.1, help="one batch this often")
    parser.add_argument("--senders", type=int, default=4, help="webhook requests at once")
    parser.add_argument(
        "--sample-seconds", type=float, default=0.2, help="how often the count is read"
    )
    parser.add_argument("--drain", type=float, default=300.0, help="longest wait after the end")
    parser.add_argument(
        "--give-up",
        type=float,
        default=give_up,
        help="drop a batch not sent this many seconds after its time (the run ends near its"
        " planned length even when the pipeline cannot keep the rate)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the listener and the evaluator with py-spy while producing, into this folder",
    )
    parser.add_argument(
        "--service-env",
        type=_setting,
        action="append",
        default=[],
        metavar="LEGATION_NAME=VALUE",
        help="a setting every service of the run gets (repeatable), e.g. "
        "LEGATION_EVALUATOR_AGGREGATES=false",
    )
    return parser


def _setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.startswith("LEGATION_"):
        raise argparse.ArgumentTypeError(f"{text!r} is not LEGATION_NAME=VALUE")
    return name, value


def _options(args: argparse.Namespace) -> Options:
    return Options(
        args.rate,
        args.seconds,
        args.batch_seconds,
        args.senders,
        args.sample_seconds,
        args.drain,
        args.give_up,
        args.profile,
        service_env=tuple(args.service_env),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m legation_devstack bench-sustained [--rate R] [--seconds S] ...``"""
    args = _parser("python -m legation_devstack bench-sustained", 1000.0, 300.0).parse_args(argv)
    return run(_options(args))


def main_memory(argv: list[str] | None = None) -> int:
    """``python -m legation_devstack bench-memory``: the same run with 100,000 mentions, all
    of them sent however long the pipeline takes (no give-up)."""
    parser = _parser("python -m legation_devstack bench-memory", 1000.0, 100.0, math.inf)
    args = parser.parse_args(argv)
    return run(_options(args))
