"""A finished campaign seeded into a real index through the evaluator's own document path:
a baseline of critical mentions, two publications, warmer mentions after them, questions
answered at known speeds, and feedback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import cast

import grpc
from google.protobuf.message import Message

from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.codec import Envelope, make_envelope
from legation_core.grpc_server import build_server
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_core.testing import RecordingProducer
from legation_devstack.users import UsersFile
from legation_evaluator.adapters.grpc_api import EvaluatorApi
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.adapters.policy import POLICY
from legation_evaluator.domain.documents import document_for

NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(days=3)
END = NOW - timedelta(hours=1)
# A name with markup: every page and document must show it as text.
NAME = "Plastics <b>treaty</b> & oceans"
AUTHORS = ("ocean-watch", "daily-planet", "treaty-sceptic")
Objective = evaluate_pb2.Objective
Feedback = evaluate_pb2.Feedback


def campaign(campaign_id: str, ends_at: datetime = END) -> evaluate_pb2.Campaign:
    result = evaluate_pb2.Campaign(
        campaign_id=campaign_id,
        name=NAME,
        description="Win support for a binding treaty.",
        issue_ids=["plastics"],
        objectives=[
            Objective(
                objective_id="conversation",
                description="Get the issue discussed",
                metric="mentions",
                comparison=Objective.COMPARISON_AT_LEAST,
                target=10,
                level=Objective.LEVEL_OUTPUT,
            ),
            Objective(
                objective_id="answer-all",
                description="Answer the questions",
                metric="replies",
                comparison=Objective.COMPARISON_AT_LEAST,
                target=20,
                level=Objective.LEVEL_OUTTAKE,
            ),
            Objective(
                objective_id="fast-answers",
                metric="median_response_seconds",
                comparison=Objective.COMPARISON_AT_MOST,
                target=4 * 3600,
                level=Objective.LEVEL_OUTCOME,
            ),
        ],
    )
    result.starts_at.FromDatetime(START)
    result.ends_at.FromDatetime(ends_at)
    for objective in result.objectives:
        objective.deadline.FromDatetime(ends_at)
    return result


def _envelope(payload: Message, campaign_id: str, at: datetime, key: str) -> Envelope:
    return make_envelope(
        payload,
        event_id=stable_id(campaign_id, key),
        source_service={
            "Mention": "listener",
            "Publication": "publisher",
            "Interaction": "engager",
        }.get(payload.DESCRIPTOR.name, "evaluator"),
        occurred_at=at,
        campaign_id=campaign_id,
        issue_id="plastics",
    )


def events(campaign_id: str) -> list[Envelope]:
    """The campaign's whole history, about 40 events."""
    out = [_envelope(campaign(campaign_id), campaign_id, START - timedelta(days=2), "campaign")]
    for hour in range(6):  # the baseline: critical
        at = START - timedelta(hours=30 - hour * 4)
        mention = listen_pb2.Mention(
            mention_id=f"base-{hour}",
            author=AUTHORS[hour % 3],
            title="Treaty is a waste",
            sentiment=listen_pb2.Label(value="negative", score=-0.6),
        )
        out.append(_envelope(mention, campaign_id, at, f"base-{hour}"))
    for number, offset in enumerate((2, 30)):
        post = publish_pb2.Publication(
            publication_id=f"pub-{number}",
            post_id=f"post-{number}",
            channel="site-atom",
            title=f"Minister's statement {number + 1}",
        )
        post.published_at.FromDatetime(START + timedelta(hours=offset))
        out.append(_envelope(post, campaign_id, START + timedelta(hours=offset), f"pub-{number}"))
    for hour in range(12):  # after: warmer
        at = START + timedelta(hours=3 + hour * 4)
        label = (
            listen_pb2.Label(value="positive", score=0.5)
            if hour % 4
            else listen_pb2.Label(value="neutral", score=0.0)
        )
        mention = listen_pb2.Mention(
            mention_id=f"after-{hour}", author=AUTHORS[hour % 3], title="Talks", sentiment=label
        )
        out.append(_envelope(mention, campaign_id, at, f"after-{hour}"))
    for number, hours in enumerate((1.0, 2.5, 3.0, 9.0)):
        opened = engage_pb2.Interaction(
            interaction_id=f"open-{number}",
            conversation_id=f"c-{number}",
            kind=engage_pb2.Interaction.KIND_OPENED,
            is_question=True,
        )
        at = START + timedelta(hours=5 + number * 6)
        out.append(_envelope(opened, campaign_id, at, f"open-{number}"))
        reply = engage_pb2.Interaction(
            interaction_id=f"reply-{number}",
            conversation_id=f"c-{number}",
            kind=engage_pb2.Interaction.KIND_REPLIED,
            response_seconds=hours * 3600,
            actor="officer",
        )
        out.append(_envelope(reply, campaign_id, at + timedelta(hours=hours), f"reply-{number}"))
    for number, (role, author, organisation, rating, text) in enumerate(
        (
            (Feedback.FROM_ROLE_PARTNER, "Ana Ruiz", "Ocean Alliance", 5, "Clear, <useful> text."),
            (Feedback.FROM_ROLE_AUDIENCE, "", "", 2, "Too slow to answer my question."),
            (Feedback.FROM_ROLE_COLLEAGUE, "Desk officer", "", 3, "Translate earlier."),
        )
    ):
        feedback = Feedback(
            feedback_id=f"fb-{number}",
            from_role=role,
            author=author,
            organisation=organisation,
            rating=rating,
            text=text,
            about=campaign_id,
            about_kind=Feedback.ABOUT_KIND_CAMPAIGN,
        )
        out.append(_envelope(feedback, campaign_id, END - timedelta(hours=2), f"fb-{number}"))
    return out


def index_events(index: EventIndex, envelopes: list[Envelope]) -> None:
    """Indexes through the evaluator's document path and makes the documents searchable."""
    documents = [document_for(index.prefix, e, "seed", 0, n) for n, e in enumerate(envelopes)]
    assert index.bulk(documents) == {}
    index.client.indices.refresh(index=f"{index.prefix}-*")


class IndexingProducer(RecordingProducer):
    """Stands in for Kafka plus the indexing consumer: checks and records each event as
    the recording producer does, then indexes it the way the indexer would."""

    def __init__(self, index: EventIndex) -> None:
        super().__init__("evaluator")
        self.index = index

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        super().send_and_wait(events)
        index_events(self.index, [envelope for _topic, _key, envelope in events])

    def as_producer(self) -> EventProducer:
        return cast(EventProducer, self)


@contextmanager
def serving(index: EventIndex, users: UsersFile) -> Iterator[pb_grpc.EvaluatorServiceStub]:
    """The evaluator's API over ``index`` on a local server the shared runtime builds (its
    interceptor maps every error), called as ``campaign-owner``; events it writes are
    indexed at once."""
    api = EvaluatorApi(index, IndexingProducer(index).as_producer())
    server, _, port = build_server(
        0,
        [lambda server: pb_grpc.add_EvaluatorServiceServicer_to_server(api, server)],
        [POLICY.service],
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(users.path), [POLICY]),
    )
    server.start()
    channel = with_token(grpc.insecure_channel(f"127.0.0.1:{port}"), users.token("campaign-owner"))
    try:
        yield pb_grpc.EvaluatorServiceStub(channel)
    finally:
        channel.close()
        server.stop(None).wait()
