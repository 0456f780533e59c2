"""The demo campaign: one campaign through Listen → Publish → Engage → Evaluate.

Every step goes through a service's public gRPC API, exactly as a person or a tool would
drive the platform; the events between services travel over the broker.

Running it again on the same data changes nothing: the campaign is built from a fixed
``anchor`` (so the evaluator sees the same version, one event id), the issue is tracked only
when the listener does not know it, the post and the feedback carry request ids, and the
reply is sent only when no conversation of the campaign has one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple

import grpc

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.engager.v1 import engager_service_pb2_grpc as engager_grpc
from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as evaluator_grpc
from legation.events.v1 import evaluate_pb2, publish_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation.publisher.v1 import publisher_service_pb2_grpc as publisher_grpc
from legation_core.units import format_duration, format_value
from legation_devstack.processes import wait_until
from legation_devstack.stack import Stack

CAMPAIGN_ID = "plastics-2026"
ISSUE_ID = "plastics-treaty"
KEYWORDS = [
    "plastics treaty",
    "plastic pollution",
    "traité sur les plastiques",
    "tratado sobre plásticos",
]


FIXTURES_FROM = datetime(2026, 11, 15, tzinfo=UTC)


def fixture_feeds() -> list[str]:
    """The demo's listening sources: an RSS 2.0 news feed and an Atom forum feed."""
    directory = Path(str(files("legation_devstack") / "fixtures"))
    return [str(directory / "world-news.rss"), str(directory / "policy-forum.atom")]


def demo_campaign(now: datetime) -> evaluate_pb2.Campaign:
    objective = evaluate_pb2.Objective
    campaign = evaluate_pb2.Campaign(
        campaign_id=CAMPAIGN_ID,
        name="Plastics treaty 2026",
        description="Win support for a binding cap on plastic production",
        issue_ids=[ISSUE_ID],
        channels=["site-atom"],
        languages=["en", "fr", "es"],
        countries=["KE", "FR", "MX"],
        objectives=[
            objective(
                objective_id="answer-questions",
                description="Answer the public's questions on the treaty",
                metric="replies",
                comparison=objective.COMPARISON_AT_LEAST,
                target=3,
                level=objective.LEVEL_OUTPUT,
            ),
            objective(
                objective_id="fast-answers",
                description="Median first response within four hours",
                metric="median_response_seconds",
                comparison=objective.COMPARISON_AT_MOST,
                target=4 * 3600,
                level=objective.LEVEL_OUTTAKE,
            ),
            objective(
                objective_id="conversation",
                description="Be present where the treaty is discussed",
                metric="mentions",
                comparison=objective.COMPARISON_AT_LEAST,
                target=5,
                level=objective.LEVEL_OUTCOME,
            ),
            objective(
                objective_id="voice",
                description="Share of voice on the treaty from 10 % to 20 %",
                metric="share_of_voice",
                comparison=objective.COMPARISON_AT_LEAST,
                target=20,
                from_value=10,
                level=objective.LEVEL_OUTTAKE,
            ),
        ],
    )
    # The campaign's period holds the fixture feeds' items (dated from 2026-11-20), which
    # its KPIs and objectives count.
    campaign.starts_at.FromDatetime(min(now - timedelta(days=7), FIXTURES_FROM))
    campaign.ends_at.FromDatetime(now + timedelta(days=30))
    for item in campaign.objectives:
        item.deadline.FromDatetime(now + timedelta(days=30))
    return campaign


class ServiceStubs(NamedTuple):
    """A client of each step's gRPC API."""

    evaluator: evaluator_grpc.EvaluatorServiceStub
    listener: listener_grpc.ListenerServiceStub
    publisher: publisher_grpc.PublisherServiceStub
    engager: engager_grpc.EngagerServiceStub


@contextmanager
def service_stubs(stack: Stack) -> Iterator[ServiceStubs]:
    """Clients of the four steps' APIs, as the stack's administrator; their channels close
    on leaving."""
    with (
        stack.channel("evaluator") as evaluator,
        stack.channel("listener") as listener,
        stack.channel("publisher") as publisher,
        stack.channel("engager") as engager,
    ):
        yield ServiceStubs(
            evaluator_grpc.EvaluatorServiceStub(evaluator),
            listener_grpc.ListenerServiceStub(listener),
            publisher_grpc.PublisherServiceStub(publisher),
            engager_grpc.EngagerServiceStub(engager),
        )


def track_demo_issue(
    listener: listener_grpc.ListenerServiceStub, feeds: Sequence[str], languages: Sequence[str]
) -> None:
    """Tracks the demo's issue (its keywords, for the demo campaign) on ``feeds``, unless
    the listener knows it already: a run over the data of an earlier one."""
    known = listener.ListIssues(listener_pb.ListIssuesRequest(), timeout=30).issues
    if ISSUE_ID in {issue.issue_id for issue in known}:
        return
    listener.TrackIssue(
        listener_pb.TrackIssueRequest(
            issue_id=ISSUE_ID,
            name="Global plastics treaty",
            keywords=KEYWORDS,
            feeds=feeds,
            campaign_ids=[CAMPAIGN_ID],
            languages=languages,
        ),
        timeout=30,
    )


def run_demo(
    stack: Stack, timeout: float = 60.0, anchor: datetime | None = None
) -> evaluator_pb.Scorecard:
    """Drives the demo campaign through all four services; returns the final scorecard.

    ``anchor`` is the moment the campaign's period is set from (default: now); give the
    same one on every run over the same data so that a second run is a no-op."""
    with service_stubs(stack) as (evaluator, listener, publisher, engager):
        evaluator.CreateCampaign(demo_campaign(anchor or datetime.now(UTC)), timeout=30)
        track_demo_issue(listener, fixture_feeds(), ["en", "fr", "es"])
        listener.PollNow(listener_pb.PollNowRequest(issue_id=ISSUE_ID), timeout=60)
        _publish_post(publisher, stack, timeout)

        def inbox() -> list[engager_pb.Conversation]:
            request = engager_pb.ListConversationsRequest(campaign_id=CAMPAIGN_ID)
            return list(engager.ListConversations(request, timeout=10).conversations)

        wait_until(lambda: len(inbox()) > 0, timeout, "a conversation in the inbox", 0.3)
        conversations = inbox()
        if not any(conversation.replies for conversation in conversations):
            engager.ReplyToConversation(
                engager_pb.ReplyToConversationRequest(
                    request_id="demo-reply-1",
                    conversation_id=conversations[0].conversation_id,
                    officer="desk.officer@ministry.example",
                    text="Thank you for asking: small producers get a five-year transition "
                    "and support for alternatives.",
                ),
                timeout=30,
            )
        _submit_feedback(evaluator)
        return settled_scorecard(evaluator, timeout)


def _publish_post(
    publisher: publisher_grpc.PublisherServiceStub, stack: Stack, timeout: float
) -> None:
    publish_post(
        publisher,
        stack,
        publisher_pb.CreatePostRequest(
            request_id="demo-post-1",
            campaign_id=CAMPAIGN_ID,
            issue_id=ISSUE_ID,
            language="en",
            content=publisher_pb.VariantContent(
                title="Our position on the plastics treaty",
                body="We support a binding global cap on plastic production and will "
                "answer your questions on what it means for producers and recyclers.",
                author="Press office",
            ),
        ),
        timeout,
    )


def publish_post(
    publisher: publisher_grpc.PublisherServiceStub,
    stack: Stack,
    request: publisher_pb.CreatePostRequest,
    timeout: float,
) -> None:
    """Drafts a post, takes it through both approval steps (the campaign owner, then
    a second approver: one person passes one step) and schedules it for now; returns once
    the scheduler has published it. A post its request id already published is left alone."""
    post = publisher.CreatePost(request, timeout=30).post
    if post.status == publish_pb2.POST_STATUS_PUBLISHED:  # a run before this one did it
        return
    review = publisher_pb.ReviewRequest(post_id=post.post_id)
    publisher.SubmitForReview(review, timeout=30)
    publisher.Approve(review, timeout=30)
    with stack.channel("publisher", user="approver") as approver_channel:
        publisher_grpc.PublisherServiceStub(approver_channel).Approve(review, timeout=30)
    publisher.Schedule(
        publisher_pb.ScheduleRequest(post_id=post.post_id, time_zone="Africa/Nairobi"),
        timeout=30,
    )

    def published() -> bool:
        current = publisher.GetPost(publisher_pb.GetPostRequest(post_id=post.post_id), timeout=10)
        return bool(current.post.status == publish_pb2.POST_STATUS_PUBLISHED)

    wait_until(published, timeout, f"post {request.request_id} published", 0.3)


def _submit_feedback(evaluator: evaluator_grpc.EvaluatorServiceStub) -> None:
    submit_feedback(evaluator, _DEMO_FEEDBACK)


_DEMO_FEEDBACK = evaluator_pb.SubmitFeedbackRequest(
    campaign_id=CAMPAIGN_ID,
    request_id="demo-feedback-1",
    feedback=evaluate_pb2.Feedback(
        from_role=evaluate_pb2.Feedback.FROM_ROLE_PARTNER,
        author="Ocean Alliance",
        rating=4,
        text="Clear message; publish the Spanish version earlier next time.",
        about=CAMPAIGN_ID,
    ),
)


def submit_feedback(
    evaluator: evaluator_grpc.EvaluatorServiceStub, request: evaluator_pb.SubmitFeedbackRequest
) -> None:
    """Submits feedback (its request id makes a repeat one event), waiting until the
    campaign it is about is indexed."""
    # The campaign must be indexed before feedback on it is accepted (UNAVAILABLE: the
    # evaluator is still building its index from Kafka, which it does on its first start).
    waiting = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)
    deadline = time.monotonic() + 30
    while True:
        try:
            evaluator.SubmitFeedback(request, timeout=10)
            return
        except grpc.RpcError as error:
            if error.code() not in waiting or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def settled_scorecard(
    evaluator: evaluator_grpc.EvaluatorServiceStub, timeout: float, campaign_id: str = CAMPAIGN_ID
) -> evaluator_pb.Scorecard:
    """Waits until every step has shown up and the counts stop moving."""
    request = evaluator_pb.GetCampaignScorecardRequest(campaign_id=campaign_id)
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        try:
            card = evaluator.GetCampaignScorecard(request, timeout=10)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:  # the index is being rebuilt
                raise
            time.sleep(1.0)
            continue
        if card.rebuilding:
            time.sleep(1.0)
            continue
        counts = (
            card.mentions,
            card.publications,
            card.conversations_opened,
            card.replies,
            card.feedback,
        )
        if all(counts) and counts == previous:
            return card
        previous = counts
        time.sleep(1.0)
    raise TimeoutError(f"scorecard did not settle: {previous}")


def metric_units(stack: Stack) -> dict[str, str]:
    """The unit of every metric the evaluator computes (its ListMetrics), by name."""
    with stack.channel("evaluator", user="viewer") as channel:
        listed = evaluator_grpc.EvaluatorServiceStub(channel).ListMetrics(
            evaluator_pb.ListMetricsRequest(), timeout=10
        )
    return {metric.name: metric.unit for metric in listed.metrics}


def format_scorecard(card: evaluator_pb.Scorecard, units: Mapping[str, str] | None = None) -> str:
    """The scorecard as a person reads it in a terminal; ``units`` (metric name -> unit, see
    :func:`metric_units`) shows each KPI in its unit (durations in hours or days)."""
    units = units or {}
    status_names = {
        value.number: value.name.removeprefix("STATUS_").replace("_", " ").lower()
        for value in evaluate_pb2.ObjectiveStatus.Status.DESCRIPTOR.values
    }
    lines = [
        f"Scorecard: {card.name} ({card.campaign_id})",
        "",
        "  events indexed per service: "
        + ", ".join(f"{name} {count}" for name, count in sorted(card.events_by_service.items())),
        f"  mentions               {card.mentions}",
        f"  publications           {card.publications}",
        f"  conversations opened   {card.conversations_opened}",
        f"  replies                {card.replies}",
        f"  feedback               {card.feedback}",
        f"  mean sentiment         {card.mean_sentiment:+.2f} "
        f"(over {card.mentions_with_sentiment} mentions with a known sentiment)",
        f"  median response        {format_duration(card.median_response_seconds)}",
        "  over the campaign's period: "
        + ", ".join(
            f"{kpi.name.replace('_', ' ')} {format_value(kpi.value, units.get(kpi.name, 'count'))}"
            for kpi in card.kpis
        ),
        "",
        "  mentions per hour:",
    ]
    widest = max((bucket.count for bucket in card.mentions_per_hour), default=0)
    scale = min(1.0, 60 / widest) if widest else 1.0  # bars at most 60 characters wide
    for bucket in card.mentions_per_hour:
        start = bucket.start.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:00")
        bar = "#" * max(1, round(bucket.count * scale))
        lines.append(f"    {start}  {bar} {bucket.count}")
    lines += ["", "  objectives:"]
    for objective in card.objectives:
        status = status_names[objective.status]
        lines.append(f"    {objective.objective_id:<18} {status:<9} {objective.reason}")
    return "\n".join(lines)
