"""The whole platform on one machine: stand-ins, topics and the four service processes.

:class:`Stack` is what ``make run`` starts and what the end-to-end tests drive, so both
exercise the same processes, ports and environment variables an operator would set.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from legation_core.auth import with_token
from legation_core.catalog import default_catalog
from legation_core.config import CoreSettings
from legation_core.kafka import ensure_topics
from legation_devstack.console import (
    ConsolePorts,
    console_env,
    console_ports,
    start_console,
    start_identity_provider,
)
from legation_devstack.processes import Process, child_env, free_port, spawn
from legation_devstack.standins import (
    KafkaStandIn,
    OpenSearchStandIn,
    start_kafka,
    start_opensearch,
)
from legation_devstack.users import CONSOLE_USER, UsersFile, write_users_file

SERVICES = ("evaluator", "engager", "publisher", "listener")
# The user the demo and the tests act as unless they say otherwise: every working role.
DEFAULT_USER = "campaign-owner"
FIXED_PORTS = {
    "listener": (50061, 9461),
    "publisher": (50062, 9462),
    "engager": (50063, 9463),
    "evaluator": (50064, 9464),
    "notifier": (50065, 9465),
}
# Started by `make run` after SERVICES, with the local notification servers (notify_local).
NOTIFIER = "notifier"

# The publisher's short-link endpoint under `make run`.
FIXED_REDIRECT_PORT = 8462

# The evaluator's live scorecard page (LEGATION_WEB_PORT) under `make run`.
FIXED_WEB_PORT = 8064


ENGAGER_RULES = """\
open:
  questions: true
approval: {labels: [hostile], role: approver}
saved_replies:
  - id: thanks-for-asking
    title: Thank you for your question
    variants:
      en: "Dear {author}, thank you for your question: the answer is on the embassy's website. \\
        {officer}, press office"
      es: "Estimado/a {author}, gracias por su pregunta: la respuesta está en la web de la \\
        embajada. {officer}, oficina de prensa"
"""


@dataclass
class ServicePorts:
    grpc: int
    metrics: int
    web: int | None = None  # the evaluator's live scorecard page


@dataclass
class Stack:
    """Stand-ins plus services under ``workdir`` (data, logs, our site's feed)."""

    workdir: Path
    fixed_ports: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)
    kafka: KafkaStandIn | None = None
    opensearch: OpenSearchStandIn | None = None
    services: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, ServicePorts] = field(default_factory=dict)
    users: UsersFile | None = None
    # The publisher's short-link endpoint; kept across restarts of the publisher.
    redirect_port: int | None = None
    # The secret of the clicks' visitor fingerprints; kept across restarts of the publisher.
    click_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # The console and its local identity provider (start_console), when started.
    console: ConsolePorts | None = None

    @property
    def pseudonym_key(self) -> str:
        """The key of the departments' pseudonyms, kept in the data folder so that an author
        keeps their pseudonym from one run to the next (created at the first run)."""
        path = self.workdir / "pseudonym.key"
        if not path.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def site_feed(self) -> Path:
        return self.workdir / "site" / "feed.atom"

    @property
    def users_file(self) -> Path:
        return self.workdir / "users.yaml"

    @property
    def engager_rules_file(self) -> Path:
        """The engager's inbox rules on the local stack: every question opens a conversation
        (the default), plus saved replies the console offers."""
        return self.workdir / "engager-rules.yaml"

    @property
    def tokens_file(self) -> Path:
        """The demo users' plaintext tokens (local stack only), for calling the APIs by hand."""
        return self.workdir / "tokens.yaml"

    def start_infrastructure(self) -> None:
        """Starts the broker and index stand-ins, creates every catalogued topic and writes
        the users file (one user per role, fresh tokens) the services authenticate against."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = write_users_file(self.users_file)
        self.users.write_tokens(self.tokens_file)
        self.engager_rules_file.write_text(ENGAGER_RULES, encoding="utf-8")
        self.kafka = start_kafka(self.workdir / "kafka-data", self.log_dir)
        self.opensearch = start_opensearch(self.log_dir)
        ensure_topics(
            CoreSettings(kafka_bootstrap_servers=self.kafka.bootstrap_servers),
            default_catalog(),
            replication_factor=1,
        )

    def start(self) -> None:
        """Infrastructure, then every service, each waited for until healthy."""
        self.start_infrastructure()
        for name in SERVICES:
            self.start_service(name)

    def start_console(self, extra_env: Mapping[str, str] | None = None) -> ConsolePorts:
        """The local identity provider, then the console calling the running services as
        the delegate ``console`` of the users file; returns their ports."""
        assert self.users is not None, "start_infrastructure writes the users file"
        ports = self.console or console_ports(self.fixed_ports)
        self.console = ports
        self.services["oidc"] = start_identity_provider(ports, self.workdir, self.log_dir)
        env = console_env(
            ports,
            self.workdir,
            {name: self.ports[name].grpc for name in (*SERVICES, NOTIFIER) if name in self.ports},
            self.users.token(CONSOLE_USER),
            extra_env,
        )
        self.services["console"] = start_console(env, ports, self.log_dir)
        return ports

    def env_for(self, name: str) -> dict[str, str]:
        """The environment a service process gets: exactly what an operator would set."""
        assert self.kafka is not None and self.opensearch is not None
        ports = self.ports.setdefault(name, self._ports_for(name))
        env = child_env()
        env.update(
            {
                "LEGATION_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
                "LEGATION_GRPC_PORT": str(ports.grpc),
                "LEGATION_METRICS_PORT": str(ports.metrics),
                "LEGATION_CONSUMER_POLL_TIMEOUT_MS": "200",
                # noida-db answers fetches at once instead of long-polling.
                "LEGATION_CONSUMER_IDLE_WAIT_MS": "50",
                # Static membership: a restarted service takes its partitions back at once
                # (the noida-db stand-in never evicts a killed dynamic member).
                "LEGATION_CONSUMER_INSTANCE_ID": f"{name}-0",
                "LEGATION_OPENSEARCH_URL": self.opensearch.url,
                "LEGATION_AUTH_USERS_FILE": str(self.users_file),
                "LEGATION_PUBLISHER_SITE_FEED_PATH": str(self.site_feed),
                "LEGATION_LISTENER_POLL_SECONDS": "15",
                # The fixture feeds link to example.org pages that do not exist: fetching
                # their full text would only send the local stack to the internet.
                "LEGATION_LISTENER_FULL_TEXT_MAX_PER_READ": "0",
                # The demo's feeds are fixture files, and the replay servers of the
                # platforms listen on loopback: a production listener refuses both.
                "LEGATION_LISTENER_ALLOW_LOCAL_FEEDS": "true",
                "LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8,::1",
                "LEGATION_EVALUATOR_SNAPSHOT_SECONDS": "10",
            }
        )
        if name == "publisher":
            if self.redirect_port is None:
                self.redirect_port = FIXED_REDIRECT_PORT if self.fixed_ports else free_port()
            env["LEGATION_PUBLISHER_REDIRECT_PORT"] = str(self.redirect_port)
            env["LEGATION_PUBLISHER_REDIRECT_BASE_URL"] = f"http://127.0.0.1:{self.redirect_port}/"
            env["LEGATION_PUBLISHER_CLICK_SECRET"] = self.click_secret
            # Posts scheduled "now" go out within half a second.
            env["LEGATION_PUBLISHER_SCHEDULER_INTERVAL_SECONDS"] = "0.5"
        if name == "engager":
            env["LEGATION_ENGAGER_RULES_FILE"] = str(self.engager_rules_file)
        if ports.web is not None:
            env["LEGATION_WEB_PORT"] = str(ports.web)
        env.update(self.extra_env)
        return env

    def _ports_for(self, name: str) -> ServicePorts:
        web = (FIXED_WEB_PORT if self.fixed_ports else free_port()) if name == "evaluator" else None
        if self.fixed_ports:
            return ServicePorts(*FIXED_PORTS[name], web=web)
        return ServicePorts(free_port(), free_port(), web=web)

    def start_service(self, name: str, wait: bool = True) -> Process:
        process = spawn(
            name, [sys.executable, "-m", f"legation_{name}"], self.log_dir, self.env_for(name)
        )
        self.services[name] = process
        if wait:
            self.wait_healthy(name)
        return process

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        """Waits until service ``name`` answers its health check SERVING."""
        self.services[name].wait_serving(self.ports[name].grpc, timeout=timeout)

    @contextmanager
    def channel(self, name: str, user: str | None = DEFAULT_USER) -> Iterator[grpc.Channel]:
        """A channel to service ``name`` whose calls carry ``user``'s token (None: no token,
        as an outsider would call)."""
        with grpc.insecure_channel(f"127.0.0.1:{self.ports[name].grpc}") as channel:
            if user is None:
                yield channel
                return
            assert self.users is not None, "start_infrastructure writes the users file"
            yield with_token(channel, self.users.token(user))

    def restart_kafka(self) -> None:
        """Stops the broker (SIGTERM) and starts it again on the same port and data: the
        services must ride through it."""
        assert self.kafka is not None
        self.kafka.process.stop()
        self.kafka = start_kafka(self.kafka.data_dir, self.log_dir, port=self.kafka.port)

    def stop_service(self, name: str) -> int:
        """SIGTERM and wait: the service finishes its batch, commits and exits."""
        return self.services[name].stop()

    def kill_service(self, name: str) -> None:
        """SIGKILL: a crash."""
        self.services[name].kill()

    def stop(self) -> dict[str, int]:
        """Stops services (in reverse start order), then the stand-ins; returns the
        services' exit codes."""
        codes = {}
        for name in reversed(list(self.services)):
            codes[name] = self.services[name].stop()
        if self.opensearch is not None:
            self.opensearch.process.stop()
        if self.kafka is not None:
            self.kafka.process.stop()
        return codes

    def pids(self) -> dict[str, int]:
        pids = {name: process.pid for name, process in self.services.items()}
        if self.kafka is not None:
            pids["kafka"] = self.kafka.process.pid
        if self.opensearch is not None:
            pids["opensearch"] = self.opensearch.process.pid
        return pids
