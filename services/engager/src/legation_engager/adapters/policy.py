"""Who may call the engager's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation.engager.v1 import engager_service_pb2
from legation_core.auth import OFFICER, Policy, command, reads

# From the generated descriptor, which importing it registers for check_policy.
SERVICE_NAME = engager_service_pb2.DESCRIPTOR.services_by_name["EngagerService"].full_name

POLICY = Policy(
    SERVICE_NAME,
    {
        "ListConversations": reads(OFFICER),
        "ReplyToConversation": command(OFFICER),
    },
)
