"""Who is signed in: the group mapping and the person an ID token's claims make."""

from __future__ import annotations

from pathlib import Path

import pytest

from legation_console.config import load_group_mapping
from legation_console.domain.people import (
    MappingError,
    NoAccess,
    Person,
    parse_group_mapping,
    person_from_claims,
)
from legation_core.config import ConfigError

MAPPING = parse_group_mapping(
    {
        "groups": {
            "legation-analysts": {"roles": ["analyst", "viewer"]},
            "embassy-madrid-press": {"roles": ["officer", "viewer"], "units": ["embassy-madrid"]},
            "unit-central": {"units": ["central"]},
        }
    },
    "groups.yaml",
)


def claims(**extra: object) -> dict[str, object]:
    return {"preferred_username": "ana", "name": "Ana Lytic", **extra}


def test_roles_and_units_are_the_union_over_the_groups() -> None:
    person = person_from_claims(
        claims(groups=["legation-analysts", "embassy-madrid-press", "unit-central", "other"]),
        MAPPING,
        "preferred_username",
        "groups",
    )
    assert person == Person(
        "ana",
        "Ana Lytic",
        frozenset({"analyst", "officer", "viewer"}),
        frozenset({"central", "embassy-madrid"}),
    )
    assert Person.from_session(person.to_session()) == person


def test_no_role_no_access_and_a_usable_username_is_required() -> None:
    with pytest.raises(NoAccess, match="not in any group"):
        person_from_claims(claims(groups=["unit-central"]), MAPPING, "preferred_username", "groups")
    with pytest.raises(NoAccess, match="preferred_username"):
        person_from_claims(
            {"preferred_username": "ana smith", "groups": ["legation-analysts"]},
            MAPPING,
            "preferred_username",
            "groups",
        )
    # A provider sending one group as a string, and no display name.
    person = person_from_claims(
        {"sub": "u-1", "groups": "legation-analysts"}, MAPPING, "sub", "groups"
    )
    assert (person.username, person.name) == ("u-1", "u-1")


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ({}, "expected a mapping with a 'groups' mapping"),
        ({"groups": {"g": {"roles": ["admin"]}}}, "admin cannot be granted through the console"),
        ({"groups": {"g": {"roles": ["chief"]}}}, "chief cannot be granted"),
        ({"groups": {"g": {"units": ["a b"]}}}, "groups.g.units: expected a list of names"),
        ({"groups": {"g": {"role": ["viewer"]}}}, "unknown keys role"),
    ],
)
def test_a_bad_mapping_names_the_group(raw: dict[str, object], complaint: str) -> None:
    with pytest.raises(MappingError) as raised:
        parse_group_mapping(raw, "groups.yaml")
    assert complaint in str(raised.value)
    assert str(raised.value).startswith("groups.yaml")


def test_a_session_without_a_person_is_none() -> None:
    assert Person.from_session(None) is None
    assert Person.from_session({"username": "ana"}) is None


def test_a_mapping_file_that_is_not_utf8_stops_start_up_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_bytes(b"groups:\n  presse-\xe9quipe: {roles: [viewer]}\n")
    with pytest.raises(ConfigError) as refused:
        load_group_mapping(path)
    assert str(refused.value) == (
        f"LEGATION_CONSOLE_GROUP_MAPPING_FILE: {path}: not UTF-8 text: byte 0xe9 at offset 17 "
        "(invalid continuation byte)"
    )
    path.write_text("groups:\n  press: {roles: [viewer]}\n", encoding="utf-8")
    assert load_group_mapping(path).groups["press"].roles == frozenset({"viewer"})
