"""The metric catalogue: what an objective may measure, and how each metric is computed
from the event indices with one aggregation per metric under a scope (a time window plus
filters).

A metric reads only the documents of one campaign (``campaign_ids``). Each one gives its
sub-aggregations (:meth:`Metric.aggs`) and reads its value back from the response
(:meth:`Metric.value`); ``None`` means "no data" (a mean over nothing, a median of no
replies), which is not the same as zero.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from legation.events.v1 import evaluate_pb2
from legation_core.units import format_value

Level = evaluate_pb2.Objective.Level
Campaign = evaluate_pb2.Campaign

MENTION = "legation.events.v1.Mention"
PUBLICATION = "legation.events.v1.Publication"
FEEDBACK = "legation.events.v1.Feedback"
LINK_CLICK = "legation.events.v1.LinkClick"
PARTNER_ACTIVITY = "legation.events.v1.PartnerActivity"
# Distinct partners read back from joint activities recorded for the campaign.
MAX_PARTNERS = 1000
OPENED = "KIND_OPENED"
REPLIED = "KIND_REPLIED"
JOINED = "KIND_JOINED"
BREACHED = "KIND_BREACHED"
# Stance labels that count as known (favour share = favour / known).
KNOWN_STANCES = ("favour", "against", "neutral")
# First replies per conversation read back for the exact median.
MAX_CONVERSATIONS = 10_000

# Filter field -> the document fields it matches, over every event type that has one.
FILTER_FIELDS: dict[str, tuple[str, ...]] = {
    "language": (
        "mention.language",
        "publication.language",
        "interaction.language",
        "link_click.language",
    ),
    "channel": ("publication.channel", "interaction.channel", "link_click.channel"),
    "source": ("mention.source", "mention.source_url"),
    "author": ("mention.author", "mention.author_id"),
    "hashtag": ("mention.hashtags",),
    "sentiment": ("mention.sentiment.value",),
    "stance": ("mention.stance.value",),
    "issue": ("issue_id",),
}
# Language tags match their regional variants ("es" matches "es-MX").
PREFIX_MATCHED = frozenset({"language"})


def term(field_name: str, value: Any) -> dict[str, Any]:
    return {"term": {field_name: value}}


def any_of(*clauses: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}}


MATCH_NONE: dict[str, Any] = {"bool": {"must_not": {"match_all": {}}}}


def filter_clause(name: str, values: Iterable[str]) -> dict[str, Any]:
    """The query of one MetricFilter: any of its values in any field it names."""
    values = [v for v in values if v]
    clauses: list[dict[str, Any]] = []
    for field_name in FILTER_FIELDS[name]:
        clauses.append({"terms": {field_name: values}})
        if name in PREFIX_MATCHED:
            clauses += [{"prefix": {field_name: f"{v}-"}} for v in values]
    return any_of(*clauses)


@dataclass(frozen=True)
class Context:
    """What a metric needs to know about its campaign."""

    partner_accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    own_accounts: tuple[str, ...] = ()

    @classmethod
    def of(cls, campaign: Campaign) -> Context:
        partners = {p.partner_id: tuple(a for a in p.accounts if a) for p in campaign.partners}
        for partner_id in campaign.partner_ids:
            partners.setdefault(partner_id, (partner_id,))
        return cls(partners, tuple(a for a in campaign.own_accounts if a))

    @property
    def all_partner_accounts(self) -> list[str]:
        return sorted({a for accounts in self.partner_accounts.values() for a in accounts})


def by_accounts(accounts: Iterable[str]) -> dict[str, Any]:
    """Mentions written, or interactions made, by any of ``accounts``."""
    accounts = list(accounts)
    if not accounts:
        return MATCH_NONE
    return any_of(
        {"terms": {"mention.author": accounts}},
        {"terms": {"mention.author_id": accounts}},
        {"terms": {"interaction.actor": accounts}},
    )


def joint_activity(partner_id: str | None = None) -> dict[str, Any]:
    """A joint activity (co-publication, endorsement, event) the engager recorded for the
    campaign, of one partner or any."""
    clauses = [term("event_type", PARTNER_ACTIVITY), term("partner_activity.joint", True)]
    if partner_id is not None:
        clauses.append(term("partner_activity.partner_id", partner_id))
    return {"bool": {"filter": clauses}}


def partner_action(ctx: Context) -> dict[str, Any]:
    """What a partner did for the campaign: a joint activity, or a mention or interaction
    by one of the campaign's partners' accounts."""
    return any_of(joint_activity(), by_accounts(ctx.all_partner_accounts))


Aggs = Callable[[str, Context], dict[str, Any]]
Value = Callable[[str, Mapping[str, Any], Context], float | None]


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    unit: str
    level: Level.ValueType
    # Counts add up over time: compared with a baseline of another length, the baseline is
    # scaled to the measured period's length. Rates and shares are compared as they are.
    additive: bool
    aggs: Aggs
    value: Value
    aliases: tuple[str, ...] = ()


def _count(query: Callable[[Context], dict[str, Any]]) -> tuple[Aggs, Value]:
    def aggs(name: str, ctx: Context) -> dict[str, Any]:
        return {name: {"filter": query(ctx)}}

    def value(name: str, response: Mapping[str, Any], ctx: Context) -> float | None:
        return float(response[name]["doc_count"])

    return aggs, value


def _reach() -> tuple[Aggs, Value]:
    def aggs(name: str, ctx: Context) -> dict[str, Any]:
        return {
            name: {
                "filter": term("event_type", MENTION),
                "aggs": {"sum": {"sum": {"field": "mention.reach"}}},
            }
        }

    def value(name: str, response: Mapping[str, Any], ctx: Context) -> float | None:
        return float(response[name]["sum"].get("value") or 0.0)

    return aggs, value


def _mean(event_type: str, value_field: str, known: dict[str, Any] | None) -> tuple[Aggs, Value]:
    def aggs(name: str, ctx: Context) -> dict[str, Any]:
        must: list[dict[str, Any]] = [
            term("event_type", event_type),
            {"exists": {"field": value_field}},
        ]
        if known is not None:
            must.append(known)
        return {
            name: {
                "filter": {"bool": {"filter": must}},
                "aggs": {"mean": {"avg": {"field": value_field}}},
            }
        }

    def value(name: str, response: Mapping[str, Any], ctx: Context) -> float | None:
        if not response[name]["doc_count"]:
            return None
        mean = response[name]["mean"].get("value")
        return None if mean is None else float(mean)

    return aggs, value


def _favour_share() -> tuple[Aggs, Value]:
    def aggs(name: str, ctx: Context) -> dict[str, Any]:
        return {
            name: {
                "filter": {
                    "bool": {
                        "filter": [
                            term("event_type", MENTION),
                            {"terms": {"mention.stance.value": list(KNOWN_STANCES)}},
                        ]
                    }
                },
                "aggs": {"favour": {"filter": term("mention.stance.value", "favour")}},
            }
        }

    def value(name: str, response: Mapping[str, Any], ctx: Context) -> float | None:
        known = response[name]["doc_count"]
        return 100.0 * response[name]["favour"]["doc_count"] / known if known else None

    return aggs, value


def _ours() -> dict[str, Any]:
    return any_of(term("event_type", PUBLICATION), term("interaction.kind", REPLIED))


def _share_of_voice() -> tuple[Aggs, Value]:
    """Our voice (publications and replies) against every other author's mentions of the
    issue; mentions by our own accounts are echoes of our publications and count for
    neither side."""

    def aggs(name: str, ctx: Context) -> dict[str, Any]:
        others: dict[str, Any] = {"bool": {"filter": [term("event_type", MENTION)]}}
        if ctx.own_accounts:
            others["bool"]["must_not"] = [
                {"terms": {"mention.author": list(ctx.own_accounts)}},
                {"terms": {"mention.author_id": list(ctx.own_accounts)}},
            ]
        return {f"{name}__ours": {"filter": _ours()}, f"{name}__others": {"filter": others}}

    def value(name: str, response: Mapping[str, Any], ctx: Context) -> float | None:
        ours = response[f"{name}__ours"]["doc_count"]
        total = ours + response[f"{name}__others"]["doc_count"]
        return 100.0 * ours / total if total else None

    return aggs, value


def _first_response() -> tuple[Aggs, Value]:
    """The exact median over conversations of the first reply's delay (a later reply in the
    same conversation does not count again)."""

    def aggs(name: str, ctx: Context) -> dict[str, Any]:
        return {
            name: {
                "filter": {
                    "bool": {
                        "filter": [
                            term("interaction.kind", REPLIED),
                            {"exists": {"field": "interaction.response_seconds"}},
                        ]
                    }
                },
                "aggs": {
                    "conversations": {
                        "terms": {
                            "field": "interaction.conversation_id",
                            "size": MAX_CONVERSATIONS,
                        },
                        "aggs": {"first": {"min": {"field": "interaction.response_seconds"}}},
                    }
                },
            }
        }

    def value(name: str, response: Mapping[str, Any], ctx: Context) -> float | None:
        if "median" in response[name]:  # from the maintained aggregates (domain/rollup.py)
            median = response[name]["median"]
            return None if median is None else float(median)
        firsts = [
            float(b["first"]["value"])
            for b in response[name]["conversations"].get("buckets", [])
            if b["first"].get("value") is not None
        ]
        return float(statistics.median(firsts)) if firsts else None

    return aggs, value


def _partner_organisations() -> tuple[Aggs, Value]:
    """The campaign's partners that acted (joint activity or their accounts speaking), and
    any other partner with a joint activity recorded for the campaign."""

    def aggs(name: str, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"{name}__{index}": {
                "filter": any_of(joint_activity(partner_id), by_accounts(accounts))
            }
            for index, (partner_id, accounts) in enumerate(ctx.partner_accounts.items())
        }
        out[f"{name}__joint"] = {
            "filter": joint_activity(),
            "aggs": {
                "ids": {"terms": {"field": "partner_activity.partner_id", "size": MAX_PARTNERS}}
            },
        }
        return out

    def value(name: str, response: Mapping[str, Any], ctx: Context) -> float | None:
        active = {
            partner_id
            for index, partner_id in enumerate(ctx.partner_accounts)
            if response[f"{name}__{index}"]["doc_count"]
        }
        active |= {str(b["key"]) for b in response[f"{name}__joint"]["ids"].get("buckets", [])}
        return float(len(active))

    return aggs, value


def _metric(
    name: str,
    description: str,
    unit: str,
    level: Level.ValueType,
    additive: bool,
    parts: tuple[Aggs, Value],
    aliases: tuple[str, ...] = (),
) -> Metric:
    return Metric(name, description, unit, level, additive, parts[0], parts[1], aliases)


Objective = evaluate_pb2.Objective

CATALOGUE: tuple[Metric, ...] = (
    _metric(
        "volume",
        "Mentions of the campaign's issues",
        "count",
        Objective.LEVEL_OUTTAKE,
        True,
        _count(lambda ctx: term("event_type", MENTION)),
        ("mentions",),
    ),
    _metric(
        "reach",
        "Audience of the mentions: the sum of their authors' or sources' reach",
        "count",
        Objective.LEVEL_OUTTAKE,
        True,
        _reach(),
    ),
    _metric(
        "engagement",
        "The audience acting on what we said: conversations opened with us, further "
        "mentions joining them, tracked-link clicks",
        "count",
        Objective.LEVEL_OUTTAKE,
        True,
        _count(
            lambda ctx: any_of(
                {"terms": {"interaction.kind": [OPENED, JOINED]}},
                term("event_type", LINK_CLICK),
            )
        ),
    ),
    _metric(
        "sentiment",
        "Mean sentiment score of the mentions with a known sentiment, in [-1, 1]",
        "score",
        Objective.LEVEL_OUTCOME,
        False,
        _mean(
            MENTION,
            "mention.sentiment.score",
            {"bool": {"must_not": term("mention.sentiment.value", "unknown")}},
        ),
        ("mean_sentiment",),
    ),
    _metric(
        "stance_favour_share",
        "Share of the mentions with a known stance that favour our position, in percent",
        "percent",
        Objective.LEVEL_OUTCOME,
        False,
        _favour_share(),
    ),
    _metric(
        "share_of_voice",
        "Our publications and replies as a share of everything said on the issue, in percent",
        "percent",
        Objective.LEVEL_OUTTAKE,
        False,
        _share_of_voice(),
    ),
    _metric(
        "median_first_response_seconds",
        "Median delay of our first reply in each conversation, in seconds",
        "seconds",
        Objective.LEVEL_OUTPUT,
        False,
        _first_response(),
        ("median_response_seconds",),
    ),
    _metric(
        "response_breaches",
        "Conversations that went past their first-response deadline unanswered",
        "count",
        Objective.LEVEL_OUTPUT,
        True,
        _count(lambda ctx: term("interaction.kind", BREACHED)),
    ),
    _metric(
        "partner_actions",
        "Joint activities with partners recorded for the campaign (co-publications, "
        "endorsements, events), and mentions and interactions by the partners' accounts",
        "count",
        Objective.LEVEL_OUTCOME,
        True,
        _count(partner_action),
    ),
    _metric(
        "partner_organisations",
        "Partner organisations that acted at least once (a joint activity, their accounts "
        "speaking)",
        "count",
        Objective.LEVEL_OUTCOME,
        True,
        _partner_organisations(),
    ),
    _metric(
        "link_clicks",
        "Clicks on our tracked short links",
        "count",
        Objective.LEVEL_OUTTAKE,
        True,
        _count(lambda ctx: term("event_type", LINK_CLICK)),
    ),
    _metric(
        "publications",
        "Posts that went out on our channels",
        "count",
        Objective.LEVEL_OUTPUT,
        True,
        _count(lambda ctx: term("event_type", PUBLICATION)),
    ),
    _metric(
        "conversations_opened",
        "Inbox conversations opened from the audience's mentions",
        "count",
        Objective.LEVEL_OUTTAKE,
        True,
        _count(lambda ctx: term("interaction.kind", OPENED)),
    ),
    _metric(
        "replies",
        "Our replies in conversations",
        "count",
        Objective.LEVEL_OUTPUT,
        True,
        _count(lambda ctx: term("interaction.kind", REPLIED)),
    ),
    _metric(
        "feedback",
        "Feedback received from the audience, colleagues and partners",
        "count",
        Objective.LEVEL_OUTTAKE,
        True,
        _count(lambda ctx: term("event_type", FEEDBACK)),
    ),
    _metric(
        "mean_rating",
        "Mean feedback rating, 1 to 5",
        "rating",
        Objective.LEVEL_OUTCOME,
        False,
        _mean(FEEDBACK, "feedback.rating", None),
    ),
)

METRICS: dict[str, Metric] = {m.name: m for m in CATALOGUE}
ALIASES: dict[str, str] = {alias: m.name for m in CATALOGUE for alias in m.aliases}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)


def resolve(name: str) -> Metric | None:
    """The metric named ``name`` or one of its aliases."""
    return METRICS.get(name) or METRICS.get(ALIASES.get(name, ""))


def shown(value: float, name: str) -> str:
    """A value of the metric ``name`` (or alias) as a person reads it, in the metric's unit
    (a duration in hours or days, a share in percent); a number when the name is unknown."""
    metric = resolve(name)
    return format_value(value, metric.unit if metric else "count")


@dataclass(frozen=True)
class Window:
    """A half-open time window [start, end); either end may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def clause(self) -> dict[str, Any] | None:
        bounds = {}
        if self.start is not None:
            bounds["gte"] = self.start.astimezone(UTC).isoformat()
        if self.end is not None:
            bounds["lt"] = self.end.astimezone(UTC).isoformat()
        return {"range": {"occurred_at": bounds}} if bounds else None

    def seconds_until(self, now: datetime) -> float | None:
        """The window's length up to ``now`` (None when it has no start)."""
        if self.start is None:
            return None
        end = min(self.end, now) if self.end is not None else now
        return max(0.0, (end - self.start).total_seconds())


@dataclass(frozen=True)
class Scope:
    """Which documents a metric is computed over: a window and the objective's filters."""

    window: Window
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def query(self) -> dict[str, Any]:
        clauses = [filter_clause(name, values) for name, values in self.filters]
        window = self.window.clause()
        if window is not None:
            clauses.insert(0, window)
        return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def scope_filters(objective: evaluate_pb2.Objective) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((f.field, tuple(sorted(f.values))) for f in objective.filters))
