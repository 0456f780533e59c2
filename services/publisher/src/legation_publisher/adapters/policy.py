"""Who may call the publisher's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation_core.auth import APPROVER, EDITOR, PUBLISHER, Policy, command, reads
from legation_publisher.adapters.grpc_api import SERVICE_NAME

POLICY = Policy(
    SERVICE_NAME,
    {
        # CreatePost puts the post on the channel at once: publishing, not drafting.
        "CreatePost": command(PUBLISHER),
        "ListPublications": reads(EDITOR, APPROVER, PUBLISHER),
    },
)
