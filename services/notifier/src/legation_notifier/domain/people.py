"""The people the notifier may tell, and what each of them chose (the people file).

A person has roles (the same names as the services' access roles), a time zone, the
channels they can be reached on, what they own (campaigns, issues), follow and mute, and per
kind of notification whether they want it, where, and at once or in their daily digest.
What they did not choose comes from their roles' defaults (:data:`ROLE_MODES`).

:func:`parse_people` checks a whole file and raises one :class:`PeopleError` listing every
problem, each naming its field (``people[2].quiet_hours.from: expected HH:MM``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Mode = Literal["immediate", "digest"]
Reason = Literal["direct", "owner", "role", "follow"]

KINDS = ("spike", "source", "approval", "sla-breach", "delivery", "objective")
"""What a notification can be about: a spike of mentions, a source that keeps failing, an
approval waiting, an SLA breached, a delivery that failed or needs a check, an objective at
risk or missed."""

CHANNEL_KINDS = ("email", "slack", "teams", "matrix", "webhook")

CONSOLE = "console"
"""The in-console inbox: every notification a person gets on their channel is also in their
inbox in the console (unless their entry says ``console: false``), at once and whatever the
hour (the inbox is silent: quiet hours and digests are about interrupting people)."""

ROLE_MODES: Mapping[str, Mapping[str, Mode]] = {
    "analyst": {"spike": "immediate", "source": "digest"},
    "approver": {"approval": "immediate"},
    "editor": {"approval": "immediate", "delivery": "immediate"},
    "publisher": {"delivery": "immediate"},
    "officer": {"sla-breach": "immediate", "approval": "immediate", "delivery": "immediate"},
    "admin": {"source": "immediate", "delivery": "digest"},
}
"""How each role hears about each kind by default. The signals name the roles they concern
(a spike concerns analysts, a failing source analysts and admins, an approval the step's
role, an unassigned SLA breach officers, a failed post delivery publishers); people reached
as owners or followers of a campaign or issue hear objectives at once and the rest in their
digest (:data:`OWNER_MODES`); people named by the event (the assignee, the author) at once."""

OWNER_MODES: Mapping[str, Mode] = {
    "objective": "immediate",
    "spike": "digest",
    "source": "digest",
    "sla-breach": "digest",
}
CAMPAIGN_INTERESTS = frozenset({"objective", "spike", "sla-breach"})
ISSUE_INTERESTS = frozenset({"spike", "source"})
"""What owning or following a campaign, or an issue, is about (besides kinds the person
chose explicitly)."""
"""What owners and followers of a campaign or issue hear by default (approvals and
deliveries belong to the people doing that work; a person may still choose them)."""

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
MAX_PEOPLE = 10_000


class PeopleError(Exception):
    """The people file is invalid; ``problems`` names every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


MAX_SECRET_BYTES = 8192

SecretFiles = Callable[[str], str]


def read_secret_file(path: str) -> str:
    """A secret file's content, without surrounding blanks (a file of at most 8 KiB)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise ValueError(f"larger than {MAX_SECRET_BYTES} bytes")
    return data.decode("utf-8").strip()


@dataclass(frozen=True)
class QuietHours:
    """Local times between which nothing is sent (the end is when held messages go)."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """True when ``moment`` (local) is inside, including across midnight."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class KindChoice:
    """What a person chose for one kind: off, or a channel and/or a mode."""

    enabled: bool = True
    channel: str = ""
    mode: Mode | None = None


@dataclass(frozen=True)
class Address:
    """How to reach a person on one channel. Secrets (webhook URLs with their token, the
    Matrix access token, a signing secret) are read from the environment variables the file
    names, never written in it."""

    kind: str
    address: str = ""
    url: str = ""
    secret: str = ""
    room_id: str = ""


@dataclass(frozen=True)
class Choice:
    """Where and when one person hears about one notification."""

    channel: str
    mode: Mode


@dataclass(frozen=True)
class Person:
    name: str
    roles: frozenset[str]
    time_zone: str
    channels: Mapping[str, Address]
    default_channel: str
    default_mode: Mode = "immediate"
    digest_at: time = time(8, 0)
    quiet_hours: QuietHours | None = None
    kinds: Mapping[str, KindChoice] = field(default_factory=dict)
    owns_campaigns: frozenset[str] = frozenset()
    owns_issues: frozenset[str] = frozenset()
    follows_campaigns: frozenset[str] = frozenset()
    follows_issues: frozenset[str] = frozenset()
    mutes_campaigns: frozenset[str] = frozenset()
    mutes_issues: frozenset[str] = frozenset()
    # When set, what reaches the person through a role is limited to these.
    scope_campaigns: frozenset[str] = frozenset()
    scope_issues: frozenset[str] = frozenset()
    # A copy of every notification in the person's console inbox (the default for everyone).
    console: bool = True

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def choice(self, kind: str, reasons: set[Reason]) -> Choice | None:
        """Where and when this person hears about ``kind`` when reached for ``reasons``;
        None when they turned the kind off. The most urgent mode of the reasons wins."""
        chosen = self.kinds.get(kind, KindChoice())
        if not chosen.enabled:
            return None
        only_interest = not reasons & {"direct", "role"}
        if only_interest and kind not in OWNER_MODES and kind not in self.kinds:
            return None
        mode = chosen.mode or self._default_mode(kind, reasons)
        return Choice(chosen.channel or self.default_channel, mode)

    def _default_mode(self, kind: str, reasons: set[Reason]) -> Mode:
        modes: set[Mode] = set()
        if "direct" in reasons:
            modes.add("immediate")
        if reasons & {"owner", "follow"} and kind in OWNER_MODES:
            modes.add(OWNER_MODES[kind])
        if "role" in reasons:
            by_role = {ROLE_MODES.get(role, {}).get(kind) for role in self.roles} - {None}
            modes |= {mode for mode in by_role if mode is not None} or {self.default_mode}
        if "immediate" in modes:
            return "immediate"
        return "digest" if modes else self.default_mode


@dataclass(frozen=True)
class Directory:
    """Everyone the notifier may tell, and where links point."""

    people: tuple[Person, ...]
    console_url: str = "http://127.0.0.1:8080"

    def person(self, name: str) -> Person | None:
        for person in self.people:
            if person.name == name:
                return person
        return None


def parse_people(
    raw: Any, env: Mapping[str, str], files: SecretFiles = read_secret_file
) -> Directory:
    """The directory of a people file's content (see services/notifier/README.md); secrets
    come from ``env`` or from the files ``files`` reads. Raises :class:`PeopleError` naming
    every bad field."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise PeopleError(["the file must be a mapping with a `people` list"])
    console_url = raw.get("console_url", "http://127.0.0.1:8080")
    if not isinstance(console_url, str) or not re.fullmatch(r"https?://[^\s]+", console_url):
        problems.append("console_url: expected an http(s) URL")
        console_url = ""
    unknown = set(raw) - {"people", "console_url"}
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}")
    entries = raw.get("people")
    if not isinstance(entries, list) or not entries:
        problems.append("people: expected a non-empty list")
        raise PeopleError(problems)
    if len(entries) > MAX_PEOPLE:
        raise PeopleError([f"people: at most {MAX_PEOPLE} (got {len(entries)})"])
    people = []
    names: set[str] = set()
    for position, entry in enumerate(entries):
        where = f"people[{position}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in names:
            problems.append(f"{where}.name: {name!r} appears twice")
        if isinstance(name, str):
            names.add(name)
        person = _person(entry, where, env, files, problems)
        if person is not None:
            people.append(person)
    if problems:
        raise PeopleError(problems)
    return Directory(tuple(people), console_url.rstrip("/"))


_PERSON_KEYS = {
    "name",
    "roles",
    "time_zone",
    "channels",
    "default_channel",
    "mode",
    "digest_at",
    "quiet_hours",
    "kinds",
    "owns",
    "follows",
    "mutes",
    "scope",
    "console",
}


def _person(
    entry: Any, where: str, env: Mapping[str, str], files: SecretFiles, problems: list[str]
) -> Person | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping")
        return None
    before = len(problems)
    unknown = set(entry) - _PERSON_KEYS
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append(f"{where}.name: expected 1-128 letters, digits or ._@- (got {name!r})")
        name = ""
    roles = _ids(entry.get("roles", []), f"{where}.roles", problems, NAME)
    zone = entry.get("time_zone", "UTC")
    if not isinstance(zone, str) or len(zone) > 64 or not _zone_exists(zone):
        problems.append(f"{where}.time_zone: not an IANA time zone (got {zone!r})")
        zone = "UTC"
    channels = _channels(entry.get("channels"), f"{where}.channels", env, files, problems)
    default_channel = entry.get("default_channel", next(iter(channels), ""))
    if default_channel not in channels:
        problems.append(
            f"{where}.default_channel: {default_channel!r} is not one of the person's channels"
        )
    mode = entry.get("mode", "immediate")
    if mode not in ("immediate", "digest"):
        problems.append(f"{where}.mode: expected immediate or digest (got {mode!r})")
        mode = "immediate"
    digest_at = _clock(entry.get("digest_at", "08:00"), f"{where}.digest_at", problems)
    quiet = None
    if entry.get("quiet_hours") is not None:
        hours = entry["quiet_hours"]
        if not isinstance(hours, dict) or set(hours) != {"from", "to"}:
            problems.append(f"{where}.quiet_hours: expected {{from: HH:MM, to: HH:MM}}")
        else:
            start = _clock(hours["from"], f"{where}.quiet_hours.from", problems)
            end = _clock(hours["to"], f"{where}.quiet_hours.to", problems)
            if start == end:
                problems.append(f"{where}.quiet_hours: from and to are the same time")
            quiet = QuietHours(start, end)
    kinds = _kinds(entry.get("kinds", {}), f"{where}.kinds", channels, problems)
    console = entry.get("console", True)
    if not isinstance(console, bool):
        problems.append(f"{where}.console: expected true or false (got {console!r})")
    groups = {}
    for group in ("owns", "follows", "mutes", "scope"):
        value = entry.get(group, {})
        if not isinstance(value, dict) or set(value) - {"campaigns", "issues"}:
            problems.append(f"{where}.{group}: expected {{campaigns: [...], issues: [...]}}")
            value = {}
        for what in ("campaigns", "issues"):
            groups[(group, what)] = _ids(
                value.get(what, []), f"{where}.{group}.{what}", problems, ID
            )
    if len(problems) > before:
        return None
    return Person(
        name=name,
        roles=roles,
        time_zone=zone,
        channels=channels,
        default_channel=default_channel,
        default_mode=mode,
        digest_at=digest_at,
        quiet_hours=quiet,
        kinds=kinds,
        owns_campaigns=groups[("owns", "campaigns")],
        owns_issues=groups[("owns", "issues")],
        follows_campaigns=groups[("follows", "campaigns")],
        follows_issues=groups[("follows", "issues")],
        mutes_campaigns=groups[("mutes", "campaigns")],
        mutes_issues=groups[("mutes", "issues")],
        scope_campaigns=groups[("scope", "campaigns")],
        scope_issues=groups[("scope", "issues")],
        console=console is not False,
    )


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _clock(value: Any, where: str, problems: list[str]) -> time:
    match = CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        problems.append(f"{where}: expected HH:MM (got {value!r})")
        return time(0, 0)
    return time(int(match.group(1)), int(match.group(2)))


def _ids(value: Any, where: str, problems: list[str], pattern: re.Pattern[str]) -> frozenset[str]:
    if not isinstance(value, list) or len(value) > 1000:
        problems.append(f"{where}: expected a list of at most 1000 ids")
        return frozenset()
    bad = [item for item in value if not isinstance(item, str) or not pattern.fullmatch(item)]
    if bad:
        problems.append(f"{where}: not ids: {bad[:5]!r}")
    return frozenset(item for item in value if isinstance(item, str))


_CHANNEL_FIELDS: Mapping[str, tuple[set[str], str]] = {
    # kind → (plain options, the secret: given as <secret>_env (an environment variable) or
    # <secret>_file (a file, such as a mounted Kubernetes Secret), exactly one of them).
    "email": ({"address"}, ""),
    "slack": (set(), "url"),
    "teams": (set(), "url"),
    "matrix": ({"homeserver", "room_id"}, "token"),
    "webhook": ({"url"}, "secret"),
}


def _secret(
    options: Mapping[str, str],
    name: str,
    at: str,
    env: Mapping[str, str],
    files: SecretFiles,
    problems: list[str],
) -> str:
    by_env, by_file = options.get(f"{name}_env"), options.get(f"{name}_file")
    if (by_env is None) == (by_file is None):
        problems.append(f"{at}: give exactly one of {name}_env and {name}_file")
        return ""
    if by_env is not None:
        value = env.get(by_env, "")
        if not value:
            problems.append(f"{at}.{name}_env: environment variable {by_env} is not set")
        return value
    assert by_file is not None
    try:
        value = files(by_file)
    except (OSError, ValueError) as error:
        problems.append(f"{at}.{name}_file: cannot be read: {error}")
        return ""
    if not value:
        problems.append(f"{at}.{name}_file: {by_file} is empty")
    return value


def _channels(
    value: Any, where: str, env: Mapping[str, str], files: SecretFiles, problems: list[str]
) -> dict[str, Address]:
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}: expected at least one of {', '.join(CHANNEL_KINDS)}")
        return {}
    found: dict[str, Address] = {}
    for kind, options in value.items():
        at = f"{where}.{kind}"
        if kind not in _CHANNEL_FIELDS:
            problems.append(f"{at}: unknown channel (one of {', '.join(CHANNEL_KINDS)})")
            continue
        plain, secret_name = _CHANNEL_FIELDS[kind]
        if not isinstance(options, dict):
            problems.append(f"{at}: expected a mapping")
            continue
        allowed = plain | ({f"{secret_name}_env", f"{secret_name}_file"} if secret_name else set())
        missing = plain - set(options)
        extra = set(options) - allowed
        if missing:
            problems.append(f"{at}: missing {sorted(missing)}")
        if extra:
            problems.append(f"{at}: unknown keys {sorted(extra)}")
        if missing or extra:
            continue
        if not all(isinstance(text, str) and 0 < len(text) <= 2048 for text in options.values()):
            problems.append(f"{at}: every value must be text of 1-2048 characters")
            continue
        secret = _secret(options, secret_name, at, env, files, problems) if secret_name else ""
        if kind == "email":
            address = options["address"]
            if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", address):
                problems.append(f"{at}.address: not an e-mail address (got {address!r})")
            found[kind] = Address(kind, address=address)
        elif kind in ("slack", "teams"):
            found[kind] = Address(kind, url=secret)
        elif kind == "matrix":
            found[kind] = Address(
                kind,
                url=options["homeserver"].rstrip("/"),
                room_id=options["room_id"],
                secret=secret,
            )
        else:
            found[kind] = Address(kind, url=options["url"], secret=secret)
        url = found[kind].url
        if url and not re.fullmatch(r"https?://[^\s]+", url):
            problems.append(f"{at}: the URL is not an http(s) URL")
    return found


def _kinds(
    value: Any, where: str, channels: Mapping[str, Address], problems: list[str]
) -> dict[str, KindChoice]:
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping of kind to off or {{channel, mode}}")
        return {}
    found: dict[str, KindChoice] = {}
    for kind, choice in value.items():
        at = f"{where}.{kind}"
        if kind not in KINDS:
            problems.append(f"{at}: unknown kind (one of {', '.join(KINDS)})")
            continue
        if choice == "off" or choice is False:
            found[kind] = KindChoice(enabled=False)
            continue
        if not isinstance(choice, dict) or set(choice) - {"channel", "mode"}:
            problems.append(f"{at}: expected off or {{channel, mode}}")
            continue
        channel = choice.get("channel", "")
        if channel and channel not in channels:
            problems.append(f"{at}.channel: {channel!r} is not one of the person's channels")
        mode = choice.get("mode")
        if mode is not None and mode not in ("immediate", "digest"):
            problems.append(f"{at}.mode: expected immediate or digest (got {mode!r})")
            mode = None
        found[kind] = KindChoice(True, channel, mode)
    return found
