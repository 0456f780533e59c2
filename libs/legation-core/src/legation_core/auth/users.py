"""The users file (``LEGATION_AUTH_USERS_FILE``): its pydantic models, the directory of users
it gives (looked up by token hash or certificate name), and token hashing."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, ConfigDict, Field, model_validator

from legation_core.auth.caller import ROLES, AuthError, Caller
from legation_core.config import (
    ConfigFileError,
    ConfigModel,
    Location,
    at,
    expect,
    problem,
    read_config_file,
    validate_document,
)

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# A user's name (and a person's, named by a delegate).
USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a users file stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    """A new random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class User:
    """One entry of the users file."""

    name: str
    roles: frozenset[str]
    token_hashes: tuple[bytes, ...] = ()
    certificate_names: frozenset[str] = frozenset()
    # The roles this user may assert for the people it calls on behalf of (a delegate).
    delegate_roles: frozenset[str] = frozenset()

    def caller(self) -> Caller:
        return Caller(self.name, self.roles)


@dataclass(frozen=True)
class Directory:
    """The users and how to recognise them."""

    users: tuple[User, ...]

    def delegate_roles(self, name: str) -> frozenset[str]:
        """The roles user ``name`` may assert on behalf of people (empty: not a delegate)."""
        for user in self.users:
            if user.name == name:
                return user.delegate_roles
        return frozenset()

    def by_token(self, token: str) -> Caller | None:
        """The user whose token hashes to ``token``'s hash. Every stored hash is compared in
        constant time and the loop never stops early, so timing tells nothing."""
        digest = hashlib.sha256(token.encode()).digest()
        found: User | None = None
        for user in self.users:
            for stored in user.token_hashes:
                if hmac.compare_digest(digest, stored) and found is None:
                    found = user
        return found.caller() if found is not None else None

    def by_certificate(self, names: Iterable[str]) -> Caller | None:
        """The user one of whose ``certificate_names`` is a verified client certificate's
        identity (its subject alternative names, or its common name when it has none)."""
        presented = set(names)
        for user in self.users:
            if not user.certificate_names.isdisjoint(presented):
                return user.caller()
        return None


def _known_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise problem(f"unknown roles {', '.join(unknown)} (known: {', '.join(sorted(ROLES))})")
    return roles


_Names = Annotated[
    list[Annotated[str, Field(min_length=1)]],
    expect("expected a list of non-empty strings (got {got})", types=True, items=True),
]
_Roles = Annotated[
    _Names,
    Field(json_schema_extra={"items": {"enum": sorted(ROLES)}}),
    AfterValidator(_known_roles),
]


class _UserEntry(ConfigModel):
    """One user allowed to call the gRPC APIs: a token hash or a certificate name (or
    both) identify them."""

    name: Annotated[
        str,
        Field(pattern=USER_NAME.pattern, description="unique"),
        expect("expected 1-128 letters, digits or ._@- (got {got})", types=True),
    ]
    roles: _Roles
    token_sha256: Annotated[
        list[Annotated[str, Field(pattern=_SHA256_HEX.pattern)]],
        Field(description="SHA-256 hex of each valid bearer token (never the token)"),
        expect(
            "expected 64 lowercase hex digits, the SHA-256 of a token (never the token itself)",
            types="expected a list of non-empty strings (got {got})",
            items=True,
        ),
    ] = []
    certificate_names: Annotated[
        _Names, Field(description="client certificate identities (SAN DNS/URI, or CN)")
    ] = []
    delegate_roles: Annotated[
        _Roles, Field(description="the roles it may assert for the people it calls for")
    ] = []

    @classmethod
    def document_problems(cls, data: Mapping[Any, Any]) -> list[tuple[Location, str]]:
        known = set(cls.known_keys())
        unknown = sorted(str(key) for key in data if key not in known)
        return [((), f"unknown keys {', '.join(unknown)}")] if unknown else []

    @model_validator(mode="after")
    def _identified(self) -> _UserEntry:
        if not self.token_sha256 and not self.certificate_names:
            raise problem(f"{self.name} has neither token_sha256 nor certificate_names")
        return self

    def user(self) -> User:
        return User(
            name=self.name,
            roles=frozenset(self.roles),
            token_hashes=tuple(bytes.fromhex(digest) for digest in self.token_sha256),
            certificate_names=frozenset(self.certificate_names),
            delegate_roles=frozenset(self.delegate_roles),
        )


class _UsersFile(ConfigModel):
    """The users file (LEGATION_AUTH_USERS_FILE): who may call the gRPC APIs."""

    model_config = ConfigDict(title="Legation users file")
    document = "a mapping with a 'users' list"
    unknown_key = "is not a users file field ({known})"
    users: list[_UserEntry]

    @model_validator(mode="after")
    def _each_once(self) -> _UsersFile:
        seen: dict[str, set[str]] = {"name": set(), "token_sha256": set(), "certs": set()}
        twice: list[tuple[Location, str]] = []
        for position, entry in enumerate(self.users):
            if entry.name in seen["name"]:
                twice.append((("users", position, "name"), f"{entry.name} appears twice"))
            seen["name"].add(entry.name)
            for digest in entry.token_sha256:
                if digest in seen["token_sha256"]:
                    where = ("users", position, "token_sha256")
                    twice.append((where, "a token hash appears twice"))
                seen["token_sha256"].add(digest)
            for certificate in entry.certificate_names:
                if certificate in seen["certs"]:
                    where = ("users", position, "certificate_names")
                    twice.append((where, f"{certificate} appears twice"))
                seen["certs"].add(certificate)
        if twice:
            raise at(twice)
        return self


#: The model of the users file, for its JSON Schema.
USERS_FILE_MODEL: type[ConfigModel] = _UsersFile


def _users_file(raw: Any, origin: str) -> _UsersFile:
    def refused(problems: list[str]) -> AuthError:
        return AuthError(f"{origin}: {'; '.join(problems)}")

    return validate_document(_UsersFile, raw, error=refused)


def parse_users(raw: Any, origin: str) -> Directory:
    """Validates a parsed users file; errors name ``origin`` and every bad field.

    The format::

        users:
          - name: ana                # unique
            roles: [editor, viewer]  # from ROLES
            token_sha256:            # SHA-256 hex of each valid bearer token (never the token)
              - 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
            certificate_names:       # client certificate identities (SAN DNS/URI, or CN)
              - ana.ministry.example
          - name: console            # a delegate: calls on behalf of the people it signs in
            roles: []                # none of its own
            delegate_roles: [viewer, analyst, editor, approver, publisher, officer]
            certificate_names: [console.legation.svc]
    """
    return Directory(tuple(entry.user() for entry in _users_file(raw, origin).users))


def load_users(path: Path) -> Directory:
    """Reads and validates the users file at ``path`` (see :func:`parse_users`)."""
    try:
        raw = read_config_file(path, "the users file")
    except ConfigFileError as error:
        raise AuthError(str(error)) from None
    return parse_users(raw, str(path))


def users_yaml(users: Sequence[Mapping[str, Any]]) -> str:
    """A users file's text for ``users`` (dicts with name, roles, token_sha256 and/or
    certificate_names), checked as :func:`parse_users` checks a file (AuthError); tools
    that mint tokens write files with it."""
    checked = _users_file({"users": [dict(user) for user in users]}, "users")
    entries = [entry.model_dump(exclude_defaults=True) for entry in checked.users]
    return yaml.safe_dump({"users": entries}, sort_keys=False)
