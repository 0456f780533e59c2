"""Channels from configuration: every bad field is named, secrets come from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from legation_channels.base import Channel
from legation_channels.registry import (
    ChannelConfigError,
    Settings,
    build_channels,
    load_channels_config,
)

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
        "channels[1].kind: 'myspace' is not one of bluesky, email, mastodon, matrix, site-atom, "
        "slack, teams, telegram, webhook, wordpress",
        "channels[2].options.base_url: is required",
        "channels[3].options.base_url: 'ftp://x' is not an http(s) URL",
        "channels[4].secrets.access_token: environment variable UNSET_VARIABLE is not set",
        "channels[5].token: is not a channel field",
        "channels[5].options.colour: is not an option of webhook",
        "channels[6].name: 'm5' is used by another channel",
        "channels[7].secrets.password: is not a secret of telegram",
        "channels[8].options.recipients: expected a list of strings",
    ]


def test_a_config_without_channels_is_refused() -> None:
    with pytest.raises(ChannelConfigError, match="channels: expected a list"):
        build_channels({"chanels": []}, env=ENV)


def test_extra_kinds_plug_in_beside_the_built_in_ones() -> None:
    built: list[str] = []

    def site_atom(name: str, settings: Settings) -> Channel:
        built.append(settings.text("feed_path"))
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
    assert list(build_channels(config, env=ENV, extra_kinds={"site-atom": site_atom})) == ["site"]
    assert built == ["/f"]
    config["channels"][0]["options"] = {}
    with pytest.raises(ChannelConfigError, match=r"channels\[0\].options.feed_path: is required"):
        build_channels(config, env=ENV, extra_kinds={"site-atom": site_atom})
