"""Mutual TLS: a verified client certificate's name identifies a user of the users file,
over a real TLS gRPC connection with certificates made by the test."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from legation.events.v1 import publish_pb2
from legation_core.auth import (
    EDITOR,
    VIEWER,
    AuditEvent,
    AuthInterceptor,
    Policy,
    command,
    current_caller,
    load_users,
    reads,
    with_token,
)
from legation_core.config import CoreSettings
from legation_core.grpc_server import build_health_server, build_server
from legation_core.lifecycle import server_tls
from legation_devstack.users import UsersFile, write_users_file

pytestmark = pytest.mark.integration

SERVICE = "legation.test.v1.Probe"
POLICY = Policy(SERVICE, {"Whoami": reads(), "Write": command(EDITOR)})
Publication = publish_pb2.Publication


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


def issue(
    common_name: str,
    issuer: Pem | None = None,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> Pem:
    """A certificate for ``common_name`` signed by ``issuer`` (None: a self-signed CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    if issuer is None:
        signer, issuer_name = key, name
    else:
        signer_key = serialization.load_pem_private_key(issuer.key, password=None)
        assert isinstance(signer_key, ec.EllipticCurvePrivateKey)
        signer = signer_key
        issuer_name = x509.load_pem_x509_certificate(issuer.cert).subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(signer, hashes.SHA256())
    return Pem(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass
class Served:
    port: int
    health_port: int
    ca: Pem
    users: UsersFile
    audited: list[AuditEvent]

    def call(self, method: str, client: Pem | None, token: str | None = None) -> str:
        """Calls over TLS with ``client``'s certificate; returns the caller's name."""
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca.cert,
            private_key=client.key if client else None,
            certificate_chain=client.cert if client else None,
        )
        with grpc.secure_channel(
            f"127.0.0.1:{self.port}",
            credentials,
            options=[("grpc.ssl_target_name_override", "legation.test")],
        ) as secure:
            channel = with_token(secure, token) if token else secure
            stub = channel.unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=Publication.SerializeToString,
                response_deserializer=Publication.FromString,
            )
            response: Publication = stub(Publication(post_id="p-1"), timeout=10)
            return response.author


def whoami(request: Publication, context: grpc.ServicerContext) -> Publication:
    return Publication(post_id=request.post_id, author=current_caller().user)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    ca = issue("Legation test CA")
    server_pem = issue("legation.test", ca, dns=("legation.test",), ips=("127.0.0.1",))
    files = {"cert": server_pem.cert, "key": server_pem.key, "ca": ca.cert}
    for name, content in files.items():
        (tmp_path / f"{name}.pem").write_bytes(content)
    users = write_users_file(
        tmp_path / "users.yaml",
        {"press-tool": frozenset({EDITOR}), "monitor": frozenset({VIEWER})},
        certificate_names={
            "press-tool": ["press-tool.ministry.example"],
            "monitor": ["monitor"],
        },
    )
    # The TLS files come through the settings, as in a deployment.
    settings = CoreSettings(
        auth_users_file=users.path,
        grpc_tls_cert=tmp_path / "cert.pem",
        grpc_tls_key=tmp_path / "key.pem",
        grpc_tls_client_ca=tmp_path / "ca.pem",
    )
    tls = server_tls(settings)
    assert tls is not None
    audited: list[AuditEvent] = []
    handlers = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            method: grpc.unary_unary_rpc_method_handler(
                whoami,
                request_deserializer=Publication.FromString,
                response_serializer=Publication.SerializeToString,
            )
            for method in POLICY.rules
        },
    )
    server, health_servicer, port = build_server(
        0,
        [lambda server: server.add_generic_rpc_handlers((handlers,))],
        [],
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(users.path), [POLICY], audited.append),
        tls=tls,
    )
    health_server, health_port = build_health_server(0, health_servicer, host="127.0.0.1")
    server.start()
    health_server.start()
    try:
        yield Served(port, health_port, ca, users, audited)
    finally:
        health_server.stop(0).wait(5)
        server.stop(0).wait(5)


def test_a_client_certificate_identifies_its_user_by_name(served: Served) -> None:
    press_tool = issue("ignored-cn", served.ca, dns=("press-tool.ministry.example",))
    assert served.call("Write", press_tool) == "press-tool"
    [event] = served.audited
    assert (event.user, event.authenticated_by) == ("press-tool", "certificate")
    monitor = issue("monitor", served.ca)  # no SAN: its common name identifies it
    assert served.call("Whoami", monitor) == "monitor"
    with pytest.raises(grpc.RpcError) as denied:
        served.call("Write", monitor)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_unknown_certificate_name_is_unauthenticated(served: Served) -> None:
    stranger = issue("stranger", served.ca, dns=("stranger.example",))
    with pytest.raises(grpc.RpcError) as refused:
        served.call("Whoami", stranger)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_bearer_token_wins_over_the_certificate(served: Served) -> None:
    gateway = issue("monitor", served.ca)
    token = served.users.token("press-tool")
    assert served.call("Write", gateway, token=token) == "press-tool"


def test_without_a_certificate_signed_by_the_client_ca_there_is_no_connection(
    served: Served,
) -> None:
    with pytest.raises(grpc.RpcError) as no_certificate:
        served.call("Whoami", None, token=served.users.token("monitor"))
    assert no_certificate.value.code() == grpc.StatusCode.UNAVAILABLE
    other_ca = issue("Someone else's CA")
    forged = issue("monitor", other_ca)
    with pytest.raises(grpc.RpcError) as untrusted:
        served.call("Whoami", forged)
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE
    assert served.audited == []


def test_probes_without_tls_reach_only_the_health_port(served: Served) -> None:
    def check(port: int) -> int:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = health_pb2.HealthCheckRequest()
            return int(health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status)

    assert check(served.health_port) == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as plaintext:
        check(served.port)  # the API port speaks TLS only
    assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(f"127.0.0.1:{served.health_port}") as channel:
        stub = channel.unary_unary(
            f"/{SERVICE}/Whoami",
            request_serializer=Publication.SerializeToString,
            response_deserializer=Publication.FromString,
        )
        with pytest.raises(grpc.RpcError) as api:
            stub(Publication(), timeout=5)
    assert api.value.code() == grpc.StatusCode.UNIMPLEMENTED  # the API is not served there
