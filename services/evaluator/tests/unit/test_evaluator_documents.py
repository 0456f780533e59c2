"""One OpenSearch document per event, and the template that maps every event index."""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatch

import pytest
from google.protobuf.message import Message

from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation_core.codec import Envelope, make_envelope
from legation_evaluator.domain.documents import (
    campaign_ids,
    document_for,
    index_name,
    index_template,
)

PREFIX = "legation-events-v1"
WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def envelope_of(payload: Message, campaign_id: str = "camp-1", event_id: str = "ev-1") -> Envelope:
    return make_envelope(
        payload,
        event_id=event_id,
        source_service="listener",
        occurred_at=WHEN,
        campaign_id=campaign_id,
        issue_id="issue-1",
        trace_id="trace-1",
    )


# Types whose topic deletes old records go to the month the event occurred in (a replay
# lands in the same index); types kept forever have one index.
PAYLOADS: list[tuple[Message, str]] = [
    (listen_pb2.Mention(mention_id="m-1"), "mention-2025.03"),
    (listen_pb2.TrackedIssue(issue_id="i-1"), "tracked_issue"),
    (publish_pb2.Publication(publication_id="p-1"), "publication-2025.03"),
    (engage_pb2.Interaction(interaction_id="x-1"), "interaction-2025.03"),
    (evaluate_pb2.Campaign(campaign_id="camp-1"), "campaign"),
    (evaluate_pb2.Feedback(feedback_id="f-1"), "feedback"),
    (evaluate_pb2.KpiSnapshot(snapshot_id="s-1"), "kpi_snapshot-2025.03"),
    (publish_pb2.LinkClick(click_id="c-1"), "link_click-2025.03"),
    (
        listen_pb2.CommunityReport(report_id="r-1", campaign_ids=["camp-2"]),
        "community_report-2025.03",
    ),
    (listen_pb2.ThemeReport(report_id="r-2"), "theme_report-2025.03"),
]


@pytest.mark.parametrize(("payload", "suffix"), PAYLOADS)
def test_one_index_per_payload_type(payload: Message, suffix: str) -> None:
    document = document_for(PREFIX, envelope_of(payload), "topic", 0, 0)
    assert document.index == f"{PREFIX}-{suffix}"
    assert index_name(PREFIX, envelope_of(payload)) == document.index


def test_the_document_id_is_the_event_id() -> None:
    mention = listen_pb2.Mention(mention_id="m-1")
    first = document_for(PREFIX, envelope_of(mention, event_id="ev-42"), "t", 0, 1)
    again = document_for(PREFIX, envelope_of(mention, event_id="ev-42"), "t", 3, 99)
    other = document_for(PREFIX, envelope_of(mention, event_id="ev-43"), "t", 0, 1)
    assert first.doc_id == again.doc_id == "ev-42"
    assert other.doc_id == "ev-43"
    assert first.body["event_id"] == "ev-42"


def test_campaign_ids_are_the_union_without_duplicates() -> None:
    mention = listen_pb2.Mention(mention_id="m-1", campaign_ids=["camp-2", "camp-1", "camp-2"])
    document = document_for(PREFIX, envelope_of(mention, campaign_id="camp-1"), "t", 0, 0)
    assert document.body["campaign_ids"] == ["camp-1", "camp-2"]
    # The payload's own list is kept as it was.
    assert document.body["mention"]["campaign_ids"] == ["camp-2", "camp-1", "camp-2"]


def test_campaign_ids_without_an_envelope_campaign() -> None:
    mention = listen_pb2.Mention(mention_id="m-1", campaign_ids=["camp-3", "camp-4"])
    assert campaign_ids(envelope_of(mention, campaign_id="")) == ["camp-3", "camp-4"]
    assert campaign_ids(envelope_of(listen_pb2.Mention(), campaign_id="")) == []
    feedback = evaluate_pb2.Feedback(feedback_id="f-1")
    assert campaign_ids(envelope_of(feedback, campaign_id="camp-9")) == ["camp-9"]


def test_zero_valued_fields_are_in_the_body() -> None:
    mention = listen_pb2.Mention(
        mention_id="m-1",
        text="The embassy opens at nine.",
        sentiment=listen_pb2.Label(value="neutral", score=0.0, model="vader"),
    )
    body = document_for(PREFIX, envelope_of(mention), "t", 0, 0).body
    assert body["mention"]["sentiment"]["score"] == 0.0
    assert body["mention"]["sentiment"]["value"] == "neutral"
    assert "reach" in body["mention"]
    assert body["mention"]["matched_keywords"] == []
    interaction = engage_pb2.Interaction(interaction_id="x-1", response_seconds=0.0)
    body = document_for(PREFIX, envelope_of(interaction), "t", 0, 0).body
    assert body["interaction"]["response_seconds"] == 0.0
    assert body["interaction"]["is_question"] is False


def test_the_body_is_the_envelope_with_proto_field_names() -> None:
    body = document_for(PREFIX, envelope_of(listen_pb2.Mention(mention_id="m-1")), "t", 0, 0).body
    assert body["event_type"] == "legation.events.v1.Mention"
    assert body["source_service"] == "listener"
    assert body["campaign_id"] == "camp-1"
    assert body["issue_id"] == "issue-1"
    assert body["trace_id"] == "trace-1"
    assert body["occurred_at"] == "2025-03-01T12:00:00Z"
    assert body["mention"]["mention_id"] == "m-1"


def test_the_kafka_position_is_recorded() -> None:
    document = document_for(
        PREFIX, envelope_of(listen_pb2.Mention()), "legation.listen.mentions.v1", 4, 1234
    )
    assert document.body["kafka"] == {
        "topic": "legation.listen.mentions.v1",
        "partition": 4,
        "offset": 1234,
    }


@pytest.mark.parametrize("prefix", [PREFIX, "test-run-7"])
def test_the_template_covers_every_event_index(prefix: str) -> None:
    template = index_template(prefix)
    assert template["index_patterns"] == [f"{prefix}-*"]
    for payload, _suffix in PAYLOADS:
        name = index_name(prefix, envelope_of(payload))
        assert any(fnmatch(name, pattern) for pattern in template["index_patterns"])
    assert not fnmatch("other-prefix-mention", template["index_patterns"][0])


def test_the_template_types_what_scorecards_aggregate_on() -> None:
    properties = index_template(PREFIX)["template"]["mappings"]["properties"]
    assert properties["campaign_ids"] == {"type": "keyword"}
    assert properties["event_type"] == {"type": "keyword"}
    assert properties["source_service"] == {"type": "keyword"}
    assert properties["occurred_at"] == {"type": "date"}
    assert properties["kafka"]["properties"]["offset"] == {"type": "long"}
    mention = properties["mention"]["properties"]
    assert mention["sentiment"]["properties"]["score"] == {"type": "float"}
    assert mention["sentiment"]["properties"]["value"] == {"type": "keyword"}
    interaction = properties["interaction"]["properties"]
    assert interaction["kind"] == {"type": "keyword"}
    assert interaction["response_seconds"] == {"type": "float"}
