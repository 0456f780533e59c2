"""Channels from configuration: every bad field is named, secrets come from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from legation_channels.base import Channel
from legation_channels.registry import (
    KINDS,
    ChannelConfigError,
    ChannelKind,
    ChannelOptions,
    ChannelSecrets,
    Text,
    build_channels,
    channels_from_file,
    load_channels_config,
)
from legation_core.config import ConfigError

ENV = {"MASTODON_TOKEN": "t0k", "BSKY_PASSWORD": "pw", "TG_TOKEN": "123:abc", "HOOK": "s3"}

GOOD = """
channels:
  - name: wp
    kind: wordpress
    options: {base_url: "http://127.0.0.1:1", username: editor}
    secrets: {application_password: HOOK}
  - name: mastodon-main
    kind: mastodon
    options: {base_url: "http://127.0.0.1:1", max_characters: 1000}
    secrets: {access_token: MASTODON_TOKEN}
  - name: bsky
    kind: bluesky
    options: {handle: embassy.example.org, service_url: "http://127.0.0.1:1"}
    secrets: {app_password: BSKY_PASSWORD}
  - name: tg
    kind: telegram
    options: {chat_id: "@embassy", api_url: "http://127.0.0.1:1"}
    secrets: {bot_token: TG_TOKEN}
  - name: newsletter
    kind: email
    options: {host: 127.0.0.1, port: 2525, sender: news@embassy.example.org,
              recipients: [list@embassy.example.org]}
  - name: partners-hook
    kind: webhook
    options: {url: "http://127.0.0.1:1/hook"}
    secrets: {signing_secret: HOOK}
"""


def test_every_kind_builds_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(GOOD)
    channels = build_channels(load_channels_config(path), env=ENV)
    assert {name: c.kind for name, c in channels.items()} == {
        "wp": "wordpress",
        "mastodon-main": "mastodon",
        "bsky": "bluesky",
        "tg": "telegram",
        "newsletter": "email",
        "partners-hook": "webhook",
    }
    assert {name: c.reconcile for name, c in channels.items()} == {
        "wp": "lookup",
        "mastodon-main": "idempotency-key",
        "bsky": "lookup",
        "tg": "none",
        "newsletter": "none",
        "partners-hook": "idempotency-key",
    }
    assert channels["mastodon-main"].limits.max_text_length == 1000
    assert channels["bsky"].limits.count_graphemes


def test_every_problem_is_named_at_once() -> None:
    # Every problem of every channel: a channel with a bad name or a missing option still
    # has its other problems named (its secrets).
    config = {
        "channels": [
            {"name": "Bad Name", "kind": "mastodon"},
            {"name": "m", "kind": "myspace"},
            {"name": "m2", "kind": "mastodon", "options": {}, "secrets": {}},
            {
                "name": "m3",
                "kind": "mastodon",
                "options": {"base_url": "ftp://x"},
                "secrets": {"access_token": "MASTODON_TOKEN"},
            },
            {
                "name": "m4",
                "kind": "mastodon",
                "options": {"base_url": "http://x"},
                "secrets": {"access_token": "UNSET_VARIABLE"},
            },
            {
                "name": "m5",
                "kind": "webhook",
                "options": {"url": "http://x", "colour": "red"},
                "secrets": {"signing_secret": "HOOK"},
                "token": "inline",
            },
            {"name": "m5", "kind": "webhook"},
            {
                "name": "tg",
                "kind": "telegram",
                "options": {"chat_id": "@x"},
                "secrets": {"bot_token": "TG_TOKEN", "password": "HOOK"},
            },
            {
                "name": "mail",
                "kind": "email",
                "options": {"host": "h", "sender": "a@b", "recipients": []},
            },
        ]
    }
    with pytest.raises(ChannelConfigError) as error:
        build_channels(config, env=ENV)
    assert error.value.problems == [
        "channels[0].name: 'Bad Name' must be lower-case letters, digits and -",
        "channels[0].options.base_url: is required",
        "channels[0].secrets.access_token: is required",
        "channels[1].kind: 'myspace' is not one of bluesky, email, mastodon, matrix, site-atom, "
        "slack, teams, telegram, webhook, wordpress",
        "channels[2].options.base_url: is required",
        "channels[2].secrets.access_token: is required",
        "channels[3].options.base_url: 'ftp://x' is not an http(s) URL",
        "channels[4].secrets.access_token: environment variable UNSET_VARIABLE is not set",
        "channels[5].token: is not a channel field",
        "channels[5].options.colour: is not an option of webhook",
        "channels[6].name: 'm5' is used by another channel",
        "channels[6].options.url: is required",
        "channels[6].secrets.signing_secret: is required",
        "channels[7].secrets.password: is not a secret of telegram",
        "channels[8].options.recipients: expected a list of strings",
    ]


def test_a_config_without_channels_is_refused() -> None:
    with pytest.raises(
        ChannelConfigError, match="chanels: is not a channels file field"
    ) as refused:
        build_channels({"chanels": []}, env=ENV)
    assert refused.value.problems[-1] == "channels: is required"
    with pytest.raises(ChannelConfigError, match="expected a mapping with a 'channels' list"):
        build_channels(None, env=ENV)
    with pytest.raises(ChannelConfigError, match=r"channels: expected a list \(got a mapping\)"):
        build_channels({"channels": {"name": "x"}}, env=ENV)


def test_extra_kinds_plug_in_beside_the_built_in_ones() -> None:
    built: list[str] = []

    class FeedOptions(ChannelOptions):
        feed_path: Text

    def site_atom(name: str, options: FeedOptions, secrets: Mapping[str, str]) -> Channel:
        built.append(options.feed_path)
        return build_channels(
            {
                "channels": [
                    {
                        "name": name,
                        "kind": "webhook",
                        "options": {"url": "http://127.0.0.1:1/x"},
                        "secrets": {"signing_secret": "HOOK"},
                    }
                ]
            },
            env=ENV,
        )[name]

    config: dict[str, Any] = {
        "channels": [{"name": "site", "kind": "site-atom", "options": {"feed_path": "/f"}}]
    }
    assert list(
        build_channels(
            config,
            env=ENV,
            extra_kinds={"site-atom": ChannelKind(FeedOptions, ChannelSecrets, site_atom)},
        )
    ) == ["site"]
    assert built == ["/f"]
    config["channels"][0]["options"] = {}
    with pytest.raises(ChannelConfigError, match=r"channels\[0\].options.feed_path: is required"):
        build_channels(
            config,
            env=ENV,
            extra_kinds={"site-atom": ChannelKind(FeedOptions, ChannelSecrets, site_atom)},
        )


def test_a_channels_file_that_is_not_utf8_stops_start_up_naming_it_and_the_offset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "channels.yaml"
    path.write_bytes(b"channels:\n- name: caf\xe9\n")
    with pytest.raises(ChannelConfigError, match=rf"{path}: not UTF-8 text: byte 0xe9 at offs"):
        load_channels_config(path)
    with pytest.raises(ConfigError) as refused:
        channels_from_file(path, "LEGATION_ENGAGER_CHANNELS_FILE")
    assert str(refused.value) == (
        f"LEGATION_ENGAGER_CHANNELS_FILE: invalid channels configuration: {path}: not UTF-8 "
        "text: byte 0xe9 at offset 21 (invalid continuation byte)"
    )


def test_fields_of_any_yaml_type_are_named_not_a_type_error() -> None:
    # Keys that do not sort together, a list as the kind and a NaN timeout were TypeErrors
    # (or a NaN timeout given to the HTTP client).
    config = {
        "channels": [
            {"name": "a", "kind": ["webhook"]},
            {"name": "b", "kind": "webhook", 1: 2, None: 3},
            {
                "name": "c",
                "kind": "webhook",
                "options": {"url": "http://127.0.0.1:1/hook", "timeout_seconds": float("nan")},
                "secrets": {"signing_secret": "HOOK"},
            },
            {
                "name": "d",
                "kind": "webhook",
                "options": {"url": "http://127.0.0.1:1/hook", 7: 1, "z": 1},
                "secrets": {"signing_secret": "HOOK"},
            },
        ]
    }
    with pytest.raises(ChannelConfigError) as refused:
        build_channels(config, env=ENV)
    assert refused.value.problems == [
        f"channels[0].kind: ['webhook'] is not one of {', '.join(sorted(KINDS))}",
        "channels[1].1: is not a channel field",
        "channels[1].None: is not a channel field",
        "channels[1].options.url: is required",
        "channels[1].secrets.signing_secret: is required",
        "channels[2].options.timeout_seconds: expected a positive number",
        "channels[3].options.7: is not an option of webhook",
        "channels[3].options.z: is not an option of webhook",
    ]
