"""Entry point: ``legation-publisher`` serves the gRPC API, the short-link endpoint and the
scheduler, over the posts it rebuilt from Kafka."""

from __future__ import annotations

import logging
import secrets
import sys

import grpc

from legation.publisher.v1.publisher_service_pb2_grpc import add_PublisherServiceServicer_to_server
from legation_channels.adapters.site_atom import FeedError, SiteAtomChannel
from legation_channels.base import Channel, ChannelUnavailable
from legation_channels.outbox import Deliverer, RetryPolicy
from legation_channels.registry import channels_from_file
from legation_core.auth import Caller, current_caller
from legation_core.config import ConfigError
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_publisher.adapters.grpc_api import SERVICE_NAME, PublisherServicer
from legation_publisher.adapters.policy import policy_for
from legation_publisher.adapters.redirect import ShortLinks
from legation_publisher.adapters.scheduler import Scheduler
from legation_publisher.adapters.state import PostBook, PostStore
from legation_publisher.config import PublisherSettings
from legation_publisher.domain.clicks import ClickGate, ClickPolicy
from legation_publisher.domain.content import ChannelProfile
from legation_publisher.domain.workflow import WorkflowPolicy, parse_steps

log = logging.getLogger(__name__)


def _caller(context: grpc.ServicerContext) -> Caller:
    # The shared interceptor authenticated the call and holds its caller.
    return current_caller()


def policy_from(settings: PublisherSettings) -> WorkflowPolicy:
    """The workflow policy the settings describe."""
    return WorkflowPolicy(
        draft_role=settings.publisher_draft_role,
        approval_steps=parse_steps(settings.publisher_approval_steps),
        publish_role=settings.publisher_publish_role,
    )


def build_publisher_channels(settings: PublisherSettings) -> dict[str, Channel]:
    """Our site's feed (``site-atom``) plus the channels of
    ``LEGATION_PUBLISHER_CHANNELS_FILE``; raises ConfigError naming what is wrong."""
    atom = SiteAtomChannel(
        settings.publisher_site_feed_path,
        settings.publisher_site_base_url,
        settings.publisher_site_title,
    )
    try:
        atom.check()
    except (FeedError, ChannelUnavailable) as error:
        raise ConfigError(f"LEGATION_PUBLISHER_SITE_FEED_PATH: {error}") from None
    channels: dict[str, Channel] = {atom.name: atom}
    path = settings.publisher_channels_file
    if path is not None:
        more = channels_from_file(path, "LEGATION_PUBLISHER_CHANNELS_FILE")
        clash = sorted(set(more) & set(channels))
        if clash:
            raise ConfigError(
                f"LEGATION_PUBLISHER_CHANNELS_FILE: {', '.join(clash)} is our site's feed, "
                "configured by LEGATION_PUBLISHER_SITE_*"
            )
        channels.update(more)
    return channels


def wire(runtime: ServiceRuntime, settings: PublisherSettings) -> None:
    """Rebuilds the posts from Kafka, then registers the API, the scheduler and the
    short-link endpoint on the runtime."""
    channels = build_publisher_channels(settings)
    profiles = {
        name: ChannelProfile(
            name, channel.kind, channel.limits, settings.publisher_redirect_base_url
        )
        for name, channel in channels.items()
    }
    default_channels = settings.publisher_channels.split(",")
    unknown = [name for name in default_channels if name not in profiles]
    if unknown:
        raise ConfigError(f"LEGATION_PUBLISHER_CHANNELS: unknown channel(s) {', '.join(unknown)}")
    registry = runtime.metrics.registry
    book = PostBook.rebuild(settings, runtime.codec, runtime.producer)
    workflow = policy_from(settings)
    store = PostStore(
        book, runtime.producer, [(step.name, step.role) for step in workflow.approval_steps]
    )
    servicer = PublisherServicer(
        store,
        workflow,
        profiles,
        default_channels,
        settings.publisher_redirect_base_url,
        _caller,
        registry,
    )
    runtime.add_grpc(
        lambda server: add_PublisherServiceServicer_to_server(servicer, server),
        SERVICE_NAME,
        policy_for(workflow),
    )
    deliverer = Deliverer(RetryPolicy(max_attempts=settings.publisher_delivery_max_attempts))
    scheduler = Scheduler(store, channels, deliverer, registry=registry)

    def deliver_due() -> None:
        scheduler.run_once()

    runtime.add_periodic("scheduler", settings.publisher_scheduler_interval_seconds, deliver_due)
    secret = settings.publisher_click_secret.encode()
    if not secret:
        log.warning(
            "LEGATION_PUBLISHER_CLICK_SECRET is not set: clicks are fingerprinted with a "
            "random secret of this process, so replicas and restarts do not share it"
        )
        secret = secrets.token_bytes(32)
    gate = ClickGate(
        secret,
        ClickPolicy(
            window_seconds=settings.publisher_click_window_seconds,
            per_address=settings.publisher_clicks_per_address_per_hour,
            per_address_period_seconds=3600.0,
        ),
    )
    links = ShortLinks(
        book,
        runtime.producer,
        gate,
        registry=registry,
        trusted_proxies=settings.trusted_proxies(),
    )
    # Public on purpose: readers follow the links from anywhere.
    runtime.add_http(
        "short-links",
        settings.publisher_redirect_port,
        links,
        roles=None,
        port_variable="LEGATION_PUBLISHER_REDIRECT_PORT",
    )


def main() -> None:
    """Runs the publisher until SIGTERM; exits 2 on a configuration problem."""
    sys.exit(main_for("publisher", PublisherSettings, wire))


if __name__ == "__main__":
    main()
