"""A service's life: start its servers and loops, stop them in order on SIGTERM.

Each service's ``__main__`` builds a :class:`ServiceRuntime`, adds its consume loops,
periodic jobs and gRPC servicers, and calls :meth:`ServiceRuntime.run`. On SIGTERM or
SIGINT the runtime stops taking work (health goes NOT_SERVING, gRPC refuses new calls),
lets loops finish their batch and commit, flushes the producer, closes, and exits 0.
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from types import FrameType
from wsgiref.types import WSGIApplication

from prometheus_client import make_wsgi_app

from legation_core.audit import KafkaAuditSink
from legation_core.auth import (
    AuditSink,
    AuthError,
    AuthInterceptor,
    Directory,
    Policy,
    check_policy,
    load_users,
)
from legation_core.catalog import Catalog, default_catalog
from legation_core.codec import EventCodec
from legation_core.config import ConfigError, CoreSettings, SettingsT, load_settings
from legation_core.consumer import BatchHandler, ConsumerLoop
from legation_core.grpc_server import (
    Registrar,
    ServerTls,
    build_health_server,
    build_server,
)
from legation_core.health import HealthReporter, Heartbeat
from legation_core.http_server import Authenticated, HttpServer
from legation_core.kafka import EventProducer, missing_topics
from legation_core.logs import configure_logging
from legation_core.metrics import Metrics

log = logging.getLogger(__name__)


class ServiceRuntime:
    """Shared plumbing of one service process."""

    def __init__(
        self, service: str, settings: CoreSettings, catalog: Catalog | None = None
    ) -> None:
        self.service = service
        self.settings = settings
        self.users = auth_directory(settings)  # first: a config error needs no broker
        self.catalog = catalog or default_catalog()
        self.codec = EventCodec(self.catalog)
        self.metrics = Metrics()
        self.stop = threading.Event()
        self.producer = EventProducer(settings, service, self.catalog, self.metrics)
        self._loops: list[ConsumerLoop] = []
        self._periodic: list[tuple[str, float, Callable[[], None], Heartbeat]] = []
        self._registrars: list[Registrar] = []
        self._grpc_names: list[str] = []
        self._policies: list[Policy] = []
        self.audit: AuditSink | None = KafkaAuditSink(self.producer, service)
        self.grpc_port: int | None = None
        self._http_apps: list[tuple[str, int, WSGIApplication, str, bool]] = []
        self.metrics_port: int | None = None
        self.http_ports: dict[str, int] = {}
        self.grpc_health_port: int | None = None
        self._failed = False

    def group(self, purpose: str) -> str:
        """The consumer group name for one of this service's loops."""
        return f"legation.{self.service}.{purpose}"

    def add_consumer(
        self,
        purpose: str,
        topics: Sequence[str],
        handler: BatchHandler,
    ) -> ConsumerLoop:
        """Adds a consume loop running ``handler`` and returns it (see
        :class:`~legation_core.consumer.ConsumerLoop`)."""
        loop = ConsumerLoop(
            settings=self.settings,
            service=self.service,
            group=self.group(purpose),
            topics=topics,
            handler=handler,
            codec=self.codec,
            producer=self.producer,
            metrics=self.metrics,
            stop=self.stop,
        )
        self._loops.append(loop)
        return loop

    def add_periodic(self, name: str, interval_seconds: float, job: Callable[[], None]) -> None:
        """Runs ``job`` every ``interval_seconds`` until stopping; a failure is logged and the
        job runs again next time."""
        self._periodic.append((name, interval_seconds, job, Heartbeat()))

    def add_grpc(self, registrar: Registrar, full_service_name: str, policy: Policy) -> None:
        """Serves a gRPC service under its access ``policy``; raises ConfigError (the service
        refuses to start) when the policy misses a method of the service."""
        if policy.service != full_service_name:
            raise ConfigError(f"the policy of {policy.service} given for {full_service_name}")
        try:
            check_policy(policy)
        except AuthError as error:
            raise ConfigError(str(error)) from None
        self._registrars.append(registrar)
        self._grpc_names.append(full_service_name)
        self._policies.append(policy)

    def interceptor(self) -> AuthInterceptor:
        """The authentication, authorization and audit of this service's gRPC calls."""
        return AuthInterceptor(self.users, self._policies, self.audit)

    def add_http(
        self,
        name: str,
        port: int,
        app: WSGIApplication,
        *,
        roles: Collection[str] | None,
        port_variable: str | None = None,
    ) -> None:
        """Serves a WSGI ``app`` (a web page, a JSON API) on ``port`` (0 picks one) while
        the service runs, over TLS when ``LEGATION_HTTP_TLS_CERT``/``KEY`` are set; the bound
        port is in ``http_ports[name]`` once running. Callers need one of ``roles``,
        recognised by the gRPC users file (see
        :class:`~legation_core.http_server.Authenticated`); ``roles=None`` serves everyone
        and must be a deliberate choice (a public link). ``port_variable`` names the setting
        of the port in the error when it cannot be bound (the service exits 2)."""
        if roles is not None:
            app = Authenticated(app, self.users, roles)
        variable = port_variable or f"the {name} port"
        self._http_apps.append((name, port, app, variable, roles is not None))

    def _bind_http(self) -> list[HttpServer]:
        """Binds the metrics port and every HTTP app's port (not yet serving); raises
        ConfigError naming the setting of a port or TLS file that does not work."""
        tls = http_tls(self.settings)
        apps = [
            (
                "metrics",
                self.settings.metrics_port,
                make_wsgi_app(self.metrics.registry),
                "LEGATION_METRICS_PORT",
                False,
            ),
            *self._http_apps,
        ]
        servers: list[HttpServer] = []
        try:
            for name, port, app, variable, credentials in apps:
                host = self.settings.metrics_host if name == "metrics" else "0.0.0.0"
                try:
                    servers.append(HttpServer(name, port, app, host=host, tls=tls))
                except ssl.SSLError as error:
                    raise ConfigError(
                        f"LEGATION_HTTP_TLS_CERT/LEGATION_HTTP_TLS_KEY: {error}"
                    ) from None
                except OSError as error:
                    raise ConfigError(f"{variable}: cannot listen on {port}: {error}") from None
                if credentials and tls is None:
                    log.warning(
                        "an HTTP port takes tokens over plaintext: set LEGATION_HTTP_TLS_CERT "
                        "and LEGATION_HTTP_TLS_KEY outside development",
                        extra={"http_server": name, "port": servers[-1].port},
                    )
        except ConfigError:
            for server in servers:
                server.stop()
            raise
        return servers

    def require_topics(self) -> None:
        """Refuses to start when a topic this service uses does not exist: topics are
        created up front (``legation-topics``), never by broker auto-create."""
        names = sorted(
            {t.name for t in self.catalog.produced_by(self.service)}
            | {t.name for t in self.catalog.consumed_by(self.service)}
            | {t.dlq for t in self.catalog.consumed_by(self.service)}
        )
        missing = missing_topics(self.settings, names)
        if missing:
            raise ConfigError(
                f"topics missing on {self.settings.kafka_bootstrap_servers}: {', '.join(missing)}"
                " (create them with legation-topics)"
            )

    def run(self) -> int:
        """Serves until SIGTERM/SIGINT; returns the process exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            metrics_server, *http_servers = self._bind_http()
        except ConfigError as error:
            log.error(str(error))
            print(f"{self.service}: {error}", file=sys.stderr)
            return 2
        self.metrics_port = metrics_server.port
        metrics_server.start()
        server, health_servicer, self.grpc_port = build_server(
            self.settings.grpc_port,
            self._registrars,
            self._grpc_names,
            auth=self.interceptor(),
            tls=server_tls(self.settings),
        )
        health_server = None
        if self.settings.grpc_health_port is not None:
            health_server, self.grpc_health_port = build_health_server(
                self.settings.grpc_health_port, health_servicer
            )
        reporter = HealthReporter(
            health_servicer, self._grpc_names, self.settings.liveness_timeout_seconds
        )
        threads = []
        for loop in self._loops:
            reporter.add(loop.heartbeat)
            threads.append(
                threading.Thread(target=self._guard, args=(loop.run,), name=loop.group, daemon=True)
            )
        for name, interval, job, heartbeat in self._periodic:
            reporter.add(heartbeat)
            threads.append(
                threading.Thread(
                    target=self._repeat,
                    args=(name, interval, job, heartbeat),
                    name=name,
                    daemon=True,
                )
            )
        reporter.check()
        server.start()
        for http_server in http_servers:
            http_server.start()
            self.http_ports[http_server.name] = http_server.port
        if health_server is not None:
            health_server.start()
        for thread in threads:
            thread.start()
        threading.Thread(target=reporter.run, args=(self.stop,), daemon=True).start()
        log.info(
            "started",
            extra={
                "grpc_port": self.grpc_port,
                "grpc_health_port": self.grpc_health_port,
                "grpc_tls": self.settings.grpc_tls_cert is not None,
                "auth": "disabled" if self.users is None else "on",
                "metrics_port": metrics_server.port,
                "http_tls": self.settings.http_tls_cert is not None,
                "http_ports": self.http_ports,
                "consumers": [loop.group for loop in self._loops],
            },
        )
        self.stop.wait()
        log.info("stopping")
        reporter.shut_down()
        for http_server in http_servers:
            http_server.stop()
        grace = self.settings.shutdown_grace_seconds
        stopped = server.stop(grace)
        if health_server is not None:
            health_server.stop(0)
        for thread in threads:
            thread.join(timeout=grace)
        stuck = [thread.name for thread in threads if thread.is_alive()]
        stopped.wait(grace)
        self.producer.close()
        metrics_server.stop()
        if stuck:
            log.error("work still running after the grace period", extra={"threads": stuck})
            return 1
        if self._failed:
            return 1
        log.info("stopped")
        return 0

    def _guard(self, work: Callable[[], None]) -> None:
        """A loop that dies takes the service down (exit 1) so the orchestrator restarts it,
        rather than leaving a process that serves gRPC but consumes nothing."""
        try:
            work()
        except Exception:
            log.exception("a consume loop died; stopping the service")
            self._failed = True
            self.stop.set()

    def _repeat(
        self, name: str, interval: float, job: Callable[[], None], heartbeat: Heartbeat
    ) -> None:
        while not self.stop.is_set():
            try:
                job()
            except Exception:
                log.exception("periodic job failed", extra={"job": name})
            heartbeat.beat()
            self.stop.wait(interval)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal received", extra={"signal": signal.Signals(signum).name})
        self.stop.set()


def auth_directory(settings: CoreSettings) -> Directory | None:
    """The users allowed to call the gRPC API, or None when authentication is explicitly
    disabled; raises ConfigError naming the variable."""
    if settings.auth_disabled:
        log.warning(
            "AUTHENTICATION IS DISABLED (LEGATION_AUTH_DISABLED=true): anyone who reaches the "
            "gRPC port may call every RPC as 'anonymous' with every role"
        )
        return None
    if settings.auth_users_file is None:
        raise ConfigError(
            "LEGATION_AUTH_USERS_FILE is required: the users allowed to call the gRPC API "
            "(or set LEGATION_AUTH_DISABLED=true for development only)"
        )
    try:
        return load_users(settings.auth_users_file)
    except AuthError as error:
        raise ConfigError(f"LEGATION_AUTH_USERS_FILE: {error}") from None


def server_tls(settings: CoreSettings) -> ServerTls | None:
    """The gRPC server's TLS files from the settings, None for plaintext; raises ConfigError
    naming the variable of a file that cannot be read."""
    if settings.grpc_tls_cert is None or settings.grpc_tls_key is None:
        return None
    for variable, path in (
        ("LEGATION_GRPC_TLS_CERT", settings.grpc_tls_cert),
        ("LEGATION_GRPC_TLS_KEY", settings.grpc_tls_key),
        ("LEGATION_GRPC_TLS_CLIENT_CA", settings.grpc_tls_client_ca),
    ):
        if path is not None and not path.is_file():
            raise ConfigError(f"{variable}: {path} is not a readable file")
    return ServerTls(settings.grpc_tls_cert, settings.grpc_tls_key, settings.grpc_tls_client_ca)


def http_tls(settings: CoreSettings) -> ServerTls | None:
    """The HTTP ports' TLS files from the settings (the same shape as the gRPC server's),
    None for plaintext; raises ConfigError naming the variable of a file that cannot be
    read."""
    if settings.http_tls_cert is None or settings.http_tls_key is None:
        return None
    for variable, path in (
        ("LEGATION_HTTP_TLS_CERT", settings.http_tls_cert),
        ("LEGATION_HTTP_TLS_KEY", settings.http_tls_key),
    ):
        if not path.is_file():
            raise ConfigError(f"{variable}: {path} is not a readable file")
    return ServerTls(settings.http_tls_cert, settings.http_tls_key)


def main_for(
    service: str,
    settings_class: type[SettingsT],
    wire: Callable[[ServiceRuntime, SettingsT], None],
) -> int:
    """The whole ``__main__`` of a service: settings, logging, topic check, wiring, run.
    A configuration problem exits 2 with the message on stderr."""
    try:
        settings = load_settings(settings_class)
    except ConfigError as error:
        print(f"{service}: {error}", file=sys.stderr)
        return 2
    configure_logging(service, settings.log_level)
    try:
        runtime = ServiceRuntime(service, settings)
        runtime.require_topics()
        wire(runtime, settings)
        server_tls(settings)
        http_tls(settings)
    except ConfigError as error:
        log.error(str(error))
        print(f"{service}: {error}", file=sys.stderr)
        return 2
    return runtime.run()
