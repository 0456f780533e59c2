"""The start page. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from legation_console.domain.people import Person

ROLE_NAMES = {
    "viewer": "Viewer (reads everything)",
    "analyst": "Analyst (issues, queries, campaigns)",
    "editor": "Editor (drafts and translations)",
    "approver": "Approver (approves posts and sensitive replies)",
    "publisher": "Publisher (schedules posts, retries deliveries)",
    "officer": "Engagement officer (the inbox)",
}


@dataclass(frozen=True)
class HomePage:
    name: str
    username: str
    roles: tuple[str, ...]  # in words
    units: str


def home_page(person: Person) -> HomePage:
    """Who is signed in, with their roles in words."""
    return HomePage(
        name=person.name,
        username=person.username,
        roles=tuple(ROLE_NAMES.get(role, role) for role in sorted(person.roles)),
        units=", ".join(sorted(person.units)) or "none",
    )
