"""The scorecard from the maintained aggregates equals the scorecard from a search over the
events, on the same indexed data: every metric of the catalogue as an objective, filters on
every dimension, windows that do not fall on the hour, redeliveries, updates, an older copy
after a newer one and an update that moves a mention out of the campaign; objectives the
aggregates cannot answer (author, hashtag, a source URL) come from a search and say so."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation_core.codec import Envelope, make_envelope
from legation_devstack.standins import OpenSearchStandIn
from legation_evaluator.adapters.aggregates import MaintainedAggregates
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.config import EvaluatorSettings
from legation_evaluator.domain.documents import document_for
from legation_evaluator.domain.scorecard import scorecard_from_response

pytestmark = pytest.mark.integration

Objective = evaluate_pb2.Objective
Interaction = engage_pb2.Interaction
CAMPAIGN = "agg-campaign"
START = datetime(2026, 11, 10, 9, 30, 15, tzinfo=UTC)
END = datetime(2026, 11, 20, 17, 45, tzinfo=UTC)
NOW = datetime(2026, 11, 16, 12, 7, 3, tzinfo=UTC)
FEED = "https://news.example/feed.xml"
LANGUAGES = ("en", "es", "es-MX", "fr", "de", "")
SENTIMENTS = (("positive", 0.62), ("negative", -0.4), ("unknown", 0.0), ("neutral", 0.0), ("", 0))
STANCES = ("favour", "against", "neutral", "unknown", "")
CHANNELS = ("mastodon", "email", "site-atom", "bluesky")


def objective(objective_id: str, metric: str, comparison: Any, target: float, **extra: Any) -> Any:
    filters = [
        evaluate_pb2.MetricFilter(field=name, values=values)
        for name, values in extra.pop("filters", {}).items()
    ]
    result = Objective(
        objective_id=objective_id,
        metric=metric,
        comparison=comparison,
        target=target,
        filters=filters,
    )
    for name in ("deadline", "baseline_start", "baseline_end"):
        if name in extra:
            getattr(result, name).FromDatetime(extra.pop(name))
    if "from_value" in extra:
        result.from_value = extra.pop("from_value")
    assert not extra
    return result


def the_campaign() -> evaluate_pb2.Campaign:
    at_least, at_most = Objective.COMPARISON_AT_LEAST, Objective.COMPARISON_AT_MOST
    increase, decrease = Objective.COMPARISON_INCREASE_BY, Objective.COMPARISON_DECREASE_BY
    before = {
        "baseline_start": START - timedelta(days=6, minutes=17),
        "baseline_end": START - timedelta(hours=5, seconds=9),
    }
    objectives = [
        objective("volume-es", "volume", at_least, 40, filters={"language": ["es"]}, **before),
        objective(
            "reach-rss",
            "reach",
            increase,
            5000,
            filters={"source": ["rss"], "sentiment": ["negative", "positive"]},
            **before,
        ),
        objective("engaged", "engagement", at_least, 30, filters={"channel": ["mastodon"]}),
        objective("warmer", "sentiment", increase, 0.1, filters={"issue": ["plastics"]}, **before),
        objective(
            "favour",
            "stance_favour_share",
            at_least,
            40,
            filters={"language": ["fr", "en"]},
            deadline=START + timedelta(days=3, hours=2, minutes=11),
        ),
        objective("voice", "share_of_voice", at_least, 20, from_value=12),
        objective(
            "fast", "median_response_seconds", at_most, 4 * 3600, filters={"channel": ["email"]}
        ),
        objective("fast-all", "median_first_response_seconds", at_most, 3600),
        objective("breaches", "response_breaches", at_most, 5),
        objective("partners", "partner_actions", at_least, 10),
        objective("partner-orgs", "partner_organisations", at_least, 3),
        objective("clicks", "link_clicks", at_least, 10, filters={"language": ["de"]}),
        objective("posts", "publications", at_least, 5),
        objective("opened", "conversations_opened", at_least, 5),
        objective("replies", "replies", at_least, 5, filters={"channel": ["email", "bluesky"]}),
        objective("feedback", "feedback", at_least, 2),
        objective("rating", "mean_rating", at_least, 4),
        objective("alias", "mentions", at_least, 100, deadline=END - timedelta(days=2)),
        objective("against", "volume", decrease, 5, filters={"stance": ["against"]}, **before),
        objective("nothing", "volume", at_least, 1, filters={"language": ["xx"]}),
        # The aggregates cannot answer these: a search over the events does.
        objective("by-author", "volume", at_least, 3, filters={"author": ["author-3"]}),
        objective("by-tag", "reach", at_least, 3, filters={"hashtag": ["#plastics"]}),
        objective("by-feed", "volume", at_least, 3, filters={"source": [FEED]}),
    ]
    campaign = evaluate_pb2.Campaign(
        campaign_id=CAMPAIGN,
        name="Aggregates",
        issue_ids=["plastics"],
        own_accounts=["@us"],
        partners=[
            evaluate_pb2.Partner(partner_id="ngo", accounts=["author-3", "@ngo"]),
            evaluate_pb2.Partner(partner_id="uni", accounts=["@uni"]),
        ],
        partner_ids=["author-5"],
        objectives=objectives,
    )
    campaign.starts_at.FromDatetime(START)
    campaign.ends_at.FromDatetime(END)
    return campaign


def envelope_of(
    payload: Message,
    number: int,
    at: datetime,
    service: str,
    rng: random.Random,
    observed: datetime | None = None,
    campaign_id: str = CAMPAIGN,
) -> Envelope:
    return make_envelope(
        payload,
        event_id=f"ev-{number}",
        source_service=service,
        occurred_at=at,
        campaign_id=campaign_id,
        issue_id=rng.choice(("plastics", "plastics", "oceans", "")),
        observed_at=observed or datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=number),
    )


def mention(number: int, rng: random.Random, campaigns: list[str]) -> listen_pb2.Mention:
    sentiment, score = rng.choice(SENTIMENTS)
    return listen_pb2.Mention(
        mention_id=f"m-{number}",
        source=rng.choice(("rss", "rss", "mastodon", "bluesky")),
        source_url=rng.choice((FEED, "https://other.example/rss", "")),
        author=rng.choice(("author-3", "author-5", "author-9", "@us", "someone", "")),
        author_id=rng.choice(("@ngo", "", "", "")),
        language=rng.choice(LANGUAGES),
        reach=rng.choice((0, 10, 1234, 98765)),
        sentiment=listen_pb2.Label(value=sentiment, score=score * rng.random()),
        stance=listen_pb2.Label(value=rng.choice(STANCES), score=rng.random()),
        hashtags=rng.sample(("#plastics", "#oceans", "#treaty"), rng.randint(0, 2)),
        campaign_ids=campaigns,
    )


def events(rng: random.Random) -> list[Envelope]:
    """About 700 events from two weeks before the start to after the end, mostly mentions;
    a few of another campaign."""
    out: list[Envelope] = []
    first = START - timedelta(days=8)
    for number in range(700):
        at = first + timedelta(seconds=rng.randint(0, 21 * 86400))
        roll = number % 20
        if roll < 11:
            campaigns = [CAMPAIGN] if number % 37 else [CAMPAIGN, "other"]
            payload: Message = mention(number, rng, campaigns)
            service = "listener"
        elif roll < 15:
            kind = rng.choice(
                (
                    Interaction.KIND_OPENED,
                    Interaction.KIND_REPLIED,
                    Interaction.KIND_REPLIED,
                    Interaction.KIND_JOINED,
                    Interaction.KIND_BREACHED,
                    Interaction.KIND_CLOSED,
                )
            )
            payload = Interaction(
                interaction_id=f"i-{number}",
                conversation_id=rng.choice(("", *(f"c-{n}" for n in range(40)))),
                kind=kind,
                channel=rng.choice(CHANNELS),
                actor=rng.choice(("@uni", "officer", "author-3", "")),
                language=rng.choice(LANGUAGES),
                response_seconds=rng.choice((0.0, 0.1, 61.7, 3600.25, rng.uniform(1, 90000))),
            )
            service = "engager"
        elif roll < 16:
            payload = publish_pb2.Publication(
                publication_id=f"p-{number}",
                channel=rng.choice(CHANNELS),
                language=rng.choice(LANGUAGES),
            )
            service = "publisher"
        elif roll < 17:
            payload = publish_pb2.LinkClick(
                click_id=f"k-{number}", channel=rng.choice(CHANNELS), language="de"
            )
            service = "publisher"
        elif roll < 18:
            payload = engage_pb2.PartnerActivity(
                activity_id=f"a-{number}",
                partner_id=rng.choice(("ngo", "uni", "stranger", "")),
                joint=rng.random() < 0.7,
            )
            service = "engager"
        elif roll < 19:
            payload = evaluate_pb2.Feedback(feedback_id=f"f-{number}", rating=rng.randint(0, 5))
            service = "evaluator"
        else:
            payload = listen_pb2.Mention(mention_id=f"x-{number}", campaign_ids=["other"])
            out.append(envelope_of(payload, number, at, "listener", rng, campaign_id="other"))
            continue
        out.append(envelope_of(payload, number, at, service, rng))
    return out


def updates(originals: list[Envelope], rng: random.Random) -> list[Envelope]:
    """Later versions of some mentions (new labels, one moved out of the campaign)."""
    out = []
    mentions = [e for e in originals if e.WhichOneof("payload") == "mention" and e.campaign_id]
    for position, original in enumerate(mentions[:60]):
        updated = Envelope()
        updated.CopyFrom(original)
        updated.observed_at.FromDatetime(
            original.observed_at.ToDatetime(tzinfo=UTC) + timedelta(hours=1)
        )
        updated.mention.sentiment.value, score = rng.choice(SENTIMENTS)
        updated.mention.sentiment.score = score
        updated.mention.stance.value = rng.choice(STANCES)
        updated.mention.language = rng.choice(LANGUAGES)
        if position % 15 == 0:
            del updated.mention.campaign_ids[:]
            updated.campaign_id = ""
        out.append(updated)
    return out


def index_all(index: EventIndex, envelopes: list[Envelope]) -> None:
    documents = [document_for(index.prefix, e, "test", 0, n) for n, e in enumerate(envelopes)]
    for start in range(0, len(documents), 150):
        index.bulk(documents[start : start + 150])


def close(left: Any, right: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 (a mean's sum is exact in the aggregates, a float sum in the
    index's search)."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        assert set(left) == set(right), f"{path}: {sorted(set(left) ^ set(right))}"
        for key in left:
            close(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list) and isinstance(right, list):
        assert len(left) == len(right), path
        for position, (a, b) in enumerate(zip(left, right, strict=True)):
            close(a, b, f"{path}[{position}]")
    elif isinstance(left, float) or isinstance(right, float):
        assert math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12), path
    else:
        assert left == right, f"{path}: {left!r} != {right!r}"


def comparable(card: pb.Scorecard) -> dict[str, Any]:
    result = MessageToDict(card, preserving_proto_field_name=True)
    for name in ("computed_from", "objectives_from_events"):
        result.pop(name, None)
    return result


@pytest.fixture
def index(opensearch_stand_in: OpenSearchStandIn, unique: str) -> EventIndex:
    settings = EvaluatorSettings(opensearch_url=opensearch_stand_in.url)
    aggregates = MaintainedAggregates()
    result = EventIndex(connect(settings), f"test-{unique}", aggregates=aggregates)
    result.ensure_template()
    aggregates.load(result.client, f"{result.prefix}-*")  # nothing yet: ready at once
    return result


def test_aggregate_scorecard_equals_the_event_search(index: EventIndex) -> None:
    rng = random.Random(13)
    campaign = the_campaign()
    originals = events(rng)
    newer = updates(originals, rng)
    campaign_event = make_envelope(
        campaign, event_id="campaign", source_service="evaluator", occurred_at=START
    )
    index_all(index, [campaign_event, *originals])
    index_all(index, originals[::3])  # redelivered: the same versions again
    index_all(index, newer)
    index_all(index, originals[:60])  # an older copy after the newer one: ignored
    index_all(index, newer[::2])  # and the updates redelivered
    index.client.indices.refresh(index=f"{index.prefix}-*")

    searched = scorecard_from_response(campaign, index.search_scorecard(campaign), NOW)
    assert index.aggregates is not None and index.aggregates.ready.is_set()
    live = scorecard_from_response(campaign, index.scorecard_response(campaign), NOW)
    # The start-up path: aggregates read back from the index alone.
    loaded = MaintainedAggregates()
    loaded.load(index.client, f"{index.prefix}-*")
    answer, _ = loaded.answer(campaign)
    index._search_unanswered(campaign, answer)
    from_load = scorecard_from_response(campaign, answer.response, NOW)

    # The data exercises what it claims to.
    assert searched.computed_from == "events"
    assert searched.mentions > 300 and searched.replies > 20 and searched.feedback > 10
    assert searched.median_response_seconds > 0 and searched.mentions_with_sentiment > 100
    statuses = {o.objective_id: o for o in searched.objectives}
    assert len(statuses) == len(campaign.objectives)
    for name in ("volume-es", "reach-rss", "warmer", "favour", "fast", "partner-orgs", "rating"):
        assert statuses[name].value != 0 and not statuses[name].reason.startswith("no data")
    assert statuses["nothing"].value == 0

    for card in (live, from_load):
        assert card.computed_from == "aggregates"
        assert sorted(card.objectives_from_events) == ["by-author", "by-feed", "by-tag"]
        close(comparable(card), comparable(searched))


def test_a_campaign_whose_windows_change_is_rebucketed(index: EventIndex) -> None:
    rng = random.Random(7)
    campaign = the_campaign()
    index_all(index, events(rng))
    first = scorecard_from_response(campaign, index.scorecard_response(campaign), NOW)
    changed = evaluate_pb2.Campaign()
    changed.CopyFrom(campaign)
    changed.starts_at.FromDatetime(START + timedelta(hours=26, minutes=3))
    changed.objectives.append(
        objective(
            "new",
            "reach",
            Objective.COMPARISON_AT_LEAST,
            10,
            filters={"language": ["en"]},
            deadline=START + timedelta(days=4, seconds=1),
        )
    )
    searched = scorecard_from_response(changed, index.search_scorecard(changed), NOW)
    again = scorecard_from_response(changed, index.scorecard_response(changed), NOW)
    assert again.computed_from == "aggregates"
    assert comparable(first) != comparable(again)
    close(comparable(again), comparable(searched))


def test_campaigns_are_read_from_the_aggregates_without_a_search(
    index: EventIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    def version_of(name: str, hours: int) -> Envelope:
        campaign = the_campaign()
        campaign.name = name
        # Only objectives the aggregates answer: a scorecard of it searches nothing either.
        searched = {"by-author", "by-feed", "by-tag"}
        kept = [o for o in campaign.objectives if o.objective_id not in searched]
        del campaign.objectives[:]
        campaign.objectives.extend(kept)
        return make_envelope(
            campaign,
            event_id=f"campaign-{name}",
            source_service="evaluator",
            occurred_at=START,
            observed_at=START + timedelta(hours=hours),
        )

    # The latest version, then an older one arriving after it (a replay).
    index_all(index, [version_of("first", 1), version_of("latest", 3), version_of("old", 0)])
    index.client.indices.refresh(index=f"{index.prefix}-*")
    searched = EventIndex(index.client, index.prefix).campaign(CAMPAIGN)
    assert searched is not None and searched.name == "latest"
    loaded = MaintainedAggregates()  # the start-up path: read back from the index
    loaded.load(index.client, f"{index.prefix}-*")
    assert loaded.campaign(CAMPAIGN) == searched
    assert loaded.campaign_ids() == [CAMPAIGN]

    def no_search(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("searched the index")

    monkeypatch.setattr(index.client, "search", no_search)
    assert index.campaign(CAMPAIGN) == searched
    assert index.campaign_ids() == [CAMPAIGN]
    card = scorecard_from_response(searched, index.scorecard_response(searched), NOW)
    assert card.computed_from == "aggregates" and not card.objectives_from_events
    held = index.campaign(CAMPAIGN)
    assert held is not None
    held.name = "changed by a caller"
    assert index.campaign(CAMPAIGN) == searched  # a copy was handed out

    # Unknown here, or a version the index refused: what the index holds decides.
    with pytest.raises(AssertionError, match="searched the index"):
        index.campaign("another")
    assert index.aggregates is not None
    index.aggregates.refuse("campaign-latest", 0)
    with pytest.raises(AssertionError, match="searched the index"):
        index.campaign(CAMPAIGN)


def test_a_campaign_version_refused_before_it_is_read_is_looked_up_in_the_index() -> None:
    # The tail may read the indexer group's dead letter of a campaign event before (or in
    # the same poll as) the event itself.
    campaign = make_envelope(
        the_campaign(), event_id="campaign-refused", source_service="evaluator", occurred_at=START
    )
    aggregates = MaintainedAggregates()
    aggregates.ready.set()  # as once loaded
    aggregates.refuse("campaign-refused", 0)
    aggregates.add_documents([document_for("test", campaign, "test", 0, 0)])
    assert aggregates.campaign(CAMPAIGN) is None
    assert aggregates.campaign_ids() == [CAMPAIGN]
    aggregates.reset()  # read again from the start (the DLQ too): forgotten meanwhile
    aggregates.add_documents([document_for("test", campaign, "test", 0, 0)])
    aggregates.ready.set()
    assert aggregates.campaign(CAMPAIGN) == the_campaign()
