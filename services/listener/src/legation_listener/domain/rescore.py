"""Re-scoring a stored mention with the models served now (no I/O).

A re-scored mention keeps its id, text, source, time, duplicate decision and every field the
models do not make; its language detection, sentiment, stance and relevance are labelled
again (:func:`~legation_listener.domain.enrichment.label_mention`). Every label whose value,
model or version changed is first appended to ``label_history`` as it was, so what each
model version said stays findable after the replay (in the topic and in the index).
"""

from __future__ import annotations

from datetime import datetime

from legation.events.v1 import listen_pb2
from legation_listener.domain.enrichment import label_mention
from legation_listener.models.issue import IssueModels

LABEL_FIELDS = ("language_detection", "sentiment", "stance", "relevance")
# Most records kept in label_history (the oldest leave first): ten re-scores of four labels.
MAX_HISTORY = 40


def declared_language(mention: listen_pb2.Mention) -> str:
    """The language the source declared, as far as the stored mention tells: its language
    when the detector was overruled ("declared") or the tag is not the detector's own (a
    region the source gave, "en-GB"); empty when the detector decided."""
    detection = mention.language_detection
    if detection.model == "declared" or (mention.language and mention.language != detection.value):
        return mention.language
    return ""


def _same(a: listen_pb2.Label, b: listen_pb2.Label) -> bool:
    return (a.value, a.model, a.model_version) == (b.value, b.model, b.model_version)


def rescore(
    mention: listen_pb2.Mention,
    issue: listen_pb2.TrackedIssue,
    now: datetime,
    models: IssueModels | None = None,
) -> bool:
    """Labels ``mention`` again in place for ``issue``; True when any label changed value,
    model or version (the replaced ones are then in ``label_history``)."""
    before = {name: listen_pb2.Label() for name in LABEL_FIELDS}
    for name in LABEL_FIELDS:
        before[name].CopyFrom(getattr(mention, name))
    label_mention(mention, issue, declared_language(mention), models)
    changed = False
    for name in LABEL_FIELDS:
        old = before[name]
        if _same(old, getattr(mention, name)):
            continue
        changed = True
        if not (old.value or old.model):
            continue  # never set (a mention from before the field existed)
        record = listen_pb2.LabelRecord(
            field=name,
            value=old.value,
            score=old.score,
            model=old.model,
            model_version=old.model_version,
        )
        record.replaced_at.FromDatetime(now)
        mention.label_history.append(record)
    if len(mention.label_history) > MAX_HISTORY:
        del mention.label_history[: len(mention.label_history) - MAX_HISTORY]
    return changed
