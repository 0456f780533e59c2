"""``make load RATE=… SECONDS=…``: the demo's generator as load on a fresh local stack.

Starts the stack on a temporary folder (free ports, nothing shared with ``make run``),
tracks the demo issue over a replay feed, then for ``SECONDS`` puts ``RATE`` generated items
a second on the feed and asks the listener to poll once a second. Prints the rate achieved
(items the feed served a second), the rate indexed, and the lag: how long after the last
item was produced the campaign's scorecard counted every mention.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as evaluator_grpc
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation_devstack import campaign_week
from legation_devstack.demo import CAMPAIGN_ID, ISSUE_ID, KEYWORDS, demo_campaign
from legation_devstack.source_servers import FeedServer
from legation_devstack.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legation_devstack load")
    parser.add_argument("--rate", type=float, default=200.0, help="mentions per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to produce")
    parser.add_argument("--drain", type=float, default=180.0, help="longest wait for the index")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="legation-load-") as folder:
        stack = Stack(Path(folder), extra_env={"LEGATION_LISTENER_POLL_SECONDS": "3600"})
        feed = FeedServer("Load").start()
        try:
            stack.start()
            return _load(stack, feed, args.rate, args.seconds, args.drain)
        finally:
            stack.stop()
            feed.stop()


def _load(stack: Stack, feed: FeedServer, rate: float, seconds: float, drain: float) -> int:
    with stack.channel("evaluator") as e_channel, stack.channel("listener") as l_channel:
        evaluator = evaluator_grpc.EvaluatorServiceStub(e_channel)
        listener = listener_grpc.ListenerServiceStub(l_channel)
        evaluator.CreateCampaign(demo_campaign(datetime.now(UTC)), timeout=30)
        listener.TrackIssue(
            listener_pb.TrackIssueRequest(
                issue_id=ISSUE_ID,
                name="Load",
                keywords=KEYWORDS,
                feeds=[feed.feed_url],
                campaign_ids=[CAMPAIGN_ID],
            ),
            timeout=30,
        )
        poll = listener_pb.PollNowRequest(issue_id=ISSUE_ID)
        listener.PollNow(poll, timeout=60)
        items = list(campaign_week.stream(datetime.now(UTC), rate, seconds))
        print(f"producing {len(items)} mentions at {rate:g}/s for {seconds:g} s ...", flush=True)
        started = time.monotonic()
        for second in range(int(seconds) + 1):
            due = items[int(second * rate) : int((second + 1) * rate)]
            for item in due:
                feed.publish(item.text[:60], item.text, published_at=item.at, author=item.author)
            listener.PollNow(poll, timeout=120)
            time.sleep(max(0.0, started + second + 1 - time.monotonic()))
        produced_for = time.monotonic() - started
        request = evaluator_pb.GetCampaignScorecardRequest(campaign_id=CAMPAIGN_ID)
        counted = 0
        while time.monotonic() - started - produced_for < drain:
            counted = evaluator.GetCampaignScorecard(request, timeout=60).mentions
            if counted >= len(items):
                break
            time.sleep(0.5)
        lag = time.monotonic() - started - produced_for
    print(f"achieved  {len(items) / produced_for:,.0f} mentions/s over {produced_for:.1f} s")
    print(f"indexed   {counted:,} of {len(items):,} ({counted / (produced_for + lag):,.0f}/s)")
    print(f"lag       {lag:.1f} s after the last mention until every one was counted")
    return 0 if counted >= len(items) else 1
