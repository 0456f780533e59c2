"""The console on the local stack: its local identity provider (``oidc_provider``), the
group mapping of the demo people, and the console process, configured exactly as an
operator would (environment variables, a mapping file, a client secret, a service token)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from legation_devstack.processes import (
    GaveUp,
    Process,
    child_env,
    free_port,
    http_ok,
    spawn,
    wait_until,
)

CLIENT_ID = "legation-console"
FIXED_CONSOLE_PORT = 8080
FIXED_CONSOLE_METRICS_PORT = 9466
FIXED_OIDC_PORT = 8090

# What the local identity provider's groups grant (DEMO_PEOPLE in oidc_provider.py): the
# file a ministry writes for its own provider's groups.
GROUP_MAPPING: Mapping[str, Mapping[str, list[str]]] = {
    "legation-analysts": {"roles": ["analyst", "viewer"]},
    "legation-press-officers": {"roles": ["officer", "viewer"]},
    "legation-editors": {"roles": ["editor", "publisher", "viewer"]},
    "legation-approvers": {"roles": ["approver", "viewer"]},
    "legation-campaign-leads": {"roles": ["analyst", "viewer"]},
    "legation-viewers": {"roles": ["viewer"]},
    "unit-central": {"units": ["central"]},
    "unit-embassy-madrid": {"units": ["embassy-madrid"]},
}


@dataclass
class ConsolePorts:
    console: int
    metrics: int
    oidc: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.console}"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.oidc}"


def console_ports(fixed: bool) -> ConsolePorts:
    """The fixed ports of ``make run``, or free ones (tests)."""
    if fixed:
        return ConsolePorts(FIXED_CONSOLE_PORT, FIXED_CONSOLE_METRICS_PORT, FIXED_OIDC_PORT)
    return ConsolePorts(free_port(), free_port(), free_port())


def start_identity_provider(ports: ConsolePorts, workdir: Path, log_dir: Path) -> Process:
    """The local OpenID Connect provider, knowing the console as its one client."""
    secret_file = workdir / "oidc-client-secret"
    if not secret_file.exists():
        secret_file.touch(mode=0o600)
        secret_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
    process = spawn(
        "oidc",
        [
            sys.executable,
            "-m",
            "legation_devstack.oidc_provider",
            "--port",
            str(ports.oidc),
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            str(secret_file),
            "--redirect-uri",
            f"{ports.url}/auth/callback",
            "--post-logout-redirect-uri",
            f"{ports.url}/signed-out",
        ],
        log_dir,
        _clean_env(),
    )
    _wait_http(process, f"{ports.issuer}/healthz", "the local identity provider")
    return process


def console_env(
    ports: ConsolePorts,
    workdir: Path,
    grpc_ports: Mapping[str, int],
    service_token: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The console's environment on the local stack."""
    mapping = workdir / "console-groups.yaml"
    mapping.write_text(yaml.safe_dump({"groups": {k: dict(v) for k, v in GROUP_MAPPING.items()}}))
    env = _clean_env()
    env.update(
        {
            "LEGATION_CONSOLE_PORT": str(ports.console),
            "LEGATION_CONSOLE_HOST": "127.0.0.1",
            "LEGATION_METRICS_PORT": str(ports.metrics),
            "LEGATION_CONSOLE_PUBLIC_URL": ports.url,
            "LEGATION_CONSOLE_SESSION_SECRET": secrets.token_urlsafe(48),
            "LEGATION_CONSOLE_OIDC_ISSUER": ports.issuer,
            "LEGATION_CONSOLE_OIDC_CLIENT_ID": CLIENT_ID,
            "LEGATION_CONSOLE_OIDC_CLIENT_SECRET": (workdir / "oidc-client-secret").read_text(),
            "LEGATION_CONSOLE_GROUP_MAPPING_FILE": str(mapping),
            "LEGATION_CONSOLE_SERVICE_TOKEN": service_token,
            "LEGATION_CONSOLE_LIVE_INTERVAL_SECONDS": "1",
            **{
                f"LEGATION_CONSOLE_{name.upper()}_ADDRESS": f"127.0.0.1:{port}"
                for name, port in grpc_ports.items()
            },
        }
    )
    env.update(extra or {})
    return env


def start_console(env: Mapping[str, str], ports: ConsolePorts, log_dir: Path) -> Process:
    """The console process, waited for until it answers."""
    process = spawn("console", [sys.executable, "-m", "legation_console"], log_dir, env)
    _wait_http(process, f"{ports.url}/healthz", "the console")
    return process


def _clean_env() -> dict[str, str]:
    return child_env()


def _wait_http(process: Process, url: str, what: str) -> None:
    def up() -> bool:
        process.require_alive()
        return http_ok(url)

    try:
        wait_until(up, 60, what, detail=process.log_tail)
    except (TimeoutError, GaveUp):
        process.stop()
        raise
