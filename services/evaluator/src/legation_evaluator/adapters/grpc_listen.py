"""The evaluator's gRPC reads of the Listen step: mentions and alerts from the index."""

from __future__ import annotations

from typing import Any

import grpc

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.domain import mentions


class ListenReadsApi:
    """SearchMentions and ListAlerts (mixed into the evaluator's servicer)."""

    index: EventIndex

    def _search(self, payload: str, body: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.index.client.search(
            index=f"{self.index.prefix}-{payload}*", body=body, ignore_unavailable=True
        )
        return response

    def SearchMentions(
        self, request: pb.SearchMentionsRequest, context: grpc.ServicerContext
    ) -> pb.SearchMentionsResponse:
        mentions.validate_search(request)
        response = self._search("mention", mentions.mentions_query(request))
        copies: dict[str, int] | None = None
        if request.fold_duplicates and response["hits"]["hits"]:
            ids = [hit["_source"]["mention"]["mention_id"] for hit in response["hits"]["hits"]]
            copies = mentions.copies_from(self._search("mention", mentions.copies_query(ids)))
        return mentions.search_response(response, request.page_size, copies)

    def ListAlerts(
        self, request: pb.ListAlertsRequest, context: grpc.ServicerContext
    ) -> pb.ListAlertsResponse:
        mentions.validate_alerts(request)
        return mentions.alerts_response(self._search("alert", mentions.alerts_query(request)))
