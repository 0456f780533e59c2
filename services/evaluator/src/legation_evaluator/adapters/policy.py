"""Who may call the evaluator's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation_core.auth import ANALYST, APPROVER, EDITOR, OFFICER, PUBLISHER, Policy, command, reads

SERVICE_NAME = "legation.evaluator.v1.EvaluatorService"

POLICY = Policy(
    SERVICE_NAME,
    {
        "CreateCampaign": command(ANALYST),
        # Everyone who works on a campaign may say what could be done better next time.
        "SubmitFeedback": command(ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER),
        "GetCampaignScorecard": reads(ANALYST),
    },
)
