"""Where the local stack's notifications land: an SMTP server requiring STARTTLS (aiosmtpd,
a fresh self-signed certificate), a chat server speaking Slack, Teams and Matrix, and a
signed-webhook receiver; and a people file for the local users (one per role, named as in
the users file) reaching them there.

``make run`` starts them with the stack and the notifier; the notifier's integration test
uses them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from legation_devstack.channel_servers.chat import ChatServer
from legation_devstack.channel_servers.smtp import SmtpServer, self_signed_tls
from legation_devstack.channel_servers.webhook import WebhookReceiver

# Test credentials only: these servers listen on 127.0.0.1.
SECRETS = {
    "LEGATION_DEV_SLACK_ANALYST": "",  # the hook URL: set once the chat server runs
    "LEGATION_DEV_TEAMS_OFFICER": "",
    "LEGATION_DEV_MATRIX_TOKEN": "dev-matrix-token",
    "LEGATION_DEV_NOTIFY_WEBHOOK_SECRET": "dev-notify-webhook-secret",
    "LEGATION_DEV_NOTIFY_SMTP_PASSWORD": "dev-notify-smtp-password",
}
MATRIX_ROOM = "!approvals:legation.local"
CAMPAIGN = "plastics-2026"
ISSUE = "plastics-treaty"


@dataclass
class NotifyServers:
    """The three servers, started by :meth:`start` with their data under ``folder``."""

    folder: Path
    chat: ChatServer = field(
        default_factory=lambda: ChatServer(matrix_token=SECRETS["LEGATION_DEV_MATRIX_TOKEN"])
    )
    webhook: WebhookReceiver = field(
        default_factory=lambda: WebhookReceiver(
            SECRETS["LEGATION_DEV_NOTIFY_WEBHOOK_SECRET"], path="/hooks/operators"
        )
    )
    smtp: SmtpServer | None = None
    ca_file: Path | None = None
    # Where the notifications' links point: the console of the stack.
    console_url: str = "http://127.0.0.1:8080"

    def start(self) -> NotifyServers:
        self.folder.mkdir(parents=True, exist_ok=True)
        context, self.ca_file = self_signed_tls(self.folder)
        self.smtp = SmtpServer(
            "notifier", SECRETS["LEGATION_DEV_NOTIFY_SMTP_PASSWORD"], tls=context
        ).start()
        self.chat.start()
        self.webhook.start()
        return self

    def stop(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()
        self.chat.stop()
        self.webhook.stop()

    def people(self) -> dict[str, Any]:
        """The people file's content: the users file's people, one per role."""
        email = self._email
        return {
            "console_url": self.console_url,
            "people": [
                {
                    "name": "analyst",
                    "roles": ["analyst"],
                    "time_zone": "Europe/Paris",
                    "channels": {"slack": {"url_env": "LEGATION_DEV_SLACK_ANALYST"}},
                    "owns": {"issues": [ISSUE]},
                },
                {
                    "name": "officer",
                    "roles": ["officer"],
                    "time_zone": "Africa/Nairobi",
                    "channels": {"teams": {"url_env": "LEGATION_DEV_TEAMS_OFFICER"}},
                },
                {
                    "name": "approver",
                    "roles": ["approver"],
                    "time_zone": "Europe/Berlin",
                    "channels": {
                        "matrix": {
                            "homeserver": self.chat.url,
                            "room_id": MATRIX_ROOM,
                            "token_env": "LEGATION_DEV_MATRIX_TOKEN",
                        }
                    },
                },
                email("editor", ["editor"], "America/New_York"),
                email("publisher", ["publisher"], "Asia/Tokyo"),
                email("viewer", ["viewer"], "UTC"),
                {
                    "name": "admin",
                    "roles": ["admin"],
                    "time_zone": "UTC",
                    "channels": {
                        "webhook": {
                            "url": self.webhook.hook_url,
                            "secret_env": "LEGATION_DEV_NOTIFY_WEBHOOK_SECRET",
                        }
                    },
                },
                email("campaign-owner", [], "Europe/London") | {"owns": {"campaigns": [CAMPAIGN]}},
            ],
        }

    @staticmethod
    def _email(name: str, roles: list[str], zone: str) -> dict[str, Any]:
        return {
            "name": name,
            "roles": roles,
            "time_zone": zone,
            "channels": {"email": {"address": f"{name}@legation.local"}},
        }

    def env(self) -> dict[str, str]:
        """The notifier's environment for these servers (its people file written into
        ``folder``)."""
        assert self.smtp is not None and self.ca_file is not None, "start() first"
        path = self.folder / "notify-people.yaml"
        path.write_text(yaml.safe_dump(self.people(), sort_keys=False), encoding="utf-8")
        return {
            "LEGATION_NOTIFIER_PEOPLE_FILE": str(path),
            "LEGATION_NOTIFIER_SMTP_HOST": "127.0.0.1",
            "LEGATION_NOTIFIER_SMTP_PORT": str(self.smtp.port),
            "LEGATION_NOTIFIER_SMTP_STARTTLS": "true",
            "LEGATION_NOTIFIER_SMTP_USERNAME": "notifier",
            "LEGATION_NOTIFIER_SMTP_PASSWORD": SECRETS["LEGATION_DEV_NOTIFY_SMTP_PASSWORD"],
            "LEGATION_NOTIFIER_SMTP_CA_FILE": str(self.ca_file),
            "LEGATION_NOTIFIER_SENDER": "notifications@legation.local",
            "LEGATION_NOTIFIER_INTERVAL_SECONDS": "0.5",
            **SECRETS,
            "LEGATION_DEV_SLACK_ANALYST": self.chat.slack_url("analyst"),
            "LEGATION_DEV_TEAMS_OFFICER": self.chat.teams_url("officer"),
        }
