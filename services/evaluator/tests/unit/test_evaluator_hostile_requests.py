"""Issue 11's hostile requests to the evaluator, over a real gRPC server behind the real
access policy, with a fake index and producer: values the rest of the platform rejects are
refused naming the field, and an index that is down is UNAVAILABLE without its address."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opensearchpy.exceptions import ConnectionError as IndexConnectionError

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1.evaluator_service_pb2_grpc import (
    EvaluatorServiceStub,
    add_EvaluatorServiceServicer_to_server,
)
from legation.events.v1 import evaluate_pb2
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.grpc_server import build_server
from legation_core.testing import RecordingProducer
from legation_devstack.users import UsersFile
from legation_evaluator.adapters.grpc_api import EvaluatorApi
from legation_evaluator.adapters.policy import POLICY

Objective = evaluate_pb2.Objective


class FakeIndex:
    """Knows one campaign, or is down (its error names the index's address)."""

    def __init__(self) -> None:
        self.down = False

    def campaign(self, campaign_id: str) -> evaluate_pb2.Campaign | None:
        if self.down:
            raise IndexConnectionError(
                "N/A",
                "Connection refused",
                OSError("HTTPConnectionPool(host='opensearch.internal', port=9200)"),
            )
        return evaluate_pb2.Campaign(campaign_id=campaign_id, name="Plastics")


@pytest.fixture
def index() -> FakeIndex:
    return FakeIndex()


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer("evaluator")


@pytest.fixture
def stub(
    index: FakeIndex, producer: RecordingProducer, auth_users: UsersFile
) -> Iterator[EvaluatorServiceStub]:
    api = EvaluatorApi(index, producer)  # type: ignore[arg-type]
    server, _, port = build_server(
        0,
        [lambda server: add_EvaluatorServiceServicer_to_server(api, server)],
        [POLICY.service],
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(auth_users.path), [POLICY]),
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield EvaluatorServiceStub(with_token(channel, auth_users.token("campaign-owner")))
    server.stop(None).wait()


def refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details() or ""


def objective(**fields: Any) -> Objective:
    values: dict[str, Any] = {
        "objective_id": "voice",
        "metric": "share_of_voice",
        "comparison": Objective.COMPARISON_AT_LEAST,
        "target": 20,
    }
    values.update(fields)
    return Objective(**values)


def campaign(*objectives: Objective, **fields: Any) -> evaluate_pb2.Campaign:
    values: dict[str, Any] = {"campaign_id": "plastics-2026", "name": "Plastics"}
    values.update(fields)
    request = evaluate_pb2.Campaign(**values)
    request.objectives.extend(objectives)
    return request


def test_a_valid_campaign_is_published(
    stub: EvaluatorServiceStub, producer: RecordingProducer
) -> None:
    stub.CreateCampaign(campaign(objective(from_value=12.5)), timeout=5)
    assert len(producer.sent) == 1


@pytest.mark.parametrize(
    ("request_", "details"),
    [
        (
            campaign(objective(from_value=float("nan"))),
            "objectives[0].from_value: must be a finite number (got nan)",
        ),
        (
            campaign(objective(target=float("inf"))),
            "objectives[0].target: must be a finite number (got inf)",
        ),
        (
            # Found by the fuzz suite: a finite double beyond a 32-bit float was accepted and
            # the campaign then refused by the index ([float] supports only finite values).
            campaign(objective(from_value=1.7976931348623157e308)),
            "objectives[0].from_value: at most 1e+15 (got 1.79769e+308)",
        ),
        (
            campaign(objective(target=-3.5e38)),
            "objectives[0].target: at least -1e+15 (got -3.5e+38)",
        ),
        (
            campaign(objective(comparison=99)),
            "objectives[0].comparison: 99 is not a Comparison",
        ),
        (
            campaign(*[objective(objective_id=f"o-{n}") for n in range(20_000)]),
            "objectives: at most 200 items (got 20000)",
        ),
        (
            campaign(objective(description="d" * 2_000_000)),
            "objectives[0].description: at most 2000 characters (got 2000000)",
        ),
        (campaign(name="n" * 3_000_000), "name: at most 200 characters (got 3000000)"),
        (
            campaign(starts_at={"seconds": 10**12}),
            "starts_at: a time from 1970-01-01T00:00:00Z to 2199-12-31T23:59:59Z",
        ),
        (
            campaign(objective(deadline={"seconds": -(10**11)})),
            "objectives[0].deadline: a time from 1970-01-01T00:00:00Z",
        ),
        (campaign(countries=["Mexico"]), "countries[0]: must be an ISO 3166-1 alpha-2"),
    ],
)
def test_values_the_platform_rejects_are_invalid_argument_naming_the_field(
    stub: EvaluatorServiceStub,
    producer: RecordingProducer,
    request_: evaluate_pb2.Campaign,
    details: str,
) -> None:
    code, message = refused(lambda: stub.CreateCampaign(request_, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(details), message
    assert producer.sent == []


def test_a_campaign_id_with_a_nul_or_an_rtl_override_is_refused(
    stub: EvaluatorServiceStub,
) -> None:
    for bad in ("plastics\x00", "plastics\u202e6202"):
        code, details = refused(
            lambda bad=bad: stub.GetCampaignScorecard(
                pb.GetCampaignScorecardRequest(campaign_id=bad), timeout=5
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert details.startswith("campaign_id: must be an id")


def test_feedback_while_the_index_is_down_is_unavailable_without_its_address(
    stub: EvaluatorServiceStub, index: FakeIndex, producer: RecordingProducer
) -> None:
    index.down = True
    request = pb.SubmitFeedbackRequest(
        campaign_id="plastics-2026",
        feedback=evaluate_pb2.Feedback(
            from_role=evaluate_pb2.Feedback.FROM_ROLE_AUDIENCE, rating=4, text="Clear."
        ),
    )
    code, details = refused(
        lambda: stub.SubmitFeedback(request, timeout=5, metadata=(("x-trace-id", "t-fb"),))
    )
    assert (code, details) == (
        grpc.StatusCode.UNAVAILABLE,
        "temporarily unavailable, retry; reference t-fb",
    )
    assert producer.sent == []
    index.down = False
    stub.SubmitFeedback(request, timeout=5)
    assert len(producer.sent) == 1


def test_a_rating_beyond_five_is_refused(stub: EvaluatorServiceStub) -> None:
    request = pb.SubmitFeedbackRequest(
        campaign_id="plastics-2026",
        feedback=evaluate_pb2.Feedback(
            from_role=evaluate_pb2.Feedback.FROM_ROLE_AUDIENCE, rating=999, text="x"
        ),
    )
    code, details = refused(lambda: stub.SubmitFeedback(request, timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("feedback.rating")
