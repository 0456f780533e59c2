"""An email newsletter sent over SMTP with the standard library (smtplib, email).

One message per delivery, from the newsletter address to the list address (the envelope
goes to every configured recipient; a mailing-list manager behind the list address is the
usual set-up). The Message-ID is derived from the idempotency key, so a receiving system
that deduplicates on it drops a resend, but SMTP itself cannot tell us whether an
interrupted send went through: reconcile mode ``none`` (the outbox asks a person).
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from legation_channels.adapters._http import key_digest
from legation_channels.base import (
    ChannelLimits,
    ChannelRejected,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
)

log = logging.getLogger(__name__)

# RFC 5322 lines stay under 998 characters; a subject longer than a line is a mistake.
MAX_SUBJECT = 998


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The Message-ID of the email sent for ``idempotency_key``."""
    return f"<{key_digest(idempotency_key, 32)}@{domain}>"


class EmailNewsletterChannel:
    """Sends each message as an email (``kind: email``)."""

    kind = "email"
    reconcile: Reconcile = "none"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sender: str,
        recipients: tuple[str, ...],
        *,
        list_address: str = "",
        username: str = "",
        password: str = "",
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not recipients:
            raise ValueError("recipients: at least one address is required")
        self._name = name
        self._host, self._port = host, port
        self._sender = sender
        self._recipients = recipients
        self._to = list_address or ", ".join(recipients)
        self._username, self._password = username, password
        self._starttls, self._use_ssl = starttls, use_ssl
        self._timeout = timeout
        self._ssl = ssl_context or ssl.create_default_context()
        self._domain = sender.rsplit("@", 1)[-1] or "localhost"
        self._limits = ChannelLimits(
            max_title_length=MAX_SUBJECT,
            max_media=20,
            media_kinds=frozenset({"image", "video", "document"}),
            supports_replies=True,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> ChannelLimits:
        return self._limits

    def close(self) -> None:
        """Nothing to release: each delivery opens and closes its own connection."""

    def find(self, idempotency_key: str) -> Delivered | None:
        return None

    def compose(self, message: Outgoing, now: datetime) -> EmailMessage:
        """The email for ``message`` (plain text with an HTML alternative)."""
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = self._to
        email["Subject"] = message.title or message.text.split("\n", 1)[0][:120]
        email["Date"] = format_datetime(now)
        email["Message-ID"] = message_id_for(message.idempotency_key, self._domain)
        email["Content-Language"] = message.language
        if message.in_reply_to:
            email["In-Reply-To"] = message.in_reply_to
            email["References"] = message.in_reply_to
        lines = [message.text]
        lines += [f"{m.alt_text or m.kind}: {m.url}" for m in message.media]
        if message.link:
            lines.append(message.link)
        email.set_content("\n\n".join(line for line in lines if line))
        parts = [f"<p>{html.escape(p)}</p>" for p in message.text.split("\n\n") if p.strip()]
        for media in message.media:
            src, alt = html.escape(media.url), html.escape(media.alt_text)
            parts.append(
                f'<p><img src="{src}" alt="{alt}"/></p>'
                if media.kind == "image"
                else f'<p><a href="{src}">{alt or src}</a></p>'
            )
        if message.link:
            link = html.escape(message.link)
            parts.append(f'<p><a href="{link}">{link}</a></p>')
        email.add_alternative("\n".join(parts), subtype="html")
        return email

    def deliver(self, message: Outgoing) -> Delivered:
        now = datetime.now(UTC)
        email = self.compose(message, now)
        try:
            smtp = self._connect()
        except smtplib.SMTPAuthenticationError as error:
            raise ChannelRejected(
                f"the SMTP server refused our credentials: {error.smtp_code} {_text(error)}",
                field="credentials",
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            # Nothing was sent yet: retrying is safe.
            raise ChannelUnavailable(
                f"SMTP connect to {self._host}:{self._port}: {error}"
            ) from error
        try:
            refused = smtp.send_message(email, self._sender, list(self._recipients))
        except smtplib.SMTPRecipientsRefused as error:
            raise ChannelRejected(
                f"the SMTP server refused every recipient: {sorted(error.recipients)}",
                field="recipients",
            ) from error
        except smtplib.SMTPSenderRefused as error:
            raise _by_code(error.smtp_code, f"sender {self._sender} refused", "sender") from error
        except smtplib.SMTPDataError as error:
            raise _by_code(error.smtp_code, "message refused", "text") from error
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            # The connection died while sending: the server may have queued the message.
            raise ChannelUnavailable(f"SMTP send: {error}", maybe_delivered=True) from error
        finally:
            _quit(smtp)
        if refused:
            # It went out to the others: delivered, and who was refused is logged.
            log.warning("channel %s: recipients refused: %s", self._name, sorted(refused))
        return Delivered(str(email["Message-ID"]), "", now, True)

    def _connect(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self._use_ssl:
            smtp = smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=self._ssl
            )
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if self._starttls:
                smtp.starttls(context=self._ssl)
                smtp.ehlo()
            if self._username:
                smtp.login(self._username, self._password)
        except BaseException:
            _quit(smtp)
            raise
        return smtp


def _by_code(code: int, what: str, field: str) -> Exception:
    if 400 <= code < 500:
        return ChannelUnavailable(f"SMTP {code}: {what} (temporary)")
    return ChannelRejected(f"SMTP {code}: {what}", field=field)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _text(error: smtplib.SMTPResponseException) -> str:
    reply = error.smtp_error
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
