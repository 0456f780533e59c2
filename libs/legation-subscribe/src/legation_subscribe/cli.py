"""``legation-subscribe``: a department's subscription from the command line.

    legation-subscribe --bootstrap HOST:PORT --group legation.dept.research.counts \\
        --topic legation.listen.mentions-pseudonymised.v1 --from 2026-11-20T00:00Z \\
        --format jsonl --output mentions.jsonl

Secrets come from the environment, never the command line: ``LEGATION_SUBSCRIBE_SASL_PASSWORD``
and ``LEGATION_SUBSCRIBE_WEBHOOK_SECRET``. SIGTERM or Ctrl-C finishes the batch in hand,
commits and exits 0. Exit 2 for a bad argument (the message names it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any

from legation_subscribe.sinks import CsvSink, JsonLinesSink, Sink, WebhookSink
from legation_subscribe.subscriber import Connection, Start, Subscriber

PASSWORD_ENV = "LEGATION_SUBSCRIBE_SASL_PASSWORD"
WEBHOOK_SECRET_ENV = "LEGATION_SUBSCRIBE_WEBHOOK_SECRET"
FORMATS = ("jsonl", "csv", "webhook")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="legation-subscribe",
        description="Subscribe to Legation's event streams with your department's access.",
    )
    p.add_argument("--bootstrap", required=True, help="brokers, host:port[,host:port]")
    p.add_argument(
        "--group",
        required=True,
        help="your consumer group (it must start with your department's prefix)",
    )
    p.add_argument(
        "--topic", action="append", required=True, dest="topics", help="a topic (repeatable)"
    )
    p.add_argument(
        "--from",
        dest="start",
        default="end",
        help="where a new group starts: beginning, end (default) or an ISO 8601 time",
    )
    p.add_argument(
        "--replay", action="store_true", help="apply --from again over the group's commits"
    )
    p.add_argument("--format", choices=FORMATS, default="jsonl")
    p.add_argument("--output", default="-", help="file to append to (jsonl, csv); - for stdout")
    p.add_argument("--webhook-url", help="where --format webhook POSTs each event")
    p.add_argument(
        "--dead-letters",
        default="dead-letters.jsonl",
        help="file the records that cannot be used are appended to (default %(default)s)",
    )
    p.add_argument("--until-idle", type=float, help="stop after this many seconds without events")
    p.add_argument("--max-events", type=int, help="stop after delivering this many events")
    p.add_argument("--max-batch", type=int, default=500, help="records per batch (1-10000)")
    p.add_argument(
        "--security-protocol",
        default="PLAINTEXT",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    )
    p.add_argument("--sasl-mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
    p.add_argument("--sasl-username")
    p.add_argument("--ssl-cafile")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _open(path: str) -> tuple[IO[str], bool]:
    """The output stream and whether it is new (for a CSV header)."""
    if path == "-":
        return sys.stdout, False
    target = Path(path)
    new = not target.exists() or target.stat().st_size == 0
    return target.open("a", encoding="utf-8", newline=""), new


def build(args: argparse.Namespace, stop: threading.Event, letters: IO[str]) -> Subscriber:
    """The subscriber the arguments describe; raises ValueError naming a bad argument."""
    try:
        start = Start.parse(args.start)
    except ValueError as error:
        raise ValueError(f"--from: {error}") from None
    if not 1 <= args.max_batch <= 10_000:
        raise ValueError("--max-batch must be between 1 and 10000")
    sink: Sink
    if args.format == "webhook":
        secret = os.environ.get(WEBHOOK_SECRET_ENV, "")
        if not args.webhook_url:
            raise ValueError("--webhook-url is required with --format webhook")
        if not secret:
            raise ValueError(f"{WEBHOOK_SECRET_ENV} must hold the webhook's signing secret")
        try:
            sink = WebhookSink(args.webhook_url, secret.encode())
        except ValueError as error:
            raise ValueError(f"--webhook-url / {WEBHOOK_SECRET_ENV}: {error}") from None
    else:
        stream, new = _open(args.output)
        sync = stream is not sys.stdout
        sink = JsonLinesSink(stream, sync) if args.format == "jsonl" else CsvSink(stream, sync, new)
    if args.sasl_mechanism and not os.environ.get(PASSWORD_ENV):
        raise ValueError(f"--sasl-mechanism needs the password in {PASSWORD_ENV}")
    connection = Connection(
        bootstrap_servers=args.bootstrap,
        security_protocol=args.security_protocol,
        sasl_mechanism=args.sasl_mechanism,
        sasl_username=args.sasl_username,
        sasl_password=os.environ.get(PASSWORD_ENV),
        ssl_cafile=args.ssl_cafile,
    )
    return Subscriber(
        connection,
        group=args.group,
        topics=args.topics,
        sink=sink,
        start=start,
        replay=args.replay,
        dead_letters=letters,
        max_batch=args.max_batch,
        stop=stop,
    )


def main(argv: list[str] | None = None) -> int:
    """Runs a subscription until SIGTERM, Ctrl-C, --until-idle or --max-events."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    stop = threading.Event()
    with Path(args.dead_letters).open("a", encoding="utf-8") as letters:
        try:
            subscriber = build(args, stop, letters)
        except ValueError as error:
            print(f"legation-subscribe: {error}", file=sys.stderr)
            return 2
        return _run(args, subscriber, stop)


def _run(args: argparse.Namespace, subscriber: Subscriber, stop: threading.Event) -> int:

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    counts = subscriber.run(until_idle_seconds=args.until_idle, max_events=args.max_events)
    summary = {
        "delivered": counts.delivered,
        "dead_letters": counts.dead_letters,
        "retries": counts.retries,
        "by_topic": counts.by_topic,
    }
    print(json.dumps(summary, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
