"""Questions campaigns: invite questions on an issue (a hashtag, a public form), collect
and moderate them, publish our answers. No I/O.

An answer is a message on the campaign's answer channel, delivered through the same outbox
as replies (its delivery lives in the question's ``answer``); without an answer channel it
is recorded only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from legation.events.v1 import engage_pb2, listen_pb2, publish_pb2
from legation_channels import outbox
from legation_channels.records import from_outbox
from legation_core.calls import InvalidArgument
from legation_core.ids import stable_id

QuestionsCampaign = engage_pb2.QuestionsCampaign
Question = engage_pb2.Question

PENDING = engage_pb2.QUESTION_STATUS_PENDING
APPROVED = engage_pb2.QUESTION_STATUS_APPROVED
REJECTED = engage_pb2.QUESTION_STATUS_REJECTED
ANSWERED = engage_pb2.QUESTION_STATUS_ANSWERED
MAX_QUESTION = 2000
_HASHTAG = re.compile(r"^[a-z0-9_]{2,64}$")


class QuestionsError(InvalidArgument):
    """A request a questions campaign cannot take; the message names the field."""


def questions_id_for(request_id: str) -> str:
    return stable_id("questions", request_id)


def create(
    request_id: str,
    campaign_id: str,
    issue_id: str,
    title: str,
    hashtag: str,
    answer_channel: str,
    channels: set[str],
    user: str,
    now: datetime,
) -> QuestionsCampaign:
    """A new, open questions campaign."""
    problems = []
    if not request_id.strip():
        problems.append("request_id: is required")
    if not issue_id.strip():
        problems.append("issue_id: is required")
    if not title.strip():
        problems.append("title: is required")
    tag = hashtag.lower().lstrip("#")
    if tag and not _HASHTAG.match(tag):
        problems.append(f"hashtag: {hashtag!r} expected letters, digits or _ (2 to 64)")
    if answer_channel and answer_channel not in channels:
        known = ", ".join(sorted(channels)) or "none configured"
        problems.append(f"answer_channel: {answer_channel!r} is not a channel ({known})")
    if problems:
        raise QuestionsError("; ".join(problems))
    campaign = QuestionsCampaign(
        questions_id=questions_id_for(request_id),
        campaign_id=campaign_id,
        issue_id=issue_id,
        title=title,
        hashtag=tag,
        open=True,
        answer_channel=answer_channel,
        version=1,
        created_by=user,
    )
    campaign.updated_at.FromDatetime(now)
    return campaign


def _next(current: QuestionsCampaign, now: datetime) -> QuestionsCampaign:
    campaign = QuestionsCampaign()
    campaign.CopyFrom(current)
    campaign.version += 1
    campaign.updated_at.FromDatetime(now)
    return campaign


def submit(
    current: QuestionsCampaign,
    question_id: str,
    source: str,
    author: str,
    text: str,
    language: str,
    now: datetime,
    mention: listen_pb2.Mention | None = None,
) -> QuestionsCampaign | None:
    """Adds a question, pending moderation; None when it is already there."""
    if not current.open:
        raise QuestionsError("questions_id: this questions campaign is closed")
    problems = []
    if not text.strip():
        problems.append("text: is required")
    if len(text) > MAX_QUESTION:
        problems.append(f"text: is {len(text)} characters; at most {MAX_QUESTION}")
    if len(author) > 200:
        problems.append("author: at most 200 characters")
    if problems:
        raise QuestionsError("; ".join(problems))
    if any(q.question_id == question_id for q in current.questions):
        return None
    campaign = _next(current, now)
    question = Question(
        question_id=question_id,
        source=source,
        author=author.strip() or "anonymous",
        text=text.strip(),
        language=language,
        status=PENDING,
    )
    if mention is not None:
        question.mention_id = mention.mention_id
        question.url = mention.url
    question.asked_at.FromDatetime(now)
    campaign.questions.append(question)
    return campaign


def close(current: QuestionsCampaign, now: datetime) -> QuestionsCampaign | None:
    """Stops taking questions; None when it is already closed."""
    if not current.open:
        return None
    campaign = _next(current, now)
    campaign.open = False
    return campaign


def _question(campaign: QuestionsCampaign, question_id: str) -> Question:
    for question in campaign.questions:
        if question.question_id == question_id:
            return question
    raise QuestionsError(f"question_id: no question {question_id} in this campaign")


def moderate(
    current: QuestionsCampaign,
    question_id: str,
    approve: bool,
    note: str,
    user: str,
    now: datetime,
) -> QuestionsCampaign:
    """Approves or rejects a pending question (an approved one may still be rejected)."""
    if _question(current, question_id).status not in (PENDING, APPROVED):
        raise QuestionsError("question_id: only pending or approved questions are moderated")
    campaign = _next(current, now)
    question = _question(campaign, question_id)
    question.status = APPROVED if approve else REJECTED
    question.moderated_by = user
    question.moderation_note = note
    return campaign


def answer(
    current: QuestionsCampaign, question_id: str, text: str, user: str, now: datetime
) -> QuestionsCampaign:
    """Our answer to an approved question: queued on the answer channel, or recorded."""
    if not text.strip():
        raise QuestionsError("text: is required")
    if _question(current, question_id).status != APPROVED:
        raise QuestionsError("question_id: only approved questions are answered")
    campaign = _next(current, now)
    question = _question(campaign, question_id)
    reply_id = stable_id("answer", campaign.questions_id, question_id)
    question.answer.CopyFrom(
        engage_pb2.Reply(
            reply_id=reply_id,
            request_id=question_id,
            officer=user,
            text=text,
            language=question.language,
        )
    )
    question.answer.created_at.FromDatetime(now)
    if campaign.answer_channel:
        question.answer.status = engage_pb2.REPLY_STATUS_SENDING
        question.answer.delivery.CopyFrom(
            from_outbox(
                outbox.new_delivery(reply_id, campaign.answer_channel, now), question.language, now
            )
        )
    else:
        question.answer.status = engage_pb2.REPLY_STATUS_RECORDED
        question.status = ANSWERED
    return campaign


def answer_text(question: Question) -> str:
    """What the answer channel publishes: the question, then our answer."""
    return f"{question.author} asked: {question.text}\n\n{question.answer.text}"


def answers_due(campaign: QuestionsCampaign) -> list[Question]:
    return [
        q
        for q in campaign.questions
        if q.answer.status == engage_pb2.REPLY_STATUS_SENDING
        and q.answer.delivery.status
        in (publish_pb2.DELIVERY_STATUS_PENDING, publish_pb2.DELIVERY_STATUS_SENDING)
    ]


def record_answer_delivery(
    current: QuestionsCampaign, question_id: str, delivery: outbox.Delivery, now: datetime
) -> QuestionsCampaign:
    campaign = _next(current, now)
    question = _question(campaign, question_id)
    question.answer.delivery.CopyFrom(from_outbox(delivery, question.language, now))
    if delivery.state == "delivered":
        question.answer.status = engage_pb2.REPLY_STATUS_DELIVERED
        question.status = ANSWERED
    elif delivery.state in ("failed", "needs-check", "cancelled"):
        question.answer.status = engage_pb2.REPLY_STATUS_FAILED
    return campaign


class QuestionsListError(InvalidArgument):
    """A list request the engager cannot answer; the message names the field."""


def summary_counts(campaign: QuestionsCampaign) -> dict[str, int]:
    """How many questions a campaign has, by where they stand."""
    statuses = [q.status for q in campaign.questions]
    return {
        "questions": len(statuses),
        "pending": statuses.count(PENDING),
        "approved": statuses.count(APPROVED),
        "rejected": statuses.count(REJECTED),
        "answered": statuses.count(ANSWERED),
    }


def without_questions(campaign: QuestionsCampaign) -> QuestionsCampaign:
    """A copy of the campaign without its questions (a list shows counts instead)."""
    bare = QuestionsCampaign()
    bare.CopyFrom(campaign)
    bare.ClearField("questions")
    return bare


def list_campaigns(
    campaigns: Iterable[QuestionsCampaign],
    campaign_id: str,
    issue_id: str,
    open_only: bool,
    page_size: int,
    page_token: str,
    max_page: int,
) -> tuple[list[QuestionsCampaign], str]:
    """One page of the campaigns the filters match (empty filters match all), most recently
    changed first, then by id; and the token of the next page ("" on the last). The token
    is the offset, as the inbox's list gives it."""
    if page_token and not page_token.isdigit():
        raise QuestionsListError("page_token: not a token this API gave")
    if page_size > max_page:
        raise QuestionsListError(f"page_size: at most {max_page}")
    found = [
        c
        for c in campaigns
        if (not campaign_id or c.campaign_id == campaign_id)
        and (not issue_id or c.issue_id == issue_id)
        and (c.open or not open_only)
    ]
    found.sort(key=lambda c: (-c.updated_at.ToNanoseconds(), c.questions_id))
    start = int(page_token) if page_token else 0
    end = start + page_size if page_size else len(found)
    return found[start:end], str(end) if end < len(found) else ""
