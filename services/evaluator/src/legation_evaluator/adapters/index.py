"""OpenSearch adapter: templates, bulk indexing, campaign lookup and scorecard queries."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from opensearchpy import ConnectionError, OpenSearch, TransportError, helpers

from legation.events.v1 import evaluate_pb2
from legation_core.codec import envelope_from_json
from legation_core.consumer import TransientError
from legation_evaluator.adapters.aggregates import MaintainedAggregates
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.config import EvaluatorSettings
from legation_evaluator.domain.documents import Document, index_template, retryable, superseded
from legation_evaluator.domain.rollup import Answer
from legation_evaluator.domain.scorecard import plan_for, scorecard_query

log = logging.getLogger(__name__)
# How often the bulk path checks that the index template is still in place.
TEMPLATE_CHECK_SECONDS = 30.0
# A scorecard answer is reused this long whatever was indexed meanwhile (on the stand-in a
# scorecard search over 20k events takes seconds: see the README's figures) ...
FRESH_SECONDS = 1.0
# ... and this long when nothing of the campaign was indexed since (documents become
# searchable after a refresh, so not forever).
CACHE_SECONDS = 5.0
# While the index is being rebuilt from Kafka an answer is reused this long after its search
# ended, whatever was indexed (it is marked incomplete anyway): back-to-back scorecard
# searches would stall the rebuild (on the stand-in a search holds every bulk until it ends,
# and takes 17 s over 27k events on a loaded machine).
REBUILDING_FRESH_SECONDS = 10.0
# An answer from the aggregates is reused, whatever changed, for this many times as long as
# it took to compute: however fast events arrive, computing one campaign's scorecard takes
# at most about a fifth of a core.
COST_SHARE = 4.0
# Scorecards computed at once, whatever the number of readers and campaigns: the rest wait
# for a slot (a search over the events is what costs; the aggregates take milliseconds).
SCORECARD_SLOTS = 2


class IndexUnavailable(TransientError):
    """OpenSearch refused or failed in a way a retry may fix (outage, 429, 5xx). Transient,
    so the consume loop pauses and retries the batch rather than dead-lettering it."""


def connect(settings: EvaluatorSettings) -> OpenSearch:
    auth = None
    if settings.opensearch_username:
        auth = (settings.opensearch_username, settings.opensearch_password or "")
    return OpenSearch(
        hosts=[settings.opensearch_url],
        http_auth=auth,
        ca_certs=settings.opensearch_ca_certs,
        verify_certs=settings.opensearch_url.startswith("https"),
        timeout=settings.opensearch_timeout_seconds,
    )


class EventIndex:
    """The event indices of one prefix."""

    def __init__(
        self,
        client: OpenSearch,
        prefix: str,
        changes: ChangeFeed | None = None,
        aggregates: MaintainedAggregates | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        # Without a change feed (the CLI, tests) answers are shared for FRESH_SECONDS only.
        self.changes = changes
        # Counted as documents are acknowledged; once loaded, scorecards read them.
        self.aggregates = aggregates
        self._slots = threading.BoundedSemaphore(SCORECARD_SLOTS)
        # campaign id -> (campaign version, aggregates version, when, searched, answer, cost)
        self._answers: dict[str, tuple[bytes, int, float, bool, dict[str, Any], float]] = {}
        # campaign id -> (campaign version, change version, search started, ended, answer)
        self._cache: dict[str, tuple[bytes, int | None, float, float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        self._flights: dict[str, threading.Lock] = {}
        # After an outage the index server may be a new one (or restored from nothing):
        # the template goes back in before the next document, or the indices it creates
        # would get guessed mappings.
        self._template_missing = False
        self._template_checked = time.monotonic()

    def ensure_template(self, wait_seconds: float = 30.0) -> None:
        """Puts the index template (idempotent: the same body replaces itself), waiting up
        to ``wait_seconds`` for OpenSearch to answer; raises IndexUnavailable after that."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.5
        while True:
            try:
                self.client.indices.put_index_template(
                    name=self.prefix, body=index_template(self.prefix)
                )
                return
            except (ConnectionError, TransportError) as error:
                status = getattr(error, "status_code", None)
                if isinstance(status, int) and 400 <= status < 500 and status != 429:
                    raise  # a template OpenSearch refuses is a bug, not an outage
                if time.monotonic() + delay > deadline:
                    raise IndexUnavailable(f"OpenSearch does not answer: {error}") from error
                log.warning("waiting for OpenSearch", extra={"error": str(error)})
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _template_present(self) -> bool:
        try:
            return bool(self.client.indices.exists_index_template(name=self.prefix))
        except (ConnectionError, TransportError) as error:
            raise IndexUnavailable(f"OpenSearch does not answer: {error}") from error

    def bulk(self, documents: Sequence[Document]) -> dict[str, str]:
        """Indexes ``documents``; returns ``{doc_id: reason}`` for documents OpenSearch
        rejected for good (a mapping conflict). Raises IndexUnavailable when any failure
        is transient, so the caller retries the whole batch (ids make that harmless). A
        document the index holds a newer version of is left as it is (not an error)."""
        if not documents:
            return {}
        if self._template_missing:
            self.ensure_template(wait_seconds=0)
            self._template_missing = False
            self._template_checked = time.monotonic()
        elif time.monotonic() - self._template_checked > TEMPLATE_CHECK_SECONDS:
            # An index server that restarted empty between two batches failed no request:
            # look now and then (one HEAD request) whether the template is still there.
            self._template_checked = time.monotonic()
            self._template_missing = not self._template_present()
            if self._template_missing:
                self.ensure_template(wait_seconds=0)
                self._template_missing = False
        self._template_checked = time.monotonic()
        actions = [
            {
                "_op_type": "index",
                "_index": d.index,
                "_id": d.doc_id,
                "_source": d.body,
                # An older version of an event never overwrites a newer one (documents.py).
                "_version": d.version,
                "_version_type": "external_gte",
            }
            for d in documents
        ]
        try:
            _, errors = helpers.bulk(
                self.client, actions, raise_on_error=False, raise_on_exception=True
            )
        except Exception as error:
            self._template_missing = True
            raise IndexUnavailable(f"bulk request failed: {error}") from error
        rejected: dict[str, str] = {}
        for item in errors if isinstance(errors, list) else []:
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            if superseded(status, result.get("error")):
                continue  # the index has a newer version of this event already
            if retryable(status, result.get("error")):
                raise IndexUnavailable(f"bulk item failed with {status}: {result.get('error')}")
            rejected[str(result.get("_id"))] = f"index rejected the document: {result.get('error')}"
        if self.aggregates is not None and not self.aggregates.tailed:
            # (Tailed, the aggregates read the same records from the log: see tail.py.)
            self.aggregates.add_documents(d for d in documents if d.doc_id not in rejected)
        return rejected

    def campaign(self, campaign_id: str) -> evaluate_pb2.Campaign | None:
        """The latest version of a campaign, or None: from the maintained aggregates when
        they can say (no search, see ``MaintainedAggregates.campaign``)."""
        held = self.aggregates.campaign(campaign_id) if self.aggregates is not None else None
        if held is not None:
            return held
        response = self.client.search(
            index=f"{self.prefix}-campaign",
            body={
                "size": 1,
                "query": {"term": {"campaign.campaign_id": campaign_id}},
                "sort": [{"observed_at": {"order": "desc"}}],
            },
            ignore_unavailable=True,
        )
        hits = response["hits"]["hits"]
        if not hits:
            return None
        return envelope_from_json(_without_extras(hits[0]["_source"])).campaign

    def campaign_ids(self) -> list[str]:
        """The ids of every campaign (up to 1,000 when searched)."""
        held = self.aggregates.campaign_ids() if self.aggregates is not None else None
        if held is not None:
            return held
        response = self.client.search(
            index=f"{self.prefix}-campaign",
            body={"size": 0, "aggs": {"ids": {"terms": {"field": "campaign_ids", "size": 1000}}}},
            ignore_unavailable=True,
        )
        aggregations = response.get("aggregations")
        if not aggregations:
            return []
        return [str(bucket["key"]) for bucket in aggregations["ids"]["buckets"]]

    def scorecard_response(
        self, campaign: evaluate_pb2.Campaign, rebuilding: bool = False
    ) -> dict[str, Any]:
        """The search response of the campaign's scorecard. It depends only on the campaign
        and the indexed documents (the clock enters when it is judged), so the callers of
        one campaign (watch streams, live pages, snapshots, the API) share one answer: a
        second ago or younger, or as long as no document of the campaign was indexed since
        (``changes``) and it is younger than :data:`CACHE_SECONDS`; while the index is being
        ``rebuilding``, for :data:`REBUILDING_FRESH_SECONDS` after its search ended. One search
        per campaign at a time: callers who asked while it ran take its answer instead of queueing
        searches of their own (on the stand-in a scorecard search over 100k events takes
        half a minute)."""
        if self.aggregates is not None and self.aggregates.usable():
            return self._from_aggregates(campaign)
        key = campaign.SerializeToString(deterministic=True)
        asked = time.monotonic()
        with self._cache_lock:
            flight = self._flights.setdefault(campaign.campaign_id, threading.Lock())
        with flight:
            version = self.changes.version(campaign.campaign_id) if self.changes else None
            with self._cache_lock:
                hit = self._cache.get(campaign.campaign_id)
            if hit is not None and hit[0] == key:
                age = time.monotonic() - hit[2]
                if (
                    hit[3] >= asked
                    or age < FRESH_SECONDS
                    or (rebuilding and time.monotonic() - hit[3] < REBUILDING_FRESH_SECONDS)
                    or (hit[1] == version and age < CACHE_SECONDS)
                ):
                    return hit[4]
            started = time.monotonic()
            with self._slots:
                response = self.search_scorecard(campaign)
            with self._cache_lock:
                self._cache[campaign.campaign_id] = (
                    key,
                    version,
                    started,
                    time.monotonic(),
                    response,
                )
            return response

    def forget_answers(self) -> None:
        """Drops every shared scorecard answer. Called when the index's state changes (a
        rebuild from Kafka starts or ends): the rebuild's bulks move no change version, so
        an answer computed mid-rebuild would otherwise be reused as complete afterwards."""
        with self._cache_lock:
            self._cache.clear()
            self._answers.clear()

    def _from_aggregates(self, campaign: evaluate_pb2.Campaign) -> dict[str, Any]:
        """The scorecard response from the maintained aggregates: computed once per change
        of the campaign's aggregates (or of the campaign) whoever asks, and not again
        within :data:`COST_SHARE` times as long as the last one took; one computation per
        campaign at a time, :data:`SCORECARD_SLOTS` at most at once. Objectives the
        aggregates cannot answer are searched for over the events, and that part is shared
        as the search answers are (for :data:`FRESH_SECONDS`, or :data:`CACHE_SECONDS`
        while nothing of the campaign changed)."""
        assert self.aggregates is not None
        key = campaign.SerializeToString(deterministic=True)
        with self._cache_lock:
            flight = self._flights.setdefault(campaign.campaign_id, threading.Lock())
        with flight:
            version = self.aggregates.version(campaign.campaign_id)
            with self._cache_lock:
                hit = self._answers.get(campaign.campaign_id)
            if hit is not None and hit[0] == key:
                age = time.monotonic() - hit[2]
                searched = hit[3]
                if (
                    (hit[1] == version and (not searched or age < CACHE_SECONDS))
                    or (searched and age < FRESH_SECONDS)
                    or age < COST_SHARE * hit[5]
                ):
                    return hit[4]
            with self._slots:
                started = time.monotonic()
                answer, version = self.aggregates.answer(campaign)
                if answer.unanswered:
                    self._search_unanswered(campaign, answer)
                ended = time.monotonic()
            with self._cache_lock:
                self._answers[campaign.campaign_id] = (
                    key,
                    version,
                    ended,
                    bool(answer.unanswered),
                    answer.response,
                    ended - started,
                )
            return answer.response

    def _search_unanswered(self, campaign: evaluate_pb2.Campaign, answer: Answer) -> None:
        """Adds the aggregations of the scopes the aggregates cannot answer (an author or
        hashtag filter), from one search over the campaign's events."""
        plan = plan_for(campaign)
        response = self.client.search(
            index=f"{self.prefix}-*",
            body={
                "size": 0,
                "query": {"term": {"campaign_ids": campaign.campaign_id}},
                "aggs": plan.aggs(answer.unanswered),
            },
        )
        answer.response["aggregations"].update(response["aggregations"])

    def search_scorecard(self, campaign: evaluate_pb2.Campaign) -> dict[str, Any]:
        """The scorecard search itself, never from the shared answers."""
        response: dict[str, Any] = self.client.search(
            index=f"{self.prefix}-*", body=scorecard_query(campaign)
        )
        return response


def _without_extras(source: dict[str, Any]) -> dict[str, Any]:
    """The envelope part of a document (drops the fields the evaluator added)."""
    return {k: v for k, v in source.items() if k not in ("campaign_ids", "kafka")}
