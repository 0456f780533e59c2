"""Analysts' labels of mentions (no I/O): checking a ``LabelMentionRequest`` and building the
``MentionLabel`` event that records it.

A label judges one mention of one issue: relevant or not, its stance, its sentiment
corrected; at least one of the three. The latest label of a mention is the one that counts
(the labels topic is compacted on ``mention_id``), so a relabel replaces the earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.calls import InvalidArgument
from legation_core.codec import Envelope, make_envelope
from legation_core.ids import stable_id

RELEVANCE_VALUES = ("relevant", "irrelevant")
STANCE_VALUES = ("favour", "against", "neutral")
SENTIMENT_VALUES = ("positive", "negative", "neutral")
MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 10_000
MAX_LANGUAGE_CHARS = 35


class LabelError(InvalidArgument):
    """A label request that cannot be recorded; the message starts with the field's name."""


def _one_of(name: str, value: str, allowed: Sequence[str]) -> str:
    value = value.strip().lower()
    if value and value not in allowed:
        raise LabelError(f"{name} must be one of {', '.join(allowed)} or empty (got {value!r})")
    return value


def _id(name: str, value: str) -> str:
    if not value.strip():
        raise LabelError(f"{name} is required")
    if len(value) > MAX_ID_CHARS:
        raise LabelError(f"{name} must be at most {MAX_ID_CHARS} characters (got {len(value)})")
    if any(c.isspace() for c in value):
        raise LabelError(f"{name} may not contain whitespace")
    return value


def check_request(request: pb.LabelMentionRequest) -> pb.LabelMentionRequest:
    """The request with its values normalised (lower case, trimmed); raises
    :class:`LabelError` naming the first field over its limit or with a wrong value."""
    issue_id = _id("issue_id", request.issue_id)
    mention_id = _id("mention_id", request.mention_id)
    relevance = _one_of("relevance", request.relevance, RELEVANCE_VALUES)
    stance = _one_of("stance", request.stance, STANCE_VALUES)
    sentiment = _one_of("sentiment", request.sentiment, SENTIMENT_VALUES)
    if not (relevance or stance or sentiment):
        raise LabelError("relevance, stance or sentiment: at least one is required")
    if len(request.text) > MAX_TEXT_CHARS:
        raise LabelError(
            f"text must be at most {MAX_TEXT_CHARS} characters (got {len(request.text)})"
        )
    if len(request.language) > MAX_LANGUAGE_CHARS:
        raise LabelError(
            f"language must be at most {MAX_LANGUAGE_CHARS} characters "
            f"(got {len(request.language)})"
        )
    return pb.LabelMentionRequest(
        issue_id=issue_id,
        mention_id=mention_id,
        relevance=relevance,
        stance=stance,
        sentiment=sentiment,
        text=request.text.strip(),
        language=request.language.strip(),
    )


def mention_label(
    request: pb.LabelMentionRequest,
    text: str,
    language: str,
    matched_keywords: Sequence[str],
    labelled_by: str,
    now: datetime,
    model_labels: Sequence[listen_pb2.Label] = (),
) -> listen_pb2.MentionLabel:
    """The label event's payload for a checked ``request`` about a mention with ``text``;
    ``model_labels``: the mention's relevance, stance and sentiment as the models gave them
    (when the listener still holds the mention)."""
    label = listen_pb2.MentionLabel(
        mention_id=request.mention_id,
        issue_id=request.issue_id,
        relevance=request.relevance,
        stance=request.stance,
        sentiment=request.sentiment,
        text=text,
        language=language,
        matched_keywords=list(matched_keywords),
        labelled_by=labelled_by,
    )
    label.labelled_at.FromDatetime(now)
    for field, model_label in zip(
        ("model_relevance", "model_stance", "model_sentiment"), model_labels, strict=False
    ):
        getattr(label, field).CopyFrom(model_label)
    return label


def label_envelope(label: listen_pb2.MentionLabel, campaign_id: str, now: datetime) -> Envelope:
    """The labels-topic event of ``label``: its id derives from its content, so a retried
    request writes the same event."""
    return make_envelope(
        label,
        event_id=stable_id("mention-label", label.SerializeToString(deterministic=True).hex()),
        source_service="listener",
        occurred_at=now,
        campaign_id=campaign_id,
        issue_id=label.issue_id,
        observed_at=now,
    )
