"""Wiring only: settings, logs, metrics, the services' clients, sign-in, the web
application, and uvicorn serving it until SIGTERM."""

from __future__ import annotations

import logging
import signal
import ssl
import sys
from types import FrameType

import uvicorn
from prometheus_client import make_wsgi_app

from legation_console.adapters.metrics import ConsoleMetrics
from legation_console.adapters.services import ConsoleIdentity, Services
from legation_console.adapters.signin import SignIn
from legation_console.adapters.web import create_app
from legation_console.config import ConsoleSettings, load_group_mapping
from legation_core.config import ConfigError, load_settings
from legation_core.grpc_server import ServerTls
from legation_core.http_server import HttpServer
from legation_core.logs import configure_logging

log = logging.getLogger("legation_console")


def run() -> int:
    """Serves the console; returns the exit code (2: bad configuration)."""
    try:
        settings = load_settings(ConsoleSettings)
        mapping = load_group_mapping(settings.console_group_mapping_file)
    except ConfigError as error:
        print(f"console: {error}", file=sys.stderr)
        return 2
    configure_logging("console", settings.log_level)
    metrics = ConsoleMetrics()
    tls = (
        ServerTls(settings.http_tls_cert, settings.http_tls_key)
        if settings.http_tls_cert is not None and settings.http_tls_key is not None
        else None
    )
    try:
        metrics_server = HttpServer(
            "metrics",
            settings.metrics_port,
            make_wsgi_app(metrics.registry),
            host=settings.metrics_host,
            tls=tls,
        )
    except (OSError, ssl.SSLError) as error:
        print(f"console: LEGATION_METRICS_PORT or LEGATION_HTTP_TLS_*: {error}", file=sys.stderr)
        return 2
    metrics_server.start()
    token = settings.console_service_token
    identity = ConsoleIdentity(
        token=token.get_secret_value() if token is not None else None,
        tls_ca=settings.console_grpc_tls_ca,
        tls_cert=settings.console_grpc_tls_cert,
        tls_key=settings.console_grpc_tls_key,
    )
    addresses = {
        "listener": settings.console_listener_address,
        "publisher": settings.console_publisher_address,
        "engager": settings.console_engager_address,
        "evaluator": settings.console_evaluator_address,
        "notifier": settings.console_notifier_address,
    }
    signin = SignIn(
        issuer=settings.console_oidc_issuer,
        client_id=settings.console_oidc_client_id,
        client_secret=settings.console_oidc_client_secret.get_secret_value(),
        scopes=settings.console_oidc_scopes,
        public_url=settings.console_public_url,
        mapping=mapping,
        username_claim=settings.console_oidc_username_claim,
        groups_claim=settings.console_oidc_groups_claim,
        metrics=metrics,
    )
    app = create_app(
        connect=lambda: Services.connect(
            addresses, identity, metrics, settings.console_grpc_timeout_seconds
        ),
        signin=signin,
        metrics=metrics,
        session_secret=settings.console_session_secret.get_secret_value(),
        session_max_age=settings.console_session_max_age_seconds,
        https=settings.secure_cookies,
        public_url=settings.console_public_url,
        assets_dir=settings.assets_dir(),
        live_interval_seconds=settings.console_live_interval_seconds,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.console_host,
            port=settings.console_port,
            log_config=None,  # the JSON logs configured above
            access_log=False,  # requests are counted in metrics instead
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
            proxy_headers=True,
            server_header=False,
            ssl_certfile=str(tls.cert) if tls is not None else None,
            ssl_keyfile=str(tls.key) if tls is not None else None,
        )
    )
    # uvicorn handles SIGTERM and SIGINT while it serves, then raises the signal again for
    # the handler it found: this one, so a graceful stop exits 0 as the other services do.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped)
    try:
        server.run()  # stops on SIGTERM or SIGINT, after open requests finish
    finally:
        metrics_server.stop()
    log.info("stopped")
    return 0


def _stopped(signum: int, frame: FrameType | None) -> None:
    """The signal uvicorn raises again after its graceful shutdown: nothing left to do."""


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
