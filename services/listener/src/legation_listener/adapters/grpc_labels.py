"""The listener's gRPC API with analysts' labels: :class:`ListenerServicer`'s methods plus
``LabelMention``, ``ListModels`` and ``RescoreMentions``.

Every request field is checked against its limit before any work (the message names the
field). A label is answered once Kafka acknowledged it; training and re-scoring run in the
background (:mod:`legation_listener.adapters.teaching`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.auth import Caller, current_caller
from legation_core.calls import InvalidArgument, NotFound
from legation_listener.adapters.grpc_insights import ListenerServicer
from legation_listener.adapters.insights import Insights
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.preview_reads import PreviewReads
from legation_listener.adapters.state import ListenerState
from legation_listener.adapters.teaching import LabelBook, ModelTrainer, Rescorer, RescoreRun
from legation_listener.domain.enrichment import issue_terms
from legation_listener.domain.labels import MAX_ID_CHARS, check_request, mention_label
from legation_listener.models.issue import TASK_CLASSES, TRAINING, TrainedModel

log = logging.getLogger(__name__)

MAX_RESCORE_DAYS = 3650


def model_status(trained: TrainedModel, pending: bool) -> pb.ModelStatus:
    """The ``ModelStatus`` of an issue's latest training (``pending``: labels changed since)."""
    status = pb.ModelStatus(
        issue_id=trained.issue_id,
        task=trained.task,
        state=TRAINING if pending else trained.state,
        reason=trained.reason
        + (
            "; labels changed since, training queued"
            if pending and trained.state != TRAINING
            else ""
        ),
        model=trained.name,
        model_version=trained.version,
        labels=trained.labels,
        train_labels=trained.train_labels,
        validation_labels=trained.validation_labels,
        macro_f1=trained.macro_f1,
        majority_macro_f1=trained.majority_macro_f1,
        majority_class=trained.majority_class,
        classes=list(TASK_CLASSES[trained.task]) if trained.served else [],
    )
    if trained.trained_at is not None:
        status.trained_at.FromDatetime(trained.trained_at)
    return status


def rescore_status(run: RescoreRun) -> pb.RescoreStatus:
    """The ``RescoreStatus`` of a run."""
    status = pb.RescoreStatus(
        state=run.state,
        issue_id=run.issue_id,
        read=run.read,
        rescored=run.rescored,
        skipped=run.skipped,
        changed=run.changed,
        error=run.error,
        models=run.models,
    )
    status.started_at.FromDatetime(run.started_at)
    if run.finished_at is not None:
        status.finished_at.FromDatetime(run.finished_at)
    return status


class TeachingServicer(ListenerServicer):
    """The whole ``legation.listener.v1.ListenerService`` with labels and re-scoring."""

    def __init__(
        self,
        state: ListenerState,
        poller: Poller,
        insights: Insights,
        *,
        book: LabelBook,
        trainer: ModelTrainer,
        rescorer: Rescorer,
        previews: PreviewReads | None = None,
        local_feeds: bool = False,
        caller: Callable[[], Caller] = current_caller,
    ) -> None:
        super().__init__(
            state, poller, insights, previews=previews, local_feeds=local_feeds,
            caller=caller,
        )  # fmt: skip
        self.book = book
        self.trainer = trainer
        self.rescorer = rescorer

    def LabelMention(
        self, request: pb.LabelMentionRequest, context: grpc.ServicerContext
    ) -> listen_pb2.MentionLabel:
        """Records an analyst's label of a mention (a relabel replaces it)."""
        checked = check_request(request)
        issue = self._existing(checked.issue_id)
        held = {m.mention_id: m for m in self.insights.window.mentions(issue.issue_id)}
        observed = held.get(checked.mention_id)
        if observed is not None:
            text, language = observed.full_text, observed.language
            matched: list[str] = list(observed.matched_keywords)
            model_labels = [
                listen_pb2.Label(),
                listen_pb2.Label(value=observed.stance),
                listen_pb2.Label(value=observed.sentiment),
            ]
        elif checked.text:
            text, language, matched, model_labels = checked.text, checked.language, [], []
        else:
            raise NotFound(
                f"mention_id {checked.mention_id!r} is not among the issue's recent mentions: "
                "send its text"
            )
        label = mention_label(
            checked,
            text,
            language,
            issue_terms(issue, matched),
            self.caller().user,
            datetime.now(UTC),
            model_labels,
        )
        campaign = issue.campaign_ids[0] if issue.campaign_ids else ""
        self.book.record(label, campaign, datetime.now(UTC))
        return label

    def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.ServicerContext
    ) -> pb.ListModelsResponse:
        """The per-issue models: served or not, and why."""
        if len(request.issue_id) > MAX_ID_CHARS:
            raise InvalidArgument(
                f"issue_id must be at most {MAX_ID_CHARS} characters (got {len(request.issue_id)})"
            )
        pending = self.trainer.pending()
        response = pb.ListModelsResponse()
        known = set()
        for trained in self.trainer.models.all(request.issue_id):
            known.add(trained.issue_id)
            response.models.append(model_status(trained, trained.issue_id in pending))
        for issue_id in sorted(pending - known):
            if request.issue_id in ("", issue_id):
                response.models.append(
                    pb.ModelStatus(
                        issue_id=issue_id, state=TRAINING, reason="labels received, training queued"
                    )
                )
        if self.rescorer.last is not None:
            response.rescore.CopyFrom(rescore_status(self.rescorer.last))
        return response

    def RescoreMentions(
        self, request: pb.RescoreMentionsRequest, context: grpc.ServicerContext
    ) -> pb.RescoreStatus:
        """Starts re-scoring the stored mentions (or answers the run in progress)."""
        if len(request.issue_id) > MAX_ID_CHARS:
            raise InvalidArgument(
                f"issue_id must be at most {MAX_ID_CHARS} characters (got {len(request.issue_id)})"
            )
        if request.days > MAX_RESCORE_DAYS:
            raise InvalidArgument(f"days must be at most {MAX_RESCORE_DAYS} (got {request.days})")
        if request.issue_id:
            self._existing(request.issue_id)
        return rescore_status(self.rescorer.start(request.issue_id, request.days))
