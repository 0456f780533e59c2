"""Every gRPC error of every service comes from one mapping (legation_core.auth.answer over
legation_core.calls.STATUS): each service's domain errors are listed here with the status
and message a caller gets, a new one fails the walk until it is listed, and no servicer
answers a status itself."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from pathlib import Path

import grpc
import pytest

from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation_core.auth import RoleRequired, answer
from legation_core.calls import AccessDenied, CallError, CallExpired
from legation_core.kafka import RecordTooLarge
from legation_core.state import StoreUnavailable
from legation_core.testing import call
from legation_engager.domain.inbox import ConversationError, InvalidStatusChange
from legation_engager.domain.partners import PartnerError
from legation_engager.domain.questions import QuestionsError, QuestionsListError
from legation_evaluator.adapters.rebuild import IndexRebuilding
from legation_evaluator.domain.campaigns import InvalidRequest
from legation_evaluator.domain.review import NotFinished
from legation_listener.adapters.preview_reads import PreviewBusy
from legation_listener.domain.issues import IssueError, QueryIssueError
from legation_listener.domain.labels import LabelError
from legation_listener.domain.query import QueryError
from legation_publisher.domain.posts import InvalidPost
from legation_publisher.domain.workflow import Conflict as PostConflict

ROOT = Path(__file__).resolve().parents[1]
SERVICES = (
    "legation_listener",
    "legation_publisher",
    "legation_engager",
    "legation_evaluator",
    "legation_notifier",
)
Code = grpc.StatusCode

# One instance of every domain error, the status and the message its caller gets.
CASES: list[tuple[CallError, grpc.StatusCode, str]] = [
    (
        IssueError("keywords", "must not be empty"),
        Code.INVALID_ARGUMENT,
        "keywords must not be empty",
    ),
    (
        QueryIssueError(QueryError("unbalanced parenthesis", 7)),
        Code.INVALID_ARGUMENT,
        "query: unbalanced parenthesis at position 7",
    ),
    (LabelError("stance must be one of a, b"), Code.INVALID_ARGUMENT, "stance must be one of a, b"),
    (
        PreviewBusy("feeds: 2 previews are reading"),
        Code.RESOURCE_EXHAUSTED,
        "feeds: 2 previews are reading",
    ),
    (InvalidPost("content", "is required"), Code.INVALID_ARGUMENT, "content is required"),
    (PostConflict("cannot edit: scheduled"), Code.FAILED_PRECONDITION, "cannot edit: scheduled"),
    (ConversationError("officer: is required"), Code.INVALID_ARGUMENT, "officer: is required"),
    (InvalidStatusChange("only from closed"), Code.FAILED_PRECONDITION, "only from closed"),
    (PartnerError("kind: is required"), Code.INVALID_ARGUMENT, "kind: is required"),
    (QuestionsError("hashtag: is required"), Code.INVALID_ARGUMENT, "hashtag: is required"),
    (QuestionsListError("page_size: at most 100"), Code.INVALID_ARGUMENT, "page_size: at most 100"),
    (InvalidRequest("name is required"), Code.INVALID_ARGUMENT, "name is required"),
    (
        NotFinished("campaign c has no ends_at"),
        Code.FAILED_PRECONDITION,
        "campaign c has no ends_at",
    ),
    (IndexRebuilding("the index is being rebuilt"), Code.UNAVAILABLE, "the index is being rebuilt"),
    # The shared ones the services raise as they are.
    (AccessDenied("feeds: needs analyst"), Code.PERMISSION_DENIED, "feeds: needs analyst"),
    (
        RoleRequired("ana needs the role approver"),
        Code.PERMISSION_DENIED,
        "ana needs the role approver",
    ),
    (CallExpired("deadline passed"), Code.DEADLINE_EXCEEDED, "deadline passed"),
    (RecordTooLarge("PostState event is 2 MB"), Code.INVALID_ARGUMENT, "PostState event is 2 MB"),
]


def _defined_in_services() -> set[type[CallError]]:
    found: set[type[CallError]] = set()
    for name in SERVICES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if module.name.endswith("__main__") or ".models." in module.name:
                continue
            loaded = importlib.import_module(module.name)
            for value in vars(loaded).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, CallError)
                    and value.__module__ == module.name
                ):
                    found.add(value)
    return found


def test_every_domain_error_of_every_service_is_listed() -> None:
    listed = {type(error) for error, _, _ in CASES if type(error).__module__.startswith(SERVICES)}
    assert _defined_in_services() == listed


@pytest.mark.parametrize(
    ("error", "status", "message"), CASES, ids=[type(error).__name__ for error, _, _ in CASES]
)
def test_each_domain_error_has_its_status_and_its_own_message(
    error: CallError, status: grpc.StatusCode, message: str
) -> None:
    assert answer(error, "Method", "t-1") == (status, message)


def test_a_dependency_down_is_unavailable_without_its_text() -> None:
    error = StoreUnavailable("Kafka did not acknowledge: kafka-0.internal:9092 timed out")
    assert answer(error, "Method", "t-2") == (
        Code.UNAVAILABLE,
        "temporarily unavailable, retry; reference t-2",
    )


def test_an_unexpected_error_is_internal_with_the_stack_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def crashing(request: listener_pb.ListIssuesRequest, context: grpc.ServicerContext) -> None:
        raise KeyError("row 7 of /var/lib/legation/issues.db")

    with caplog.at_level(logging.ERROR, logger="legation_core.auth"):
        _, context = call(crashing, listener_pb.ListIssuesRequest())
    assert (context.code, context.details) == (Code.INTERNAL, "internal error; reference t-test")
    [record] = [r for r in caplog.records if r.getMessage() == "unexpected error in a gRPC call"]
    assert record.exc_info is not None and "issues.db" in str(record.exc_info[1])
    assert "Traceback" in caplog.text and "crashing" in caplog.text


def test_no_servicer_answers_a_status_itself() -> None:
    """The servicers raise; only the runtime (legation_core) turns errors into statuses."""
    offenders = []
    for path in sorted(ROOT.glob("services/*/src/legation_*/adapters/**/*.py")):
        if "legation_console" in str(path):
            continue  # the console is a gRPC client
        for number, line in enumerate(path.read_text().splitlines(), 1):
            answers = ".abort(" in line or (
                path.name.startswith("grpc_") and re.search(r"StatusCode\.(?!OK\b)", line)
            )
            if answers:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
