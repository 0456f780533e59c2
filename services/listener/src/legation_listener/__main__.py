"""``legation-listener``: wiring only (state, connectors, poller, gRPC API, webhook,
periodic poll)."""

from __future__ import annotations

import sys
import threading

from legation.listener.v1.listener_service_pb2_grpc import add_ListenerServiceServicer_to_server
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_core.topic_names import LISTEN_MENTIONS_V1, PUBLISH_PUBLICATIONS_V1
from legation_listener.adapters.connectors.base import Backoff, Connector
from legation_listener.adapters.connectors.bluesky import BlueskyConnector
from legation_listener.adapters.connectors.mastodon import MastodonConnector
from legation_listener.adapters.connectors.reddit import RedditConnector
from legation_listener.adapters.connectors.rss import RssConnector
from legation_listener.adapters.connectors.webhook import WebhookApp
from legation_listener.adapters.derived_streams import PURPOSE as DERIVED_STREAMS
from legation_listener.adapters.derived_streams import derived_streams_handler
from legation_listener.adapters.duplicates import duplicate_sink
from legation_listener.adapters.feeds import FeedFetcher
from legation_listener.adapters.grpc_labels import TeachingServicer
from legation_listener.adapters.insights import Autodiscovery, Insights
from legation_listener.adapters.policy import POLICY
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.preview_reads import PreviewReads, read_source_now
from legation_listener.adapters.publications import PublicationStore
from legation_listener.adapters.replay import MentionSink, replay_mentions
from legation_listener.adapters.state import ListenerState
from legation_listener.adapters.teaching import LabelBook, ModelTrainer, Rescorer
from legation_listener.config import ListenerSettings
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.enrichment import load_models, shared_duplicate_index
from legation_listener.domain.observed import DEFAULT_MAX_AGE, MentionWindow
from legation_listener.domain.recent import RecentItems
from legation_listener.domain.spikes import SpikeDetector, SpikeRule
from legation_listener.models.issue import shared_issue_models


def address_policy(settings: ListenerSettings) -> AddressPolicy:
    """Which addresses feeds, articles and instances may be fetched from."""
    return AddressPolicy.from_setting(settings.listener_fetch_allowed_networks)


def connectors(
    settings: ListenerSettings,
    fetcher: FeedFetcher,
    backoff: Backoff,
    timeout_seconds: float | None = None,
) -> list[Connector]:
    """One connector per kind of source, configured from the settings (``timeout_seconds``
    instead of the settings' request timeout, for previews)."""
    timeout = timeout_seconds or settings.listener_fetch_timeout_seconds
    page_size = settings.listener_page_size
    policy = address_policy(settings)
    return [
        RssConnector(fetcher, fetcher, full_text_limit=settings.listener_full_text_max_per_read),
        MastodonConnector(
            backoff,
            timeout_seconds=timeout,
            page_size=page_size,
            access_token=settings.listener_mastodon_access_token,
            token_instance=settings.listener_mastodon_instance_url,
            policy=policy,
        ),
        BlueskyConnector(
            backoff,
            timeout_seconds=timeout,
            page_size=page_size,
            handle=settings.listener_bluesky_handle,
            app_password=settings.listener_bluesky_app_password,
            login_service=settings.listener_bluesky_service_url,
            policy=policy,
        ),
        RedditConnector(
            backoff,
            client_id=settings.listener_reddit_client_id,
            client_secret=settings.listener_reddit_client_secret,
            token_url=settings.listener_reddit_token_url,
            api_url=settings.listener_reddit_api_url,
            user_agent=settings.listener_reddit_user_agent,
            timeout_seconds=timeout,
            page_size=page_size,
        ),
    ]


def preview_reads(settings: ListenerSettings, stop: threading.Event) -> PreviewReads:
    """What reads the feeds a PreviewQuery names: its own fetcher and connectors, one
    attempt per request (no retries), no request longer than the preview's deadline, at
    most ``LEGATION_LISTENER_PREVIEW_MAX_CONCURRENT`` previews at once."""
    deadline = settings.listener_preview_deadline_seconds
    timeout = min(settings.listener_fetch_timeout_seconds, deadline)
    fetcher = FeedFetcher(
        timeout,
        0,
        stop=stop,
        policy=address_policy(settings),
        allow_local_files=settings.listener_allow_local_feeds,
        max_read_seconds=deadline,
    )
    by_kind = {
        connector.kind: connector
        for connector in connectors(settings, fetcher, Backoff(0, stop=stop), timeout)
    }
    return PreviewReads(
        lambda spec: read_source_now(spec, fetcher, by_kind),
        max_concurrent=settings.listener_preview_max_concurrent,
        deadline_seconds=deadline,
    )


def wire(runtime: ServiceRuntime, settings: ListenerSettings) -> None:
    """Loads the enrichment models, rebuilds the state, the duplicate index, the analyses'
    mention window and our publications from Kafka, and adds the gRPC API, the webhook (when
    it has a secret), the publications consumer, the periodic poll (which also checks for
    spikes) and the periodic community and theme reports."""
    load_models()
    state = ListenerState.rebuild(settings, runtime.codec, runtime.producer)
    # One read of the mentions topic rebuilds the duplicate index and the analyses' window.
    window = MentionWindow(settings.listener_insights_mentions, DEFAULT_MAX_AGE)
    replay_mentions(
        settings,
        runtime.codec,
        [
            duplicate_sink(shared_duplicate_index()),
            MentionSink("insights", DEFAULT_MAX_AGE.days, window.add_mention),
        ],
    )
    publications = PublicationStore()
    publications.rebuild(settings, runtime.codec)
    runtime.add_consumer("publications", [PUBLISH_PUBLICATIONS_V1], publications)
    fetcher = FeedFetcher(
        settings.listener_fetch_timeout_seconds,
        settings.listener_fetch_retries,
        stop=runtime.stop,
        policy=address_policy(settings),
        allow_local_files=settings.listener_allow_local_feeds,
    )
    backoff = Backoff(settings.listener_fetch_retries, stop=runtime.stop)
    rule = SpikeRule(
        baseline_hours=settings.listener_spike_baseline_hours,
        stddevs=settings.listener_spike_stddevs,
        min_count=settings.listener_spike_min_count,
    )
    poller = Poller(
        state,
        fetcher,
        runtime.producer,
        runtime.metrics.registry,
        stop=runtime.stop,
        recent=RecentItems(settings.listener_preview_buffer_items),
        spikes=SpikeDetector(rule),
        connectors=connectors(settings, fetcher, backoff),
        max_pages=settings.listener_max_pages_per_poll,
        on_mentions=window.add_mentions,
        failing_after=settings.listener_source_failing_after,
    )
    insights = Insights(
        state,
        window,
        publications,
        Autodiscovery(fetcher),
        runtime.producer,
        reddit_api=settings.listener_reddit_api_url,
    )
    # Analysts' labels, rebuilt from their topic; every issue with labels trains at the
    # first run of the training job, then whenever its labels change.
    book = LabelBook(runtime.producer)
    trainer = ModelTrainer(book, shared_issue_models())
    book.rebuild(settings, runtime.codec, runtime.producer)
    rescorer = Rescorer(
        settings,
        runtime.codec,
        state,
        runtime.producer,
        shared_issue_models(),
        on_mentions=window.add_mentions,
    )
    servicer = TeachingServicer(
        state,
        poller,
        insights,
        book=book,
        trainer=trainer,
        rescorer=rescorer,
        previews=preview_reads(settings, runtime.stop),
        local_feeds=settings.listener_allow_local_feeds,
    )
    runtime.add_grpc(
        lambda server: add_ListenerServiceServicer_to_server(servicer, server),
        POLICY.service,
        POLICY,
    )
    if settings.listener_webhook_secret:
        # Senders are platforms and scripts, not users of the users file: the HMAC
        # signature of every body is the authentication.
        webhook = WebhookApp(poller, settings.listener_webhook_secret)
        runtime.add_http("webhook", settings.listener_webhook_port, webhook, roles=None)
    runtime.add_periodic("poll-feeds", settings.listener_poll_seconds, poller.poll_all)
    runtime.add_periodic(
        "insight-reports", settings.listener_insights_seconds, insights.publish_all
    )
    runtime.add_periodic("train-models", settings.listener_train_seconds, trainer.run_pending)
    if settings.pseudonym_key:
        # The pseudonymised mentions for departments, in a loop of their own.
        runtime.add_consumer(
            DERIVED_STREAMS,
            [LISTEN_MENTIONS_V1],
            derived_streams_handler(runtime.catalog, settings.pseudonym_key.encode()),
        )


def main() -> None:
    """Runs the listener until SIGTERM."""
    sys.exit(main_for("listener", ListenerSettings, wire))


if __name__ == "__main__":
    main()
