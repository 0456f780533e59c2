"""What the listener's integration tests share: the service as a process, and RSS bodies."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import grpc

from legation_core.auth import with_token
from legation_core.config import CoreSettings
from legation_devstack.processes import Process, child_env, free_port, spawn, wait_until
from legation_devstack.users import UsersFile


def rss(*items: tuple[str, str]) -> str:
    """An RSS 2.0 document with one item per (guid, title)."""
    entries = "".join(
        f"<item><title>{title}</title><guid>{guid}</guid><link>{guid}</link>"
        "<description>Delegates spoke on Friday.</description></item>"
        for guid, title in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://x.example/</link><description>d</description>{entries}</channel></rss>"
    )


class ListenerProcess:
    """``python -m legation_listener`` with its own ports, stopped by process id."""

    def __init__(
        self,
        settings: CoreSettings,
        users: UsersFile,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.users = users
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        env = child_env()
        env.update(
            {
                "LEGATION_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "LEGATION_GRPC_PORT": str(self.grpc_port),
                "LEGATION_METRICS_PORT": str(self.metrics_port),
                "LEGATION_LISTENER_POLL_SECONDS": "3600",
                "LEGATION_LISTENER_FETCH_RETRIES": "0",
                "LEGATION_AUTH_USERS_FILE": str(users.path),
                # As the local stack: fixture files and loopback servers are feeds here.
                "LEGATION_LISTENER_ALLOW_LOCAL_FEEDS": "true",
                "LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8,::1",
                **(extra_env or {}),
            }
        )
        self.process: Process = spawn(
            "listener", [sys.executable, "-m", "legation_listener"], log_dir, env
        )
        self.process.wait_serving(self.grpc_port, "legation.listener.v1.ListenerService")
        # The periodic job polls once at start-up; tests act after it, not against it.
        wait_until(self._polled_once, 30, "start-up poll")

    def _polled_once(self) -> bool:
        return '"message": "poll done"' in self.process.log_path.read_text()

    def channel(self, user: str | None = "analyst") -> grpc.Channel:
        """A channel calling as ``user`` (None: without credentials)."""
        channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        return channel if user is None else with_token(channel, self.users.token(user))

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
