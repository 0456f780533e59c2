"""Wiring only: settings, OpenSearch, the indexing consumer, snapshots and the gRPC API."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable

from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation_core.config import ConfigError
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_evaluator.adapters.aggregates import AggregatesLoader, MaintainedAggregates
from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.adapters.events import IndexingHandler
from legation_evaluator.adapters.grpc_api import EvaluatorApi
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable, connect
from legation_evaluator.adapters.policy import POLICY, SCORECARD_READERS
from legation_evaluator.adapters.rebuild import IndexGuard
from legation_evaluator.adapters.snapshots import SNAPSHOT_TICK_SECONDS, SnapshotJob
from legation_evaluator.adapters.tail import LogTail
from legation_evaluator.adapters.web import ScorecardPage
from legation_evaluator.config import EvaluatorSettings
from legation_evaluator.reindex import committed_offsets, rebuild


def wire(runtime: ServiceRuntime, settings: EvaluatorSettings) -> None:
    changes = ChangeFeed()
    # Scorecards read per-campaign aggregates: loaded from the index at start-up, then fed
    # by a tail of every partition of the indexed topics, so each replica's are whole
    # whatever the indexer group gives it (events are searched until they caught up).
    aggregates = MaintainedAggregates(tailed=True) if settings.evaluator_aggregates else None
    index = EventIndex(connect(settings), settings.evaluator_index_prefix, changes, aggregates)
    try:
        index.ensure_template()
    except IndexUnavailable as error:
        raise ConfigError(f"LEGATION_OPENSEARCH_URL={settings.opensearch_url}: {error}") from None
    topics = [topic.name for topic in runtime.catalog.consumed_by("evaluator")]

    def rebuild_index(halt: threading.Event, progress: Callable[[int], object]) -> int:
        # Up to where the live indexer committed: it indexes everything after.
        behind = runtime.group("indexer")
        return rebuild(
            settings, index, runtime.catalog, stop=halt, progress=progress, behind_group=behind
        ).total

    # Notices an index that lost its data and rebuilds it from Kafka (one replica at a time).
    guard = IndexGuard(
        index,
        rebuild_index,
        stop=runtime.stop,
        owner=f"{socket.gethostname()}/{os.getpid()}",
        check_seconds=settings.evaluator_index_check_seconds,
        registry=runtime.metrics.registry,
    )
    runtime.add_periodic("index-guard", 1.0, guard.tick)
    if aggregates is not None:
        indexer = runtime.group("indexer")
        tail = LogTail(
            settings,
            aggregates,
            index.client,
            index.prefix,
            runtime.codec,
            topics,
            group=indexer,
            committed=lambda partitions: committed_offsets(settings, indexer, partitions),
            stop=runtime.stop,
            changes=changes,
            registry=runtime.metrics.registry,
            pace_seconds=settings.evaluator_aggregates_pace_ms / 1000,
        )
        loader = AggregatesLoader(
            aggregates,
            index.client,
            f"{index.prefix}-*",
            runtime.stop,
            tail=tail.run,
            rebuilding=guard.confirm,
        )
        runtime.add_periodic("aggregates-load", 1.0, loader)
    runtime.add_consumer("indexer", topics, IndexingHandler(index, changes, guard.suspect))
    runtime.add_periodic(
        "kpi-snapshots",
        min(settings.evaluator_snapshot_seconds, SNAPSHOT_TICK_SECONDS),
        SnapshotJob(index, runtime.producer, settings.evaluator_snapshot_seconds, guard.confirm),
    )
    api = EvaluatorApi(index, runtime.producer, changes, runtime.stop, guard)
    runtime.add_grpc(
        lambda server: pb_grpc.add_EvaluatorServiceServicer_to_server(api, server),
        POLICY.service,
        POLICY,
    )
    page = ScorecardPage(CampaignData(index, guard), settings.web_refresh_seconds)
    # Campaign results are the ministry's own: the page asks for a reader's token.
    runtime.add_http(
        "scorecard-page",
        settings.web_port,
        page,
        roles=SCORECARD_READERS,
        port_variable="LEGATION_WEB_PORT",
    )


def main() -> None:
    if sys.argv[1:2] == ["report"]:  # legation-evaluator report --campaign X --out DIR
        from legation_evaluator.report_cli import main as report

        sys.exit(report(sys.argv[2:]))
    if sys.argv[1:2] == ["backfill"]:  # legation-evaluator backfill --topic T --since ...
        from legation_evaluator.backfill import main as backfill

        sys.exit(backfill(sys.argv[2:]))
    if sys.argv[1:2] == ["reindex"]:  # legation-evaluator reindex [--prefix P] [--topic T]
        from legation_evaluator.reindex import main as reindex

        sys.exit(reindex(sys.argv[2:]))
    sys.exit(main_for("evaluator", EvaluatorSettings, wire))


if __name__ == "__main__":
    main()
