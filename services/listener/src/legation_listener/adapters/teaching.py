"""Analysts teach the models: the labels (``legation.listen.labels.v1``), the background
training of each issue's relevance and stance models, and the re-scoring of stored mentions.

- :class:`LabelBook` holds the latest label of every mention (the topic is compacted on
  ``mention_id``), rebuilt from the topic at start-up; a new label is written to Kafka
  (acknowledged) before memory changes, and marks its issue for training.
- :class:`ModelTrainer` trains the marked issues off the request path, in the periodic job
  ``train-models``: one issue at a time, at most
  :data:`~legation_listener.models.issue.MAX_LABELS` labels each, deterministic; outcomes go
  to the shared :class:`~legation_listener.models.issue.IssueModels` that enrichment reads.
- :class:`Rescorer` replays the mentions topic in a background thread and sends every
  mention whose labels changed again, with the same event id (see
  :mod:`legation_listener.domain.rescore`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from legation.events.v1 import listen_pb2
from legation_core.codec import Envelope, EventCodec, payload_of
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer, read_topic
from legation_core.state import EventSink, acknowledged
from legation_core.topic_names import LISTEN_LABELS_V1, LISTEN_MENTIONS_V1
from legation_listener.adapters.state import SERVICE, ListenerState
from legation_listener.domain.enrichment import stance_model
from legation_listener.domain.labels import label_envelope
from legation_listener.domain.rescore import rescore
from legation_listener.models.issue import (
    FAILED,
    STANCE,
    TASKS,
    TRAINING,
    Example,
    IssueModels,
    TrainedModel,
    train_issue_model,
)
from legation_listener.models.linear import LinearTextModel

log = logging.getLogger(__name__)

# Mentions sent per acknowledged batch while re-scoring.
RESCORE_BATCH = 500


def examples(labels: Sequence[listen_pb2.MentionLabel], task: str) -> list[Example]:
    """The labels judging ``task``, oldest first, as training examples (the stance ones
    with the terms that named the issue, masked like the pooled model's targets)."""
    chosen = sorted(
        (label for label in labels if getattr(label, task)),
        key=lambda label: (label.labelled_at.ToDatetime(), label.mention_id),
    )
    return [
        Example(label.mention_id, label.text, getattr(label, task), tuple(label.matched_keywords))
        for label in chosen
    ]


class LabelBook:
    """The latest label of every mention, per issue; safe to share between threads."""

    def __init__(self, producer: EventSink | None = None) -> None:
        self.producer = producer
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._labels: dict[str, dict[str, listen_pb2.MentionLabel]] = {}
        self._listeners: list[Callable[[listen_pb2.MentionLabel], None]] = []

    def on_change(self, listener: Callable[[listen_pb2.MentionLabel], None]) -> None:
        """Calls ``listener(label)`` whenever a label changes its issue's labels."""
        self._listeners.append(listener)

    def apply(self, label: listen_pb2.MentionLabel) -> None:
        """Takes ``label`` as its mention's current label (no write)."""
        with self._lock:
            self._labels.setdefault(label.issue_id, {})[label.mention_id] = label
        for listener in self._listeners:
            listener(label)

    def rebuild(
        self,
        settings: CoreSettings,
        codec: EventCodec,
        dead_letters: EventProducer,
        timeout: float = 60.0,
    ) -> int:
        """Reads the labels topic to its end; returns how many labels it holds. Records that
        do not decode go to the topic's DLQ through ``dead_letters``."""
        count = 0
        for envelope in read_topic(
            settings, SERVICE, codec, LISTEN_LABELS_V1, timeout, dead_letters
        ):
            payload = payload_of(envelope)
            if isinstance(payload, listen_pb2.MentionLabel):
                self.apply(payload)
                count += 1
        log.info("labels rebuilt", extra={"labels": count})
        return count

    def record(self, label: listen_pb2.MentionLabel, campaign_id: str, now: datetime) -> Envelope:
        """Writes ``label`` to Kafka (waits for the acknowledgement, raises otherwise), then
        takes it; returns the event written."""
        if self.producer is None:
            raise RuntimeError("this label book cannot write")
        envelope = label_envelope(label, campaign_id, now)
        with self._write_lock:
            acknowledged(self.producer, [(LISTEN_LABELS_V1, label.mention_id, envelope)])
            self.apply(label)
        return envelope

    def labels(self, issue_id: str) -> list[listen_pb2.MentionLabel]:
        """The current labels of ``issue_id``."""
        with self._lock:
            return list(self._labels.get(issue_id, {}).values())

    def issue_ids(self) -> list[str]:
        """Issues with at least one label, sorted."""
        with self._lock:
            return sorted(self._labels)


class ModelTrainer:
    """Trains the issues whose labels changed, one at a time, when :meth:`train_pending`
    runs (the periodic job); safe to share between threads."""

    def __init__(
        self,
        book: LabelBook,
        models: IssueModels,
        base: Callable[[], LinearTextModel | None] = stance_model,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.book = book
        self.models = models
        self.base = base
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        # Issues whose labels changed since their training (if any) started: a label that
        # arrives while its issue trains keeps the issue queued for another training.
        self._changed: set[str] = set()
        self._run_lock = threading.Lock()
        book.on_change(self._labelled)

    def _labelled(self, label: listen_pb2.MentionLabel) -> None:
        """A label changed: its issue's tasks without a model yet wait for training (their
        labels are ``unknown`` naming the issue's model until then, not the pooled model's:
        after a restart too), and the issue is queued."""
        for task in TASKS:
            if getattr(label, task):
                self.models.put_if_absent(
                    TrainedModel(label.issue_id, task, TRAINING, "labels received, training queued")
                )
        self.mark(label.issue_id)

    def mark(self, issue_id: str) -> None:
        """Queues ``issue_id`` for training."""
        with self._lock:
            self._pending.add(issue_id)
            self._changed.add(issue_id)

    def pending(self) -> set[str]:
        """Issues waiting for training (or being trained)."""
        with self._lock:
            return set(self._pending)

    def run_pending(self) -> None:
        """The periodic job: :meth:`train_pending`."""
        self.train_pending()

    def train_pending(self) -> list[TrainedModel]:
        """Trains every issue queued when it starts (one at a time, by id); returns the
        outcomes. An issue whose labels change while it trains stays queued, for the next
        run (so it never misses a label, and a steady stream of labels on one issue cannot
        hold back the others)."""
        outcomes: list[TrainedModel] = []
        with self._run_lock:
            with self._lock:
                queued = sorted(self._pending)
            for issue_id in queued:
                with self._lock:
                    self._changed.discard(issue_id)
                outcomes.extend(self.train(issue_id))
                with self._lock:
                    if issue_id not in self._changed:
                        self._pending.discard(issue_id)
        return outcomes

    def train(self, issue_id: str) -> list[TrainedModel]:
        """Trains ``issue_id``'s models of every task it has labels for."""
        labels = self.book.labels(issue_id)
        outcomes = []
        for task in TASKS:
            chosen = examples(labels, task)
            current = self.models.get(issue_id, task)
            if not chosen:
                if current is not None and current.state == TRAINING:
                    self.models.drop(issue_id, task)  # its only labels were relabelled
                continue
            base = self.base() if task == STANCE else None
            try:
                trained = train_issue_model(
                    task, issue_id, chosen, base, self.clock(), save=_as_served
                )
            except Exception as error:
                log.exception("training failed", extra={"issue_id": issue_id, "task": task})
                trained = TrainedModel(
                    issue_id,
                    task,
                    FAILED,
                    f"training failed: {error}",
                    labels=len(chosen),
                    trained_at=self.clock(),
                )
                if current is not None and current.served:
                    continue  # keep serving the model that passed
            self.models.put(trained)
            log.info(
                "issue model trained",
                extra={
                    "issue_id": issue_id,
                    "task": task,
                    "state": trained.state,
                    "version": trained.version,
                    "reason": trained.reason,
                },
            )
            outcomes.append(trained)
        return outcomes


def _as_served(model: LinearTextModel) -> LinearTextModel:
    """The artefact as served: saved (float16 weights) and read back."""
    return LinearTextModel.load(model.to_bytes())


@dataclass
class RescoreRun:
    """One re-score's progress (what ``RescoreStatus`` reports)."""

    issue_id: str
    started_at: datetime
    state: str = "running"
    finished_at: datetime | None = None
    read: int = 0
    rescored: int = 0
    skipped: int = 0
    changed: int = 0
    error: str = ""
    models: list[str] = field(default_factory=list)


class Rescorer:
    """Re-scores the stored mentions in a background thread, one run at a time."""

    def __init__(
        self,
        settings: CoreSettings,
        codec: EventCodec,
        state: ListenerState,
        producer: EventSink,
        models: IssueModels,
        on_mentions: Callable[[str, list[listen_pb2.Mention]], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        read_timeout: float = 600.0,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.state = state
        self.producer = producer
        self.models = models
        self.on_mentions = on_mentions
        self.clock = clock
        self.read_timeout = read_timeout
        self._lock = threading.Lock()
        self.last: RescoreRun | None = None
        self._thread: threading.Thread | None = None

    def start(self, issue_id: str = "", days: int = 0) -> RescoreRun:
        """Starts a re-score (of ``issue_id``'s mentions, or every tracked issue's; of the
        last ``days``, or all the topic holds); a run in progress is answered instead."""
        with self._lock:
            if self.last is not None and self.last.state == "running":
                return self.last
            run = RescoreRun(issue_id=issue_id, started_at=self.clock())
            self.last = run
            self._thread = threading.Thread(
                target=self.run, args=(run, days), name="rescore", daemon=True
            )
            self._thread.start()
            return run

    def wait(self, timeout: float | None = None) -> RescoreRun | None:
        """Waits for the running re-score (tests, the CLI); returns the last run."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.last

    def run(self, run: RescoreRun, days: int = 0) -> None:
        """Reads the mentions topic to its end, re-scores the latest record of every
        mention (earlier ones, superseded by an earlier re-score, are skipped) and sends
        the changed mentions in acknowledged batches; records the outcome in ``run``."""
        since = run.started_at - timedelta(days=days) if days else None
        used: set[str] = set()
        batch: list[Envelope] = []
        try:
            copies = self._copies()
            seen: dict[str, int] = {}
            for envelope in read_topic(
                self.settings, SERVICE, self.codec, LISTEN_MENTIONS_V1, self.read_timeout
            ):
                mention = payload_of(envelope)
                if not isinstance(mention, listen_pb2.Mention):
                    continue
                run.read += 1
                seen[envelope.event_id] = seen.get(envelope.event_id, 0) + 1
                issue = self.state.issue(envelope.issue_id)
                published = mention.published_at.ToDatetime(tzinfo=UTC)
                if (
                    seen[envelope.event_id] < copies.get(envelope.event_id, 0)
                    or issue is None
                    or (run.issue_id and envelope.issue_id != run.issue_id)
                    or (since is not None and published < since)
                ):
                    run.skipped += 1
                    continue
                if rescore(mention, issue, self.clock(), self.models):
                    run.changed += 1
                    envelope.observed_at.FromDatetime(self.clock())
                    batch.append(envelope)
                for name in ("sentiment", "stance", "relevance", "language_detection"):
                    label = getattr(mention, name)
                    if label.model and label.model != "none":
                        used.add(f"{label.model} {label.model_version}".strip())
                if len(batch) >= RESCORE_BATCH:
                    self._send(batch, run)
                    batch = []
            self._send(batch, run)
            run.state = "done"
        except Exception as error:
            log.exception("re-score failed")
            run.state, run.error = "failed", str(error)
        run.models = sorted(used)
        run.finished_at = self.clock()
        log.info(
            "re-score finished",
            extra={
                "state": run.state,
                "read": run.read,
                "rescored": run.rescored,
                "error": run.error,
            },
        )

    def _copies(self) -> dict[str, int]:
        """How many records of each mention (event id) the topic holds: the re-scored ones
        sit next to the original with the same key, in order, and only the latest counts
        (the one the index holds). Counted in a first read, as the records themselves
        would not fit in memory."""
        copies: dict[str, int] = {}
        for envelope in read_topic(
            self.settings, SERVICE, self.codec, LISTEN_MENTIONS_V1, self.read_timeout
        ):
            if envelope.WhichOneof("payload") == "mention":
                copies[envelope.event_id] = copies.get(envelope.event_id, 0) + 1
        return copies

    def _send(self, batch: list[Envelope], run: RescoreRun) -> None:
        if not batch:
            return
        self.producer.send_and_wait([(LISTEN_MENTIONS_V1, e.mention.mention_id, e) for e in batch])
        run.rescored += len(batch)
        if self.on_mentions is not None:
            by_issue: dict[str, list[listen_pb2.Mention]] = {}
            for envelope in batch:
                by_issue.setdefault(envelope.issue_id, []).append(envelope.mention)
            for issue_id, mentions in by_issue.items():
                self.on_mentions(issue_id, mentions)
