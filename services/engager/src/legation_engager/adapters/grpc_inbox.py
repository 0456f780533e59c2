"""The engager API's inbox calls (list, read, reply, review, assign, label, status) and
saved replies, mixed into :class:`~legation_engager.adapters.grpc_api.EngagerApi` (kept
apart so each part of the API stays small)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime

import grpc

from legation.engager.v1 import engager_service_pb2 as pb
from legation.events.v1 import engage_pb2
from legation_channels.base import ChannelLimits
from legation_core.auth import current_caller, current_trace_id, require_role
from legation_core.calls import InvalidArgument, require
from legation_core.ids import stable_id
from legation_core.state import existing
from legation_engager.adapters.grpc_common import MAX_PAGE
from legation_engager.adapters.store import EngagerState
from legation_engager.domain import inbox
from legation_engager.domain.rules import Rules, render_saved_reply

_STATE = {
    engage_pb2.CONVERSATION_STATUS_NEW: pb.Conversation.STATE_NEW,
    engage_pb2.CONVERSATION_STATUS_ASSIGNED: pb.Conversation.STATE_ASSIGNED,
    engage_pb2.CONVERSATION_STATUS_WAITING: pb.Conversation.STATE_WAITING,
    engage_pb2.CONVERSATION_STATUS_ANSWERED: pb.Conversation.STATE_ANSWERED,
    engage_pb2.CONVERSATION_STATUS_CLOSED: pb.Conversation.STATE_CLOSED,
}
_RESOLUTION = {
    pb.ResolveReplyDeliveryRequest.ACTION_RETRY: "retry",
    pb.ResolveReplyDeliveryRequest.ACTION_CANCEL: "cancel",
    pb.ResolveReplyDeliveryRequest.ACTION_CONFIRM_DELIVERED: "confirm",
}
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SENT = (engage_pb2.REPLY_STATUS_DELIVERED, engage_pb2.REPLY_STATUS_RECORDED)


def conversation_message(state: engage_pb2.ConversationState) -> pb.Conversation:
    """The API's view: the opening interaction, our replies that are out, the whole state."""
    opening = state.mentions[0] if state.mentions else None
    opened = engage_pb2.Interaction(
        interaction_id=stable_id("interaction", state.conversation_id, "opened"),
        conversation_id=state.conversation_id,
        kind=engage_pb2.Interaction.KIND_OPENED,
        channel=state.channel or (opening.source_url if opening else ""),
        priority=state.priority,
        status=state.status,
        assignee=state.assignee,
        team=state.team,
        labels=state.labels,
    )
    if opening is not None:
        opened.mention_id = opening.mention_id
        opened.actor = opening.author
        opened.text = opening.text or opening.title
        opened.url = opening.url
        opened.language = opening.language
        opened.is_question = inbox.asks_question(f"{opening.title}\n{opening.text}")
    replies = [
        engage_pb2.Interaction(
            interaction_id=stable_id(
                "interaction", state.conversation_id, "reply", reply.request_id
            ),
            conversation_id=state.conversation_id,
            kind=engage_pb2.Interaction.KIND_REPLIED,
            mention_id=opened.mention_id,
            channel=opened.channel,
            actor=reply.officer,
            text=reply.text,
            language=reply.language,
            url=reply.delivery.url,
            channel_item_id=reply.delivery.channel_item_id,
        )
        for reply in state.replies
        if reply.status in _SENT
    ]
    return pb.Conversation(
        conversation_id=state.conversation_id,
        campaign_id=state.campaign_id,
        issue_id=state.issue_id,
        state=_STATE.get(state.status, pb.Conversation.STATE_UNSPECIFIED),
        opened=opened,
        replies=replies,
        detail=state,
    )


class InboxApi:
    """The conversations and saved replies, over the conversations' table."""

    state: EngagerState
    rules: Rules
    channel_limits: Mapping[str, ChannelLimits]
    clock: Callable[[], datetime]

    def ListConversations(
        self, request: pb.ListConversationsRequest, context: grpc.ServicerContext
    ) -> pb.ListConversationsResponse:
        found = [
            c
            for c in self.state.conversations.all()
            if (not request.campaign_id or c.campaign_id == request.campaign_id)
            and (not request.status or c.status == request.status)
            and (not request.assignee or c.assignee == request.assignee)
            and (not request.team or c.team == request.team)
            and c.priority >= request.min_priority
            and (not request.label or request.label in c.labels)
        ]
        found.sort(key=lambda c: (-c.priority, c.opened_at.ToNanoseconds(), c.conversation_id))
        start = 0
        if request.page_token:
            if not request.page_token.isdigit():
                raise InvalidArgument("page_token: not a token this API gave")
            start = int(request.page_token)
        if request.page_size > MAX_PAGE:
            raise InvalidArgument(f"page_size: at most {MAX_PAGE}")
        end = start + request.page_size if request.page_size else len(found)
        return pb.ListConversationsResponse(
            conversations=[conversation_message(c) for c in found[start:end]],
            next_page_token=str(end) if end < len(found) else "",
        )

    def GetConversation(
        self, request: pb.GetConversationRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        return conversation_message(self._conversation(request.conversation_id))

    def _conversation(self, conversation_id: str) -> engage_pb2.ConversationState:
        return existing(
            self.state.conversations, "conversation", "conversation_id", conversation_id
        )

    def _change(
        self,
        conversation_id: str,
        change: Callable[[engage_pb2.ConversationState], inbox.Change | None],
    ) -> pb.Conversation:
        self._conversation(conversation_id)
        with self.state.change_conversations() as writer:
            current = writer.get(conversation_id)
            assert current is not None
            result = change(current)
            if result is None:
                return conversation_message(current)
            writer.put(result, current_trace_id())
        return conversation_message(result.state)

    def ReplyToConversation(
        self, request: pb.ReplyToConversationRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        require(request_id=request.request_id, conversation_id=request.conversation_id)
        if request.text and request.saved_reply_id:
            raise InvalidArgument("text: give either text or saved_reply_id, not both")
        officer = request.officer or current_caller().user
        now = self.clock()

        def reply(current: engage_pb2.ConversationState) -> inbox.Change | None:
            if inbox.find_reply(current, request.request_id) is not None:
                return None  # a retried request
            text, language = request.text, request.language
            if request.saved_reply_id:
                saved = self.rules.saved_replies.get(request.saved_reply_id)
                if saved is None:
                    known = ", ".join(sorted(self.rules.saved_replies)) or "none configured"
                    raise inbox.ConversationError(
                        f"saved_reply_id: {request.saved_reply_id!r} is not a saved reply ({known})"
                    )
                opening = current.mentions[0] if current.mentions else None
                variables = {
                    "author": opening.author if opening else "",
                    "officer": officer,
                    **dict(request.variables),
                }
                fallback = [opening.language] if opening else []
                language, text = render_saved_reply(saved, language, [*fallback, "en"], variables)
            limits = self.channel_limits.get(current.channel)
            return inbox.add_reply(
                current,
                request.request_id,
                officer,
                text,
                language,
                request.saved_reply_id,
                self._needs_approval(current),
                limits is not None and limits.supports_replies,
                now,
            )

        return self._change(request.conversation_id, reply)

    def _needs_approval(self, state: engage_pb2.ConversationState) -> bool:
        return state.issue_id in self.rules.approval_issues or bool(
            self.rules.approval_labels & set(state.labels)
        )

    def ReviewReply(
        self, request: pb.ReviewReplyRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        require(conversation_id=request.conversation_id, reply_id=request.reply_id)
        caller = current_caller()
        require_role(caller, self.rules.approval_role)
        now = self.clock()
        return self._change(
            request.conversation_id,
            lambda current: inbox.review_reply(
                current, request.reply_id, request.approve, caller.user, request.comment, now
            ),
        )

    def ResolveReplyDelivery(
        self, request: pb.ResolveReplyDeliveryRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        require(reply_id=request.reply_id, action=request.action)
        action = _RESOLUTION.get(request.action, "")
        user, now = current_caller().user, self.clock()
        return self._change(
            request.conversation_id,
            lambda current: inbox.resolve_delivery(
                current,
                request.reply_id,
                action,
                user,
                request.reason,
                now,
                request.channel_item_id,
                request.url,
            ),
        )

    def AssignConversation(
        self, request: pb.AssignConversationRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        user, now = current_caller().user, self.clock()

        def assign(current: engage_pb2.ConversationState) -> inbox.Change | None:
            if (current.assignee, current.team) == (request.officer, request.team):
                return None
            return inbox.assign(current, request.officer, request.team, user, now)

        return self._change(request.conversation_id, assign)

    def LabelConversation(
        self, request: pb.LabelConversationRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        bad = [name for name in [*request.add, *request.remove] if not _LABEL.match(name)]
        if bad:
            raise InvalidArgument(f"add: {', '.join(map(repr, bad))} are not labels (a-z0-9_-)")
        if not request.add and not request.remove:
            raise InvalidArgument("add: give labels to add or remove")
        user, now = current_caller().user, self.clock()
        return self._change(
            request.conversation_id,
            lambda current: inbox.label(current, request.add, request.remove, user, now),
        )

    def PrioritizeConversation(
        self, request: pb.PrioritizeConversationRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        user, now = current_caller().user, self.clock()
        return self._change(
            request.conversation_id,
            lambda current: inbox.prioritize(
                current, request.priority, self.rules, user, request.comment, now
            ),
        )

    def SetConversationStatus(
        self, request: pb.SetConversationStatusRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        require(status=request.status)
        user, now = current_caller().user, self.clock()
        return self._change(
            request.conversation_id,
            lambda current: inbox.set_status(current, request.status, request.comment, user, now),
        )

    def ListSavedReplies(
        self, request: pb.ListSavedRepliesRequest, context: grpc.ServicerContext
    ) -> pb.ListSavedRepliesResponse:
        return pb.ListSavedRepliesResponse(
            saved_replies=[
                pb.SavedReply(
                    saved_reply_id=saved.saved_reply_id,
                    title=saved.title,
                    variants=dict(saved.variants),
                    variables=saved.variables,
                )
                for saved in sorted(
                    self.rules.saved_replies.values(), key=lambda s: s.saved_reply_id
                )
            ]
        )
