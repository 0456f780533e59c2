"""The indexing consumer: every event of every topic the evaluator reads, bulk-indexed.

Offsets are committed only after OpenSearch acknowledged the bulk (the consume loop commits
after the handler returns); an index outage makes the handler raise, the loop pauses and
retries, and nothing is lost. Deterministic ids make the retry harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from legation_core.consumer import BatchResult, Incoming, Rejected
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable
from legation_evaluator.domain.documents import Document, document_for


class IndexingHandler:
    """Bulk-indexes a batch; tells ``changes`` (scorecard watchers) which campaigns the
    acknowledged documents belong to, and ``index_failed`` (the index guard, which then
    looks whether the index lost its data) when the index did not take the batch."""

    def __init__(
        self,
        index: EventIndex,
        changes: ChangeFeed | None = None,
        index_failed: Callable[[], None] | None = None,
    ) -> None:
        self.index = index
        self.changes = changes
        self.index_failed = index_failed

    def __call__(self, batch: Sequence[Incoming]) -> BatchResult:
        documents: dict[str, tuple[Document, Incoming]] = {}
        for incoming in batch:
            document = document_for(
                self.index.prefix,
                incoming.envelope,
                incoming.topic,
                incoming.partition,
                incoming.offset,
            )
            # A batch may hold one event twice (a redelivery, an update): index it once, the
            # newest version (an older copy read after it must not win within a batch
            # either; across batches the external versions see to that).
            kept = documents.get(document.doc_id)
            if kept is None or document.version >= kept[0].version:
                documents[document.doc_id] = (document, incoming)
        try:
            rejected_ids = self.index.bulk([document for document, _ in documents.values()])
        except IndexUnavailable:
            if self.index_failed is not None:
                self.index_failed()
            raise
        if self.changes is not None:
            self.changes.publish(
                campaign_id
                for doc_id, (document, _) in documents.items()
                if doc_id not in rejected_ids
                for campaign_id in document.body["campaign_ids"]
            )
        return BatchResult(
            rejected=[
                Rejected(documents[doc_id][1], reason) for doc_id, reason in rejected_ids.items()
            ]
        )
