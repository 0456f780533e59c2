"""The labelled datasets the listener's models learn from (see the datasets README).

The directory comes from ``--datasets``, else ``LEGATION_DATASETS``, else
``../shared/datasets`` beside the repository. Each split is a text file with one tweet per
line and a parallel label file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# UMSAB folder → language subtag. UMSAB's Hindi tweets are romanised Hindi-English mixes:
# the listener tells them apart itself (a romanised-Hindi detector trained on them against
# the six Latin-script languages, "hi-Latn") and reads their sentiment with a model trained
# on them; Devanagari Hindi is another script its features do not know (see the README).
SENTIMENT_LANGUAGES = {
    "arabic": "ar",
    "english": "en",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}
# The languages of UMSAB written in Latin script (the romanised-Hindi detector's "other").
LATIN_SCRIPT_LANGUAGES = ("en", "fr", "de", "it", "pt", "es")
SENTIMENT_LABELS = ("negative", "neutral", "positive")
STANCE_TARGETS = ("abortion", "atheism", "climate", "feminist", "hillary")
STANCE_LABELS = ("neutral", "against", "favour")  # file labels 0 none, 1 against, 2 favour
# How each stance target is named in its tweets: masked at training time, as the matched
# terms of a tracked issue are at run time.
STANCE_TARGET_TERMS = {
    "abortion": ("legalization of abortion", "abortion", "abortions", "pro-life", "prolife",
                 "pro-choice", "prochoice"),
    "atheism": ("atheism", "atheist", "atheists"),
    "climate": ("climate change is a real concern", "climate change", "climate",
                "global warming"),
    "feminist": ("feminist movement", "feminism", "feminist", "feminists"),
    "hillary": ("hillary clinton", "hillary", "clinton", "hrc"),
}  # fmt: skip
# Every SemEval-2016 tweet carries this tag (the collection query), not the author.
SEMEVAL_QUERY_TAG = "#semst"


@dataclass(frozen=True)
class Split:
    """Texts and their label indices (into the task's labels)."""

    texts: list[str]
    labels: list[int]


def default_datasets_dir() -> Path:
    """``LEGATION_DATASETS``, else ``../shared/datasets`` beside the repository root (for a
    git worktree, beside its main checkout when not beside the worktree itself)."""
    env = os.environ.get("LEGATION_DATASETS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Makefile").is_file() and (parent / "services").is_dir():
            beside = parent.parent / "shared" / "datasets"
            main = _main_checkout(parent)
            if not beside.is_dir() and main is not None:
                return main.parent / "shared" / "datasets"
            return beside
    return Path.cwd().parent / "shared" / "datasets"


def _main_checkout(root: Path) -> Path | None:
    # In a worktree ".git" is a file: "gitdir: <main>/.git/worktrees/<name>".
    marker = root / ".git"
    if not marker.is_file():
        return None
    text = marker.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.removeprefix("gitdir:").strip())
    if gitdir.parent.name != "worktrees":
        return None
    return gitdir.parent.parent.parent


def read_split(folder: Path, split: str) -> Split:
    """``<split>_text.txt`` and ``<split>_labels.txt`` of ``folder``; the two must align."""
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
    labels = [int(v) for v in (folder / f"{split}_labels.txt").read_text().split()]
    if len(texts) != len(labels):
        raise ValueError(f"{folder}/{split}: {len(texts)} texts but {len(labels)} labels")
    return Split(texts, labels)


def sentiment_split(root: Path, language: str, split: str) -> Split:
    """The UMSAB split of ``language`` (a subtag of :data:`SENTIMENT_LANGUAGES`)."""
    folder = {code: name for name, code in SENTIMENT_LANGUAGES.items()}[language]
    return read_split(root / "umsab-sentiment" / folder, split)


def stance_split(root: Path, target: str, split: str) -> Split:
    """The SemEval-2016 split of ``target``, without the collection hashtag."""
    raw = read_split(root / "semeval2016-stance" / target, split)
    texts = [_drop_query_tag(t) for t in raw.texts]
    return Split(texts, raw.labels)


def _drop_query_tag(text: str) -> str:
    lowered = text.lower()
    at = lowered.find(SEMEVAL_QUERY_TAG)
    while at >= 0:
        text = text[:at] + text[at + len(SEMEVAL_QUERY_TAG) :]
        lowered = text.lower()
        at = lowered.find(SEMEVAL_QUERY_TAG)
    return text


def require(root: Path) -> Path:
    """``root`` when it holds the datasets, else a SystemExit that says where it looked."""
    if not (root / "umsab-sentiment").is_dir() or not (root / "semeval2016-stance").is_dir():
        raise SystemExit(
            f"datasets not found at {root} (expected umsab-sentiment/ and "
            "semeval2016-stance/); pass --datasets PATH or set LEGATION_DATASETS"
        )
    return root
