"""Themes and angles (no I/O): the arguments made about an issue, and which of them we
never answered.

**Themes.** The mentions of an issue in a window are turned into TF-IDF vectors of words
and adjacent word pairs (case-folded; links, accounts, stop words of ten languages, the
issue's own terms and terms in more than half of the mentions left out; terms in at least 2
mentions, at most :data:`MAX_TERMS`), reduced to :data:`LSA_DIMENSIONS` dimensions by a
randomised SVD (latent semantic analysis: words used alike count alike), and clustered by
spherical k-means (cosine, k-means++ seeding, fixed seed, :data:`RESTARTS` restarts). The
number of themes is the k in ``2..max_themes`` with the best silhouette on a sample. Copies
(``duplicate_of``) are left out of the clustering so a story reposted a hundred times does
not become a theme, then counted in the theme of their original. A mention less similar
than :data:`MIN_SIMILARITY` to every theme's centre, and themes under
:data:`MIN_THEME_SHARE` of the mentions, are *unassigned*.

A theme is named by its key phrases: the terms whose mean TF-IDF inside the theme most
exceeds their mean outside, pairs preferred to the words they contain.

**Angles.** Our publications go through the same vectors; a theme is *addressed* when a
publication's cosine with its centre reaches :data:`ADDRESSED_AT`. Angles rank themes by
opposition (mentions against, plus half of the negative ones whose stance is unknown),
scaled by ``1 - similarity`` of the closest publication when addressed: much opposition we
never answered comes first.

Everything is numpy; nothing is downloaded. See the listener README for what was measured.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from legation_core.ids import stable_id
from legation_listener.domain.observed import Observed

Matrix = NDArray[np.float32]

MAX_TERMS = 4000
LSA_DIMENSIONS = 100
RESTARTS = 4
ITERATIONS = 40
SILHOUETTE_SAMPLE = 1000
MAX_CLUSTERED = 3000
MIN_SIMILARITY = 0.2
MIN_THEME_SHARE = 0.02
ADDRESSED_AT = 0.35
KEY_PHRASES = 3
REPRESENTATIVES = 3
SERIES_BUCKETS = 7
SEED = 20261120
DEFAULT_MAX_THEMES = 8

# fmt: off
STOP_WORDS = frozenset(
    """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
rt amp via http https www com get got one like still even much many us let via new says said
every single going nobody real must cannot without instead first alone already keeps next
week day today yesterday tomorrow again well back need needs want way make made
don't it's i'm can't aren't what's that's you're we're they're i've doesn't isn't won't
didn't wasn't let's there's he's she's i'll you'll we'll i'd haven't wouldn't shouldn't
couldn't really know think go take time people right

le la les un une des du de d l et est en que qui dans pour pas sur au aux avec ce ces se sa
son ses il elle ils elles nous vous je tu on ne plus par mais ou où été être sont a y
el los las una unos unas del al y o es son por con para como más pero sus su lo se le les ya
muy sin sobre también este esta estos estas ese esa eso fue ha han hay yo tú nos
der die das den dem des ein eine einer eines und ist im zu mit auf für von nicht sich auch
es wir ihr sie er als bei nach aus wie noch nur oder aber so hat sind war wird werden
il lo gli di da con su per tra fra è che non si una uno ma anche come più sono della delle
dei degli nel nella o os as um uma dos das do da no na em por com não se ao aos mais mas foi
ser há
""".split()  # noqa: SIM905
)
# fmt: on
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_ACCOUNT = re.compile(r"(?<![\w@])@[\w.@-]+")
_TOKEN = re.compile(r"[^\W\d_][\w'-]*[^\W_]|[^\W\d_]{2,}", re.UNICODE)


def tokens(text: str, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The words of a text that can carry an argument (see the module docstring)."""
    text = unicodedata.normalize("NFKC", _ACCOUNT.sub(" ", _URL.sub(" ", text))).casefold()
    found = []
    for word in _TOKEN.findall(text.replace("#", " ").replace("\u2019", "'")):
        word = word.strip("'-")
        if len(word) >= 2 and word not in STOP_WORDS and word not in exclude:
            found.append(word)
    return found


def terms(words: Sequence[str]) -> list[str]:
    """Words and adjacent pairs."""
    return [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words) if a != b)]


def excluded_words(issue_terms: Sequence[str]) -> frozenset[str]:
    """The words of the issue's own terms (keywords, name, matched terms), which every
    mention shares."""
    words: set[str] = set()
    for term in issue_terms:
        words.update(tokens(term.replace("*", " ").replace('"', " ")))
    return frozenset(words)


@dataclass
class TermSpace:
    """Vocabulary and IDF fitted on some documents; vectors are sublinear TF-IDF, L2."""

    vocabulary: dict[str, int]
    idf: NDArray[np.float32]

    @classmethod
    def fit(cls, documents: Sequence[Sequence[str]], max_terms: int = MAX_TERMS) -> TermSpace:
        """Terms in at least 2 documents and at most half of them (the most frequent
        ``max_terms``)."""
        n = len(documents)
        df: Counter[str] = Counter()
        for document in documents:
            df.update(set(document))
        ceiling = max(2, math.floor(0.5 * n))
        kept = [(t, c) for t, c in df.items() if 2 <= c <= ceiling]
        kept.sort(key=lambda pair: (-pair[1], pair[0]))
        chosen = sorted(t for t, _ in kept[:max_terms])
        vocabulary = {t: i for i, t in enumerate(chosen)}
        idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in chosen], dtype=np.float32)
        return cls(vocabulary, idf)

    def transform(self, documents: Sequence[Sequence[str]]) -> Matrix:
        matrix = np.zeros((len(documents), len(self.vocabulary)), dtype=np.float32)
        for row, document in enumerate(documents):
            for term, count in Counter(document).items():
                column = self.vocabulary.get(term)
                if column is not None:
                    matrix[row, column] = 1.0 + math.log(count)
        matrix *= self.idf
        return _normalise(matrix)

    @property
    def names(self) -> list[str]:
        return sorted(self.vocabulary, key=self.vocabulary.__getitem__)


def _normalise(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: Matrix = (matrix / norms).astype(np.float32)
    return result


def _orthonormal(sample: Matrix) -> Matrix:
    """An orthonormal basis of the columns of a tall matrix (through the eigenvectors of its
    small Gram matrix: matrix products only, which stay fast on a busy machine)."""
    values, vectors = np.linalg.eigh((sample.T @ sample).astype(np.float64))
    keep = values > values.max() * 1e-10
    result: Matrix = (sample @ (vectors[:, keep] / np.sqrt(values[keep]))).astype(np.float32)
    return result


def lsa_basis(matrix: Matrix, dimensions: int, seed: int = SEED) -> Matrix:
    """The top right singular vectors of ``matrix`` (randomised SVD with two power
    iterations): at most ``dimensions`` rows of the term space."""
    rows, columns = matrix.shape
    k = max(1, min(dimensions, rows - 1, columns - 1))
    rng = np.random.default_rng(seed)
    probe = rng.standard_normal((columns, min(columns, k + 10))).astype(np.float32)
    sample = _orthonormal(matrix @ probe)
    for _ in range(2):
        sample = _orthonormal(matrix @ (matrix.T @ sample))
    small = (sample.T @ matrix).astype(np.float64)
    values, vectors = np.linalg.eigh(small @ small.T)
    order = np.argsort(-values)[:k]
    order = order[values[order] > values.max() * 1e-10]
    basis = (vectors[:, order].T @ small) / np.sqrt(values[order])[:, None]
    result: Matrix = basis.astype(np.float32)
    return result


def spherical_kmeans(
    points: Matrix, k: int, seed: int = SEED, restarts: int = RESTARTS
) -> tuple[NDArray[np.int64], Matrix]:
    """Clusters unit vectors by cosine: (labels, unit centres), the best of ``restarts``."""
    rng = np.random.default_rng(seed)
    best: tuple[float, NDArray[np.int64], Matrix] | None = None
    n = points.shape[0]
    for _ in range(restarts):
        centres = np.empty((k, points.shape[1]), dtype=np.float32)
        centres[0] = points[rng.integers(n)]
        closest = 1.0 - points @ centres[0]
        for c in range(1, k):
            weights = np.clip(closest, 0, None) ** 2
            total = float(weights.sum())
            pick = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
            centres[c] = points[pick]
            closest = np.minimum(closest, 1.0 - points @ centres[c])
        labels = np.full(n, -1, dtype=np.int64)
        for _ in range(ITERATIONS):
            new = np.argmax(points @ centres.T, axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            for c in range(k):
                members = points[labels == c]
                if len(members):
                    centres[c] = members.sum(axis=0)
            centres = _normalise(centres)
        fit = float(np.sum(np.max(points @ centres.T, axis=1)))
        if best is None or fit > best[0]:
            best = (fit, labels.copy(), centres.copy())
    assert best is not None
    return best[1], best[2]


def silhouette(points: Matrix, labels: NDArray[np.int64]) -> float:
    """Mean silhouette with cosine distance (0 for a single cluster)."""
    clusters, index = np.unique(labels, return_inverse=True)
    if len(clusters) < 2:
        return 0.0
    distance = 1.0 - points @ points.T
    members = np.eye(len(clusters), dtype=np.float32)[index]
    sizes = members.sum(axis=0)
    sums = distance @ members
    own_size = sizes[index]
    own = sums[np.arange(len(points)), index] / np.maximum(own_size - 1, 1)
    means = sums / sizes
    means[np.arange(len(points)), index] = np.inf
    nearest = means.min(axis=1)
    spread = np.maximum(own, nearest)
    scores = np.where(
        (own_size > 1) & (spread > 0), (nearest - own) / np.where(spread > 0, spread, 1), 0.0
    )
    return float(scores.mean())


@dataclass
class Clustering:
    """Theme of every document (-1: unassigned), with the fitted spaces."""

    labels: NDArray[np.int64]
    centres: Matrix
    space: TermSpace
    basis: Matrix
    tfidf: Matrix
    reduced: Matrix
    silhouette: float


def cluster_texts(
    documents: Sequence[Sequence[str]],
    max_themes: int = DEFAULT_MAX_THEMES,
    *,
    fit_on: Sequence[int] | None = None,
    seed: int = SEED,
) -> Clustering:
    """Clusters term lists (see the module docstring); ``fit_on`` the indices the themes
    are learned from (default all), every document is then assigned."""
    chosen = list(fit_on) if fit_on is not None else list(range(len(documents)))
    space = TermSpace.fit([documents[i] for i in chosen])
    tfidf = space.transform(documents)
    n = len(documents)
    if not space.vocabulary or len(chosen) < 4:
        return Clustering(
            np.full(n, -1, dtype=np.int64),
            np.zeros((0, 1), dtype=np.float32),
            space,
            np.zeros((1, max(1, len(space.vocabulary))), dtype=np.float32),
            tfidf,
            np.zeros((n, 1), dtype=np.float32),
            0.0,
        )
    basis = lsa_basis(tfidf[chosen], LSA_DIMENSIONS, seed)
    reduced = _normalise(tfidf @ basis.T)
    fitted = reduced[chosen]
    usable = np.linalg.norm(tfidf[chosen], axis=1) > 0
    points = fitted[usable]
    rng = np.random.default_rng(seed)
    sample = (
        rng.choice(len(points), SILHOUETTE_SAMPLE, replace=False)
        if len(points) > SILHOUETTE_SAMPLE
        else np.arange(len(points))
    )
    best: tuple[float, int, Matrix] | None = None
    for k in range(2, max(2, min(max_themes, len(points) // 5)) + 1):
        labels, centres = spherical_kmeans(points, k, seed)
        score = silhouette(points[sample], labels[sample])
        if best is None or score > best[0] + 1e-9:
            best = (score, k, centres)
    assert best is not None
    score, _, centres = best
    similarity = reduced @ centres.T
    labels = np.argmax(similarity, axis=1).astype(np.int64)
    labels[np.max(similarity, axis=1) < MIN_SIMILARITY] = -1
    labels[np.linalg.norm(tfidf, axis=1) == 0] = -1
    # Themes too small to speak of are dissolved.
    floor = max(3, math.ceil(MIN_THEME_SHARE * n))
    for c in range(len(centres)):
        if 0 < np.sum(labels == c) < floor:
            labels[labels == c] = -1
    return Clustering(labels, centres, space, basis, tfidf, reduced, score)


def key_phrases(clustering: Clustering, theme: int, count: int = KEY_PHRASES) -> list[str]:
    """The terms that most set a theme apart (pairs preferred to their words)."""
    inside = clustering.labels == theme
    if not inside.any():
        return []
    outside = ~inside
    gain = clustering.tfidf[inside].mean(axis=0)
    if outside.any():
        gain = gain - clustering.tfidf[outside].mean(axis=0)
    names = clustering.space.names
    chosen: list[str] = []
    for column in np.argsort(-gain, kind="stable"):
        if gain[column] <= 0 or len(chosen) >= count:
            break
        term = names[int(column)]
        words = set(term.split())
        if any(words <= set(other.split()) for other in chosen):
            continue  # a word of a pair already chosen
        if " " in term:
            chosen = [other for other in chosen if not set(other.split()) <= words]
        chosen.append(term)
    return chosen[:count]


@dataclass
class PublicationText:
    """One of our publications, as compared with the themes."""

    publication_id: str
    title: str
    body: str


@dataclass
class ThemeStats:
    """One theme over the window."""

    theme_id: str
    label: str
    key_phrases: list[str]
    mentions: int
    series: list[int]
    trend: float
    stance: list[tuple[str, int]]
    sentiment: list[tuple[str, int]]
    languages: list[tuple[str, int]]
    communities: list[tuple[str, int]]
    representative: list[Observed]
    members: list[Observed] = field(default_factory=list)


@dataclass
class AngleStats:
    """One theme ranked as an angle."""

    theme_id: str
    label: str
    rank: int
    score: float
    mentions: int
    against: int
    negative: int
    addressed: bool
    closest_publication_id: str
    closest_publication_title: str
    closest_similarity: float
    reason: str
    evidence: list[Observed]


@dataclass
class ThemeMap:
    """The themes and angles of one issue over one window."""

    start: datetime
    end: datetime
    mentions: int
    unassigned: int
    themes: list[ThemeStats]
    angles: list[AngleStats]
    publications_compared: int
    silhouette: float


def _counts(values: Sequence[str]) -> list[tuple[str, int]]:
    return sorted(Counter(values).items(), key=lambda pair: (-pair[1], pair[0]))


def map_themes(
    issue_id: str,
    mentions: Sequence[Observed],
    start: datetime,
    end: datetime,
    *,
    issue_terms: Sequence[str] = (),
    publications: Sequence[PublicationText] = (),
    max_themes: int = DEFAULT_MAX_THEMES,
    community_of: dict[str, str] | None = None,
) -> ThemeMap:
    """The themes of ``mentions`` published in ``[start, end)`` and the angles they offer
    against ``publications`` (see the module docstring). ``community_of``: a community label
    per mention id, for the themes' community mix."""
    current = [m for m in mentions if start <= m.published_at < end]
    exclude = excluded_words(
        [*issue_terms, *(term for m in current for term in m.matched_keywords)]
    )
    documents = [terms(tokens(m.full_text, exclude)) for m in current]
    originals = [i for i, m in enumerate(current) if not m.duplicate_of]
    fit_on = originals[-MAX_CLUSTERED:]
    clustering = cluster_texts(documents, max_themes, fit_on=fit_on)
    labels = clustering.labels.copy()
    # A copy goes where its original went (when the original is in the window).
    position = {m.mention_id: i for i, m in enumerate(current)}
    for i, m in enumerate(current):
        if m.duplicate_of and m.duplicate_of in position:
            labels[i] = labels[position[m.duplicate_of]]

    themes: list[ThemeStats] = []
    centres_kept: list[int] = []
    span = (end - start).total_seconds() or 1.0
    for c in range(len(clustering.centres)):
        members_idx = [i for i in range(len(current)) if labels[i] == c]
        if not members_idx:
            continue
        members = [current[i] for i in members_idx]
        phrases = key_phrases(clustering, c)
        label = " / ".join(phrases) if phrases else f"theme {c + 1}"
        series = [0] * SERIES_BUCKETS
        for m in members:
            bucket = int((m.published_at - start).total_seconds() / span * SERIES_BUCKETS)
            series[min(SERIES_BUCKETS - 1, max(0, bucket))] += 1
        half = SERIES_BUCKETS // 2
        first, second = sum(series[:half]), sum(series[-half:])
        similarity = clustering.reduced[members_idx] @ clustering.centres[c]
        order = [members_idx[j] for j in np.argsort(-similarity, kind="stable")]
        representative: list[Observed] = []
        seen_authors: set[str] = set()
        for i in order:
            who = current[i].author_id or current[i].author or current[i].mention_id
            if who in seen_authors or current[i].duplicate_of:
                continue
            seen_authors.add(who)
            representative.append(current[i])
            if len(representative) >= REPRESENTATIVES:
                break
        themes.append(
            ThemeStats(
                theme_id=stable_id("theme", issue_id, label),
                label=label,
                key_phrases=phrases,
                mentions=len(members),
                series=series,
                trend=round((second - first) / max(first, 1), 3),
                stance=_counts([m.stance for m in members]),
                sentiment=_counts([m.sentiment for m in members]),
                languages=_counts([(m.language or "und").split("-")[0] for m in members]),
                communities=_counts(
                    [community_of.get(m.mention_id, "") for m in members if community_of]
                )[:5]
                if community_of
                else [],
                representative=representative,
                members=members,
            )
        )
        centres_kept.append(c)
    order_themes = sorted(range(len(themes)), key=lambda t: (-themes[t].mentions, themes[t].label))
    themes = [themes[t] for t in order_themes]
    centres_kept = [centres_kept[t] for t in order_themes]
    angles = rank_angles(themes, clustering, centres_kept, publications, exclude)
    return ThemeMap(
        start=start,
        end=end,
        mentions=len(current),
        unassigned=int(np.sum(labels == -1)),
        themes=themes,
        angles=angles,
        publications_compared=len(publications),
        silhouette=round(clustering.silhouette, 4),
    )


def rank_angles(
    themes: Sequence[ThemeStats],
    clustering: Clustering,
    centres: Sequence[int],
    publications: Sequence[PublicationText],
    exclude: frozenset[str] = frozenset(),
) -> list[AngleStats]:
    """Every theme as an angle, the most opposed and least addressed first."""
    similarity = np.zeros((len(themes), len(publications)), dtype=np.float32)
    if publications and themes and clustering.centres.shape[0]:
        docs = [terms(tokens(f"{p.title}. {p.body}", exclude)) for p in publications]
        vectors = clustering.space.transform(docs)
        reduced = _normalise(vectors @ clustering.basis.T)
        similarity = clustering.centres[list(centres)] @ reduced.T
    angles: list[AngleStats] = []
    for t, theme in enumerate(themes):
        against = sum(1 for m in theme.members if m.stance == "against")
        negative = sum(
            1 for m in theme.members if m.sentiment == "negative" and m.stance == "unknown"
        )
        best = int(np.argmax(similarity[t])) if publications else -1
        closest = float(similarity[t, best]) if best >= 0 else 0.0
        addressed = closest >= ADDRESSED_AT
        opposition = against + 0.5 * negative
        score = opposition * (1.0 - max(0.0, closest)) if addressed else opposition
        pub = publications[best] if best >= 0 else None
        if addressed and pub is not None:
            reason = (
                f"{against} mentions against; answered by our publication"
                f" {pub.title!r} (similarity {closest:.2f})"
            )
        else:
            reason = (
                f"{against} mentions against, {negative} more negative;"
                f" none of our {len(publications)} publications addresses it"
                + (f" (closest {pub.title!r}, similarity {closest:.2f})" if pub else "")
            )
        evidence = sorted(
            (m for m in theme.members if m.stance == "against" or m.sentiment == "negative"),
            key=lambda m: (m.stance != "against", -m.influence, m.published_at),
        )[:REPRESENTATIVES]
        angles.append(
            AngleStats(
                theme_id=theme.theme_id,
                label=theme.label,
                rank=0,
                score=round(score, 4),
                mentions=theme.mentions,
                against=against,
                negative=negative,
                addressed=addressed,
                closest_publication_id=pub.publication_id if pub else "",
                closest_publication_title=pub.title if pub else "",
                closest_similarity=round(closest, 4),
                reason=reason,
                evidence=evidence,
            )
        )
    angles.sort(key=lambda a: (a.addressed, -a.score, -a.mentions, a.label))
    for rank, angle in enumerate(angles, start=1):
        angle.rank = rank
    return angles
