"""The fuzz budget: how many cases each fuzz test runs, and where Hypothesis keeps what it
found (see tests/fuzz/conftest.py for how the budget is shared).

``LEGATION_FUZZ_CASES`` is the number of generated cases for the whole run, shared among
the collected tests marked ``fuzz`` by the weight each gives its marker
(``@pytest.mark.fuzz(weight=3)``); ``make test`` runs the small default, ``make fuzz``
100,000. ``LEGATION_FUZZ_SHRINK=1`` (``make fuzz``) goes on after a failure to find every
distinct failure class (PropertyFailed kinds) and shrinks each to a minimal case (up to
minutes per class; Hypothesis tells classes apart only while shrinking); without it a test
stops at its first failing case, reported as found.
``LEGATION_FUZZ_SEED`` replays one run exactly. The example database, which replays
earlier failures first, lives in ``build/fuzz/hypothesis/`` (one folder per test; build/ is
not committed); ``LEGATION_FUZZ_DB=off`` runs without it (a test whose stored failure
still fails reports only that one).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.strategies import SearchStrategy

ROOT = Path(__file__).resolve().parents[2]
DATABASE = ROOT / "build" / "fuzz" / "hypothesis"
# Hypothesis' own caches go under build/ too, not into a .hypothesis/ at the root.
set_hypothesis_home_dir(ROOT / "build" / "fuzz" / "hypothesis-home")
DEFAULT_CASES = 1_200
F = TypeVar("F", bound=Callable[..., None])

# Cases run and outcome of each fuzz test, by node id (for the session summary).
counts: dict[str, int] = {}
outcomes: dict[str, str] = {}


def budget() -> int:
    """Generated cases for the whole run (``LEGATION_FUZZ_CASES``)."""
    return int(os.environ.get("LEGATION_FUZZ_CASES", DEFAULT_CASES))


@dataclass
class Fuzz:
    """One fuzz test's share of the budget and the Hypothesis settings that run it."""

    nodeid: str
    cases: int
    counted: list[int] = field(default_factory=lambda: [0])

    @property
    def settings(self) -> settings:
        shrink = os.environ.get("LEGATION_FUZZ_SHRINK", "0") == "1"
        phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.nodeid)[-150:]
        return settings(
            max_examples=self.cases,
            deadline=None,  # each property checks its own time limit
            database=(
                None
                if os.environ.get("LEGATION_FUZZ_DB") == "off"
                else DirectoryBasedExampleDatabase(DATABASE / folder)
            ),
            phases=[*phases, Phase.shrink] if shrink else phases,
            suppress_health_check=list(HealthCheck),
            derandomize=False,
            print_blob=True,
            report_multiple_bugs=shrink,
        )

    def given(self, *strategies: SearchStrategy[Any]) -> Callable[[F], Callable[[], None]]:
        """Like Hypothesis' ``given`` under this test's settings; the decorated property
        runs when the returned function is called, and every case is counted."""

        def decorate(check: F) -> Callable[[], None]:
            @functools.wraps(check)
            def counted(*args: Any, **kwargs: Any) -> None:
                self.counted[0] += 1
                check(*args, **kwargs)

            run = settings(self.settings)(given(*strategies)(counted))
            fixed = os.environ.get("LEGATION_FUZZ_SEED")
            return seed(int(fixed))(run) if fixed else run

        return decorate
