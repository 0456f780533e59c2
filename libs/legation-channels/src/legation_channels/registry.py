"""Channels built from configuration.

A channels file (YAML or JSON) lists the channels; secrets are never inline, each names
the environment variable that holds it::

    channels:
      - name: mastodon-main          # [a-z0-9-], unique: the name in events and the API
        kind: mastodon
        options:
          base_url: https://social.example.org
        secrets:
          access_token: MASTODON_MAIN_TOKEN

:func:`build_channels` checks everything first and raises one :class:`ChannelConfigError`
listing every problem, each naming its field (``channels[1].options.base_url: is
required``). Kinds beyond the built-in ones are passed in ``extra_kinds``.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from legation_channels.adapters.bluesky import BlueskyChannel
from legation_channels.adapters.chat import MatrixChannel, SlackChannel, TeamsChannel
from legation_channels.adapters.email_newsletter import EmailNewsletterChannel
from legation_channels.adapters.mastodon import MAX_CHARACTERS, MastodonChannel
from legation_channels.adapters.site_atom import SiteAtomChannel
from legation_channels.adapters.telegram import TelegramChannel
from legation_channels.adapters.webhook import WebhookChannel
from legation_channels.adapters.wordpress import WordPressChannel
from legation_channels.base import Channel
from legation_core.config import ConfigError

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MISSING = object()


class ChannelConfigError(ValueError):
    """The channels configuration is invalid; ``problems`` names every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid channels configuration: " + "; ".join(problems))
        self.problems = problems


class _Invalid(Exception):
    """One option that cannot be used; collected into ChannelConfigError."""


class Settings:
    """One channel's options and resolved secrets, read with errors naming the field."""

    def __init__(self, where: str, options: Mapping[str, Any], secrets: Mapping[str, str]):
        self.where = where
        self._options = dict(options)
        self._secrets = dict(secrets)
        self._used: set[str] = set()
        self._used_secrets: set[str] = set()
        # Secrets whose environment variable is missing (reported once, by build_channels).
        self.unresolved: set[str] = set()
        self.problems: list[str] = []

    def _get(self, key: str, default: Any) -> Any:
        self._used.add(key)
        value = self._options.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                self.problems.append(f"{self.where}.options.{key}: is required")
                raise _Invalid
            return default
        return value

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or (default is _MISSING and not value.strip()):
            self.problems.append(f"{self.where}.options.{key}: expected a non-empty string")
            raise _Invalid
        return value

    def url(self, key: str, default: Any = _MISSING) -> str:
        value = self.text(key, default)
        if not re.match(r"^https?://[^/\s]+", value):
            self.problems.append(f"{self.where}.options.{key}: {value!r} is not an http(s) URL")
            raise _Invalid
        return value

    def integer(self, key: str, default: Any = _MISSING, minimum: int = 1) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problems.append(f"{self.where}.options.{key}: expected an integer >= {minimum}")
            raise _Invalid
        return value

    def number(self, key: str, default: float) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.problems.append(f"{self.where}.options.{key}: expected a positive number")
            raise _Invalid
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self.problems.append(f"{self.where}.options.{key}: expected true or false")
            raise _Invalid
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key, _MISSING)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) and item for item in value)
        ):
            self.problems.append(f"{self.where}.options.{key}: expected a list of strings")
            raise _Invalid
        return tuple(value)

    def secret(self, key: str, required: bool = True) -> str:
        self._used_secrets.add(key)
        if key in self._secrets:
            return self._secrets[key]
        if key in self.unresolved:
            raise _Invalid  # already reported: its variable is not set
        if required:
            self.problems.append(
                f"{self.where}.secrets.{key}: is required (the name of an environment variable)"
            )
            raise _Invalid
        return ""

    def timeout(self) -> httpx.Timeout:
        seconds = self.number("timeout_seconds", 20.0)
        return httpx.Timeout(seconds, connect=min(5.0, seconds))

    def unknown_options(self) -> list[str]:
        return sorted(set(self._options) - self._used)

    def unknown_secrets(self) -> list[str]:
        return sorted((set(self._secrets) | self.unresolved) - self._used_secrets)


ChannelFactory = Callable[[str, Settings], Channel]


def _wordpress(name: str, s: Settings) -> Channel:
    return WordPressChannel(
        name,
        s.url("base_url"),
        s.text("username"),
        s.secret("application_password"),
        status=s.text("status", "publish"),
        timeout=s.timeout(),
    )


def _mastodon(name: str, s: Settings) -> Channel:
    return MastodonChannel(
        name,
        s.url("base_url"),
        s.secret("access_token"),
        visibility=s.text("visibility", "public"),
        max_characters=s.integer("max_characters", MAX_CHARACTERS),
        alt_text_required=s.boolean("alt_text_required", True),
        timeout=s.number("timeout_seconds", 20.0),
    )


def _bluesky(name: str, s: Settings) -> Channel:
    return BlueskyChannel(
        name,
        s.text("handle"),
        s.secret("app_password"),
        service_url=s.url("service_url", "https://bsky.social"),
        web_url=s.url("web_url", "https://bsky.app"),
        alt_text_required=s.boolean("alt_text_required", True),
        timeout=s.timeout(),
    )


def _telegram(name: str, s: Settings) -> Channel:
    return TelegramChannel(
        name,
        s.secret("bot_token"),
        s.text("chat_id"),
        api_url=s.url("api_url", "https://api.telegram.org"),
        timeout=s.timeout(),
    )


def _email(name: str, s: Settings) -> Channel:
    ca_file = s.text("ca_file", "")
    return EmailNewsletterChannel(
        name,
        s.text("host"),
        s.integer("port", 587),
        s.text("sender"),
        s.texts("recipients"),
        list_address=s.text("list_address", ""),
        username=s.text("username", ""),
        password=s.secret("password", required=False),
        starttls=s.boolean("starttls", False),
        use_ssl=s.boolean("ssl", False),
        timeout=s.number("timeout_seconds", 30.0),
        # A private CA for the SMTP server's certificate; the system's CAs otherwise.
        ssl_context=ssl.create_default_context(cafile=ca_file) if ca_file else None,
    )


def _webhook(name: str, s: Settings) -> Channel:
    limit = s.integer("max_text_length", 0, minimum=0) or None
    return WebhookChannel(
        name, s.url("url"), s.secret("signing_secret"), max_text_length=limit, timeout=s.timeout()
    )


def _slack(name: str, s: Settings) -> Channel:
    # The incoming-webhook URL is the credential: a secret, not an option.
    return SlackChannel(name, s.secret("webhook_url"), timeout=s.timeout())


def _teams(name: str, s: Settings) -> Channel:
    return TeamsChannel(name, s.secret("webhook_url"), timeout=s.timeout())


def _matrix(name: str, s: Settings) -> Channel:
    return MatrixChannel(
        name, s.url("homeserver"), s.text("room_id"), s.secret("access_token"), timeout=s.timeout()
    )


def _site_atom(name: str, s: Settings) -> Channel:
    return SiteAtomChannel(
        Path(s.text("feed_path")), s.url("base_url"), s.text("title", "News"), name=name
    )


#: The built-in kinds.
KINDS: dict[str, ChannelFactory] = {
    "site-atom": _site_atom,
    "wordpress": _wordpress,
    "mastodon": _mastodon,
    "bluesky": _bluesky,
    "telegram": _telegram,
    "email": _email,
    "webhook": _webhook,
    "slack": _slack,
    "teams": _teams,
    "matrix": _matrix,
}


def load_channels_config(path: str | Path) -> Any:
    """Reads a channels file: JSON if it ends in .json, YAML otherwise."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ChannelConfigError([f"{path}: cannot be parsed: {error}"]) from error


def build_channels(
    config: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
    extra_kinds: Mapping[str, ChannelFactory] | None = None,
) -> dict[str, Channel]:
    """The channels ``config`` describes, by name, in order. Raises ChannelConfigError
    naming every bad field; nothing is contacted while building."""
    env = os.environ if env is None else env
    kinds = {**KINDS, **(extra_kinds or {})}
    if not isinstance(config, Mapping) or not isinstance(config.get("channels"), list):
        raise ChannelConfigError(["channels: expected a list of channels"])
    problems: list[str] = []
    built: dict[str, Channel] = {}
    seen: set[str] = set()
    for position, entry in enumerate(config["channels"]):
        where = f"channels[{position}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a mapping with name, kind, options, secrets")
            continue
        for key in sorted(set(entry) - {"name", "kind", "options", "secrets"}):
            problems.append(f"{where}.{key}: is not a channel field")
        name, kind = entry.get("name"), entry.get("kind")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{where}.name: {name!r} must be lower-case letters, digits and -")
            continue
        if name in seen:
            problems.append(f"{where}.name: {name!r} is used by another channel")
            continue
        seen.add(name)
        if kind not in kinds:
            problems.append(f"{where}.kind: {kind!r} is not one of {', '.join(sorted(kinds))}")
            continue
        options = entry.get("options") or {}
        secret_names = entry.get("secrets") or {}
        if not isinstance(options, Mapping):
            problems.append(f"{where}.options: expected a mapping")
            continue
        if not isinstance(secret_names, Mapping):
            problems.append(f"{where}.secrets: expected a mapping of names to env variables")
            continue
        secrets: dict[str, str] = {}
        unresolved: set[str] = set()
        for key, variable in secret_names.items():
            if not isinstance(variable, str) or not variable:
                problems.append(f"{where}.secrets.{key}: expected an environment variable name")
                unresolved.add(str(key))
            elif not env.get(variable):
                problems.append(
                    f"{where}.secrets.{key}: environment variable {variable} is not set"
                )
                unresolved.add(str(key))
            else:
                secrets[str(key)] = env[variable]
        settings = Settings(where, options, secrets)
        settings.unresolved = unresolved
        try:
            channel = kinds[str(kind)](name, settings)
        except _Invalid:
            problems.extend(settings.problems)
            continue
        except ValueError as error:
            problems.append(f"{where}.options.{error}")
            continue
        problems.extend(settings.problems)
        problems.extend(
            f"{where}.options.{key}: is not an option of {kind}"
            for key in settings.unknown_options()
        )
        problems.extend(
            f"{where}.secrets.{key}: is not a secret of {kind}"
            for key in settings.unknown_secrets()
        )
        built[name] = channel
    if problems:
        for channel in built.values():
            close = getattr(channel, "close", None)
            if callable(close):
                close()
        raise ChannelConfigError(problems)
    return built


def channels_from_file(
    path: str | Path,
    variable: str,
    extra_kinds: Mapping[str, ChannelFactory] | None = None,
) -> dict[str, Channel]:
    """The channels of the file a service setting names (``variable``, for example
    ``LEGATION_ENGAGER_CHANNELS_FILE``); raises ConfigError naming the variable, so a bad
    file stops the service at start-up (exit 2)."""
    try:
        return build_channels(load_channels_config(path), extra_kinds=extra_kinds)
    except ChannelConfigError as error:
        raise ConfigError(f"{variable}: {error}") from None
    except OSError as error:
        raise ConfigError(f"{variable}: {error}") from None
