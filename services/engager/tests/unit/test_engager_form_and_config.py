"""The public questions form (WSGI, no server) and the rules file at start-up."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from legation.events.v1 import engage_pb2
from legation_core.config import ConfigError
from legation_core.testing import RecordingProducer
from legation_engager.__main__ import load_rules
from legation_engager.adapters.form import QuestionsForm, RateLimit
from legation_engager.adapters.grpc_api import EngagerApi
from legation_engager.adapters.store import EngagerState
from legation_engager.config import EngagerSettings
from legation_engager.domain import questions
from legation_engager.domain.rules import Rules


def call(app: QuestionsForm, method: str, path: str, body: bytes, content_type: str) -> Any:
    seen: dict[str, str] = {}

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type,
        "wsgi.input": io.BytesIO(body),
    }
    data = b"".join(app(environ, start))  # type: ignore[arg-type]
    return seen["status"], json.loads(data)


@pytest.fixture
def form() -> tuple[QuestionsForm, EngagerState, str]:
    state = EngagerState(RecordingProducer("engager"))
    campaign = questions.create("r", "c", "i", "Ask us", "", "", set(), "ana", questions_now())
    with state.questions.transaction() as transaction:
        transaction.put(campaign)
    return QuestionsForm(EngagerApi(state, Rules(), {})), state, campaign.questions_id


def questions_now() -> datetime:
    return datetime(2026, 11, 20, tzinfo=UTC)


def test_a_form_post_becomes_a_pending_question(
    form: tuple[QuestionsForm, EngagerState, str],
) -> None:
    app, state, qid = form
    status, _body = call(
        app,
        "POST",
        f"/questions/{qid}",
        b"author=Ana&text=Why%3F",
        "application/x-www-form-urlencoded",
    )
    assert status.startswith("202")
    campaign = state.questions.get(qid)
    assert campaign is not None
    [question] = campaign.questions
    assert (question.source, question.author, question.text) == ("form", "Ana", "Why?")
    assert question.status == engage_pb2.QUESTION_STATUS_PENDING


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/questions/{qid}", b'{"text": ""}', "400", "text: is required"),
        ("POST", "/questions/{qid}", b"[1]", "400", "body: expected a form or JSON"),
        ("POST", "/questions/nope", b'{"text": "Why?"}', "404", "questions campaign nope"),
        ("GET", "/questions/{qid}", b"", "405", "use POST"),
        ("POST", "/other", b"", "404", "POST /questions/<questions_id>"),
        ("POST", "/questions/{qid}", b"[" * 5000, "400", "body: JSON nested deeper than 4"),
        ("POST", "/questions/{qid}", b'{"text": {"a": 1}}', "400", "text: expected a string"),
        ("POST", "/questions/{qid}", b'{"text": NaN}', "400", "NaN is not a JSON number"),
        ("POST", "/questions/{qid}", b"{" + b" " * 17000 + b"}", "413", "at most 16384 bytes"),
    ],
)
def test_bad_form_posts_get_clear_errors(
    form: tuple[QuestionsForm, EngagerState, str],
    method: str,
    path: str,
    body: bytes,
    status: str,
    message: str,
) -> None:
    app, _state, qid = form
    got, answer = call(app, method, path.format(qid=qid), body, "application/json")
    assert got.startswith(status)
    assert message in answer["error"]


def test_a_bad_rules_file_stops_start_up_naming_the_variable_and_field(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("sla: {high: -1}\nreply_channels: [{source: mastodon, channel: tv}]\n")
    settings = EngagerSettings(auth_disabled=True, engager_rules_file=rules)
    with pytest.raises(ConfigError, match=r"LEGATION_ENGAGER_RULES_FILE: sla\.high: expected"):
        load_rules(settings, {})
    rules.write_text("reply_channels: [{source: mastodon, channel: tv}]\n")
    with pytest.raises(ConfigError, match=r"reply_channels\[0\]\.channel: 'tv' is not in"):
        load_rules(settings, {})
    assert load_rules(EngagerSettings(auth_disabled=True), {}) == Rules()


def test_one_address_gets_a_few_questions_a_minute() -> None:
    now = [0.0]
    limit = RateLimit(3, clock=lambda: now[0])
    assert [limit.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.wait("a") == pytest.approx(20.0)  # one token every 20 s
    assert limit.wait("b") == 0.0  # another address
    now[0] = 20.0
    assert limit.wait("a") == 0.0


def test_a_body_of_undeclared_length_is_refused_before_it_is_read(
    form: tuple[QuestionsForm, EngagerState, str],
) -> None:
    app, _state, qid = form
    endless = io.BytesIO(b"x" * 1_000_000)
    seen: dict[str, str] = {}

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    for length, status, message in [
        ("-1", "400", "Content-Length: not a number of bytes"),
        ("", "411", "Content-Length is required"),
    ]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/questions/{qid}",
            "CONTENT_LENGTH": length,
            "CONTENT_TYPE": "application/json",
            "REMOTE_ADDR": "203.0.113.1",
            "wsgi.input": endless,
        }
        answer = json.loads(b"".join(app(environ, start)))  # type: ignore[arg-type]
        assert seen["status"].startswith(status)
        assert message in answer["error"]
    assert endless.tell() == 0
