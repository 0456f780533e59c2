"""Derived topics for departments: a source event with no more personal data than needed.

A derived topic's catalog entry (``derived_from``, ``fields``) says what becomes of each
field of its source's payload (:data:`legation_core.catalog.FIELD_ACTIONS`): kept, dropped,
replaced by a pseudonym, or, for free text, kept with the names and handles in it replaced.
:func:`derive` applies it to one envelope; plain functions, no I/O. The listener runs it
on every mention as it arrives (``legation_listener.adapters.derived_streams``) and the
evaluator's backfill on documents read back from its index, so both give the same bytes.

**Pseudonyms** are ``p-`` and 16 base32 characters of HMAC-SHA256 under the platform's key
(``LEGATION_PSEUDONYM_KEY``) of the value, lower-cased, without a leading ``@``: the same
author, on any record, in any run, has the same pseudonym, and nobody without the key can
tell who it is or test a guess. An author's pseudonym is that of their stable id
(``author_id``: the account URL, the DID), or of ``<source>:<display name>`` when the source
gave none, and both ``author`` and ``author_id`` carry it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.message import Message

from legation_core.catalog import FIELD_ACTIONS, CatalogError, TopicSpec
from legation_core.codec import Envelope, payload_of

PSEUDONYM_PREFIX = "p-"
# The fewest bytes of key that make guessing the key harder than guessing the names.
MIN_KEY_BYTES = 32
# @handle or @handle@instance, as Mastodon, Bluesky (handle.domain) and Reddit (u/...) write.
HANDLE = re.compile(r"(?<![\w@])(?:@|\bu/)([\w][\w.-]*(?:@[\w-]+(?:\.[\w-]+)+)?)", re.UNICODE)
# Display names shorter than this are not searched for in text (they would match inside
# ordinary words); their records still carry only the pseudonym in the author fields.
MIN_NAME_CHARS = 3
AUTHOR_FIELDS = ("author", "author_id")


class Pseudonymiser:
    """Keyed pseudonyms: the same value, the same pseudonym."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the pseudonym key must have at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        """The pseudonym of ``value`` (empty stays empty)."""
        normalised = value.strip().lstrip("@").lower()
        if not normalised:
            return ""
        known = self._cache.get(normalised)
        if known is None:
            digest = hmac.new(self._key, normalised.encode(), hashlib.sha256).digest()
            known = PSEUDONYM_PREFIX + base64.b32encode(digest[:10]).decode().lower()
            if len(self._cache) < 100_000:  # a bounded memo: authors repeat, items do not
                self._cache[normalised] = known
        return known


def action_for(rule: Any, source: str) -> str:
    """The action of one ``fields`` rule for a payload from ``source``."""
    if isinstance(rule, Mapping):
        return str(rule.get(source, rule.get("*", "drop")))
    return str(rule)


def undecided_fields(spec: TopicSpec, payload: Message) -> list[str]:
    """The payload fields a derived topic's ``fields`` does not decide (must be none)."""
    return [f.name for f in payload.DESCRIPTOR.fields if f.name not in spec.fields]


def derive(spec: TopicSpec, source: Envelope, pseudonym: Pseudonymiser) -> Envelope:
    """The envelope of derived topic ``spec`` for ``source`` (same event id, same envelope
    fields, the payload treated field by field). A payload field the catalog does not
    decide is dropped, never passed on (the tests require every field to be decided)."""
    if not spec.derived_from:
        raise CatalogError(f"{spec.name} is not a derived topic")
    derived = Envelope()
    derived.CopyFrom(source)
    payload = payload_of(derived)
    author = _author_identity(payload)
    author_pseudonym = pseudonym(author) if author else ""
    known = _known_names(payload)
    kind = str(getattr(payload, "source", ""))
    for field in payload.DESCRIPTOR.fields:
        name = field.name
        action = action_for(spec.fields[name], kind) if name in spec.fields else "drop"
        if action not in FIELD_ACTIONS:
            raise CatalogError(f"{spec.name}: fields.{name}: unknown action {action}")
        if action == "full":
            continue
        if action == "drop" or field.message_type is not None:
            # A message field cannot be pseudonymised as a string: drop it.
            payload.ClearField(name)
            continue
        if field.type != field.TYPE_STRING:
            payload.ClearField(name)
            continue
        if name in AUTHOR_FIELDS and action == "pseudonym":
            _set(payload, name, field.is_repeated, lambda _v: author_pseudonym)
        elif action == "pseudonym":
            _set(payload, name, field.is_repeated, pseudonym)
        else:  # text
            _set(
                payload,
                name,
                field.is_repeated,
                lambda text: scrub_text(text, known, pseudonym, author_pseudonym),
            )
    return derived


def _set(payload: Message, name: str, repeated: bool, change: Any) -> None:
    if repeated:
        values = [change(v) for v in getattr(payload, name)]
        del getattr(payload, name)[:]
        getattr(payload, name).extend(values)
    else:
        value = getattr(payload, name)
        setattr(payload, name, change(value) if value else value)


def _string(payload: Message, name: str) -> str:
    """A string field of any payload type ("" when it has none)."""
    if name not in payload.DESCRIPTOR.fields_by_name:
        return ""
    return str(getattr(payload, name))


def _author_identity(payload: Message) -> str:
    if author_id := _string(payload, "author_id"):
        return author_id
    if author := _string(payload, "author"):
        return f"{_string(payload, 'source')}:{author}"
    return ""


def _known_names(payload: Message) -> list[tuple[str, bool]]:
    """The author's own names and ids as (text, is the author), longest first, so that a
    name is replaced before a shorter name inside it."""
    fields = payload.DESCRIPTOR.fields_by_name
    names: list[tuple[str, bool]] = []
    for name in AUTHOR_FIELDS:
        if name in fields:
            value = str(getattr(payload, name)).strip()
            if len(value) >= MIN_NAME_CHARS:
                names.append((value, True))
                handle = _handle_of(value)
                if handle and len(handle) >= MIN_NAME_CHARS:
                    names.append((handle, True))
    if "mentioned_accounts" in fields:
        for account in getattr(payload, "mentioned_accounts"):  # noqa: B009
            value = str(account).strip().lstrip("@")
            if len(value) >= MIN_NAME_CHARS:
                names.append((value, False))
    return sorted(set(names), key=lambda item: -len(item[0]))


def _handle_of(author_id: str) -> str:
    """The handle inside an account URL (``https://host/@alice`` → ``alice``), if any."""
    match = re.search(r"/@([\w.-]+)/?$|/u(?:ser)?/([\w.-]+)/?$", author_id)
    return next((group for group in match.groups() if group), "") if match else ""


def scrub_text(
    text: str,
    known: Iterable[tuple[str, bool]],
    pseudonym: Pseudonymiser,
    author_pseudonym: str,
) -> str:
    """``text`` with every @handle, the author's names and ids and the accounts the item
    mentions replaced by their pseudonyms (case-insensitively, in one pass, so a pseudonym
    is never rewritten); the rest as it was."""
    replacements: dict[str, str] = {}
    for name, is_author in known:
        replacements.setdefault(name.lower(), author_pseudonym if is_author else pseudonym(name))
    names = "|".join(re.escape(name) for name in sorted(replacements, key=len, reverse=True))
    pattern = re.compile(
        (f"(?P<name>{names})|" if names else "") + HANDLE.pattern, re.IGNORECASE | re.UNICODE
    )

    def replace(match: re.Match[str]) -> str:
        if names and match.group("name"):
            return replacements[match.group("name").lower()]
        handle = match.group(match.lastindex or 0)
        return replacements.get(handle.lower()) or pseudonym(handle)

    return pattern.sub(replace, text)


def personal_values(payload: Message) -> set[str]:
    """The raw personal values of a source payload that a pseudonymised copy must not
    carry anywhere: the author's names and ids, their handle, the accounts it mentions
    (lower-cased; names shorter than :data:`MIN_NAME_CHARS` left out)."""
    values = {value.lower() for value, _author in _known_names(payload)}
    for match in HANDLE.finditer(str(getattr(payload, "text", ""))):
        if len(match.group(1)) >= MIN_NAME_CHARS:
            values.add(match.group(1).lower())
    return values
