"""Each person's channels, as legation-channels adapters: e-mail over SMTP (STARTTLS), Slack,
Teams, Matrix and the signed webhook. One adapter per (person, channel), built when first
needed and kept."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from legation_channels.adapters.chat import MatrixChannel, SlackChannel, TeamsChannel
from legation_channels.adapters.email_newsletter import EmailNewsletterChannel
from legation_channels.adapters.webhook import WebhookChannel
from legation_channels.base import Channel, ChannelLimits, Delivered, Outgoing, Reconcile
from legation_notifier.domain.people import CONSOLE, Address, Directory


@dataclass(frozen=True)
class Smtp:
    """The SMTP server every notification e-mail goes through."""

    host: str
    port: int
    sender: str
    starttls: bool = True
    use_ssl: bool = False
    username: str = ""
    password: str = ""
    ca_file: Path | None = None
    timeout: float = 30.0


class ConsoleInbox:
    """The console channel: the message record is the inbox entry (the notifier's messages
    table, served by ListMyNotifications), so delivering it is recording it delivered.
    Doing it again is harmless, hence ``idempotency-key``: a restart mid-step finishes it."""

    name = CONSOLE
    kind = CONSOLE
    limits = ChannelLimits()
    reconcile: Reconcile = "idempotency-key"

    def deliver(self, message: Outgoing) -> Delivered:
        return Delivered(
            channel_item_id=message.idempotency_key,
            url=message.link,
            published_at=datetime.now(UTC),
            newly_published=True,
        )

    def find(self, idempotency_key: str) -> Delivered | None:
        return None


class PersonChannels:
    """Adapters by (person, channel name); safe to share between threads."""

    def __init__(self, directory: Directory, smtp: Smtp) -> None:
        self.directory = directory
        self.smtp = smtp
        self._lock = threading.Lock()
        self._built: dict[tuple[str, str], Channel] = {}
        self._ssl = ssl.create_default_context(cafile=str(smtp.ca_file)) if smtp.ca_file else None

    def get(self, person: str, channel: str) -> Channel | None:
        """The adapter reaching ``person`` on ``channel``; None when they have no such
        channel (any more: the people file changed)."""
        with self._lock:
            built = self._built.get((person, channel))
            if built is not None:
                return built
            found = self.directory.person(person)
            if channel == CONSOLE:
                if found is None or not found.console:
                    return None
                inbox = ConsoleInbox()
                self._built[(person, channel)] = inbox
                return inbox
            address = found.channels.get(channel) if found is not None else None
            if address is None:
                return None
            built = self._build(address)
            self._built[(person, channel)] = built
            return built

    def _build(self, address: Address) -> Channel:
        if address.kind == "email":
            return EmailNewsletterChannel(
                "email",
                self.smtp.host,
                self.smtp.port,
                self.smtp.sender,
                (address.address,),
                username=self.smtp.username,
                password=self.smtp.password,
                starttls=self.smtp.starttls,
                use_ssl=self.smtp.use_ssl,
                timeout=self.smtp.timeout,
                ssl_context=self._ssl,
            )
        if address.kind == "slack":
            return SlackChannel("slack", address.url)
        if address.kind == "teams":
            return TeamsChannel("teams", address.url)
        if address.kind == "matrix":
            return MatrixChannel("matrix", address.url, address.room_id, address.secret)
        return WebhookChannel("webhook", address.url, address.secret)

    def close(self) -> None:
        with self._lock:
            for channel in self._built.values():
                close = getattr(channel, "close", None)
                if callable(close):
                    close()
            self._built.clear()
