"""Searches over indexed mentions and alerts (no I/O): the request's limits, the OpenSearch
query, the page token and the answer built from the hits."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import listen_pb2
from legation_core.codec import envelope_from_json
from legation_evaluator.domain.campaigns import InvalidRequest

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_VALUES = 20
MAX_STRING = 200
MAX_TOKEN = 500
# OpenSearch counts hits exactly up to this.
TRACK_TOTAL = 10000
_EXTRAS = ("campaign_ids", "kafka")
UNKNOWN = "unknown"
_FILTER_LISTS = ("issue_ids", "languages", "sources", "sentiments", "stances")


def _check_strings(field: str, values: Sequence[str]) -> None:
    if len(values) > MAX_VALUES:
        raise InvalidRequest(f"{field} has {len(values)} values, at most {MAX_VALUES}")
    for i, value in enumerate(values):
        if len(value) > MAX_STRING:
            raise InvalidRequest(f"{field}[{i}] is longer than {MAX_STRING} characters")


def _page_size(size: int) -> int:
    if size > MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be at most {MAX_PAGE_SIZE}")
    return size or DEFAULT_PAGE_SIZE


def validate_search(request: pb.SearchMentionsRequest) -> None:
    """Raises :class:`InvalidRequest` naming the field that is out of its limits."""
    for field in _FILTER_LISTS:
        _check_strings(field, getattr(request, field))
    if not 0.0 <= request.min_influence <= 1.0:
        raise InvalidRequest("min_influence must be between 0 and 1")
    _page_size(request.page_size)
    if len(request.page_token) > MAX_TOKEN:
        raise InvalidRequest(f"page_token is longer than {MAX_TOKEN} characters")
    decode_token(request.page_token)


def encode_token(sort: Sequence[Any]) -> str:
    """The page token: the last hit's sort values, opaque to callers."""
    return base64.urlsafe_b64encode(json.dumps(list(sort)).encode()).decode()


def decode_token(token: str) -> list[Any] | None:
    """The sort values of a page token (None for the first page)."""
    if not token:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest("page_token is not one this service gave") from error
    if not isinstance(values, list) or len(values) != 2:
        raise InvalidRequest("page_token is not one this service gave")
    if not all(isinstance(v, int | float | str) for v in values):
        raise InvalidRequest("page_token is not one this service gave")
    return values


def _languages(languages: Sequence[str]) -> dict[str, Any]:
    """A language matches itself and its regional variants ("es" matches "es-MX")."""
    clauses: list[dict[str, Any]] = [{"terms": {"mention.language": list(languages)}}]
    clauses += [{"prefix": {"mention.language": f"{tag}-"}} for tag in languages]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def _labels(field: str, values: Sequence[str]) -> dict[str, Any]:
    """A label among ``values``; "unknown" also matches a mention without the label (an
    empty value, or none at all), which readers see as unknown too."""
    if UNKNOWN not in values:
        return {"terms": {field: list(values)}}
    clauses: list[dict[str, Any]] = [
        {"terms": {field: [*values, ""]}},
        {"bool": {"must_not": [{"exists": {"field": field}}]}},
    ]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def mentions_filters(request: pb.SearchMentionsRequest) -> list[dict[str, Any]]:
    """The filter clauses of a search (every one must hold)."""
    filters: list[dict[str, Any]] = [{"exists": {"field": "mention.mention_id"}}]
    if request.issue_ids:
        filters.append({"terms": {"issue_id": list(request.issue_ids)}})
    if request.languages:
        filters.append(_languages(request.languages))
    if request.sources:
        sources = list(request.sources)
        filters.append(
            {
                "bool": {
                    "should": [
                        {"terms": {"mention.source": sources}},
                        {"terms": {"mention.source_url": sources}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    if request.sentiments:
        filters.append(_labels("mention.sentiment.value", request.sentiments))
    if request.stances:
        filters.append(_labels("mention.stance.value", request.stances))
    if request.min_influence > 0:
        filters.append({"range": {"mention.influence": {"gte": request.min_influence}}})
    window: dict[str, str] = {}
    if request.HasField("published_after"):
        window["gte"] = request.published_after.ToJsonString()
    if request.HasField("published_before"):
        window["lt"] = request.published_before.ToJsonString()
    if window:
        filters.append({"range": {"mention.published_at": window}})
    return filters


def mentions_query(request: pb.SearchMentionsRequest) -> dict[str, Any]:
    """The search body: filters, newest first with the mention id as tie-breaker, one page
    after the token's position."""
    query: dict[str, Any] = {"filter": mentions_filters(request)}
    if request.fold_duplicates:
        # Documents print every field, so a first copy has duplicate_of "" (or none at all).
        query["filter"].append(
            {
                "bool": {
                    "should": [
                        {"term": {"mention.duplicate_of": ""}},
                        {"bool": {"must_not": [{"exists": {"field": "mention.duplicate_of"}}]}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    body: dict[str, Any] = {
        "size": _page_size(request.page_size),
        "track_total_hits": TRACK_TOTAL,
        "query": {"bool": query},
        "sort": [
            {"mention.published_at": {"order": "desc"}},
            {"mention.mention_id": {"order": "desc"}},
        ],
    }
    after = decode_token(request.page_token)
    if after is not None:
        body["search_after"] = after
    return body


def copies_query(mention_ids: Sequence[str]) -> dict[str, Any]:
    """How many copies name each of ``mention_ids`` as their first copy (one aggregation)."""
    return {
        "size": 0,
        "query": {"terms": {"mention.duplicate_of": list(mention_ids)}},
        "aggs": {
            "copies": {"terms": {"field": "mention.duplicate_of", "size": len(mention_ids) or 1}}
        },
    }


def copies_from(response: dict[str, Any]) -> dict[str, int]:
    """mention id -> copies, from the answer to :func:`copies_query`."""
    buckets = response.get("aggregations", {}).get("copies", {}).get("buckets", [])
    return {str(b["key"]): int(b["doc_count"]) for b in buckets}


def _source(hit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hit["_source"].items() if k not in _EXTRAS}


def search_response(
    response: dict[str, Any], page_size: int, copies: dict[str, int] | None = None
) -> pb.SearchMentionsResponse:
    """The answer: the page's mentions, a token when the page is full, the total."""
    hits = response["hits"]["hits"]
    result = pb.SearchMentionsResponse()
    for hit in hits:
        envelope = envelope_from_json(_source(hit))
        mention: listen_pb2.Mention = envelope.mention
        result.mentions.add(
            mention=mention,
            issue_id=envelope.issue_id,
            copies=(copies or {}).get(mention.mention_id, 0),
        )
    size = page_size or DEFAULT_PAGE_SIZE
    if len(hits) >= size and hits and "sort" in hits[-1]:
        result.next_page_token = encode_token(hits[-1]["sort"])
    total = response["hits"].get("total", 0)
    result.total = int(total["value"] if isinstance(total, dict) else total)
    return result


def validate_alerts(request: pb.ListAlertsRequest) -> None:
    """Raises :class:`InvalidRequest` naming the field that is out of its limits."""
    if len(request.issue_id) > MAX_STRING:
        raise InvalidRequest(f"issue_id is longer than {MAX_STRING} characters")
    _check_strings("issue_ids", request.issue_ids)
    _page_size(request.page_size)


def alerts_query(request: pb.ListAlertsRequest) -> dict[str, Any]:
    """Alerts of the issues asked for (or all) whose window starts within [since, until),
    newest first."""
    filters: list[dict[str, Any]] = [{"exists": {"field": "alert.alert_id"}}]
    issues = list(dict.fromkeys(i for i in (request.issue_id, *request.issue_ids) if i))
    if issues:
        filters.append({"terms": {"alert.issue_id": issues}})
    window: dict[str, str] = {}
    if request.HasField("since"):
        window["gte"] = request.since.ToJsonString()
    if request.HasField("until"):
        window["lt"] = request.until.ToJsonString()
    if window:
        filters.append({"range": {"alert.window_start": window}})
    return {
        "size": _page_size(request.page_size),
        "query": {"bool": {"filter": filters}},
        "sort": [{"alert.window_start": {"order": "desc"}}],
    }


def alerts_response(response: dict[str, Any]) -> pb.ListAlertsResponse:
    """The alerts of the hits, in the search's order."""
    alerts = [envelope_from_json(_source(hit)).alert for hit in response["hits"]["hits"]]
    return pb.ListAlertsResponse(alerts=alerts)
