"""The web application without a browser or a service (Starlette's test client, fake
clients): who may reach what, the CSRF check, the security headers and the session cookie,
a page made from a (fake) service's answer, escaped, and a report drawn with its progress
shown (the stream's events, the download of the report it drew, the fallback when the
link's report is not kept here)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from console_fakes import CSRF, PEOPLE, FakeServices, console_client
from starlette.testclient import TestClient

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation_console.adapters.services import (
    ConsoleIdentity,
    EvaluatorClient,
    ListenerClient,
    ServiceError,
)
from legation_console.adapters.signin import safe_next
from legation_console.domain.people import Person


class FakeListener(ListenerClient):
    def __init__(self) -> None:
        self.tracked: list[tuple[str, listener_pb.TrackIssueRequest]] = []

    async def list_issues(self, person: Person) -> list[listen_pb2.TrackedIssue]:
        return [listen_pb2.TrackedIssue(issue_id="x", name="<script>x</script>", active=True)]

    async def track_issue(
        self, person: Person, request: listener_pb.TrackIssueRequest
    ) -> listen_pb2.TrackedIssue:
        if "analyst" not in person.roles:
            raise ServiceError("listener", "TrackIssue", _denied(), "needs the role analyst")
        self.tracked.append((person.username, request))
        return listen_pb2.TrackedIssue(issue_id="p", name=request.name)


def _denied() -> Any:
    import grpc

    return grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture
def listener() -> FakeListener:
    return FakeListener()


def make_client(listener: FakeListener, https: bool = False) -> TestClient:
    services: Any = FakeServices(listener, None, None, None)  # type: ignore[arg-type]
    return console_client(services, https=https)


@pytest.fixture
def client(listener: FakeListener) -> Iterator[TestClient]:
    with make_client(listener) as started:
        yield started


def test_pages_need_a_person(client: TestClient) -> None:
    page = client.get("/listen/issues?x=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=%2Flisten%2Fissues%3Fx%3D1"
    htmx = client.post("/listen/query-check", headers={"HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"].startswith("/sign-in?next=")
    assert client.get("/healthz").text == "ok"


def test_a_page_from_the_service_escaped_with_strict_headers(client: TestClient) -> None:
    client.get("/sign-in?as=ana")
    page = client.get("/listen/issues")
    assert page.status_code == 200
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text
    assert "<script>x</script>" not in page.text
    assert "Ana &lt;Lytic&gt;" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "form-action 'self' https://login.example" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text.split("</head>")[1]  # no inline script in the body


def test_a_post_needs_the_sessions_csrf_token(client: TestClient, listener: FakeListener) -> None:
    client.get("/sign-in?as=ana")
    form = {"name": "P", "query": "p", "feeds": "https://example.org/f.rss"}
    assert client.post("/listen/issues", data=form).status_code == 403
    wrong = client.post("/listen/issues", data={**form, "csrf_token": "nope"})
    assert wrong.status_code == 403
    assert listener.tracked == []
    saved = client.post("/listen/issues", data={**form, "csrf_token": CSRF}, follow_redirects=False)
    assert saved.status_code == 303
    assert [(user, request.name) for user, request in listener.tracked] == [("ana", "P")]
    # htmx sends the token as a header.
    assert client.post("/listen/issues", data=form, headers={"X-CSRF-Token": CSRF}).status_code in (
        303,
        200,
    )


def test_a_refusal_from_the_service_is_a_403_page(client: TestClient) -> None:
    client.get("/sign-in?as=vic")
    page = client.get("/listen/issues")
    assert 'data-testid="track-issue"' not in page.text
    refused = client.post(
        "/listen/issues",
        data={"csrf_token": CSRF, "name": "P", "query": "p", "feeds": "https://e.org/f"},
    )
    assert refused.status_code == 403
    assert "needs the role analyst" in refused.text


def test_the_session_cookie(listener: FakeListener) -> None:
    with make_client(listener) as plain:
        cookie = plain.get("/sign-in?as=ana", follow_redirects=False).headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower()
    with make_client(listener, https=True) as https:
        cookie = https.get("/sign-in?as=ana", follow_redirects=False).headers["set-cookie"]
        assert "secure" in cookie.lower()
        page = https.get("/")
        assert page.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/listen/issues?x=1", "/listen/issues?x=1"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_after_sign_in_only_console_paths(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe


def test_the_console_identity_sends_its_token_with_the_person() -> None:
    from legation_console.adapters.services import person_metadata

    metadata = dict(person_metadata(PEOPLE["ana"], "tok", "trace-1"))
    assert metadata == {
        "x-on-behalf-of": "ana",
        "x-on-behalf-of-roles": "analyst,viewer",
        "x-on-behalf-of-units": "central",
        "x-trace-id": "trace-1",
        "authorization": "Bearer tok",
    }
    assert ConsoleIdentity(token="t").tls_ca is None


# --- a report drawn with its progress shown -----------------------------------------------

PDF = b"%PDF-1.4 the report"


class FakeEvaluator(EvaluatorClient):
    def __init__(self, fail: bool = False) -> None:
        self.drawn: list[tuple[str, str, int]] = []
        self.fail = fail

    async def _steps(
        self, person: Person, campaign_id: str, format: int
    ) -> AsyncIterator[evaluator_pb.CampaignReportProgress]:
        self.drawn.append(("stream", campaign_id, format))
        for done, step in enumerate(("publications", "plot volume"), start=1):
            yield evaluator_pb.CampaignReportProgress(step=step, done=done, total=3)
        if self.fail:
            raise ServiceError(
                "evaluator", "BuildCampaignReport", grpc.StatusCode.UNAVAILABLE, "index <down>"
            )
        report = evaluator_pb.CampaignReport(
            campaign_id=campaign_id, content=PDF, file_name=f"{campaign_id}-report.pdf"
        )
        yield evaluator_pb.CampaignReportProgress(step="pdf", done=3, total=3, report=report)

    def build_report(
        self, person: Person, campaign_id: str, format: int
    ) -> AsyncIterator[evaluator_pb.CampaignReportProgress]:
        return self._steps(person, campaign_id, format)

    async def list_metrics(self, person: Person) -> list[evaluator_pb.Metric]:
        return []

    async def _scorecards(self, campaign_id: str) -> AsyncIterator[evaluator_pb.Scorecard]:
        yield evaluator_pb.Scorecard(campaign_id=campaign_id)
        raise ServiceError(
            "evaluator", "WatchCampaignScorecard", grpc.StatusCode.UNAVAILABLE, "gone"
        )

    def watch_scorecard(
        self, person: Person, campaign_id: str, min_interval_seconds: float
    ) -> AsyncIterator[evaluator_pb.Scorecard]:
        return self._scorecards(campaign_id)

    async def get_report(
        self, person: Person, campaign_id: str, format: int
    ) -> evaluator_pb.CampaignReport:
        self.drawn.append(("unary", campaign_id, format))
        return evaluator_pb.CampaignReport(
            campaign_id=campaign_id, content=b"%PDF-again", file_name="again.pdf"
        )


def _report_client(evaluator: FakeEvaluator) -> TestClient:
    services: Any = FakeServices(None, None, None, evaluator)  # type: ignore[arg-type]
    return console_client(services)


@pytest.fixture
def evaluator() -> FakeEvaluator:
    return FakeEvaluator()


@pytest.fixture
def report_client(evaluator: FakeEvaluator) -> Iterator[TestClient]:
    with _report_client(evaluator) as started:
        yield started


def _events(body: str) -> list[tuple[str, str]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = block.splitlines()
        name = next(line[len("event: ") :] for line in lines if line.startswith("event: "))
        data = "\n".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
        events.append((name, data))
    return events


def test_the_steps_then_a_link_to_the_report_drawn(
    report_client: TestClient, evaluator: FakeEvaluator
) -> None:
    client = report_client
    client.get("/sign-in?as=ana")
    start = client.get("/evaluate/campaigns/river/reports/pdf/start")
    assert 'sse-connect="/evaluate/campaigns/river/report.pdf/progress"' in start.text
    assert 'sse-close="done"' in start.text
    stream = client.get("/evaluate/campaigns/river/report.pdf/progress")
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = _events(stream.text)
    assert [name for name, _ in events] == ["report", "report", "done"]
    assert "Step 1 of 3: reading the publications" in events[0][1]
    assert "Step 2 of 3: drawing the volume plot" in events[1][1]
    assert 'max="3" value="2"' in events[1][1]
    link = re.search(r'href="(/evaluate/campaigns/river/report\.pdf\?ready=[\w-]+)"', events[2][1])
    assert link is not None and "(19 bytes)" in events[2][1]

    download = client.get(link.group(1))
    assert download.content == PDF
    assert download.headers["content-disposition"] == 'attachment; filename="river-report.pdf"'
    assert [kind for kind, _, _ in evaluator.drawn] == ["stream"]  # not drawn twice

    # Another person, another format, or a link this console does not hold: drawn again.
    client.get("/sign-in?as=vic")
    assert client.get(link.group(1)).content == b"%PDF-again"
    assert client.get("/evaluate/campaigns/river/report.pdf?ready=nope").content == b"%PDF-again"
    assert [kind for kind, _, _ in evaluator.drawn] == ["stream", "unary", "unary"]
    assert client.get("/evaluate/campaigns/river/report.docx/progress").status_code == 404


def test_a_failure_ends_the_stream_with_its_reason_as_text() -> None:
    with _report_client(FakeEvaluator(fail=True)) as client:
        client.get("/sign-in?as=ana")
        events = _events(client.get("/evaluate/campaigns/river/report.pdf/progress").text)
    assert [name for name, _ in events] == ["report", "report", "done"]
    assert "The report could not be drawn" in events[-1][1]
    assert "index &lt;down&gt;" in events[-1][1]


def test_the_live_scorecard_is_the_services_stream_then_its_failure_ends_it(
    report_client: TestClient,
) -> None:
    report_client.get("/sign-in?as=ana")
    stream = report_client.get("/evaluate/campaigns/river/live")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-store"
    events = _events(stream.text)
    assert [name for name, _ in events] == ["scorecard", "scorecard"]
    assert "The evaluator service is not answering" in events[-1][1]
    assert "The evaluator service is not answering" not in events[0][1]


def test_wrong_mention_filters_are_refused_before_any_call(client: TestClient) -> None:
    """The evaluator is absent here: a wrong filter must not reach it."""
    client.get("/sign-in?as=ana")
    page = client.get("/listen/mentions?language=%3Cx%3E&min_influence=2&sentiment=angry")
    assert page.status_code == 400
    assert "Enter language tags like es or es-MX, with commas" in page.text
    assert "Enter an influence from 0 to 1, like 0.5" in page.text
    assert "Choose sentiments from the list" in page.text
    assert 'value="&lt;x&gt;"' in page.text  # what was typed, escaped
    assert "/listen/mentions/live" not in page.text  # nothing to follow (the bell is apart)
    nav = page.text.split('<nav aria-label="Listen">')[1].split("</nav>")[0]
    assert 'href="/listen/mentions" aria-current="page"' in nav
    assert 'href="/listen/alerts"' in nav
