"""Every service's access policy: a rule for every RPC of its API (a service with an RPC
without one refuses to start), reads open to viewers, each command only to its roles."""

from __future__ import annotations

import pytest

from legation_core.auth import ADMIN, ROLES, VIEWER, Caller, Policy, check_policy
from legation_engager.adapters.policy import POLICY as ENGAGER
from legation_evaluator.adapters.policy import POLICY as EVALUATOR
from legation_listener.adapters.policy import POLICY as LISTENER
from legation_notifier.adapters.policy import POLICY as NOTIFIER
from legation_publisher.adapters.policy import POLICY as PUBLISHER

POLICIES = [LISTENER, PUBLISHER, ENGAGER, EVALUATOR, NOTIFIER]

# One command of each service and the working role that may call it.
COMMANDS = [
    (LISTENER, "TrackIssue", "analyst"),
    (LISTENER, "DeleteIssue", "analyst"),
    (PUBLISHER, "CreatePost", "editor"),  # a draft: editors write, approvers approve
    (PUBLISHER, "Approve", "approver"),
    (PUBLISHER, "Schedule", "publisher"),
    (ENGAGER, "ReplyToConversation", "officer"),
    (EVALUATOR, "CreateCampaign", "analyst"),
    (NOTIFIER, "RetryMessage", "publisher"),
]

# Commands that change only the caller's own things (their inbox's read marks: the servicer
# takes the person from the caller): open to everyone, viewers too, and audited as commands.
OWN_STATE_COMMANDS = {(NOTIFIER.service, "MarkNotificationsRead")}


@pytest.mark.parametrize("policy", POLICIES, ids=lambda policy: policy.service)
def test_every_rpc_has_a_rule_and_reads_are_open_to_viewers(policy: Policy) -> None:
    check_policy(policy)
    viewer = Caller("viv", frozenset({VIEWER}))
    for method, rule in policy.rules.items():
        if (policy.service, method) in OWN_STATE_COMMANDS:
            assert rule.command and viewer.has_any(rule.roles), method
            continue
        assert viewer.has_any(rule.roles) is not rule.command, method


@pytest.mark.parametrize(
    ("policy", "method", "role"), COMMANDS, ids=[f"{m}-{r}" for _, m, r in COMMANDS]
)
def test_a_command_is_for_its_role_and_admin_only(policy: Policy, method: str, role: str) -> None:
    rule = policy.rules[method]
    assert rule.command
    allowed = {name for name in ROLES if Caller("u", frozenset({name})).has_any(rule.roles)}
    assert role in allowed
    assert ADMIN in allowed
    assert VIEWER not in allowed
