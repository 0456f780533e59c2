"""Who calls a gRPC API, and what they may do: identity, roles, policies and the interceptor.

Every service's gRPC server runs :class:`AuthInterceptor` (installed by
:func:`legation_core.grpc_server.build_server`), so no service checks credentials itself:

1. **Identity.** A call carries ``authorization: Bearer <token>`` metadata, or arrives over
   mutual TLS with a client certificate. Both map to a user in the *users file*
   (``LEGATION_AUTH_USERS_FILE``, see :func:`load_users`; a pydantic model, its JSON Schema
   from ``make config-schemas``), which holds only SHA-256 hashes of tokens. A bearer token
   wins over the certificate, so a gateway holding a certificate can act for the user whose
   token it forwards. No or unknown credentials: ``UNAUTHENTICATED``.
2. **Authorization.** Each service declares a :class:`Policy`: every RPC method maps to a
   :class:`Rule` naming the roles allowed and whether it is a read or a command. A method
   without a rule is denied (and :func:`check_policy` makes a service refuse to start when its
   API has one), a caller without a listed role gets ``PERMISSION_DENIED`` naming the roles
   needed. ``admin`` may call everything. Health and reflection stay open.
3. **Limits.** The request is checked against the limits its proto declares
   (:mod:`legation_core.limits`) before the servicer runs: ``INVALID_ARGUMENT`` naming the
   field path and the limit.
4. **Errors.** Servicers map no errors: a :class:`~legation_core.calls.CallError` (every
   service's domain errors subclass one: invalid argument, not found, conflict, ...; a
   record too large for Kafka, a caller gone) ends the call with the status the one table
   gives its class and its own message; a dependency that is down (Kafka, the index) with
   ``UNAVAILABLE`` and a generic message; any other exception with ``INTERNAL`` and a
   generic message carrying the trace id (the stack is logged under it), never the
   exception's text (:func:`answer`).
5. **Audit.** Every command and every denial is handed to an :class:`AuditSink` (the runtime
   sends it as an ``AuditRecord`` event to ``legation.audit.v1``).
6. **Delegation.** A user whose entry lists ``delegate_roles`` (the console, a
   backend-for-frontend) may call *on behalf of* a person it signed in: it sends
   ``x-on-behalf-of`` (the person), ``x-on-behalf-of-roles`` and ``x-on-behalf-of-units``
   (comma-separated) with its own credentials. The call then runs as that person with those
   roles (each one the delegate may assert), the policy is checked against them, and the
   audit names the person and the delegate (``via``). The metadata from anyone else is
   refused (``PERMISSION_DENIED``), never silently ignored. See :func:`on_behalf_of`.

Inside an RPC, :func:`current_caller` says who is calling; :func:`require_role` refuses a
finer-grained action (for example one approval step) from inside a servicer, and the
interceptor turns it into ``PERMISSION_DENIED`` and audits it.

One module per part, their public names all here: ``caller`` (roles, :class:`Caller`,
:func:`current_caller`, :func:`require_role`, the metadata names), ``policies``
(:class:`Policy`, :func:`reads`, :func:`command`, :func:`check_policy`), ``users`` (the users
file's models, :class:`Directory`, :func:`load_users`, token hashing), ``audit``
(:class:`AuditEvent`), ``server`` (:class:`AuthInterceptor`, :func:`answer`,
:func:`on_behalf_of`), ``client`` (:func:`with_token`, :func:`token_metadata`).
"""

from __future__ import annotations

from legation_core.auth.audit import MAX_AUDITED_ID, AuditEvent, AuditSink, Outcome, resource_ids
from legation_core.auth.caller import (
    ADMIN,
    ANALYST,
    APPROVER,
    EDITOR,
    OFFICER,
    ON_BEHALF_OF_METADATA,
    ON_BEHALF_OF_ROLES_METADATA,
    ON_BEHALF_OF_UNITS_METADATA,
    PUBLISHER,
    ROLES,
    TRACE_METADATA,
    VIEWER,
    AuthError,
    Caller,
    NotAuthenticated,
    RoleRequired,
    current_caller,
    current_trace_id,
    require_role,
)
from legation_core.auth.client import token_metadata, with_token
from legation_core.auth.policies import OPEN_SERVICES, Policy, Rule, check_policy, command, reads
from legation_core.auth.server import ANONYMOUS, AuthInterceptor, answer, bearer_token, on_behalf_of
from legation_core.auth.users import (
    USERS_FILE_MODEL,
    Directory,
    User,
    generate_token,
    hash_token,
    load_users,
    parse_users,
    users_yaml,
)
from legation_core.calls import AccessDenied

__all__ = [
    "ADMIN",
    "ANALYST",
    "ANONYMOUS",
    "APPROVER",
    "EDITOR",
    "MAX_AUDITED_ID",
    "OFFICER",
    "ON_BEHALF_OF_METADATA",
    "ON_BEHALF_OF_ROLES_METADATA",
    "ON_BEHALF_OF_UNITS_METADATA",
    "OPEN_SERVICES",
    "PUBLISHER",
    "ROLES",
    "TRACE_METADATA",
    "USERS_FILE_MODEL",
    "VIEWER",
    "AccessDenied",
    "AuditEvent",
    "AuditSink",
    "AuthError",
    "AuthInterceptor",
    "Caller",
    "Directory",
    "NotAuthenticated",
    "Outcome",
    "Policy",
    "RoleRequired",
    "Rule",
    "User",
    "answer",
    "bearer_token",
    "check_policy",
    "command",
    "current_caller",
    "current_trace_id",
    "generate_token",
    "hash_token",
    "load_users",
    "on_behalf_of",
    "parse_users",
    "reads",
    "require_role",
    "resource_ids",
    "token_metadata",
    "users_yaml",
    "with_token",
]
