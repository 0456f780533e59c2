"""The configuration files a service reads at start-up (the users file, the engager's rules,
a channels file): any file, from a valid one mutated to random bytes, is read into its
configuration or refused with the error the service turns into a clean exit (AuthError,
ConfigError) naming the file or its variable; never another exception, in bounded time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import strategies as st

from legation_channels.registry import channels_from_file
from legation_core.auth import AuthError, Directory, load_users
from legation_core.config import ConfigError
from legation_core.proto_strategies import SPECIAL_STRINGS, hostile_floats, hostile_text, weighted
from legation_devstack.users import write_users_file
from legation_engager.__main__ import load_rules
from legation_engager.config import EngagerSettings
from legation_engager.domain.rules import Rules
from tests.fuzz.budget import Fuzz
from tests.fuzz.harness import ENGAGER_RULES
from tests.fuzz.properties import MemoryBound, PropertyFailed, bounded, failure, internal_text

SECRET_VARIABLE = "LEGATION_FUZZ_CHANNEL_SECRET"
CHANNELS_VARIABLE = "LEGATION_ENGAGER_CHANNELS_FILE"
RULES_VARIABLE = "LEGATION_ENGAGER_RULES_FILE"


@dataclass
class ConfigKind:
    """One kind of configuration file: a valid example, how the service reads it, what it
    gives when valid, and the error and location a refusal must carry."""

    name: str
    example: Callable[[Path], Any]
    read: Callable[[Path], Any]
    valid: type | tuple[type, ...]
    error: type[Exception]
    location: Callable[[Path], str]


def _users_example(folder: Path) -> Any:
    return yaml.safe_load(write_users_file(folder / "example-users.yaml").path.read_text())


def _rules_example(folder: Path) -> Any:
    return {
        **ENGAGER_RULES,
        "sla": {"urgent": 600, "high": 3600},
        "labels": [{"label": "press", "when": {"min_influence": 0.7}}],
        "assignment": [{"when": {"languages": ["fr"]}, "officer": "claire", "team": "fr"}],
        "priority": {"levels": {"urgent": 80, "high": 50}, "urgent_words": ["urgent"]},
    }


def _channels_example(folder: Path) -> Any:
    secret = {"secrets": {"access_token": SECRET_VARIABLE}}
    return {
        "channels": [
            {
                "name": "site",
                "kind": "site-atom",
                "options": {
                    "feed_path": str(folder / "feed.atom"),
                    "base_url": "https://ministry.example/news/",
                },
            },
            {"name": "masto", "kind": "mastodon", "options": {"base_url": "https://s.example"}}
            | secret,
            {
                "name": "hook",
                "kind": "webhook",
                "options": {"url": "https://hooks.example/x", "max_text_length": 500},
                "secrets": {"signing_secret": SECRET_VARIABLE},
            },
            {
                "name": "mail",
                "kind": "email",
                "options": {
                    "host": "smtp.example",
                    "port": 587,
                    "sender": "press@ministry.example",
                    "recipients": ["list@ministry.example"],
                },
            },
        ]
    }


def _read_rules(path: Path) -> Rules:
    return load_rules(EngagerSettings(engager_rules_file=path), {})


def _read_channels(path: Path) -> dict[str, Any]:
    channels = channels_from_file(path, CHANNELS_VARIABLE)
    for channel in channels.values():
        close = getattr(channel, "close", None)
        if callable(close):
            close()
    return channels


KINDS = {
    "users": ConfigKind("users", _users_example, load_users, Directory, AuthError, str),
    "rules": ConfigKind(
        "rules", _rules_example, _read_rules, Rules, ConfigError, lambda _p: RULES_VARIABLE
    ),
    "channels": ConfigKind(
        "channels",
        _channels_example,
        _read_channels,
        dict,
        ConfigError,
        lambda _p: CHANNELS_VARIABLE,
    ),
}


# ---------------------------------------------------------------------------- documents


def yaml_values() -> st.SearchStrategy[Any]:
    """Any value a YAML document can hold."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        hostile_floats(),
        hostile_text(huge=False),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(hostile_text(huge=False), st.integers()), inner, max_size=4),
        ),
        max_leaves=10,
    )


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def mutated_data(draw: st.DrawFn, example: Any) -> Any:
    """``example`` with one to three nodes replaced by any YAML value (or removed)."""
    data = example
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        data = _replace(data, path, draw(weighted((3, yaml_values()), (1, st.just(None)))))
    return data


YAML_SNIPPETS = [
    "\t",
    ": :",
    "- - -",
    "&a [*a]",
    "*undefined",
    "!!python/object/apply:os.system ['true']",
    "!!binary AAAA",
    "%YAML 9.9\n---\n",
    "---\n...\n---",
    "? [a, b]\n: c",
    "{a: 1, a: 2}",
    "<<: *x",
    "'unterminated",
    "\ufeff",
    "\x00",
    "\x85",
    "\u2028",
    *SPECIAL_STRINGS,
]
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]\n" for n in range(8)
)


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["insert", "cut", "delete", "indent"]))
        if how == "insert":
            text = text[:at] + draw(st.sampled_from(YAML_SNIPPETS)) + text[at:]
        elif how == "cut":
            text = text[:at]
        elif how == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        else:
            text = text[:at] + " " * draw(st.integers(1, 9)) + text[at:]
    return text


class Document:
    """The bytes of a generated configuration file, shown short."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def __repr__(self) -> str:
        more = f"+{len(self.content) - 600:,} bytes" if len(self.content) > 600 else ""
        return f"Document({self.content[:600]!r}{more})"


def documents(example: Any) -> st.SearchStrategy[Document]:
    text = yaml.safe_dump(example, allow_unicode=True, sort_keys=False)
    dump = st.builds(
        lambda data: yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
        mutated_data(example),
    )
    content = weighted(
        (4, dump.map(str.encode)),
        (2, mutated_text(text).map(str.encode)),
        (1, yaml_values().map(lambda v: yaml.safe_dump(v, allow_unicode=True).encode())),
        (1, st.sampled_from([50, 500, 5000]).map(lambda n: ("[" * n + "]" * n).encode())),
        (1, st.sampled_from([50, 500, 5000]).map(lambda n: ("a:\n" + " " * n + "b").encode())),
        (1, st.just(BILLION_LAUGHS.encode())),
        (1, st.binary(max_size=200)),
        (1, st.just(text.encode("utf-16"))),
    )

    @st.composite
    def document(draw: st.DrawFn) -> Document:  # composite: failures print the short repr
        return Document(draw(content))

    return document()


@pytest.mark.fuzz(weight=3)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_any_config_file_is_read_or_refused_naming_it(
    kind: str, fuzz: Fuzz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, "fuzz-secret")
    spec = KINDS[kind]
    example = spec.example(tmp_path)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(example))
    assert isinstance(spec.read(path), spec.valid), "the example itself must be valid"
    memory = MemoryBound()

    @fuzz.given(documents(example))
    def read_or_refused(document: Document) -> None:
        path.write_bytes(document.content)
        try:
            result = bounded(lambda: spec.read(path), what=f"reading the {kind} file")
        except spec.error as error:
            message = str(error)
            if spec.location(path) not in message:
                raise failure("error without its location", f"{kind}: {message[:300]}") from None
            # What the file itself says may be quoted back (a key, a value): the operator
            # wrote it, as a caller's own text is echoed in the other targets.
            written = document.content.decode("utf-8", "replace")
            leaked = internal_text(message, [str(path), written])
            if leaked is not None:
                raise failure("internal text", f"{kind}: {leaked!r}") from None
            return
        except PropertyFailed:
            raise
        except Exception as error:
            what = f"{kind}: {type(error).__name__}: {str(error)[:300]}"
            raise failure(f"{type(error).__name__} escaped", what) from error
        finally:
            memory.check(f"reading the {kind} file")
        if not isinstance(result, spec.valid):
            raise failure("wrong result", f"{kind}: {type(result).__name__}")

    read_or_refused()
