"""Per-campaign aggregates maintained as events are indexed, so a scorecard reads them
instead of aggregating the raw events (issue 13).

Every indexed document is reduced to its :class:`Facts`: the dimensions objectives filter
on (event type, service, issue, language, channel, source kind, sentiment, stance,
interaction kind, joint partner activity), the accounts that speak in it, when it
occurred (ms) and the values metrics add up (reach, sentiment score, rating, a reply's
delay). Facts are kept per event id with the event's external version, exactly as the index
keeps documents: a redelivery (same id, same version) changes nothing, an update (a higher
version) replaces its predecessor, an older copy is ignored. So the aggregates are exact
under redelivery, replays and re-indexing, in any order.

A campaign's :class:`CampaignRollup` sums the facts into cells keyed by the dimensions and a
time *segment*: the time axis cut at every bound of every window the campaign's scorecard
measures (its period, the period before it, each objective's window and baseline). A window
is then a range of whole segments, so windows with any bounds are exact without a cell per
event; a campaign whose windows change (a new objective, a new deadline) is re-bucketed
from its facts in memory. Mentions per hour are counted apart. A reply's delay is kept per
conversation in its cell, so the median of first replies stays exact (a bounded structure:
one value per reply).

:func:`scorecard_response` answers in the shape of the scorecard search's response
(:func:`legation_evaluator.domain.scorecard.scorecard_query`), so the scorecard is judged
by the same code whichever way it was computed. A scope whose filters the cells cannot
answer (author, hashtag; a source value that is some mention's source URL) is left for an
event query (:attr:`Answer.unanswered`).
"""

from __future__ import annotations

import bisect
import statistics
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, NamedTuple

from google.protobuf.timestamp_pb2 import Timestamp

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain import metrics
from legation_evaluator.domain.scorecard import COMPUTED_FROM, SERVICES, event_types, plan_for

MENTION = metrics.MENTION
PUBLICATION = metrics.PUBLICATION
FEEDBACK = metrics.FEEDBACK
LINK_CLICK = metrics.LINK_CLICK
PARTNER_ACTIVITY = metrics.PARTNER_ACTIVITY
HOUR_MS = 3_600_000
# Every float32 is an integer multiple of 2**-149: sums of scores are kept exact as integers.
SCORE_SCALE = 2**149
# Filters the cells answer; any other (author, hashtag) needs an event query.
ANSWERED_FILTERS = frozenset({"language", "channel", "source", "sentiment", "stance", "issue"})
# Outside every window: a document without an occurrence time.
NO_TIME = -1


def float32(value: float) -> float:
    """``value`` as the index keeps a ``float`` field (single precision)."""
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def timestamp_ms(text: str) -> int:
    """An RFC 3339 time as the index keeps a ``date`` field: whole milliseconds. Proto3
    JSON writes UTC with a ``Z`` and 0, 3, 6 or 9 fraction digits: read here without
    strptime (a tenth of the cost); anything else goes through the protobuf parser."""
    if len(text) >= 20 and text[-1] == "Z" and text[10] == "T":
        base, _, fraction = text[:-1].partition(".")
        if len(base) == 19 and (fraction.isdigit() or not fraction):
            seconds = int(datetime.fromisoformat(base).replace(tzinfo=UTC).timestamp())
            return seconds * 1000 + int((fraction + "000")[:3])
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp.seconds * 1000 + stamp.nanos // 1_000_000


def datetime_ms(moment: datetime) -> int:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp.seconds * 1000 + stamp.nanos // 1_000_000


class Dims(NamedTuple):
    """The dimensions of one document that objectives filter on ("" where it has none)."""

    event_type: str
    service: str
    issue: str
    language: str
    channel: str
    source: str
    sentiment: str
    stance: str
    kind: str
    joint: bool
    # The partner of a joint activity; None when the document has no partner_id field.
    joint_partner: str | None


class Facts(NamedTuple):
    """What the aggregates need of one indexed document (one version of one event). A tuple
    of atomic values: the garbage collector stops tracking it, so a million of them do not
    lengthen every full collection."""

    version: int
    campaigns: tuple[str, ...]
    at_ms: int | None
    dims: Dims
    # mention.author, mention.author_id (own accounts and partners) and interaction.actor
    # (partners only), as the index has them.
    mention_accounts: tuple[str, ...] = ()
    actor: str = ""
    source_url: str = ""
    reach: int = 0
    sentiment_score: float | None = None
    rating: int | None = None
    # A reply with a delay and a conversation: (conversation id, delay in seconds).
    reply: tuple[str, float] | None = None


_DIMS: dict[Dims, Dims] = {}


def _interned(dims: Dims) -> Dims:
    # Thousands of documents share a few hundred dimension tuples: keep one of each.
    return _DIMS.setdefault(dims, dims)


def _text(mapping: Mapping[str, Any], name: str) -> str:
    value = mapping.get(name)
    return value if isinstance(value, str) else ""


def _present_text(mapping: Mapping[str, Any], name: str) -> str | None:
    value = mapping.get(name)
    return value if isinstance(value, str) else None


def _number(mapping: Mapping[str, Any], name: str) -> float | None:
    value = mapping.get(name)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def facts_of(body: Mapping[str, Any], version: int) -> Facts:
    """The facts of one document body (the envelope in proto3 JSON plus ``campaign_ids``,
    :func:`legation_evaluator.domain.documents.document_for`), proto3 JSON with
    zero values included (``envelope_to_dict``), so a field is there whenever its message
    is, as in the index: a zero score counts in a mean, an empty conversation id is a
    conversation of its own."""
    mention = body.get("mention") or {}
    interaction = body.get("interaction") or {}
    publication = body.get("publication") or {}
    link_click = body.get("link_click") or {}
    activity = body.get("partner_activity") or {}
    feedback = body.get("feedback") or {}
    payloads = (mention, publication, interaction, link_click)
    sentiment = mention.get("sentiment") or {}
    stance = mention.get("stance") or {}
    occurred = body.get("occurred_at")
    event_type = _text(body, "event_type")
    joint = event_type == PARTNER_ACTIVITY and activity.get("joint") is True
    dims = Dims(
        event_type=event_type,
        service=_text(body, "source_service"),
        issue=_text(body, "issue_id"),
        language=next((_text(p, "language") for p in payloads if _text(p, "language")), ""),
        channel=next((_text(p, "channel") for p in payloads[1:] if _text(p, "channel")), ""),
        source=_text(mention, "source"),
        sentiment=_text(sentiment, "value"),
        stance=_text(stance, "value"),
        kind=_text(interaction, "kind"),
        joint=joint,
        joint_partner=_present_text(activity, "partner_id") if joint else None,
    )
    score = _number(sentiment, "score")
    delay = _number(interaction, "response_seconds")
    conversation = _present_text(interaction, "conversation_id")
    rating = _number(feedback, "rating")
    reach = _number(mention, "reach")
    return Facts(
        version=version,
        campaigns=tuple(str(c) for c in body.get("campaign_ids") or ()),
        at_ms=timestamp_ms(occurred) if isinstance(occurred, str) else None,
        dims=_interned(dims),
        mention_accounts=tuple(
            a for a in (_text(mention, "author"), _text(mention, "author_id")) if a
        ),
        actor=_text(interaction, "actor"),
        source_url=_text(mention, "source_url"),
        reach=int(reach) if reach is not None and event_type == MENTION else 0,
        sentiment_score=float32(score) if score is not None else None,
        rating=int(rating) if rating is not None else None,
        reply=(
            (conversation, float32(delay))
            if dims.kind == metrics.REPLIED and delay is not None and conversation is not None
            else None
        ),
    )


@dataclass(frozen=True)
class Layout:
    """How a campaign's facts are bucketed: the cuts of its windows (ms, sorted) and the
    accounts that decide our own voice and the partners'."""

    cuts: tuple[int, ...]
    own_accounts: frozenset[str]
    partner_accounts: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def of(cls, campaign: evaluate_pb2.Campaign) -> Layout:
        bounds: set[int] = set()
        for scope in plan_for(campaign).scopes:
            for bound in (scope.window.start, scope.window.end):
                if bound is not None:
                    bounds.add(datetime_ms(bound))
        ctx = metrics.Context.of(campaign)
        return cls(
            tuple(sorted(bounds)),
            frozenset(ctx.own_accounts),
            tuple((p, frozenset(a)) for p, a in ctx.partner_accounts.items()),
        )

    def segment(self, at_ms: int | None) -> int:
        return NO_TIME if at_ms is None else bisect.bisect_right(self.cuts, at_ms)

    def segments(self, window: metrics.Window) -> tuple[int, int]:
        """The segments ``window`` covers, inclusive (its bounds are cuts)."""
        low = 0 if window.start is None else self.segment(datetime_ms(window.start))
        high = len(self.cuts) if window.end is None else self.segment(datetime_ms(window.end)) - 1
        return low, high

    def key(self, facts: Facts) -> CellKey:
        accounts = facts.mention_accounts
        own = any(a in self.own_accounts for a in accounts)
        speakers = (*accounts, facts.actor) if facts.actor else accounts
        acting = frozenset(
            partner for partner, known in self.partner_accounts if any(a in known for a in speakers)
        )
        return CellKey(self.segment(facts.at_ms), facts.dims, own, acting)


class CellKey(NamedTuple):
    segment: int
    dims: Dims
    own: bool
    acting: frozenset[str]


class Cell:
    """Sums over the facts of one key."""

    __slots__ = (
        "firsts",
        "key",
        "n",
        "rating_n",
        "rating_sum",
        "reach",
        "replies",
        "sentiment_known",
        "sentiment_scored",
        "sentiment_sum",
    )

    def __init__(self, key: CellKey) -> None:
        self.key = key
        self.n = 0
        self.reach = 0
        # Mentions whose sentiment is not "unknown" (a missing one included, as the index's
        # must_not query counts it), and those of them with a score, with its exact sum.
        self.sentiment_known = 0
        self.sentiment_scored = 0
        self.sentiment_sum = 0
        self.rating_n = 0
        self.rating_sum = 0
        # conversation id -> the delays of its replies here (a multiset: one per reply),
        # and the least of them (what the median of first replies reads).
        self.replies: dict[str, list[float]] = {}
        self.firsts: dict[str, float] = {}

    def add(self, facts: Facts, sign: int) -> None:
        self.n += sign
        self.reach += sign * facts.reach
        if facts.dims.event_type == MENTION and facts.dims.sentiment != "unknown":
            self.sentiment_known += sign
            if facts.sentiment_score is not None:
                self.sentiment_scored += sign
                num, den = facts.sentiment_score.as_integer_ratio()
                self.sentiment_sum += sign * num * (SCORE_SCALE // den)
        if facts.rating is not None:
            self.rating_n += sign
            self.rating_sum += sign * facts.rating
        if facts.reply is not None:
            conversation, delay = facts.reply
            if sign > 0:
                self.replies.setdefault(conversation, []).append(delay)
                first = self.firsts.get(conversation)
                if first is None or delay < first:
                    self.firsts[conversation] = delay
            else:
                delays = self.replies[conversation]
                delays.remove(delay)
                if delays:
                    self.firsts[conversation] = min(delays)
                else:
                    del self.replies[conversation]
                    del self.firsts[conversation]


@dataclass
class CampaignRollup:
    """One campaign's facts and their sums."""

    facts: dict[str, Facts] = field(default_factory=dict)
    mentions_per_hour: Counter[int] = field(default_factory=Counter)
    source_urls: Counter[str] = field(default_factory=Counter)
    layout: Layout | None = None
    cells: dict[CellKey, Cell] = field(default_factory=dict)
    # Moves with every change: what a cached answer is checked against.
    version: int = 0

    def _count(self, facts: Facts, sign: int) -> None:
        if facts.dims.event_type == MENTION and facts.at_ms is not None:
            hour = facts.at_ms - facts.at_ms % HOUR_MS
            self.mentions_per_hour[hour] += sign
            if not self.mentions_per_hour[hour]:
                del self.mentions_per_hour[hour]
        if facts.source_url:
            self.source_urls[facts.source_url] += sign
            if not self.source_urls[facts.source_url]:
                del self.source_urls[facts.source_url]
        if self.layout is not None:
            self._bucket(facts, sign)

    def _bucket(self, facts: Facts, sign: int) -> None:
        assert self.layout is not None
        key = self.layout.key(facts)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell(key)
        cell.add(facts, sign)
        if not cell.n:
            del self.cells[key]

    def put(self, event_id: str, facts: Facts) -> None:
        previous = self.facts.get(event_id)
        if previous is not None:
            self._count(previous, -1)
        self.facts[event_id] = facts
        self._count(facts, +1)
        self.version += 1

    def drop(self, event_id: str) -> None:
        previous = self.facts.pop(event_id, None)
        if previous is not None:
            self._count(previous, -1)
            self.version += 1

    def arrange(self, layout: Layout) -> None:
        """Buckets the facts by ``layout`` (the campaign's windows and accounts)."""
        if layout == self.layout:
            return
        self.layout = layout
        self.cells = {}
        for facts in self.facts.values():
            self._bucket(facts, +1)
        self.version += 1


class Aggregates:
    """Every campaign's rollup, maintained from indexed documents (not thread-safe: the
    adapter holds a lock)."""

    def __init__(self) -> None:
        self.campaigns: dict[str, CampaignRollup] = {}
        # event id -> the facts counted for it (their campaigns say where).
        self.events: dict[str, Facts] = {}
        # (event id, version) the index refused for good: never counted.
        self.refused: set[tuple[str, int]] = set()

    def apply(self, event_id: str, facts: Facts) -> bool:
        """Counts one indexed document; False when the aggregates hold a newer version of
        the event already (the index kept that one too), or the index refused this version
        (:meth:`refuse`). The same version again replaces itself: a redelivery counts
        once."""
        previous = self.events.get(event_id)
        if previous is not None and previous.version > facts.version:
            return False
        if self.refused and (event_id, facts.version) in self.refused:
            return False
        self.events[event_id] = facts
        if previous is not None:
            for campaign_id in set(previous.campaigns) - set(facts.campaigns):
                self.campaigns[campaign_id].drop(event_id)
        for campaign_id in facts.campaigns:
            self.campaigns.setdefault(campaign_id, CampaignRollup()).put(event_id, facts)
        return True

    def refuse(self, event_id: str, version: int) -> bool:
        """The index refused this version of the event for good (a mapping conflict: the
        indexer dead-lettered it): it stops counting and is never counted again, in any
        order of the two. True when it was counted (the caller then counts what the index
        holds of the event instead, an older version or nothing)."""
        self.refused.add((event_id, version))
        current = self.events.get(event_id)
        if current is None or current.version != version:
            return False
        del self.events[event_id]
        for campaign_id in current.campaigns:
            self.campaigns[campaign_id].drop(event_id)
        return True

    def rollup(self, campaign_id: str) -> CampaignRollup:
        return self.campaigns.setdefault(campaign_id, CampaignRollup())


def answerable(scope: metrics.Scope, rollup: CampaignRollup) -> bool:
    """Whether the cells can answer ``scope``'s filters exactly."""
    for name, values in scope.filters:
        if name not in ANSWERED_FILTERS:
            return False
        # The source filter matches mention.source or mention.source_url: the cells keep
        # only the source kind.
        if name == "source" and any(v in rollup.source_urls for v in values):
            return False
    return True


def _matches(dims: Dims, filters: Sequence[tuple[str, tuple[str, ...]]]) -> bool:
    """Whether a document of ``dims`` passes a scope's filters, as the index's queries match
    them (:func:`legation_evaluator.domain.metrics.filter_clause`; empty values match
    nothing, a language matches its regional variants)."""
    for name, raw in filters:
        values = [v for v in raw if v]
        value: str = getattr(dims, name)
        if value in values:
            continue
        if name in metrics.PREFIX_MATCHED and value.startswith(tuple(f"{v}-" for v in values)):
            continue
        return False
    return True


def cells_in(
    rollup: CampaignRollup, scope: metrics.Scope, cells: Iterable[Cell] | None = None
) -> list[Cell]:
    """The cells of ``scope``: its window's segments, its filters' dimensions."""
    assert rollup.layout is not None
    low, high = rollup.layout.segments(scope.window)
    verdicts: dict[Dims, bool] = {}
    out = []
    for cell in rollup.cells.values() if cells is None else cells:
        segment = cell.key.segment
        if segment < low or segment > high:
            continue
        dims = cell.key.dims
        verdict = verdicts.get(dims)
        if verdict is None:
            verdict = verdicts[dims] = _matches(dims, scope.filters)
        if verdict:
            out.append(cell)
    return out


# The response fragment of one metric over a scope's cells, shaped as its aggregation's
# answer (metrics.Metric.aggs), so metrics.Metric.value reads either.
Tally = Callable[[str, Sequence[Cell], metrics.Context], dict[str, Any]]


def _count(keep: Callable[[CellKey], bool]) -> Tally:
    def tally(name: str, cells: Sequence[Cell], ctx: metrics.Context) -> dict[str, Any]:
        return {name: {"doc_count": sum(c.n for c in cells if keep(c.key))}}

    return tally


def _of_type(event_type: str) -> Callable[[CellKey], bool]:
    return lambda key: key.dims.event_type == event_type


def _of_kind(*kinds: str) -> Callable[[CellKey], bool]:
    return lambda key: key.dims.kind in kinds


def _mean_of(num: int, den: int, scale: int = 1) -> float | None:
    return float(Fraction(num, den * scale)) if den else None


def _reach(name: str, cells: Sequence[Cell], ctx: metrics.Context) -> dict[str, Any]:
    mentions = [c for c in cells if c.key.dims.event_type == MENTION]
    return {
        name: {
            "doc_count": sum(c.n for c in mentions),
            "sum": {"value": float(sum(c.reach for c in mentions))},
        }
    }


def _sentiment(name: str, cells: Sequence[Cell], ctx: metrics.Context) -> dict[str, Any]:
    scored = sum(c.sentiment_scored for c in cells)
    total = sum(c.sentiment_sum for c in cells)
    return {name: {"doc_count": scored, "mean": {"value": _mean_of(total, scored, SCORE_SCALE)}}}


def _rating(name: str, cells: Sequence[Cell], ctx: metrics.Context) -> dict[str, Any]:
    feedback = [c for c in cells if c.key.dims.event_type == FEEDBACK]
    rated = sum(c.rating_n for c in feedback)
    total = sum(c.rating_sum for c in feedback)
    return {name: {"doc_count": rated, "mean": {"value": _mean_of(total, rated)}}}


def _favour(name: str, cells: Sequence[Cell], ctx: metrics.Context) -> dict[str, Any]:
    known = [
        c
        for c in cells
        if c.key.dims.event_type == MENTION and c.key.dims.stance in metrics.KNOWN_STANCES
    ]
    favour = sum(c.n for c in known if c.key.dims.stance == "favour")
    return {name: {"doc_count": sum(c.n for c in known), "favour": {"doc_count": favour}}}


def _voice(name: str, cells: Sequence[Cell], ctx: metrics.Context) -> dict[str, Any]:
    ours = sum(
        c.n
        for c in cells
        if c.key.dims.event_type == PUBLICATION or c.key.dims.kind == metrics.REPLIED
    )
    others = sum(c.n for c in cells if c.key.dims.event_type == MENTION and not c.key.own)
    return {f"{name}__ours": {"doc_count": ours}, f"{name}__others": {"doc_count": others}}


def first_replies(cells: Iterable[Cell]) -> dict[str, float]:
    """Each conversation's first reply delay over ``cells`` (read only: it may be a cell's
    own table)."""
    tables = sorted((c.firsts for c in cells if c.firsts), key=len, reverse=True)
    if not tables:
        return {}
    if len(tables) == 1:
        return tables[0]
    firsts = dict(tables[0])
    for table in tables[1:]:
        for conversation, delay in table.items():
            known = firsts.get(conversation)
            if known is None or delay < known:
                firsts[conversation] = delay
    return firsts


def _first_response(name: str, cells: Sequence[Cell], ctx: metrics.Context) -> dict[str, Any]:
    firsts = first_replies(c for c in cells if c.key.dims.kind == metrics.REPLIED)
    # The median itself rather than a bucket per conversation (metrics._first_response
    # reads either). The search reads the most active conversations only
    # (metrics.MAX_CONVERSATIONS); the aggregates have them all.
    median = statistics.median(firsts.values()) if firsts else None
    return {name: {"conversations": {"buckets": []}, "median": median}}


def _partner_action(key: CellKey) -> bool:
    return key.dims.joint or bool(key.acting)


def _partner_organisations(
    name: str, cells: Sequence[Cell], ctx: metrics.Context
) -> dict[str, Any]:
    acting: set[str] = set()
    joint: set[str] = set()
    for cell in cells:
        acting |= cell.key.acting
        if cell.key.dims.joint and cell.key.dims.joint_partner is not None:
            joint.add(cell.key.dims.joint_partner)
    out: dict[str, Any] = {
        f"{name}__{index}": {"doc_count": int(partner in acting or partner in joint)}
        for index, partner in enumerate(ctx.partner_accounts)
    }
    out[f"{name}__joint"] = {"ids": {"buckets": [{"key": p} for p in sorted(joint)]}}
    return out


TALLIES: dict[str, Tally] = {
    "volume": _count(_of_type(MENTION)),
    "reach": _reach,
    "engagement": _count(
        lambda key: (
            key.dims.kind in (metrics.OPENED, metrics.JOINED) or key.dims.event_type == LINK_CLICK
        )
    ),
    "sentiment": _sentiment,
    "stance_favour_share": _favour,
    "share_of_voice": _voice,
    "median_first_response_seconds": _first_response,
    "response_breaches": _count(_of_kind(metrics.BREACHED)),
    "partner_actions": _count(_partner_action),
    "partner_organisations": _partner_organisations,
    "link_clicks": _count(_of_type(LINK_CLICK)),
    "publications": _count(_of_type(PUBLICATION)),
    "conversations_opened": _count(_of_kind(metrics.OPENED)),
    "replies": _count(_of_kind(metrics.REPLIED)),
    "feedback": _count(_of_type(FEEDBACK)),
    "mean_rating": _rating,
}


@dataclass
class Answer:
    """The scorecard response computed from the aggregates, and the scopes they could not
    answer (their aggregations are missing from ``response``)."""

    response: dict[str, Any]
    unanswered: list[metrics.Scope]
    unanswered_objectives: list[str]


def _counters(rollup: CampaignRollup) -> dict[str, Any]:
    """The scorecard's counters over everything indexed for the campaign."""
    by_service: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    known = scored = total = 0
    for cell in rollup.cells.values():
        dims = cell.key.dims
        by_service[dims.service] += cell.n
        by_type[dims.event_type] += cell.n
        by_kind[dims.kind] += cell.n
        known += cell.sentiment_known
        scored += cell.sentiment_scored
        total += cell.sentiment_sum
    return {
        **{f"service__{name}": {"doc_count": by_service[name]} for name in SERVICES},
        **{
            f"type__{index}": {"doc_count": by_type[name]}
            for index, name in enumerate(event_types())
        },
        "opened": {"doc_count": by_kind[metrics.OPENED]},
        "replies": {"doc_count": by_kind[metrics.REPLIED]},
        "mentions": {
            "doc_count": by_type[MENTION],
            "known_sentiment": {
                "doc_count": known,
                "mean": {"value": _mean_of(total, scored, SCORE_SCALE)},
            },
            "per_hour": {
                "buckets": [
                    {"key": hour, "doc_count": count}
                    for hour, count in sorted(rollup.mentions_per_hour.items())
                ]
            },
        },
    }


def scorecard_response(campaign: evaluate_pb2.Campaign, rollup: CampaignRollup) -> Answer:
    """The campaign's scorecard response from its rollup (bucketed by the campaign's
    layout first if its windows or accounts changed)."""
    rollup.arrange(Layout.of(campaign))
    plan = plan_for(campaign)
    aggregations = _counters(rollup)
    total = sum(c.n for c in rollup.cells.values())
    unanswered: list[metrics.Scope] = []
    for scope, names in plan.scopes.items():
        if not answerable(scope, rollup):
            unanswered.append(scope)
            continue
        cells = cells_in(rollup, scope)
        fragment: dict[str, Any] = {}
        for name in sorted(names):
            fragment.update(TALLIES[name](name, cells, plan.context))
        aggregations[plan.name(scope)] = fragment
    objectives = [
        o.objective_id
        for o in campaign.objectives
        if o.filters and any(metrics.scope_filters(o) == s.filters for s in unanswered)
    ]
    response = {
        "hits": {"total": {"value": total}},
        "aggregations": aggregations,
        COMPUTED_FROM: {"computed_from": "aggregates", "objectives_from_events": objectives},
    }
    return Answer(response, unanswered, objectives)
