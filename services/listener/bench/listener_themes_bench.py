"""Themes measured against baselines (part of ``make bench-listener``).

    python services/listener/bench/listener_themes_bench.py [--datasets PATH]
    (or: make bench-listener)

- the planted fixture (:mod:`legation_listener.models.planted`: 440 mentions, five planted
  arguments and mentions that make none): V-measure and adjusted Rand index of the themes
  against the planted labels, beside one cluster and a random assignment with as many
  clusters; where the unaddressed argument lands in the angle report;
- real tweets: the SemEval-2016 stance *validation* splits of the five targets pooled
  (abortion, atheism, climate, feminism, Hillary Clinton; ``--datasets``, else
  ``LEGATION_DATASETS``, else ``../shared/datasets``), the target as the label to recover;
  the same two baselines. These are topics rather than arguments inside one issue, and
  tweets are short: a hard, honest check that the clustering finds structure in real text;
- time to map the themes of 440 and of 5,000 mentions on one thread (the most one issue
  keeps by default).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from legation_listener.domain.observed import Observed
from legation_listener.domain.themes import ThemeMap, map_themes
from legation_listener.models import datasets
from legation_listener.models.planted import (
    ISSUE_TERMS,
    UNADDRESSED,
    adjusted_rand,
    planted_issue,
    v_measure,
)


def _labels(mentions: Sequence[Observed], mapped: ThemeMap) -> list[str]:
    theme_of = {m.mention_id: t.theme_id for t in mapped.themes for m in t.members}
    return [theme_of.get(m.mention_id, "unassigned") for m in mentions]


def _line(name: str, truth: list[str], found: list[str]) -> str:
    v, ari = v_measure(truth, found), adjusted_rand(truth, found)
    return f"    {name:<22} V-measure {v:.3f}  ARI {ari:.3f}"


def _compare(truth: list[str], found: list[str], clusters: int) -> None:
    rng = random.Random(1)
    print(_line("themes", truth, found))
    print(_line("one cluster", truth, ["all"] * len(found)))
    chance = [str(rng.randrange(max(1, clusters))) for _ in found]
    print(_line(f"random ({clusters} clusters)", truth, chance))


def bench_planted() -> None:
    planted = planted_issue()
    started = time.perf_counter()
    mapped = map_themes(
        "plastics",
        planted.mentions,
        planted.start,
        planted.end,
        issue_terms=ISSUE_TERMS,
        publications=planted.publications,
    )
    elapsed = time.perf_counter() - started
    print(
        f"\nplanted fixture: {len(planted.mentions)} mentions, {len(mapped.themes)} themes, "
        f"{mapped.unassigned} unassigned, {elapsed:.2f} s"
    )
    _compare(planted.labels, _labels(planted.mentions, mapped), len(mapped.themes))
    truth = dict(zip((m.mention_id for m in planted.mentions), planted.labels, strict=True))
    for angle in mapped.angles:
        theme = next(t for t in mapped.themes if t.theme_id == angle.theme_id)
        planted_as = max(
            {truth[m.mention_id] for m in theme.members},
            key=lambda label: sum(1 for m in theme.members if truth[m.mention_id] == label),
        )
        marker = "  <- the unaddressed argument" if planted_as == UNADDRESSED else ""
        print(
            f"    angle {angle.rank}: {angle.label} (planted: {planted_as}; against "
            f"{angle.against}; addressed {angle.addressed}, closest {angle.closest_similarity:.2f})"
            f"{marker}"
        )


def bench_semeval(root: Path) -> None:
    texts: list[str] = []
    truth: list[str] = []
    for target in datasets.STANCE_TARGETS:
        split = datasets.stance_split(root, target, "val")
        texts += split.texts
        truth += [target] * len(split.texts)
    end = datetime(2026, 11, 20, tzinfo=UTC)
    mentions = [
        Observed(f"t{i}", "rss", "", f"t{i}", "", "", "", "", text, "en", "unknown", "unknown",
                 0, 0.0, end - timedelta(minutes=i + 1))
        for i, text in enumerate(texts)
    ]  # fmt: skip
    for max_themes in (5, 8):
        mapped = map_themes("semeval", mentions, end - timedelta(days=30), end,
                            max_themes=max_themes)  # fmt: skip
        print(
            f"\nSemEval-2016 stance validation, 5 targets pooled: {len(mentions)} tweets, "
            f"at most {max_themes} themes: {len(mapped.themes)} found, "
            f"{mapped.unassigned} unassigned"
        )
        _compare(truth, _labels(mentions, mapped), len(mapped.themes))
        for theme in mapped.themes:
            print(f"      {theme.mentions:>4}  {theme.label}")


def bench_time() -> None:
    planted = planted_issue()
    many: list[Observed] = []
    for copy in range(12):
        shift = timedelta(minutes=copy)
        many += [
            replace(m, mention_id=f"{m.mention_id}-{copy}", published_at=m.published_at - shift)
            for m in planted_issue(seed=copy).mentions
        ]
    many = many[:5000]
    started = time.perf_counter()
    mapped = map_themes("plastics", many, planted.start - timedelta(hours=1), planted.end,
                        issue_terms=ISSUE_TERMS)  # fmt: skip
    elapsed = time.perf_counter() - started
    print(
        f"\ntime: {len(many)} mentions mapped into {len(mapped.themes)} themes in {elapsed:.2f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=datasets.default_datasets_dir())
    args = parser.parse_args(argv)
    print("listener themes benchmark")
    bench_planted()
    root: Path | None = args.datasets
    if root is None or not (root / "semeval2016-stance").is_dir():
        print(f"\nDATASETS ABSENT at {root}: the SemEval figures are skipped")
    else:
        bench_semeval(root)
    bench_time()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
