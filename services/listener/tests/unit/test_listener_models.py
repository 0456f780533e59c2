"""The listener's model artefacts, their training and their benchmark, on small fixtures:
none of these tests needs the datasets directory."""

from __future__ import annotations

from pathlib import Path

import listener_models_bench as bench
import listener_train as train
import numpy as np
import pytest

from legation_listener.models import datasets
from legation_listener.models.linear import (
    LinearTextModel,
    features,
    load_shipped,
    mask_target,
    model_text,
)

POSITIVE = [
    "I love this, wonderful news",
    "great result, so happy",
    "what a lovely day :)",
    "brilliant work, love it",
    "happy and proud today",
    "so good, great job",
]
NEGATIVE = [
    "I hate this, awful news",
    "terrible result, so sad",
    "what a horrible day :(",
    "awful work, hate it",
    "sad and angry today",
    "so bad, terrible job",
]
NEUTRAL = [
    "the meeting is on monday",
    "the report has ten pages",
    "talks resume in june",
    "the office opens at nine",
    "the vote is next week",
    "the train leaves at six",
]


def write_split(folder: Path, split: str, texts: list[str], labels: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}_text.txt").write_text("\n".join(texts) + "\n")
    (folder / f"{split}_labels.txt").write_text("\n".join(map(str, labels)) + "\n")


@pytest.fixture
def tiny_datasets(tmp_path: Path) -> Path:
    """The datasets' layout with a few made-up tweets per language and stance target."""
    root = tmp_path / "datasets"
    texts = NEGATIVE + NEUTRAL + POSITIVE
    labels = [0] * 6 + [1] * 6 + [2] * 6
    for name in datasets.SENTIMENT_LANGUAGES:
        for split in ("train", "val"):
            write_split(root / "umsab-sentiment" / name, split, texts, labels)
    for target in datasets.STANCE_TARGETS:
        term = datasets.STANCE_TARGET_TERMS[target][0]
        stance_texts = [f"{t} about {term} #SemST" for t in texts]
        for split in ("train", "val"):
            write_split(root / "semeval2016-stance" / target, split, stance_texts, labels)
    return root


def test_every_shipped_model_loads_and_names_itself() -> None:
    for filename in [*(f"sentiment-{c}.npz" for c in ("ar", "de", "en", "es", "fr", "it", "pt")),
                     "stance-en.npz"]:  # fmt: skip
        model = load_shipped(filename)
        assert model is not None, filename
        assert model.name.startswith("legation-") and model.version.startswith("1.")
        probabilities = model.probabilities("Some text to read, with #tags and @user")
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert load_shipped("sentiment-ru.npz") is None


def test_model_text_and_features() -> None:
    assert (
        model_text("RT @Alice: SOOOO goood https://x.org/a \\u2019")
        == "rt @user : soo good http \u2019"
    )
    assert mask_target("i oppose the #plasticstreaty and plastics treaty", ["plastics treaty",
                       "plasticstreaty"]) == "i oppose the tgt and tgt"  # fmt: skip
    grams = features("hi you")
    assert {"c: h", "c:hi ", "c: you ", "w:hi", "w:you", "w:hi you"} <= set(grams)


def test_training_is_deterministic_and_the_served_model_is_the_trained_one(
    tiny_datasets: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert train.main(["--datasets", str(tiny_datasets), "--out", str(first)]) == 0
    assert train.main(["--datasets", str(tiny_datasets), "--out", str(second)]) == 0
    names = sorted(p.name for p in first.iterdir())
    languages = datasets.SENTIMENT_LANGUAGES.values()
    expected = [
        *(train.sentiment_filename(c) for c in languages),
        train.STANCE_FILENAME,
        train.ROMANISED_HINDI_FILENAME,
    ]
    assert names == sorted(expected)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    model = LinearTextModel.load((first / "sentiment-fr.npz").read_bytes())
    probabilities = model.probabilities("I love this, wonderful news")
    assert max(probabilities, key=probabilities.__getitem__) == "positive"
    # The collection hashtag of SemEval is not a feature the stance model can lean on.
    stance = LinearTextModel.load((first / train.STANCE_FILENAME).read_bytes())
    assert not any("semst" in term for term in stance.vocabulary)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = LinearTextModel(
        name="m", version="1.x", labels=("a", "b"), vocabulary={"w:x": 0, "w:y": 1},
        idf=np.array([1.0, 2.0], dtype=np.float32),
        coef=np.array([[1.0, -1.0], [-1.0, 1.0]], dtype=np.float32),
        intercept=np.array([0.0, 0.1], dtype=np.float32),
    )  # fmt: skip
    model.save(tmp_path / "m.npz")
    loaded = LinearTextModel.load((tmp_path / "m.npz").read_bytes())
    assert (loaded.name, loaded.version, loaded.labels, loaded.extra) == (
        "m",
        "1.x",
        ("a", "b"),
        "",
    )
    assert loaded.probabilities("x") == pytest.approx(model.probabilities("x"), abs=1e-3)
    assert loaded.probabilities("x")["a"] > 0.5 > loaded.probabilities("y")["a"]


def test_training_without_the_datasets_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="datasets not found at"):
        train.main(["--datasets", str(tmp_path / "missing"), "--out", str(tmp_path)])


def test_the_benchmark_says_when_the_datasets_are_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--datasets", str(tmp_path / "missing"), "--items", "20", "--no-kafka"]) == 0
    out = capsys.readouterr().out
    assert "DATASETS ABSENT" in out
    assert "enrich_mention (every field)" in out


def test_the_benchmark_measures_quality_on_the_datasets_layout(
    tiny_datasets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--datasets", str(tiny_datasets), "--items", "20", "--no-kafka", "--no-leave-one-out"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    for heading in ("language identification", "sentiment, UMSAB", "stance, SemEval-2016"):
        assert heading in out


def test_macro_f1() -> None:
    assert bench.macro_f1(["a", "b"], ["a", "b"], ["a", "b"]) == 1.0
    assert bench.macro_f1(["a", "a", "b"], ["a", "a", "a"], ["a", "b"]) == pytest.approx(0.4)
