"""The engager API's questions campaign calls, mixed into
:class:`~legation_engager.adapters.grpc_api.EngagerApi` (kept apart so each part of the
API stays small); :meth:`QuestionsApi.submit` also serves the public questions form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import grpc

from legation.engager.v1 import engager_service_pb2 as pb
from legation.events.v1 import engage_pb2
from legation_channels.base import ChannelLimits
from legation_core.auth import current_caller
from legation_core.calls import require
from legation_core.ids import stable_id
from legation_core.state import changing, existing
from legation_engager.adapters.grpc_common import MAX_PAGE
from legation_engager.adapters.store import EngagerState
from legation_engager.domain import questions

_QUESTIONS = ("questions campaign", "questions_id")


class QuestionsApi:
    """Questions campaigns: create, read, list, submit, moderate, answer and close, over
    the questions' table."""

    state: EngagerState
    channel_limits: Mapping[str, ChannelLimits]
    clock: Callable[[], datetime]
    form_path: Callable[[str], str]

    def _questions_response(
        self, campaign: engage_pb2.QuestionsCampaign
    ) -> pb.QuestionsCampaignResponse:
        return pb.QuestionsCampaignResponse(
            questions_campaign=campaign, form_path=self.form_path(campaign.questions_id)
        )

    def _change_questions(
        self,
        questions_id: str,
        change: Callable[[engage_pb2.QuestionsCampaign], engage_pb2.QuestionsCampaign | None],
    ) -> pb.QuestionsCampaignResponse:
        with changing(self.state.questions, *_QUESTIONS, questions_id) as (transaction, current):
            result = change(current) or current
            if result is not current:
                transaction.put(result)
        return self._questions_response(result)

    def CreateQuestionsCampaign(
        self, request: pb.CreateQuestionsCampaignRequest, context: grpc.ServicerContext
    ) -> pb.QuestionsCampaignResponse:
        user, now = current_caller().user, self.clock()
        campaign = questions.create(
            request.request_id,
            request.campaign_id,
            request.issue_id,
            request.title,
            request.hashtag,
            request.answer_channel,
            set(self.channel_limits),
            user,
            now,
        )
        with self.state.questions.transaction() as transaction:
            existing_campaign = transaction.get(campaign.questions_id)
            if existing_campaign is not None:
                return self._questions_response(existing_campaign)
            transaction.put(campaign)
        return self._questions_response(campaign)

    def GetQuestionsCampaign(
        self, request: pb.GetQuestionsCampaignRequest, context: grpc.ServicerContext
    ) -> pb.QuestionsCampaignResponse:
        campaign = existing(self.state.questions, *_QUESTIONS, request.questions_id)
        return self._questions_response(campaign)

    def SubmitQuestion(
        self, request: pb.SubmitQuestionRequest, context: grpc.ServicerContext
    ) -> pb.QuestionsCampaignResponse:
        require(request_id=request.request_id)
        return self.submit(request)

    def submit(
        self, request: pb.SubmitQuestionRequest, source: str = "api"
    ) -> pb.QuestionsCampaignResponse:
        """Adds a question (the gRPC call and the public form share this)."""
        question_id = stable_id("question", request.questions_id, request.request_id)
        now = self.clock()
        return self._change_questions(
            request.questions_id,
            lambda current: questions.submit(
                current,
                question_id,
                source,
                request.author,
                request.text,
                request.language,
                now,
            ),
        )

    def ModerateQuestion(
        self, request: pb.ModerateQuestionRequest, context: grpc.ServicerContext
    ) -> pb.QuestionsCampaignResponse:
        require(question_id=request.question_id)
        user, now = current_caller().user, self.clock()
        return self._change_questions(
            request.questions_id,
            lambda current: questions.moderate(
                current, request.question_id, request.approve, request.note, user, now
            ),
        )

    def AnswerQuestion(
        self, request: pb.AnswerQuestionRequest, context: grpc.ServicerContext
    ) -> pb.QuestionsCampaignResponse:
        require(question_id=request.question_id)
        user, now = current_caller().user, self.clock()
        return self._change_questions(
            request.questions_id,
            lambda current: questions.answer(current, request.question_id, request.text, user, now),
        )

    def CloseQuestionsCampaign(
        self, request: pb.CloseQuestionsCampaignRequest, context: grpc.ServicerContext
    ) -> pb.QuestionsCampaignResponse:
        now = self.clock()
        return self._change_questions(
            request.questions_id, lambda current: questions.close(current, now)
        )

    def ListQuestionsCampaigns(
        self, request: pb.ListQuestionsCampaignsRequest, context: grpc.ServicerContext
    ) -> pb.ListQuestionsCampaignsResponse:
        found, next_token = questions.list_campaigns(
            self.state.questions.all(),
            request.campaign_id,
            request.issue_id,
            request.open_only,
            request.page_size,
            request.page_token,
            MAX_PAGE,
        )
        return pb.ListQuestionsCampaignsResponse(
            questions_campaigns=[
                pb.QuestionsCampaignSummary(
                    questions_campaign=questions.without_questions(campaign),
                    form_path=self.form_path(campaign.questions_id),
                    **questions.summary_counts(campaign),
                )
                for campaign in found
            ],
            next_page_token=next_token,
        )
