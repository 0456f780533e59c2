"""The inbox rules: which mentions open a conversation, how it is triaged (priority,
labels, assignment, SLA), which replies need approval, where replies go, saved replies.

They come from a YAML or JSON file (``LEGATION_ENGAGER_RULES_FILE``); without one the
defaults open a conversation for every question and nothing else. :func:`parse_rules`
reports every problem naming its field (``sla.high: expected seconds > 0``). No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from legation.events.v1 import engage_pb2
from legation_core.calls import InvalidArgument

PRIORITIES: dict[str, engage_pb2.Priority.ValueType] = {
    "low": engage_pb2.PRIORITY_LOW,
    "normal": engage_pb2.PRIORITY_NORMAL,
    "high": engage_pb2.PRIORITY_HIGH,
    "urgent": engage_pb2.PRIORITY_URGENT,
}
PRIORITY_NAMES = {value: name for name, value in PRIORITIES.items()}
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class RulesError(ValueError):
    """The rules are invalid; ``problems`` names every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Condition:
    """When a label or assignment rule applies; every given part must hold."""

    issues: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    stances: frozenset[str] = frozenset()
    hashtags: frozenset[str] = frozenset()
    # Opening reasons: question, ours, influence, negative-turn.
    reasons: frozenset[str] = frozenset()
    min_influence: float | None = None
    min_priority: engage_pb2.Priority.ValueType = engage_pb2.PRIORITY_UNSPECIFIED
    question: bool | None = None


@dataclass(frozen=True)
class LabelRule:
    label: str
    when: Condition


@dataclass(frozen=True)
class AssignRule:
    when: Condition
    officer: str = ""
    team: str = ""
    # Several officers: the one with the fewest open conversations (first listed on a tie).
    officers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplyChannelRule:
    """Replies to conversations from this source go to ``channel`` (a configured one)."""

    channel: str
    source: str = ""
    url_prefix: str = ""


@dataclass(frozen=True)
class SavedReply:
    saved_reply_id: str
    title: str
    # Language tag → text with {variables}.
    variants: Mapping[str, str]

    @property
    def variables(self) -> list[str]:
        found: set[str] = set()
        for text in self.variants.values():
            found.update(_VARIABLE.findall(text))
        return sorted(found)


@dataclass(frozen=True)
class Weights:
    """Points of each triage signal in the priority score (the total is capped at 100)."""

    influence: float = 35.0
    urgency: float = 20.0
    negativity: float = 20.0
    against: float = 10.0
    question: float = 15.0


@dataclass(frozen=True)
class Rules:
    # Opening rules.
    questions: bool = True
    our_accounts: tuple[str, ...] = ()
    our_urls: tuple[str, ...] = ()
    min_influence: float | None = None
    negative_turn: float | None = None
    # With it, a negative turn must also fall this far below the issue's recent mean
    # sentiment (a turn, not an issue that is always discussed negatively).
    negative_drop: float | None = None
    # Triage.
    weights: Weights = field(default_factory=Weights)
    urgent_words: tuple[str, ...] = (
        "urgent",
        "emergency",
        "crisis",
        "breaking",
        "asap",
        "urgence",
        "urgente",
        "dringend",
    )
    # Lowest score of each level (below normal's: low).
    levels: Mapping[str, float] = field(
        default_factory=lambda: {"urgent": 70.0, "high": 45.0, "normal": 15.0}
    )
    # Seconds to the first response, per priority name.
    sla_seconds: Mapping[str, float] = field(
        default_factory=lambda: {
            "urgent": 3600.0,
            "high": 4 * 3600.0,
            "normal": 24 * 3600.0,
            "low": 72 * 3600.0,
        }
    )
    labels: tuple[LabelRule, ...] = ()
    assignment: tuple[AssignRule, ...] = ()
    # Replies on these issues, or on conversations with these labels, need approval.
    approval_issues: frozenset[str] = frozenset()
    approval_labels: frozenset[str] = frozenset()
    approval_role: str = "approver"
    reply_channels: tuple[ReplyChannelRule, ...] = ()
    saved_replies: Mapping[str, SavedReply] = field(default_factory=dict)

    def level(self, score: float) -> engage_pb2.Priority.ValueType:
        for name in ("urgent", "high", "normal"):
            if score >= self.levels[name]:
                return PRIORITIES[name]
        return engage_pb2.PRIORITY_LOW

    def sla_for(self, priority: engage_pb2.Priority.ValueType) -> float:
        return self.sla_seconds[PRIORITY_NAMES.get(priority, "normal")]


class _Reader:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def number(self, raw: Mapping[str, Any], key: str, where: str, default: Any) -> Any:
        value = raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.append(f"{where}{key}: expected a number")
            return default
        return float(value)

    def texts(self, raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problems.append(f"{where}{key}: expected a list of strings")
            return ()
        return tuple(value)

    def mapping(self, raw: Any, where: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: expected a mapping")
            return {}
        return raw

    def condition(self, raw: Any, where: str) -> Condition:
        data = self.mapping(raw, where)
        known = {
            "issues",
            "languages",
            "stances",
            "hashtags",
            "reasons",
            "min_influence",
            "min_priority",
            "question",
        }
        for key in sorted(set(data) - known):
            self.problems.append(f"{where}.{key}: is not a condition ({', '.join(sorted(known))})")
        min_priority = data.get("min_priority", "")
        if min_priority and min_priority not in PRIORITIES:
            self.problems.append(f"{where}.min_priority: expected one of {', '.join(PRIORITIES)}")
            min_priority = ""
        question = data.get("question")
        if question is not None and not isinstance(question, bool):
            self.problems.append(f"{where}.question: expected true or false")
            question = None
        return Condition(
            issues=frozenset(self.texts(data, "issues", f"{where}.")),
            languages=frozenset(self.texts(data, "languages", f"{where}.")),
            stances=frozenset(self.texts(data, "stances", f"{where}.")),
            hashtags=frozenset(h.lower().lstrip("#") for h in self.texts(data, "hashtags", "")),
            reasons=frozenset(self.texts(data, "reasons", f"{where}.")),
            min_influence=self.number(data, "min_influence", f"{where}.", None),
            min_priority=PRIORITIES.get(min_priority, engage_pb2.PRIORITY_UNSPECIFIED),
            question=question,
        )


_TOP = {"open", "priority", "sla", "labels", "assignment", "approval", "reply_channels"}
_TOP |= {"saved_replies"}


def parse_rules(raw: Any) -> Rules:
    """Rules from a parsed YAML/JSON document (None: the defaults); raises RulesError."""
    if raw is None:
        return Rules()
    reader = _Reader()
    data = reader.mapping(raw, "rules")
    for key in sorted(set(data) - _TOP):
        reader.problems.append(f"{key}: is not a section ({', '.join(sorted(_TOP))})")
    defaults = Rules()

    opening = reader.mapping(data.get("open"), "open")
    questions = opening.get("questions", True)
    if not isinstance(questions, bool):
        reader.problems.append("open.questions: expected true or false")
        questions = True
    min_influence = reader.number(opening, "min_influence", "open.", None)
    if min_influence is not None and not 0 <= min_influence <= 1:
        reader.problems.append("open.min_influence: expected a number in [0, 1]")
    negative_turn = reader.number(opening, "negative_turn", "open.", None)
    if negative_turn is not None and not -1 <= negative_turn <= 0:
        reader.problems.append("open.negative_turn: expected a sentiment score in [-1, 0]")
    negative_drop = reader.number(opening, "negative_drop", "open.", None)
    if negative_drop is not None and not 0 < negative_drop <= 2:
        reader.problems.append("open.negative_drop: expected a number in (0, 2]")

    priority = reader.mapping(data.get("priority"), "priority")
    raw_weights = reader.mapping(priority.get("weights"), "priority.weights")
    weights = Weights(
        **{
            name: reader.number(raw_weights, name, "priority.weights.", getattr(Weights(), name))
            for name in ("influence", "urgency", "negativity", "against", "question")
        }
    )
    for name in sorted(set(raw_weights) - set(Weights.__dataclass_fields__)):
        reader.problems.append(f"priority.weights.{name}: is not a signal")
    raw_levels = reader.mapping(priority.get("levels"), "priority.levels")
    levels = dict(defaults.levels)
    for name in raw_levels:
        if name not in levels:
            reader.problems.append(f"priority.levels.{name}: expected urgent, high or normal")
            continue
        levels[name] = reader.number(raw_levels, name, "priority.levels.", levels[name])
    if not levels["urgent"] >= levels["high"] >= levels["normal"]:
        reader.problems.append("priority.levels: expected urgent >= high >= normal")
    urgent_words = reader.texts(priority, "urgent_words", "priority.") or defaults.urgent_words

    raw_sla = reader.mapping(data.get("sla"), "sla")
    sla = dict(defaults.sla_seconds)
    for name in raw_sla:
        if name not in sla:
            reader.problems.append(f"sla.{name}: expected one of {', '.join(PRIORITIES)}")
            continue
        value = reader.number(raw_sla, name, "sla.", sla[name])
        if value is None or value <= 0:
            reader.problems.append(f"sla.{name}: expected seconds > 0")
            continue
        sla[name] = value

    labels: list[LabelRule] = []
    raw_labels = data.get("labels") or []
    if not isinstance(raw_labels, list):
        reader.problems.append("labels: expected a list of {label, when}")
        raw_labels = []
    for position, entry in enumerate(raw_labels):
        where = f"labels[{position}]"
        item = reader.mapping(entry, where)
        label = item.get("label")
        if not isinstance(label, str) or not _LABEL.match(label):
            reader.problems.append(f"{where}.label: expected lower-case letters, digits, - or _")
            continue
        labels.append(LabelRule(label, reader.condition(item.get("when"), f"{where}.when")))

    assignment: list[AssignRule] = []
    raw_assignment = data.get("assignment") or []
    if not isinstance(raw_assignment, list):
        reader.problems.append("assignment: expected a list of {when, officer, team}")
        raw_assignment = []
    for position, entry in enumerate(raw_assignment):
        where = f"assignment[{position}]"
        item = reader.mapping(entry, where)
        officer, team = item.get("officer", ""), item.get("team", "")
        officers = reader.texts(item, "officers", f"{where}.")
        if not isinstance(officer, str) or not isinstance(team, str):
            reader.problems.append(f"{where}: officer and team are names")
            continue
        if not (officer or team or officers):
            reader.problems.append(f"{where}: expected an officer, officers, a team or both")
            continue
        if officer and officers:
            reader.problems.append(f"{where}: give officer or officers, not both")
            continue
        assignment.append(
            AssignRule(reader.condition(item.get("when"), f"{where}.when"), officer, team, officers)
        )

    approval = reader.mapping(data.get("approval"), "approval")
    approval_role = approval.get("role", "approver")
    if not isinstance(approval_role, str) or not approval_role:
        reader.problems.append("approval.role: expected a role name")
        approval_role = "approver"

    channels: list[ReplyChannelRule] = []
    raw_channels = data.get("reply_channels") or []
    if not isinstance(raw_channels, list):
        reader.problems.append("reply_channels: expected a list of {source, url_prefix, channel}")
        raw_channels = []
    for position, entry in enumerate(raw_channels):
        where = f"reply_channels[{position}]"
        item = reader.mapping(entry, where)
        channel = item.get("channel")
        if not isinstance(channel, str) or not channel:
            reader.problems.append(f"{where}.channel: is required (a configured channel)")
            continue
        source, prefix = item.get("source", ""), item.get("url_prefix", "")
        if not isinstance(source, str) or not isinstance(prefix, str) or not (source or prefix):
            reader.problems.append(f"{where}: expected a source, a url_prefix or both")
            continue
        channels.append(ReplyChannelRule(channel, source, prefix))

    saved: dict[str, SavedReply] = {}
    raw_saved = data.get("saved_replies") or []
    if not isinstance(raw_saved, list):
        reader.problems.append("saved_replies: expected a list of {id, title, variants}")
        raw_saved = []
    for position, entry in enumerate(raw_saved):
        where = f"saved_replies[{position}]"
        item = reader.mapping(entry, where)
        reply_id = item.get("id")
        if not isinstance(reply_id, str) or not _LABEL.match(reply_id):
            reader.problems.append(f"{where}.id: expected lower-case letters, digits, - or _")
            continue
        if reply_id in saved:
            reader.problems.append(f"{where}.id: {reply_id!r} is used twice")
            continue
        variants = reader.mapping(item.get("variants"), f"{where}.variants")
        if not variants or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in variants.items()
        ):
            reader.problems.append(f"{where}.variants: expected language: text pairs")
            continue
        title = item.get("title", reply_id)
        saved[reply_id] = SavedReply(reply_id, str(title), dict(variants))

    if reader.problems:
        raise RulesError(reader.problems)
    return Rules(
        questions=questions,
        our_accounts=tuple(a.lower() for a in reader.texts(opening, "our_accounts", "open.")),
        our_urls=reader.texts(opening, "our_urls", "open."),
        min_influence=min_influence,
        negative_turn=negative_turn,
        negative_drop=negative_drop,
        weights=weights,
        urgent_words=tuple(w.lower() for w in urgent_words),
        levels=levels,
        sla_seconds=sla,
        labels=tuple(labels),
        assignment=tuple(assignment),
        approval_issues=frozenset(reader.texts(approval, "issues", "approval.")),
        approval_labels=frozenset(reader.texts(approval, "labels", "approval.")),
        approval_role=approval_role,
        reply_channels=tuple(channels),
        saved_replies=saved,
    )


def render_saved_reply(
    reply: SavedReply, language: str, fallback_languages: list[str], variables: Mapping[str, str]
) -> tuple[str, str]:
    """The saved reply's text in ``language`` (or, when empty, the first of
    ``fallback_languages`` it has, else any) with its variables filled; returns (language,
    text). Raises InvalidArgument (a ValueError) naming the field of what is missing."""
    if language:
        if language not in reply.variants:
            raise InvalidArgument(
                f"language: saved reply {reply.saved_reply_id!r} has no {language!r} variant "
                f"(it has {', '.join(sorted(reply.variants))})"
            )
        chosen = language
    else:
        chosen = next((lang for lang in fallback_languages if lang in reply.variants), "")
        chosen = chosen or sorted(reply.variants)[0]
    text = reply.variants[chosen]
    missing = sorted(set(_VARIABLE.findall(text)) - set(variables))
    if missing:
        raise InvalidArgument(
            "; ".join(f"variables.{name}: is required by saved reply" for name in missing)
        )
    return chosen, _VARIABLE.sub(lambda m: variables[m.group(1)], text)
