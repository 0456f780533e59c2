"""Analysts teach the models, over real processes (issue 14, items 4 and 5): the listener
and the evaluator as ``python -m`` processes on the Kafka and OpenSearch stand-ins, a
replayed feed per issue.

An analyst labels the mentions of two issues through the gRPC API. On one, the labels
follow the text (the plastics treaty welcomed or attacked, and football news that only
says "treaty"): its relevance and stance models train in the background and are served.
On the other every mention says the same sentence, labelled both ways: no model can beat
the majority class on the held-back labels, so its relevance model is refused and its
mentions' relevance is ``unknown``, naming the model. ``RescoreMentions`` re-enriches the
stored mentions from Kafka: the evaluator's documents (same ids, same indices, same counts)
carry the new model versions with the replaced labels in ``label_history``. A restarted
listener rebuilds the labels from their topic and serves the same models.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from listener_kit import ListenerProcess
from opensearchpy import OpenSearch

from legation.listener.v1 import listener_service_pb2 as pb
from legation.listener.v1 import listener_service_pb2_grpc as pb_grpc
from legation_core.config import CoreSettings
from legation_devstack.processes import Process, child_env, free_port, spawn, wait_until
from legation_devstack.source_servers import FeedServer
from legation_devstack.standins import OpenSearchStandIn
from legation_devstack.users import UsersFile

pytestmark = pytest.mark.integration

# Labels that follow the text: the treaty welcomed, the treaty attacked, and football news
# that matches the issue's keyword without being about it.
FAVOUR = [
    ("Ministers welcome the plastics treaty",
     "Delegates praised the binding cap on plastic production as a historic win for clean "
     "oceans."),
    ("A historic win for the oceans",
     "Campaigners celebrate the plastics treaty and its cap on plastic production; a great "
     "step we fully support."),
    ("Scientists back the plastics treaty",
     "Researchers support the cap on virgin plastic and say the agreement will protect "
     "wildlife and health."),
    ("Coastal towns cheer the plastics treaty",
     "Mayors welcome the deal on plastic waste and praise negotiators for a strong and fair "
     "agreement."),
    ("Youth activists celebrate the plastics treaty",
     "Students support the plastic production cap and call the agreement a great victory "
     "for the planet."),
    ("Health experts praise the plastics treaty",
     "Doctors welcome limits on plastic chemicals and say the agreement is good news for "
     "public health."),
]  # fmt: skip
AGAINST = [
    ("Industry groups attack the plastics treaty",
     "Petrochemical lobbyists say the cap on plastic production will destroy jobs and must "
     "be rejected."),
    ("Manufacturers reject the plastics treaty",
     "Plastic makers oppose the production cap, calling it a costly and harmful mistake for "
     "workers."),
    ("Oil states oppose the plastics treaty",
     "Producers condemn the plastic production cap as an unfair attack on their economies "
     "and vow to block it."),
    ("Packaging firms fight the plastics treaty",
     "The plastic industry warns the cap is a disaster that will raise prices; they oppose "
     "and reject it."),
    ("Unions condemn the plastics treaty",
     "Workers at plastic plants reject the production cap and say the deal is a terrible "
     "blow to jobs."),
    ("Critics slam the plastics treaty",
     "Business leaders call the plastic production cap a harmful failure and urge "
     "governments to reject it."),
]  # fmt: skip
OFF_TOPIC = [
    ("Club signs a transfer treaty with its rival",
     "The striker joins the football club before the derby match; the coach praised the "
     "midfield."),
    ("Cup final ends with a treaty of goals",
     "A late penalty decided the football cup final as the goalkeeper saved two shots in "
     "the match."),
    ("League table after the weekend",
     "The football fixtures ended with a treaty between the clubs over the transfer of the "
     "goalkeeper."),
    ("Coach praises the midfield after the derby",
     "The football match ended two nil; the treaty between the clubs on the loan deal held."),
    ("Goalkeeper saves two penalties",
     "Football fans cheered as the club reached the cup semi final after a treaty of late "
     "goals."),
    ("Transfer window closes",
     "Football clubs rushed to sign a treaty for the striker before the deadline; the league "
     "match follows."),
    ("Derby day preview",
     "The football club captain talks about the match, the treaty with the rival fans and "
     "the cup run."),
    ("Striker scores a hat trick",
     "The football match saw a hat trick as the club extended its treaty with the coach "
     "until the cup final."),
    ("Stadium sold out for the final",
     "Football supporters bought every ticket for the cup match; the clubs signed a treaty "
     "on away fans."),
    ("Referee decision sparks debate",
     "A penalty in the football match divided fans; the league and the clubs signed a "
     "treaty on video review."),
    ("Youth academy produces a star",
     "The football club promoted a teenage striker; his treaty runs until the end of the "
     "league season."),
    ("Manager sacked after defeat",
     "The football club ended its treaty with the manager after the cup match loss to the "
     "league leaders."),
]  # fmt: skip
# What each title should be labelled, as (relevance, stance).
EXPECTED = {
    **{title: ("relevant", "favour") for title, _ in FAVOUR},
    **{title: ("relevant", "against") for title, _ in AGAINST},
    **{title: ("irrelevant", "neutral") for title, _ in OFF_TOPIC},
}
# Labels that do not follow the text: one sentence, labelled relevant 10 times and
# irrelevant 5 times. A model sees one text and answers one class: never strictly better
# than always answering the common one.
SAME = ("Talks on the treaty resumed today", "Delegates met again and the talks went on.")
SAME_RELEVANT, SAME_IRRELEVANT = 10, 5
POOLED_STANCE = "legation-stance-en"
PREFIX_OF = "labels-{}"


class EvaluatorProcess:
    """``python -m legation_evaluator`` on its own ports and index prefix, stopped by pid."""

    def __init__(
        self,
        settings: CoreSettings,
        opensearch: OpenSearchStandIn,
        users: UsersFile,
        log_dir: Path,
        prefix: str,
    ) -> None:
        self.grpc_port = free_port()
        env = child_env()
        env.update(
            {
                "LEGATION_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "LEGATION_GRPC_PORT": str(self.grpc_port),
                "LEGATION_METRICS_PORT": str(free_port()),
                "LEGATION_WEB_PORT": str(free_port()),
                "LEGATION_OPENSEARCH_URL": opensearch.url,
                "LEGATION_EVALUATOR_INDEX_PREFIX": prefix,
                "LEGATION_AUTH_USERS_FILE": str(users.path),
                "LEGATION_CONSUMER_POLL_TIMEOUT_MS": "200",
                "LEGATION_CONSUMER_IDLE_WAIT_MS": "50",
            }
        )
        self.process: Process = spawn(
            "evaluator", [sys.executable, "-m", "legation_evaluator"], log_dir, env
        )

    def wait_serving(self) -> None:
        self.process.wait_serving(self.grpc_port)


class Index:
    """The evaluator's mention documents of one test (its own index prefix)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = OpenSearch(hosts=[url], timeout=30)
        self.prefix = prefix

    def search(self, kind: str, **terms: str) -> list[dict[str, Any]]:
        """Every document of event type ``kind`` (``mention``, monthly indices, or
        ``mention_label``, one index) with the given term values."""
        self.client.indices.refresh(index=f"{self.prefix}-*")
        filters = [{"term": {field: value}} for field, value in terms.items()]
        response = self.client.search(
            index=f"{self.prefix}-{kind}-*" if kind == "mention" else f"{self.prefix}-{kind}",
            body={"query": {"bool": {"filter": filters}}, "size": 1000},
        )
        hits: list[dict[str, Any]] = response["hits"]["hits"]
        return hits

    def count(self, kind: str, **terms: str) -> int:
        return len(self.search(kind, **terms))


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """``wait_until`` that fails the test with ``what``."""
    try:
        wait_until(check, timeout, what, interval=0.2)
    except TimeoutError as error:
        raise AssertionError(str(error)) from None


def models_of(api: pb_grpc.ListenerServiceStub, issue_id: str) -> dict[str, pb.ModelStatus]:
    """The issue's models by task once none is waiting for training."""
    found: dict[str, pb.ModelStatus] = {}

    def trained() -> bool:
        listed = api.ListModels(pb.ListModelsRequest(issue_id=issue_id), timeout=10).models
        found.clear()
        found.update({status.task: status for status in listed})
        return bool(listed) and all(status.state != "training" for status in listed)

    wait_for(trained, f"the models of {issue_id}")
    return found


def rescore(api: pb_grpc.ListenerServiceStub, issue_id: str) -> pb.RescoreStatus:
    """Starts a re-score of ``issue_id`` and waits for its end."""
    started = api.RescoreMentions(pb.RescoreMentionsRequest(issue_id=issue_id), timeout=10)
    assert (started.state, started.issue_id) == ("running", issue_id)
    last = pb.RescoreStatus()

    def done() -> bool:
        last.CopyFrom(api.ListModels(pb.ListModelsRequest(), timeout=10).rescore)
        return last.issue_id == issue_id and last.state != "running"

    wait_for(done, f"the re-score of {issue_id}")
    assert last.state == "done", last
    return last


def comparable(status: pb.ModelStatus) -> tuple[Any, ...]:
    """What a retraining on the same labels must give again (not when it ran)."""
    return (status.task, status.state, status.reason, status.model, status.model_version,
            status.labels, status.train_labels, status.validation_labels,
            round(status.macro_f1, 6), status.majority_class)  # fmt: skip


@pytest.fixture
def feeds() -> Iterator[tuple[FeedServer, FeedServer]]:
    taught, same = FeedServer("Treaty news"), FeedServer("Treaty wire")
    taught.start()
    same.start()
    for title, summary in FAVOUR + AGAINST + OFF_TOPIC:
        taught.publish(title, summary)
    for _ in range(SAME_RELEVANT + SAME_IRRELEVANT):
        same.publish(*SAME)
    try:
        yield taught, same
    finally:
        taught.stop()
        same.stop()


@dataclass
class Labelling:
    """What the steps share: the two issues, their campaign and the index, and what a step
    found that a later one compares with."""

    taught: str
    refused: str
    campaign: str
    index: Index
    before: dict[str, Any] = field(default_factory=dict)
    by_title: dict[str, str] = field(default_factory=dict)
    pooled: set[str] = field(default_factory=set)
    same_ids: list[str] = field(default_factory=list)
    models: dict[str, pb.ModelStatus] = field(default_factory=dict)
    same_model: pb.ModelStatus = field(default_factory=pb.ModelStatus)
    runs: dict[str, pb.RescoreStatus] = field(default_factory=dict)


def test_analysts_labels_train_served_and_refused_models_and_rescoring_reaches_the_index(
    kafka_settings: CoreSettings,
    opensearch_stand_in: OpenSearchStandIn,
    auth_users: UsersFile,
    feeds: tuple[FeedServer, FeedServer],
    tmp_path: Path,
    unique: str,
) -> None:
    """The steps in order, each its own function so that a failure names the step."""
    started = time.monotonic()
    taught_feed, same_feed = feeds
    prefix = PREFIX_OF.format(unique)
    campaign = f"labels-campaign-{unique}"
    env = {
        "LEGATION_LISTENER_TRAIN_SECONDS": "0.3",
        "LEGATION_LISTENER_FULL_TEXT_MAX_PER_READ": "0",
    }
    evaluator = EvaluatorProcess(
        kafka_settings, opensearch_stand_in, auth_users, tmp_path / "evaluator", prefix
    )
    listeners: list[ListenerProcess] = []
    try:
        listeners.append(ListenerProcess(kafka_settings, auth_users, tmp_path / "l0", env))
        evaluator.wait_serving()
        labelling = Labelling(
            f"taught-{unique}", f"same-{unique}", campaign, Index(opensearch_stand_in.url, prefix)
        )
        with listeners[0].channel() as channel:
            api = pb_grpc.ListenerServiceStub(channel)
            step_both_issues_are_read_and_indexed_with_the_pooled_models(
                api, labelling, taught_feed, same_feed
            )
            step_the_analyst_labels_every_mention_of_both_issues(api, labelling)
            step_one_issue_gets_served_models_the_other_a_refused_one(api, labelling)
            step_rescoring_sends_every_stored_mention_again(api, labelling)
        step_the_index_holds_the_rescored_mentions_with_their_history(labelling)
        # A restart rebuilds the labels from their topic and trains the same models again.
        assert listeners[0].process.stop() == 0
        listeners.append(ListenerProcess(kafka_settings, auth_users, tmp_path / "l1", env))
        with listeners[1].channel() as channel:
            step_a_restarted_listener_serves_the_same_models(
                pb_grpc.ListenerServiceStub(channel), labelling
            )
        assert labelling.index.count("mention", campaign_ids=campaign) == len(labelling.before)
    finally:
        for listener in listeners:
            listener.process.stop()
        evaluator.process.stop()
    print(f"\nlabels, training, re-scoring and a restart in {time.monotonic() - started:.1f} s")


def step_both_issues_are_read_and_indexed_with_the_pooled_models(
    api: pb_grpc.ListenerServiceStub,
    labelling: Labelling,
    taught_feed: FeedServer,
    same_feed: FeedServer,
) -> None:
    """Both issues tracked and polled; every mention indexed, stance from the pooled model,
    no relevance model yet."""
    taught, refused, campaign, index = (
        labelling.taught,
        labelling.refused,
        labelling.campaign,
        labelling.index,
    )
    for issue_id, feed in ((taught, taught_feed), (refused, same_feed)):
        api.TrackIssue(
            pb.TrackIssueRequest(
                issue_id=issue_id,
                name="Plastics treaty",
                keywords=["treaty"],
                feeds=[feed.feed_url],
                campaign_ids=[campaign],
            ),
            timeout=30,
        )
    polled = api.PollNow(pb.PollNowRequest(issue_id=taught), timeout=60)
    assert polled.mentions_emitted == len(EXPECTED), polled
    polled = api.PollNow(pb.PollNowRequest(issue_id=refused), timeout=60)
    assert polled.mentions_emitted == SAME_RELEVANT + SAME_IRRELEVANT, polled

    total = len(EXPECTED) + SAME_RELEVANT + SAME_IRRELEVANT
    wait_for(lambda: index.count("mention", campaign_ids=campaign) == total, "indexed")
    before = {hit["_id"]: hit for hit in index.search("mention", campaign_ids=campaign)}
    by_title = {
        hit["_source"]["mention"]["title"]: hit["_id"]
        for hit in before.values()
        if hit["_source"]["issue_id"] == taught
    }
    assert set(by_title) == set(EXPECTED)
    pooled = {h["_source"]["mention"]["stance"]["model_version"] for h in before.values()}
    assert {h["_source"]["mention"]["stance"]["model"] for h in before.values()} == {POOLED_STANCE}
    assert {h["_source"]["mention"]["relevance"]["model"] for h in before.values()} == {"none"}

    labelling.before, labelling.by_title, labelling.pooled = before, by_title, pooled


def step_the_analyst_labels_every_mention_of_both_issues(
    api: pb_grpc.ListenerServiceStub, labelling: Labelling
) -> None:
    """Through the API: the taught issue's as the text says, the other's both ways."""
    taught, refused, before, by_title = (
        labelling.taught,
        labelling.refused,
        labelling.before,
        labelling.by_title,
    )
    for title, mention_id in by_title.items():
        relevance, stance = EXPECTED[title]
        label = api.LabelMention(
            pb.LabelMentionRequest(
                issue_id=taught, mention_id=mention_id, relevance=relevance, stance=stance
            ),
            timeout=30,
        )
        # The text judged is the mention's as the listener holds it.
        assert label.text.startswith(title) and label.labelled_by == "analyst"
    same_ids = sorted(
        hit["_id"] for hit in before.values() if hit["_source"]["issue_id"] == refused
    )
    for n, mention_id in enumerate(same_ids):
        api.LabelMention(
            pb.LabelMentionRequest(
                issue_id=refused,
                mention_id=mention_id,
                relevance="relevant" if n < SAME_RELEVANT else "irrelevant",
            ),
            timeout=30,
        )

    labelling.same_ids = same_ids


def step_one_issue_gets_served_models_the_other_a_refused_one(
    api: pb_grpc.ListenerServiceStub, labelling: Labelling
) -> None:
    """Training runs in the background; ListModels says what is served and why."""
    taught, refused, index = labelling.taught, labelling.refused, labelling.index
    models = models_of(api, taught)
    assert set(models) == {"relevance", "stance"}
    for task, status in models.items():
        assert status.state == "served", status
        assert status.model == f"legation-{task}@{taught}" and status.model_version
        assert status.labels == len(EXPECTED)
        assert status.macro_f1 > status.majority_macro_f1
        assert "beats" in status.reason and "held-back" in status.reason
    assert models["relevance"].validation_labels == 8  # one in three of each class
    assert list(models["relevance"].classes) == ["irrelevant", "relevant"]
    (same_model,) = models_of(api, refused).values()
    assert (same_model.task, same_model.state) == ("relevance", "refused"), same_model
    assert same_model.macro_f1 <= same_model.majority_macro_f1
    assert "does not beat" in same_model.reason and "'relevant'" in same_model.reason
    assert same_model.model_version and not same_model.classes
    wait_for(
        lambda: index.count("mention_label", issue_id=taught) == len(EXPECTED),
        "labels indexed",
    )

    labelling.models, labelling.same_model = models, same_model


def step_rescoring_sends_every_stored_mention_again(
    api: pb_grpc.ListenerServiceStub, labelling: Labelling
) -> None:
    """The stored mentions, re-enriched from Kafka, sent again."""
    taught, refused, same_ids = labelling.taught, labelling.refused, labelling.same_ids
    runs = {}
    for issue_id, count in ((taught, len(EXPECTED)), (refused, len(same_ids))):
        runs[issue_id] = run = rescore(api, issue_id)
        assert (run.rescored, run.changed) == (count, count), run
        assert f"legation-relevance@{issue_id} " in " ".join(run.models) + " "
    labelling.runs = runs


def step_the_index_holds_the_rescored_mentions_with_their_history(labelling: Labelling) -> None:
    """The same documents in the same indices, with the new models' labels and the old ones
    in their history, findable by version."""
    taught, refused, campaign, index = (
        labelling.taught,
        labelling.refused,
        labelling.campaign,
        labelling.index,
    )
    before, by_title, pooled, same_ids = (
        labelling.before,
        labelling.by_title,
        labelling.pooled,
        labelling.same_ids,
    )
    models, same_model = labelling.models, labelling.same_model
    relevance_version = models["relevance"].model_version
    stance_version = models["stance"].model_version

    def taught_rescored() -> bool:
        hits = index.search("mention", issue_id=taught)
        return len(hits) == len(EXPECTED) and all(
            h["_source"]["mention"]["relevance"]["model_version"] == relevance_version for h in hits
        )

    wait_for(taught_rescored, "re-scored documents indexed")
    wait_for(
        lambda: all(
            h["_source"]["mention"]["relevance"]["model"] == f"legation-relevance@{refused}"
            for h in index.search("mention", issue_id=refused)
        ),
        "the refused issue's documents re-indexed",
    )
    after = {hit["_id"]: hit for hit in index.search("mention", campaign_ids=campaign)}
    # The same documents in the same monthly indices: counts unchanged.
    assert {(h["_index"], i) for i, h in after.items()} == {
        (h["_index"], i) for i, h in before.items()
    }
    assert index.count("mention", issue_id=taught) == len(EXPECTED)
    assert index.count("mention", issue_id=refused) == len(same_ids)
    stances_as_labelled = 0
    for title, mention_id in by_title.items():
        mention = after[mention_id]["_source"]["mention"]
        relevance, stance = EXPECTED[title]
        assert mention["relevance"]["value"] == relevance, title
        # Stance starts from the pooled model and stays near it: one text in 24 may
        # keep its pull (depending on which labels the split held back).
        stances_as_labelled += mention["stance"]["value"] == stance
        assert mention["stance"]["model"] == f"legation-stance@{taught}"
        assert mention["stance"]["model_version"] == stance_version
        history = {(r["field"], r["model"], r["model_version"]) for r in mention["label_history"]}
        old = before[mention_id]["_source"]["mention"]["stance"]
        assert ("stance", POOLED_STANCE, old["model_version"]) in history
        assert ("relevance", "none", "") in history
    assert stances_as_labelled >= len(EXPECTED) - 2
    # The old labels stay findable by version.
    for version in pooled:
        found = index.count(
            "mention", issue_id=taught, **{"mention.label_history.model_version": version}
        )
        assert found == sum(
            before[i]["_source"]["mention"]["stance"]["model_version"] == version
            for i in by_title.values()
        )
    for mention_id in same_ids:
        mention = after[mention_id]["_source"]["mention"]
        relevance_label = mention["relevance"]
        assert (relevance_label["value"], relevance_label["model"]) == (
            "unknown",
            f"legation-relevance@{refused}",
        )
        assert relevance_label["model_version"] == same_model.model_version
        assert {"field": "relevance", "value": "unknown", "model": "none"}.items() <= (
            mention["label_history"][0].items()
        )
        assert mention["stance"] == before[mention_id]["_source"]["mention"]["stance"]


def step_a_restarted_listener_serves_the_same_models(
    api: pb_grpc.ListenerServiceStub, labelling: Labelling
) -> None:
    """The labels rebuilt from their topic train the same models; re-scoring again changes
    nothing."""
    taught, refused, models, same_model = (
        labelling.taught,
        labelling.refused,
        labelling.models,
        labelling.same_model,
    )
    runs, same_ids = labelling.runs, labelling.same_ids
    again = models_of(api, taught)
    assert {t: comparable(s) for t, s in again.items()} == {
        t: comparable(s) for t, s in models.items()
    }
    (same_again,) = models_of(api, refused).values()
    assert comparable(same_again) == comparable(same_model)
    # The same models again: each mention's latest record is up to date already.
    again_run = rescore(api, taught)
    assert (again_run.read, again_run.rescored, again_run.changed) == (
        runs[refused].read + len(same_ids),  # what the last run read and sent
        0,
        0,
    ), again_run
