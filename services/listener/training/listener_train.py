"""Trains the listener's sentiment and stance models and writes the shipped artefacts.

    python services/listener/training/listener_train.py [--datasets PATH]
    (or: make listener-models)

One sentiment model per language of UMSAB (train split), one English stance model on the
five SemEval-2016 targets pooled, each target's own words masked so the model learns how
people speak about *a* target. Training is deterministic (fixed seed, deterministic
solver, sorted vocabulary): the same data gives the same artefacts and the same versions.
The version is a digest of the training data and settings, so a label says exactly which
training made it. Needs scikit-learn (``pip install -e services/listener[train]``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from legation_listener.models import datasets
from legation_listener.models.linear import (
    LinearTextModel,
    artefact_path,
    extra_features,
    features,
    mask_target,
    model_text,
)

SEED = 20161
MAX_FEATURES = 20_000
MIN_DF = 2
SENTIMENT_C = 2.0
STANCE_C = 1.0
FORMAT = 1


def sentiment_filename(language: str) -> str:
    """The artefact of a language's sentiment model."""
    return f"sentiment-{language}.npz"


STANCE_FILENAME = "stance-en.npz"
ROMANISED_HINDI_FILENAME = "langid-hi-latn.npz"
ROMANISED_HINDI_LABELS = ("other", "hi")
ROMANISED_HINDI_C = 1.0


def _version(texts: Sequence[str], labels: Sequence[int], settings: Mapping[str, object]) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return f"{FORMAT}.{digest.hexdigest()[:10]}"


def fit(
    name: str,
    labels: tuple[str, ...],
    texts: Sequence[str],
    y: Sequence[int],
    c: float,
    class_weight: str | None = None,
    check: Sequence[str] = (),
    raw: Sequence[str] = (),
    extra: str = "",
) -> LinearTextModel:
    """A :class:`LinearTextModel` fitted on already-normalised ``texts``; ``check``: texts
    on which the numpy model must agree with scikit-learn (see :func:`check_parity`);
    ``extra``: dense features (:data:`~legation_listener.models.linear.EXTRA_FEATURES`)
    computed from the ``raw`` texts, appended after the n-grams."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    settings = {
        "max_features": MAX_FEATURES,
        "min_df": MIN_DF,
        "c": c,
        "class_weight": class_weight,
        "seed": SEED,
        "extra": extra,
    }
    vectorizer = TfidfVectorizer(
        analyzer=features,
        min_df=MIN_DF,
        max_features=MAX_FEATURES,
        sublinear_tf=True,
        dtype=np.float32,
    )
    matrix = vectorizer.fit_transform(texts)

    def with_extra(matrix: Any, originals: Sequence[str]) -> Any:
        if not extra:
            return matrix
        dense = np.vstack([extra_features(extra, t) for t in originals])
        return hstack([matrix, csr_matrix(dense)]).tocsr()

    matrix = with_extra(matrix, raw)
    classifier = LogisticRegression(
        C=c, max_iter=5000, class_weight=class_weight, random_state=SEED, solver="lbfgs"
    )
    classifier.fit(matrix, list(y))
    # Column order follows the sorted vocabulary, so the artefact is the same every run.
    vocabulary = {str(term): int(col) for term, col in vectorizer.vocabulary_.items()}
    coef, intercept = classifier.coef_, classifier.intercept_
    if len(labels) == 2:
        # scikit-learn keeps one row for two classes (the second's logit); a softmax over
        # minus and plus half of it is the same sigmoid.
        coef, intercept = (
            np.vstack([-coef / 2, coef / 2]),
            np.hstack([-intercept / 2, intercept / 2]),
        )
    model = LinearTextModel(
        name=name,
        version=_version(texts, y, settings),
        labels=labels,
        vocabulary=vocabulary,
        idf=vectorizer.idf_.astype(np.float32),
        coef=coef.astype(np.float32),
        intercept=intercept.astype(np.float32),
        extra=extra,
    )
    if check:
        checked = vectorizer.transform([model_text(t) for t in check])
        expected = classifier.predict(with_extra(checked, check))
        check_parity(model, check, [labels[int(i)] for i in expected])
    return model


def check_parity(model: LinearTextModel, texts: Sequence[str], expected: Sequence[str]) -> None:
    """Fails when the artefact as served (saved with float16 coefficients, reloaded, read by
    numpy) labels ``texts`` differently from scikit-learn's ``expected`` on more than 0.5%
    of them: the shipped model must be the measured one."""
    with tempfile.TemporaryDirectory() as scratch:
        buffer = Path(scratch) / "model.npz"
        model.save(buffer)
        served = LinearTextModel.load(buffer.read_bytes())
    disagreements = 0
    for text, label in zip(texts, expected, strict=True):
        probabilities = served.probabilities(text)
        disagreements += max(probabilities, key=probabilities.__getitem__) != label
    if disagreements > len(texts) // 200:
        raise SystemExit(f"{model.name}: the served model disagrees on {disagreements} texts")


def train_sentiment(root: Path, language: str) -> LinearTextModel:
    """The sentiment model of ``language`` from its UMSAB train split."""
    split = datasets.sentiment_split(root, language, "train")
    texts = [model_text(t) for t in split.texts]
    # English also reads VADER's scores (see linear.EXTRA_FEATURES).
    extra = "vader" if language == "en" else ""
    return fit(
        f"legation-sentiment-{language}",
        datasets.SENTIMENT_LABELS,
        texts,
        split.labels,
        SENTIMENT_C,
        check=datasets.sentiment_split(root, language, "val").texts,
        raw=split.texts,
        extra=extra,
    )


def romanised_hindi_split(root: Path, split: str) -> datasets.Split:
    """UMSAB's Hindi tweets (label 1) and the six Latin-script languages' (label 0) of
    ``split``, as the detector reads them (links and accounts removed, normalised)."""
    from legation_listener.domain.enrichment import _detection_text

    texts: list[str] = []
    labels: list[int] = []
    for language in ("hi", *datasets.LATIN_SCRIPT_LANGUAGES):
        part = datasets.sentiment_split(root, language, split)
        texts.extend(_detection_text(t) for t in part.texts)
        labels.extend([int(language == "hi")] * len(part.texts))
    return datasets.Split(texts, labels)


def train_romanised_hindi(root: Path) -> LinearTextModel:
    """The romanised-Hindi detector: Hindi against the Latin-script languages of UMSAB
    (train split; classes balanced, Hindi is one in seven)."""
    split = romanised_hindi_split(root, "train")
    return fit(
        "legation-langid-hi-latn",
        ROMANISED_HINDI_LABELS,
        [model_text(t) for t in split.texts],
        split.labels,
        ROMANISED_HINDI_C,
        class_weight="balanced",
        check=romanised_hindi_split(root, "val").texts,
    )


def stance_training_texts(root: Path, targets: Sequence[str], split: str) -> datasets.Split:
    """Normalised, target-masked texts of ``targets`` pooled."""
    texts: list[str] = []
    labels: list[int] = []
    for target in targets:
        part = datasets.stance_split(root, target, split)
        terms = datasets.STANCE_TARGET_TERMS[target]
        texts.extend(mask_target(model_text(t), terms) for t in part.texts)
        labels.extend(part.labels)
    return datasets.Split(texts, labels)


def train_stance(root: Path, targets: Sequence[str] = datasets.STANCE_TARGETS) -> LinearTextModel:
    """The English stance model on ``targets`` pooled (classes balanced: "against" is
    about half of the data)."""
    split = stance_training_texts(root, targets, "train")
    return fit(
        "legation-stance-en",
        datasets.STANCE_LABELS,
        split.texts,
        split.labels,
        STANCE_C,
        class_weight="balanced",
        check=stance_training_texts(root, targets, "val").texts,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--datasets", type=Path, default=datasets.default_datasets_dir())
    parser.add_argument(
        "--out", type=Path, default=artefact_path(""), help="where to write the artefacts"
    )
    args = parser.parse_args(argv)
    root = datasets.require(args.datasets)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for language in datasets.SENTIMENT_LANGUAGES.values():
        model = train_sentiment(root, language)
        model.save(out / sentiment_filename(language))
        print(f"{model.name} {model.version}: {len(model.vocabulary)} features")
    model = train_stance(root)
    model.save(out / STANCE_FILENAME)
    print(f"{model.name} {model.version}: {len(model.vocabulary)} features")
    model = train_romanised_hindi(root)
    model.save(out / ROMANISED_HINDI_FILENAME)
    print(f"{model.name} {model.version}: {len(model.vocabulary)} features")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
