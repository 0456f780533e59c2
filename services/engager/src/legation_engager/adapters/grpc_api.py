"""The engager's gRPC API: the inbox (list, read, reply, review, assign, label, status),
saved replies, questions campaigns and the partner register, one servicer made of one part
each (:mod:`.grpc_inbox`, :mod:`.grpc_questions`, :mod:`.grpc_partners`).

Every change is computed by the domain from the current version, written to Kafka with its
events (acknowledged) and only then answered. Bad requests end with INVALID_ARGUMENT naming
the field, unknown ids with NOT_FOUND, changes the current state does not allow with
FAILED_PRECONDITION saying which states do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from legation.engager.v1 import engager_service_pb2_grpc as pb_grpc
from legation_channels.base import ChannelLimits
from legation_engager.adapters.grpc_inbox import InboxApi
from legation_engager.adapters.grpc_partners import PartnersApi
from legation_engager.adapters.grpc_questions import QuestionsApi
from legation_engager.adapters.store import EngagerState
from legation_engager.domain.rules import Rules


class EngagerApi(InboxApi, QuestionsApi, PartnersApi, pb_grpc.EngagerServiceServicer):
    """Reads and changes the engager's state; every change is on Kafka before the answer."""

    def __init__(
        self,
        state: EngagerState,
        rules: Rules,
        channel_limits: Mapping[str, ChannelLimits],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        form_path: Callable[[str], str] | None = None,
    ) -> None:
        self.state = state
        self.rules = rules
        self.channel_limits = channel_limits
        self.clock = clock
        self.form_path = form_path or (lambda _: "")
