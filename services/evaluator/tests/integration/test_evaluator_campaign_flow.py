"""A campaign through the stand-ins, with the evaluator as a process: a baseline period,
publications, mentions, replies, link clicks, partner posts and feedback; the evaluator is
killed mid-stream, then the index server is; the evaluator rebuilds the index from Kafka
by itself (and the re-index command, run anyway, changes nothing); the scorecard judges each
objective from the indexed events; a watched scorecard follows new events.

The index stand-in keeps its data in memory, so a killed index server comes back empty.
What the test holds the evaluator to: nothing produced while the index was down is lost
(consumption pauses, offsets are not committed), nothing is counted twice, the evaluator
brings back what the empty server forgot without anyone running ``legation-evaluator
reindex``, with counts identical to a rebuild into fresh indices.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from kafka import KafkaProducer
from opensearchpy import OpenSearch

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation_core.codec import Envelope, make_envelope
from legation_core.ids import stable_id
from legation_devstack.lag import consumed_by, service_group, uncommitted
from legation_devstack.processes import wait_until
from legation_devstack.stack import Stack
from legation_devstack.standins import start_opensearch
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.adapters.snapshots import SNAPSHOT_TICK_SECONDS
from legation_evaluator.domain.scorecard import scorecard_from_response

pytestmark = [pytest.mark.integration]

PREFIX = "legation-events-v1"
MENTION = "legation.events.v1.Mention"
CAMPAIGN = "legation.events.v1.Campaign"
REBUILT = "legation-rebuilt-v1"
Objective = evaluate_pb2.Objective
Status = evaluate_pb2.ObjectiveStatus
TOPICS = {
    "Mention": ("legation.listen.mentions.v1", "listener"),
    "Publication": ("legation.publish.publications.v1", "publisher"),
    "Interaction": ("legation.engage.interactions.v1", "engager"),
    "LinkClick": ("legation.publish.link-clicks.v1", "publisher"),
    "PartnerActivity": ("legation.engage.partner-activities.v1", "engager"),
}
NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(days=3)
END = NOW + timedelta(days=4)
PASSED = NOW - timedelta(hours=1)  # the deadline of the objectives already decided
STREAMED = 240  # campaign-period mentions, streamed across the two crashes
HOUR = 3600.0


def started_stack(root: Path) -> Stack:
    stack = Stack(
        root,
        extra_env={
            # Small batches: commits are frequent, so each crash lands between commits.
            "LEGATION_CONSUMER_MAX_BATCH": "20",
            "LEGATION_OPENSEARCH_TIMEOUT_SECONDS": "5",
            "LEGATION_EVALUATOR_SNAPSHOT_SECONDS": "3600",
        },
    )
    try:
        stack.start_infrastructure()
        stack.start_service("evaluator")
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture
def crashed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own for the test that kills the evaluator and the index server: if
    that test fails half-way, what it leaves dead does not fail the tests after it."""
    stack = started_stack(tmp_path_factory.mktemp("evaluator-crashes"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack shared by the tests that leave it running as they found it."""
    stack = started_stack(tmp_path_factory.mktemp("evaluator-flow"))
    try:
        yield stack
    finally:
        stack.stop()


def client(stack: Stack) -> OpenSearch:
    assert stack.opensearch is not None
    return OpenSearch(hosts=[stack.opensearch.url], timeout=10)


def count(stack: Stack, campaign_id: str, prefix: str = PREFIX, **terms: Any) -> int:
    search = client(stack)
    search.indices.refresh(index=f"{prefix}-*")
    filters: list[dict[str, Any]] = [{"term": {"campaign_ids": campaign_id}}]
    for name, value in terms.items():
        kind = "terms" if isinstance(value, list) else "term"
        filters.append({kind: {name.replace("__", "."): value}})
    body = {"query": {"bool": {"filter": filters}}}
    return int(search.count(index=f"{prefix}-*", body=body)["count"])


def safe_count(stack: Stack, campaign_id: str, **terms: Any) -> int:
    """The count, or -1 while the index server is down."""
    try:
        return count(stack, campaign_id, **terms)
    except Exception:
        return -1


def envelope(payload: Message, campaign_id: str, at: datetime, key: str) -> Envelope:
    _, service = TOPICS[payload.DESCRIPTOR.name]
    return make_envelope(
        payload,
        event_id=stable_id(campaign_id, key),
        source_service=service,
        occurred_at=at,
        campaign_id=campaign_id,
        issue_id="plastics",
    )


class Events:
    """Produces a campaign's events to Kafka as the other services would."""

    def __init__(self, stack: Stack, campaign_id: str) -> None:
        assert stack.kafka is not None
        self.campaign_id = campaign_id
        self.producer = KafkaProducer(bootstrap_servers=stack.kafka.bootstrap_servers, acks="all")
        self.sent: dict[str, int] = {}

    def send(self, payload: Message, at: datetime, key: str) -> None:
        topic, _ = TOPICS[payload.DESCRIPTOR.name]
        record = envelope(payload, self.campaign_id, at, key)
        self.producer.send(topic, key=key.encode(), value=record.SerializeToString())
        name = payload.DESCRIPTOR.name
        self.sent[name] = self.sent.get(name, 0) + 1

    def mention(self, number: int, at: datetime, **fields: Any) -> None:
        mention_id = f"{self.campaign_id}-m{number}"
        fields.setdefault("author", f"author-{number % 17}")
        mention = listen_pb2.Mention(
            mention_id=mention_id,
            source="rss",
            title=f"Plastics treaty {number}",
            campaign_ids=[self.campaign_id],
            **fields,
        )
        self.send(mention, at, mention_id)

    def streamed(self, number: int) -> None:
        """Campaign-period mention ``number``: a mix of languages, reach, stance, sentiment."""
        language, reach = {0: ("es", 50_000), 1: ("es-MX", 10_000)}.get(
            number % 8, ("en", 1_000_000)
        )
        stance = "favour" if number % 20 < 9 else "against"  # 45 % favour
        sentiment = "negative" if number % 4 == 0 else "positive"
        self.mention(
            number,
            START + timedelta(minutes=15 * number),
            language=language,
            reach=reach,
            stance=listen_pb2.Label(value=stance, score=0.9),
            sentiment=listen_pb2.Label(
                value=sentiment, score=-0.5 if sentiment == "negative" else 0.5
            ),
        )

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


def campaign(campaign_id: str) -> evaluate_pb2.Campaign:
    def objective(
        objective_id: str,
        metric: str,
        comparison: Objective.Comparison.ValueType,
        target: float,
        deadline: datetime = END,
        **extra: Any,
    ) -> Objective:
        built = Objective(
            objective_id=objective_id,
            metric=metric,
            comparison=comparison,
            target=target,
            **extra,
        )
        built.deadline.FromDatetime(deadline)
        return built

    favour = objective(
        "favour-up",
        "stance_favour_share",
        Objective.COMPARISON_INCREASE_BY,
        10,
        PASSED,
        level=Objective.LEVEL_OUTCOME,
    )
    favour.baseline_start.FromDatetime(START - timedelta(days=7))
    favour.baseline_end.FromDatetime(START)
    result = evaluate_pb2.Campaign(
        campaign_id=campaign_id,
        name="Plastics treaty, Spanish-speaking audiences",
        issue_ids=["plastics"],
        channels=["site-atom"],
        languages=["es", "en"],
        countries=["MX", "ES"],
        own_accounts=["@ministry"],
        partners=[
            evaluate_pb2.Partner(partner_id="ocean", name="Ocean Alliance", accounts=["@ocean"]),
            evaluate_pb2.Partner(partner_id="reefs", name="Reef Fund", accounts=["@reefs"]),
        ],
        objectives=[
            objective(
                "reach-es",
                "reach",
                Objective.COMPARISON_AT_LEAST,
                1_800_000,
                filters=[evaluate_pb2.MetricFilter(field="language", values=["es"])],
            ),
            favour,
            objective(
                "share-of-voice", "share_of_voice", Objective.COMPARISON_AT_LEAST, 20, from_value=12
            ),
            objective(
                "fast-answers",
                "median_first_response_seconds",
                Objective.COMPARISON_AT_MOST,
                4 * HOUR,
                PASSED,
            ),
            objective("partners", "partner_organisations", Objective.COMPARISON_AT_LEAST, 2),
            objective("clicks", "link_clicks", Objective.COMPARISON_AT_LEAST, 5),
            objective(
                "negative-cap",
                "volume",
                Objective.COMPARISON_AT_MOST,
                50,
                filters=[evaluate_pb2.MetricFilter(field="sentiment", values=["negative"])],
            ),
        ],
    )
    result.starts_at.FromDatetime(START)
    result.ends_at.FromDatetime(END)
    return result


EXPECTED = {
    # es 30 x 50k + es-MX 30 x 10k = 1.8M (English reach 1M each does not count).
    "reach-es": Status.STATUS_ACHIEVED,
    # 30 % favour in the baseline, 45 % after: +15 points by the deadline.
    "favour-up": Status.STATUS_ACHIEVED,
    # 3 publications + 8 replies against 242 others' mentions: 4 %, from 12 toward 20.
    "share-of-voice": Status.STATUS_AT_RISK,
    # First replies 1, 2, 3, 5, 9 h: median 3 h (with the later replies it would be 7 h).
    "fast-answers": Status.STATUS_ACHIEVED,
    # Ocean's accounts spoke, Reef Fund co-published (recorded by the engager): 2 of 2.
    "partners": Status.STATUS_ACHIEVED,
    "clicks": Status.STATUS_ACHIEVED,
    # 60 negative mentions: past the ceiling of 50 for good.
    "negative-cap": Status.STATUS_MISSED,
}


def seed_fixed_events(events: Events) -> None:
    """The baseline week, publications, conversations, replies, clicks, partner posts."""
    for number in range(10):  # baseline: 3 in 10 favour
        events.mention(
            1000 + number,
            START - timedelta(days=6) + timedelta(hours=number * 12),
            language="es",
            reach=1_000_000,
            stance=listen_pb2.Label(value="favour" if number < 3 else "against", score=0.8),
        )
    for number in range(3):
        publication = publish_pb2.Publication(
            publication_id=f"pub-{number}", post_id=f"post-{number}", channel="site-atom"
        )
        events.send(publication, START + timedelta(hours=2 + number * 20), f"pub-{number}")
    first_replies = (1, 2, 3, 5, 9)
    for number, hours in enumerate(first_replies):
        opened_at = START + timedelta(hours=4 + number * 8)
        opened = engage_pb2.Interaction(
            interaction_id=f"open-{number}",
            conversation_id=f"c-{number}",
            kind=engage_pb2.Interaction.KIND_OPENED,
            is_question=True,
            language="es",
        )
        events.send(opened, opened_at, f"open-{number}")
        reply = engage_pb2.Interaction(
            interaction_id=f"reply-{number}",
            conversation_id=f"c-{number}",
            kind=engage_pb2.Interaction.KIND_REPLIED,
            response_seconds=hours * HOUR,
            actor="officer",
        )
        events.send(reply, opened_at + timedelta(hours=hours), f"reply-{number}")
    for number, hours in enumerate((20, 30, 40)):  # follow-ups: not first responses
        follow_up = engage_pb2.Interaction(
            interaction_id=f"follow-{number}",
            conversation_id=f"c-{number}",
            kind=engage_pb2.Interaction.KIND_REPLIED,
            response_seconds=hours * HOUR,
            actor="officer",
        )
        events.send(follow_up, START + timedelta(hours=4 + number * 8 + hours), f"follow-{number}")
    for number in range(6):
        click = publish_pb2.LinkClick(click_id=f"click-{number}", code="abc", post_id="post-0")
        events.send(click, START + timedelta(hours=3 + number), f"click-{number}")
    events.mention(2000, START + timedelta(hours=5), author="@ocean", language="en")
    events.mention(2001, START + timedelta(hours=9), author="Ocean", author_id="@ocean")
    events.mention(2002, START + timedelta(hours=3), author="@ministry", language="en")
    joint = engage_pb2.PartnerActivity(
        activity_id="reefs-1",
        partner_id="reefs",
        partner_name="Reef Fund",
        kind=engage_pb2.PartnerActivity.KIND_CO_PUBLICATION,
        joint=True,
        issue_ids=["plastics"],
    )
    joint.occurred_at.FromDatetime(START + timedelta(hours=30))
    events.send(joint, START + timedelta(hours=30), "reefs-1")
    meeting = engage_pb2.PartnerActivity(
        activity_id="ocean-meeting",
        partner_id="ocean",
        kind=engage_pb2.PartnerActivity.KIND_MEETING,  # not a joint activity
    )
    meeting.occurred_at.FromDatetime(START + timedelta(hours=31))
    events.send(meeting, START + timedelta(hours=31), "ocean-meeting")
    events.flush()


class Writer:
    """Streams campaign-period mentions from a thread, as the listener would.

    With ``hold_at``, the writer flushes every mention numbered below it, signals ``held``
    and waits for ``release()`` before producing the rest: whatever the test does in
    between happens with the stream demonstrably part-way, however loaded the machine.
    """

    def __init__(
        self, events: Events, numbers: range, hold_at: int | None = None, pause_every: int = 10
    ) -> None:
        self.events = events
        self.numbers = numbers
        self.hold_at = hold_at
        self.pause_every = pause_every
        self.held = threading.Event()
        self._released = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for number in self.numbers:
                if number == self.hold_at:
                    self.events.flush()
                    self.held.set()
                    if not self._released.wait(timeout=300):
                        raise TimeoutError(f"writer held at mention {number}, never released")
                self.events.streamed(number)
                if number % self.pause_every == self.pause_every - 1:
                    self.events.flush()
                    time.sleep(0.05)
            self.events.flush()
        except BaseException as failure:  # re-raised in the test's thread by join()
            self._failure = failure

    def wait_held(self, timeout: float = 120.0) -> None:
        """Returns once every mention before ``hold_at`` is produced and the rest is not."""
        assert self.held.wait(timeout), "the writer did not reach its hold"

    def release(self) -> None:
        self._released.set()

    def join(self, timeout: float = 120.0) -> None:
        self.release()  # a writer is never left waiting once the test no longer needs it
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the writer did not finish"
        if self._failure is not None:
            raise self._failure


def reindex(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "legation_evaluator", "reindex", "--quiet", *args],
        env=stack.env_for("evaluator"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def scorecard(stack: Stack, campaign_id: str) -> pb.Scorecard:
    with stack.channel("evaluator", user="viewer") as channel:
        return pb_grpc.EvaluatorServiceStub(channel).GetCampaignScorecard(
            pb.GetCampaignScorecardRequest(campaign_id=campaign_id), timeout=30
        )


def submit_feedback(stack: Stack, campaign_id: str) -> None:
    with stack.channel("evaluator") as channel:
        api = pb_grpc.EvaluatorServiceStub(channel)
        for number, rating in enumerate((5, 2)):
            request = pb.SubmitFeedbackRequest(
                campaign_id=campaign_id,
                request_id=f"fb-{number}",
                feedback=evaluate_pb2.Feedback(
                    from_role=evaluate_pb2.Feedback.FROM_ROLE_PARTNER,
                    organisation="Ocean Alliance",
                    rating=rating,
                    text="Useful, but answer in Spanish sooner.",
                ),
            )
            api.SubmitFeedback(request, timeout=30)
            api.SubmitFeedback(request, timeout=30)  # a retry: the same feedback


def test_a_campaign_survives_crashes_and_the_reindex_rebuilds_identical_counts(
    crashed_stack: Stack,
) -> None:
    """The steps in order, each its own function so that a failure names the step."""
    stack = crashed_stack
    campaign_id = "flow-es"
    step_a_wrong_campaign_is_refused_and_a_right_one_stored(stack, campaign_id)
    events = Events(stack, campaign_id)
    seed_fixed_events(events)
    wait_until(lambda: safe_count(stack, campaign_id, event_type=CAMPAIGN) == 1, 60, "campaign")
    submit_feedback(stack, campaign_id)
    step_the_evaluator_killed_mid_stream_comes_back(stack, events, campaign_id)
    step_what_is_produced_during_an_index_outage_arrives_after_it(stack, events, campaign_id)
    mentions = step_the_forgotten_index_is_rebuilt_without_a_manual_step(stack, events, campaign_id)
    expected = step_a_manual_reindex_counts_nothing_twice(stack, events, campaign_id, mentions)
    card = step_the_scorecard_holds_every_kpi_and_objective(stack, campaign_id, mentions)
    step_the_restarted_evaluator_emitted_a_kpi_snapshot(stack, campaign_id)
    step_a_rebuild_into_fresh_indices_gives_the_same_counts_and_scorecard(
        stack, campaign_id, expected, card, mentions
    )


def step_a_wrong_campaign_is_refused_and_a_right_one_stored(stack: Stack, campaign_id: str) -> None:
    """A filter on a field the metric cannot filter is refused, naming it."""
    with stack.channel("evaluator") as channel:
        api = pb_grpc.EvaluatorServiceStub(channel)
        broken = campaign(campaign_id)
        broken.objectives[0].filters[0].field = "country"
        with pytest.raises(grpc.RpcError) as refused:
            api.CreateCampaign(broken, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "objectives[0].filters[0].field" in str(refused.value.details())
        stored = api.CreateCampaign(campaign(campaign_id), timeout=30)
    assert stored.objectives[0].level == Objective.LEVEL_OUTTAKE  # reach's usual level


def step_the_evaluator_killed_mid_stream_comes_back(
    stack: Stack, events: Events, campaign_id: str
) -> None:
    """The evaluator dies mid-stream (SIGKILL) and comes back."""
    # The writer holds after mention 59: the kill lands with half the stream unproduced.
    writer = Writer(events, range(0, 120), hold_at=60)
    writer.wait_held()
    assert events.sent["Mention"] == 10 + 3 + 60
    wait_until(
        lambda: count(stack, campaign_id, event_type=MENTION) >= 40, 60, "first mentions", 0.02
    )
    stack.kill_service("evaluator")
    at_kill = count(stack, campaign_id, event_type=MENTION)
    writer.release()
    writer.join()
    assert at_kill < 10 + 3 + 120  # killed mid-stream
    stack.start_service("evaluator")


def step_what_is_produced_during_an_index_outage_arrives_after_it(
    stack: Stack, events: Events, campaign_id: str
) -> None:
    """The index server dies mid-stream; what is produced meanwhile must arrive after it."""
    # The writer holds after mention 149: the index server dies before 150-179 exist.
    writer = Writer(events, range(120, 180), hold_at=150)
    writer.wait_held()
    assert events.sent["Mention"] == 10 + 3 + 150
    wait_until(
        lambda: count(stack, campaign_id, event_type=MENTION) >= 140, 60, "more mentions", 0.02
    )
    assert stack.opensearch is not None
    port = stack.opensearch.port
    at_outage = count(stack, campaign_id, event_type=MENTION)
    stack.opensearch.process.kill()
    writer.release()
    writer.join()
    assert at_outage < 10 + 3 + 180  # killed mid-stream
    during = range(180, STREAMED)
    Writer(events, during).join()
    time.sleep(1.0)  # the evaluator meets the outage: it must pause, not skip
    stack.opensearch = start_opensearch(stack.log_dir, port=port)
    ids = [f"{campaign_id}-m{number}" for number in during]
    wait_until(
        lambda: safe_count(stack, campaign_id, mention__mention_id=ids) == len(ids),
        90,
        "the mentions produced during the outage",
        0.2,
    )
    assert count(stack, campaign_id, mention__mention_id=ids) == len(ids)


def step_the_forgotten_index_is_rebuilt_without_a_manual_step(
    stack: Stack, events: Events, campaign_id: str
) -> int:
    """The empty index server forgot the rest: the evaluator notices (its marker is gone)
    and rebuilds the index from the log by itself. Returns how many mentions there are."""
    events.close()
    mentions = STREAMED + 10 + 3
    wait_until(
        lambda: safe_count(stack, campaign_id, event_type=MENTION) == mentions,
        90,
        "every mention back without a manual re-index",
        0.5,
    )
    return mentions


def step_a_manual_reindex_counts_nothing_twice(
    stack: Stack, events: Events, campaign_id: str, mentions: int
) -> dict[str, int]:
    """The manual re-index still works, and changes nothing. Returns the count of each
    event type."""
    output = reindex(stack)
    assert "reindexed" in output
    expected = {
        MENTION: mentions,
        "legation.events.v1.Publication": 3,
        "legation.events.v1.Interaction": 13,
        "legation.events.v1.LinkClick": 6,
        "legation.events.v1.Feedback": 2,
        "legation.events.v1.PartnerActivity": 2,
        CAMPAIGN: 1,
    }
    assert events.sent["Mention"] == mentions
    wait_until(
        lambda: count(stack, campaign_id, event_type=MENTION) == mentions, 60, "every mention"
    )
    # Nothing may count twice: once the live indexer has committed every event written so
    # far, no document is still on its way, and the counts are final.
    assert stack.kafka is not None
    bootstrap, indexer = stack.kafka.bootstrap_servers, service_group("evaluator", "indexer")
    wait_until(
        lambda: uncommitted(bootstrap, indexer, consumed_by("evaluator")) == 0,
        60,
        "the indexer has committed every event",
        0.5,
    )
    for event_type, number in expected.items():
        assert count(stack, campaign_id, event_type=event_type) == number, event_type
    return expected


def step_the_scorecard_holds_every_kpi_and_objective(
    stack: Stack, campaign_id: str, mentions: int
) -> pb.Scorecard:
    """Every KPI, baseline and objective status from the events streamed across the
    crashes."""
    asked = datetime.now(UTC)
    card = scorecard(stack, campaign_id)
    answered = datetime.now(UTC)
    assert card.mentions == mentions
    assert card.feedback == 2
    assert card.replies == 8
    kpis = {kpi.name: kpi.value for kpi in card.kpis}
    assert kpis["volume"] == STREAMED + 3  # the campaign's period: not the baseline week
    assert kpis["link_clicks"] == 6
    assert kpis["engagement"] == 5 + 6  # conversations opened, clicks
    assert kpis["partner_actions"] == 3  # two mentions by Ocean, Reef Fund's co-publication
    assert kpis["partner_organisations"] == 2
    assert kpis["median_first_response_seconds"] == 3 * HOUR
    assert kpis["share_of_voice"] == pytest.approx(100 * 11 / (11 + STREAMED + 2))
    # Against the campaign's length before it: the baseline week's 10 mentions, 3 in favour
    # (a count scaled to the campaign's time gone when the scorecard was computed: 3 of 7
    # days plus however long this test has run; a shared answer may be up to 10 s old).
    before = {kpi.name: kpi.baseline for kpi in card.kpis if kpi.HasField("baseline")}
    assert before["stance_favour_share"] == pytest.approx(30.0)

    def scaled(at: datetime) -> float:
        return 10 * ((at - START) / timedelta(days=7))

    assert scaled(asked - timedelta(seconds=15)) <= before["volume"] <= scaled(answered) + 1e-9
    statuses = {o.objective_id: o for o in card.objectives}
    assert {key: status.status for key, status in statuses.items()} == EXPECTED, [
        (o.objective_id, o.reason) for o in card.objectives
    ]
    assert statuses["favour-up"].baseline == pytest.approx(30.0)
    assert statuses["favour-up"].value == pytest.approx(45.0)
    assert statuses["reach-es"].value == 1_800_000
    assert statuses["share-of-voice"].baseline == 12
    return card


def step_the_restarted_evaluator_emitted_a_kpi_snapshot(stack: Stack, campaign_id: str) -> None:
    """Indexed like any event: at start-up, or within a tick of the rebuild ending when it
    started during one."""

    def snapshots() -> list[Any]:
        found: list[Any] = client(stack).search(
            index=f"{PREFIX}-kpi_snapshot*",
            body={"query": {"term": {"campaign_ids": campaign_id}}, "size": 10},
        )["hits"]["hits"]
        return found

    wait_until(lambda: bool(snapshots()), SNAPSHOT_TICK_SECONDS + 30, "a kpi snapshot")
    snapshot = snapshots()[0]["_source"]["kpi_snapshot"]
    assert {o["objective_id"] for o in snapshot["objectives"]} == set(EXPECTED)


def step_a_rebuild_into_fresh_indices_gives_the_same_counts_and_scorecard(
    stack: Stack, campaign_id: str, expected: dict[str, int], card: pb.Scorecard, mentions: int
) -> None:
    """Identical counts, the same scorecard; the evaluator's own answer, from the aggregates
    it maintains, has the search's figures."""
    reindex(stack, "--prefix", REBUILT)
    for event_type, number in expected.items():
        assert count(stack, campaign_id, prefix=REBUILT, event_type=event_type) == number
    rebuilt = EventIndex(client(stack), REBUILT)
    now = card.computed_at.ToDatetime(tzinfo=UTC)
    stored_campaign = rebuilt.campaign(campaign_id)
    assert stored_campaign is not None
    again = scorecard_from_response(
        stored_campaign, rebuilt.scorecard_response(stored_campaign), now
    )
    live = EventIndex(client(stack), PREFIX)
    first = scorecard_from_response(stored_campaign, live.scorecard_response(stored_campaign), now)
    assert list(again.kpis) == list(first.kpis)
    assert list(again.objectives) == list(first.objectives)
    assert again.mentions == first.mentions == mentions
    # The evaluator answered from the aggregates it maintains, with the search's figures.
    assert card.computed_from == "aggregates" and not card.objectives_from_events
    kpis_searched: list[tuple[str, object, object]] = [
        (k.name, pytest.approx(k.value), pytest.approx(k.baseline)) for k in first.kpis
    ]
    assert [(k.name, k.value, k.baseline) for k in card.kpis] == kpis_searched
    statuses_searched: list[tuple[str, object, object]] = [
        (o.objective_id, o.status, pytest.approx(o.value)) for o in first.objectives
    ]
    assert [(o.objective_id, o.status, o.value) for o in card.objectives] == statuses_searched


def test_a_watched_scorecard_follows_new_events(stack: Stack) -> None:
    campaign_id = "flow-watch"
    with stack.channel("evaluator") as channel:
        pb_grpc.EvaluatorServiceStub(channel).CreateCampaign(campaign(campaign_id), timeout=30)
    wait_until(lambda: safe_count(stack, campaign_id, event_type=CAMPAIGN) == 1, 60, "campaign")
    events = Events(stack, campaign_id)
    with stack.channel("evaluator", user="viewer") as channel:
        updates = pb_grpc.EvaluatorServiceStub(channel).WatchCampaignScorecard(
            pb.WatchCampaignScorecardRequest(campaign_id=campaign_id, min_interval_seconds=0.2),
            timeout=60,
        )
        received: list[pb.Scorecard] = []
        try:
            for card in updates:
                received.append(card)
                if len(received) == 1:
                    assert card.mentions == 0
                    events.streamed(0)
                    events.flush()
                # Each update differs from the one before (a status reason may move with
                # the clock too); the new mention shows up in one of the next few.
                elif card.mentions or len(received) > 5:
                    break
        finally:
            updates.cancel()  # type: ignore[no-untyped-call]
            events.close()
    first, last = received[0], received[-1]
    assert last.mentions == 1
    assert last.computed_at.ToDatetime() >= first.computed_at.ToDatetime()


def test_the_metric_catalogue_and_campaigns_are_listed(stack: Stack, tmp_path: Path) -> None:
    with stack.channel("evaluator") as channel:  # its own campaign: no other test's
        pb_grpc.EvaluatorServiceStub(channel).CreateCampaign(campaign("flow-listed"), timeout=30)
    with stack.channel("evaluator", user="viewer") as channel:
        api = pb_grpc.EvaluatorServiceStub(channel)
        catalogue = api.ListMetrics(pb.ListMetricsRequest(), timeout=10)
        names = {metric.name for metric in catalogue.metrics}
        assert {"reach", "share_of_voice", "stance_favour_share", "partner_actions"} <= names

        def listed() -> set[str]:
            found = api.ListCampaigns(pb.ListCampaignsRequest(), timeout=10).campaigns
            return {c.campaign_id for c in found}

        wait_until(lambda: "flow-listed" in listed(), 30, "a campaign listed")
        with pytest.raises(grpc.RpcError) as denied:
            api.CreateCampaign(campaign("viewer-made"), timeout=10)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
