"""A TF-IDF + logistic-regression text classifier that runs on numpy alone.

Features are character n-grams within words (2 to 5 characters, each word padded with a
space, as scikit-learn's ``char_wb``) and word unigrams and bigrams (hashtags and mentions
kept whole, punctuation and emoji as their own tokens), prefixed ``c:`` and ``w:`` so the
two kinds never collide. The same :func:`features` function is given to scikit-learn's
``TfidfVectorizer`` at training time, and the training command checks that this module's
probabilities match scikit-learn's on the validation split, so training and serving cannot
drift apart.
"""

from __future__ import annotations

import io
import itertools
import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

CHAR_NGRAMS = (2, 5)
_URL = re.compile(r"https?://\S+|\bwww\.\S+|\bhttp\b", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@[\w.]+(?:@[\w.-]+)?")
_REPEAT = re.compile(r"(.)\1{2,}")
_SPACE = re.compile(r"\s+")
TARGET = "tgt"
_TOKEN = re.compile(r"[#@]?\w+|[^\w\s]")
# The training data escapes some characters as literal "\u2019" sequences.
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")


def model_text(text: str) -> str:
    """The text as the models read it: NFKC (folds Arabic presentation forms, full-width
    letters), escaped characters decoded, links as ``http``, accounts as ``@user`` (as in
    the training tweets), runs of three or more equal characters cut to two, lower case."""
    text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub(" http ", text)
    text = _HANDLE.sub(" @user ", text)
    text = _REPEAT.sub(r"\1\1", text)
    return _SPACE.sub(" ", text).strip().lower()


def mask_target(text: str, terms: Sequence[str]) -> str:
    """``text`` (normalised) with each of ``terms`` (whole words, an optional leading "#")
    replaced by :data:`TARGET`, longest term first. A stance model trained this way learns
    how people speak *about a target*, not about the five targets of its training data."""
    for term in sorted({model_text(t) for t in terms if t.strip()}, key=len, reverse=True):
        pattern = r"#?(?<!\w)" + re.escape(term) + r"(?!\w)"
        text = re.sub(pattern, f" {TARGET} ", text)
    return _SPACE.sub(" ", text).strip() if terms else text


def features(text: str) -> list[str]:
    """The n-gram features of an already :func:`model_text`-normalised text."""
    out: list[str] = []
    low, high = CHAR_NGRAMS
    for word in text.split():
        padded = f" {word} "
        for n in range(low, high + 1):
            if n > len(padded):
                break
            out.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    tokens = _TOKEN.findall(text)
    out.extend("w:" + token for token in tokens)
    out.extend(f"w:{a} {b}" for a, b in itertools.pairwise(tokens))
    return out


@lru_cache(maxsize=4)
def feature_counts(normalised: str) -> Counter[str]:
    """How often each feature of ``normalised`` occurs (read-only: it is shared). The last
    few texts are kept because one mention's models read the same text one after the other
    (the romanised-Hindi detector, sentiment), not to remember texts across mentions."""
    return Counter(features(normalised))


def _pick(mapping: Mapping[str, int], keys: Sequence[str]) -> tuple[int, ...]:
    """``mapping``'s values of ``keys`` (at least one), in their order."""
    picked = operator.itemgetter(*keys)(mapping)
    return picked if len(keys) > 1 else (picked,)


# Dense features a model may add after its n-grams, by name. "vader": VADER's negative,
# neutral and positive proportions, its compound score, and its customary positive
# (>= 0.05) and negative (<= -0.05) readings: the English lexicon knows negation, intensifiers
# and emoji, which 1,838 training tweets cannot teach (+10 macro-F1 points on validation).
EXTRA_FEATURES = {"vader": 6}


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def extra_features(kind: str, text: str) -> npt.NDArray[np.float32]:
    """The dense features ``kind`` (see :data:`EXTRA_FEATURES`) of the raw ``text``."""
    if kind != "vader":
        raise ValueError(f"unknown extra features {kind!r}")
    scores = _vader().polarity_scores(text)
    compound = float(scores["compound"])
    return np.array(
        [scores["neg"], scores["neu"], scores["pos"], compound, compound >= 0.05,
         compound <= -0.05],
        dtype=np.float32,
    )  # fmt: skip


@dataclass(frozen=True)
class LinearTextModel:
    """A trained classifier: ``vocabulary`` maps a feature to its column, ``idf`` weighs the
    columns, ``coef`` (classes x columns) and ``intercept`` score the classes ``labels``."""

    name: str
    version: str
    labels: tuple[str, ...]
    vocabulary: dict[str, int]
    idf: npt.NDArray[np.float32]
    coef: npt.NDArray[np.float32]
    intercept: npt.NDArray[np.float32]
    # Name of the dense features after the n-gram columns ("" for none).
    extra: str = ""

    def vector(
        self, text: str, target: Sequence[str] = ()
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The sparse TF-IDF vector of ``text`` (columns, values): sublinear term
        frequency times idf, L2-normalised, as ``TfidfVectorizer(sublinear_tf=True)``.
        ``target``: terms replaced by :data:`TARGET` first (see :func:`mask_target`)."""
        counts = feature_counts(mask_target(model_text(text), target))
        # The known features and their columns and counts are found in C (a set
        # intersection, itemgetter), not one Python-level lookup at a time; columns in
        # ascending order, so the sums are the same in every process whatever its hash seed.
        known = list(counts.keys() & self.vocabulary.keys())
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        columns = np.array(_pick(self.vocabulary, known), dtype=np.int64)
        occurrences = np.array(_pick(counts, known), dtype=np.float64)
        order = np.argsort(columns)
        columns = columns[order]
        tf = (1.0 + np.log(occurrences[order])).astype(np.float32)
        values = tf * self.idf[columns]
        norm = float(np.linalg.norm(values))
        return columns, values / norm if norm else values

    def probabilities(self, text: str, target: Sequence[str] = ()) -> dict[str, float]:
        """The probability of each label for ``text`` (softmax of the linear scores; with no
        known feature at all, only the intercepts speak)."""
        columns, values = self.vector(text, target)
        scores = self.coef[:, columns] @ values + self.intercept
        if self.extra:
            scores = scores + self.coef[:, len(self.vocabulary) :] @ extra_features(
                self.extra, text
            )
        scores = scores - scores.max()
        exp = np.exp(scores)
        probs = exp / exp.sum()
        return {label: float(p) for label, p in zip(self.labels, probs, strict=True)}

    def save(self, path: Path) -> None:
        """Writes the artefact (compressed npz, arrays only: loading runs no code)."""
        path.write_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        """The artefact's bytes (see :meth:`save`)."""
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            name=np.array(self.name),
            version=np.array(self.version),
            labels=np.array(self.labels),
            terms=np.array("\x00".join(terms)),
            idf=self.idf.astype(np.float32),
            coef=self.coef.astype(np.float16),
            intercept=self.intercept.astype(np.float32),
            extra=np.array(self.extra),
        )
        return buffer.getvalue()

    @classmethod
    def load(cls, data: bytes) -> LinearTextModel:
        """Reads an artefact written by :meth:`save`."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            terms = str(npz["terms"]).split("\x00")
            return cls(
                name=str(npz["name"]),
                version=str(npz["version"]),
                labels=tuple(str(label) for label in npz["labels"]),
                vocabulary={term: i for i, term in enumerate(terms)},
                idf=npz["idf"].astype(np.float32),
                coef=npz["coef"].astype(np.float32),
                intercept=npz["intercept"].astype(np.float32),
                extra=str(npz["extra"]) if "extra" in npz.files else "",
            )


ARTEFACTS = "legation_listener.models"


def artefact_path(filename: str) -> Path:
    """Where a shipped artefact lives in the source tree (written by training)."""
    return Path(__file__).parent / "data" / filename


def load_shipped(filename: str) -> LinearTextModel | None:
    """A model shipped inside the package, or None when that artefact is absent."""
    resource = resources.files(ARTEFACTS).joinpath("data", filename)
    if not resource.is_file():
        return None
    return LinearTextModel.load(resource.read_bytes())
