"""The engager's gRPC API: list the inbox, record our replies."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import grpc

from legation.engager.v1 import engager_service_pb2 as pb
from legation.engager.v1 import engager_service_pb2_grpc as pb_grpc
from legation_core.codec import Envelope
from legation_core.grpc_server import invalid_argument, not_found, require
from legation_core.kafka import EventProducer
from legation_engager.adapters.events import INTERACTIONS, interaction_envelope
from legation_engager.domain.inbox import Conversation, Inbox, ReplyError


def conversation_message(conversation: Conversation) -> pb.Conversation:
    return pb.Conversation(
        conversation_id=conversation.conversation_id,
        campaign_id=conversation.campaign_id,
        issue_id=conversation.issue_id,
        state=pb.Conversation.STATE_ANSWERED
        if conversation.answered
        else pb.Conversation.STATE_NEW,
        opened=conversation.opened,
        replies=conversation.replies,
    )


class EngagerApi(pb_grpc.EngagerServiceServicer):
    """Reads and changes the inbox; every change is an Interaction event first."""

    def __init__(self, inbox: Inbox, lock: threading.Lock, producer: EventProducer) -> None:
        self.inbox = inbox
        self.lock = lock
        self.producer = producer

    def ListConversations(
        self, request: pb.ListConversationsRequest, context: grpc.ServicerContext
    ) -> pb.ListConversationsResponse:
        with self.lock:
            conversations = [
                conversation_message(c)
                for c in self.inbox.conversations.values()
                if not request.campaign_id or c.campaign_id == request.campaign_id
            ]
        conversations.sort(key=lambda c: c.opened.interaction_id)
        return pb.ListConversationsResponse(conversations=conversations)

    def ReplyToConversation(
        self, request: pb.ReplyToConversationRequest, context: grpc.ServicerContext
    ) -> pb.Conversation:
        require(context, request_id=request.request_id, conversation_id=request.conversation_id)
        now = datetime.now(UTC)
        with self.lock:
            conversation = self.inbox.conversations.get(request.conversation_id)
            if conversation is None:
                not_found(context, f"conversation {request.conversation_id} does not exist")
            try:
                reply = self.inbox.reply(
                    request.conversation_id, request.request_id, request.officer, request.text, now
                )
            except ReplyError as error:
                invalid_argument(context, str(error))
            if self.inbox.knows(reply.interaction_id):
                return conversation_message(conversation)  # a retried request
        cause = Envelope(campaign_id=conversation.campaign_id, issue_id=conversation.issue_id)
        envelope = interaction_envelope(reply, cause, now)
        # Produce outside the lock: the mention consumer must not wait on this call's I/O.
        try:
            self.producer.send_and_wait([(INTERACTIONS, reply.conversation_id, envelope)])
        except Exception as error:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"could not record the reply: {error}")
        with self.lock:
            self.inbox.apply(reply, conversation.campaign_id, conversation.issue_id, now)
            return conversation_message(conversation)
