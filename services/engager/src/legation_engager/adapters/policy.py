"""Who may call the engager's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation_core.auth import OFFICER, Policy, command, reads

SERVICE_NAME = "legation.engager.v1.EngagerService"

POLICY = Policy(
    SERVICE_NAME,
    {
        "ListConversations": reads(OFFICER),
        "ReplyToConversation": command(OFFICER),
    },
)
