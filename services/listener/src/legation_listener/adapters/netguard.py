"""Outbound HTTP the listener does on someone else's say-so (feeds, articles, Mastodon
instances, Bluesky AppViews), kept off the listener's own network and bounded in size.

One helper per client library, all built on :func:`guarded_connect`, which resolves the
host, refuses the connection when *any* address it resolves to is not permitted by the
:class:`~legation_listener.domain.addresses.AddressPolicy` (no loopback, private,
link-local, multicast or reserved address unless an operator allows the network), and
connects to the address it checked. The check happens at every connection, redirects
included, so a name that resolves to a public address first and to 127.0.0.1 later (DNS
rebinding) is still refused. Proxies from the environment are not used: a proxy would
resolve the name itself, out of our sight.

- :func:`guarded_transport`: an httpx transport (the feed fetcher, atproto's client);
- :func:`guarded_session`: a requests session (Mastodon.py), which also refuses a response
  body larger than ``max_response_bytes`` (read in chunks, never whole first).

:class:`FetchRefused` (an :class:`OSError`) is what a refusal raises; the client libraries
wrap it in their own errors, and :func:`refusal_in` finds it again so a caller can tell a
refusal (not worth a retry) from a network error.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpcore
import httpx
import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from legation_listener.domain.addresses import AddressPolicy, IPAddress


class FetchRefused(OSError):
    """A fetch the listener refuses to make or finish; the message says why, without the
    addresses involved."""


class AddressRefused(FetchRefused):
    """The host resolves to an address the policy does not permit."""


class ResponseTooLarge(FetchRefused):
    """A response body is larger than the limit."""


def refusal_in(error: BaseException) -> FetchRefused | None:
    """The :class:`FetchRefused` behind ``error`` (itself, or anywhere in its chain of
    causes and contexts), else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, FetchRefused):
            return current
        seen.add(id(current))
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if isinstance(reason, FetchRefused):
            return reason
        current = current.__cause__ or current.__context__
    return None


def _address(sockaddr: tuple[Any, ...]) -> IPAddress:
    # An IPv6 link-local address may carry a scope ("fe80::1%eth0").
    return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])


def checked_addresses(
    host: str, port: int, policy: AddressPolicy
) -> list[tuple[int, int, int, tuple[Any, ...]]]:
    """``(family, type, proto, sockaddr)`` of each address ``host`` resolves to, once every
    one is permitted; :class:`AddressRefused` otherwise (one bad address refuses the host:
    a connection could otherwise fall back to it)."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    if not infos or policy.refused(_address(info[4]) for info in infos):
        raise AddressRefused(
            f"{host} is not a public address (LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS)"
        )
    return [(family, kind, proto, sockaddr) for family, kind, proto, _, sockaddr in infos]


def guarded_connect(
    host: str,
    port: int,
    timeout: object,
    policy: AddressPolicy,
    *,
    source_address: tuple[str, int] | None = None,
    socket_options: Iterable[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """A TCP socket connected to ``host:port`` through an address the policy permits (the
    address checked is the one connected to); :class:`AddressRefused` when the host
    resolves to any address it does not. ``timeout`` (seconds or None; anything else
    leaves the default) bounds the connect."""
    last_error: OSError | None = None
    for family, kind, proto, sockaddr in checked_addresses(host, port, policy):
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as error:
            sock.close()
            last_error = error
            continue
        return sock
    assert last_error is not None
    raise last_error


# ------------------------------------------------------------------------------- httpx


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's backend connecting only to the checked addresses of a host (by address:
    TLS still names the host, httpcore takes it from the request)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port, self.policy)
        except socket.gaierror as error:
            raise httpcore.ConnectError(str(error)) from error
        last_error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for _, _, _, sockaddr in addresses:
            try:
                return super().connect_tcp(
                    str(sockaddr[0]), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error


class _CappedStream(httpx.SyncByteStream):
    """A response body that raises :class:`ResponseTooLarge` past ``limit`` raw bytes."""

    def __init__(self, inner: httpx.SyncByteStream, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self.inner:
            size += len(chunk)
            if size > self.limit:
                raise ResponseTooLarge(f"the response is larger than {self.limit} bytes")
            yield chunk

    def close(self) -> None:
        self.inner.close()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with every connection made by :func:`guarded_connect`; with
    ``max_response_bytes`` a body larger than that (raw, as sent) raises
    :class:`ResponseTooLarge`, and only uncompressed bodies are asked for (a small gzip
    body can unpack to gigabytes)."""

    def __init__(self, policy: AddressPolicy, max_response_bytes: int | None = None) -> None:
        super().__init__(trust_env=False)
        self.max_response_bytes = max_response_bytes
        # httpx builds its pool without a way to choose the network backend; the pool
        # is the one httpx would build, with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        limit = self.max_response_bytes
        if limit is not None:
            request.headers["Accept-Encoding"] = "identity"
        response = super().handle_request(request)
        if limit is None:
            return response
        if declared_length(response.headers) > limit or response.headers.get(
            "content-encoding", "identity"
        ).lower() not in ("", "identity"):
            response.close()
            raise ResponseTooLarge(
                f"the response is larger than {limit} bytes or compressed (not asked for)"
            )
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _CappedStream(response.stream, limit)
        return response


def declared_length(headers: Mapping[str, str]) -> int:
    """The ``Content-Length`` of a response's headers, -1 when absent or not a number."""
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else -1


def guarded_transport(
    policy: AddressPolicy, max_response_bytes: int | None = None
) -> GuardedTransport:
    """An httpx transport for ``httpx.Client(transport=...)`` (see :class:`GuardedTransport`)."""
    return GuardedTransport(policy, max_response_bytes)


# ---------------------------------------------------------------------------- requests


def _pool_classes(policy: AddressPolicy) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections go through :func:`guarded_connect`."""

    def new_conn(connection: HTTPConnection) -> socket.socket:
        return guarded_connect(
            connection._dns_host,
            connection.port,
            connection.timeout,
            policy,
            source_address=connection.source_address,
            socket_options=connection.socket_options,
        )

    class Http(HTTPConnection):
        _new_conn = new_conn

    class Https(HTTPSConnection):
        _new_conn = new_conn

    class HttpPool(HTTPConnectionPool):
        ConnectionCls = Http

    class HttpsPool(HTTPSConnectionPool):
        ConnectionCls = Https

    return {"http": HttpPool, "https": HttpsPool}


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, policy: AddressPolicy, max_response_bytes: int) -> None:
        self.policy = policy
        self.max_response_bytes = max_response_bytes
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.policy)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        response = super().send(request, stream=True, **kwargs)
        limit = self.max_response_bytes
        if declared_length(response.headers) > limit:
            response.close()
            raise ResponseTooLarge(f"the response is larger than {limit} bytes")
        if stream:
            return response
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):  # decoded: a zip bomb stops too
            size += len(chunk)
            if size > limit:
                response.close()
                raise ResponseTooLarge(f"the response is larger than {limit} bytes")
            chunks.append(chunk)
        # What requests itself does once it has read a body (Response.content).
        response._content = b"".join(chunks)
        response._content_consumed = True
        return response


def guarded_session(policy: AddressPolicy, max_response_bytes: int) -> requests.Session:
    """A requests session whose connections go through :func:`guarded_connect` and whose
    response bodies stop at ``max_response_bytes`` (decoded)."""
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(policy, max_response_bytes)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
