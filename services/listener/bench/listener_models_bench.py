"""``make bench-listener``: the listener's models measured against baselines in one run.

    make bench-listener   (or: PYTHONPATH=services/listener/training python
        services/listener/bench/listener_models_bench.py [--datasets PATH] [--items N]
        [--no-kafka])

Quality, on the validation splits of the labelled datasets (``--datasets``, else
``LEGATION_DATASETS``, else ``../shared/datasets`` beside the repository):

- language identification accuracy (py3langid, as served with its "und" threshold and
  forced) against always answering the most common language;
- sentiment macro-F1 and accuracy per language, forced (argmax, comparable with published
  figures) and as served ("unknown" counted wrong, with its coverage), against the
  majority class and, for English, VADER on the same tweets;
- stance macro-F1 and the SemEval/TweetEval metric (mean of F1 against and F1 favour) per
  target (model trained on all five) and leave-one-target-out (trained on the other four:
  what a tracked issue the model never saw gets), against the majority class.

The published figures of the datasets README are printed beside: they are on the held-out
*test* splits, which are not here, so they orient rather than compare exactly.

Throughput, one thread: enriched mentions per second (every field of
:func:`~legation_listener.domain.enrichment.enrich_mention`) as a ratio to bare
tokenisation of the same texts, and to a raw Kafka producer sending the same serialised
mentions to the stand-in broker (unless ``--no-kafka``); memory is the process's resident
size before and after the models load. Without the datasets the quality part says so and
throughput runs on built-in sample posts.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from legation.events.v1 import listen_pb2
from legation_listener.domain import enrichment
from legation_listener.domain.duplicates import DuplicateIndex
from legation_listener.domain.rescore import rescore
from legation_listener.models import datasets
from legation_listener.models import issue as issue_models
from legation_listener.models.linear import LinearTextModel

# From the datasets README: UMSAB macro-F1 on the test splits (FastText per language,
# XLM-Twitter multilingual), and stance (mean F1 against/favour over the five targets).
PUBLISHED_SENTIMENT = {
    "ar": (46.0, 66.9),
    "en": (50.9, 70.6),
    "fr": (54.8, 71.2),
    "de": (59.6, 77.3),
    "it": (54.7, 69.1),
    "pt": (55.1, 75.4),
    "es": (None, None),
    "hi": (37.1, 56.4),
}
# Labelled mentions per target an analyst gives (the issue's per-issue stance model), and
# how many random draws of them are averaged.
ISSUE_LABEL_COUNTS = (20, 50, 100)
ISSUE_DRAWS = 3
SHORT_CHARS = 50
PUBLISHED_STANCE = "SVM 67.3, FastText 65.4, RoBERTa-tweets 69.3, TimeLMs-2021 72.9"
SAMPLE_POSTS = (
    "Delegates resumed talks on a global plastics treaty in Nairobi on Monday. #plastics",
    "Les négociations sur le traité plastique reprennent à Nairobi, enfin une bonne nouvelle !",
    "¡Qué vergüenza! Otra ronda de negociaciones sin ningún acuerdo sobre el plástico.",
    "استئناف المفاوضات حول معاهدة البلاستيك في نيروبي اليوم",
    "Переговоры о пластиковом договоре возобновились в Найроби",  # noqa: RUF001
    "塑料条约谈判今天在内罗毕恢复",
    "RT @unep: Delegates resumed talks on a global plastics treaty in Nairobi on Monday.",
)


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float:
    """Mean over ``labels`` of each label's F1 (a label never predicted nor gold: 0)."""
    return sum(_f1(gold, predicted, label) for label in labels) / len(labels)


def _f1(gold: Sequence[str], predicted: Sequence[str], label: str) -> float:
    tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
    fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
    fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def _majority(labels: Sequence[str]) -> str:
    return max(sorted(set(labels)), key=list(labels).count)


def _argmax(model: LinearTextModel, text: str, target: Sequence[str] = ()) -> str:
    probabilities = model.probabilities(text, target)
    return max(probabilities, key=probabilities.__getitem__)


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_language_id(root: Path) -> None:
    gold: list[str] = []
    texts: list[str] = []
    for language in datasets.SENTIMENT_LANGUAGES.values():
        split = datasets.sentiment_split(root, language, "val")
        texts.extend(split.texts)
        gold.extend([language] * len(split.texts))
    served = [enrichment.primary_language(enrichment.detect_language(t)) for t in texts]
    identifier = enrichment._identifier()
    # Every detector reads the text as served: links and @accounts removed, NFKC.
    cleaned = [enrichment._detection_text(t) for t in texts]
    started = time.perf_counter()
    forced = [
        enrichment.primary_language(str(identifier.classify(t)[0]))  # type: ignore[attr-defined]
        for t in cleaned
    ]
    forced_rate = len(texts) / (time.perf_counter() - started)
    covered = [(g, s) for g, s in zip(gold, served, strict=True) if s != enrichment.UNDETERMINED]
    baseline = accuracy(gold, [_majority(gold)] * len(gold))
    languages = len(datasets.SENTIMENT_LANGUAGES)
    print(
        f"\nlanguage identification, UMSAB validation tweets ({len(texts)}, {languages} languages)"
    )
    print(f"  majority class ('{_majority(gold)}')        accuracy {baseline:.3f}")
    forced_acc = accuracy(gold, forced)
    served_acc = accuracy(gold, served)
    ratio = forced_acc / baseline
    print(f"  py3langid forced                 accuracy {forced_acc:.3f} ({ratio:.1f}x; "
          f"{forced_rate:,.0f} texts/s)")  # fmt: skip
    print(f"  py3langid as served (und if p<{enrichment.MIN_DETECTION_PROBABILITY}) accuracy "
          f"{served_acc:.3f}, coverage {len(covered) / len(gold):.3f}, accuracy when it answers "
          f"{accuracy([g for g, _ in covered], [s for _, s in covered]):.3f}")  # fmt: skip
    short = [i for i, t in enumerate(cleaned) if len(t.strip()) <= SHORT_CHARS]
    if short:
        short_gold = [gold[i] for i in short]
        short_served = [served[i] for i in short]
        short_covered = [i for i in short if served[i] != enrichment.UNDETERMINED]
        print(f"  short posts (<= {SHORT_CHARS} characters, {len(short)}): forced accuracy "
              f"{accuracy(short_gold, [forced[i] for i in short]):.3f}, as served "
              f"{accuracy(short_gold, short_served):.3f} with coverage "
              f"{len(short_covered) / len(short):.3f}")  # fmt: skip
    before = _without_romanised_hindi(texts)
    hindi = [i for i, g in enumerate(gold) if g == "hi"]
    others = [i for i, g in enumerate(gold) if g != "hi"]
    print(f"  romanised Hindi, as served: before (py3langid alone) accuracy "
          f"{accuracy(gold, before):.3f}, after (with legation-langid-hi-latn) "
          f"{served_acc:.3f}")  # fmt: skip
    print(f"    Hindi tweets ({len(hindi)}) tagged hi: before "
          f"{accuracy([gold[i] for i in hindi], [before[i] for i in hindi]):.3f}, after "
          f"{accuracy([gold[i] for i in hindi], [served[i] for i in hindi]):.3f}; "
          f"before they read as {_top(before[i] for i in hindi)}")  # fmt: skip
    print(f"    other languages' tweets ({len(others)}) right: before "
          f"{accuracy([gold[i] for i in others], [before[i] for i in others]):.3f}, after "
          f"{accuracy([gold[i] for i in others], [served[i] for i in others]):.3f} "
          f"(wrongly hi after: {sum(served[i] == 'hi' for i in others)})")  # fmt: skip
    for name, detect in _other_detectors():
        started = time.perf_counter()
        guesses = [detect(t) for t in cleaned]
        rate = len(texts) / (time.perf_counter() - started)
        print(f"  {name:32} accuracy {accuracy(gold, guesses):.3f} ({rate:,.0f} texts/s)")
    print("  (no published figure in the datasets README)")


def _top(values: Iterable[str], n: int = 3) -> str:
    counts = Counter(values)
    total = sum(counts.values()) or 1
    return ", ".join(f"{v} {c / total:.0%}" for v, c in counts.most_common(n))


def _without_romanised_hindi(texts: Sequence[str]) -> list[str]:
    """Language as served before the romanised-Hindi detector: py3langid alone."""
    original = enrichment.romanised_hindi
    enrichment.romanised_hindi = lambda cleaned: None
    try:
        return [enrichment.primary_language(enrichment.detect_language(t)) for t in texts]
    finally:
        enrichment.romanised_hindi = original


def _other_detectors() -> list[tuple[str, Callable[[str], str]]]:
    """langdetect and lingua, forced, when installed (they are not dependencies: pip
    install langdetect lingua-language-detector to compare)."""
    found: list[tuple[str, Callable[[str], str]]] = []
    try:
        from langdetect import DetectorFactory, detect
        from langdetect.lang_detect_exception import LangDetectException

        DetectorFactory.seed = 0

        def with_langdetect(text: str) -> str:
            try:
                return enrichment.primary_language(str(detect(text)))
            except LangDetectException:
                return enrichment.UNDETERMINED

        found.append(("langdetect forced (comparison)", with_langdetect))
    except ImportError:
        pass
    try:
        from lingua import LanguageDetectorBuilder

        lingua = LanguageDetectorBuilder.from_all_languages().build()

        def with_lingua(text: str) -> str:
            language = lingua.detect_language_of(text)
            return language.iso_code_639_1.name.lower() if language else enrichment.UNDETERMINED

        found.append(("lingua forced (comparison)", with_lingua))
    except ImportError:
        pass
    return found


def bench_sentiment(root: Path) -> None:
    print("\nsentiment, UMSAB validation split (323 tweets per language, balanced)")
    print("  lang  majority F1 | model F1   acc  (x majority) | served F1  coverage"
          " | published test F1: FastText, XLM-T")  # fmt: skip
    vader = _vader()
    for language in datasets.SENTIMENT_LANGUAGES.values():
        model = enrichment.sentiment_model(language)
        if model is None:
            print(f"  {language}    no shipped model")
            continue
        split = datasets.sentiment_split(root, language, "val")
        gold = [datasets.SENTIMENT_LABELS[y] for y in split.labels]
        train = datasets.sentiment_split(root, language, "train")
        majority = _majority([datasets.SENTIMENT_LABELS[y] for y in train.labels])
        labels = datasets.SENTIMENT_LABELS
        base_f1 = macro_f1(gold, [majority] * len(gold), labels)
        forced = [_argmax(model, t) for t in split.texts]
        served = [enrichment.sentiment(t, language).value for t in split.texts]
        f1 = macro_f1(gold, forced, labels)
        coverage = sum(s != enrichment.UNKNOWN for s in served) / len(served)
        fasttext, xlmt = PUBLISHED_SENTIMENT[language]
        published = f"{fasttext}, {xlmt}" if fasttext else "none (not in UMSAB's table)"
        print(f"  {language}    {base_f1:.3f}       | {f1:.3f}  {accuracy(gold, forced):.3f}"
              f" ({f1 / base_f1:.1f}x)        | {macro_f1(gold, served, labels):.3f}      "
              f"{coverage:.3f}    | {published}")  # fmt: skip
        if language == "en" and vader is not None:
            scored = [vader(t) for t in split.texts]
            print(f"  en    VADER on the same tweets: F1 {macro_f1(gold, scored, labels):.3f}"
                  f" acc {accuracy(gold, scored):.3f}; model / VADER F1 "
                  f"{f1 / macro_f1(gold, scored, labels):.2f}x")  # fmt: skip
    print("  ru, zh and every other language: no model, sentiment 'unknown'")


def _vader() -> Callable[[str], str] | None:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        print("  (VADER not installed)")
        return None
    analyzer = SentimentIntensityAnalyzer()

    def label(text: str) -> str:
        compound = float(analyzer.polarity_scores(text)["compound"])
        # VADER's customary thresholds.
        return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"

    return label


def _stance_scores(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    labels = datasets.STANCE_LABELS
    semeval = (_f1(gold, predicted, "against") + _f1(gold, predicted, "favour")) / 2
    return macro_f1(gold, predicted, labels), semeval


def bench_stance(root: Path, leave_one_out: bool) -> None:
    model = enrichment.stance_model()
    if model is None:
        print("\nstance: no shipped model")
        return
    print("\nstance, SemEval-2016 validation split (English; 45-70 tweets per target)")
    print("  target     n  | majority F1 F1avg | model F1 F1avg acc | unseen-target F1 F1avg")
    rows: list[tuple[tuple[float, float], ...]] = []
    accuracies: list[float] = []
    served: list[str] = []
    served_gold: list[str] = []
    for target in datasets.STANCE_TARGETS:
        split = datasets.stance_split(root, target, "val")
        terms = datasets.STANCE_TARGET_TERMS[target]
        gold = [datasets.STANCE_LABELS[y] for y in split.labels]
        train = datasets.stance_split(root, target, "train")
        majority = _majority([datasets.STANCE_LABELS[y] for y in train.labels])
        base = _stance_scores(gold, [majority] * len(gold))
        forced = [_argmax(model, t, terms) for t in split.texts]
        own = _stance_scores(gold, forced)
        served.extend(enrichment.stance(t, "en", terms).value for t in split.texts)
        served_gold.extend(gold)
        unseen = (float("nan"), float("nan"))
        if leave_one_out:
            held_out = _pooled_without(root, target)
            unseen = _stance_scores(gold, [_argmax(held_out, t, terms) for t in split.texts])
        rows.append((base, own, unseen))
        accuracies.append(accuracy(gold, forced))
        print(f"  {target:9} {len(gold):3}  | {base[0]:.3f}     {base[1]:.3f} | {own[0]:.3f}   "
              f"{own[1]:.3f} {accuracy(gold, forced):.3f} | {unseen[0]:.3f}            "
              f"{unseen[1]:.3f}")  # fmt: skip
    mean = [sum(r[i][j] for r in rows) / len(rows) for i in range(3) for j in range(2)]
    mean_acc = sum(accuracies) / len(accuracies)
    print(f"  mean           | {mean[0]:.3f}     {mean[1]:.3f} | {mean[2]:.3f}   {mean[3]:.3f} "
          f"{mean_acc:.3f} | {mean[4]:.3f}            {mean[5]:.3f}")  # fmt: skip
    unseen_ratio = f"{mean[4] / mean[0]:.1f}x" if leave_one_out else "(skipped)"
    print(f"  model / majority macro-F1: {mean[2] / mean[0]:.1f}x seen targets, "
          f"{unseen_ratio} unseen targets")  # fmt: skip
    answered = [(g, s) for g, s in zip(served_gold, served, strict=True) if s != "unknown"]
    print(f"  as served (unknown if p<{enrichment.MIN_STANCE_PROBABILITY}): coverage "
          f"{len(answered) / len(served):.3f}, accuracy when it answers "
          f"{accuracy([g for g, _ in answered], [s for _, s in answered]):.3f}")  # fmt: skip
    print(f"  published test F1avg (per-target models): {PUBLISHED_STANCE}")


@cache
def _pooled_without(root: Path, target: str) -> LinearTextModel:
    """The pooled stance model trained on every target but ``target`` (what a tracked
    issue the shipped model never saw gets)."""
    from listener_train import train_stance

    return train_stance(root, [t for t in datasets.STANCE_TARGETS if t != target])


def bench_issue_stance(root: Path, counts: Sequence[int], draws: int) -> None:
    """Per-issue stance models from analysts' labels: for each SemEval target taken as a
    new issue, ``n`` labels drawn from its TRAIN split train the issue's model exactly as
    the listener does (from the pooled model of the *other* four targets, one label in three
    held back to decide serving), measured on the target's VALIDATION split against that
    pooled model and the majority class of the ``n`` labels."""
    print(f"\nper-issue stance from analysts' labels: n labels from each target's TRAIN split "
          f"(mean of {draws} draws), macro-F1 on its VALIDATION split")  # fmt: skip
    print(
        "  (issue model: from the pooled model of the other four targets, trained on 2/3 "
        "of the n labels, served only if it beats the majority on the held-back 1/3)"
    )
    print("  target      n | majority pooled(unseen) issue-model | served draws | "
          "as served (refused: all unknown)")  # fmt: skip
    labels = datasets.STANCE_LABELS
    summary: dict[int, list[tuple[float, float, float, float]]] = {n: [] for n in counts}
    for target in datasets.STANCE_TARGETS:
        val = datasets.stance_split(root, target, "val")
        train = datasets.stance_split(root, target, "train")
        terms = tuple(datasets.STANCE_TARGET_TERMS[target])
        gold = [labels[y] for y in val.labels]
        base = _pooled_without(root, target)
        pooled_f1 = macro_f1(gold, [_argmax(base, t, terms) for t in val.texts], labels)
        for n in counts:
            rows = []
            served_count = 0
            for draw in range(draws):
                rng = random.Random(f"{target}/{n}/{draw}")
                chosen = rng.sample(range(len(train.texts)), min(n, len(train.texts)))
                examples = [
                    issue_models.Example(f"{target}-{i}", train.texts[i], labels[train.labels[i]],
                                         terms)
                    for i in chosen
                ]  # fmt: skip
                trained = issue_models.train_issue_model(
                    issue_models.STANCE, target, examples, base, datetime.now(UTC)
                )
                common = issue_models.majority([e.label for e in examples])
                major = macro_f1(gold, [common] * len(gold), labels)
                if trained.model is None:
                    rows.append((major, pooled_f1, float("nan"), 0.0))
                    continue
                predicted = [_argmax(trained.model, t, terms) for t in val.texts]
                f1 = macro_f1(gold, predicted, labels)
                served_count += trained.served
                rows.append((major, pooled_f1, f1, f1 if trained.served else 0.0))
            mean = [sum(r[i] for r in rows) / len(rows) for i in range(4)]
            summary[n].append((mean[0], mean[1], mean[2], mean[3]))
            print(f"  {target:9} {n:4} | {mean[0]:.3f}    {mean[1]:.3f}          {mean[2]:.3f}"
                  f"       | {served_count}/{draws}          | {mean[3]:.3f}")  # fmt: skip
    for n in counts:
        rows = summary[n]
        mean = [sum(r[i] for r in rows) / len(rows) for i in range(4)]
        print(f"  mean      {n:4} | {mean[0]:.3f}    {mean[1]:.3f}          {mean[2]:.3f}"
              f"       |              | {mean[3]:.3f}")  # fmt: skip


def _texts_for_throughput(root: Path | None, count: int) -> list[tuple[str, str]]:
    pool: list[tuple[str, str]] = []
    if root is not None:
        for language in datasets.SENTIMENT_LANGUAGES.values():
            pool.extend((t, "") for t in datasets.sentiment_split(root, language, "val").texts)
    if not pool:
        pool = [(t, "") for t in SAMPLE_POSTS]
    return [pool[i % len(pool)] for i in range(count)]


def _mentions(texts: Sequence[tuple[str, str]]) -> list[listen_pb2.Mention]:
    now = datetime.now(UTC)
    mentions = []
    for i, (text, language) in enumerate(texts):
        mention = listen_pb2.Mention(
            mention_id=f"m{i}",
            source="bench",
            text=text,
            language=language,
            reach=(i * 7919) % 100_000,
            matched_keywords=["treaty"],
        )
        mention.published_at.FromDatetime(now)
        mentions.append(mention)
    return mentions


def bench_throughput(root: Path | None, count: int, kafka: bool) -> None:
    texts = _texts_for_throughput(root, count)
    issue = listen_pb2.TrackedIssue(issue_id="bench", name="treaty", keywords=["treaty"])
    token = re.compile(r"\w+")

    started = time.perf_counter()
    tokens = sum(len(token.findall(text)) for text, _ in texts)
    bare = count / (time.perf_counter() - started)

    mentions = _mentions(texts)
    index = DuplicateIndex()
    started = time.perf_counter()
    for mention in mentions:
        enrichment.enrich_mention(mention, issue, index)
    enriched = count / (time.perf_counter() - started)
    copies = sum(bool(m.duplicate_of) for m in mentions)
    print(f"\nthroughput, one thread, {count} mentions ({tokens} tokens)")
    print(f"  bare tokenisation (regex words)   {bare:12,.0f} items/s")
    print(f"  enrich_mention (every field)      {enriched:12,.0f} items/s "
          f"({enriched / bare:.4f}x bare tokenisation; {copies} marked copies)")  # fmt: skip
    # Re-scoring the same mentions as if an earlier model version had labelled them: every
    # label is recomputed and the replaced ones kept in label_history.
    for mention in mentions:
        mention.sentiment.model_version = "0.old"
    now = datetime.now(UTC)
    started = time.perf_counter()
    changed = sum(rescore(mention, issue, now) for mention in mentions)
    rescored = count / (time.perf_counter() - started)
    print(f"  re-score (labels again, history)  {rescored:12,.0f} items/s "
          f"({rescored / enriched:.2f}x enrich_mention; {changed} changed)")  # fmt: skip
    if kafka:
        produced = _raw_producer_rate(mentions)
        if produced:
            print(f"  raw Kafka producer, same mentions {produced:12,.0f} items/s "
                  f"(enrichment / producer {enriched / produced:.3f}x)")  # fmt: skip


def _raw_producer_rate(mentions: Sequence[listen_pb2.Mention]) -> float | None:
    try:
        from kafka import KafkaProducer

        from legation_core.config import CoreSettings
        from legation_core.kafka import client_options
        from legation_devstack.standins import start_kafka
    except ImportError:
        print("  (raw producer skipped: legation-devstack not installed)")
        return None
    workdir = Path(tempfile.mkdtemp(prefix="legation-bench-listener-"))
    broker = start_kafka(workdir / "data", workdir / "logs")
    try:
        settings = CoreSettings(kafka_bootstrap_servers=broker.bootstrap_servers)
        producer = KafkaProducer(**client_options(settings), acks="all", linger_ms=5)
        payloads = [(m.mention_id.encode(), m.SerializeToString()) for m in mentions]
        producer.send("bench.listener", key=b"warm-up", value=b"").get(timeout=30)
        started = time.perf_counter()
        for key, value in payloads:
            producer.send("bench.listener", key=key, value=value)
        producer.flush()
        rate = len(payloads) / (time.perf_counter() - started)
        producer.close()
        return rate
    finally:
        broker.process.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=datasets.default_datasets_dir())
    parser.add_argument("--items", type=int, default=3000, help="mentions for throughput")
    parser.add_argument("--no-kafka", action="store_true", help="skip the raw producer")
    parser.add_argument(
        "--no-leave-one-out", action="store_true", help="skip retraining stance per target"
    )
    parser.add_argument(
        "--draws", type=int, default=ISSUE_DRAWS, help="draws of labels per target and count"
    )
    parser.add_argument(
        "--only", choices=("language", "sentiment", "stance", "issue-stance", "throughput"),
        help="run one part only",
    )  # fmt: skip
    args = parser.parse_args(argv)

    before = _rss_mb()
    started = time.perf_counter()
    enrichment.sentiment_languages()
    enrichment.stance_model()
    enrichment.detect_language("warm the language detector up")
    enrichment.entities("Warm up the gazetteer in Nairobi")
    loaded = time.perf_counter() - started
    after = _rss_mb()
    print("listener models benchmark")
    print(f"  models: {', '.join(m.name + ' ' + m.version for m in _models())}")
    print(f"  load {loaded:.2f} s; resident memory {before:.0f} MB before, {after:.0f} MB after "
          f"(+{after - before:.0f} MB)")  # fmt: skip

    root: Path | None = args.datasets
    if root is None or not (root / "umsab-sentiment").is_dir():
        print(f"\nDATASETS ABSENT at {root}: quality figures skipped (pass --datasets PATH "
              "or set LEGATION_DATASETS); throughput on sample posts")  # fmt: skip
        root = None
    else:
        print(f"  datasets: {root}")
        parts: dict[str, Callable[[Path], None]] = {
            "language": bench_language_id,
            "sentiment": bench_sentiment,
            "stance": lambda r: bench_stance(r, leave_one_out=not args.no_leave_one_out),
            "issue-stance": lambda r: bench_issue_stance(r, ISSUE_LABEL_COUNTS, args.draws),
        }
        for name, part in parts.items():
            if args.only in (None, name):
                part(root)
    if args.only in (None, "throughput"):
        bench_throughput(root, args.items, kafka=not args.no_kafka)
    print(
        f"  peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    return 0


def _models() -> list[LinearTextModel]:
    models = [enrichment.sentiment_model(code) for code in datasets.SENTIMENT_LANGUAGES.values()]
    models.append(enrichment.stance_model())
    return [m for m in models if m is not None]


if __name__ == "__main__":
    raise SystemExit(main())
