"""tools/generated.py, what every generator's ``--check`` and write rely on: a changed,
missing or left-over file is stale and named; writing fixes exactly those."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generated import check_requested, write_or_check


def owned(folder: Path) -> dict[Path, str]:
    return {folder / "a.yaml": "a: 1\n", folder / "b.yaml": "b: 2\n"}


def test_check_names_a_changed_a_missing_and_a_left_over_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = owned(tmp_path)
    (tmp_path / "a.yaml").write_text("a: 0\n")
    (tmp_path / "gone.yaml").write_text("old: true\n")
    (tmp_path / "notes.txt").write_text("not generated\n")  # not *.yaml: not ours

    assert write_or_check(files, "things", True, target="things", owned_dir=tmp_path) == 1

    err = capsys.readouterr().err
    assert err.startswith("stale things (")
    assert err.rstrip().endswith("): run make things")
    for name in ("a.yaml", "b.yaml", "gone.yaml"):
        assert name in err
    assert "notes.txt" not in err
    assert (tmp_path / "a.yaml").read_text() == "a: 0\n"
    assert not (tmp_path / "b.yaml").exists()
    assert (tmp_path / "gone.yaml").exists()


def test_writing_fixes_only_the_stale_files_and_then_the_check_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = owned(tmp_path)
    (tmp_path / "a.yaml").write_text("a: 1\n")  # already current
    os.utime(tmp_path / "a.yaml", (1_000_000, 1_000_000))
    (tmp_path / "gone.yaml").write_text("old: true\n")

    assert write_or_check(files, "things", False, target="things", owned_dir=tmp_path) == 0

    assert {p.name for p in tmp_path.iterdir()} == {"a.yaml", "b.yaml"}
    assert (tmp_path / "b.yaml").read_text() == "b: 2\n"
    assert (tmp_path / "a.yaml").stat().st_mtime == 1_000_000  # untouched
    out = capsys.readouterr().out
    assert "b.yaml" in out and "gone.yaml" in out and "a.yaml" not in out
    assert write_or_check(files, "things", True, target="things", owned_dir=tmp_path) == 0
    assert capsys.readouterr().out == "things up to date (2 files)\n"


def test_without_an_owned_folder_other_files_beside_them_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("x: 1\n")
    nested = {tmp_path / "deep" / "one.json": "{}\n"}
    assert write_or_check(nested, "one", True, target="one") == 1
    assert write_or_check(nested, "one", False, target="one") == 0  # makes its folder
    assert write_or_check(nested, "one", True, target="one") == 0
    assert (tmp_path / "other.yaml").exists()


def test_the_check_flag() -> None:
    assert check_requested(["--check"], "Generates x.\n\nMore.") is True
    assert check_requested([], None) is False
    with pytest.raises(SystemExit):
        check_requested(["--chek"], "Generates x.")
