"""Who may call the publisher's gRPC API (enforced by legation_core's interceptor; an RPC
missing here stops the service from starting).

The rules follow the workflow's configured roles: the interceptor lets a caller reach an
RPC at all, and the domain then decides with the post in hand (which approval step is
next, whether this approver already passed an earlier one)."""

from __future__ import annotations

from legation_core.auth import Policy, command, reads
from legation_publisher.adapters.grpc_api import SERVICE_NAME
from legation_publisher.domain.workflow import WorkflowPolicy


def policy_for(workflow: WorkflowPolicy) -> Policy:
    """The access policy of PublisherService for ``workflow``'s roles."""
    reviewers = sorted({step.role for step in workflow.approval_steps})
    everyone = sorted(workflow.roles())
    return Policy(
        SERVICE_NAME,
        {
            "CreatePost": command(workflow.draft_role),
            "UpdateVariant": command(workflow.draft_role),
            "AddTranslation": command(workflow.draft_role),
            "SubmitForReview": command(workflow.draft_role),
            "ImportPosts": command(workflow.draft_role),
            "Approve": command(*reviewers),
            "RequestChanges": command(*reviewers),
            "Comment": command(*everyone),
            "Schedule": command(workflow.publish_role),
            "RetryDelivery": command(workflow.publish_role),
            "CancelDelivery": command(workflow.publish_role),
            "ConfirmDelivery": command(workflow.publish_role),
            "GetPost": reads(*everyone),
            "ListPosts": reads(*everyone),
            "ListPublications": reads(*everyone),
            "ListChannels": reads(*everyone),
        },
    )


POLICY = policy_for(WorkflowPolicy())
