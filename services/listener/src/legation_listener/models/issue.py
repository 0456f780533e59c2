"""Per-issue relevance and stance models learnt from analysts' labels (no I/O).

An issue's labels are split deterministically and stratified by class: every third label
of each class (ordered by a digest of its mention id) is held back for validation, the rest
trains. The trained model is served **only when its macro-F1 on the held-back labels beats
always answering the training labels' most common class** (strictly); otherwise the issue's
label is ``unknown`` and :class:`TrainedModel` says why. The served model is the validated
one (trained without the held-back labels), as the shipped models are the measured ones.

- **Stance** learns from the labels *together with the shipped data*: its starting point
  and regulariser is the shipped pooled stance model (SemEval-2016, five targets, target
  words masked), i.e. multinomial logistic regression on the same features minimising the
  labels' class-balanced log-loss plus ``(1 / C) / 2 * ||W - W_pooled||^2``: with few labels
  it stays near what the shipped data taught, with many it follows the issue. The issue's
  terms are masked as for the pooled model.
- **Relevance** has no shipped data to start from (nothing here labels relevance): the same
  regression from zero weights, on n-grams of the labelled texts (document frequency at
  least 2), idf over those texts.

Training needs scipy (L-BFGS; it comes with the listener's dependencies); serving is the
numpy :class:`~legation_listener.models.linear.LinearTextModel` like every shipped model.
A model's version is a digest of its labels, its settings and its starting model, so the
same labels always give the same version (and the same weights).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from legation_listener.models.linear import LinearTextModel, features, mask_target, model_text

RELEVANCE = "relevance"
STANCE = "stance"
TASKS = (RELEVANCE, STANCE)
TASK_CLASSES = {
    RELEVANCE: ("irrelevant", "relevant"),
    STANCE: ("neutral", "against", "favour"),  # the pooled model's order
}
# Every VALIDATION_EVERY-th label of a class (by digest) is held back.
VALIDATION_EVERY = 3
MIN_TRAIN_LABELS = 10
MIN_VALIDATION_LABELS = 5
# Most recent labels an issue's model trains on (bounds a training's time and memory).
MAX_LABELS = 5000
C = 1.0
MIN_DF = 2
MAX_ITER = 200
FORMAT = 1

SERVED = "served"
REFUSED = "refused"
NOT_ENOUGH = "not_enough_labels"
TRAINING = "training"
FAILED = "failed"


@dataclass(frozen=True)
class Example:
    """One labelled text of an issue for one task."""

    mention_id: str
    text: str
    label: str
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainedModel:
    """The outcome of training one issue's model for one task."""

    issue_id: str
    task: str
    state: str
    reason: str
    model: LinearTextModel | None = None
    version: str = ""
    labels: int = 0
    train_labels: int = 0
    validation_labels: int = 0
    macro_f1: float = 0.0
    majority_macro_f1: float = 0.0
    majority_class: str = ""
    trained_at: datetime | None = None

    @property
    def served(self) -> bool:
        """True when the model beat the majority class on the held-back labels."""
        return self.state == SERVED and self.model is not None

    @property
    def name(self) -> str:
        """The model's name as labels carry it."""
        return model_name(self.task, self.issue_id)


def model_name(task: str, issue_id: str) -> str:
    """``legation-<task>@<issue_id>``: the name every label of an issue's model carries."""
    return f"legation-{task}@{issue_id}"


def macro_f1(gold: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> float:
    """Mean over ``classes`` of each class's F1 (a class neither predicted nor gold counts
    0, the same for every system compared)."""
    total = 0.0
    for label in classes:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        total += 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return total / len(classes) if classes else 0.0


def majority(labels: Sequence[str]) -> str:
    """The most common label (ties: the first in sorted order)."""
    counts = Counter(labels)
    return max(sorted(counts), key=counts.__getitem__)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(train, validation): within each class, ordered by a digest of the mention id, every
    :data:`VALIDATION_EVERY`-th example (the 2nd, 5th, ...) is held back; deterministic
    and stratified."""
    train: list[Example] = []
    validation: list[Example] = []
    for label in sorted({e.label for e in examples}):
        ordered = sorted(
            (e for e in examples if e.label == label), key=lambda e: _digest(e.mention_id)
        )
        for i, example in enumerate(ordered):
            (validation if i % VALIDATION_EVERY == 1 else train).append(example)
    return train, validation


def version_of(task: str, examples: Sequence[Example], base: LinearTextModel | None) -> str:
    """A digest of the examples (sorted), the settings and the starting model's version."""
    settings = {"task": task, "c": C, "min_df": MIN_DF, "max_iter": MAX_ITER,
                "every": VALIDATION_EVERY, "base": base.version if base else ""}  # fmt: skip
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for e in sorted(examples, key=lambda e: e.mention_id):
        digest.update(f"{e.mention_id}\t{e.label}\t{'|'.join(e.terms)}\t{e.text}\n".encode())
    return f"{FORMAT}.{digest.hexdigest()[:10]}"


def _prepared(task: str, example: Example) -> str:
    text = model_text(example.text)
    return mask_target(text, example.terms) if task == STANCE else text


def _rows(
    texts: Sequence[str], vocabulary: Mapping[str, int], idf: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(row, column, value) of the L2-normalised sublinear TF-IDF rows of ``texts``
    (already prepared), as :meth:`LinearTextModel.vector` computes them."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, text in enumerate(texts):
        counts = {f: n for f, n in Counter(features(text)).items() if f in vocabulary}
        if not counts:
            continue
        columns = [vocabulary[f] for f in counts]
        values = np.array([1.0 + math.log(n) for n in counts.values()]) * idf[columns]
        norm = float(np.linalg.norm(values)) or 1.0
        rows.extend([i] * len(columns))
        cols.extend(columns)
        vals.extend((values / norm).tolist())
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(vals)


def _vocabulary(texts: Sequence[str]) -> tuple[dict[str, int], npt.NDArray[np.float32]]:
    """Features in at least :data:`MIN_DF` texts (sorted), with smoothed idf."""
    df: Counter[str] = Counter()
    for text in texts:
        df.update(set(features(text)))
    terms = sorted(f for f, n in df.items() if n >= MIN_DF)
    n = len(texts)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in terms], dtype=np.float32)
    return {t: i for i, t in enumerate(terms)}, idf


def fit_logistic(
    rows: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
    n_rows: int,
    y: Sequence[int],
    coef0: npt.NDArray[np.float32],
    intercept0: npt.NDArray[np.float32],
    c: float = C,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Multinomial logistic regression from the starting weights ``coef0`` (classes x
    features) and ``intercept0``, minimising the class-balanced log-loss of the rows plus
    ``||W - coef0||^2 / (2 c)`` (the intercept is not regularised), with L-BFGS."""
    from scipy.optimize import minimize
    from scipy.sparse import csr_matrix

    k, n_features = coef0.shape
    matrix = csr_matrix((rows[2], (rows[0], rows[1])), shape=(n_rows, n_features))
    target = np.zeros((n_rows, k))
    target[np.arange(n_rows), np.array(y)] = 1.0
    counts = target.sum(axis=0)
    # Balanced: every class weighs as much as the others in total (absent classes: 0).
    class_weight = np.where(counts > 0, n_rows / (k * np.maximum(counts, 1)), 0.0)
    weight = target @ class_weight
    w0 = coef0.astype(np.float64).ravel()

    def loss(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        coef = theta[: k * n_features].reshape(k, n_features)
        intercept = theta[k * n_features :]
        scores = np.asarray(matrix @ coef.T) + intercept
        scores -= scores.max(axis=1, keepdims=True)
        log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        delta = theta[: k * n_features] - w0
        value = -float((weight * (target * log_probs).sum(axis=1)).sum())
        value += float(delta @ delta) / (2 * c)
        residual = (np.exp(log_probs) - target) * weight[:, None]
        grad_coef = np.asarray(matrix.T @ residual).T + delta.reshape(k, n_features) / c
        return value, np.concatenate([grad_coef.ravel(), residual.sum(axis=0)])

    start = np.concatenate([w0, intercept0.astype(np.float64)])
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER})
    theta = result.x
    coef = theta[: k * n_features].reshape(k, n_features).astype(np.float32)
    return coef, theta[k * n_features :].astype(np.float32)


def fit_model(
    task: str, issue_id: str, examples: Sequence[Example], base: LinearTextModel | None
) -> LinearTextModel:
    """The model of ``task`` trained on ``examples`` (stance: from ``base``, the pooled
    model; relevance: from zero on the examples' own n-grams)."""
    classes = TASK_CLASSES[task]
    texts = [_prepared(task, e) for e in examples]
    y = [classes.index(e.label) for e in examples]
    if task == STANCE and base is not None:
        vocabulary, idf = base.vocabulary, base.idf
        coef0, intercept0 = base.coef[:, : len(vocabulary)], base.intercept
        if base.labels != classes:
            raise ValueError(f"the starting model's classes {base.labels} are not {classes}")
    else:
        vocabulary, idf = _vocabulary(texts)
        coef0 = np.zeros((len(classes), len(vocabulary)), dtype=np.float32)
        intercept0 = np.zeros(len(classes), dtype=np.float32)
    coef, intercept = fit_logistic(_rows(texts, vocabulary, idf), len(texts), y, coef0, intercept0)
    return LinearTextModel(
        name=model_name(task, issue_id),
        version=version_of(task, examples, base),
        labels=classes,
        vocabulary=dict(vocabulary),
        idf=idf,
        coef=coef,
        intercept=intercept,
    )


def predict(model: LinearTextModel, example: Example) -> str:
    """The model's most probable class for ``example`` (its terms masked)."""
    probabilities = model.probabilities(example.text, example.terms)
    return max(probabilities, key=probabilities.__getitem__)


def train_issue_model(
    task: str,
    issue_id: str,
    examples: Sequence[Example],
    base: LinearTextModel | None,
    now: datetime,
    save: Callable[[LinearTextModel], LinearTextModel] | None = None,
) -> TrainedModel:
    """Splits ``examples`` (at most :data:`MAX_LABELS`, the last ones), trains on the
    training part, validates on the held-back part and decides whether it is served.
    ``save`` (optional) turns the model into the artefact actually served (written and read
    back: float16 weights), so the validated model is the served one."""
    examples = list(examples)[-MAX_LABELS:]
    train, validation = split(examples)
    counts = {"labels": len(examples), "train_labels": len(train),
              "validation_labels": len(validation)}  # fmt: skip
    base_state = {"issue_id": issue_id, "task": task, "trained_at": now, **counts}
    if len(train) < MIN_TRAIN_LABELS or len(validation) < MIN_VALIDATION_LABELS:
        return TrainedModel(
            state=NOT_ENOUGH,
            reason=(
                f"{len(examples)} labels: at least {MIN_TRAIN_LABELS} to train and "
                f"{MIN_VALIDATION_LABELS} held back are needed (one in {VALIDATION_EVERY} "
                "of each class is held back)"
            ),
            **base_state,  # type: ignore[arg-type]
        )
    if len({e.label for e in train}) < 2:
        return TrainedModel(
            state=NOT_ENOUGH,
            reason=f"every training label is {train[0].label!r}: at least two classes needed",
            **base_state,  # type: ignore[arg-type]
        )
    model = fit_model(task, issue_id, train, base)
    if save is not None:
        model = save(model)
    gold = [e.label for e in validation]
    predicted = [predict(model, e) for e in validation]
    common = majority([e.label for e in train])
    classes = TASK_CLASSES[task]
    f1 = macro_f1(gold, predicted, classes)
    base_f1 = macro_f1(gold, [common] * len(gold), classes)
    served = f1 > base_f1
    verdict = "beats" if served else "does not beat"
    reason = (
        f"macro-F1 {f1:.3f} on {len(validation)} held-back labels {verdict} "
        f"{base_f1:.3f} for always {common!r}"
    )
    return TrainedModel(
        state=SERVED if served else REFUSED,
        reason=reason,
        model=model,
        version=model.version,
        macro_f1=f1,
        majority_macro_f1=base_f1,
        majority_class=common,
        **base_state,  # type: ignore[arg-type]
    )


@dataclass
class IssueModels:
    """The outcome of every issue's latest training, per task; what enrichment asks. Safe
    to share between threads."""

    _models: dict[tuple[str, str], TrainedModel] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, trained: TrainedModel) -> None:
        """Replaces the issue's model of that task."""
        with self._lock:
            self._models[(trained.issue_id, trained.task)] = trained

    def put_if_absent(self, trained: TrainedModel) -> None:
        """Takes ``trained`` only when the issue has no outcome for that task yet."""
        with self._lock:
            self._models.setdefault((trained.issue_id, trained.task), trained)

    def drop(self, issue_id: str, task: str) -> None:
        """Forgets the issue's outcome for ``task``."""
        with self._lock:
            self._models.pop((issue_id, task), None)

    def get(self, issue_id: str, task: str) -> TrainedModel | None:
        """The issue's latest outcome for ``task``; None when it never had labels."""
        with self._lock:
            return self._models.get((issue_id, task))

    def all(self, issue_id: str = "") -> list[TrainedModel]:
        """Every outcome (of one issue when given), by issue and task."""
        with self._lock:
            found = [m for (i, _), m in self._models.items() if not issue_id or i == issue_id]
        return sorted(found, key=lambda m: (m.issue_id, m.task))

    def forget(self, issue_id: str) -> None:
        """Drops an issue's models."""
        with self._lock:
            for key in [k for k in self._models if k[0] == issue_id]:
                del self._models[key]


_shared = IssueModels()


def shared_issue_models() -> IssueModels:
    """The process's per-issue models (enrichment reads them when given none)."""
    return _shared
