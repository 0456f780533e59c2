"""The README is the newcomer's map: keep its topic and configuration tables complete."""

from __future__ import annotations

from pathlib import Path

from legation_console.config import ConsoleSettings
from legation_core.catalog import default_catalog
from legation_core.config import ENV_PREFIX, CoreSettings
from legation_engager.config import EngagerSettings
from legation_evaluator.config import EvaluatorSettings
from legation_listener.config import ListenerSettings
from legation_notifier.config import NotifierSettings
from legation_publisher.config import PublisherSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_topic_is_in_the_readme() -> None:
    for spec in default_catalog():
        assert f"`{spec.name}`" in README, spec.name


def test_every_setting_is_in_the_readme() -> None:
    for settings in (
        CoreSettings,
        ListenerSettings,
        PublisherSettings,
        EngagerSettings,
        EvaluatorSettings,
        NotifierSettings,
        ConsoleSettings,
    ):
        for field in settings.model_fields:
            assert f"`{ENV_PREFIX}{field.upper()}`" in README, field


def test_the_two_commands_are_in_the_readme() -> None:
    assert "make run" in README
    assert "make test" in README
