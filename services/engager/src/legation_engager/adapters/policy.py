"""Who may call the engager's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting)."""

from __future__ import annotations

from legation.engager.v1 import engager_service_pb2
from legation_core.auth import APPROVER, OFFICER, Policy, command, reads

# From the generated descriptor, which importing it registers for check_policy.
SERVICE_NAME = engager_service_pb2.DESCRIPTOR.services_by_name["EngagerService"].full_name


def policy_for(approval_role: str = APPROVER) -> Policy:
    """Reads for viewers and officers, the inbox's commands for officers, reviewing a
    reply for the approval role of the rules."""
    return Policy(
        SERVICE_NAME,
        {
            "ListConversations": reads(OFFICER, approval_role),
            "GetConversation": reads(OFFICER, approval_role),
            "ListSavedReplies": reads(OFFICER),
            "GetQuestionsCampaign": reads(OFFICER),
            "ListQuestionsCampaigns": reads(OFFICER),
            "GetPartner": reads(OFFICER),
            "ListPartners": reads(OFFICER),
            "ReplyToConversation": command(OFFICER),
            "ReviewReply": command(approval_role),
            "ResolveReplyDelivery": command(OFFICER),
            "AssignConversation": command(OFFICER),
            "LabelConversation": command(OFFICER),
            "PrioritizeConversation": command(OFFICER),
            "SetConversationStatus": command(OFFICER),
            "CreateQuestionsCampaign": command(OFFICER),
            "SubmitQuestion": command(OFFICER),
            "ModerateQuestion": command(OFFICER),
            "AnswerQuestion": command(OFFICER),
            "CloseQuestionsCampaign": command(OFFICER),
            "RegisterPartner": command(OFFICER),
            "RecordPartnerActivity": command(OFFICER),
        },
    )


POLICY = policy_for()
