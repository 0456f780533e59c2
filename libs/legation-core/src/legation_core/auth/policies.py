"""Policies: which roles may call each RPC method of a service, and the check that a
service's policy covers exactly its methods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf import descriptor_pool

from legation_core.auth.caller import ROLES, VIEWER, AuthError

# Services every caller may use without credentials: probes and tooling need them.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


@dataclass(frozen=True)
class Rule:
    """Who may call one RPC method; commands are audited on every call, reads only when
    denied."""

    roles: frozenset[str]
    command: bool


def reads(*roles: str) -> Rule:
    """A read: ``viewer`` plus ``roles`` may call it."""
    return Rule(frozenset({VIEWER, *roles}), command=False)


def command(*roles: str) -> Rule:
    """A command (it changes something): only ``roles`` may call it, and it is audited."""
    if not roles:
        raise AuthError("a command needs at least one role")
    return Rule(frozenset(roles), command=True)


@dataclass(frozen=True)
class Policy:
    """The rules of one gRPC service: method name (``CreatePost``) → :class:`Rule`."""

    service: str
    rules: Mapping[str, Rule]

    def rule_for(self, method: str) -> Rule | None:
        return self.rules.get(method)


def check_policy(policy: Policy) -> None:
    """Raises :class:`AuthError` unless ``policy`` has a rule for exactly the methods of its
    service (from the generated descriptors, so a new RPC without a rule stops the service
    from starting) and names only known roles."""
    try:
        service = descriptor_pool.Default().FindServiceByName(policy.service)
    except KeyError:
        raise AuthError(
            f"policy for unknown gRPC service {policy.service} (not defined, or its generated "
            "module is not imported yet)"
        ) from None
    methods = {method.name for method in service.methods}
    missing = sorted(methods - set(policy.rules))
    unknown = sorted(set(policy.rules) - methods)
    problems = []
    if missing:
        problems.append(f"no access rule for {', '.join(missing)}")
    if unknown:
        problems.append(f"rules for methods it does not have: {', '.join(unknown)}")
    for method, rule in sorted(policy.rules.items()):
        bad = sorted(rule.roles - ROLES)
        if bad:
            problems.append(f"{method} names unknown roles {', '.join(bad)}")
    if problems:
        raise AuthError(f"access policy of {policy.service}: " + "; ".join(problems))
