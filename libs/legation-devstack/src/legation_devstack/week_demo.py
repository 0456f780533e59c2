"""The local stack's demo: a week of one campaign, replayed through the platforms' servers.

The public's items (:mod:`legation_devstack.campaign_week`) arrive over time from the replay
servers (two RSS feeds, a Mastodon hashtag timeline, a Bluesky search), one slice of the week
per listener poll, so the spike arrives as a spike; our posts go out in three languages to
every local channel server; officers answer some conversations and leave the others; two
partners act and three people give feedback. Everything goes through the services' gRPC
APIs.

Idempotent: run it again over the same data and nothing new is produced. The items and the
campaign come from the recorded anchor, the replay servers listen on the same ports and are
filled with the whole week before the listener starts (its cursors then find nothing new),
and every command carries a request id or is skipped when its effect is already there.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.engager.v1 import engager_service_pb2_grpc as engager_grpc
from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import engage_pb2, evaluate_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation_devstack import campaign_week
from legation_devstack.campaign_week import PublicItem
from legation_devstack.channel_servers import ChannelServers
from legation_devstack.demo import (
    CAMPAIGN_ID,
    ISSUE_ID,
    demo_campaign,
    publish_post,
    service_stubs,
    settled_scorecard,
    submit_feedback,
    track_demo_issue,
)
from legation_devstack.localdata import demo_record, mark_replayed
from legation_devstack.notify_local import NotifyServers
from legation_devstack.processes import free_port, wait_until
from legation_devstack.source_servers import (
    BlueskySearchServer,
    FeedServer,
    MastodonTimelineServer,
)
from legation_devstack.stack import Stack

# The replay servers' ports under `make run`: a restarted stack finds them where its
# tracked issue says they are.
FIXED_SOURCE_PORTS = (8471, 8472, 8473, 8474)
HASHTAG = "plasticstreaty"
CHANNELS = ("site-atom", "blog", "mastodon", "bluesky", "telegram", "newsletter", "partners")


@dataclass
class ReplaySources:
    """The platforms the public posts on, as local replay servers."""

    ports: tuple[int, int, int, int]
    news: FeedServer = field(init=False)
    blogs: FeedServer = field(init=False)
    mastodon: MastodonTimelineServer = field(init=False)
    bluesky: BlueskySearchServer = field(init=False)

    def __post_init__(self) -> None:
        self.news = FeedServer("World news", port=self.ports[0])
        self.blogs = FeedServer("Policy blogs", port=self.ports[1])
        self.mastodon = MastodonTimelineServer(port=self.ports[2])
        self.bluesky = BlueskySearchServer(port=self.ports[3])

    @classmethod
    def on_free_ports(cls) -> ReplaySources:
        return cls((free_port(), free_port(), free_port(), free_port()))

    def start(self) -> ReplaySources:
        for server in (self.news, self.blogs, self.mastodon, self.bluesky):
            server.start()
        return self

    def stop(self) -> None:
        for server in (self.news, self.blogs, self.mastodon, self.bluesky):
            server.stop()

    def feeds(self) -> list[str]:
        """The tracked issue's sources."""
        return [
            self.news.feed_url,
            self.blogs.feed_url,
            f"mastodon:{self.mastodon.url}/tags/{HASHTAG}",
            f"bluesky:{self.bluesky.url}/search?q=treaty",
        ]

    def release(self, items: Iterable[PublicItem]) -> None:
        """Puts ``items`` on their platforms (in order: the servers number them as they come)."""
        for item in items:
            if item.platform in ("news", "blogs"):
                server = self.news if item.platform == "news" else self.blogs
                server.publish(item.text[:60], item.text, published_at=item.at, author=item.author)
            elif item.platform == "mastodon":
                self.mastodon.post(
                    item.text,
                    tags=(HASHTAG,),
                    username=item.author,
                    display_name=item.author.title(),
                    followers=item.followers,
                    language=item.language,
                    created_at=item.at,
                )
            else:
                self.bluesky.post(
                    item.text,
                    handle=f"{item.author}.bsky.social",
                    display_name=item.author.title(),
                    langs=(item.language,),
                    created_at=item.at,
                    followers=item.followers,
                )


def channels_env(servers: ChannelServers, folder: Path) -> dict[str, str]:
    """The publisher's environment for delivering to ``servers`` (its channels file is
    written into ``folder``)."""
    config, secrets = servers.channels_config()
    path = folder / "channels.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return {"LEGATION_PUBLISHER_CHANNELS_FILE": str(path), **secrets}


@dataclass(frozen=True)
class WeekSettings:
    """How big the demo's week is and how it arrives."""

    mentions: int = 3000
    steps: int = 28  # one slice of the week (6 hours) per listener poll
    seed: int = 2026


def run_week_demo(
    stack: Stack,
    sources: ReplaySources,
    items: list[PublicItem],
    campaign: evaluate_pb2.Campaign,
    replayed: bool,
    settings: WeekSettings = WeekSettings(),
    timeout: float = 180.0,
) -> evaluator_pb.Scorecard:
    """Drives the week through the services (``replayed``: the sources already hold it, from
    a run before this one); returns the settled scorecard."""
    with service_stubs(stack) as (evaluator, listener, publisher, engager):
        evaluator.CreateCampaign(campaign, timeout=30)
        track_demo_issue(listener, sources.feeds(), campaign_week.LANGUAGES)
        poll = listener_pb.PollNowRequest(issue_id=ISSUE_ID)
        if not replayed:
            listener.PollNow(poll, timeout=60)  # the first read sets each source's cursor
            for part in campaign_week.slices(items, settings.steps):
                sources.release(part)
                listener.PollNow(poll, timeout=120)
        for post in campaign_week.OUR_POSTS:
            publish_post(
                publisher,
                stack,
                publisher_pb.CreatePostRequest(
                    request_id=post.request_id,
                    campaign_id=CAMPAIGN_ID,
                    issue_id=ISSUE_ID,
                    language=post.language,
                    channels=list(CHANNELS),
                    content=publisher_pb.VariantContent(
                        title=post.title, body=post.body, author="Press office"
                    ),
                ),
                timeout,
            )
        _answer_some(engager, len([i for i in items if i.question]), timeout)
        _partners(engager, campaign)
        for n, (author, rating, text) in enumerate(FEEDBACK):
            submit_feedback(
                evaluator,
                evaluator_pb.SubmitFeedbackRequest(
                    campaign_id=CAMPAIGN_ID,
                    request_id=f"week-feedback-{n}",
                    feedback=evaluate_pb2.Feedback(
                        from_role=evaluate_pb2.Feedback.FROM_ROLE_PARTNER,
                        author=author,
                        rating=rating,
                        text=text,
                        about=CAMPAIGN_ID,
                    ),
                ),
            )
        return settled_scorecard(evaluator, timeout)


FEEDBACK = (
    ("Ocean Alliance", 4, "Clear message; publish the Spanish version earlier next time."),
    ("Cities for Clean Seas", 3, "Answer the questions on day 4 faster: that was the spike."),
    ("Desk officer", 4, "Saved replies in French would have helped."),
)


def _answer_some(engager: engager_grpc.EngagerServiceStub, questions: int, timeout: float) -> None:
    """Waits for the question conversations to open, then answers a fixed share of them."""

    def inbox() -> list[engager_pb.Conversation]:
        request = engager_pb.ListConversationsRequest(campaign_id=CAMPAIGN_ID)
        return list(engager.ListConversations(request, timeout=30).conversations)

    # Every question opens one, unless the listener linked it to a near-duplicate: wait
    # for all of them, or for the count to stop moving.
    seen: list[int] = []

    def opened() -> bool:
        seen.append(len(inbox()))
        return seen[-1] >= questions or (len(seen) > 3 and seen[-1] == seen[-4] > 0)

    with contextlib.suppress(TimeoutError):  # then answer what arrived
        wait_until(opened, timeout, "the week's conversations", 1.0)
    conversations = inbox()
    chosen = campaign_week.answered([c.conversation_id for c in conversations])
    for conversation in conversations:
        if conversation.conversation_id not in chosen or conversation.replies:
            continue
        engager.ReplyToConversation(
            engager_pb.ReplyToConversationRequest(
                request_id=f"week-reply-{conversation.conversation_id}",
                conversation_id=conversation.conversation_id,
                officer="desk.officer@ministry.example",
                text="Thank you for asking: small producers get a five-year transition and "
                "support for alternatives.",
            ),
            timeout=30,
        )


def _partners(engager: engager_grpc.EngagerServiceStub, campaign: evaluate_pb2.Campaign) -> None:
    """Registers the partners (once) and records what they did (once per request id)."""
    for partner_id, name in campaign_week.PARTNERS:
        try:
            engager.GetPartner(engager_pb.GetPartnerRequest(partner_id=partner_id), timeout=30)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            engager.RegisterPartner(
                engager_pb.RegisterPartnerRequest(
                    partner_id=partner_id,
                    name=name,
                    kind=engage_pb2.PARTNER_KIND_NGO,
                    issue_ids=[ISSUE_ID],
                    stage=engage_pb2.RELATIONSHIP_STAGE_PARTNER,
                ),
                timeout=30,
            )
    start = campaign.starts_at.ToDatetime()
    for action in campaign_week.PARTNER_ACTIONS:
        request = engager_pb.RecordPartnerActivityRequest(
            partner_id=action.partner_id,
            request_id=action.request_id,
            kind=engage_pb2.PartnerActivity.KIND_CO_PUBLICATION,
            title=action.title,
            issue_ids=[ISSUE_ID],
            campaign_id=CAMPAIGN_ID,
        )
        request.occurred_at.FromDatetime(start + timedelta(days=action.day, hours=10))
        engager.RecordPartnerActivity(request, timeout=30)


def week_campaign(anchor: datetime, mentions: int) -> evaluate_pb2.Campaign:
    """The demo campaign over the generated week, with targets of a week's size."""
    campaign = demo_campaign(anchor)
    campaign.channels[:] = list(CHANNELS)
    campaign.languages[:] = list(campaign_week.LANGUAGES)
    targets = {"answer-questions": 50, "conversation": int(mentions * 0.8)}
    for objective in campaign.objectives:
        objective.target = targets.get(objective.objective_id, objective.target)
    return campaign


@dataclass
class LocalRun:
    """One run of the local stack over a data folder with the week's demo: the replay
    and channel servers around a :class:`Stack` (not started: the caller starts it)."""

    data_dir: Path
    source_ports: tuple[int, int, int, int] = FIXED_SOURCE_PORTS
    fixed_ports: bool = True
    settings: WeekSettings = WeekSettings()
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.record = demo_record(self.data_dir, datetime.now(UTC))
        self.items = campaign_week.week(
            self.record.anchor, self.settings.mentions, self.settings.seed
        )
        self.sources = ReplaySources(self.source_ports)
        self.channels = ChannelServers()
        self.notify = NotifyServers(self.data_dir / "notify")
        self.stack = Stack(self.data_dir, fixed_ports=self.fixed_ports)

    def __enter__(self) -> LocalRun:
        self.sources.start()
        if self.record.replayed:  # before the listener's first poll: nothing new to find
            self.sources.release(self.items)
        self.channels.start()
        self.notify.start()
        self.stack.extra_env = {
            **channels_env(self.channels, self.data_dir),
            **self.notify.env(),
            **self.extra_env,
        }
        return self

    def __exit__(self, *_: object) -> None:
        self.sources.stop()
        self.channels.stop()
        self.notify.stop()

    def demo(self, timeout: float = 180.0) -> evaluator_pb.Scorecard:
        """Runs (or, on data where it ran, re-reads) the week's demo; returns its scorecard."""
        campaign = week_campaign(self.record.anchor, self.settings.mentions)
        card = run_week_demo(
            self.stack,
            self.sources,
            self.items,
            campaign,
            self.record.replayed,
            self.settings,
            timeout,
        )
        mark_replayed(self.data_dir, self.record)
        return card
