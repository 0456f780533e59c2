"""Kafka side of the engager: mentions in; conversations opened, threaded and triaged,
questions collected from hashtags, partners' conversations put on their timeline.

Each batch is decided and written under the conversations' write lock in one acknowledged
write (the conversations, their Interaction events, questions and partner records), then
the loop commits the offsets. A redelivered mention is already in its conversation, so it
changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.codec import Envelope, InvalidEvent
from legation_core.consumer import BatchResult, Incoming, Rejected
from legation_core.ids import stable_id
from legation_engager.adapters.store import ConversationWriter, EngagerState, activity_event
from legation_engager.domain import inbox, partners, questions
from legation_engager.domain.rules import Rules


def occurred_at(envelope: Envelope) -> datetime:
    return envelope.occurred_at.ToDatetime(tzinfo=UTC)


class MentionHandler:
    """Routes every mention: into its thread's conversation, into a new conversation when
    a rule says so, into the questions campaign whose hashtag it carries."""

    def __init__(
        self,
        state: EngagerState,
        rules: Rules,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_orphans: int = 10_000,
    ):
        self.state = state
        self.rules = rules
        self.clock = clock
        # Replies that came before their thread's first mention (mentions are keyed by
        # their own id, so a thread spreads over partitions): joined when it opens. Kept in
        # memory, the most recent ``max_orphans``.
        self.orphans: OrderedDict[str, tuple[listen_pb2.Mention, str]] = OrderedDict()
        self.max_orphans = max_orphans
        # In memory: after a restart the baseline rebuilds from the next mentions.
        self.baseline = inbox.SentimentBaseline()
        # Officers' open conversations, counted once per batch when a rule needs them.
        self._load: dict[str, int] | None = None

    def __call__(self, batch: Sequence[Incoming]) -> BatchResult:
        result = BatchResult()
        now = self.clock()
        self._load = None
        with self.state.change_conversations() as writer:
            for incoming in batch:
                try:
                    self._route(writer, incoming.envelope, now)
                except InvalidEvent as error:
                    result.rejected.append(Rejected(incoming, error.reason))
        rejected = {id(r.incoming) for r in result.rejected}
        self._collect_questions([i for i in batch if id(i) not in rejected], now)
        return result

    def _route(self, writer: ConversationWriter, envelope: Envelope, now: datetime) -> None:
        mention = envelope.mention
        if not mention.mention_id:
            raise InvalidEvent("mention has no mention_id")
        if self._known(writer, mention.mention_id):
            return  # redelivered
        if mention.duplicate_of:
            # A repost or syndicated copy: its first-seen copy (which may come later, from
            # another partition) is the one that opens or joins a conversation.
            return
        # The issue's mean sentiment before this mention, which then counts in it.
        baseline = self.baseline.mean(envelope.issue_id)
        self.baseline.observe(envelope.issue_id, mention)
        thread = self.state.conversation_of_thread(mention.in_reply_to, mention.thread_id)
        thread = thread or self._staged_thread(writer, mention)
        if thread is not None:
            current = writer.get(thread)
            if current is not None:
                writer.put(inbox.join(current, mention, now, self.rules), envelope.trace_id)
                self._partner_conversation(current, mention, now)
                return
        reasons = inbox.open_reasons(mention, self.rules, baseline)
        if not reasons:
            self._keep_orphan(mention, envelope.trace_id)
            return
        if self._load is None and any(rule.officers for rule in self.rules.assignment):
            self._load = inbox.open_load(self.state.conversations.all())
        change = inbox.open_conversation(
            mention, envelope.campaign_id, envelope.issue_id, reasons, self.rules, now, self._load
        )
        if self._load is not None and change.state.assignee:
            self._load[change.state.assignee] = self._load.get(change.state.assignee, 0) + 1
        # The conversation started when the question was asked, not when we saw it.
        state = writer.put(change, envelope.trace_id, lambda _: occurred_at(envelope))
        self._partner_conversation(change.state, mention, now)
        self._adopt_orphans(writer, state, now)

    def _keep_orphan(self, mention: listen_pb2.Mention, trace_id: str) -> None:
        parent = {mention.in_reply_to, mention.thread_id} - {"", mention.item_id}
        if not parent:
            return
        self.orphans[mention.mention_id] = (mention, trace_id)
        self.orphans.move_to_end(mention.mention_id)
        while len(self.orphans) > self.max_orphans:
            self.orphans.popitem(last=False)

    def _adopt_orphans(
        self, writer: ConversationWriter, state: engage_pb2.ConversationState, now: datetime
    ) -> None:
        """Joins the replies that arrived before their thread opened (a chain included)."""
        found = True
        while found:
            found = False
            for mention_id, (orphan, trace_id) in list(self.orphans.items()):
                if {orphan.in_reply_to, orphan.thread_id} & set(state.thread_keys):
                    del self.orphans[mention_id]
                    state = writer.put(inbox.join(state, orphan, now, self.rules), trace_id)
                    found = True

    def _known(self, writer: ConversationWriter, mention_id: str) -> bool:
        if self.state.conversation_of_mention(mention_id) is not None:
            return True
        return any(
            m.mention_id == mention_id for state in writer.after.values() for m in state.mentions
        )

    def _staged_thread(self, writer: ConversationWriter, mention: listen_pb2.Mention) -> str | None:
        # Earlier mentions of this batch are staged, not yet in the index.
        keys = {mention.in_reply_to, mention.thread_id} - {""}
        for conversation_id, state in writer.after.items():
            if keys & set(state.thread_keys):
                return conversation_id
        return None

    def _partner_conversation(
        self,
        conversation: engage_pb2.ConversationState,
        mention: listen_pb2.Mention,
        now: datetime,
    ) -> None:
        """One of a partner's accounts spoke in a conversation: on its timeline."""
        recorded = partners.conversation_activity(
            self.state.partners.all(), conversation, mention, now
        )
        if recorded is None:
            return
        partner, activity = recorded
        with self.state.partners.transaction() as transaction:
            transaction.put(partner, activity_event(activity, conversation.campaign_id))

    def _collect_questions(self, batch: Sequence[Incoming], now: datetime) -> None:
        campaigns = [c for c in self.state.questions.all() if c.open and c.hashtag]
        if not campaigns:
            return
        with self.state.questions.transaction() as transaction:
            for incoming in batch:
                mention = incoming.envelope.mention
                tags = {tag.lower() for tag in mention.hashtags}
                for campaign in campaigns:
                    if campaign.hashtag not in tags or campaign.issue_id not in (
                        incoming.envelope.issue_id,
                        "",
                    ):
                        continue
                    current = transaction.get(campaign.questions_id) or campaign
                    try:
                        added = questions.submit(
                            current,
                            stable_id("question", campaign.questions_id, mention.mention_id),
                            "mention",
                            mention.author,
                            mention.text or mention.title,
                            mention.language,
                            now,
                            mention,
                        )
                    except questions.QuestionsError:
                        continue  # empty or oversized: not a question we can take
                    if added is not None:
                        transaction.put(added)
