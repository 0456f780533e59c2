"""Listener settings: defaults and validation of its own variables."""

from __future__ import annotations

import pytest

from legation_core.config import ConfigError, load_settings
from legation_listener.config import ListenerSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GRPC_PORT", "METRICS_PORT", "LISTENER_POLL_SECONDS"):
        monkeypatch.delenv(f"LEGATION_{name}", raising=False)
    settings = load_settings(ListenerSettings)
    assert (settings.grpc_port, settings.metrics_port) == (50061, 9461)
    assert settings.listener_poll_seconds == 60
    assert settings.listener_fetch_timeout_seconds == 10
    assert settings.listener_fetch_retries == 3


def test_reads_environment_and_rejects_a_non_positive_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATION_LISTENER_POLL_SECONDS", "2.5")
    assert load_settings(ListenerSettings).listener_poll_seconds == 2.5
    monkeypatch.setenv("LEGATION_LISTENER_POLL_SECONDS", "0")
    with pytest.raises(ConfigError, match="LEGATION_LISTENER_POLL_SECONDS"):
        load_settings(ListenerSettings)


def test_a_source_credential_is_bound_to_its_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATION_LISTENER_MASTODON_ACCESS_TOKEN", "t0k")
    monkeypatch.delenv("LEGATION_LISTENER_MASTODON_INSTANCE_URL", raising=False)
    with pytest.raises(ConfigError, match="LEGATION_LISTENER_MASTODON_INSTANCE_URL"):
        load_settings(ListenerSettings)
    monkeypatch.setenv("LEGATION_LISTENER_MASTODON_INSTANCE_URL", "https://social.example.org")
    assert load_settings(ListenerSettings).listener_mastodon_instance_url.endswith(".org")
    monkeypatch.setenv("LEGATION_LISTENER_REDDIT_API_URL", "oauth.reddit.com")
    with pytest.raises(ConfigError, match="LEGATION_LISTENER_REDDIT_API_URL"):
        load_settings(ListenerSettings)
