"""Every channel server at once, with the channels configuration that points at them.

For integration tests of the publisher and engager and for the local stack: ``start()``
gives running servers, ``channels_config()`` the ``build_channels`` configuration (one
channel per kind) and the environment holding its secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from legation_devstack.channel_servers.bluesky import BlueskyServer
from legation_devstack.channel_servers.mastodon import MastodonServer
from legation_devstack.channel_servers.smtp import SmtpServer
from legation_devstack.channel_servers.telegram import TelegramServer
from legation_devstack.channel_servers.webhook import WebhookReceiver
from legation_devstack.channel_servers.wordpress import WordPressServer

# Test credentials only: these servers listen on 127.0.0.1 for a test or the local stack.
_SECRETS = {
    "LEGATION_DEV_WORDPRESS_PASSWORD": "abcd efgh ijkl mnop",
    "LEGATION_DEV_MASTODON_TOKEN": "dev-mastodon-token",
    "LEGATION_DEV_BLUESKY_PASSWORD": "dev-app-password",
    "LEGATION_DEV_TELEGRAM_TOKEN": "100200:dev-bot-token",
    "LEGATION_DEV_SMTP_PASSWORD": "dev-smtp-password",
    "LEGATION_DEV_WEBHOOK_SECRET": "dev-webhook-secret",
}


@dataclass
class ChannelServers:
    """One running server per channel kind."""

    wordpress: WordPressServer = field(
        default_factory=lambda: WordPressServer(
            "legation", _SECRETS["LEGATION_DEV_WORDPRESS_PASSWORD"]
        )
    )
    mastodon: MastodonServer = field(
        default_factory=lambda: MastodonServer(_SECRETS["LEGATION_DEV_MASTODON_TOKEN"])
    )
    bluesky: BlueskyServer = field(
        default_factory=lambda: BlueskyServer(
            app_password=_SECRETS["LEGATION_DEV_BLUESKY_PASSWORD"]
        )
    )
    telegram: TelegramServer = field(
        default_factory=lambda: TelegramServer(_SECRETS["LEGATION_DEV_TELEGRAM_TOKEN"])
    )
    smtp: SmtpServer = field(
        default_factory=lambda: SmtpServer("news", _SECRETS["LEGATION_DEV_SMTP_PASSWORD"])
    )
    webhook: WebhookReceiver = field(
        default_factory=lambda: WebhookReceiver(_SECRETS["LEGATION_DEV_WEBHOOK_SECRET"])
    )

    def start(self) -> ChannelServers:
        started: list[Any] = []
        try:
            for server in self._all():
                started.append(server.start())
        except BaseException:
            for server in started:
                server.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self._all():
            server.stop()

    def __enter__(self) -> ChannelServers:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _all(self) -> list[Any]:
        return [self.wordpress, self.mastodon, self.bluesky, self.telegram, self.smtp, self.webhook]

    def channels_config(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The channels configuration for these servers and the environment with its
        secrets (pass both to ``legation_channels.registry.build_channels``)."""
        channels = [
            {
                "name": "blog",
                "kind": "wordpress",
                "options": {"base_url": self.wordpress.url, "username": "legation"},
                "secrets": {"application_password": "LEGATION_DEV_WORDPRESS_PASSWORD"},
            },
            {
                "name": "mastodon",
                "kind": "mastodon",
                "options": {"base_url": self.mastodon.url},
                "secrets": {"access_token": "LEGATION_DEV_MASTODON_TOKEN"},
            },
            {
                "name": "bluesky",
                "kind": "bluesky",
                "options": {"handle": self.bluesky.account_handle, "service_url": self.bluesky.url},
                "secrets": {"app_password": "LEGATION_DEV_BLUESKY_PASSWORD"},
            },
            {
                "name": "telegram",
                "kind": "telegram",
                "options": {"chat_id": self.telegram.chat_id, "api_url": self.telegram.url},
                "secrets": {"bot_token": "LEGATION_DEV_TELEGRAM_TOKEN"},
            },
            {
                "name": "newsletter",
                "kind": "email",
                "options": {
                    "host": "127.0.0.1",
                    "port": self.smtp.port,
                    "username": "news",
                    "sender": "news@embassy.example.org",
                    "list_address": "subscribers@embassy.example.org",
                    "recipients": ["subscribers@lists.example.org"],
                },
                "secrets": {"password": "LEGATION_DEV_SMTP_PASSWORD"},
            },
            {
                "name": "partners",
                "kind": "webhook",
                "options": {"url": self.webhook.hook_url},
                "secrets": {"signing_secret": "LEGATION_DEV_WEBHOOK_SECRET"},
            },
        ]
        return {"channels": channels}, dict(_SECRETS)

    def published(self) -> dict[str, int]:
        """How many items each server holds, by channel name in ``channels_config``."""
        return {
            "blog": len(self.wordpress.published()),
            "mastodon": len(self.mastodon.statuses),
            "bluesky": len(self.bluesky.posts()),
            "telegram": len(self.telegram.messages),
            "newsletter": len(self.smtp.accepted),
            "partners": len(self.webhook.accepted),
        }

    def contents(self) -> dict[str, list[str]]:
        """The title and text of every item each server holds, by channel name in
        ``channels_config`` (to tell which message each copy is)."""
        return {
            "blog": [f"{p['title']}\n{p['content']}" for p in self.wordpress.published()],
            "mastodon": [str(s["text"]) for s in self.mastodon.statuses],
            "bluesky": [str(p["value"].get("text", "")) for p in self.bluesky.posts()],
            "telegram": [
                str(m.get("text") or m.get("caption", "")) for m in self.telegram.messages
            ],
            "newsletter": [_email_text(a.message) for a in self.smtp.accepted],
            "partners": [f"{d['title']}\n{d['text']}" for d in self.webhook.accepted.values()],
        }


def _email_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return f"{message['Subject']}\n{text}"
