"""Users files for the local stack and the tests: one user per role, fresh random tokens.

The file holds only the tokens' SHA-256 hashes (as in production); the plaintext tokens are
returned to the caller, which hands them to the demo client or the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from legation_core.auth import (
    ADMIN,
    ANALYST,
    APPROVER,
    EDITOR,
    OFFICER,
    PUBLISHER,
    VIEWER,
    generate_token,
    hash_token,
    users_yaml,
)

# One user per role (named after it), plus the demo's campaign owner who does every step.
DEMO_USERS: Mapping[str, frozenset[str]] = {
    VIEWER: frozenset({VIEWER}),
    ANALYST: frozenset({ANALYST}),
    EDITOR: frozenset({EDITOR}),
    APPROVER: frozenset({APPROVER}),
    PUBLISHER: frozenset({PUBLISHER}),
    OFFICER: frozenset({OFFICER}),
    ADMIN: frozenset({ADMIN}),
    "campaign-owner": frozenset({VIEWER, ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER}),
}

# The console calls the services on behalf of the people who sign in to it: it holds no role
# of its own and may assert every working role (never admin) for them.
CONSOLE_USER = "console"
DEMO_DELEGATES: Mapping[str, frozenset[str]] = {
    CONSOLE_USER: frozenset({VIEWER, ANALYST, EDITOR, APPROVER, PUBLISHER, OFFICER}),
}


@dataclass(frozen=True)
class UsersFile:
    """A written users file and the plaintext token of each of its users."""

    path: Path
    tokens: Mapping[str, str]

    def token(self, user: str) -> str:
        return self.tokens[user]

    def write_tokens(self, path: Path) -> None:
        """Writes the plaintext tokens (user: token), readable by the owner only: for calling
        a local stack by hand, never for a shared environment."""
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(dict(self.tokens)), encoding="utf-8")


def write_users_file(
    path: Path,
    users: Mapping[str, frozenset[str]] = DEMO_USERS,
    certificate_names: Mapping[str, list[str]] | None = None,
    delegates: Mapping[str, frozenset[str]] = DEMO_DELEGATES,
) -> UsersFile:
    """Writes ``users`` (name → roles) with a new token each, readable by the owner only,
    plus ``delegates`` (name → the roles it may assert for people, no role of its own)."""
    tokens = {name: generate_token() for name in [*users, *delegates]}
    entries: list[dict[str, object]] = []
    for name, roles in users.items():
        entry: dict[str, object] = {
            "name": name,
            "roles": sorted(roles),
            "token_sha256": [hash_token(tokens[name])],
        }
        if certificate_names and name in certificate_names:
            entry["certificate_names"] = list(certificate_names[name])
        entries.append(entry)
    for name, roles in delegates.items():
        entries.append(
            {
                "name": name,
                "roles": [],
                "delegate_roles": sorted(roles),
                "token_sha256": [hash_token(tokens[name])],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(users_yaml(entries), encoding="utf-8")
    return UsersFile(path, tokens)
