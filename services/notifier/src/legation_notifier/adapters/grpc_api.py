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
from legation_core.auth import current_caller
from legation_core.calls import Conflict, InvalidArgument
from legation_notifier.adapters.state import NotifierState
from legation_notifier.domain.people import KINDS, Directory

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_INBOX_PAGE = 50
MAX_INBOX_PAGE = 200
MAX_MARKED = 200


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NotifierApi(notifier_service_pb2_grpc.NotifierServiceServicer):
    """Serves :class:`NotifierState`'s messages."""

    def __init__(
        self,
        state: NotifierState,
        clock: Callable[[], datetime] = _utc_now,
        directory: Directory | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.directory = directory or Directory(())

    def GetMyPreferences(
        self, request: pb.GetMyPreferencesRequest, context: grpc.ServicerContext
    ) -> pb.GetMyPreferencesResponse:
        person = self.directory.person(current_caller().user)
        if person is None:
            return pb.GetMyPreferencesResponse(known=False)
        kinds = []
        for kind in KINDS:
            choice = person.choice(kind, {"role"})
            kinds.append(
                pb.KindPreference(
                    kind=kind,
                    enabled=choice is not None,
                    channel=choice.channel if choice else "",
                    mode=choice.mode if choice else "",
                )
            )
        quiet = person.quiet_hours
        return pb.GetMyPreferencesResponse(
            known=True,
            time_zone=person.time_zone,
            channels=sorted(person.channels),
            default_channel=person.default_channel,
            default_mode=person.default_mode,
            digest_at=person.digest_at.strftime("%H:%M"),
            quiet_from=quiet.start.strftime("%H:%M") if quiet else "",
            quiet_to=quiet.end.strftime("%H:%M") if quiet else "",
            kinds=kinds,
            owns_campaigns=sorted(person.owns_campaigns),
            owns_issues=sorted(person.owns_issues),
            follows_campaigns=sorted(person.follows_campaigns),
            follows_issues=sorted(person.follows_issues),
            mutes_campaigns=sorted(person.mutes_campaigns),
            mutes_issues=sorted(person.mutes_issues),
            console=person.console,
        )

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

    def ListMyNotifications(
        self, request: pb.ListMyNotificationsRequest, context: grpc.ServicerContext
    ) -> pb.ListMyNotificationsResponse:
        if request.limit < 0 or request.limit > MAX_INBOX_PAGE:
            raise InvalidArgument(
                f"limit: from 0 to {MAX_INBOX_PAGE} (got {request.limit})", "limit"
            )
        token = request.page_token
        if token and not (token.isdigit() and len(token) <= 9):
            raise InvalidArgument("page_token: not a token this API gave", "page_token")
        start = int(token) if token else 0
        limit = request.limit or DEFAULT_INBOX_PAGE
        # The person is the caller (on whose behalf the console calls): nobody lists another's.
        person = current_caller().user
        found = self.state.inbox_of(person)
        if request.unread_only:
            found = [m for m in found if not m.HasField("read_at")]
        page = found[start : start + limit]
        more = start + limit < len(found)
        return pb.ListMyNotificationsResponse(
            notifications=page,
            unread_count=self.state.unread_count(person),
            next_page_token=str(start + limit) if more else "",
        )

    def MarkNotificationsRead(
        self, request: pb.MarkNotificationsReadRequest, context: grpc.ServicerContext
    ) -> pb.MarkNotificationsReadResponse:
        if request.all and request.message_ids:
            raise InvalidArgument("message_ids: must be empty when all is set", "message_ids")
        if not request.all and not request.message_ids:
            raise InvalidArgument("message_ids: name at least one, or set all", "message_ids")
        person = current_caller().user
        ids = sorted(self.state.unread_of(person)) if request.all else list(request.message_ids)
        marked = 0
        # One acknowledged write per slice (the broker's record batch stays small).
        for part in range(0, len(ids), MAX_MARKED):
            marked += self.state.mark_read(person, ids[part : part + MAX_MARKED], self.clock())
        return pb.MarkNotificationsReadResponse(
            marked=marked, unread_count=self.state.unread_count(person)
        )


# The statuses a person must look at (ListMessages' usual filter).
ATTENTION = (publish_pb2.DELIVERY_STATUS_FAILED, publish_pb2.DELIVERY_STATUS_NEEDS_CHECK)
