"""The inbox rules: which mentions open a conversation, how it is triaged (priority,
labels, assignment, SLA), which replies need approval, where replies go, saved replies.

They come from a YAML or JSON file (``LEGATION_ENGAGER_RULES_FILE``); without one the
defaults open a conversation for every question and nothing else. :func:`parse_rules`
reports every problem naming its field (``sla.high: expected seconds > 0``); the file's
format is the model ``_RulesFile`` (its JSON Schema: ``make config-schemas``). No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from legation.events.v1 import engage_pb2
from legation_core.calls import InvalidArgument
from legation_core.config import (
    ConfigModel,
    Location,
    at,
    expect,
    problem,
    validate_document,
)

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


# --- the rules file ------------------------------------------------------------------------
# Its models: what a file may say, checked with every problem named; parse_rules turns them
# into the Rules above. The JSON Schema of the file is generated from _RulesFile.


def _one_as_a_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


_Text = Annotated[str, Field(min_length=1)]
# A list of names; one name alone stands for a list of it.
_Texts = Annotated[
    list[_Text],
    BeforeValidator(_one_as_a_list, json_schema_input_type=str | list[str]),
    expect("expected a list of strings (got {got})", types=True, items=True),
]
_Name = Annotated[
    str,
    Field(pattern=_LABEL.pattern),
    expect("expected lower-case letters, digits, - or _ (got {got})", types=True),
]
_Number = Annotated[float, Field(description="a number")]
_PriorityName = Literal["low", "normal", "high", "urgent"]


# A list section: null is an empty list.
_NoneIsEmpty = BeforeValidator(_none_as_empty)


class _Condition(ConfigModel):
    """When a label or assignment rule applies; every given part must hold."""

    unknown_key = "is not a condition ({known})"
    issues: _Texts = []
    languages: _Texts = []
    stances: _Texts = []
    hashtags: _Texts = []
    reasons: _Texts = Field([], description="question, ours, influence, negative-turn")
    min_influence: _Number | None = None
    min_priority: _PriorityName | None = None
    question: bool | None = None

    def condition(self) -> Condition:
        return Condition(
            issues=frozenset(self.issues),
            languages=frozenset(self.languages),
            stances=frozenset(self.stances),
            hashtags=frozenset(h.lower().lstrip("#") for h in self.hashtags),
            reasons=frozenset(self.reasons),
            min_influence=self.min_influence,
            min_priority=PRIORITIES.get(self.min_priority or "", engage_pb2.PRIORITY_UNSPECIFIED),
            question=self.question,
        )


class _Opening(ConfigModel):
    """Which mentions open a conversation."""

    unknown_key = "is not an opening rule ({known})"
    questions: bool = True
    our_accounts: _Texts = []
    our_urls: _Texts = []
    min_influence: (
        Annotated[float, Field(ge=0, le=1), expect("expected a number in [0, 1]")] | None
    ) = None
    negative_turn: (
        Annotated[float, Field(ge=-1, le=0), expect("expected a sentiment score in [-1, 0]")] | None
    ) = None
    negative_drop: (
        Annotated[float, Field(gt=0, le=2), expect("expected a number in (0, 2]")] | None
    ) = Field(None, description="below the issue's recent mean by this much")


_WEIGHTS = Weights()


class _Weights(ConfigModel):
    """Points of each triage signal in the priority score."""

    unknown_key = "is not a signal ({known})"
    influence: _Number = _WEIGHTS.influence
    urgency: _Number = _WEIGHTS.urgency
    negativity: _Number = _WEIGHTS.negativity
    against: _Number = _WEIGHTS.against
    question: _Number = _WEIGHTS.question


_DEFAULTS = Rules()


class _Levels(ConfigModel):
    """Lowest score of each level (below normal's: low)."""

    unknown_key = "expected urgent, high or normal"
    urgent: _Number = _DEFAULTS.levels["urgent"]
    high: _Number = _DEFAULTS.levels["high"]
    normal: _Number = _DEFAULTS.levels["normal"]

    @model_validator(mode="after")
    def _ordered(self) -> _Levels:
        if not self.urgent >= self.high >= self.normal:
            raise problem("expected urgent >= high >= normal")
        return self


class _Priority(ConfigModel):
    unknown_key = "is not a priority setting ({known})"
    weights: _Weights = Field(default_factory=_Weights)
    levels: _Levels = Field(default_factory=_Levels)
    urgent_words: _Texts = Field([], description="empty: the built-in words")


_Seconds = Annotated[float, Field(gt=0), expect("expected seconds > 0")]


class _Sla(ConfigModel):
    """Seconds to the first response, per priority."""

    unknown_key = f"expected one of {', '.join(PRIORITIES)}"
    urgent: _Seconds = _DEFAULTS.sla_seconds["urgent"]
    high: _Seconds = _DEFAULTS.sla_seconds["high"]
    normal: _Seconds = _DEFAULTS.sla_seconds["normal"]
    low: _Seconds = _DEFAULTS.sla_seconds["low"]


class _LabelRule(ConfigModel):
    unknown_key = "is not a label rule field ({known})"
    label: _Name
    when: _Condition = Field(default_factory=_Condition)


class _AssignRule(ConfigModel):
    """First match wins; ``officers``: the one with the fewest open conversations."""

    unknown_key = "is not an assignment field ({known})"
    when: _Condition = Field(default_factory=_Condition)
    officer: str = ""
    team: str = ""
    officers: _Texts = []

    @model_validator(mode="after")
    def _someone(self) -> _AssignRule:
        if not (self.officer or self.team or self.officers):
            raise problem("expected an officer, officers, a team or both")
        if self.officer and self.officers:
            raise problem("give officer or officers, not both")
        return self


class _Approval(ConfigModel):
    """Replies on these issues, or on conversations with these labels, need approval."""

    unknown_key = "is not an approval setting ({known})"
    issues: _Texts = []
    labels: _Texts = []
    role: Annotated[str, Field(min_length=1), expect("expected a role name", types=True)] = (
        "approver"
    )


class _ReplyChannel(ConfigModel):
    """Replies to conversations from this source (or URL) go to ``channel``."""

    unknown_key = "is not a reply channel field ({known})"
    channel: Annotated[
        str, Field(min_length=1), expect("is required (a configured channel)", types=True)
    ]
    source: str = ""
    url_prefix: str = ""

    @model_validator(mode="after")
    def _matches_something(self) -> _ReplyChannel:
        if not (self.source or self.url_prefix):
            raise problem("expected a source, a url_prefix or both")
        return self


class _SavedReply(ConfigModel):
    unknown_key = "is not a saved reply field ({known})"
    id: _Name
    title: (
        Annotated[str, Field(pattern=r"\S"), expect("expected text (got {got})", types=True)] | None
    ) = Field(None, description="default: the id")
    variants: Annotated[
        dict[str, Annotated[str, Field(pattern=r"\S")]],
        Field(min_length=1, description="language tag: text with {variables}"),
        expect("expected language: text pairs (got {got})", types=True, items=True),
    ]


class _RulesFile(ConfigModel):
    """The engager's rules file (LEGATION_ENGAGER_RULES_FILE)."""

    model_config = ConfigDict(title="Legation engager rules file")
    unknown_key = "is not a section ({known})"
    open: _Opening = Field(default_factory=_Opening)
    priority: _Priority = Field(default_factory=_Priority)
    sla: _Sla = Field(default_factory=_Sla)
    labels: Annotated[list[_LabelRule], _NoneIsEmpty] = []
    assignment: Annotated[list[_AssignRule], _NoneIsEmpty] = []
    approval: _Approval = Field(default_factory=_Approval)
    reply_channels: Annotated[list[_ReplyChannel], _NoneIsEmpty] = []
    saved_replies: Annotated[list[_SavedReply], _NoneIsEmpty] = []

    @model_validator(mode="after")
    def _ids_once(self) -> _RulesFile:
        seen: set[str] = set()
        twice: list[tuple[Location, str]] = []
        for position, reply in enumerate(self.saved_replies):
            if reply.id in seen:
                twice.append((("saved_replies", position, "id"), f"{reply.id!r} is used twice"))
            seen.add(reply.id)
        if twice:
            raise at(twice)
        return self

    def rules(self) -> Rules:
        priority = self.priority
        return Rules(
            questions=self.open.questions,
            our_accounts=tuple(a.lower() for a in self.open.our_accounts),
            our_urls=tuple(self.open.our_urls),
            min_influence=self.open.min_influence,
            negative_turn=self.open.negative_turn,
            negative_drop=self.open.negative_drop,
            weights=Weights(**priority.weights.model_dump()),
            urgent_words=tuple(w.lower() for w in priority.urgent_words) or _DEFAULTS.urgent_words,
            levels=priority.levels.model_dump(),
            sla_seconds=self.sla.model_dump(),
            labels=tuple(LabelRule(r.label, r.when.condition()) for r in self.labels),
            assignment=tuple(
                AssignRule(r.when.condition(), r.officer, r.team, tuple(r.officers))
                for r in self.assignment
            ),
            approval_issues=frozenset(self.approval.issues),
            approval_labels=frozenset(self.approval.labels),
            approval_role=self.approval.role,
            reply_channels=tuple(
                ReplyChannelRule(r.channel, r.source, r.url_prefix) for r in self.reply_channels
            ),
            saved_replies={
                r.id: SavedReply(r.id, r.title or r.id, dict(r.variants))
                for r in self.saved_replies
            },
        )


#: The model of the rules file, for its JSON Schema.
RULES_FILE_MODEL: type[ConfigModel] = _RulesFile


def parse_rules(raw: Any) -> Rules:
    """Rules from a parsed YAML/JSON document (None: the defaults); raises RulesError."""
    if raw is None:
        return Rules()
    return validate_document(_RulesFile, raw, error=RulesError).rules()


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
