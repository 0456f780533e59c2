"""A week of one campaign, generated: what the public posts, in which language, when.

Plain functions without I/O, seeded and deterministic: the same ``end``, ``mentions`` and
``seed`` give the very same items (text, author, time, platform), so a second run over the
same data replays nothing new. The volume follows a daily rhythm (quiet nights, busy
afternoons) with one spike (the negotiating round's draft text leaks on day 4); about one
item in twelve asks a question, which opens a conversation in the engager's inbox.

:func:`week` is what the demo replays through the local platform servers;
:func:`stream` gives the same kind of items at a chosen rate, for ``make load``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

# Where an item appears: the RSS feeds (news sites, blogs) carry most of the volume; the
# social timelines are read a page at a time, so they get a smaller share.
PLATFORMS = ("news", "blogs", "mastodon", "bluesky")
PLATFORM_WEIGHTS = (0.45, 0.2, 0.2, 0.15)
LANGUAGES = ("en", "fr", "es", "de")
LANGUAGE_WEIGHTS = (0.5, 0.2, 0.2, 0.1)
QUESTION_SHARE = 1 / 12
SPIKE_DAY = 3  # 0-based: the fourth day
SPIKE_HOURS = range(13, 19)
SPIKE_FACTOR = 5.0

# The keywords appear in every template, so every item matches the tracked issue.
_STATEMENTS = {
    "en": [
        "Delegates meet again on the plastics treaty: {topic}.",
        "The plastics treaty needs {topic}, say {who}.",
        "Plastic pollution keeps rising while the plastics treaty talks stall over {topic}.",
        "Good news from the plastics treaty round: progress on {topic}.",
        "Worrying: {who} reject {topic} in the plastics treaty.",
    ],
    "fr": [
        "Le traité sur les plastiques avance sur {topic}.",
        "Les négociations du traité sur les plastiques bloquent sur {topic}, regrettent {who}.",
        "Bonne nouvelle pour le traité sur les plastiques : accord sur {topic}.",
    ],
    "es": [
        "El tratado sobre plásticos avanza en {topic}.",
        "Preocupación: {who} frenan el tratado sobre plásticos por {topic}.",
        "Buenas noticias del tratado sobre plásticos: acuerdo sobre {topic}.",
    ],
    "de": [
        "Das Plastikabkommen (plastics treaty) stockt bei {topic}.",
        "Fortschritt beim plastics treaty: Einigung über {topic}.",
    ],
}
_QUESTIONS = {
    "en": [
        "What does the plastics treaty mean for {topic}?",
        "Will the plastics treaty cover {topic}? Asking for {who}.",
    ],
    "fr": ["Que change le traité sur les plastiques pour {topic} ?"],
    "es": ["¿Qué significa el tratado sobre plásticos para {topic}?"],
    "de": ["Was bedeutet der plastics treaty für {topic}?"],
}
_TOPICS = {
    "en": ["a production cap", "recycling targets", "small producers", "single-use bans"],
    "fr": ["un plafond de production", "le recyclage", "les petits producteurs"],
    "es": ["un límite a la producción", "el reciclaje", "los pequeños productores"],
    "de": ["eine Produktionsobergrenze", "das Recycling", "kleine Hersteller"],
}
_WHO = {
    "en": ["fishers", "recyclers", "city mayors", "producers", "ocean scientists"],
    "fr": ["les pêcheurs", "les recycleurs", "les maires"],
    "es": ["los pescadores", "los recicladores", "los productores"],
    "de": ["Fischer", "Recycler", "Hersteller"],
}
_AUTHORS = [
    f"{name}{n}" for name in ("ana", "ben", "chloe", "diego", "emma", "femi") for n in (1, 2)
]


@dataclass(frozen=True)
class PublicItem:
    """One item the public posts about the issue."""

    at: datetime
    platform: str
    language: str
    text: str
    author: str
    followers: int
    question: bool


@dataclass(frozen=True)
class OurPost:
    """One of our posts in the campaign's week, in its languages."""

    day: int
    request_id: str
    language: str
    title: str
    body: str


@dataclass(frozen=True)
class PartnerAction:
    """Something a partner did for the campaign."""

    partner_id: str
    name: str
    request_id: str
    title: str
    day: int


OUR_POSTS = (
    OurPost(
        0,
        "week-post-launch",
        "en",
        "We back a binding plastics treaty",
        "Our ministry supports a global cap on plastic production. Ask us anything.",
    ),
    OurPost(
        2,
        "week-post-fr",
        "fr",
        "Traité sur les plastiques : notre position",
        "Nous soutenons un plafond mondial de production de plastique.",
    ),
    OurPost(
        4,
        "week-post-es",
        "es",
        "Tratado sobre plásticos: respuestas a sus preguntas",
        "Los pequeños productores tendrán cinco años de transición.",
    ),
)
PARTNERS = (("ocean-alliance", "Ocean Alliance"), ("city-network", "Cities for Clean Seas"))
PARTNER_ACTIONS = (
    PartnerAction("ocean-alliance", "Ocean Alliance", "week-partner-1", "Shared our launch", 0),
    PartnerAction("city-network", "Cities for Clean Seas", "week-partner-2", "Joint op-ed", 3),
    PartnerAction("ocean-alliance", "Ocean Alliance", "week-partner-3", "Co-hosted a webinar", 5),
)


def hourly_weights(days: int = 7) -> list[float]:
    """Relative volume of each hour of the week: a daily rhythm and one spike."""
    rhythm = [0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.1, 1.2, 1.3, 1.4]
    rhythm += [1.5, 1.6, 1.6, 1.5, 1.4, 1.3, 1.2, 1.0, 0.8, 0.6, 0.4, 0.3]
    weights = []
    for day in range(days):
        for hour in range(24):
            spike = SPIKE_FACTOR if day == SPIKE_DAY and hour in SPIKE_HOURS else 1.0
            weights.append(rhythm[hour] * spike)
    return weights


def week(end: datetime, mentions: int = 3000, seed: int = 2026) -> list[PublicItem]:
    """``mentions`` items over the seven days before ``end``, oldest first."""
    rng = random.Random(seed)
    start = end - timedelta(days=7)
    weights = hourly_weights()
    hours = rng.choices(range(len(weights)), weights=weights, k=mentions)
    moments = sorted(start + timedelta(hours=hour, seconds=rng.uniform(0, 3599)) for hour in hours)
    return [_item(rng, at) for at in moments]


def stream(start: datetime, rate: float, seconds: float, seed: int = 2026) -> Iterator[PublicItem]:
    """Items at ``rate`` per second for ``seconds`` from ``start``, evenly spaced."""
    rng = random.Random(seed)
    for n in range(int(rate * seconds)):
        yield _item(rng, start + timedelta(seconds=n / rate))


def _item(rng: random.Random, at: datetime) -> PublicItem:
    language = rng.choices(LANGUAGES, weights=LANGUAGE_WEIGHTS)[0]
    question = rng.random() < QUESTION_SHARE
    templates = (_QUESTIONS if question else _STATEMENTS)[language]
    text = rng.choice(templates).format(
        topic=rng.choice(_TOPICS[language]), who=rng.choice(_WHO[language])
    )
    return PublicItem(
        at=at,
        platform=rng.choices(PLATFORMS, weights=PLATFORM_WEIGHTS)[0],
        language=language,
        text=text,
        author=rng.choice(_AUTHORS),
        followers=int(rng.paretovariate(1.2) * 50),
        question=question,
    )


def slices(items: list[PublicItem], steps: int) -> list[list[PublicItem]]:
    """The items cut into ``steps`` consecutive slices of equal time (the replay releases
    one slice per step, so the spike arrives as a spike)."""
    if not items:
        return [[] for _ in range(steps)]
    first, last = items[0].at, items[-1].at
    span = (last - first) / steps or timedelta(seconds=1)
    cut: list[list[PublicItem]] = [[] for _ in range(steps)]
    for item in items:
        cut[min(int((item.at - first) / span), steps - 1)].append(item)
    return cut


def answered(conversation_ids: list[str], share: float = 0.6) -> set[str]:
    """The conversations the demo's officers answer: a fixed share, chosen by id so the
    choice is the same on every run."""
    ordered = sorted(conversation_ids)
    return {cid for n, cid in enumerate(ordered) if int((n + 1) * share) > int(n * share)}
