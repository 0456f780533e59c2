"""Checks that the contract departments build on was not broken by accident.

Against the last released contract (``libs/legation-contracts/baseline/``):

- ``buf lint`` on ``protos/`` (``protos/buf.yaml`` says which rules and why);
- ``buf breaking`` on ``protos/`` against ``baseline/protos.binpb`` (rules ``WIRE_JSON``: a
  field removed or renumbered without being reserved, a type changed, an enum value
  removed...);
- the catalog against ``baseline/catalog.json``: a released topic may not disappear, and its
  key, partitions, message type and cleanup policy may not change, unless a later version of
  it (``<name>.v2`` for ``<name>.v1``) is in the catalog, which is how a breaking change ships
  (COMPATIBILITY.md).

``--release`` moves the baseline forward to what the repository holds now (``make
contracts-release``, at a release, after the check passed). Exit 1 names every break.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from legation_core.catalog import Catalog

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
CATALOG_DIR = ROOT / "topics"
BASELINE = ROOT / "libs" / "legation-contracts" / "baseline"
# What a subscriber depends on: changing any of these within a version breaks it.
FROZEN = ("message_type", "key", "partitions", "cleanup_policy")
_VERSIONED = re.compile(r"^(?P<base>.+)\.v(?P<version>\d+)$")


def key_fields(key: str) -> str:
    """The key's field names, without the explanation the catalog may give after them
    (``mention_id (derived from ...)`` → ``mention_id``): rewording it is no change."""
    return re.split(r"\s*[(,;]", key, maxsplit=1)[0].strip()


def catalog_snapshot(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """What the catalog promises, per topic (the baseline's form)."""
    return {
        spec.name: {
            field: key_fields(spec.key) if field == "key" else getattr(spec, field)
            for field in FROZEN
        }
        for spec in sorted(catalog, key=lambda s: s.name)
    }


def _has_later_version(name: str, current: Mapping[str, Any]) -> str | None:
    match = _VERSIONED.match(name)
    if match is None:
        return None
    base, version = match["base"], int(match["version"])
    for other in sorted(current):
        later = _VERSIONED.match(other)
        if later and later["base"] == base and int(later["version"]) > version:
            return other
    return None


def catalog_breaks(
    baseline: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Every break of ``current`` against ``baseline`` (empty when compatible)."""
    breaks = []
    for name, promised in sorted(baseline.items()):
        successor = _has_later_version(name, current)
        if name not in current:
            if successor is None:
                breaks.append(f"{name}: removed without a later version (add {name}'s .v2 first)")
            continue
        for field in FROZEN:
            was, now = promised.get(field), current[name].get(field)
            if was != now and successor is None:
                breaks.append(
                    f"{name}: {field} changed from {was!r} to {now!r}; a change of {field} "
                    f"is a new version of the topic ({_next_version(name)}) beside this one"
                )
    return breaks


def _next_version(name: str) -> str:
    match = _VERSIONED.match(name)
    return f"{match['base']}.v{int(match['version']) + 1}" if match else f"{name}.v2"


def buf() -> str:
    """The buf executable (the buf-bin package installs it beside python)."""
    beside = Path(sys.executable).parent / "buf"
    found = str(beside) if beside.is_file() else shutil.which("buf")
    if not found:
        raise SystemExit("buf not found: make install (buf-bin)")
    return found


def run_buf(*args: str, protos: Path = PROTOS) -> tuple[int, str]:
    result = subprocess.run([buf(), *args], cwd=protos, capture_output=True, text=True, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


def check(protos: Path, catalog_dir: Path, baseline: Path) -> list[str]:
    """Every problem found: lint, wire breaks, catalog breaks."""
    problems = []
    code, output = run_buf("lint", protos=protos)
    if code:
        problems.append(f"buf lint:\n{output}")
    image = baseline / "protos.binpb"
    code, output = run_buf("breaking", "--against", str(image.resolve()), protos=protos)
    if code:
        problems.append(f"buf breaking against {image.name}:\n{output}")
    promised = json.loads((baseline / "catalog.json").read_text(encoding="utf-8"))
    current = catalog_snapshot(Catalog.from_directory(catalog_dir))
    problems += [f"catalog: {line}" for line in catalog_breaks(promised, current)]
    return problems


def release(protos: Path, catalog_dir: Path, baseline: Path) -> None:
    """Makes the repository's contract the new baseline."""
    baseline.mkdir(parents=True, exist_ok=True)
    image = (baseline / "protos.binpb").resolve()
    code, output = run_buf("build", "--exclude-source-info", "-o", str(image), protos=protos)
    if code:
        raise SystemExit(f"buf build failed:\n{output}")
    snapshot = catalog_snapshot(Catalog.from_directory(catalog_dir))
    (baseline / "catalog.json").write_text(
        json.dumps(snapshot, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="store_true", help="move the baseline forward")
    args = parser.parse_args(argv)
    if args.release:
        problems = (
            check(PROTOS, CATALOG_DIR, BASELINE) if (BASELINE / "catalog.json").is_file() else []
        )
        lint = [p for p in problems if p.startswith("buf lint")]
        if lint:
            print("\n".join(lint), file=sys.stderr)
            return 1
        release(PROTOS, CATALOG_DIR, BASELINE)
        print(f"baseline moved forward: {BASELINE.relative_to(ROOT)}")
        return 0
    problems = check(PROTOS, CATALOG_DIR, BASELINE)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print("contract compatible with the baseline (buf lint, buf breaking, catalog)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
