"""The inbox domain: which mentions are questions, opening conversations, recording replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legation.events.v1 import listen_pb2
from legation_core.ids import stable_id
from legation_engager.domain.inbox import (
    Inbox,
    Interaction,
    ReplyError,
    asks_question,
    conversation_id_for,
)

OPENED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def mention(
    mention_id: str = "m-1", text: str = "When does the consulate open?"
) -> listen_pb2.Mention:
    return listen_pb2.Mention(
        mention_id=mention_id,
        source_url="https://social.example/feed",
        url=f"https://social.example/posts/{mention_id}",
        author="@citizen",
        title="",
        text=text,
        language="en",
    )


def opened_inbox(mention_id: str = "m-1") -> tuple[Inbox, Interaction]:
    inbox = Inbox()
    opened = inbox.open_from_mention(mention(mention_id))
    assert opened is not None
    inbox.apply(opened, "camp-1", "issue-1", OPENED_AT)
    return inbox, opened


@pytest.mark.parametrize(
    "text",
    [
        "When does the consulate open on Saturdays?",
        "How do I renew my passport",
        "Is the embassy closed today. Thanks",
        "Great event!\nwhere can I find the slides",
        "Pourquoi le consulat est-il fermé",
        "Est-ce que le visa est gratuit",
        "Qu\u2019est-ce que le programme Erasmus",
        "¿Dónde está la embajada?",
        "¿Dónde está la embajada",
        "Cuándo abre el consulado",
        "هل السفارة مفتوحة اليوم؟",
        "大使馆周六开门吗\uff1f",  # full-width question mark
    ],
)
def test_questions_in_several_languages_are_recognised(text: str) -> None:
    assert asks_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "The embassy opens at nine.",
        "This is how we celebrate national day.",
        "We explained why the office moved!",
        "Le consulat est fermé aujourd'hui.",
        "La embajada abre a las nueve.",
        "السفارة مفتوحة اليوم.",
        "大使馆今天开门。",
        "",
    ],
)
def test_statements_are_not_questions(text: str) -> None:
    assert not asks_question(text)


def test_a_question_opens_a_conversation_with_deterministic_ids() -> None:
    first = Inbox().open_from_mention(mention("m-1"))
    again = Inbox().open_from_mention(mention("m-1"))
    other = Inbox().open_from_mention(mention("m-2"))
    assert first is not None
    assert again is not None
    assert other is not None
    assert first.kind == Interaction.KIND_OPENED
    assert first.is_question
    assert first.conversation_id == conversation_id_for("m-1")
    assert first.conversation_id == stable_id("conversation", "m-1")
    assert first.interaction_id == stable_id("interaction", first.conversation_id, "opened")
    assert (first.interaction_id, first.conversation_id) == (
        again.interaction_id,
        again.conversation_id,
    )
    assert first.conversation_id != other.conversation_id
    assert first.interaction_id != other.interaction_id
    assert first.mention_id == "m-1"
    assert first.channel == "https://social.example/feed"
    assert first.actor == "@citizen"
    assert first.text == "When does the consulate open?"
    assert first.url == "https://social.example/posts/m-1"
    assert first.language == "en"


def test_the_title_alone_can_make_a_question() -> None:
    item = mention(text="")
    item.title = "Who can apply for the scholarship?"
    opened = Inbox().open_from_mention(item)
    assert opened is not None
    assert opened.text == "Who can apply for the scholarship?"


def test_a_statement_opens_nothing() -> None:
    assert Inbox().open_from_mention(mention(text="The embassy opens at nine.")) is None


def test_the_same_mention_twice_opens_one_conversation() -> None:
    inbox, _opened = opened_inbox("m-1")
    assert inbox.open_from_mention(mention("m-1")) is None
    assert inbox.open_from_mention(mention("m-2")) is not None


def test_apply_folds_an_opened_interaction() -> None:
    inbox, opened = opened_inbox()
    conversation = inbox.conversations[opened.conversation_id]
    assert conversation.campaign_id == "camp-1"
    assert conversation.issue_id == "issue-1"
    assert conversation.opened_at == OPENED_AT
    assert conversation.opened == opened
    assert not conversation.answered
    assert inbox.knows(opened.interaction_id)


def test_apply_is_idempotent_on_interaction_id() -> None:
    inbox, opened = opened_inbox()
    reply = inbox.reply(opened.conversation_id, "req-1", "officer@gov", "Nine to five.", OPENED_AT)
    later = OPENED_AT + timedelta(hours=1)
    for _ in range(3):
        inbox.apply(opened, "camp-other", "issue-other", later)
        inbox.apply(reply, "camp-1", "issue-1", later)
    conversation = inbox.conversations[opened.conversation_id]
    assert len(inbox.conversations) == 1
    assert conversation.campaign_id == "camp-1"
    assert conversation.opened_at == OPENED_AT
    assert conversation.replies == [reply]
    assert conversation.answered


def test_reply_to_an_unknown_conversation_is_refused() -> None:
    inbox, _opened = opened_inbox()
    with pytest.raises(ReplyError, match="does not exist"):
        inbox.reply("no-such-conversation", "req-1", "officer@gov", "Hello", OPENED_AT)


@pytest.mark.parametrize(
    ("officer", "text", "field"),
    [
        ("officer@gov", "", "text"),
        ("officer@gov", "   \n", "text"),
        ("", "Nine to five.", "officer"),
        ("  ", "Nine to five.", "officer"),
    ],
)
def test_reply_needs_text_and_officer(officer: str, text: str, field: str) -> None:
    inbox, opened = opened_inbox()
    with pytest.raises(ReplyError, match=f"{field} is required"):
        inbox.reply(opened.conversation_id, "req-1", officer, text, OPENED_AT)


def test_reply_records_the_response_time_and_the_conversation() -> None:
    inbox, opened = opened_inbox()
    now = OPENED_AT + timedelta(minutes=90, seconds=5)
    reply = inbox.reply(opened.conversation_id, "req-1", "officer@gov", "Nine to five.", now)
    assert reply.kind == Interaction.KIND_REPLIED
    assert reply.response_seconds == pytest.approx(5405.0)
    assert reply.conversation_id == opened.conversation_id
    assert reply.mention_id == opened.mention_id
    assert reply.channel == opened.channel
    assert reply.language == "en"
    assert reply.actor == "officer@gov"
    assert reply.text == "Nine to five."
    assert reply.interaction_id != opened.interaction_id
    # Deciding a reply does not change the inbox; only applying it does.
    assert not inbox.conversations[opened.conversation_id].answered


def test_the_same_request_id_gives_the_same_reply() -> None:
    inbox, opened = opened_inbox()
    first = inbox.reply(opened.conversation_id, "req-1", "officer@gov", "Nine.", OPENED_AT)
    retry = inbox.reply(
        opened.conversation_id, "req-1", "officer@gov", "Nine.", OPENED_AT + timedelta(seconds=3)
    )
    other = inbox.reply(opened.conversation_id, "req-2", "officer@gov", "Nine.", OPENED_AT)
    assert retry.interaction_id == first.interaction_id
    assert other.interaction_id != first.interaction_id
