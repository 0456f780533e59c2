"""Wiring only: settings, OpenSearch, the indexing consumer, snapshots and the gRPC API."""

from __future__ import annotations

import sys

from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation_core.config import ConfigError
from legation_core.lifecycle import ServiceRuntime, main_for
from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.adapters.events import IndexingHandler
from legation_evaluator.adapters.grpc_api import EvaluatorApi
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable, connect
from legation_evaluator.adapters.policy import POLICY, SCORECARD_READERS
from legation_evaluator.adapters.snapshots import SnapshotJob
from legation_evaluator.adapters.web import ScorecardPage
from legation_evaluator.config import EvaluatorSettings


def wire(runtime: ServiceRuntime, settings: EvaluatorSettings) -> None:
    changes = ChangeFeed()
    index = EventIndex(connect(settings), settings.evaluator_index_prefix, changes)
    try:
        index.ensure_template()
    except IndexUnavailable as error:
        raise ConfigError(f"LEGATION_OPENSEARCH_URL={settings.opensearch_url}: {error}") from None
    topics = [topic.name for topic in runtime.catalog.consumed_by("evaluator")]
    runtime.add_consumer("indexer", topics, IndexingHandler(index, changes))
    runtime.add_periodic(
        "kpi-snapshots",
        settings.evaluator_snapshot_seconds,
        SnapshotJob(index, runtime.producer, settings.evaluator_snapshot_seconds),
    )
    api = EvaluatorApi(index, runtime.producer, changes, runtime.stop)
    runtime.add_grpc(
        lambda server: pb_grpc.add_EvaluatorServiceServicer_to_server(api, server),
        POLICY.service,
        POLICY,
    )
    page = ScorecardPage(CampaignData(index), settings.web_refresh_seconds)
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
    if sys.argv[1:2] == ["bench"]:  # legation-evaluator bench [--events N]
        from legation_evaluator.bench import main as bench

        sys.exit(bench(sys.argv[2:]))
    if sys.argv[1:2] == ["reindex"]:  # legation-evaluator reindex [--prefix P] [--topic T]
        from legation_evaluator.reindex import main as reindex

        sys.exit(reindex(sys.argv[2:]))
    sys.exit(main_for("evaluator", EvaluatorSettings, wire))


if __name__ == "__main__":
    main()
