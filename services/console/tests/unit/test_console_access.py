"""The console offers an action only to the roles the service's policy grants it to: its
table is checked against the four services' policies, so they cannot drift apart."""

from __future__ import annotations

from legation_console.domain import access
from legation_core.auth import Policy
from legation_engager.adapters.policy import POLICY as ENGAGER
from legation_evaluator.adapters.policy import POLICY as EVALUATOR
from legation_listener.adapters.policy import POLICY as LISTENER
from legation_notifier.adapters.policy import POLICY as NOTIFIER
from legation_publisher.adapters.policy import POLICY as PUBLISHER

POLICIES: dict[str, Policy] = {
    p.service: p for p in (LISTENER, PUBLISHER, ENGAGER, EVALUATOR, NOTIFIER)
}


def test_every_action_has_the_roles_of_its_rpc() -> None:
    for action in access.ACTIONS:
        rule = POLICIES[action.service].rule_for(action.method)
        assert rule is not None, f"{action.service}/{action.method} has no rule"
        assert action.roles == rule.roles, f"{action.method}: {action.roles} != {rule.roles}"


def test_may() -> None:
    assert access.may(frozenset({"analyst"}), access.TRACK_ISSUE)
    assert not access.may(frozenset({"viewer"}), access.TRACK_ISSUE)
    assert access.may(frozenset({"viewer"}), access.LIST_ISSUES)
