"""The inbox: which mentions open a conversation, and what happens to a conversation.

The inbox is rebuilt at start-up from the interactions topic (every state change is an
Interaction event), so :class:`Inbox` only folds events and decides new ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.ids import stable_id

Interaction = engage_pb2.Interaction

# Interrogative openings in the languages the platform listens to most; a question mark
# (Latin, Spanish opening, Arabic, Greek-style, full-width) is the stronger signal.
_QUESTION_MARKS = re.compile(r"[?\u00bf\u061f\uff1f\u037e]")
_INTERROGATIVES = re.compile(
    r"^\s*(who|what|when|where|why|how|which|is|are|will|would|can|could|should|does|do|did|"
    r"qui|que|quoi|quand|où|pourquoi|comment|est-ce|qu['\u2019]est-ce|"
    r"quién|qué|cuándo|dónde|por qué|cómo|cuál|"
    r"wer|was|wann|wo|warum|wie|"
    r"кто|что|когда|где|почему|как)\b",
    re.IGNORECASE,
)


def asks_question(text: str) -> bool:
    """True when ``text`` contains a question (a question mark, or a sentence that opens
    with an interrogative word)."""
    if _QUESTION_MARKS.search(text):
        return True
    return any(_INTERROGATIVES.match(sentence) for sentence in re.split(r"[.!\n]+", text))


def conversation_id_for(mention_id: str) -> str:
    """One mention opens at most one conversation, whatever the redeliveries."""
    return stable_id("conversation", mention_id)


@dataclass
class Conversation:
    conversation_id: str
    campaign_id: str
    issue_id: str
    opened: Interaction
    opened_at: datetime
    replies: list[Interaction] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return bool(self.replies)


class ReplyError(ValueError):
    """A reply that cannot be recorded (the message says why)."""


class Inbox:
    """Conversations by id, built by folding Interaction events."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self._interaction_ids: set[str] = set()

    def knows(self, interaction_id: str) -> bool:
        """True when this interaction has already been applied."""
        return interaction_id in self._interaction_ids

    def apply(
        self, interaction: Interaction, campaign_id: str, issue_id: str, occurred_at: datetime
    ) -> None:
        """Folds one Interaction into the inbox; applying the same one twice is a no-op."""
        if interaction.interaction_id in self._interaction_ids:
            return
        self._interaction_ids.add(interaction.interaction_id)
        if interaction.kind == Interaction.KIND_OPENED:
            self.conversations.setdefault(
                interaction.conversation_id,
                Conversation(
                    interaction.conversation_id, campaign_id, issue_id, interaction, occurred_at
                ),
            )
        elif interaction.kind == Interaction.KIND_REPLIED:
            conversation = self.conversations.get(interaction.conversation_id)
            if conversation is not None:
                conversation.replies.append(interaction)

    def open_from_mention(self, mention: listen_pb2.Mention) -> Interaction | None:
        """The OPENED interaction for a mention worth answering, or None (not a question,
        or its conversation is already open)."""
        text = f"{mention.title}\n{mention.text}"
        if not asks_question(text):
            return None
        conversation_id = conversation_id_for(mention.mention_id)
        if conversation_id in self.conversations:
            return None
        return Interaction(
            interaction_id=stable_id("interaction", conversation_id, "opened"),
            conversation_id=conversation_id,
            kind=Interaction.KIND_OPENED,
            mention_id=mention.mention_id,
            channel=mention.source_url,
            actor=mention.author,
            text=mention.text or mention.title,
            is_question=True,
            url=mention.url,
            language=mention.language,
        )

    def reply(
        self, conversation_id: str, request_id: str, officer: str, text: str, now: datetime
    ) -> Interaction:
        """The REPLIED interaction for our answer; the same request_id gives the same one."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            raise ReplyError(f"conversation {conversation_id} does not exist")
        if not text.strip():
            raise ReplyError("text is required")
        if not officer.strip():
            raise ReplyError("officer is required")
        return Interaction(
            interaction_id=stable_id("interaction", conversation_id, "reply", request_id),
            conversation_id=conversation_id,
            kind=Interaction.KIND_REPLIED,
            mention_id=conversation.opened.mention_id,
            channel=conversation.opened.channel,
            actor=officer,
            text=text,
            response_seconds=max(0.0, (now - conversation.opened_at).total_seconds()),
            language=conversation.opened.language,
        )
