"""Issue 11's hostile requests to the listener, over a real gRPC server with the real access
policy and the real producer (over an in-memory Kafka): each is refused before any work,
naming the field, and a command whose caller gave up is never applied."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from listener_fakes import (
    GOOD,
    Listener,
    make_listener,
)

from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1.listener_service_pb2_grpc import (
    ListenerServiceStub,
    add_ListenerServiceServicer_to_server,
)
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.grpc_server import build_server
from legation_core.topic_names import LISTEN_TRACKED_ISSUES_V1
from legation_devstack.users import UsersFile
from legation_listener.adapters import grpc_api
from legation_listener.adapters.policy import POLICY
from legation_listener.domain.issues import tracked_issue_from_request as validate


@pytest.fixture
def listener() -> Listener:
    return make_listener({GOOD: []})


@pytest.fixture
def stub(listener: Listener, auth_users: UsersFile) -> Iterator[ListenerServiceStub]:
    server, _, port = build_server(
        0,
        [lambda server: add_ListenerServiceServicer_to_server(listener.api, server)],
        [POLICY.service],
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(auth_users.path), [POLICY]),
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield ListenerServiceStub(with_token(channel, auth_users.token("analyst")))
    server.stop(None).wait()


def refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details() or ""


def track(**fields: Any) -> pb.TrackIssueRequest:
    request: dict[str, Any] = {"name": "Plastics", "keywords": ["treaty"], "feeds": [GOOD]}
    request.update(fields)
    return pb.TrackIssueRequest(**request)


def test_a_query_of_199_nested_parentheses_is_invalid_argument(
    stub: ListenerServiceStub,
) -> None:
    query = "(" * 199 + "a" + ")" * 199 + " OR b"  # 405 characters, as in issue 11
    for call in (
        lambda: stub.TrackIssue(track(query=query), timeout=5),
        lambda: stub.PreviewQuery(pb.PreviewQueryRequest(query=query), timeout=5),
    ):
        assert refused(call) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "query: at most 20 levels of nested parentheses",
        )


def test_a_long_chain_of_nots_is_invalid_argument_not_a_recursion_error(
    stub: ListenerServiceStub,
) -> None:
    query = "a AND " + "NOT " * 990 + "b"  # within the length, no parentheses
    code, details = refused(lambda: stub.PreviewQuery(pb.PreviewQueryRequest(query=query)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("query: nests more than the limit of 20 levels (parentheses and NOT)")


def test_a_hundred_thousand_keywords_are_refused_at_once_and_nothing_is_written(
    stub: ListenerServiceStub, listener: Listener
) -> None:
    started = time.monotonic()
    keywords = [f"keyword {number}" for number in range(100_000)]
    code, details = refused(lambda: stub.TrackIssue(track(keywords=keywords), timeout=10))
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "keywords: at most 500 items (got 100000)",
    )
    assert time.monotonic() - started < 3
    assert listener.kafka.records == []


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"name": "n" * 1_000_000}, "name: at most 200 characters (got 1000000)"),
        ({"issue_id": "plastics\x00"}, "issue_id: must be an id"),
        ({"issue_id": "plastics\u202etxt.exe"}, "issue_id: must be an id"),
        ({"campaign_ids": ["c 1"]}, "campaign_ids[0]: must be an id"),
        ({"languages": ["english please"]}, "languages[0]: must be a BCP 47 language tag"),
        ({"feeds": [GOOD] * 51}, "feeds: at most 50 items (got 51)"),
    ],
)
def test_hostile_fields_are_invalid_argument_naming_them(
    stub: ListenerServiceStub, listener: Listener, fields: dict[str, Any], details: str
) -> None:
    code, message = refused(lambda: stub.TrackIssue(track(**fields), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(details)
    assert listener.kafka.records == []


def test_an_id_with_a_nul_is_refused_by_every_rpc_taking_it(stub: ListenerServiceStub) -> None:
    bad = "plastics\x00"
    for call in (
        lambda: stub.UpdateIssue(pb.UpdateIssueRequest(issue_id=bad, name="x")),
        lambda: stub.SetIssueActive(pb.SetIssueActiveRequest(issue_id=bad)),
        lambda: stub.DeleteIssue(pb.DeleteIssueRequest(issue_id=bad)),
        lambda: stub.PollNow(pb.PollNowRequest(issue_id=bad)),
        lambda: stub.ListSources(pb.ListSourcesRequest(issue_id=bad)),
    ):
        code, details = refused(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert details.startswith("issue_id: must be an id")


def test_a_track_issue_whose_caller_gave_up_is_not_applied_after_a_newer_one(
    stub: ListenerServiceStub, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: a slow TrackIssue timed out for its caller and was applied 133 s later,
    overwriting a newer version."""
    finished = threading.Event()

    def slow_for_the_old_version(request: pb.TrackIssueRequest, **options: Any) -> Any:
        try:
            if request.name == "Old":
                time.sleep(0.8)
            return validate(request, **options)
        finally:
            if request.name == "Old":
                finished.set()

    monkeypatch.setattr(grpc_api, "tracked_issue_from_request", slow_for_the_old_version)
    old = stub.TrackIssue.future(track(issue_id="plastics", name="Old"), timeout=0.3)
    time.sleep(0.4)
    assert old.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    stub.TrackIssue(track(issue_id="plastics", name="New"), timeout=5)
    assert finished.wait(5)
    time.sleep(0.1)
    written = [
        envelope.tracked_issue.name for _, envelope in listener.kafka.on(LISTEN_TRACKED_ISSUES_V1)
    ]
    assert written == ["New"]
    issue = listener.state.issue("plastics")
    assert issue is not None and issue.name == "New"
