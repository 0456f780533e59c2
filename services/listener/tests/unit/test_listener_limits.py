"""Hostile and careless requests (issue 11): every query, issue, preview and item has a
limit, checked before the work it bounds, and an error naming the field and the limit.
No I/O: the gRPC API over the fake feeds and Kafka of ``test_listener_poller``."""

from __future__ import annotations

import io
import ipaddress
import json
import threading
import time
from dataclasses import replace
from typing import Any

import grpc
import pytest
from listener_fakes import GOOD, NOW, FakeIngest, call_webhook, item, make_listener, track

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.auth import VIEWER
from legation_core.networks import parse_networks
from legation_core.testing import FakeContext
from legation_core.testing import call as call_servicer
from legation_core.topic_names import LISTEN_TRACKED_ISSUES_V1
from legation_listener.adapters.connectors.webhook import (
    MAX_JSON_DEPTH,
    WebhookApp,
    sign,
)
from legation_listener.adapters.feeds import FetchResult
from legation_listener.adapters.preview_reads import PreviewBusy, PreviewReads
from legation_listener.domain.addresses import AddressPolicy, is_public
from legation_listener.domain.cursor import advance, empty_cursor
from legation_listener.domain.issues import (
    MAX_FEEDS,
    MAX_KEYWORD_LENGTH,
    MAX_KEYWORDS,
    IssueError,
    _clean,
    tracked_issue_from_request,
)
from legation_listener.domain.items import (
    MAX_ITEM_BYTES,
    MAX_ITEM_MARKUP_CHARS,
    ItemTooLarge,
    make_feed_item,
)
from legation_listener.domain.mentions import mentions_for
from legation_listener.domain.preview import MAX_ANSWER_BYTES, MAX_PREVIEW_FEEDS
from legation_listener.domain.query import (
    MAX_QUERY_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_QUERY_TERMS,
    QueryError,
    parse_query,
)


def call(method: Any, request: Any, context: FakeContext | None = None) -> FakeContext:
    """Calls an RPC method; the context says how it ended."""
    return call_servicer(method, request, context)[1]


# ----------------------------------------------------------------------------- queries


def test_199_nested_parentheses_are_a_query_error_not_a_recursion_error() -> None:
    query = "(" * 199 + "treaty" + ")" * 199  # 404 characters, as reported
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert f"nests more than the limit of {MAX_QUERY_DEPTH} levels" in raised.value.message
    assert raised.value.position == MAX_QUERY_DEPTH  # the first '(' over the limit


def test_a_long_chain_of_not_is_a_query_error() -> None:
    query = "treaty " + "NOT " * 900 + "x"
    assert len(query) < MAX_QUERY_LENGTH
    with pytest.raises(QueryError, match="nests more than the limit"):
        parse_query(query)


def test_nesting_up_to_the_limit_parses() -> None:
    parse_query("(" * (MAX_QUERY_DEPTH - 1) + "NOT x" + ")" * (MAX_QUERY_DEPTH - 1) + " treaty")
    with pytest.raises(QueryError, match="nests"):
        parse_query("(" * MAX_QUERY_DEPTH + "NOT x" + ")" * MAX_QUERY_DEPTH + " treaty")


def test_terms_and_length_are_limited() -> None:
    parse_query(" OR ".join(f"w{n}" for n in range(MAX_QUERY_TERMS)))
    with pytest.raises(QueryError, match=f"more than the limit of {MAX_QUERY_TERMS} words"):
        parse_query(" OR ".join(f"w{n}" for n in range(MAX_QUERY_TERMS + 1)))
    with pytest.raises(QueryError, match=f"longer than the limit of {MAX_QUERY_LENGTH}"):
        parse_query("treaty " * 600)


def test_a_deep_query_is_invalid_argument_through_the_api() -> None:
    listener = make_listener({})
    request = pb.TrackIssueRequest(name="t", query="(" * 199 + "x" + ")" * 199, feeds=[GOOD])
    context = call(listener.api.TrackIssue, request)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == (
        f"query: nests more than the limit of {MAX_QUERY_DEPTH} levels (parentheses and NOT)"
        f" at position {MAX_QUERY_DEPTH}"
    )
    preview = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query=request.query))
    assert preview.code == grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------------------------------------ issues


def test_100000_keywords_are_refused_at_once_and_nothing_is_written() -> None:
    listener = make_listener({})
    keywords = [f"keyword {n}" for n in range(100_000)]
    started = time.monotonic()
    context = call(
        listener.api.TrackIssue, pb.TrackIssueRequest(name="t", keywords=keywords, feeds=[GOOD])
    )
    assert time.monotonic() - started < 2
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == f"keywords has 100000 entries, above the limit of {MAX_KEYWORDS}"
    assert listener.kafka.records == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"keywords": ["k"] * (MAX_KEYWORDS + 1)},
            f"keywords has {MAX_KEYWORDS + 1} entries, above the limit of {MAX_KEYWORDS}",
        ),
        (
            {"keywords": ["ok", "k" * (MAX_KEYWORD_LENGTH + 1)]},
            f"keywords entry 2 is longer than the limit of {MAX_KEYWORD_LENGTH} characters",
        ),
        (
            {"feeds": [f"https://f.example/{n}" for n in range(MAX_FEEDS + 1)]},
            f"feeds has {MAX_FEEDS + 1} entries, above the limit of {MAX_FEEDS}",
        ),
    ],
)
def test_keywords_and_feeds_are_limited(overrides: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "t", "keywords": ["treaty"], "feeds": [GOOD]}
    fields.update(overrides)
    with pytest.raises(IssueError) as raised:
        tracked_issue_from_request(pb.TrackIssueRequest(**fields))  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_cleaning_values_is_linear() -> None:
    # The quadratic version took minutes for this many; linear takes milliseconds.
    values = [f" value {n} " for n in range(200_000)] + [" value 7 "]
    started = time.monotonic()
    cleaned = _clean(values)
    assert time.monotonic() - started < 2
    assert len(cleaned) == 200_000 and cleaned[7] == "value 7"


@pytest.mark.parametrize(
    "context",
    [FakeContext(time_left=0.0), FakeContext(time_left=-3.0), FakeContext(active=False)],
    ids=["deadline-now", "deadline-past", "cancelled"],
)
def test_a_call_whose_caller_gave_up_writes_nothing(context: FakeContext) -> None:
    listener = make_listener({})
    track(listener, "t", [GOOD], ["treaty"])
    writes = len(listener.kafka.records)
    tracked = call(
        listener.api.TrackIssue,
        pb.TrackIssueRequest(issue_id="t", name="newer", keywords=["x"], feeds=[GOOD]),
        context,
    )
    assert tracked.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "nothing was saved" in tracked.details
    for method, request in (
        (listener.api.UpdateIssue, pb.UpdateIssueRequest(issue_id="t", name="newer")),
        (listener.api.SetIssueActive, pb.SetIssueActiveRequest(issue_id="t", active=False)),
        (listener.api.DeleteIssue, pb.DeleteIssueRequest(issue_id="t")),
    ):
        context.code = None
        assert call(method, request, context).code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(listener.kafka.records) == writes
    [issue] = listener.state.issues()
    assert issue.name == "t" and issue.active


def test_a_call_with_time_left_is_written() -> None:
    listener = make_listener({})
    context = call(
        listener.api.TrackIssue,
        pb.TrackIssueRequest(name="t", keywords=["x"], feeds=[GOOD]),
        FakeContext(time_left=5.0),
    )
    assert context.code is None
    assert [topic for topic, _, _ in listener.kafka.records] == [LISTEN_TRACKED_ISSUES_V1]


# --------------------------------------------------------------------- preview policy


@pytest.mark.parametrize("feed", ["/etc/passwd", "/no/such/file", "file:///etc/passwd"])
def test_local_files_are_refused_alike_without_looking_at_them(feed: str) -> None:
    listener = make_listener({})
    preview = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="x", feeds=[feed]))
    tracked = call(
        listener.api.TrackIssue, pb.TrackIssueRequest(name="t", keywords=["x"], feeds=[feed])
    )
    for context in (preview, tracked):
        assert context.code == grpc.StatusCode.INVALID_ARGUMENT
        assert context.details == (
            "feeds cannot name a local file: feeds are http(s) URLs (local files are a"
            " development setting, LEGATION_LISTENER_ALLOW_LOCAL_FEEDS)"
        )
    assert listener.fetcher.calls == []


def test_a_viewer_previews_only_sources_of_tracked_issues() -> None:
    other = "https://other.example.org/feed.xml"
    listener = make_listener({GOOD: [item("a", "Treaty")], other: []}, caller=VIEWER)
    track(listener, "t", [GOOD], ["treaty"])
    denied = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="x", feeds=[other]))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert denied.details.startswith("feeds: a viewer may preview only the sources of tracked")
    assert listener.fetcher.calls == []
    context = FakeContext()
    response = context.run(
        listener.api.PreviewQuery, pb.PreviewQueryRequest(query="treaty", feeds=[GOOD])
    )
    assert context.code is None and [m.item_id for m in response.matches] == ["a"]


def test_a_preview_names_at_most_max_preview_feeds() -> None:
    listener = make_listener({})
    feeds = [f"https://f.example/{n}" for n in range(MAX_PREVIEW_FEEDS + 1)]
    context = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="x", feeds=feeds))
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == (
        f"feeds has {MAX_PREVIEW_FEEDS + 1} entries, above the limit of {MAX_PREVIEW_FEEDS}"
    )


def test_a_preview_answer_stays_under_the_grpc_message_limit() -> None:
    text = "treaty " * (MAX_ITEM_BYTES // 8)
    items = [
        replace(item(str(n), "Treaty"), text=text, published_at=NOW.replace(minute=n % 60))
        for n in range(60)
    ]
    listener = make_listener({GOOD: items})
    track(listener, "t", [GOOD], ["nothing"])
    listener.poller.poll()
    context = FakeContext()
    answer = context.run(
        listener.api.PreviewQuery, pb.PreviewQueryRequest(query="treaty", limit=1000)
    )
    assert answer.total_matches == 60
    assert 0 < len(answer.matches) < 60
    assert answer.ByteSize() <= MAX_ANSWER_BYTES + 1024
    # The newest first, as without the limit.
    newest = sorted(items, key=lambda i: i.published_at, reverse=True)[0]
    assert answer.matches[0].item_id == newest.item_id


# ------------------------------------------------------------------- preview reading


class Gate:
    """A ``read_source`` that blocks until released, counting the reads in progress."""

    def __init__(self, items: list[object] | None = None) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.items = items or []

    def __call__(self, spec: str) -> list[object]:
        self.started.release()
        self.release.wait(10)
        return list(self.items)


def test_previews_beyond_the_cap_are_refused_and_the_waiting_is_bounded() -> None:
    gate = Gate()
    reads = PreviewReads(gate, max_concurrent=2, deadline_seconds=5.0)  # type: ignore[arg-type]
    answers: list[object] = []
    threads = [
        threading.Thread(target=lambda: answers.append(reads.read(["https://slow.example/"])))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    assert gate.started.acquire(timeout=5) and gate.started.acquire(timeout=5)
    with pytest.raises(PreviewBusy, match="2 previews are already reading feeds"):
        reads.read(["https://slow.example/"])
    # A preview that names no feed takes no slot.
    assert reads.read([]).items == []
    gate.release.set()
    for thread in threads:
        thread.join(5)
    assert len(answers) == 2
    reads.read(["https://slow.example/"])  # the slots are back


def test_a_preview_answers_by_its_deadline_and_keeps_the_slot_until_the_read_ends() -> None:
    gate = Gate()
    reads = PreviewReads(gate, max_concurrent=1, deadline_seconds=0.3)  # type: ignore[arg-type]
    started = time.monotonic()
    reading = reads.read(["https://slow.example/a", "https://slow.example/b"])
    assert time.monotonic() - started < 1.5
    assert reading.failed == [
        "https://slow.example/a: could not read the feed",
        "https://slow.example/b: could not read the feed",
    ]
    with pytest.raises(PreviewBusy):  # the read still runs: its slot is not free yet
        reads.read(["https://slow.example/c"])
    gate.release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            gate.release.set()
            reads.read(["https://slow.example/d"])
            break
        except PreviewBusy:
            time.sleep(0.05)
    else:
        pytest.fail("the slot never came back")


def test_a_shorter_caller_deadline_wins() -> None:
    gate = Gate()
    reads = PreviewReads(gate, max_concurrent=1, deadline_seconds=30.0)  # type: ignore[arg-type]
    started = time.monotonic()
    assert reads.read(["https://slow.example/"], time_left=0.2).failed
    assert time.monotonic() - started < 1.5
    gate.release.set()


def test_items_read_for_a_preview_are_capped() -> None:
    many = [item(str(n), "Treaty") for n in range(50)]
    gate = Gate(many)  # type: ignore[arg-type]
    gate.release.set()
    reads = PreviewReads(gate, max_items=30)  # type: ignore[arg-type]
    reading = reads.read(["https://a.example/", "https://b.example/"])
    assert len(reading.items) == 30 and reading.failed == []
    assert {feed for feed, _ in reading.items} == {"https://a.example/"}


def test_previews_over_the_cap_are_resource_exhausted_through_the_api() -> None:
    gate = Gate()
    listener = make_listener({})
    listener.api.previews = PreviewReads(gate, max_concurrent=1)  # type: ignore[arg-type]
    busy = threading.Thread(
        target=call,
        args=(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="x", feeds=[GOOD])),
    )
    busy.start()
    assert gate.started.acquire(timeout=5)
    refused = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="x", feeds=[GOOD]))
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.details.startswith("feeds: 1 previews are already reading feeds")
    served = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="x"))
    assert served.code is None
    gate.release.set()
    busy.join(5)


# -------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "169.254.169.254",  # cloud metadata
        "fd00:ec2::254",  # its IPv6 twin
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "224.0.0.251",
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not AddressPolicy().permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_permitted(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_allowed_networks_are_exact() -> None:
    policy = AddressPolicy.from_setting(" 127.0.0.0/8, ::1 ")
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("::1"))
    assert not policy.permits(ipaddress.ip_address("169.254.169.254"))
    assert not policy.permits(ipaddress.ip_address("10.0.0.1"))
    with pytest.raises(ValueError, match="'localhost' is not an address or CIDR range"):
        parse_networks("127.0.0.1,localhost")


def test_the_allowed_networks_setting_is_checked_at_start_up() -> None:
    from pydantic import ValidationError

    from legation_listener.config import ListenerSettings

    with pytest.raises(ValidationError, match="'nowhere' is not an address or CIDR range"):
        ListenerSettings(listener_fetch_allowed_networks="nowhere")


# ------------------------------------------------------------------------------ items


def test_an_item_over_the_byte_limit_is_too_large() -> None:
    make_feed_item(
        item_id="ok", url="", title="", body="a" * (MAX_ITEM_BYTES - 2), author="",
        published_at=NOW, fetched_at=NOW,
    )  # fmt: skip
    with pytest.raises(ItemTooLarge, match=f"above the limit of {MAX_ITEM_BYTES} per item"):
        make_feed_item(
            item_id="big", url="", title="é" * 100, body="a" * MAX_ITEM_BYTES, author="",
            published_at=NOW, fetched_at=NOW,
        )  # fmt: skip


def test_huge_markup_is_refused_before_its_html_is_read() -> None:
    markup = "<p>" + "<b></b>" * (MAX_ITEM_MARKUP_CHARS // 7) + "</p>"
    started = time.monotonic()
    with pytest.raises(ItemTooLarge, match=f"limit of {MAX_ITEM_MARKUP_CHARS} per item"):
        make_feed_item(
            item_id="x", url="", title="", body=markup, author="", published_at=NOW,
            fetched_at=NOW,
        )  # fmt: skip
    assert time.monotonic() - started < 0.5


def test_the_largest_item_makes_a_mention_kafka_takes() -> None:
    # The worst case for the mention's size: every word a distinct hashtag, link or
    # account (each lands in a list besides the text), up to the item limit.
    words: list[str] = []
    size, n = 0, 0
    while True:
        word = (f"#tag{n}", f"https://l.example/{n}", f"@user{n}@x.example")[n % 3]
        if size + len(word) + 1 > MAX_ITEM_BYTES - 200:
            break
        words.append(word)
        size += len(word) + 1
        n += 1
    big = make_feed_item(
        item_id="big", url="https://x.example/big", title="Treaty", body=" ".join(words),
        author="A", published_at=NOW, fetched_at=NOW,
    )  # fmt: skip
    issue = listen_pb2.TrackedIssue(
        issue_id="t", name="t", keywords=["treaty"], feeds=[GOOD], campaign_ids=["c"]
    )
    [envelope] = mentions_for(issue, GOOD, [big])
    # kafka-python's max_request_size is 1 MiB for the whole request.
    assert len(envelope.SerializeToString()) < 1_000_000


def test_a_skipped_entry_moves_the_cursor_and_is_reported_once() -> None:
    cursor = empty_cursor("t", GOOD)
    skipped = [("big-1", "entry 2: the item is 5400000 characters as sent, above ...")]
    first = advance(cursor, [item("a", "A"), item("c", "C")], skipped=skipped)
    assert [i.item_id for i in first.new_items] == ["a", "c"]
    assert first.malformed == [skipped[0][1]]
    assert list(first.next_cursor.seen_item_ids) == ["a", "c", "big-1"]
    again = advance(first.next_cursor, [item("a", "A"), item("c", "C")], skipped=skipped)
    assert again.new_items == [] and again.malformed == []
    # Without an id an entry cannot be recognised: it is reported at every read.
    assert advance(first.next_cursor, [], skipped=[("", "entry 1: x")]).malformed == ["entry 1: x"]


def test_an_oversized_entry_does_not_block_its_feed() -> None:
    # What the fetcher gives for a feed whose second entry is over the item limit.
    listener = make_listener({GOOD: [item("a", "Treaty one"), item("c", "Treaty three")]})
    report = "entry 2: the item is 5400000 characters as sent, above the limit of 2097152"
    original = listener.fetcher.fetch

    def fetch(feed: str, etag: str = "", last_modified: str = "") -> FetchResult:
        result = original(feed, etag, last_modified)
        return replace(result, malformed=[report], malformed_ids=["b"])

    listener.fetcher.fetch = fetch  # type: ignore[method-assign]
    track(listener, "t", [GOOD], ["treaty"])
    first = listener.poller.poll()
    assert (first.mentions_emitted, first.failed_feeds) == (2, [])
    [status] = listener.poller.statuses.states([("t", GOOD)])
    assert (status.state, status.malformed_items, status.malformed) == ("ok", 1, (report,))
    malformed = listener.registry.get_sample_value(
        "legation_listener_malformed_items_total", {"kind": "rss", "source": "good.example.org"}
    )
    assert malformed == 1
    assert "b" in listener.state.cursor("t", GOOD).seen_item_ids
    # The next read does not count the same entry again.
    assert listener.poller.poll().mentions_emitted == 0
    [status] = listener.poller.statuses.states([("t", GOOD)])
    assert status.malformed_items == 1


# ---------------------------------------------------------------------------- webhook


class Unreadable(io.BytesIO):
    """A request body that must not be read."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body was read")


class Counting(io.BytesIO):
    """A request body that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def post(app: WebhookApp, environ: dict[str, object]) -> tuple[str, dict[str, object]]:
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    base: dict[str, object] = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/ngo"}
    data = b"".join(app({**base, **environ}, start_response))  # type: ignore[arg-type]
    return answer["status"], json.loads(data)


def webhook() -> tuple[WebhookApp, FakeIngest]:
    ingest = FakeIngest()
    return WebhookApp(ingest, "s3cret", max_body_bytes=1000, clock=lambda: NOW), ingest


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    app, ingest = webhook()
    status, answer = post(app, {"CONTENT_LENGTH": "1001", "wsgi.input": Unreadable()})
    assert status == "413 Content Too Large"
    assert answer["error"] == "body: at most 1000 bytes"
    assert ingest.calls == []


@pytest.mark.parametrize("length", ["-1", "ten", "1e3", " -5 "])
def test_a_malformed_content_length_is_400_before_reading(length: str) -> None:
    app, _ = webhook()
    status, answer = post(app, {"CONTENT_LENGTH": length, "wsgi.input": Unreadable()})
    assert status == "400 Bad Request"
    assert answer["error"] == "Content-Length: not a number of bytes"


def test_a_chunked_body_is_411_and_nothing_is_read() -> None:
    # The standard-library server does not decode chunked framing: reading it would take
    # the framing for the body, so a length is required (the shared HTTP helper).
    app, ingest = webhook()
    body = Counting(b"x" * 50_000)
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": body}
    status, answer = post(app, environ)
    assert status == "411 Length Required"
    assert "chunked bodies are not accepted" in str(answer["error"])
    assert body.taken == 0
    assert ingest.calls == []


def test_no_length_is_411_before_reading() -> None:
    app, _ = webhook()
    assert post(app, {"wsgi.input": Unreadable()})[0] == "411 Length Required"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "1", "text": "ok"}\n' + b'{"a":' * 5000 + b"1" + b"}" * 5000,
    ],
    ids=["document", "jsonl-line"],
)
def test_json_nested_too_deep_is_400_not_500(body: bytes) -> None:
    ingest = FakeIngest()
    app = WebhookApp(ingest, "s3cret", clock=lambda: NOW)
    status, answer = call_webhook(app, "/webhooks/ngo", body, sign("s3cret", body))
    assert status == "400 Bad Request"
    assert answer["error"] == (
        f"the body nests arrays and objects deeper than the limit of {MAX_JSON_DEPTH}"
    )
    assert ingest.calls == []


def test_an_oversized_pushed_item_is_reported_and_the_others_are_taken() -> None:
    ingest = FakeIngest()
    app = WebhookApp(ingest, "s3cret", clock=lambda: NOW)
    big = json.dumps({"id": "big", "text": "a" * (MAX_ITEM_BYTES + 1)})
    body = "\n".join(['{"id": "1", "text": "Treaty"}', big, '{"id": "3", "text": "More"}'])
    status, answer = call_webhook(
        app, "/webhooks/ngo", body.encode(), sign("s3cret", body.encode())
    )
    assert status == "200 OK"
    assert answer["items"] == 2
    [report] = answer["malformed"]
    assert report.startswith("line 2: the item is") and f"limit of {MAX_ITEM_BYTES}" in report
    # Alone, it is a 400 that names the reason (not a 503 a sender would retry).
    status, answer = call_webhook(app, "/webhooks/ngo", big.encode(), sign("s3cret", big.encode()))
    assert status == "400 Bad Request"
    assert "above the limit" in answer["malformed"][0]
