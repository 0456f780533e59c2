"""The notifier's gRPC API: what was sent to whom, and a person's way out of a message the
outbox could not finish (retry, cancel, confirm), recorded before it is answered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from legation.events.v1 import publish_pb2
from legation.notifier.v1 import notifier_service_pb2 as pb
from legation.notifier.v1 import notifier_service_pb2_grpc
from legation_channels import outbox
from legation_core.calls import Conflict, InvalidArgument
from legation_notifier.adapters.state import NotifierState

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NotifierApi(notifier_service_pb2_grpc.NotifierServiceServicer):
    """Serves :class:`NotifierState`'s messages."""

    def __init__(self, state: NotifierState, clock: Callable[[], datetime] = _utc_now) -> None:
        self.state = state
        self.clock = clock

    def ListMessages(
        self, request: pb.ListMessagesRequest, context: grpc.ServicerContext
    ) -> pb.ListMessagesResponse:
        if request.limit < 0 or request.limit > MAX_LIMIT:
            raise InvalidArgument(f"limit: from 0 to {MAX_LIMIT} (got {request.limit})", "limit")
        limit = request.limit or DEFAULT_LIMIT
        statuses = set(request.statuses)
        found = [
            message
            for message in self.state.messages.all()
            if (not request.person or message.person == request.person)
            and (not statuses or message.delivery.status in statuses)
        ]
        found.sort(key=lambda m: (m.created_at.ToNanoseconds(), m.message_id), reverse=True)
        return pb.ListMessagesResponse(messages=found[:limit])

    def RetryMessage(
        self, request: pb.MessageRequest, context: grpc.ServicerContext
    ) -> pb.MessageResponse:
        return self._change(request, context, outbox.retry)

    def CancelMessage(
        self, request: pb.MessageRequest, context: grpc.ServicerContext
    ) -> pb.MessageResponse:
        return self._change(request, context, outbox.cancel)

    def ConfirmMessage(
        self, request: pb.MessageRequest, context: grpc.ServicerContext
    ) -> pb.MessageResponse:
        return self._change(request, context, outbox.confirm_delivered)

    def _change(
        self,
        request: pb.MessageRequest,
        context: grpc.ServicerContext,
        operation: Callable[[outbox.Delivery, datetime], outbox.Delivery],
    ) -> pb.MessageResponse:
        if not request.message_id:
            raise InvalidArgument("message_id: is required", "message_id")
        now = self.clock()
        try:
            message = self.state.change_delivery(
                request.message_id, lambda delivery: operation(delivery, now)
            )
        except outbox.InvalidTransition as error:
            # The outbox's rule, said of the message the caller named.
            raise Conflict(f"message_id: {error}") from error
        return pb.MessageResponse(message=message)


# The statuses a person must look at (ListMessages' usual filter).
ATTENTION = (publish_pb2.DELIVERY_STATUS_FAILED, publish_pb2.DELIVERY_STATUS_NEEDS_CHECK)
