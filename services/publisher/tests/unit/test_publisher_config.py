"""Publisher settings from the environment, and the wiring of ``__main__``."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from legation_core.auth import Policy, check_policy
from legation_core.config import ConfigError, load_settings
from legation_core.grpc_server import Registrar
from legation_publisher.__main__ import policy_from, wire
from legation_publisher.adapters.policy import policy_for
from legation_publisher.config import PublisherSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("FEED_PATH", "BASE_URL", "TITLE"):
        monkeypatch.delenv(f"LEGATION_PUBLISHER_SITE_{name}", raising=False)
    monkeypatch.delenv("LEGATION_GRPC_PORT", raising=False)
    monkeypatch.delenv("LEGATION_METRICS_PORT", raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings(PublisherSettings)
    assert (settings.grpc_port, settings.metrics_port) == (50062, 9462)
    assert settings.publisher_site_feed_path == Path("site/feed.atom")
    assert settings.publisher_site_base_url == "https://ministry.example/news/"
    assert settings.publisher_site_title == "Ministry news"


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEGATION_PUBLISHER_SITE_FEED_PATH", str(tmp_path / "a" / "b" / "f.xml"))
    monkeypatch.setenv("LEGATION_PUBLISHER_SITE_BASE_URL", "http://localhost:8000/posts")
    monkeypatch.setenv("LEGATION_PUBLISHER_SITE_TITLE", "Nouvelles")
    settings = load_settings(PublisherSettings)
    assert settings.publisher_site_feed_path == tmp_path / "a" / "b" / "f.xml"
    assert settings.publisher_site_base_url == "http://localhost:8000/posts/"
    assert settings.publisher_site_title == "Nouvelles"


@pytest.mark.parametrize("url", ["ftp://host/news/", "ministry.example/news", "https://h/?q=1"])
def test_a_bad_base_url_names_the_variable(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("LEGATION_PUBLISHER_SITE_BASE_URL", url)
    with pytest.raises(ConfigError, match="LEGATION_PUBLISHER_SITE_BASE_URL"):
        load_settings(PublisherSettings)


def test_a_feed_path_that_cannot_be_created_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LEGATION_PUBLISHER_SITE_FEED_PATH", str(tmp_path / "file" / "feed.atom"))
    with pytest.raises(ConfigError, match=r"LEGATION_PUBLISHER_SITE_FEED_PATH.*not a directory"):
        load_settings(PublisherSettings)


def test_a_feed_path_that_is_a_directory_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEGATION_PUBLISHER_SITE_FEED_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"LEGATION_PUBLISHER_SITE_FEED_PATH.*is a directory"):
        load_settings(PublisherSettings)


class FakeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()


class FakeRuntime:
    """The part of ServiceRuntime that ``wire`` uses."""

    def __init__(self) -> None:
        self.producer = object()
        self.metrics = FakeMetrics()
        self.grpc: list[tuple[Registrar, str]] = []

    def add_grpc(self, registrar: Registrar, full_service_name: str, policy: Policy) -> None:
        self.grpc.append((registrar, full_service_name))


def test_wire_refuses_a_damaged_feed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "feed.atom").write_text("not xml")
    monkeypatch.setenv("LEGATION_PUBLISHER_SITE_FEED_PATH", str(tmp_path / "feed.atom"))
    with pytest.raises(ConfigError, match="LEGATION_PUBLISHER_SITE_FEED_PATH"):
        wire(FakeRuntime(), load_settings(PublisherSettings))  # type: ignore[arg-type]


def test_the_access_policy_covers_every_rpc_with_the_configured_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATION_PUBLISHER_APPROVAL_STEPS", "legal:publisher,chief:admin")
    workflow = policy_from(load_settings(PublisherSettings))
    policy = policy_for(workflow)
    check_policy(policy)  # a rule for every RPC of the service, or it would not start
    assert policy.rules["Approve"].roles == frozenset({"publisher", "admin"})
    assert policy.rules["CreatePost"].roles == frozenset({"editor"})
    assert policy.rules["Schedule"].command


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEGATION_PUBLISHER_APPROVAL_STEPS", "desk"),
        ("LEGATION_PUBLISHER_APPROVAL_STEPS", "desk:wizard"),
        ("LEGATION_PUBLISHER_DRAFT_ROLE", "wizard"),
        ("LEGATION_PUBLISHER_REDIRECT_BASE_URL", "go.example/"),
    ],
)
def test_bad_workflow_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings(PublisherSettings)
