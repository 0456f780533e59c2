"""`make run`, stop, `make run` again: the same campaigns, issues, posts and counts.

The local stack on a temporary data folder runs a small week of the demo campaign, is
stopped with SIGTERM (by process id, as Ctrl-C does), and starts again on the same folder:
the broker's data is on disk, the index stand-in starts empty and the evaluator rebuilds it
from the log, and the demo finds its work done and adds nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as evaluator_grpc
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation.publisher.v1 import publisher_service_pb2_grpc as publisher_grpc
from legation_devstack.campaign_week import OUR_POSTS
from legation_devstack.demo import CAMPAIGN_ID
from legation_devstack.processes import free_port
from legation_devstack.week_demo import LocalRun, WeekSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SMALL_WEEK = WeekSettings(mentions=120, steps=4)


def _what_the_stack_knows(local: LocalRun) -> tuple[object, ...]:
    with (
        local.stack.channel("evaluator") as evaluator_channel,
        local.stack.channel("listener") as listener_channel,
        local.stack.channel("publisher") as publisher_channel,
    ):
        campaigns = evaluator_grpc.EvaluatorServiceStub(evaluator_channel).ListCampaigns(
            evaluator_pb.ListCampaignsRequest(), timeout=30
        )
        issues = listener_grpc.ListenerServiceStub(listener_channel).ListIssues(
            listener_pb.ListIssuesRequest(), timeout=30
        )
        posts = publisher_grpc.PublisherServiceStub(publisher_channel).ListPosts(
            publisher_pb.ListPostsRequest(campaign_id=CAMPAIGN_ID), timeout=30
        )
    return (
        sorted(c.SerializeToString(deterministic=True) for c in campaigns.campaigns),
        sorted((i.issue_id, tuple(i.feeds)) for i in issues.issues),
        sorted((p.post_id, p.status) for p in posts.posts),
    )


def _counts(card: evaluator_pb.Scorecard) -> dict[str, object]:
    return {
        "mentions": card.mentions,
        "publications": card.publications,
        "conversations_opened": card.conversations_opened,
        "replies": card.replies,
        "feedback": card.feedback,
        "by_service": {k: v for k, v in card.events_by_service.items() if k != "evaluator"},
    }


def test_a_restarted_local_stack_has_the_same_data_and_no_duplicates(tmp_path: Path) -> None:
    ports = (free_port(), free_port(), free_port(), free_port())

    def start() -> LocalRun:
        local = LocalRun(tmp_path / "data", ports, fixed_ports=False, settings=SMALL_WEEK)
        local.__enter__()
        local.stack.start()
        return local

    first = start()
    try:
        card = first.demo()
        known = _what_the_stack_knows(first)
    finally:
        codes = first.stack.stop()  # SIGTERM by pid, as Ctrl-C does
        first.__exit__()
    assert all(code == 0 for code in codes.values()), codes
    assert card.mentions >= SMALL_WEEK.mentions * 0.9  # near-duplicates may merge
    assert card.publications >= len(OUR_POSTS)
    assert card.conversations_opened > card.replies > 0

    second = start()
    try:
        assert second.record.replayed
        again = second.demo()
        assert _what_the_stack_knows(second) == known
    finally:
        second.stack.stop()
        second.__exit__()
    # The listener publishes a community and a theme report of every active issue when it
    # starts (then hourly): the second start adds that one pair, a new report and no copy.
    # Everything else, the listener's mentions and alerts included, is exactly as before.
    first_counts, second_counts = _counts(card), _counts(again)
    first_by_service = first_counts.pop("by_service")
    second_by_service = second_counts.pop("by_service")
    assert second_counts == first_counts
    assert isinstance(first_by_service, dict) and isinstance(second_by_service, dict)
    assert second_by_service.pop("listener") == first_by_service.pop("listener") + 2
    assert second_by_service == first_by_service
