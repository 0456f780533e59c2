"""SearchMentions and ListAlerts against the OpenSearch stand-in: mentions indexed through
the evaluator's document path, the API over a real gRPC server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from evaluator_seed import index_events, serving

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import listen_pb2
from legation_core.codec import Envelope, make_envelope
from legation_devstack.standins import OpenSearchStandIn
from legation_devstack.users import UsersFile
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.config import EvaluatorSettings

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _mention(n: int, issue: str, **fields: object) -> Envelope:
    at = NOW - timedelta(minutes=n)
    mention = listen_pb2.Mention(mention_id=f"m{n}", text=f"mention {n}", **fields)  # type: ignore[arg-type]
    mention.published_at.FromDatetime(at)
    return make_envelope(
        mention, event_id=f"e{n}", source_service="listener", occurred_at=at, issue_id=issue
    )


def _alert(issue: str, hours_ago: int) -> Envelope:
    start = NOW - timedelta(hours=hours_ago)
    alert = listen_pb2.Alert(alert_id=f"a-{issue}-{hours_ago}", issue_id=issue, count=9)
    alert.window_start.FromDatetime(start)
    alert.window_end.FromDatetime(start + timedelta(hours=1))
    return make_envelope(
        alert, event_id=alert.alert_id, source_service="listener", occurred_at=start, issue_id=issue
    )


def _label(value: str) -> listen_pb2.Label:
    return listen_pb2.Label(value=value, score=0.9)


SEED = [
    _mention(1, "plastics", language="es-MX", source="rss", sentiment=_label("negative"),
             stance=_label("against"), influence=0.8),
    _mention(2, "plastics", language="es", source="mastodon", sentiment=_label("positive"),
             stance=_label("favour"), influence=0.2),
    _mention(3, "plastics", language="en", source="rss", sentiment=_label("negative"),
             stance=_label("favour"), influence=0.5, duplicate_of="m4"),
    _mention(4, "plastics", language="en", source="rss", sentiment=_label("negative"),
             stance=_label("favour"), influence=0.5),
    _mention(5, "oceans", language="fr", source="rss", influence=0.9),
    _alert("plastics", 2),
    _alert("plastics", 30),
    _alert("oceans", 3),
]  # fmt: skip


@pytest.fixture(scope="module")
def stub(
    opensearch_stand_in: OpenSearchStandIn, auth_users: UsersFile
) -> Iterator[pb_grpc.EvaluatorServiceStub]:
    settings = EvaluatorSettings(opensearch_url=opensearch_stand_in.url)
    index = EventIndex(connect(settings), f"test-mentions-{NOW:%H%M%S%f}")
    index.ensure_template()
    index_events(index, SEED)
    with serving(index, auth_users) as stub:
        yield stub


def _ids(stub: pb_grpc.EvaluatorServiceStub, **filters: object) -> list[str]:
    answer = stub.SearchMentions(pb.SearchMentionsRequest(**filters))  # type: ignore[arg-type]
    return [hit.mention.mention_id for hit in answer.mentions]


def test_mentions_come_newest_first_and_filters_narrow_them(
    stub: pb_grpc.EvaluatorServiceStub,
) -> None:
    assert _ids(stub) == ["m1", "m2", "m3", "m4", "m5"]
    assert _ids(stub, issue_ids=["oceans"]) == ["m5"]
    assert _ids(stub, languages=["es"]) == ["m1", "m2"]  # es matches es-MX
    assert _ids(stub, sources=["mastodon"]) == ["m2"]
    assert _ids(stub, sentiments=["negative"], stances=["favour"]) == ["m3", "m4"]
    assert _ids(stub, min_influence=0.5) == ["m1", "m3", "m4", "m5"]
    # "unknown" is also a mention without the label at all (m5 has neither).
    assert _ids(stub, stances=["unknown"]) == ["m5"]
    assert _ids(stub, sentiments=["unknown", "positive"]) == ["m2", "m5"]


def test_duplicates_fold_into_their_first_copy_with_a_count(
    stub: pb_grpc.EvaluatorServiceStub,
) -> None:
    answer = stub.SearchMentions(pb.SearchMentionsRequest(fold_duplicates=True))
    assert [hit.mention.mention_id for hit in answer.mentions] == ["m1", "m2", "m4", "m5"]
    assert {hit.mention.mention_id: hit.copies for hit in answer.mentions}["m4"] == 1
    assert answer.mentions[0].issue_id == "plastics"


def test_pages_follow_the_token_to_the_end(stub: pb_grpc.EvaluatorServiceStub) -> None:
    first = stub.SearchMentions(pb.SearchMentionsRequest(page_size=2))
    assert [h.mention.mention_id for h in first.mentions] == ["m1", "m2"]
    assert first.total == 5 and first.next_page_token
    second = stub.SearchMentions(
        pb.SearchMentionsRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [h.mention.mention_id for h in second.mentions] == ["m3", "m4"]


def test_bad_requests_name_the_field(stub: pb_grpc.EvaluatorServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.SearchMentions(pb.SearchMentionsRequest(page_size=101))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in (error.value.details() or "")


def test_alerts_of_an_issue_within_a_window_newest_first(
    stub: pb_grpc.EvaluatorServiceStub,
) -> None:
    every = stub.ListAlerts(pb.ListAlertsRequest())
    assert [a.alert_id for a in every.alerts] == ["a-plastics-2", "a-oceans-3", "a-plastics-30"]
    request = pb.ListAlertsRequest(issue_id="plastics")
    request.since.FromDatetime(NOW - timedelta(hours=24))
    assert [a.alert_id for a in stub.ListAlerts(request).alerts] == ["a-plastics-2"]
