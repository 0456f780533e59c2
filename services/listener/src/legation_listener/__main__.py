"""``legation-listener``: wiring only (state, feeds, poller, gRPC API, periodic poll)."""

from __future__ import annotations

import sys

from legation.listener.v1.listener_service_pb2_grpc import add_ListenerServiceServicer_to_server
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_listener.adapters.duplicates import rebuild_duplicate_index
from legation_listener.adapters.feeds import FeedFetcher
from legation_listener.adapters.grpc_api import ListenerApi
from legation_listener.adapters.policy import POLICY
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.state import ListenerState, StateStore
from legation_listener.config import ListenerSettings
from legation_listener.domain.enrichment import shared_duplicate_index
from legation_listener.domain.recent import RecentItems
from legation_listener.domain.spikes import SpikeDetector, SpikeRule


def wire(runtime: ServiceRuntime, settings: ListenerSettings) -> None:
    """Rebuilds the state from Kafka and adds the gRPC API and the periodic poll (which
    also checks for spikes)."""
    state = ListenerState.rebuild(settings, runtime.codec)
    rebuild_duplicate_index(settings, runtime.codec, shared_duplicate_index())
    store = StateStore(state, runtime.producer)
    fetcher = FeedFetcher(
        settings.listener_fetch_timeout_seconds,
        settings.listener_fetch_retries,
        stop=runtime.stop,
    )
    rule = SpikeRule(
        baseline_hours=settings.listener_spike_baseline_hours,
        stddevs=settings.listener_spike_stddevs,
        min_count=settings.listener_spike_min_count,
    )
    poller = Poller(
        state,
        store,
        fetcher,
        runtime.producer,
        runtime.metrics.registry,
        stop=runtime.stop,
        recent=RecentItems(settings.listener_preview_buffer_items),
        spikes=SpikeDetector(rule),
    )
    servicer = ListenerApi(state, store, poller)
    runtime.add_grpc(
        lambda server: add_ListenerServiceServicer_to_server(servicer, server),
        POLICY.service,
        POLICY,
    )
    runtime.add_periodic("poll-feeds", settings.listener_poll_seconds, poller.poll_all)


def main() -> None:
    """Runs the listener until SIGTERM."""
    sys.exit(main_for("listener", ListenerSettings, wire))


if __name__ == "__main__":
    main()
