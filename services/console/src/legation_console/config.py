"""Console settings (environment variables ``LEGATION_*``), validated at start-up.

The console serves people over HTTP and calls the four services over gRPC; it uses no
Kafka and no OpenSearch, so it has its own settings class rather than the services'
:class:`~legation_core.config.CoreSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from legation_console.domain.people import GroupMapping, MappingError, parse_group_mapping
from legation_core.config import ENV_PREFIX, ConfigError, ConfigFileError, read_config_file

# services/console/build/assets for a checkout (editable install); images set the variable.
DEFAULT_ASSETS_DIR = Path(__file__).resolve().parents[2] / "build" / "assets"


class ConsoleSettings(BaseSettings):
    """Everything the console reads from its environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    console_port: int = Field(8080, ge=0, le=65535, description="Console HTTP port (0 picks one)")
    console_host: str = Field("0.0.0.0", min_length=1, description="Address the console binds")
    metrics_port: int = Field(9465, ge=0, le=65535, description="Prometheus /metrics port")
    metrics_host: str = Field(
        "0.0.0.0",
        pattern=r"^[0-9a-fA-F.:]+$|^localhost$",
        description="Address the metrics port listens on (127.0.0.1: this machine only)",
    )
    http_tls_cert: Path | None = Field(
        None,
        description="PEM certificate chain of the HTTP ports (the console's pages and its "
        "metrics); with the key, they serve TLS only",
    )
    http_tls_key: Path | None = Field(None, description="PEM private key of the HTTP ports")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    shutdown_grace_seconds: float = Field(
        10.0, gt=0, le=120, description="Time to finish open requests after SIGTERM"
    )
    console_public_url: str = Field(
        "http://127.0.0.1:8080",
        pattern=r"^https?://[^/]+$",
        description="The console's public base URL, without a path: the OIDC redirect goes to "
        "<url>/auth/callback; https makes the session cookie Secure",
    )
    console_session_secret: SecretStr = Field(
        ...,
        min_length=32,
        description="Key that signs the session cookie (32+ random characters, from a Secret)",
    )
    console_session_max_age_seconds: int = Field(
        8 * 3600, ge=300, le=7 * 24 * 3600, description="A session ends this long after sign-in"
    )
    console_oidc_issuer: str = Field(
        ...,
        pattern=r"^https?://",
        description="The identity provider's issuer URL; its discovery document is "
        "<issuer>/.well-known/openid-configuration",
    )
    console_oidc_client_id: str = Field(..., min_length=1, description="The console's client id")
    console_oidc_client_secret: SecretStr = Field(
        ..., min_length=1, description="The console's client secret at the identity provider"
    )
    console_oidc_scopes: str = Field(
        "openid profile email groups", description="Scopes asked for at sign-in"
    )
    console_oidc_username_claim: str = Field(
        "preferred_username",
        min_length=1,
        description="ID token claim naming the person (what audit records show)",
    )
    console_oidc_groups_claim: str = Field(
        "groups", min_length=1, description="ID token claim listing the person's groups"
    )
    console_group_mapping_file: Path = Field(
        ...,
        description="YAML file mapping the identity provider's groups to Legation roles and "
        "units (see services/console/README.md)",
    )
    console_listener_address: str = Field(
        "127.0.0.1:50061", min_length=3, description="host:port of the listener's gRPC API"
    )
    console_publisher_address: str = Field(
        "127.0.0.1:50062", min_length=3, description="host:port of the publisher's gRPC API"
    )
    console_engager_address: str = Field(
        "127.0.0.1:50063", min_length=3, description="host:port of the engager's gRPC API"
    )
    console_evaluator_address: str = Field(
        "127.0.0.1:50064", min_length=3, description="host:port of the evaluator's gRPC API"
    )
    console_notifier_address: str = Field(
        "127.0.0.1:50065", min_length=3, description="host:port of the notifier's gRPC API"
    )
    console_service_token: SecretStr | None = Field(
        None,
        description="The console's own bearer token for the services (a users-file entry with "
        "delegate_roles); leave unset with mutual TLS",
    )
    console_grpc_tls_ca: Path | None = Field(
        None, description="PEM CA of the services' gRPC certificates: call them over TLS"
    )
    console_grpc_tls_cert: Path | None = Field(
        None, description="PEM client certificate of the console (mutual TLS identity)"
    )
    console_grpc_tls_key: Path | None = Field(None, description="PEM key of that certificate")
    console_grpc_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Deadline of one gRPC call to a service"
    )
    console_assets_dir: Path | None = Field(
        None,
        description="Folder of the built front-end assets (GOV.UK Frontend, htmx); default: "
        "services/console/build/assets, where `make console-assets` puts them",
    )
    console_live_interval_seconds: float = Field(
        2.0, ge=0.2, le=60, description="How often live pages (the inbox) look for changes"
    )

    @model_validator(mode="after")
    def _credentials_are_complete(self) -> ConsoleSettings:
        """Refuses a console that could not identify itself to the services."""
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ValueError("LEGATION_HTTP_TLS_CERT and LEGATION_HTTP_TLS_KEY go together")
        if (self.console_grpc_tls_cert is None) != (self.console_grpc_tls_key is None):
            raise ValueError(
                "LEGATION_CONSOLE_GRPC_TLS_CERT and LEGATION_CONSOLE_GRPC_TLS_KEY go together"
            )
        if self.console_grpc_tls_cert is not None and self.console_grpc_tls_ca is None:
            raise ValueError("LEGATION_CONSOLE_GRPC_TLS_CERT needs LEGATION_CONSOLE_GRPC_TLS_CA")
        if self.console_service_token is None and self.console_grpc_tls_cert is None:
            raise ValueError(
                "the console needs its own identity at the services: "
                "LEGATION_CONSOLE_SERVICE_TOKEN or LEGATION_CONSOLE_GRPC_TLS_CERT/KEY"
            )
        return self

    def assets_dir(self) -> Path:
        """Where the built front-end assets are."""
        return self.console_assets_dir or DEFAULT_ASSETS_DIR

    @property
    def secure_cookies(self) -> bool:
        """Session cookies are Secure when the console is served over https."""
        return self.console_public_url.startswith("https://")


def load_group_mapping(path: Path) -> GroupMapping:
    """The group mapping file; raises ConfigError naming the variable."""
    try:
        raw = read_config_file(path, "the group mapping file")
        return parse_group_mapping(raw, str(path))
    except (ConfigFileError, MappingError) as error:
        raise ConfigError(f"LEGATION_CONSOLE_GROUP_MAPPING_FILE: {error}") from None
