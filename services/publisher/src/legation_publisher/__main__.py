"""Entry point: ``legation-publisher`` serves the gRPC API (the publisher consumes no topic)."""

from __future__ import annotations

import sys

from legation.publisher.v1.publisher_service_pb2_grpc import add_PublisherServiceServicer_to_server
from legation_core.config import ConfigError
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_publisher.adapters.atom_channel import AtomChannel, FeedError
from legation_publisher.adapters.grpc_api import PublisherServicer
from legation_publisher.adapters.policy import POLICY
from legation_publisher.config import PublisherSettings
from legation_publisher.domain.posts import ChannelUnavailable


def wire(runtime: ServiceRuntime, settings: PublisherSettings) -> None:
    """Builds the site's Atom channel and registers the gRPC servicer on the runtime."""
    channel = AtomChannel(
        settings.publisher_site_feed_path,
        settings.publisher_site_base_url,
        settings.publisher_site_title,
    )
    try:
        channel.check()
    except (FeedError, ChannelUnavailable) as error:
        raise ConfigError(f"LEGATION_PUBLISHER_SITE_FEED_PATH: {error}") from None
    servicer = PublisherServicer(channel, runtime.producer, runtime.metrics.registry)
    runtime.add_grpc(
        lambda server: add_PublisherServiceServicer_to_server(servicer, server),
        POLICY.service,
        POLICY,
    )


def main() -> None:
    """Runs the publisher until SIGTERM; exits 2 on a configuration problem."""
    sys.exit(main_for("publisher", PublisherSettings, wire))


if __name__ == "__main__":
    main()
