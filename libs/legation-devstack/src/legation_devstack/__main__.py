"""``python -m legation_devstack run|stop|reset|load|bench|bench-auth|bench-latency|
bench-subscribe|bench-console|restarts``: the local stack from the Makefile."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from legation_devstack.demo import format_scorecard, metric_units
from legation_devstack.localdata import DEFAULT_DATA_DIR, reset_data
from legation_devstack.processes import start_time
from legation_devstack.stack import NOTIFIER, SERVICES, Stack
from legation_devstack.week_demo import LocalRun

STATE_DIR = Path(".legation")
PID_FILE = STATE_DIR / "stack.json"


def run(once: bool, data_dir: Path = DEFAULT_DATA_DIR, fresh: bool = False) -> int:
    """Starts the stack on ``data_dir`` (kept between runs; ``fresh`` empties it first),
    runs the demo (a no-op on data where it already ran) and prints its scorecard."""
    STATE_DIR.mkdir(exist_ok=True)
    if PID_FILE.exists():
        print(
            f"a stack may already be running ({PID_FILE}); run `make stop` first", file=sys.stderr
        )
        return 1
    if fresh and reset_data(data_dir):
        print(f"emptied {data_dir}")
    print(f"data: {data_dir} (kept between runs; `make reset` empties it)", flush=True)
    local = LocalRun(data_dir)
    stack = local.stack
    # The listener derives the departments' pseudonymised mentions (deploy/departments.yaml).
    local.extra_env["LEGATION_PSEUDONYM_KEY"] = stack.pseudonym_key
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    local.__enter__()
    try:
        print("starting the Kafka and OpenSearch stand-ins and creating topics ...", flush=True)
        stack.start_infrastructure()
        _record(stack)
        print("starting evaluator, engager, publisher, listener ...", flush=True)
        for name in SERVICES:
            stack.start_service(name)
            _record(stack)
        print("starting the notifier (mail, chat and webhook servers on 127.0.0.1) ...", flush=True)
        stack.start_service(NOTIFIER)
        _record(stack)
        print("starting the console and its local identity provider ...", flush=True)
        stack.start_console()
        _record(stack)
        _print_endpoints(stack)
        print(
            "running the demo campaign (a week, replayed) ..."
            if not local.record.replayed
            else "the demo campaign is already in the data: reading its scorecard ...",
            flush=True,
        )
        print(format_scorecard(local.demo(), metric_units(stack)), flush=True)
        if not once:
            print("\nthe stack keeps running: Ctrl-C (or `make stop`) stops it", flush=True)
            stop.wait()
    finally:
        print("stopping ...", flush=True)
        codes = stack.stop()
        local.__exit__()
        PID_FILE.unlink(missing_ok=True)
        print("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
        print(f"logs: {stack.log_dir}")
    return 0 if all(code == 0 for code in codes.values()) else 1


def _print_endpoints(stack: Stack) -> None:
    assert stack.kafka is not None and stack.opensearch is not None
    print(f"  kafka       {stack.kafka.bootstrap_servers}")
    print(f"  opensearch  {stack.opensearch.url}")
    for name, ports in stack.ports.items():
        print(
            f"  {name:<11} gRPC 127.0.0.1:{ports.grpc}  metrics http://127.0.0.1:{ports.metrics}/metrics"
        )
        if ports.web is not None:
            print(f"  {'':<11} live scorecard page http://127.0.0.1:{ports.web}/")
    if stack.console is not None:
        print(f"  console     {stack.console.url}/  (sign in as a demo person; local identity")
        print(
            f"  {'':<11} provider {stack.console.issuer}, metrics "
            f"http://127.0.0.1:{stack.console.metrics}/metrics)"
        )
    if stack.users is not None:
        print(
            f"  gRPC calls need 'authorization: Bearer <token>'; the demo users' tokens are in "
            f"{stack.tokens_file}"
        )


def _record(stack: Stack) -> None:
    """Writes what ``stop`` needs: each process's id and start time."""
    pids = {"supervisor": os.getpid(), **stack.pids()}
    PID_FILE.write_text(
        json.dumps({name: {"pid": pid, "started": start_time(pid)} for name, pid in pids.items()})
    )


def stop(pid_file: Path = PID_FILE) -> int:
    """Asks the running supervisor to stop everything; if it is gone, stops what it started,
    by the process ids it recorded. A recorded id whose process started at another time
    belongs to someone else now (the id was reused) and is left alone."""
    if not pid_file.exists():
        print("no stack is running")
        return 0
    recorded = json.loads(pid_file.read_text())
    supervisor = recorded.pop("supervisor")
    if _still_ours(supervisor):
        os.kill(supervisor["pid"], signal.SIGTERM)
        print(f"asked the stack (pid {supervisor['pid']}) to stop")
        return 0
    for name, process in recorded.items():
        if _still_ours(process):
            os.kill(process["pid"], signal.SIGTERM)
            print(f"stopped {name} (pid {process['pid']})")
    pid_file.unlink(missing_ok=True)
    return 0


def reset(data_dir: Path = DEFAULT_DATA_DIR, pid_file: Path = PID_FILE) -> int:
    """Empties the data folder, unless a stack is running on it."""
    if pid_file.exists() and _still_ours(json.loads(pid_file.read_text())["supervisor"]):
        print("a stack is running: `make stop` first", file=sys.stderr)
        return 1
    pid_file.unlink(missing_ok=True)
    print(f"emptied {data_dir}" if reset_data(data_dir) else f"{data_dir} was already empty")
    return 0


def _still_ours(process: dict[str, Any]) -> bool:
    pid = int(process["pid"])
    if process.get("started") is None:  # recorded where there is no /proc: the id alone
        return _alive(pid)
    return bool(start_time(pid) == process["started"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legation_devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="start the stack and the demo campaign")
    run_parser.add_argument("--once", action="store_true", help="stop after the demo scorecard")
    run_parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where the stack keeps its data"
    )
    run_parser.add_argument("--fresh", action="store_true", help="empty the data folder first")
    commands.add_parser("stop", help="stop a running stack")
    reset_parser = commands.add_parser("reset", help="empty the data folder (a clean demo)")
    reset_parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    commands.add_parser("bench", help="measure the consume loop against raw kafka-python")
    commands.add_parser("bench-auth", help="measure what authentication costs a gRPC call")
    commands.add_parser(
        "bench-subscribe", help="a department's subscriber against the raw client's consume rate"
    )
    commands.add_parser(
        "bench-latency",
        help="time a feed item to its indexed mention and conversation (--help: its options)",
        add_help=False,
    )
    commands.add_parser(
        "load", help="generated mentions at a chosen rate (--help: its options)", add_help=False
    )
    commands.add_parser(
        "restarts",
        help="measure how a consumer comes back from SIGKILL restarts (--help: its options)",
        add_help=False,
    )
    commands.add_parser(
        "bench-console",
        help="page render time of the console against its gRPC calls (--help: its options)",
        add_help=False,
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "load":
        from legation_devstack.load import main as load

        return load(rest)
    if args.command == "restarts":
        from legation_devstack.restarts import main as restarts

        return restarts(rest)
    if args.command == "bench-latency":
        from legation_devstack.bench_latency import main as bench_latency

        return bench_latency(rest)
    if args.command == "bench-console":
        from legation_devstack.bench_console import main as bench_console

        return bench_console(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        return run(args.once, args.data_dir, args.fresh)
    if args.command == "stop":
        return stop()
    if args.command == "reset":
        return reset(args.data_dir)
    if args.command == "bench-auth":
        from legation_devstack.bench_auth import main as bench_auth

        return bench_auth()
    if args.command == "bench-subscribe":
        from legation_devstack.bench_subscribe import main as bench_subscribe

        return bench_subscribe()
    from legation_devstack.bench import main as bench

    return bench()


if __name__ == "__main__":
    sys.exit(main())
