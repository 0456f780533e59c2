"""Roles, the caller of the current RPC and its trace id, and the refusals a servicer raises
(:func:`require_role`); the metadata names a call carries."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import dataclass

from legation_core.calls import AccessDenied

# The roles the services' policies use (a users file may only name these).
VIEWER = "viewer"  # reads every API
ANALYST = "analyst"  # tracks issues (listener), creates campaigns (evaluator)
EDITOR = "editor"  # drafts posts (publisher)
APPROVER = "approver"  # approves posts (publisher)
PUBLISHER = "publisher"  # publishes posts (publisher)
OFFICER = "officer"  # works the engagement inbox (engager)
ADMIN = "admin"  # may call every RPC
ROLES = frozenset({VIEWER, ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER, ADMIN})

TRACE_METADATA = "x-trace-id"
# A delegate's call on behalf of a person (legation_core.auth's docstring, "Delegation").
ON_BEHALF_OF_METADATA = "x-on-behalf-of"
ON_BEHALF_OF_ROLES_METADATA = "x-on-behalf-of-roles"
ON_BEHALF_OF_UNITS_METADATA = "x-on-behalf-of-units"


class AuthError(Exception):
    """The users file or a policy is unusable; the message says where."""


class NotAuthenticated(RuntimeError):
    """:func:`current_caller` was called outside an authenticated RPC."""


@dataclass(frozen=True)
class Caller:
    """The authenticated user of the current RPC and their roles; for a call a delegate
    made on a person's behalf, the person, their roles and units, and the delegate (``via``)."""

    user: str
    roles: frozenset[str]
    units: frozenset[str] = frozenset()
    via: str = ""

    def has_any(self, roles: Iterable[str]) -> bool:
        """True when the caller holds one of ``roles`` or is an admin."""
        return ADMIN in self.roles or not self.roles.isdisjoint(roles)


_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("legation_caller")
_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("legation_trace_id")


def current_caller() -> Caller:
    """The caller of the RPC being served; raises :class:`NotAuthenticated` outside one."""
    try:
        return _caller.get()
    except LookupError:
        raise NotAuthenticated("no authenticated caller: not inside a gRPC call") from None


def current_trace_id() -> str:
    """The trace id of the RPC being served (the caller's ``x-trace-id`` metadata or a new
    one), so the events a command produces can carry it; empty outside an RPC."""
    return _trace_id.get("")


class RoleRequired(AccessDenied):
    """:func:`require_role` refused: audited as a denial (``DENIED``), as the policy's own
    refusals are. A plain :class:`AccessDenied` from domain rules (a four-eyes check, say) is
    a command that failed (``FAILED``, ``PERMISSION_DENIED``)."""


def require_role(caller: Caller, *roles: str) -> None:
    """Raises :class:`RoleRequired` unless ``caller`` holds one of ``roles`` (or admin)."""
    if not caller.has_any(roles):
        raise RoleRequired(
            f"{caller.user} needs the role {' or '.join(sorted(roles))} "
            f"(has {', '.join(sorted(caller.roles)) or 'none'})"
        )
