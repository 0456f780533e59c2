"""Publisher settings (environment variables ``LEGATION_*``)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from legation_core.auth import ROLES
from legation_core.config import CoreSettings
from legation_publisher.domain.workflow import parse_steps


def _known_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(sorted(ROLES))})")
    return role


class PublisherSettings(CoreSettings):
    """Core settings plus where and how the site's Atom feed is published."""

    grpc_port: int = Field(50062, ge=0, le=65535, description="gRPC API port")
    metrics_port: int = Field(9462, ge=0, le=65535, description="Prometheus /metrics port")
    publisher_site_feed_path: Path = Field(
        Path("site/feed.atom"),
        description="The site's Atom feed file; it is also the channel's record of what was "
        "published, so keep it on a persistent volume",
    )
    publisher_site_base_url: str = Field(
        "https://ministry.example/news/",
        description="Public URL of the news pages; a post's URL is this plus its post id",
    )
    publisher_site_title: str = Field(
        "Ministry news", min_length=1, max_length=200, description="Title of the site's feed"
    )

    publisher_approval_steps: str = Field(
        "policy-desk:approver,head-of-communications:approver",
        description="The approval steps in order, as step:role pairs separated by commas; "
        "each step needs its role, and one user passes at most one step of a variant",
    )
    publisher_draft_role: str = Field("editor", description="Role that drafts and translates")
    publisher_publish_role: str = Field(
        "publisher", description="Role that schedules posts and retries or cancels deliveries"
    )
    publisher_channels_file: Path | None = Field(
        None,
        description="YAML or JSON file of further channels (WordPress, Mastodon, Bluesky, "
        "Telegram, email, webhook) in the legation-channels format; secrets come from the "
        "environment variables it names",
    )
    publisher_channels: str = Field(
        "site-atom", description="Channels a post goes to when its request names none"
    )
    publisher_redirect_port: int = Field(
        8462, ge=0, le=65535, description="Port of the short-link endpoint (/r/<code>)"
    )
    publisher_redirect_base_url: str = Field(
        "http://127.0.0.1:8462/",
        description="Public URL under which the short-link endpoint is reached; short links "
        "are this plus r/<code>",
    )
    publisher_click_secret: str = Field(
        "",
        description="Secret from which the daily salt of the clicks' visitor fingerprints "
        "(hashed address and User-Agent) is derived; give every replica the same one, at least "
        "32 characters. Empty: a random secret per process (a restart may count a visitor's "
        "click once more that day)",
    )
    publisher_click_window_seconds: int = Field(
        86_400,
        ge=60,
        le=86_400,
        description="A visitor's clicks on one short link count once per window of this many "
        "seconds (a divisor of 86400; windows start at UTC midnight)",
    )
    publisher_clicks_per_address_per_hour: int = Field(
        60,
        ge=1,
        le=100_000,
        description="Most clicks counted per client address and hour, per replica; beyond, "
        "readers are still redirected but their clicks are not counted",
    )
    publisher_scheduler_interval_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often due deliveries are looked for"
    )
    publisher_delivery_max_attempts: int = Field(
        5, ge=1, le=100, description="Attempts of a delivery before it is recorded as failed"
    )

    @field_validator("publisher_approval_steps")
    @classmethod
    def _steps(cls, text: str) -> str:
        for step in parse_steps(text):
            _known_role(step.role)
        return text

    @field_validator("publisher_draft_role", "publisher_publish_role")
    @classmethod
    def _role(cls, role: str) -> str:
        return _known_role(role)

    @field_validator("publisher_click_window_seconds")
    @classmethod
    def _divides_a_day(cls, seconds: int) -> int:
        if 86_400 % seconds:
            raise ValueError("must divide 86400 (a day) evenly: 3600, 21600, 86400, ...")
        return seconds

    @field_validator("publisher_click_secret")
    @classmethod
    def _long_enough(cls, secret: str) -> str:
        if secret and len(secret) < 32:
            raise ValueError("at least 32 characters (or empty for a random one per process)")
        return secret

    @field_validator("publisher_redirect_base_url")
    @classmethod
    def _redirect_url(cls, url: str) -> str:
        return cls._http_base_url(url)

    @field_validator("publisher_site_feed_path")
    @classmethod
    def _feed_path_writable(cls, path: Path) -> Path:
        if path.is_dir():
            raise ValueError("is a directory: name the feed file, for example site/feed.atom")
        # The channel creates missing directories on its first write; here we only check it
        # will be able to, so a bad volume mount stops start-up instead of the first post.
        ancestor = path.absolute().parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise ValueError(f"{ancestor} is not a directory")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise ValueError(f"directory {ancestor} is not writable")
        return path

    @field_validator("publisher_site_base_url")
    @classmethod
    def _http_base_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL, for example https://host/news/")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        return parts.geturl() if parts.path.endswith("/") else parts.geturl() + "/"
