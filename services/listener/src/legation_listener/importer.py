"""``legation-listener-import``: sends a JSONL file of items to the listener's webhook.

Each line is one item (see ``adapters/connectors/webhook.py``); lines go in batches, each
signed with ``LEGATION_LISTENER_WEBHOOK_SECRET``. Malformed lines are reported with their
line number and skipped; a batch the listener could not deliver (503) is retried. Exit
code 0 when every line was taken, 1 when some were malformed or a batch failed, 2 for a
bad invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx

from legation_listener.adapters.connectors.webhook import SIGNATURE_HEADER, sign

BATCH_LINES = 500


def batches(path: Path, size: int) -> list[tuple[int, bytes]]:
    """(first line number, body) per batch of ``size`` lines; blank lines keep their
    numbers so reports point at the file's own lines."""
    lines = path.read_bytes().splitlines()
    return [
        (start + 1, b"\n".join(lines[start : start + size])) for start in range(0, len(lines), size)
    ]


def _renumber(problem: str, first_line: int) -> str:
    where, _, rest = problem.partition(":")
    if where.startswith("line "):
        return f"line {int(where.split()[1]) + first_line - 1}:{rest}"
    return problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="legation-listener-import",
        description="Sends a JSONL file of items (one per line) to the listener's webhook, in"
        " signed batches (secret: LEGATION_LISTENER_WEBHOOK_SECRET).",
    )
    parser.add_argument(
        "source", help="the webhook name: items go to issues watching webhook:<name>"
    )
    parser.add_argument("file", type=Path, help="a JSONL file, one item per line")
    parser.add_argument(
        "--url",
        default=os.environ.get("LEGATION_LISTENER_WEBHOOK_URL", "http://127.0.0.1:9471"),
        help="the listener's webhook base URL (LEGATION_LISTENER_WEBHOOK_URL)",
    )
    parser.add_argument("--batch-lines", type=int, default=BATCH_LINES)
    parser.add_argument("--retries", type=int, default=3)
    args = parser.parse_args(argv)
    secret = os.environ.get("LEGATION_LISTENER_WEBHOOK_SECRET", "")
    if not secret:
        print("LEGATION_LISTENER_WEBHOOK_SECRET is not set", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    endpoint = f"{args.url.rstrip('/')}/webhooks/{args.source}"
    taken = mentions = 0
    problems: list[str] = []
    failed = False
    with httpx.Client(timeout=60.0) as client:
        for first_line, body in batches(args.file, max(1, args.batch_lines)):
            headers = {
                "Content-Type": "application/x-ndjson",
                SIGNATURE_HEADER: sign(secret, body),
            }
            for attempt in range(args.retries + 1):
                response = client.post(endpoint, content=body, headers=headers)
                if response.status_code != 503 or attempt == args.retries:
                    break
                time.sleep(min(2.0**attempt, 30.0))
            answer = response.json() if response.content else {}
            reported = [_renumber(p, first_line) for p in answer.get("malformed", [])]
            problems.extend(reported)
            if response.status_code == 200:
                taken += int(answer.get("items", 0))
                mentions += int(answer.get("mentions", 0))
            elif response.status_code != 400 or not reported:
                failed = True
                print(
                    f"lines from {first_line}: HTTP {response.status_code}"
                    f" {answer.get('error', response.text)}",
                    file=sys.stderr,
                )
    for problem in problems:
        print(problem, file=sys.stderr)
    print(json.dumps({"items": taken, "mentions": mentions, "malformed": len(problems)}))
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
