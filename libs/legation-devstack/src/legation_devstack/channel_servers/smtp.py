"""A real SMTP server (aiosmtpd) that records every message it accepts."""

from __future__ import annotations

import email
import email.policy
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from legation_devstack.processes import free_port
from legation_devstack.tls import self_signed_files


@dataclass(frozen=True)
class Accepted:
    """One message the server accepted."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage


class _Recorder:
    def __init__(self) -> None:
        self.accepted: list[Accepted] = []
        self.refuse_next: list[tuple[int, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse_next:
            code, text = self.refuse_next.pop(0)
            return f"{code} {text}"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.accepted.append(Accepted(envelope.mail_from, tuple(envelope.rcpt_tos), parsed))
        return "250 2.0.0 OK: queued"


class SmtpServer:
    """An SMTP server on 127.0.0.1 (a free port). With ``username`` set it requires AUTH;
    with ``tls`` (see :func:`self_signed_tls`) it requires STARTTLS before anything else,
    else AUTH goes over plain text, as test servers allow."""

    def __init__(
        self, username: str = "", password: str = "", tls: ssl.SSLContext | None = None
    ) -> None:
        self.port = free_port()
        self.username, self.password = username, password
        self._recorder = _Recorder()
        options: dict[str, Any] = {}
        if username:
            options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                # With TLS, AUTH only after STARTTLS, as real submission servers do.
                "auth_require_tls": tls is not None,
            }
        if tls is not None:
            options |= {"tls_context": tls, "require_starttls": True}
        self._controller = Controller(
            self._recorder, hostname="127.0.0.1", port=self.port, **options
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    @property
    def accepted(self) -> list[Accepted]:
        return list(self._recorder.accepted)

    def refuse_next(self, code: int, text: str) -> None:
        """The next DATA gets ``code text`` (451 for a temporary failure, 554 permanent)."""
        self._recorder.refuse_next.append((code, text))

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 with a fresh self-signed certificate, and the
    certificate's path for clients to trust."""
    cert_path, key_path = self_signed_files(folder, "smtp")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
