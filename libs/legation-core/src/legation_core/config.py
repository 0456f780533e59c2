"""Configuration from environment variables, validated at start-up.

Every setting is an environment variable ``LEGATION_<NAME>``. A bad value stops start-up
with a :class:`ConfigError` naming the variable, so an operator can fix it at once.
The files some settings name (users, rules, channels, group mapping) are read with
:func:`read_config_file`, whose :class:`ConfigFileError` names the file and where in it.
The users, rules and channels files are pydantic models (:class:`ConfigModel`) checked by
:func:`validate_document`, which raises the file's own error listing every problem as
``<field path>: <what was expected> (got <what was there>)``; the same models give the
files' JSON Schemas (``make config-schemas``).
"""

from __future__ import annotations

import ipaddress
import json
import reprlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType
from pydantic_settings import BaseSettings, SettingsConfigDict

from legation_core.networks import Network, parse_networks

ENV_PREFIX = "LEGATION_"


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the environment variable."""


class ConfigFileError(ConfigError):
    """A configuration file cannot be read or parsed; the message is ``<path>: <problem>``
    (a byte offset for text that is not UTF-8, a line and column for a syntax error)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


# libyaml's safe loader when PyYAML was built with it (its wheels are): a hundred times
# faster, and it refuses nesting beyond 1000 levels at once where the Python parser takes
# seconds to reach a RecursionError.
_YAML_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


def read_config_file(path: str | Path, what: str = "the file") -> Any:
    """The document of a configuration file: JSON when its name ends in ``.json``, YAML
    otherwise (None for an empty YAML file). Raises :class:`ConfigFileError` naming
    ``path`` when it cannot be read (``what`` says which file it is), is not UTF-8, or does
    not parse; checking the document's shape is the caller's."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigFileError(path, f"cannot read {what}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        bad = error.object[error.start]
        raise ConfigFileError(
            path, f"not UTF-8 text: byte 0x{bad:02x} at offset {error.start} ({error.reason})"
        ) from None
    is_json = str(path).endswith(".json")
    try:
        return json.loads(text) if is_json else yaml.load(text, Loader=_YAML_LOADER)
    except RecursionError:  # the Python parsers recurse once per nested list or mapping
        raise ConfigFileError(path, "nested too deeply") from None
    except ValueError as error:  # json.JSONDecodeError
        raise ConfigFileError(path, f"not valid JSON: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigFileError(path, f"not valid YAML: {error}") from None


class CoreSettings(BaseSettings):
    """Settings every service reads. Services subclass it to add their own."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", min_length=1, description="Comma-separated host:port of Kafka brokers"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: str | None = Field(None, description="SASL password")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for Kafka TLS")
    kafka_client: Literal["confluent", "kafka-python"] = Field(
        "kafka-python",
        description="The Kafka client the event producer and the consume loops use: "
        "kafka-python (pure Python; the least CPU per mention across the local stack) or "
        "confluent (confluent-kafka, on librdkafka: less CPU per event in one process, more "
        "across the stack on the broker stand-in). Topic creation and table reads use "
        "kafka-python either way",
    )
    kafka_request_timeout_ms: int = Field(
        30_000, ge=1_000, le=300_000, description="Kafka request timeout"
    )
    kafka_max_request_bytes: int = Field(
        1_048_576,
        ge=65_536,
        le=104_857_600,
        description="Largest record a service produces, in bytes as kafka-python counts it "
        "(key, value, headers and batch framing), whichever client sends it; it is also "
        "kafka-python's max_request_size and librdkafka's message.max.bytes (which counts less "
        "of a record). Keep it at or below the brokers' message.max.bytes. A larger event is "
        "refused naming this limit; a larger dead letter is truncated to fit (see the DLQ "
        "headers)",
    )
    consumer_max_batch: int = Field(
        500, ge=1, le=10_000, description="Most records handled per consumer batch"
    )
    consumer_poll_timeout_ms: int = Field(
        500, ge=10, le=10_000, description="How long one poll waits for records"
    )
    consumer_idle_wait_ms: int = Field(
        0,
        ge=0,
        le=5_000,
        description="0: wait for records inside the broker's long poll (Kafka). Above 0: poll "
        "without waiting and sleep this long when idle (doubled after each empty poll up to "
        "LEGATION_CONSUMER_POLL_TIMEOUT_MS), for brokers that answer fetches at once "
        "(the noida-db stand-in), which would otherwise spin a CPU",
    )
    consumer_instance_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Static group membership id, unique per replica (the pod name): a "
        "restarted replica takes its partitions back at once instead of waiting for a rebalance",
    )
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC API port (0 picks one)")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port")
    metrics_host: str = Field(
        "0.0.0.0",
        description="Address the metrics port listens on: 0.0.0.0 (every interface, for a "
        "scraper on another host or pod), 127.0.0.1 (this machine only: a local agent), or "
        "one interface's address",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    shutdown_grace_seconds: float = Field(
        10.0, gt=0, le=120, description="Time to finish in-flight work after SIGTERM"
    )
    liveness_timeout_seconds: float = Field(
        60.0, gt=0, description="A consume loop silent this long marks the service NOT_SERVING"
    )
    auth_users_file: Path | None = Field(
        None,
        description="YAML file of the users allowed to call the gRPC API: name, roles, SHA-256 "
        "hashes of their bearer tokens, client certificate names (required unless "
        "LEGATION_AUTH_DISABLED=true)",
    )
    auth_disabled: bool = Field(
        False,
        description="true: no authentication, every gRPC call runs as `anonymous` with every "
        "role (development only; logged as a warning)",
    )
    grpc_health_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Also serve the health service alone, in plaintext, on this port, with "
        "threads of its own: what probes use, so busy API calls never delay them (and they "
        "need no TLS when the API has it); deploy/ sets 50080",
    )
    grpc_tls_cert: Path | None = Field(
        None, description="PEM certificate chain of the gRPC server; with the key, serve TLS"
    )
    grpc_tls_key: Path | None = Field(None, description="PEM private key of the gRPC server")
    grpc_tls_client_ca: Path | None = Field(
        None,
        description="PEM CA of client certificates: clients must present one it signed "
        "(mutual TLS), and its name can identify a user of the users file",
    )
    http_tls_cert: Path | None = Field(
        None,
        description="PEM certificate chain of the HTTP ports (metrics, pages, short links, "
        "form, webhook); with the key, every HTTP port serves TLS only",
    )
    http_tls_key: Path | None = Field(None, description="PEM private key of the HTTP ports")
    http_trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or CIDR ranges of reverse proxies (your "
        "ingress) whose X-Forwarded-For names the client, for the per-address limits of the "
        "public HTTP ports; empty: the peer's address is the client's",
    )

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> CoreSettings:
        """Refuses a Kafka security setup the client would only reject at connect time."""
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"LEGATION_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "LEGATION_KAFKA_SASL_MECHANISM, LEGATION_KAFKA_SASL_USERNAME and "
                "LEGATION_KAFKA_SASL_PASSWORD"
            )
        if not sasl and self.kafka_sasl_mechanism:
            raise ValueError(
                "LEGATION_KAFKA_SASL_MECHANISM is set but LEGATION_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol} does not use SASL"
            )
        if (self.grpc_tls_cert is None) != (self.grpc_tls_key is None):
            raise ValueError("LEGATION_GRPC_TLS_CERT and LEGATION_GRPC_TLS_KEY go together")
        if self.grpc_tls_client_ca is not None and self.grpc_tls_cert is None:
            raise ValueError(
                "LEGATION_GRPC_TLS_CLIENT_CA needs LEGATION_GRPC_TLS_CERT and LEGATION_GRPC_TLS_KEY"
            )
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ValueError("LEGATION_HTTP_TLS_CERT and LEGATION_HTTP_TLS_KEY go together")
        return self

    @field_validator("metrics_host")
    @classmethod
    def _is_a_host(cls, value: str) -> str:
        if value == "localhost":
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                "expected an IP address (0.0.0.0, 127.0.0.1, ::) or localhost"
            ) from None
        return value

    @field_validator("http_trusted_proxies")
    @classmethod
    def _are_networks(cls, value: str) -> str:
        parse_networks(value)  # raises ValueError naming the bad entry
        return value

    def trusted_proxies(self) -> tuple[Network, ...]:
        """The reverse proxies of ``LEGATION_HTTP_TRUSTED_PROXIES``."""
        return parse_networks(self.http_trusted_proxies)

    def bootstrap_servers(self) -> list[str]:
        """The broker addresses, blanks removed."""
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]


SettingsT = TypeVar("SettingsT", bound=CoreSettings)
# Any settings class: a deployable without Kafka or gRPC (the console) has its own.
AnySettingsT = TypeVar("AnySettingsT", bound=BaseSettings)


def load_settings(settings_class: type[AnySettingsT]) -> AnySettingsT:
    """Reads ``settings_class`` from the environment or raises :class:`ConfigError`."""
    try:
        return settings_class()
    except ValidationError as error:
        problems = []
        for item in error.errors():
            if not item["loc"]:  # a check across settings: its message names them
                problems.append(str(item["msg"]).removeprefix("Value error, "))
                continue
            variable = ENV_PREFIX + str(item["loc"][0]).upper()
            problems.append(f"{variable}: {item['msg']} (got {item.get('input')!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


# --- configuration files as models --------------------------------------------------------

Location = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound="ConfigModel")

# A value shown in a message in a few dozen characters, whatever its size (an alias bomb).
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60
_PYDANTIC_TYPES = frozenset(get_args(ErrorType))


def shown(value: Any) -> str:
    """``value``'s repr, cut to a few dozen characters."""
    return _SHORT.repr(value)


def kind_of(value: Any) -> str:
    """What a YAML or JSON value is, in the words of an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _is_type_error(kind: str) -> bool:
    """A value of the wrong type (or none) rather than one outside its limits."""
    return kind.endswith(("_type", "_parsing")) or kind in {"missing", "finite_number"}


def problem(message: str) -> PydanticCustomError:
    """An error whose message is ``message`` as it is (for validators and :func:`at`)."""
    return PydanticCustomError("config", message)


def at(problems: Sequence[tuple[Location, str]], title: str = "document") -> ValidationError:
    """A ValidationError of ``problems`` (location, message) to raise from a validator: each
    is reported at its location below the validated value (a check across entries, such as
    a name used twice, names the entry)."""
    return ValidationError.from_exception_data(
        title,
        [InitErrorDetails(type=problem(message), loc=loc, input=None) for loc, message in problems],
    )


def expect(message: str, *, types: bool | str = False, items: bool = False) -> WrapValidator:
    """An ``Annotated`` marker: a value breaking its limits (a range, a pattern, a length)
    is reported as ``message`` instead of pydantic's words; ``{got}`` in it is the value.
    ``types``: a value of the wrong type too (True: with ``message``; text: with that
    message). ``items``: any problem inside the value (its items) too, as one problem of
    the value itself."""
    type_message = message if types is True else types or None

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as error:
            wrong_type = False
            for item in error.errors(include_url=False):
                if item["loc"] and not items:
                    raise  # a problem of an item, reported at the item
                if not item["loc"] and _is_type_error(item["type"]):
                    if type_message is None:
                        raise  # the type error's own words
                    wrong_type = True
            chosen = type_message if wrong_type and type_message else message
            raise problem(chosen.replace("{got}", shown(value))) from None

    return WrapValidator(check)


def problems_of(error: ValidationError) -> list[str]:
    """Every problem of ``error`` as ``<field path>: <message>``, the field path written as
    in the document (``labels[2].when``), in the project's words (``expected a number (got
    null)``), values shown short."""
    return [_message(item) for item in error.errors(include_url=False)]


def path_of(loc: Location) -> str:
    """``("labels", 2, "when")`` → ``labels[2].when``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _message(item: ErrorDetails) -> str:
    loc, kind, value = tuple(item["loc"]), item["type"], item.get("input")
    context = item.get("ctx") or {}
    got = f"(got {kind_of(value)})"
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        field = str(context.get("discriminator", "")).strip("'")
        loc = (*loc, field)
        tag = value.get(field) if isinstance(value, Mapping) else None
        if kind == "union_tag_not_found" or tag is None:
            text = "is required"
        else:
            tags = sorted(t.strip().strip("'") for t in str(context["expected_tags"]).split(","))
            text = f"{shown(tag)} is not one of {', '.join(tags)}"
    elif kind == "missing":
        text = "is required"
    elif kind in {"float_type", "float_parsing"}:
        text = f"expected a number {got}"
    elif kind in {"int_type", "int_parsing", "int_from_float"}:
        text = f"expected an integer {got}"
    elif kind == "finite_number":
        text = f"expected a finite number (got {shown(value)})"
    elif kind == "string_type":
        text = f"expected text {got}"
    elif kind in {"bool_type", "bool_parsing"}:
        text = f"expected true or false {got}"
    elif kind in {"list_type", "tuple_type", "set_type", "frozen_set_type"}:
        text = f"expected a list {got}"
    elif kind in {"dict_type", "model_type", "model_attributes_type"}:
        text = f"expected a mapping {got}"
    elif kind == "literal_error":
        expected = str(context.get("expected", "")).replace("'", "").replace(" or ", ", ")
        text = f"expected one of {expected} (got {shown(value)})"
    elif kind == "invalid_key":
        text = "expected text keys"
    elif kind == "value_error":
        text = str(item["msg"]).removeprefix("Value error, ")
    elif kind in _PYDANTIC_TYPES:
        text = f"{item['msg'][:1].lower()}{item['msg'][1:]} (got {shown(value)})"
    else:  # a project's own message (problem(), expect())
        text = str(item["msg"])
    where = path_of(loc)
    return f"{where}: {text}" if where else text


def _in_document_order(found: list[InitErrorDetails]) -> list[InitErrorDetails]:
    """``found`` grouped by the key they concern (in the order each first appears), and
    within a key by list position: a check across entries (a name used twice) is reported
    among the entry's other problems."""
    first: dict[str | int, int] = {}
    for details in found:
        first.setdefault(details["loc"][0] if details["loc"] else "", len(first))

    def place(details: InitErrorDetails) -> tuple[int, tuple[int, ...]]:
        loc = details["loc"]
        return first[loc[0] if loc else ""], tuple(p for p in loc if isinstance(p, int))

    return sorted(found, key=place)


def _again(item: ErrorDetails, loc: Location) -> InitErrorDetails:
    """``item`` as it can be raised again (at ``loc``)."""
    kind: str | PydanticCustomError = item["type"]
    if kind not in _PYDANTIC_TYPES:
        kind = problem(str(item["msg"]))
    details = InitErrorDetails(type=kind, loc=loc, input=item.get("input"))
    if "ctx" in item and not isinstance(kind, PydanticCustomError):
        details["ctx"] = item["ctx"]
    return details


class ConfigModel(BaseModel):
    """A part of a configuration file. Unknown keys are refused one by one with
    :attr:`unknown_key`'s words (keys of any YAML type: numbers, booleans, null), types are
    strict (``"50"`` is not a number, ``1`` is not true), NaN and infinities are refused,
    null stands for an empty mapping (YAML writes an empty section so), and the problems of
    a mapping are reported together, in the order of the document's list positions."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
        model_title_generator=lambda model: model.__name__.lstrip("_"),
    )

    #: What the whole document must be, when it is not even a mapping (the top model's).
    document: ClassVar[str] = "a mapping"
    #: How an unknown key is reported; ``{known}`` is the known keys.
    unknown_key: ClassVar[str] = "is not a known key ({known})"
    #: True: a key whose value is null counts as left out (its default, or required).
    null_is_absent: ClassVar[bool] = False

    @classmethod
    def known_keys(cls) -> list[str]:
        """The keys a document may use here."""
        return sorted(field.alias or name for name, field in cls.model_fields.items())

    @classmethod
    def document_problems(cls, data: Mapping[Any, Any]) -> list[tuple[Location, str]]:
        """Problems seen on the raw mapping, reported beside the fields' own: its unknown
        keys (subclasses add checks across entries that must not wait for every entry to be
        valid)."""
        known = set(cls.known_keys())
        # As text: YAML keys may be numbers, booleans or null, which do not sort with text.
        unknown = sorted(str(key) for key in data if key not in known)
        message = cls.unknown_key.replace("{known}", ", ".join(sorted(known)))
        return [((key,), message) for key in unknown]

    @classmethod
    def relocated(cls, loc: Location) -> Location:
        """Where a problem of a field is reported (subclasses drop a union's tag)."""
        return loc

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            return handler(data)  # refused with its type
        found = [
            InitErrorDetails(type=problem(message), loc=loc, input=None)
            for loc, message in cls.document_problems(data)
        ]
        known = set(cls.known_keys())
        given = {
            key: value
            for key, value in data.items()
            if key in known and not (value is None and cls.null_is_absent)
        }
        try:
            result = handler(given)
        except ValidationError as error:
            found += [
                _again(item, cls.relocated(tuple(item["loc"])))
                for item in error.errors(include_url=False)
            ]
        if found:
            raise ValidationError.from_exception_data(cls.__name__, _in_document_order(found))
        return result


class DocumentError(ValueError):
    """A configuration document is invalid; ``problems`` names every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def validate_document(
    model: type[ModelT],
    raw: Any,
    *,
    error: Callable[[list[str]], Exception] = DocumentError,
    context: Mapping[str, Any] | None = None,
) -> ModelT:
    """``raw`` (a parsed file, :func:`read_config_file`) as ``model``; raises
    ``error(problems)`` (the file's own error: RulesError, ChannelConfigError, AuthError)
    naming every problem (:func:`problems_of`). ``context`` reaches the model's validators
    (the environment a channels file's secrets come from)."""
    if not isinstance(raw, Mapping):
        raise error([f"expected {model.document} (got {kind_of(raw)})"])
    try:
        return model.model_validate(raw, context=dict(context or {}))
    except ValidationError as invalid:
        raise error(problems_of(invalid)) from None
