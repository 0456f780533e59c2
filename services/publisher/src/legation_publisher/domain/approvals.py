"""Approval requests: which approval steps of a post started or stopped waiting between two
versions of it, as ``ApprovalRequest`` events for ``legation.publish.approvals.v1`` (the
notifier tells the people holding the step's role).

A variant in review waits at the step after the ones it passed; one request covers every
variant of the post waiting at the same step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from legation.events.v1 import publish_pb2
from legation_core.ids import stable_id

A = publish_pb2.ApprovalState


def waiting_steps(
    post: publish_pb2.PostState | None, steps: Sequence[tuple[str, str]]
) -> dict[str, tuple[str, list[str]]]:
    """Step name → (role, languages waiting at it) for ``post`` under ``steps`` (name, role
    pairs in order)."""
    waiting: dict[str, tuple[str, list[str]]] = {}
    if post is None:
        return waiting
    for variant in post.variants:
        if variant.status != publish_pb2.POST_STATUS_IN_REVIEW:
            continue
        if len(variant.approvals) >= len(steps):
            continue
        name, role = steps[len(variant.approvals)]
        waiting.setdefault(name, (role, []))[1].append(variant.language)
    return waiting


def approval_changes(
    before: publish_pb2.PostState | None,
    after: publish_pb2.PostState,
    steps: Sequence[tuple[str, str]],
) -> list[publish_pb2.ApprovalRequest]:
    """The requests ``after`` opens (a step gains waiting variants) and closes (a step has
    none left: approved when the change was an approval, rejected when changes were
    requested, withdrawn otherwise)."""
    was = waiting_steps(before, steps)
    now = waiting_steps(after, steps)
    transition = after.transition
    title = after.variants[0].title if after.variants else ""
    changes = []
    for name, (role, languages) in now.items():
        if set(languages) <= set(was.get(name, ("", []))[1]):
            continue
        changes.append(_request(after, name, role, languages, A.APPROVAL_STATE_AWAITING, title))
    for name, (role, languages) in was.items():
        if name in now:
            continue
        if transition.action == "approve":
            state = A.APPROVAL_STATE_APPROVED
        elif transition.action == "request_changes":
            state = A.APPROVAL_STATE_REJECTED
        else:
            state = A.APPROVAL_STATE_WITHDRAWN
        request = _request(after, name, role, languages, state, title)
        request.decided_by = transition.user
        changes.append(request)
    return changes


def _request(
    post: publish_pb2.PostState,
    step: str,
    role: str,
    languages: list[str],
    state: publish_pb2.ApprovalState.ValueType,
    title: str,
) -> publish_pb2.ApprovalRequest:
    transition = post.transition
    request = publish_pb2.ApprovalRequest(
        request_id=stable_id("post-approval", post.post_id, step, str(post.version), str(state)),
        subject="post",
        subject_id=post.post_id,
        languages=languages,
        step=step,
        role=role,
        state=state,
        requested_by=post.created_by if state != A.APPROVAL_STATE_AWAITING else transition.user,
        title=title[:300],
        comment=transition.comment[:1000],
    )
    if transition.HasField("at"):
        request.at.CopyFrom(transition.at)
    elif post.HasField("updated_at"):
        request.at.FromDatetime(post.updated_at.ToDatetime(tzinfo=UTC))
    return request
