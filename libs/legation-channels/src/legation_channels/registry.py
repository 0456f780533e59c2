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

The file's format is a pydantic model built from the kinds (:func:`channels_file_model`;
its JSON Schema: ``make config-schemas``): each kind declares its options
(:class:`ChannelOptions`) and secrets (:class:`ChannelSecrets`) as models and how a channel
is built from them (:class:`ChannelKind`). :func:`build_channels` checks everything first and
raises one :class:`ChannelConfigError` listing every problem, each naming its field
(``channels[1].options.base_url: is required``). Kinds beyond the built-in ones are passed in
``extra_kinds``.
"""

from __future__ import annotations

import functools
import operator
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar, cast

import httpx
from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, create_model

from legation_channels.adapters.bluesky import BlueskyChannel
from legation_channels.adapters.chat import MatrixChannel, SlackChannel, TeamsChannel
from legation_channels.adapters.email_newsletter import EmailNewsletterChannel
from legation_channels.adapters.mastodon import MAX_CHARACTERS, MastodonChannel
from legation_channels.adapters.site_atom import SiteAtomChannel
from legation_channels.adapters.telegram import TelegramChannel
from legation_channels.adapters.webhook import WebhookChannel
from legation_channels.adapters.wordpress import WordPressChannel
from legation_channels.base import Channel
from legation_core.config import (
    ConfigError,
    ConfigFileError,
    ConfigModel,
    Location,
    expect,
    problem,
    read_config_file,
    validate_document,
)

_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ChannelConfigError(ValueError):
    """The channels configuration is invalid; ``problems`` names every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid channels configuration: " + "; ".join(problems))
        self.problems = problems


# --- the types of options and secrets ---------------------------------------------------------

#: Text that is not blank (a required option).
Text = Annotated[str, Field(pattern=r"\S"), expect("expected a non-empty string", types=True)]
#: Any text, even empty (an option with a default).
AnyText = Annotated[str, expect("expected a non-empty string", types=True)]
#: An http(s) URL.
Url = Annotated[
    str,
    Field(pattern=r"^https?://[^/\s]+"),
    expect("{got} is not an http(s) URL", types="expected a non-empty string"),
]
#: A number of seconds, characters, ... above zero.
Positive = Annotated[float, Field(gt=0), expect("expected a positive number", types=True)]
Flag = Annotated[bool, expect("expected true or false", types=True)]
#: A non-empty list of non-empty strings.
Texts = Annotated[
    list[Annotated[str, Field(min_length=1)]],
    Field(min_length=1),
    expect("expected a list of strings", types=True, items=True),
]


def at_least(minimum: int) -> Any:
    """An integer option of at least ``minimum``."""
    return Annotated[
        int, Field(ge=minimum), expect(f"expected an integer >= {minimum}", types=True)
    ]


def _is_set(variable: str, info: ValidationInfo) -> str:
    env = (info.context or {}).get("env")
    if env is not None and not env.get(variable):
        raise problem(f"environment variable {variable} is not set")
    return variable


#: A secret: the name of the environment variable holding it (set, when the file is read
#: with an environment).
EnvVariable = Annotated[
    str,
    Field(min_length=1, description="the environment variable holding the secret"),
    expect("expected an environment variable name", types=True),
    AfterValidator(_is_set),
]


class ChannelOptions(ConfigModel):
    """The options of one kind of channel (its subclass declares them). Null stands for
    an option left out."""

    null_is_absent = True
    unknown_key = "is not an option of this kind"


class TimedOptions(ChannelOptions):
    """Options of a channel that calls a server."""

    timeout_seconds: Positive = 20.0


class ChannelSecrets(ConfigModel):
    """The secrets of one kind of channel: each field names an environment variable."""

    unknown_key = "is not a secret of this kind"


OptionsT = TypeVar("OptionsT", bound=ChannelOptions)


@dataclass(frozen=True)
class ChannelKind(Generic[OptionsT]):
    """A kind of channel: its options and secrets, and how a channel is built from them
    (``build(name, options, secrets)``, the secrets by field as the environment holds them;
    a ValueError from it is reported as ``channels[i].options.<its message>``)."""

    options: type[OptionsT]
    secrets: type[ChannelSecrets]
    build: Callable[[str, OptionsT, Mapping[str, str]], Channel]


def _timeout(options: TimedOptions) -> httpx.Timeout:
    seconds = options.timeout_seconds
    return httpx.Timeout(seconds, connect=min(5.0, seconds))


# --- the built-in kinds -----------------------------------------------------------------------


class WordPressOptions(TimedOptions):
    base_url: Url
    username: Text
    status: AnyText = "publish"


class WordPressSecrets(ChannelSecrets):
    application_password: EnvVariable


def _wordpress(name: str, o: WordPressOptions, secrets: Mapping[str, str]) -> Channel:
    return WordPressChannel(
        name,
        o.base_url,
        o.username,
        secrets["application_password"],
        status=o.status,
        timeout=_timeout(o),
    )


class MastodonOptions(TimedOptions):
    base_url: Url
    visibility: AnyText = "public"
    max_characters: at_least(1) = MAX_CHARACTERS  # type: ignore[valid-type]
    alt_text_required: Flag = True


class AccessTokenSecrets(ChannelSecrets):
    access_token: EnvVariable


def _mastodon(name: str, o: MastodonOptions, secrets: Mapping[str, str]) -> Channel:
    return MastodonChannel(
        name,
        o.base_url,
        secrets["access_token"],
        visibility=o.visibility,
        max_characters=o.max_characters,
        alt_text_required=o.alt_text_required,
        timeout=_timeout(o),
    )


class BlueskyOptions(TimedOptions):
    handle: Text
    service_url: Url = "https://bsky.social"
    web_url: Url = "https://bsky.app"
    alt_text_required: Flag = True


class BlueskySecrets(ChannelSecrets):
    app_password: EnvVariable


def _bluesky(name: str, o: BlueskyOptions, secrets: Mapping[str, str]) -> Channel:
    return BlueskyChannel(
        name,
        o.handle,
        secrets["app_password"],
        service_url=o.service_url,
        web_url=o.web_url,
        alt_text_required=o.alt_text_required,
        timeout=_timeout(o),
    )


class TelegramOptions(TimedOptions):
    chat_id: Text
    api_url: Url = "https://api.telegram.org"


class TelegramSecrets(ChannelSecrets):
    bot_token: EnvVariable


def _telegram(name: str, o: TelegramOptions, secrets: Mapping[str, str]) -> Channel:
    return TelegramChannel(
        name, secrets["bot_token"], o.chat_id, api_url=o.api_url, timeout=_timeout(o)
    )


class EmailOptions(TimedOptions):
    host: Text
    port: at_least(1) = 587  # type: ignore[valid-type]
    sender: Text
    recipients: Texts
    list_address: AnyText = ""
    username: AnyText = ""
    starttls: Flag = False
    ssl: Flag = False
    timeout_seconds: Positive = 30.0
    ca_file: AnyText = Field("", description="a private CA for the SMTP server's certificate")


class EmailSecrets(ChannelSecrets):
    password: EnvVariable | None = None


def _email(name: str, o: EmailOptions, secrets: Mapping[str, str]) -> Channel:
    return EmailNewsletterChannel(
        name,
        o.host,
        o.port,
        o.sender,
        tuple(o.recipients),
        list_address=o.list_address,
        username=o.username,
        password=secrets.get("password", ""),
        starttls=o.starttls,
        use_ssl=o.ssl,
        timeout=o.timeout_seconds,
        # A private CA for the SMTP server's certificate; the system's CAs otherwise.
        ssl_context=ssl.create_default_context(cafile=o.ca_file) if o.ca_file else None,
    )


class WebhookOptions(TimedOptions):
    url: Url
    max_text_length: at_least(0) = Field(0, description="0: no limit")  # type: ignore[valid-type]


class WebhookSecrets(ChannelSecrets):
    signing_secret: EnvVariable


def _webhook(name: str, o: WebhookOptions, secrets: Mapping[str, str]) -> Channel:
    return WebhookChannel(
        name,
        o.url,
        secrets["signing_secret"],
        max_text_length=o.max_text_length or None,
        timeout=_timeout(o),
    )


class ChatHookSecrets(ChannelSecrets):
    # The incoming-webhook URL is the credential: a secret, not an option.
    webhook_url: EnvVariable


def _slack(name: str, o: TimedOptions, secrets: Mapping[str, str]) -> Channel:
    return SlackChannel(name, secrets["webhook_url"], timeout=_timeout(o))


def _teams(name: str, o: TimedOptions, secrets: Mapping[str, str]) -> Channel:
    return TeamsChannel(name, secrets["webhook_url"], timeout=_timeout(o))


class MatrixOptions(TimedOptions):
    homeserver: Url
    room_id: Text


def _matrix(name: str, o: MatrixOptions, secrets: Mapping[str, str]) -> Channel:
    return MatrixChannel(
        name, o.homeserver, o.room_id, secrets["access_token"], timeout=_timeout(o)
    )


class SiteAtomOptions(ChannelOptions):
    feed_path: Text
    base_url: Url
    title: AnyText = "News"


def _site_atom(name: str, o: SiteAtomOptions, secrets: Mapping[str, str]) -> Channel:
    return SiteAtomChannel(Path(o.feed_path), o.base_url, o.title, name=name)


#: The built-in kinds.
KINDS: dict[str, ChannelKind[Any]] = {
    "site-atom": ChannelKind(SiteAtomOptions, ChannelSecrets, _site_atom),
    "wordpress": ChannelKind(WordPressOptions, WordPressSecrets, _wordpress),
    "mastodon": ChannelKind(MastodonOptions, AccessTokenSecrets, _mastodon),
    "bluesky": ChannelKind(BlueskyOptions, BlueskySecrets, _bluesky),
    "telegram": ChannelKind(TelegramOptions, TelegramSecrets, _telegram),
    "email": ChannelKind(EmailOptions, EmailSecrets, _email),
    "webhook": ChannelKind(WebhookOptions, WebhookSecrets, _webhook),
    "slack": ChannelKind(TimedOptions, ChatHookSecrets, _slack),
    "teams": ChannelKind(TimedOptions, ChatHookSecrets, _teams),
    "matrix": ChannelKind(MatrixOptions, AccessTokenSecrets, _matrix),
}


# --- the file ---------------------------------------------------------------------------------


def _needed(schema: dict[str, Any], model: type[Any]) -> None:
    """In the schema, ``options`` and ``secrets`` are required when the kind has required
    ones (the model takes them as empty when left out, to name each missing one)."""
    for part in ("options", "secrets"):
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        fields = getattr(annotation, "model_fields", {})
        if any(field.is_required() for field in fields.values()):
            schema["properties"][part].pop("default", None)
            schema.setdefault("required", []).append(part)


class _Channel(ConfigModel):
    model_config = ConfigDict(json_schema_extra=_needed)
    unknown_key = "is not a channel field"
    name: Annotated[
        str,
        Field(pattern=_NAME_PATTERN, description="unique: the channel in events and the API"),
        expect("{got} must be lower-case letters, digits and -", types=True),
    ]


class ChannelsFile(ConfigModel):
    """A channels file (LEGATION_PUBLISHER_CHANNELS_FILE, LEGATION_ENGAGER_CHANNELS_FILE):
    the channels posts and replies go to; secrets are environment variables' names."""

    model_config = ConfigDict(title="Legation channels file")
    document = "a mapping with a 'channels' list"
    unknown_key = "is not a channels file field ({known})"
    kinds: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def document_problems(cls, data: Mapping[Any, Any]) -> list[tuple[Location, str]]:
        found = super().document_problems(data)
        entries = data.get("channels")
        seen: set[str] = set()
        # Here, not after the entries are valid: a name used twice is named beside the
        # problems of the entries.
        for position, entry in enumerate(entries if isinstance(entries, list) else []):
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                where = ("channels", position, "name")
                found.append((where, f"{name!r} is used by another channel"))
            seen.add(name)
        return found

    @classmethod
    def relocated(cls, loc: Location) -> Location:
        # A channel's problems are under its kind in pydantic's location (the union's tag).
        if len(loc) > 2 and loc[0] == "channels" and loc[2] in cls.kinds:
            return loc[:2] + loc[3:]
        return loc


def _titled(kind: str) -> str:
    return "".join(part.title() for part in kind.split("-"))


@functools.cache
def _file_model(kinds: tuple[tuple[str, ChannelKind[Any]], ...]) -> type[ChannelsFile]:
    entries = []
    for kind, spec in kinds:
        title = _titled(kind)
        # The kind's own options and secrets, so unknown ones name it.
        options = type(
            f"{title}Options",
            (spec.options,),
            {
                "__doc__": f"The options of a {kind} channel.",
                "__module__": __name__,
                "unknown_key": f"is not an option of {kind}",
            },
        )
        secrets = type(
            f"{title}Secrets",
            (spec.secrets,),
            {
                "__doc__": f"The secrets of a {kind} channel: environment variables' names.",
                "__module__": __name__,
                "unknown_key": f"is not a secret of {kind}",
            },
        )
        tag: Any = cast(Any, Literal)[kind]  # the kind's name, known at run time
        entries.append(
            create_model(
                f"{title}Channel",
                __base__=_Channel,
                __module__=__name__,
                __doc__=f"A {kind} channel.",
                kind=(tag, ...),
                options=(options, Field(default={}, validate_default=True)),
                secrets=(secrets, Field(default={}, validate_default=True)),
            )
        )
    # One entry model per kind, told apart by ``kind``.
    one_of: Any = Annotated[functools.reduce(operator.or_, entries), Field(discriminator="kind")]
    listed: Any = cast(Any, list)[one_of]
    model = create_model(
        "ChannelsFile",
        __base__=ChannelsFile,
        __module__=__name__,
        __doc__=ChannelsFile.__doc__,
        channels=(listed, ...),
    )
    model.kinds = frozenset(kind for kind, _spec in kinds)
    return model


def channels_file_model(
    extra_kinds: Mapping[str, ChannelKind[Any]] | None = None,
) -> type[ChannelsFile]:
    """The model of a channels file with the built-in kinds and ``extra_kinds``."""
    return _file_model(tuple(sorted({**KINDS, **(extra_kinds or {})}.items())))


def load_channels_config(path: str | Path) -> Any:
    """Reads a channels file: JSON if it ends in .json, YAML otherwise; raises
    ChannelConfigError naming the file when it cannot be read or parsed."""
    try:
        return read_config_file(path, "the channels file")
    except ConfigFileError as error:
        raise ChannelConfigError([str(error)]) from None


def build_channels(
    config: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
    extra_kinds: Mapping[str, ChannelKind[Any]] | None = None,
) -> dict[str, Channel]:
    """The channels ``config`` describes, by name, in order. Raises ChannelConfigError
    naming every bad field (and every secret whose environment variable is not set);
    nothing is contacted while building."""
    env = os.environ if env is None else env
    kinds = {**KINDS, **(extra_kinds or {})}
    document = validate_document(
        channels_file_model(extra_kinds), config, error=ChannelConfigError, context={"env": env}
    )
    problems: list[str] = []
    built: dict[str, Channel] = {}
    for position, entry in enumerate(document.channels):  # type: ignore[attr-defined]
        secrets = {
            field: env[variable]
            for field, variable in entry.secrets.model_dump(exclude_none=True).items()
        }
        try:
            built[entry.name] = kinds[entry.kind].build(entry.name, entry.options, secrets)
        except ValueError as error:  # the adapter refused an option
            problems.append(f"channels[{position}].options.{error}")
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
    extra_kinds: Mapping[str, ChannelKind[Any]] | None = None,
) -> dict[str, Channel]:
    """The channels of the file a service setting names (``variable``, for example
    ``LEGATION_ENGAGER_CHANNELS_FILE``); raises ConfigError naming the variable, so a bad
    file stops the service at start-up (exit 2)."""
    try:
        return build_channels(load_channels_config(path), extra_kinds=extra_kinds)
    except ChannelConfigError as error:
        raise ConfigError(f"{variable}: {error}") from None
    except OSError as error:  # a channel's own file (an SMTP CA bundle) cannot be read
        raise ConfigError(f"{variable}: {error}") from None
