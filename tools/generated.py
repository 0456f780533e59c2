"""What the generators under tools/ share: write the files they generate, or check them.

A generator renders every file it owns (path → text) and hands them to
:func:`write_or_check` with ``--check`` from :func:`check_requested`: with ``--check`` it
writes nothing, names the stale files and exits 1 (``make check`` and the tests run it so);
without, it writes only the files that changed, so an unchanged tree keeps its times.

The generators run as scripts (``python tools/gen_….py``, which puts tools/ first on the
path), and the tests import them by module name (tools/ is on pytest's ``pythonpath``);
either way this module is ``generated``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check_requested(argv: Sequence[str] | None, doc: str | None) -> bool:
    """Whether the command line asks for ``--check``; ``doc`` (the generator's docstring)
    gives ``--help`` its first line."""
    parser = argparse.ArgumentParser(description=(doc or "").partition("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the files are stale")
    return bool(parser.parse_args(argv).check)


def write_or_check(
    files: Mapping[Path, str],
    what: str,
    check: bool,
    *,
    target: str,
    owned_dir: Path | None = None,
) -> int:
    """Writes ``files`` (path → text) where they differ, or with ``check`` only reports
    them; the exit status. ``what`` names the files in messages, ``target`` is the make
    target that regenerates them. ``owned_dir``: a folder the generator owns whole, whose
    ``*.yaml`` files that ``files`` does not name are stale too (and removed when writing;
    a file dropped from the source must not stay deployed)."""
    stale = [path for path, text in files.items() if _read(path) != text]
    if owned_dir is not None and owned_dir.is_dir():
        stale += [path for path in owned_dir.glob("*.yaml") if path not in files]
    names = ", ".join(sorted(_shown(path) for path in stale))
    if check:
        if stale:
            print(f"stale {what} ({names}): run make {target}", file=sys.stderr)
            return 1
        print(f"{what} up to date ({len(files)} files)")
        return 0
    for path in stale:
        if path in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path], encoding="utf-8")
        else:
            path.unlink()
    print(f"{what}: rewrote {names}" if stale else f"{what} up to date ({len(files)} files)")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _shown(path: Path) -> str:
    # Relative to the repository, as make prints it; an absolute path for anything outside.
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
