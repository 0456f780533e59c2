"""Listener settings (environment variables ``LEGATION_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from legation_core.config import CoreSettings
from legation_core.disclosure import MIN_KEY_BYTES
from legation_core.networks import parse_networks


class ListenerSettings(CoreSettings):
    """The core settings plus how often and how patiently sources are read, the sources'
    credentials, and the inbound webhook."""

    grpc_port: int = Field(50061, ge=0, le=65535, description="gRPC API port")
    metrics_port: int = Field(9461, ge=0, le=65535, description="Prometheus /metrics port")
    listener_poll_seconds: float = Field(
        60.0, gt=0, description="Interval between two polls of every tracked feed"
    )
    listener_fetch_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Timeout of one HTTP request for a feed"
    )
    listener_fetch_retries: int = Field(
        3, ge=0, le=10, description="Retries of a feed read after a connection error, 5xx or 429"
    )
    listener_preview_buffer_items: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Most recent feed items kept in memory for PreviewQuery",
    )
    listener_spike_baseline_hours: int = Field(
        12, ge=1, le=168, description="Hours before a window that form its spike baseline"
    )
    listener_spike_stddevs: float = Field(
        3.0, ge=0, le=100, description="A spike exceeds the baseline mean by this many stddevs"
    )
    listener_spike_min_count: int = Field(
        10, ge=1, description="Fewest mentions in an hour that can be a spike"
    )
    listener_max_pages_per_poll: int = Field(
        10, ge=1, le=1000, description="Pages read from one source in one poll (the rest waits)"
    )
    listener_source_failing_after: int = Field(
        3,
        ge=1,
        le=1000,
        description="Failed reads in a row after which a source is reported failing "
        "(legation.listen.source-health.v1; recovered at the next read that works)",
    )
    listener_page_size: int = Field(
        40,
        ge=1,
        le=100,
        description="Items asked per page of a timeline, search or listing (Mastodon: at most 40)",
    )
    listener_full_text_max_per_read: int = Field(
        20,
        ge=0,
        le=1000,
        description="Linked articles fetched (trafilatura) per feed read for summary-only items",
    )
    listener_insights_seconds: float = Field(
        3600.0,
        gt=0,
        description="Interval between two community and theme reports of every active issue",
    )
    listener_insights_mentions: int = Field(
        5000,
        ge=100,
        le=100_000,
        description="Most recent mentions kept per issue (30 days) for communities, themes, tone",
    )
    listener_train_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the issues whose analyst labels changed retrain their relevance "
        "and stance models (in the background, one issue at a time)",
    )
    listener_mastodon_access_token: str = Field(
        "", description="Mastodon access token (public timelines need none)"
    )
    listener_mastodon_instance_url: str = Field(
        "",
        pattern=r"^(https?://[^\s/]+)?$",
        description="The one instance the Mastodon token is sent to; others are read anonymously",
    )
    listener_bluesky_handle: str = Field(
        "", description="Bluesky handle to log in with (empty: anonymous AppView reads)"
    )
    listener_bluesky_app_password: str = Field("", description="Bluesky app password")
    listener_bluesky_service_url: str = Field(
        "https://bsky.social",
        pattern=r"^https?://[^\s/]+$",
        description="The one service the Bluesky login goes to; other hosts are read anonymously",
    )
    listener_reddit_client_id: str = Field("", description="Reddit OAuth application id")
    listener_reddit_client_secret: str = Field("", description="Reddit OAuth application secret")
    listener_reddit_token_url: str = Field(
        "https://www.reddit.com",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Where the Reddit application-only token comes from (/api/v1/access_token)",
    )
    listener_reddit_api_url: str = Field(
        "https://oauth.reddit.com",
        pattern=r"^https?://[^\s/]+$",
        description="The one API host Reddit sources may name (it receives the OAuth token)",
    )
    listener_reddit_user_agent: str = Field(
        "legation-listener/0.1", min_length=1, description="User-Agent Reddit asks for"
    )
    listener_webhook_port: int = Field(
        9471, ge=0, le=65535, description="Port of the inbound webhook (0 picks one)"
    )
    listener_webhook_secret: str = Field(
        "", description="HMAC-SHA256 secret of the webhook; empty: the webhook is not served"
    )
    pseudonym_key: str = Field(
        "",
        description=(
            "Key of the pseudonyms on the derived streams for departments (at least 32"
            " characters, kept secret); empty: the listener derives no stream"
        ),
    )
    listener_allow_local_feeds: bool = Field(
        False,
        description=(
            "Development only: feeds may be local files (paths, file:// URLs), in issues and"
            " previews; otherwise they are refused"
        ),
    )
    listener_fetch_allowed_networks: str = Field(
        "",
        description=(
            "Comma-separated networks (127.0.0.0/8, ::1) feeds, articles and instances may be"
            " fetched from besides public addresses; loopback, private, link-local, multicast"
            " and reserved addresses are refused otherwise"
        ),
    )
    listener_preview_max_concurrent: int = Field(
        2,
        ge=1,
        le=4,
        description=(
            "PreviewQuery calls reading feeds at once; beyond, RESOURCE_EXHAUSTED (the gRPC"
            " server has 8 workers)"
        ),
    )
    listener_preview_deadline_seconds: float = Field(
        15.0, gt=0, le=120, description="Most time a PreviewQuery spends reading its feeds"
    )

    @field_validator("listener_fetch_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # ValueError names the entry
        return value

    @field_validator("pseudonym_key")
    @classmethod
    def _key_is_long_enough(cls, value: str) -> str:
        if value and len(value.encode()) < MIN_KEY_BYTES:
            raise ValueError(f"must be at least {MIN_KEY_BYTES} bytes (or empty)")
        return value

    @model_validator(mode="after")
    def _token_has_its_instance(self) -> ListenerSettings:
        # A token sent to whatever instance an issue names would leak to any host.
        if self.listener_mastodon_access_token and not self.listener_mastodon_instance_url:
            raise ValueError(
                "LEGATION_LISTENER_MASTODON_ACCESS_TOKEN needs"
                " LEGATION_LISTENER_MASTODON_INSTANCE_URL (the instance it belongs to)"
            )
        return self
