"""Who may call the evaluator's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation.evaluator.v1 import evaluator_service_pb2
from legation_core.auth import (
    ANALYST,
    APPROVER,
    EDITOR,
    OFFICER,
    PUBLISHER,
    VIEWER,
    Policy,
    command,
    reads,
)

# From the generated descriptor, which importing it registers for check_policy.
SERVICE_NAME = evaluator_service_pb2.DESCRIPTOR.services_by_name["EvaluatorService"].full_name

POLICY = Policy(
    SERVICE_NAME,
    {
        "CreateCampaign": command(ANALYST),
        # Everyone who works on a campaign may say what could be done better next time.
        "SubmitFeedback": command(ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER),
        "GetCampaignScorecard": reads(ANALYST),
        "WatchCampaignScorecard": reads(ANALYST),
        "GetCampaign": reads(ANALYST),
        "ListCampaigns": reads(ANALYST),
        "ListMetrics": reads(ANALYST),
        # The after-action review closes a campaign: its owners (analysts) write it.
        "ReviewCampaign": command(ANALYST),
        "GetCampaignReport": reads(ANALYST),
        "BuildCampaignReport": reads(ANALYST),
        # Whoever may record feedback may read it back; reviews are read like reports.
        "ListFeedback": reads(ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER),
        "ListAfterActionReviews": reads(ANALYST),
        # Mentions and alerts are what the listener already shows its readers.
        "SearchMentions": reads(ANALYST),
        "ListAlerts": reads(ANALYST),
    },
)

# Who may open the live scorecard page: whoever may read the scorecard over gRPC.
SCORECARD_READERS = frozenset({VIEWER, ANALYST})
