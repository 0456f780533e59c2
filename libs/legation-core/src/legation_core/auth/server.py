"""The server interceptor: authenticates, authorizes, checks the limits of and audits every
call, and answers the exceptions servicers leave unmapped (:func:`answer`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message

from legation_core.auth.audit import AuditEvent, AuditSink, Outcome, resource_ids
from legation_core.auth.caller import (
    ADMIN,
    ON_BEHALF_OF_METADATA,
    ON_BEHALF_OF_ROLES_METADATA,
    ON_BEHALF_OF_UNITS_METADATA,
    ROLES,
    TRACE_METADATA,
    Caller,
    RoleRequired,
    _caller,
    _trace_id,
)
from legation_core.auth.policies import OPEN_SERVICES, Policy, Rule
from legation_core.auth.users import USER_NAME, Directory
from legation_core.calls import CallError, serving, status_of, unavailable_errors
from legation_core.consumer import TransientError
from legation_core.ids import new_trace_id
from legation_core.limits import LimitError, check_request, compile_service

log = logging.getLogger(__name__)

# grpc's classes are generic only in its type stubs.
if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor


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
    if not USER_NAME.match(person):
        return direct, f"{ON_BEHALF_OF_METADATA}: expected 1-128 letters, digits or ._@-"
    bad = [unit for unit in units if not USER_NAME.match(unit)]
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

    return wrapped_handler(handler, unary, streaming)


def wrapped_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    unary: Callable[[Callable[[Any, grpc.ServicerContext], Any]], Callable[..., Any]],
    streaming: Callable[
        [Callable[[Any, grpc.ServicerContext], Iterator[Any]]], Callable[..., Iterator[Any]]
    ],
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` (of any of the four kinds of call) with its behaviour wrapped by
    ``unary`` when the call answers once, by ``streaming`` when it answers a stream (what
    an interceptor does around each call)."""
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
