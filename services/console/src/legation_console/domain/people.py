"""Who is signed in: the person, their Legation roles and units, from the identity
provider's claims and the group mapping. No I/O.

The group mapping (``LEGATION_CONSOLE_GROUP_MAPPING_FILE``) says what each of the identity
provider's groups grants::

    groups:
      legation-analysts:        {roles: [analyst, viewer]}
      embassy-madrid-press:     {roles: [officer, viewer], units: [embassy-madrid]}
      unit-central:             {units: [central]}

A person's roles and units are the union over their groups; a person none of whose groups
grants a role has no access to the console.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from legation_core.auth import ADMIN, ROLES

_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


class MappingError(ValueError):
    """The group mapping is unusable; the message says where."""


class NoAccess(Exception):
    """The person signed in at the identity provider but may not use the console; the
    message says why, in words for them."""


@dataclass(frozen=True)
class Grant:
    """What one group of the identity provider grants."""

    roles: frozenset[str] = frozenset()
    units: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GroupMapping:
    """Identity provider group → :class:`Grant`."""

    groups: Mapping[str, Grant]

    def grant(self, groups: Iterable[str]) -> Grant:
        """The union of what ``groups`` grant (unknown groups grant nothing)."""
        roles: set[str] = set()
        units: set[str] = set()
        for group in groups:
            found = self.groups.get(group)
            if found is not None:
                roles |= found.roles
                units |= found.units
        return Grant(frozenset(roles), frozenset(units))


def parse_group_mapping(raw: Any, origin: str) -> GroupMapping:
    """Validates a parsed mapping file; errors name ``origin`` and the group. ``admin`` is
    never granted through the console (the services' delegate may not assert it)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("groups"), Mapping):
        raise MappingError(f"{origin}: expected a mapping with a 'groups' mapping")
    groups: dict[str, Grant] = {}
    for group, entry in raw["groups"].items():
        where = f"{origin}: groups.{group}"
        if not isinstance(group, str) or not group:
            raise MappingError(f"{where}: a group name must be a non-empty string")
        if not isinstance(entry, Mapping):
            raise MappingError(f"{where}: expected a mapping with roles and/or units")
        unknown = sorted(set(map(str, entry)) - {"roles", "units"})
        if unknown:
            raise MappingError(f"{where}: unknown keys {', '.join(unknown)}")
        roles = _names(entry.get("roles", []), f"{where}.roles")
        bad = sorted(set(roles) - (ROLES - {ADMIN}))
        if bad:
            raise MappingError(
                f"{where}.roles: {', '.join(bad)} cannot be granted through the console "
                f"(known: {', '.join(sorted(ROLES - {ADMIN}))})"
            )
        units = _names(entry.get("units", []), f"{where}.units")
        groups[group] = Grant(frozenset(roles), frozenset(units))
    return GroupMapping(groups)


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and _NAME.match(item) for item in value
    ):
        raise MappingError(f"{where}: expected a list of names (letters, digits, ._@-)")
    return list(value)


@dataclass(frozen=True)
class Person:
    """The signed-in person: what every page and every service call acts as."""

    username: str
    name: str
    roles: frozenset[str]
    units: frozenset[str]

    def has_any(self, roles: Iterable[str]) -> bool:
        """True when the person holds one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def to_session(self) -> dict[str, Any]:
        """The person as the session cookie stores it."""
        return {
            "username": self.username,
            "name": self.name,
            "roles": sorted(self.roles),
            "units": sorted(self.units),
        }

    @classmethod
    def from_session(cls, data: Any) -> Person | None:
        """The person a session stores, or None when it stores none (or garbage)."""
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(
                username=str(data["username"]),
                name=str(data["name"]),
                roles=frozenset(map(str, data["roles"])),
                units=frozenset(map(str, data["units"])),
            )
        except (KeyError, TypeError):
            return None


def person_from_claims(
    claims: Mapping[str, Any], mapping: GroupMapping, username_claim: str, groups_claim: str
) -> Person:
    """The person an ID token's ``claims`` describe; raises :class:`NoAccess` when the
    username is missing or unusable or no group grants a role."""
    username = claims.get(username_claim)
    if not isinstance(username, str) or not _NAME.match(username):
        raise NoAccess(
            f"The identity provider sent no usable '{username_claim}' claim "
            "(1-128 letters, digits or ._@-), so actions could not be recorded under your name."
        )
    raw_groups = claims.get(groups_claim, [])
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    groups = [group for group in raw_groups if isinstance(group, str)]
    grant = mapping.grant(groups)
    if not grant.roles:
        raise NoAccess(
            "Your account is not in any group that gives access to Legation. "
            "Ask your administrator to add you to one."
        )
    name = claims.get("name")
    return Person(
        username=username,
        name=name if isinstance(name, str) and name.strip() else username,
        roles=grant.roles,
        units=grant.units,
    )
