"""Reply approval requests: which replies of a conversation started or stopped waiting for
an approver between two versions of it, as ``ApprovalRequest`` events for
``legation.engage.approvals.v1`` (the notifier tells the people holding the approval role).
"""

from __future__ import annotations

from legation.events.v1 import engage_pb2, publish_pb2
from legation_core.ids import stable_id

STEP = "reply"
A = publish_pb2.ApprovalState
AWAITING = engage_pb2.REPLY_STATUS_AWAITING_APPROVAL


def reply_approval_changes(
    before: engage_pb2.ConversationState | None,
    after: engage_pb2.ConversationState,
    role: str,
) -> list[publish_pb2.ApprovalRequest]:
    """A request per reply that now awaits approval and did not, and per reply that awaited
    it and no longer does (approved, rejected, or withdrawn)."""
    waited = (
        {reply.reply_id for reply in before.replies if reply.status == AWAITING}
        if before is not None
        else set()
    )
    changes = []
    for reply in after.replies:
        waits = reply.status == AWAITING
        if waits == (reply.reply_id in waited):
            continue
        if waits:
            state = A.APPROVAL_STATE_AWAITING
        elif reply.status == engage_pb2.REPLY_STATUS_REJECTED:
            state = A.APPROVAL_STATE_REJECTED
        elif reply.approved_by:
            state = A.APPROVAL_STATE_APPROVED
        else:
            state = A.APPROVAL_STATE_WITHDRAWN
        request = publish_pb2.ApprovalRequest(
            request_id=stable_id(
                "reply-approval", after.conversation_id, reply.reply_id, str(after.version)
            ),
            subject="reply",
            subject_id=after.conversation_id,
            item_id=reply.reply_id,
            languages=[reply.language] if reply.language else [],
            step=STEP,
            role=role,
            state=state,
            requested_by=reply.officer,
            decided_by="" if waits else reply.approved_by or after.change.user,
            title=reply.text[:120],
            comment=reply.comment[:1000],
        )
        if after.change.HasField("at"):
            request.at.CopyFrom(after.change.at)
        changes.append(request)
    return changes
