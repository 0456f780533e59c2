"""Approval requests: a step starts waiting once, and stops with the right outcome."""

from __future__ import annotations

from legation.events.v1 import publish_pb2
from legation_publisher.domain.approvals import approval_changes

A = publish_pb2.ApprovalState
STEPS = (("policy-desk", "approver"), ("head-of-communications", "chief"))
IN_REVIEW = publish_pb2.POST_STATUS_IN_REVIEW


def post(version: int, action: str, *variants: tuple[str, int, int]) -> publish_pb2.PostState:
    """A post whose variants are (language, status, approvals passed)."""
    state = publish_pb2.PostState(post_id="p1", version=version, created_by="ana")
    for language, status, passed in variants:
        variant = state.variants.add(language=language, status=status, title="Cap matters")
        for step, _ in STEPS[:passed]:
            variant.approvals.add(step=step, user=f"u-{step}")
    state.transition.action = action
    state.transition.user = "someone"
    state.transition.at.FromSeconds(1_800_000_000 + version)
    return state


def summary(changes: list[publish_pb2.ApprovalRequest]) -> list[tuple[str, str, int, list[str]]]:
    return [(c.step, c.role, c.state, list(c.languages)) for c in changes]


def test_submitting_opens_the_first_step_for_every_variant_at_once() -> None:
    draft = post(1, "create", ("en", publish_pb2.POST_STATUS_DRAFT, 0))
    submitted = post(2, "submit", ("en", IN_REVIEW, 0), ("fr", IN_REVIEW, 0))
    assert summary(approval_changes(draft, submitted, STEPS)) == [
        ("policy-desk", "approver", A.APPROVAL_STATE_AWAITING, ["en", "fr"])
    ]
    # A comment changes nothing about who waits: nothing to report.
    commented = post(3, "comment", ("en", IN_REVIEW, 0), ("fr", IN_REVIEW, 0))
    assert approval_changes(submitted, commented, STEPS) == []


def test_approving_closes_a_step_and_opens_the_next_with_its_role() -> None:
    submitted = post(2, "submit", ("en", IN_REVIEW, 0))
    approved = post(3, "approve", ("en", IN_REVIEW, 1))
    changes = approval_changes(submitted, approved, STEPS)
    assert summary(changes) == [
        ("head-of-communications", "chief", A.APPROVAL_STATE_AWAITING, ["en"]),
        ("policy-desk", "approver", A.APPROVAL_STATE_APPROVED, ["en"]),
    ]
    assert changes[1].decided_by == "someone"
    done = post(4, "approve", ("en", publish_pb2.POST_STATUS_APPROVED, 2))
    assert summary(approval_changes(approved, done, STEPS)) == [
        ("head-of-communications", "chief", A.APPROVAL_STATE_APPROVED, ["en"])
    ]


def test_one_variant_approved_while_another_still_waits_keeps_the_step_open() -> None:
    both = post(2, "submit", ("en", IN_REVIEW, 0), ("fr", IN_REVIEW, 0))
    one = post(3, "approve", ("en", IN_REVIEW, 1), ("fr", IN_REVIEW, 0))
    assert summary(approval_changes(both, one, STEPS)) == [
        ("head-of-communications", "chief", A.APPROVAL_STATE_AWAITING, ["en"])
    ]


def test_requesting_changes_rejects_the_waiting_step() -> None:
    waiting = post(2, "submit", ("en", IN_REVIEW, 0))
    sent_back = post(3, "request_changes", ("en", publish_pb2.POST_STATUS_CHANGES_REQUESTED, 0))
    assert summary(approval_changes(waiting, sent_back, STEPS)) == [
        ("policy-desk", "approver", A.APPROVAL_STATE_REJECTED, ["en"])
    ]


def test_ids_are_stable_for_a_redelivered_version() -> None:
    draft = post(1, "create", ("en", publish_pb2.POST_STATUS_DRAFT, 0))
    submitted = post(2, "submit", ("en", IN_REVIEW, 0))
    first = approval_changes(draft, submitted, STEPS)
    assert [c.request_id for c in first] == [
        c.request_id for c in approval_changes(draft, submitted, STEPS)
    ]
