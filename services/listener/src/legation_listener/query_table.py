"""Writes the query conformance table into the listener's README (or checks it is there).

    python -m legation_listener.query_table [--check]

The table comes from :mod:`legation_listener.domain.query_conformance`; the unit tests fail
when the README's copy differs, so edit the rows there and run this. Works from a source
checkout (the README sits beside ``src/``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from legation_listener.domain.query_conformance import with_table

README = Path(__file__).resolve().parents[2] / "README.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrites the table (or, with ``--check``, exits 1 when it is out of date)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    if not README.is_file():
        print(f"no README at {README}: run this from a source checkout", file=sys.stderr)
        return 2
    current = README.read_text(encoding="utf-8")
    wanted = with_table(current)
    if wanted == current:
        print(f"{README}: the query conformance table is up to date")
        return 0
    if args.check:
        print(f"{README}: the query conformance table is out of date", file=sys.stderr)
        return 1
    README.write_text(wanted, encoding="utf-8")
    print(f"{README}: query conformance table written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
