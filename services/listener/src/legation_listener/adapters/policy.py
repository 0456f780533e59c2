"""Who may call the listener's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation_core.auth import ANALYST, Policy, command, reads
from legation_listener.adapters.grpc_api import SERVICE_NAME

POLICY = Policy(
    SERVICE_NAME,
    {
        "TrackIssue": command(ANALYST),
        "UpdateIssue": command(ANALYST),
        "SetIssueActive": command(ANALYST),
        "DeleteIssue": command(ANALYST),
        "PollNow": command(ANALYST),
        "ListIssues": reads(ANALYST),
        "PreviewQuery": reads(ANALYST),
        "ListSources": reads(ANALYST),
        "DiscoverCommunities": reads(ANALYST),
        "MapArguments": reads(ANALYST),
        "AcceptSourceSuggestion": command(ANALYST),
        "LabelMention": command(ANALYST),
        "ListModels": reads(ANALYST),
        "RescoreMentions": command(ANALYST),
    },
)
