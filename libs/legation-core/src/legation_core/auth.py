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
4. **Delegation.** A user whose entry lists ``delegate_roles`` (the console, a
   backend-for-frontend) may call *on behalf of* a person it signed in: it sends
   ``x-on-behalf-of`` (the person), ``x-on-behalf-of-roles`` and ``x-on-behalf-of-units``
   (comma-separated) with its own credentials. The call then runs as that person with those
   roles (each one the delegate may assert), the policy is checked against them, and the
   audit names the person and the delegate (``via``). The metadata from anyone else is
   refused (``PERMISSION_DENIED``), never silently ignored. See :func:`on_behalf_of`.

Inside an RPC, :func:`current_caller` says who is calling; :func:`require_role` refuses a
finer-grained action (for example one approval step) from inside a servicer, and the
interceptor turns it into ``PERMISSION_DENIED`` and audits it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import grpc
import yaml
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from pydantic import AfterValidator, ConfigDict, Field, model_validator

from legation_core.calls import AccessDenied as AccessDenied
from legation_core.calls import CallError, serving, status_of, unavailable_errors
from legation_core.config import (
    ConfigFileError,
    ConfigModel,
    Location,
    at,
    expect,
    problem,
    read_config_file,
    validate_document,
)
from legation_core.consumer import TransientError
from legation_core.ids import new_trace_id
from legation_core.limits import LimitError, check_request, compile_service

log = logging.getLogger(__name__)

# grpc's classes are generic only in its type stubs.
if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    _UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStreamClientInterceptor = grpc.UnaryStreamClientInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor
    _UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor
    _UnaryStreamClientInterceptor = grpc.UnaryStreamClientInterceptor

# The roles the services' policies use (a users file may only name these).
VIEWER = "viewer"  # reads every API
ANALYST = "analyst"  # tracks issues (listener), creates campaigns (evaluator)
EDITOR = "editor"  # drafts posts (publisher)
APPROVER = "approver"  # approves posts (publisher)
PUBLISHER = "publisher"  # publishes posts (publisher)
OFFICER = "officer"  # works the engagement inbox (engager)
ADMIN = "admin"  # may call every RPC
ROLES = frozenset({VIEWER, ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER, ADMIN})

# Services every caller may use without credentials: probes and tooling need them.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

TRACE_METADATA = "x-trace-id"
# A delegate's call on behalf of a person (see the module docstring, "Delegation").
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


# --- policies -----------------------------------------------------------------------------


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


# --- the users file -----------------------------------------------------------------------

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a users file stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    """A new random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class User:
    """One entry of the users file."""

    name: str
    roles: frozenset[str]
    token_hashes: tuple[bytes, ...] = ()
    certificate_names: frozenset[str] = frozenset()
    # The roles this user may assert for the people it calls on behalf of (a delegate).
    delegate_roles: frozenset[str] = frozenset()

    def caller(self) -> Caller:
        return Caller(self.name, self.roles)


@dataclass(frozen=True)
class Directory:
    """The users and how to recognise them."""

    users: tuple[User, ...]

    def delegate_roles(self, name: str) -> frozenset[str]:
        """The roles user ``name`` may assert on behalf of people (empty: not a delegate)."""
        for user in self.users:
            if user.name == name:
                return user.delegate_roles
        return frozenset()

    def by_token(self, token: str) -> Caller | None:
        """The user whose token hashes to ``token``'s hash. Every stored hash is compared in
        constant time and the loop never stops early, so timing tells nothing."""
        digest = hashlib.sha256(token.encode()).digest()
        found: User | None = None
        for user in self.users:
            for stored in user.token_hashes:
                if hmac.compare_digest(digest, stored) and found is None:
                    found = user
        return found.caller() if found is not None else None

    def by_certificate(self, names: Iterable[str]) -> Caller | None:
        """The user one of whose ``certificate_names`` is a verified client certificate's
        identity (its subject alternative names, or its common name when it has none)."""
        presented = set(names)
        for user in self.users:
            if not user.certificate_names.isdisjoint(presented):
                return user.caller()
        return None


def _known_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise problem(f"unknown roles {', '.join(unknown)} (known: {', '.join(sorted(ROLES))})")
    return roles


_Names = Annotated[
    list[Annotated[str, Field(min_length=1)]],
    expect("expected a list of non-empty strings (got {got})", types=True, items=True),
]
_Roles = Annotated[
    _Names,
    Field(json_schema_extra={"items": {"enum": sorted(ROLES)}}),
    AfterValidator(_known_roles),
]


class _UserEntry(ConfigModel):
    """One user allowed to call the gRPC APIs: a token hash or a certificate name (or
    both) identify them."""

    name: Annotated[
        str,
        Field(pattern=_NAME.pattern, description="unique"),
        expect("expected 1-128 letters, digits or ._@- (got {got})", types=True),
    ]
    roles: _Roles
    token_sha256: Annotated[
        list[Annotated[str, Field(pattern=_SHA256_HEX.pattern)]],
        Field(description="SHA-256 hex of each valid bearer token (never the token)"),
        expect(
            "expected 64 lowercase hex digits, the SHA-256 of a token (never the token itself)",
            types="expected a list of non-empty strings (got {got})",
            items=True,
        ),
    ] = []
    certificate_names: Annotated[
        _Names, Field(description="client certificate identities (SAN DNS/URI, or CN)")
    ] = []
    delegate_roles: Annotated[
        _Roles, Field(description="the roles it may assert for the people it calls for")
    ] = []

    @classmethod
    def document_problems(cls, data: Mapping[Any, Any]) -> list[tuple[Location, str]]:
        known = set(cls.known_keys())
        unknown = sorted(str(key) for key in data if key not in known)
        return [((), f"unknown keys {', '.join(unknown)}")] if unknown else []

    @model_validator(mode="after")
    def _identified(self) -> _UserEntry:
        if not self.token_sha256 and not self.certificate_names:
            raise problem(f"{self.name} has neither token_sha256 nor certificate_names")
        return self

    def user(self) -> User:
        return User(
            name=self.name,
            roles=frozenset(self.roles),
            token_hashes=tuple(bytes.fromhex(digest) for digest in self.token_sha256),
            certificate_names=frozenset(self.certificate_names),
            delegate_roles=frozenset(self.delegate_roles),
        )


class _UsersFile(ConfigModel):
    """The users file (LEGATION_AUTH_USERS_FILE): who may call the gRPC APIs."""

    model_config = ConfigDict(title="Legation users file")
    document = "a mapping with a 'users' list"
    unknown_key = "is not a users file field ({known})"
    users: list[_UserEntry]

    @model_validator(mode="after")
    def _each_once(self) -> _UsersFile:
        seen: dict[str, set[str]] = {"name": set(), "token_sha256": set(), "certs": set()}
        twice: list[tuple[Location, str]] = []
        for position, entry in enumerate(self.users):
            if entry.name in seen["name"]:
                twice.append((("users", position, "name"), f"{entry.name} appears twice"))
            seen["name"].add(entry.name)
            for digest in entry.token_sha256:
                if digest in seen["token_sha256"]:
                    where = ("users", position, "token_sha256")
                    twice.append((where, "a token hash appears twice"))
                seen["token_sha256"].add(digest)
            for certificate in entry.certificate_names:
                if certificate in seen["certs"]:
                    where = ("users", position, "certificate_names")
                    twice.append((where, f"{certificate} appears twice"))
                seen["certs"].add(certificate)
        if twice:
            raise at(twice)
        return self


#: The model of the users file, for its JSON Schema.
USERS_FILE_MODEL: type[ConfigModel] = _UsersFile


def _users_file(raw: Any, origin: str) -> _UsersFile:
    def refused(problems: list[str]) -> AuthError:
        return AuthError(f"{origin}: {'; '.join(problems)}")

    return validate_document(_UsersFile, raw, error=refused)


def parse_users(raw: Any, origin: str) -> Directory:
    """Validates a parsed users file; errors name ``origin`` and every bad field.

    The format::

        users:
          - name: ana                # unique
            roles: [editor, viewer]  # from ROLES
            token_sha256:            # SHA-256 hex of each valid bearer token (never the token)
              - 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
            certificate_names:       # client certificate identities (SAN DNS/URI, or CN)
              - ana.ministry.example
          - name: console            # a delegate: calls on behalf of the people it signs in
            roles: []                # none of its own
            delegate_roles: [viewer, analyst, editor, approver, publisher, officer]
            certificate_names: [console.legation.svc]
    """
    return Directory(tuple(entry.user() for entry in _users_file(raw, origin).users))


def load_users(path: Path) -> Directory:
    """Reads and validates the users file at ``path`` (see :func:`parse_users`)."""
    try:
        raw = read_config_file(path, "the users file")
    except ConfigFileError as error:
        raise AuthError(str(error)) from None
    return parse_users(raw, str(path))


def users_yaml(users: Sequence[Mapping[str, Any]]) -> str:
    """A users file's text for ``users`` (dicts with name, roles, token_sha256 and/or
    certificate_names), checked as :func:`parse_users` checks a file (AuthError); tools
    that mint tokens write files with it."""
    checked = _users_file({"users": [dict(user) for user in users]}, "users")
    entries = [entry.model_dump(exclude_defaults=True) for entry in checked.users]
    return yaml.safe_dump({"users": entries}, sort_keys=False)


# --- audit --------------------------------------------------------------------------------


class Outcome(Enum):
    GRANTED = "granted"  # a command that completed
    DENIED = "denied"  # refused: no or unknown credentials, or a missing role
    FAILED = "failed"  # allowed, but the call ended with an error status


@dataclass(frozen=True)
class AuditEvent:
    """One audited call: a command, or any denied call."""

    service: str
    method: str  # the full gRPC method, /package.Service/Method
    user: str  # empty when the caller could not be identified
    roles: frozenset[str]
    outcome: Outcome
    status: grpc.StatusCode
    detail: str
    peer: str
    authenticated_by: str  # token, certificate, disabled or "" (none)
    resource_ids: Mapping[str, str]
    trace_id: str
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    via: str = ""  # the delegate (the console) that called on the user's behalf
    units: frozenset[str] = frozenset()  # the person's units, as the delegate asserted them


AuditSink = Callable[[AuditEvent], None]


# Longest id value an audit record keeps (ids are at most 128 characters; a request refused
# for a longer one must still be audited within Kafka's record size).
MAX_AUDITED_ID = 128


def resource_ids(request: Any) -> dict[str, str]:
    """The request's top-level ``*_id`` string fields that are set: what the call acted on
    (each cut to :data:`MAX_AUDITED_ID` characters)."""
    if not isinstance(request, Message):
        return {}
    found: dict[str, str] = {}
    for descriptor, value in request.ListFields():
        if descriptor.name.endswith("_id") and isinstance(value, str) and value:
            found[descriptor.name] = value[:MAX_AUDITED_ID]
    return found


# --- the interceptor ----------------------------------------------------------------------

ANONYMOUS = Caller("anonymous", frozenset({ADMIN}))


@dataclass(frozen=True)
class _Identity:
    caller: Caller
    authenticated_by: str
    refused: str = ""  # why on-behalf-of metadata was not accepted from this caller


def on_behalf_of(
    direct: Caller, delegate_roles: frozenset[str], metadata: Iterable[tuple[str, str | bytes]]
) -> tuple[Caller, str]:
    """The caller a call runs as, and why it is refused ("" when it is not).

    Without ``x-on-behalf-of`` metadata that is ``direct``. With it, ``direct`` must be a
    delegate (``delegate_roles`` not empty, from the users file) that may assert every role
    in ``x-on-behalf-of-roles``; the call then runs as the person it names, with those roles
    and the units of ``x-on-behalf-of-units``, ``via`` the delegate."""
    values: dict[str, str] = {}
    for key, value in metadata:
        name = key.lower()
        if name.startswith(ON_BEHALF_OF_METADATA) and isinstance(value, str):
            values[name] = value
    if ON_BEHALF_OF_METADATA not in values:
        return direct, ""
    if not delegate_roles:
        return direct, (
            f"{direct.user} may not call on behalf of others (no delegate_roles in the users file)"
        )
    person = values[ON_BEHALF_OF_METADATA].strip()
    roles = _csv(values.get(ON_BEHALF_OF_ROLES_METADATA, ""))
    units = _csv(values.get(ON_BEHALF_OF_UNITS_METADATA, ""))
    if not _NAME.match(person):
        return direct, f"{ON_BEHALF_OF_METADATA}: expected 1-128 letters, digits or ._@-"
    bad = [unit for unit in units if not _NAME.match(unit)]
    if bad or len(units) > 64:
        return direct, f"{ON_BEHALF_OF_UNITS_METADATA}: at most 64 names of letters, digits or ._@-"
    not_allowed = sorted(roles - delegate_roles)
    if not_allowed:
        return direct, f"{direct.user} may not assert the roles {', '.join(not_allowed)}"
    return Caller(person, roles, units, via=direct.user), ""


def _csv(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class AuthInterceptor(_ServerInterceptor):
    """Authenticates, authorizes, checks the limits of and audits every call except health
    and reflection, and maps the exceptions servicers leave unmapped (see the module
    docstring).

    ``directory`` None means authentication is disabled: every call runs as the user
    ``anonymous`` with the admin role (still audited). Policies cover the services served;
    a call to a method without a rule is denied. The request limits of every policy's
    service are compiled here, so a misconfigured annotation stops the service at start-up
    (:class:`~legation_core.limits.LimitsMisconfigured`).
    """

    def __init__(
        self,
        directory: Directory | None,
        policies: Iterable[Policy],
        audit: AuditSink | None = None,
    ) -> None:
        self.directory = directory
        self.policies = {policy.service: policy for policy in policies}
        self.audit = audit
        for service in self.policies:
            # An unknown service is check_policy's to report, where it matters.
            with contextlib.suppress(KeyError):
                compile_service(service)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        service, _, name = method.lstrip("/").partition("/")
        if handler is None or service in OPEN_SERVICES:
            return handler
        policy = self.policies.get(service)
        rule = policy.rule_for(name) if policy is not None else None
        return _wrap(handler, _Call(self, service, method, rule))

    def identify(self, context: grpc.ServicerContext) -> _Identity | None:
        """The caller from the bearer token, else from the verified client certificate; a
        delegate's call runs as the person it names (:func:`on_behalf_of`)."""
        identity = self._direct(context)
        if identity is None:
            return None
        if self.directory is None:  # authentication off: any caller may name a person
            delegate_roles = ROLES
        else:
            delegate_roles = self.directory.delegate_roles(identity.caller.user)
        caller, refused = on_behalf_of(
            identity.caller, delegate_roles, context.invocation_metadata() or ()
        )
        return _Identity(caller, identity.authenticated_by, refused)

    def _direct(self, context: grpc.ServicerContext) -> _Identity | None:
        if self.directory is None:
            return _Identity(ANONYMOUS, "disabled")
        token = bearer_token(context.invocation_metadata() or ())
        if token is not None:
            caller = self.directory.by_token(token)
            return _Identity(caller, "token") if caller is not None else None
        names = [identity.decode() for identity in context.peer_identities() or ()]
        if names:
            caller = self.directory.by_certificate(names)
            if caller is not None:
                return _Identity(caller, "certificate")
        return None

    def emit(self, event: AuditEvent) -> None:
        """Logs the event and hands it to the sink; a failing sink never fails the call."""
        log.info(
            "audit",
            extra={
                "audit_user": event.user,
                "audit_via": event.via,
                "audit_method": event.method,
                "audit_outcome": event.outcome.value,
                "audit_status": event.status.name,
                "audit_peer": event.peer,
                "trace_id": event.trace_id,
            },
        )
        if self.audit is None:
            return
        try:
            self.audit(event)
        except Exception:
            log.exception("audit event not sent", extra={"audit_method": event.method})


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` metadata entry, if any."""
    for key, value in metadata:
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _metadata_value(context: grpc.ServicerContext, key: str) -> str:
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value[:128]
    return ""


@dataclass(frozen=True)
class _Call:
    """The checks around one method's behaviour."""

    interceptor: AuthInterceptor
    service: str
    method: str
    rule: Rule | None

    def event(
        self,
        context: grpc.ServicerContext,
        request: Any,
        identity: _Identity | None,
        outcome: Outcome,
        status: grpc.StatusCode,
        detail: str,
        trace_id: str,
    ) -> AuditEvent:
        caller = identity.caller if identity is not None else None
        return AuditEvent(
            service=self.service,
            method=self.method,
            user=caller.user if caller is not None else "",
            roles=caller.roles if caller is not None else frozenset(),
            outcome=outcome,
            status=status,
            detail=detail,
            peer=context.peer() or "",
            authenticated_by=identity.authenticated_by if identity is not None else "",
            resource_ids=resource_ids(request),
            trace_id=trace_id,
            via=caller.via if caller is not None else "",
            units=caller.units if caller is not None else frozenset(),
        )

    def deny(
        self,
        context: grpc.ServicerContext,
        request: Any,
        identity: _Identity | None,
        status: grpc.StatusCode,
        detail: str,
        trace_id: str,
    ) -> None:
        self.interceptor.emit(
            self.event(context, request, identity, Outcome.DENIED, status, detail, trace_id)
        )
        context.abort(status, detail)

    def admit(self, request: Any, context: grpc.ServicerContext) -> tuple[_Identity, str]:
        """Authenticates and authorizes, or aborts the call (after auditing the denial)."""
        trace_id = _metadata_value(context, TRACE_METADATA) or new_trace_id()
        identity = self.interceptor.identify(context)
        if identity is None:
            self.deny(
                context,
                request,
                None,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or unknown credentials: send 'authorization: Bearer <token>' "
                "metadata or a client certificate known to the users file",
                trace_id,
            )
            raise AssertionError("unreachable")  # abort raises
        if identity.refused:
            self.deny(
                context,
                request,
                identity,
                grpc.StatusCode.PERMISSION_DENIED,
                identity.refused,
                trace_id,
            )
        if self.rule is None:
            self.deny(
                context,
                request,
                identity,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{self.method} has no access rule, so nobody may call it",
                trace_id,
            )
        elif not identity.caller.has_any(self.rule.roles):
            self.deny(
                context,
                request,
                identity,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{self.method} needs the role {' or '.join(sorted(self.rule.roles))}; "
                f"{identity.caller.user} has {', '.join(sorted(identity.caller.roles)) or 'none'}",
                trace_id,
            )
        return identity, trace_id

    def check(self, request: Any, context: grpc.ServicerContext) -> None:
        """Aborts with INVALID_ARGUMENT naming the field when ``request`` breaks a limit of
        its proto (unknown fields are dropped)."""
        if not isinstance(request, Message):
            return
        try:
            check_request(request)
        except LimitError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))

    def unexpected(self, context: grpc.ServicerContext, error: Exception, trace_id: str) -> None:
        """Answers an exception that escaped the servicer with :func:`answer`; a servicer's
        own abort and :class:`RoleRequired` (answered and audited by :meth:`finish`) pass."""
        if _status_of(context) not in (None, grpc.StatusCode.OK):
            return  # the servicer aborted
        if isinstance(error, RoleRequired):
            return
        context.abort(*answer(error, self.method, trace_id))

    def finish(
        self,
        context: grpc.ServicerContext,
        request: Any,
        identity: _Identity,
        trace_id: str,
        error: BaseException | None,
    ) -> None:
        """Audits how an admitted call ended: every command, and any RoleRequired."""
        if isinstance(error, RoleRequired):
            self.deny(
                context, request, identity, grpc.StatusCode.PERMISSION_DENIED, str(error), trace_id
            )
        assert self.rule is not None
        if not self.rule.command:
            return
        code = _status_of(context)
        if error is not None and code in (None, grpc.StatusCode.OK):
            code = grpc.StatusCode.UNKNOWN  # an exception the servicer did not map
        code = code or grpc.StatusCode.OK
        outcome = Outcome.GRANTED if code == grpc.StatusCode.OK else Outcome.FAILED
        detail = _details_of(context) if outcome is Outcome.FAILED else ""
        self.interceptor.emit(
            self.event(context, request, identity, outcome, code, detail, trace_id)
        )


def answer(error: Exception, method: str, trace_id: str) -> tuple[grpc.StatusCode, str]:
    """The status and message that end a call ``error`` escaped from: a
    :class:`~legation_core.calls.CallError` its status from the one table
    (:data:`legation_core.calls.STATUS`) and its own message; a dependency down
    (:class:`~legation_core.consumer.TransientError` or a type given to
    :func:`~legation_core.calls.treat_as_unavailable`) UNAVAILABLE and a generic message;
    anything else INTERNAL and a generic message naming the trace id, the stack logged under
    it (the exception's text may hold internals: paths, hosts)."""
    if isinstance(error, CallError):
        return grpc.StatusCode[status_of(error)], str(error)
    context = {"grpc_method": method, "trace_id": trace_id}
    if isinstance(error, (TransientError, *unavailable_errors())):
        log.warning("a dependency of a gRPC call is unavailable", exc_info=error, extra=context)
        return (
            grpc.StatusCode.UNAVAILABLE,
            f"temporarily unavailable, retry; reference {trace_id}",
        )
    log.error("unexpected error in a gRPC call", exc_info=error, extra=context)
    return grpc.StatusCode.INTERNAL, f"internal error; reference {trace_id}"


# code() and details() exist on the server's context since gRPC 1.38; the stubs lack them.
def _status_of(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    code = getattr(context, "code", lambda: None)()
    return code if isinstance(code, grpc.StatusCode) else None


def _details_of(context: grpc.ServicerContext) -> str:
    details = getattr(context, "details", lambda: "")()
    if isinstance(details, bytes):
        return details.decode(errors="replace")
    return str(details or "")


def _wrap(handler: grpc.RpcMethodHandler[Any, Any], call: _Call) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with its behaviour run inside :meth:`_Call.admit` / :meth:`_Call.finish`
    and the caller set for :func:`current_caller`."""

    def unary(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            identity, trace_id = call.admit(request, context)
            caller_token = _caller.set(identity.caller)
            trace_token = _trace_id.set(trace_id)
            error: BaseException | None = None
            try:
                with serving(context):
                    if isinstance(request, Message):
                        call.check(request, context)
                    else:  # a stream of requests: each is checked as it comes
                        request = _checked(request, call, context)
                    try:
                        return behavior(request, context)
                    except Exception as raised:
                        call.unexpected(context, raised, trace_id)
                        raise
            except BaseException as raised:
                error = raised
                raise
            finally:
                _trace_id.reset(trace_token)
                _caller.reset(caller_token)
                call.finish(context, request, identity, trace_id, error)

        return run

    def streaming(
        behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
    ) -> Callable[..., Iterator[Any]]:
        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            identity, trace_id = call.admit(request, context)
            error: BaseException | None = None
            try:
                if isinstance(request, Message):
                    call.check(request, context)
                else:
                    request = _checked(request, call, context)
                responses: Iterator[Any] | None = None
                while True:
                    # The caller is set around each step: a generator runs in whatever
                    # context pulls from it.
                    caller_token = _caller.set(identity.caller)
                    trace_token = _trace_id.set(trace_id)
                    try:
                        with serving(context):
                            if responses is None:
                                responses = iter(behavior(request, context))
                            response = next(responses)
                    except StopIteration:
                        return
                    except Exception as raised:
                        call.unexpected(context, raised, trace_id)
                        raise
                    finally:
                        _trace_id.reset(trace_token)
                        _caller.reset(caller_token)
                    yield response
            except BaseException as raised:
                error = raised
                raise
            finally:
                call.finish(context, request, identity, trace_id, error)

        return run

    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **options)
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **options)


def _checked(requests: Iterator[Any], call: _Call, context: grpc.ServicerContext) -> Iterator[Any]:
    """A client stream whose every request is checked against its limits as it arrives."""
    for request in requests:
        call.check(request, context)
        yield request


def token_metadata(token: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying ``token``, for ``stub.Method(request, metadata=...)``."""
    return (("authorization", f"Bearer {token}"),)


class _BearerInterceptor(_UnaryUnaryClientInterceptor, _UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self.metadata = token_metadata(token)

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), *self.metadata),
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._with_token(details), request)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(
        self,
        method: str,
        timeout: float | None,
        metadata: tuple[tuple[str, str | bytes], ...],
        credentials: grpc.CallCredentials | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | None,
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def with_token(channel: grpc.Channel, token: str) -> grpc.Channel:
    """``channel`` sending ``authorization: Bearer <token>`` on every call (works on insecure
    channels too, unlike call credentials): what clients and tests use."""
    return grpc.intercept_channel(channel, _BearerInterceptor(token))
