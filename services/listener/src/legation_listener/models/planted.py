"""A synthetic issue with planted arguments, for the theme tests and the benchmark.

Several hundred English mentions of a plastics treaty, each built from two or three
sentences of one planted argument (drawn from a pool of paraphrases, so no two mentions are
alike and arguments share words such as "cost" or "waste"), with filler every argument
shares, hashtags, links, stance and sentiment, plus about a tenth of mentions that make no
argument at all (label ``none``). Our publications address some arguments: ``jobs`` (mostly
against) is the one they never address, ``finance`` is unaddressed but less opposed.
Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from legation_listener.domain.observed import Observed
from legation_listener.domain.themes import PublicationText

ISSUE_TERMS = ("plastics treaty", "plastic treaty", "treaty")
NONE = "none"
UNADDRESSED = "jobs"

# argument: (mentions, share against, share favour, sentences)
ARGUMENTS: dict[str, tuple[int, float, float, tuple[str, ...]]] = {
    "jobs": (90, 0.7, 0.05, (
        "This will kill thousands of jobs in the petrochemical industry.",
        "Factory workers are going to lose their livelihoods over this.",
        "Plants will close and unemployment will rise in manufacturing towns.",
        "Who speaks for the workers whose jobs depend on plastic production?",
        "Our town lives from the resin plant, those jobs will vanish.",
        "Layoffs at packaging factories are the real cost nobody mentions.",
        "Union leaders warn of mass job losses in chemical manufacturing.",
        "Petrochemical workers will pay for this with their jobs.",
        "Manufacturing jobs cannot be replaced overnight.",
        "Unemployment in industrial regions is the price of the cap.",
    )),
    "recycling": (80, 0.6, 0.1, (
        "We need better recycling infrastructure, not a production cap.",
        "Invest in waste collection and sorting instead of bans.",
        "Recycling rates could double with proper waste management.",
        "Chemical recycling and circular design solve this without caps.",
        "Fix the broken waste collection systems first.",
        "A deposit return scheme for bottles would do more than any cap.",
        "Recycling plants and sorting facilities are where the money should go.",
        "Better waste management beats banning materials.",
        "Extended producer responsibility for recycling works already.",
        "Collection and recycling, not production limits.",
    )),
    "ocean": (100, 0.05, 0.7, (
        "Plastic waste is choking the oceans.",
        "Sea turtles and seabirds are dying from plastic debris.",
        "Our beaches are covered in plastic rubbish after every storm.",
        "Marine life cannot survive this much floating plastic.",
        "Fishing nets and bottles wash up on every coastline.",
        "The great garbage patch in the Pacific keeps growing.",
        "Coral reefs are smothered by plastic bags.",
        "Whales wash ashore with stomachs full of plastic.",
        "Ocean currents carry the debris to remote islands.",
        "Divers pull plastic from the reef every single week.",
    )),
    "health": (70, 0.05, 0.6, (
        "Microplastics have been found in human blood and placenta.",
        "The chemicals in plastics disrupt hormones.",
        "We are all eating microplastics in our food and drinking water.",
        "Doctors warn about the health risks of plastic additives.",
        "Microplastic particles in the lungs of patients, says a new study.",
        "Endocrine disruptors leach from food packaging.",
        "Children are exposed to toxic additives in toys and bottles.",
        "Health researchers link plastic chemicals to disease.",
        "Tap water samples contain microplastic fibres.",
        "Toxic additives like phthalates must be phased out for our health.",
    )),
    "finance": (60, 0.35, 0.2, (
        "Who pays for the transition in developing countries?",
        "Poor countries need financing and technology transfer to comply.",
        "The global south cannot afford this without a dedicated fund.",
        "Rich nations must fund waste systems in low income countries.",
        "Without finance for developing economies the deal is empty.",
        "A financial mechanism for the poorest countries is missing.",
        "Small island states ask for money, not promises.",
        "Debt-burdened nations cannot pay for new infrastructure alone.",
        "Development banks should finance the transition.",
        "Funding gaps for low income countries will sink the deal.",
    )),
}  # fmt: skip
FILLER = (
    "Following the plastics treaty talks today.",
    "Thoughts on the treaty negotiations?",
    "Day three of the treaty round.",
    "The plastics treaty is back in the news.",
    "Read the thread.",
    "Interesting debate at the plastics treaty session.",
    "Delegates met again this morning.",
    "Another long night in the negotiating room.",
)
NOISE = (
    "Live coverage of the plastics treaty session starts at nine.",
    "Anyone watching the treaty livestream?",
    "Delegates arrive for the next treaty round.",
    "The treaty chair gave a short press conference.",
    "Schedule for tomorrow's plastics treaty meetings is out.",
    "Photos from the conference centre.",
    "A quick summary of yesterday's treaty plenary.",
    "Press briefing on the treaty postponed to the afternoon.",
)
NOISE_COUNT = 40
HASHTAGS = ("plastics", "plasticstreaty", "inc5", "beatplasticpollution")
SITES = ("news.example.org", "blog.example.net", "forum.example.com")
SUBREDDITS = ("environment", "worldnews", "plasticfree")
PUBLICATIONS = (
    PublicationText(
        "pub-ocean",
        "Protecting our oceans from plastic",
        "Plastic debris is killing marine life: turtles, seabirds and coral reefs. The treaty"
        " must stop plastic waste reaching the oceans and our beaches.",
    ),
    PublicationText(
        "pub-health",
        "Microplastics and our health",
        "Microplastics in blood, food and drinking water and the toxic additives in plastics"
        " are a health risk. We want harmful chemicals phased out.",
    ),
    PublicationText(
        "pub-recycling",
        "Recycling alone will not be enough",
        "Recycling infrastructure, waste collection and sorting matter, and we fund them, but"
        " waste management cannot keep up without limits on production.",
    ),
)


@dataclass(frozen=True)
class Planted:
    """The mentions, their planted argument (or ``none``) and our publications."""

    mentions: list[Observed]
    labels: list[str]
    publications: tuple[PublicationText, ...]
    start: datetime
    end: datetime


def planted_issue(seed: int = 7, end: datetime | None = None) -> Planted:
    """The fixture (see the module docstring); mentions spread over the 7 days before
    ``end``."""
    rng = random.Random(seed)
    end = end or datetime(2026, 11, 20, tzinfo=UTC)
    start = end - timedelta(days=7)
    plan: list[str] = []
    for argument, (count, _, _, _) in ARGUMENTS.items():
        plan += [argument] * count
    plan += [NONE] * NOISE_COUNT
    rng.shuffle(plan)
    mentions: list[Observed] = []
    for number, argument in enumerate(plan):
        if argument == NONE:
            sentences = [rng.choice(NOISE)]
            if rng.random() < 0.5:
                sentences.append(rng.choice(FILLER))
            against, favour = 0.0, 0.0
        else:
            _, against, favour, pool = ARGUMENTS[argument]
            sentences = rng.sample(pool, rng.choice((2, 2, 3)))
            if rng.random() < 0.6:
                sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(FILLER))
        roll = rng.random()
        if roll < against:
            stance, sentiment = "against", rng.choice(("negative", "negative", "neutral"))
        elif roll < against + favour:
            stance, sentiment = "favour", rng.choice(("positive", "negative", "neutral"))
        else:
            stance = rng.choice(("unknown", "unknown", "neutral"))
            sentiment = rng.choice(("negative", "neutral", "positive", "unknown"))
        tags = tuple(rng.sample(HASHTAGS, rng.choice((0, 1, 1, 2))))
        text = " ".join(sentences) + "".join(f" #{tag}" for tag in tags)
        where = rng.random()
        if where < 0.4:
            site = rng.choice(SITES)
            source, url = "rss", f"https://{site}/posts/{number}"
            author, author_id = rng.choice(("Desk", "Ana Ruiz", "J. Smith")), ""
        elif where < 0.7:
            sub = rng.choice(SUBREDDITS)
            source, url = "reddit", f"https://www.reddit.com/r/{sub}/comments/x{number}/post/"
            author = f"redditor{rng.randrange(60)}"
            author_id = f"t2_{author}"
        else:
            source = "mastodon"
            user = f"user{rng.randrange(80)}"
            url = f"https://social.example/@{user}/{100000000 + number}"
            author, author_id = user, f"https://social.example/@{user}"
        published = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
        mentions.append(
            Observed(
                mention_id=f"m{number:04d}",
                source=source,
                source_url=f"{source}:fixture",
                item_id=f"item{number}",
                url=url,
                author=author,
                author_id=author_id,
                title="",
                text=text,
                language="en",
                sentiment=sentiment,
                stance=stance,
                reach=rng.choice((0, 120, 5000)),
                influence=0.0,
                published_at=published,
                hashtags=tags,
                matched_keywords=("treaty",),
            )
        )
    labels = [argument for argument in plan]
    return Planted(mentions, labels, PUBLICATIONS, start, end)


def _contingency(truth: list[str], found: list[str]) -> list[list[int]]:
    rows = sorted(set(truth))
    columns = sorted(set(found))
    table = [[0] * len(columns) for _ in rows]
    row_of = {value: i for i, value in enumerate(rows)}
    column_of = {value: j for j, value in enumerate(columns)}
    for t, f in zip(truth, found, strict=True):
        table[row_of[t]][column_of[f]] += 1
    return table


def adjusted_rand(truth: list[str], found: list[str]) -> float:
    """Adjusted Rand index of a clustering against the true labels (1: the same partition,
    about 0: chance)."""

    def pairs(count: int) -> float:
        return count * (count - 1) / 2

    table = _contingency(truth, found)
    index = sum(pairs(cell) for row in table for cell in row)
    rows = sum(pairs(sum(row)) for row in table)
    columns = sum(pairs(sum(column)) for column in zip(*table, strict=True))
    total = pairs(len(truth))
    expected = rows * columns / total if total else 0.0
    maximum = (rows + columns) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)


def v_measure(truth: list[str], found: list[str]) -> float:
    """V-measure: the harmonic mean of homogeneity and completeness (Rosenberg and
    Hirschberg, 2007)."""
    import math

    table = _contingency(truth, found)
    n = len(truth)

    def entropy(counts: list[int]) -> float:
        return -sum(c / n * math.log(c / n) for c in counts if c)

    h_truth = entropy([sum(row) for row in table])
    h_found = entropy([sum(column) for column in zip(*table, strict=True)])
    column_sums = [sum(column) for column in zip(*table, strict=True)]
    row_sums = [sum(row) for row in table]
    h_truth_given_found = -sum(
        cell / n * math.log(cell / column_sums[j])
        for row in table
        for j, cell in enumerate(row)
        if cell
    )
    h_found_given_truth = -sum(
        cell / n * math.log(cell / row_sums[i])
        for i, row in enumerate(table)
        for cell in row
        if cell
    )
    homogeneity = 1.0 if h_truth == 0 else 1 - h_truth_given_found / h_truth
    completeness = 1.0 if h_found == 0 else 1 - h_found_given_truth / h_found
    if homogeneity + completeness == 0:
        return 0.0
    return 2 * homogeneity * completeness / (homogeneity + completeness)
