"""Themes and angles (no I/O) on a fixture of 440 mentions with five planted arguments and
some that make none (:mod:`legation_listener.models.planted`)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from legation_listener.domain.themes import (
    Clustering,
    ThemeMap,
    cluster_texts,
    excluded_words,
    key_phrases,
    map_themes,
    silhouette,
    spherical_kmeans,
    terms,
    tokens,
)
from legation_listener.models.planted import (
    ISSUE_TERMS,
    NONE,
    UNADDRESSED,
    Planted,
    adjusted_rand,
    planted_issue,
    v_measure,
)


@pytest.fixture(scope="module")
def planted() -> Planted:
    return planted_issue()


@pytest.fixture(scope="module")
def mapped(planted: Planted) -> ThemeMap:
    return map_themes(
        "plastics",
        planted.mentions,
        planted.start,
        planted.end,
        issue_terms=ISSUE_TERMS,
        publications=planted.publications,
    )


def found_labels(planted: Planted, mapped: ThemeMap) -> list[str]:
    theme_of = {m.mention_id: t.theme_id for t in mapped.themes for m in t.members}
    return [theme_of.get(m.mention_id, "unassigned") for m in planted.mentions]


def majority(planted: Planted, members: list[str]) -> tuple[str, float]:
    truth = {m.mention_id: label for m, label in zip(planted.mentions, planted.labels, strict=True)}
    counts = Counter(truth[m] for m in members)
    label, count = counts.most_common(1)[0]
    return label, count / len(members)


def test_themes_recover_the_planted_arguments_far_above_the_baselines(
    planted: Planted, mapped: ThemeMap
) -> None:
    assert len(planted.mentions) == 440
    found = found_labels(planted, mapped)
    one_cluster = ["all"] * len(found)
    rng = random.Random(1)
    chance = [str(rng.randrange(len(mapped.themes))) for _ in found]
    v, ari = v_measure(planted.labels, found), adjusted_rand(planted.labels, found)
    # Measured: V-measure 0.98, adjusted Rand 0.99 (one cluster: 0 and 0; random: 0.01, 0.00).
    assert v >= 0.85 and ari >= 0.85, (v, ari)
    assert v_measure(planted.labels, one_cluster) == 0.0
    assert adjusted_rand(planted.labels, one_cluster) == 0.0
    assert v_measure(planted.labels, chance) < 0.1
    assert abs(adjusted_rand(planted.labels, chance)) < 0.05
    # Every planted argument is the clear majority of one theme.
    argued = {majority(planted, [m.mention_id for m in t.members]) for t in mapped.themes}
    assert {label for label, share in argued if share >= 0.9} >= {
        "jobs", "recycling", "ocean", "health", "finance",
    }  # fmt: skip


def test_themes_are_named_by_their_key_phrases(planted: Planted, mapped: ThemeMap) -> None:
    expected = {
        "jobs": {"jobs", "workers", "manufacturing", "unemployment", "petrochemical"},
        "recycling": {"recycling", "waste", "collection"},
        "ocean": {"debris", "oceans", "marine", "beaches", "wash", "floating", "reef"},
        "health": {"health", "microplastics", "additives", "microplastic", "chemicals"},
        "finance": {"countries", "developing", "finance", "income", "transition"},
    }
    for theme in mapped.themes:
        label, _ = majority(planted, [m.mention_id for m in theme.members])
        assert theme.label == " / ".join(theme.key_phrases)
        assert 1 <= len(theme.key_phrases) <= 3
        if label in expected:
            words = {w for phrase in theme.key_phrases for w in phrase.split()}
            assert words & expected[label], (label, theme.label)
        # The issue's own words name no theme: every mention has them.
        assert "treaty" not in theme.label


def test_theme_statistics_add_up(planted: Planted, mapped: ThemeMap) -> None:
    assert mapped.mentions == 440
    assert sum(t.mentions for t in mapped.themes) + mapped.unassigned == 440
    for theme in mapped.themes:
        assert sum(theme.series) == theme.mentions == len(theme.members)
        assert sum(count for _, count in theme.stance) == theme.mentions
        assert theme.languages == [("en", theme.mentions)]
        assert 1 <= len(theme.representative) <= 3
        assert len({m.author for m in theme.representative}) == len(theme.representative)
        assert {m.mention_id for m in theme.representative} <= {m.mention_id for m in theme.members}
    assert [t.mentions for t in mapped.themes] == sorted(
        (t.mentions for t in mapped.themes), reverse=True
    )


def test_the_angle_report_lists_the_unaddressed_opposed_argument_first(
    planted: Planted, mapped: ThemeMap
) -> None:
    first = mapped.angles[0]
    theme = next(t for t in mapped.themes if t.theme_id == first.theme_id)
    assert majority(planted, [m.mention_id for m in theme.members])[0] == UNADDRESSED
    assert not first.addressed
    assert first.against > 40
    assert "none of our 3 publications addresses it" in first.reason
    assert all(m.stance == "against" for m in first.evidence)
    by_argument = {
        majority(planted, [m.mention_id for m in t.members])[0]: a
        for t in mapped.themes
        for a in mapped.angles
        if a.theme_id == t.theme_id
    }
    for answered in ("recycling", "ocean", "health"):
        assert by_argument[answered].addressed, answered
        assert by_argument[answered].closest_publication_id == f"pub-{answered}"
    # Finance is unaddressed too, but less opposed: second.
    assert not by_argument["finance"].addressed
    assert mapped.angles[1].theme_id == by_argument["finance"].theme_id
    assert [a.rank for a in mapped.angles] == list(range(1, len(mapped.angles) + 1))
    assert mapped.publications_compared == 3


def test_without_publications_nothing_is_addressed(planted: Planted) -> None:
    alone = map_themes("plastics", planted.mentions, planted.start, planted.end,
                       issue_terms=ISSUE_TERMS)  # fmt: skip
    assert not any(a.addressed for a in alone.angles)
    assert alone.angles[0].against == max(a.against for a in alone.angles)


def test_copies_follow_their_original_and_the_window_is_respected(planted: Planted) -> None:
    original = planted.mentions[0]
    copies = [
        replace(original, mention_id=f"copy{n}", duplicate_of=original.mention_id)
        for n in range(30)
    ]
    late = [replace(original, mention_id="late", published_at=planted.end)]
    mapped = map_themes("plastics", [*planted.mentions, *copies, *late], planted.start,
                        planted.end, issue_terms=ISSUE_TERMS)  # fmt: skip
    assert mapped.mentions == 470
    theme_of = {m.mention_id: t.theme_id for t in mapped.themes for m in t.members}
    assert {theme_of.get(c.mention_id) for c in copies} == {theme_of.get(original.mention_id)}
    assert "late" not in theme_of


def test_small_or_empty_inputs_give_no_themes(planted: Planted) -> None:
    empty = map_themes("p", [], planted.start, planted.end)
    assert (empty.themes, empty.angles, empty.unassigned) == ([], [], 0)
    few = map_themes("p", planted.mentions[:3], planted.start, planted.end)
    assert few.themes == [] and few.unassigned == 3


def test_tokens_leave_out_links_accounts_stop_words_and_the_issue() -> None:
    exclude = excluded_words(["plastics treaty", '"cap production"~3', "treat*"])
    words = tokens(
        "RT @ana: The #PlasticsTreaty won't cap production https://x.org/a cap!", exclude
    )
    assert words == ["plasticstreaty"]
    assert terms(["jobs", "lost", "jobs"]) == ["jobs", "lost", "jobs", "jobs lost", "lost jobs"]
    assert "treat" in exclude and "production" in exclude


def test_kmeans_and_silhouette_on_separated_points() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    centres = np.eye(3, dtype=np.float32)
    points = np.concatenate([c + 0.05 * rng.standard_normal((20, 3)) for c in centres])
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    labels, _ = spherical_kmeans(points, 3)
    truth = [str(i // 20) for i in range(60)]
    assert adjusted_rand(truth, [str(x) for x in labels]) == 1.0
    assert silhouette(points, labels) > 0.8
    assert silhouette(points, np.zeros(60, dtype=np.int64)) == 0.0


def test_clustering_metrics_agree_with_scikit_learn(planted: Planted, mapped: ThemeMap) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    found = found_labels(planted, mapped)
    assert adjusted_rand(planted.labels, found) == pytest.approx(
        metrics.adjusted_rand_score(planted.labels, found)
    )
    assert v_measure(planted.labels, found) == pytest.approx(
        metrics.v_measure_score(planted.labels, found)
    )


def test_the_window_bounds_the_mentions(planted: Planted) -> None:
    half = map_themes("plastics", planted.mentions, planted.end - timedelta(days=3), planted.end,
                      issue_terms=ISSUE_TERMS)  # fmt: skip
    assert half.mentions == sum(
        1 for m in planted.mentions if m.published_at >= planted.end - timedelta(days=3)
    )
    assert NONE not in {t.label for t in half.themes}


def test_key_phrases_prefer_pairs_to_their_words(planted: Planted, mapped: ThemeMap) -> None:
    for theme in mapped.themes:
        phrases = theme.key_phrases
        for phrase in phrases:
            if " " in phrase:
                assert not any(other in phrase.split() for other in phrases if other != phrase)
    assert key_phrases(mapped_clustering(planted), 99) == []


def mapped_clustering(planted: Planted) -> Clustering:
    documents = [terms(tokens(m.full_text)) for m in planted.mentions[:50]]
    return cluster_texts(documents, 3)
