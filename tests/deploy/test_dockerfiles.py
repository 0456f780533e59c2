"""Each service image copies every package of ours it depends on, however indirectly.

A local library left out of a Dockerfile installs fine in the repository's virtualenv and
breaks only in the image build; this test reads the pyproject files instead of waiting for
that build (no Docker engine runs in CI).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = {
    tomllib.loads(path.read_text())["project"]["name"]: path.parent.relative_to(ROOT).as_posix()
    for path in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
}


def local_dependencies(package: str) -> set[str]:
    """``package`` and every package of ours it needs, transitively."""
    seen: set[str] = set()
    pending = [package]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        project = tomllib.loads((ROOT / LOCAL[name] / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            dependency = re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0]
            if dependency in LOCAL:
                pending.append(dependency)
    return seen


@pytest.mark.parametrize(
    "service", sorted(p.parent.name for p in ROOT.glob("services/*/Dockerfile"))
)
def test_the_image_copies_every_local_package_it_needs(service: str) -> None:
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+?)/? \S+", dockerfile, flags=re.MULTILINE))
    needed = {LOCAL[name] for name in local_dependencies(f"legation-{service}")}
    assert needed <= copied, f"{service}/Dockerfile does not copy {sorted(needed - copied)}"
    wheels = re.search(r"pip wheel[^\n]*\n(?:[^\n]*\\\n)*[^\n]*", dockerfile)
    assert wheels, "the build stage builds wheels of our packages"
    missing = {path for path in needed if path not in wheels.group()}
    assert not missing, f"{service}/Dockerfile builds no wheel of {sorted(missing)}"
