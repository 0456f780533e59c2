"""The configuration files' JSON Schemas (deploy/schemas/config/, ``make config-schemas``;
``make check`` fails when they are stale) agree with the models they are generated from, on
the examples in deploy/examples/ and on documents the models refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from legation_channels.registry import ChannelConfigError, build_channels
from legation_core.auth import AuthError, parse_users
from legation_engager.domain.rules import RulesError, parse_rules

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "deploy" / "schemas" / "config"
EXAMPLES = ROOT / "deploy" / "examples"


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def _errors(schema: str, document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(_schema(schema))
    return [error.message for error in validator.iter_errors(document)]


def _example(name: str) -> tuple[str, Any]:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    return text, yaml.safe_load(text)


def test_the_examples_name_their_schema_and_are_valid_for_both() -> None:
    text, users = _example("users.yaml")
    assert text.startswith("# yaml-language-server: $schema=../schemas/config/users.schema.json")
    assert _errors("users.schema.json", users) == []
    assert len(parse_users(users, "users.yaml").users) == 3

    text, rules = _example("engager-rules.yaml")
    assert "$schema=../schemas/config/engager-rules.schema.json" in text.splitlines()[0]
    assert _errors("engager-rules.schema.json", rules) == []
    assert parse_rules(rules).saved_replies["visa-info"].title == "Visa information"

    text, channels = _example("channels.yaml")
    assert "$schema=../schemas/config/channels.schema.json" in text.splitlines()[0]
    assert _errors("channels.schema.json", channels) == []
    variables = [v for c in channels["channels"] for v in c.get("secrets", {}).values()]
    built = build_channels(channels, env=dict.fromkeys(variables, "x"))
    assert list(built) == [c["name"] for c in channels["channels"]]
    for channel in built.values():
        close = getattr(channel, "close", None)
        if callable(close):
            close()


@pytest.mark.parametrize(
    ("schema", "document", "refuse"),
    [
        ("users.schema.json", {"users": [{"name": "a b", "roles": []}]}, parse_users),
        ("users.schema.json", {"users": [{"name": "a", "roles": ["root"]}]}, parse_users),
        ("users.schema.json", {"users": [{"name": "a", "roles": [], "pw": "x"}]}, parse_users),
        ("engager-rules.schema.json", {"sla": {"high": -1}}, parse_rules),
        ("engager-rules.schema.json", {"priority": {"levels": {"high": "50"}}}, parse_rules),
        ("engager-rules.schema.json", {"labels": [{"label": "Bad"}]}, parse_rules),
        ("engager-rules.schema.json", {"extra": {}}, parse_rules),
        ("channels.schema.json", {"channels": [{"name": "x", "kind": "myspace"}]}, None),
        ("channels.schema.json", {"channels": [{"name": "x", "kind": "webhook"}]}, None),
        (
            "channels.schema.json",
            {"channels": [{"name": "x", "kind": "slack", "secrets": {"webhook_url": "V"}, "a": 1}]},
            None,
        ),
    ],
)
def test_what_the_models_refuse_the_schemas_refuse(
    schema: str, document: dict[str, Any], refuse: Any
) -> None:
    assert _errors(schema, document)
    if refuse is parse_users:
        with pytest.raises(AuthError):
            parse_users(document, "users.yaml")
    elif refuse is parse_rules:
        with pytest.raises(RulesError):
            parse_rules(document)
    else:
        with pytest.raises(ChannelConfigError):
            build_channels(document, env={"V": "x"})
