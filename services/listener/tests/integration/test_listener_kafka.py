"""The listener against the Kafka stand-in: state that survives a restart, mentions on the
topic, and the service process itself (gRPC, metrics, SIGTERM)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from kafka import KafkaProducer
from listener_kit import ListenerProcess, rss

from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer, client_options, read_records, read_topic
from legation_core.metrics import Metrics
from legation_core.topic_names import LISTEN_FEED_CURSORS_V1, LISTEN_MENTIONS_V1
from legation_devstack.users import UsersFile
from legation_listener.adapters.feeds import FeedFetcher
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.state import ListenerState
from legation_listener.domain.issues import tracked_issue_from_request
from legation_listener.domain.mentions import mention_id_for

pytestmark = pytest.mark.integration

TALKS = ("https://x.example/1", "Plastics treaty talks")
FOOTBALL = ("https://x.example/2", "Football")
VOTE = ("https://x.example/3", "A plastics treaty vote")


def mention_ids(settings: CoreSettings, issue_id: str) -> list[str]:
    # The evaluator is a catalogued consumer of the mentions topic; the listener is not.
    codec = EventCodec(default_catalog())
    events = read_topic(settings, "evaluator", codec, LISTEN_MENTIONS_V1)
    return sorted(e.event_id for e in events if e.issue_id == issue_id)


def test_state_survives_a_restart_and_nothing_is_emitted_twice(
    kafka_settings: CoreSettings, tmp_path: Path, unique: str
) -> None:
    feed = tmp_path / "feed.rss"
    feed.write_text(rss(TALKS, FOOTBALL))
    issue = tracked_issue_from_request(
        pb.TrackIssueRequest(
            issue_id=f"it-{unique}", name="it", keywords=["plastics treaty"], feeds=[str(feed)]
        ),
        local_files=True,
    )
    producers: list[EventProducer] = []

    def new_producer() -> EventProducer:
        producer = EventProducer(kafka_settings, "listener", default_catalog(), Metrics())
        producers.append(producer)
        return producer

    def poller_over(state: ListenerState, producer: EventProducer) -> Poller:
        fetcher = FeedFetcher(5.0, 0, allow_local_files=True)
        return Poller(state, fetcher, producer, Metrics().registry)

    try:
        first = new_producer()
        state = ListenerState(first)
        poller = poller_over(state, first)
        state.save_issue(issue)
        assert poller.poll([issue.issue_id]).mentions_emitted == 1

        second = new_producer()
        rebuilt = ListenerState.rebuild(kafka_settings, EventCodec(default_catalog()), second)
        assert rebuilt.issue(issue.issue_id) == issue
        seen = rebuilt.cursor(issue.issue_id, str(feed)).seen_item_ids
        assert list(seen) == [TALKS[0], FOOTBALL[0]]

        poller = poller_over(rebuilt, second)
        assert poller.poll([issue.issue_id]).mentions_emitted == 0
        feed.write_text(rss(VOTE, TALKS))
        assert poller.poll([issue.issue_id]).mentions_emitted == 1
    finally:
        for producer in producers:
            producer.close()

    assert mention_ids(kafka_settings, issue.issue_id) == sorted(
        [mention_id_for(issue.issue_id, TALKS[0]), mention_id_for(issue.issue_id, VOTE[0])]
    )


def test_a_rebuild_dead_letters_an_undecodable_cursor_once(
    kafka_settings: CoreSettings, unique: str
) -> None:
    """The listener's state topics are read at start-up, not by a consume loop: a record
    there that does not decode goes to the DLQ from the rebuild (once, not at every restart),
    instead of being skipped with a warning."""
    key = f"broken-{unique} feed".encode()
    raw = KafkaProducer(**client_options(kafka_settings), acks="all")
    try:
        metadata = raw.send(LISTEN_FEED_CURSORS_V1, key=key, value=b"\xff\x00 not a cursor").get(30)
    finally:
        raw.close()
    codec = EventCodec(default_catalog())

    def letters() -> list[dict[str, bytes]]:
        found = []
        for record in read_records(kafka_settings, LISTEN_FEED_CURSORS_V1 + ".dlq", 30):
            headers = dict(record.headers)
            if (
                headers["dlq-source-offset"] == str(metadata.offset).encode()
                and headers["dlq-source-partition"] == str(metadata.partition).encode()
            ):
                found.append(headers)
        return found

    for _ in range(2):  # two restarts
        producer = EventProducer(kafka_settings, "listener", default_catalog(), Metrics())
        try:
            ListenerState.rebuild(kafka_settings, codec, producer)
        finally:
            producer.close()
    [letter] = letters()
    assert letter["dlq-consumer-group"] == b"legation.listener.state-rebuild"
    assert letter["dlq-source-topic"] == LISTEN_FEED_CURSORS_V1.encode()
    assert letter["dlq-reason"].startswith(b"not a legation.events.v1.Envelope")


@pytest.fixture
def start_listener(
    kafka_settings: CoreSettings, auth_users: UsersFile, tmp_path: Path
) -> Iterator[Callable[..., ListenerProcess]]:
    started: list[ListenerProcess] = []

    def start(extra_env: dict[str, str] | None = None) -> ListenerProcess:
        started.append(
            ListenerProcess(
                kafka_settings, auth_users, tmp_path / f"logs-{len(started)}", extra_env
            )
        )
        return started[-1]

    yield start
    for listener in started:
        listener.process.stop()


def test_the_service_process_tracks_polls_restarts_and_stops_cleanly(
    kafka_settings: CoreSettings,
    start_listener: Callable[[], ListenerProcess],
    tmp_path: Path,
    unique: str,
) -> None:
    feed = tmp_path / "feed.rss"
    feed.write_text(rss(TALKS, FOOTBALL))
    missing = str(tmp_path / "missing.rss")
    issue_id = f"proc-{unique}"
    listener = start_listener()
    with listener.channel() as channel:
        api = pb_grpc.ListenerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as rejected:
            api.TrackIssue(pb.TrackIssueRequest(name="x", feeds=[str(feed)]), timeout=30)
        assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (rejected.value.details() or "").startswith("keywords")
        tracked = api.TrackIssue(
            pb.TrackIssueRequest(
                issue_id=issue_id,
                name="Process probe",
                keywords=["plastics treaty"],
                feeds=[str(feed), missing],
                campaign_ids=["probe-campaign"],
            ),
            timeout=30,
        )
        assert tracked.active
        polled = api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=30)
        assert polled.mentions_emitted == 1
        [failure] = polled.failed_feeds
        assert failure.startswith(f"{missing} cannot be read")
        with pytest.raises(grpc.RpcError) as unknown:
            api.PollNow(pb.PollNowRequest(issue_id=f"nope-{unique}"), timeout=30)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    # A local file's path is never a label value: its source is "file".
    failures = 'legation_listener_source_failures_total{kind="rss",source="file"}'
    exported = listener.metrics()
    assert failures in exported
    assert str(missing) not in exported
    assert listener.process.stop() == 0
    assert '"message": "stopped"' in listener.process.log_path.read_text()

    # A new item while the listener is down: the poll at start-up finds only that one.
    feed.write_text(rss(VOTE, TALKS))
    expected = sorted([mention_id_for(issue_id, TALKS[0]), mention_id_for(issue_id, VOTE[0])])
    restarted = start_listener()
    assert mention_ids(kafka_settings, issue_id) == expected
    with restarted.channel() as channel:
        api = pb_grpc.ListenerServiceStub(channel)
        issues = api.ListIssues(pb.ListIssuesRequest(), timeout=30).issues
        assert tracked in list(issues)
        polled = api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=30)
        assert polled.mentions_emitted == 0
    # Duplicates would show: the ids are deterministic.
    assert mention_ids(kafka_settings, issue_id) == expected


def test_query_issues_preview_and_delete_through_the_process(
    kafka_settings: CoreSettings,
    start_listener: Callable[[], ListenerProcess],
    tmp_path: Path,
    unique: str,
) -> None:
    feed = tmp_path / "feed.rss"
    feed.write_text(rss(TALKS, FOOTBALL))
    other = tmp_path / "other.rss"
    other.write_text(rss(VOTE))
    issue_id = f"query-{unique}"
    listener = start_listener()
    with listener.channel() as channel:
        api = pb_grpc.ListenerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as rejected:
            api.TrackIssue(
                pb.TrackIssueRequest(name="q", query='"plastics treaty" OR)', feeds=[str(feed)]),
                timeout=30,
            )
        assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert rejected.value.details() == "query: unexpected ')' at position 20"
        api.TrackIssue(
            pb.TrackIssueRequest(
                issue_id=issue_id,
                name="Query probe",
                query='"plastics treaty" NOT football',
                feeds=[str(feed)],
            ),
            timeout=30,
        )
        assert api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=30).mentions_emitted == 1
        # The preview sees the polled feed's items (matching or not) and a feed read now.
        preview = api.PreviewQuery(
            pb.PreviewQueryRequest(query="football OR vote", feeds=[str(other)]), timeout=30
        )
        # (Feeds of other tests' issues, polled at start-up, are in the buffer too.)
        mine = {str(feed), str(other)}
        assert sorted(
            (m.source_url, m.item_id) for m in preview.matches if m.source_url in mine
        ) == [
            (str(feed), FOOTBALL[0]),
            (str(other), VOTE[0]),
        ]
        assert preview.items_examined >= 3
    with listener.channel(user="viewer") as channel:
        viewer = pb_grpc.ListenerServiceStub(channel)
        assert issue_id in [i.issue_id for i in viewer.ListIssues(pb.ListIssuesRequest()).issues]
        with pytest.raises(grpc.RpcError) as denied:
            viewer.DeleteIssue(pb.DeleteIssueRequest(issue_id=issue_id), timeout=30)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs the role analyst" in (denied.value.details() or "")
    with listener.channel() as channel:
        api = pb_grpc.ListenerServiceStub(channel)
        deleted = api.DeleteIssue(pb.DeleteIssueRequest(issue_id=issue_id), timeout=30)
        assert deleted.issue.deleted
    assert listener.process.stop() == 0
    assert mention_ids(kafka_settings, issue_id) == [mention_id_for(issue_id, TALKS[0])]
    restarted = start_listener()
    with restarted.channel() as channel:
        api = pb_grpc.ListenerServiceStub(channel)
        issues = api.ListIssues(pb.ListIssuesRequest(), timeout=30).issues
        assert issue_id not in [issue.issue_id for issue in issues]
        with pytest.raises(grpc.RpcError) as unknown:
            api.PollNow(pb.PollNowRequest(issue_id=issue_id), timeout=30)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
