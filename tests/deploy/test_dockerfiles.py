"""The one Dockerfile (services/Dockerfile, ``--build-arg SERVICE=<service>``) builds every
service's image, and each image gets every package of ours it depends on, however indirectly.

A local library left out of the Dockerfile installs fine in the repository's virtualenv and
breaks only in the image build; a service without its stage fails only when its image is
built. These tests read the Dockerfile and the pyproject files instead of waiting for that
build (no Docker engine runs in CI).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "services" / "Dockerfile").read_text()
LOCAL = {
    tomllib.loads(path.read_text())["project"]["name"]: path.parent.relative_to(ROOT).as_posix()
    for path in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
}
SERVICES = sorted(p.parent.name for p in ROOT.glob("services/*/pyproject.toml"))


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


def stages(dockerfile: str) -> dict[str, str]:
    """Each named stage's instructions (``FROM ... AS name`` up to the next ``FROM``)."""
    found: dict[str, str] = {}
    for block in re.split(r"^(?=FROM )", dockerfile, flags=re.MULTILINE):
        named = re.match(r"FROM \S+ AS (\S+)", block)
        if named:
            found[named.group(1)] = block
    return found


def built_as(service: str) -> str:
    """The Dockerfile as built with ``--build-arg SERVICE=<service>``."""
    return re.sub(r"\$\{SERVICE\}", service, DOCKERFILE)


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_copies_every_local_package_it_needs(service: str) -> None:
    build = stages(built_as(service))["build"]
    copied = set(re.findall(r"^COPY (\S+?)/? \S+", build, flags=re.MULTILINE))
    needed = {LOCAL[name] for name in local_dependencies(f"legation-{service}")}
    assert needed <= copied, f"services/Dockerfile does not copy {sorted(needed - copied)}"
    wheels = re.search(r"pip wheel[^\n]*\n(?:[^\n]*\\\n)*[^\n]*", build)
    assert wheels, "the build stage builds wheels of our packages"
    missing = {path for path in needed if path not in wheels.group()}
    assert not missing, f"services/Dockerfile builds no wheel of {sorted(missing)}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_of_each_service_runs_that_service(service: str) -> None:
    stage = stages(DOCKERFILE).get(service)
    assert stage, f"services/Dockerfile has no stage {service!r} for SERVICE={service}"
    assert stage.startswith("FROM runtime AS "), "each service's stage builds on the runtime"
    scripts = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())[
        "project"
    ]["scripts"]
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"\]', stage, flags=re.MULTILINE)
    assert entrypoint, f"the {service} stage has no ENTRYPOINT"
    assert entrypoint.group(1) == f"legation-{service}"
    assert entrypoint.group(1) in scripts, f"services/{service}/pyproject.toml has no such script"
    assert re.search(r"^USER 10001:10001$", stage, flags=re.MULTILINE), "runs as uid 10001"
    # The image is the stage SERVICE names: the last stage, the default target.
    assert DOCKERFILE.rstrip().splitlines()[-1] == "FROM ${SERVICE}"


def test_make_images_builds_every_service() -> None:
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^SERVICES := (.*)$", makefile, flags=re.MULTILINE)
    assert listed, "the Makefile lists the services make images builds"
    assert sorted(listed.group(1).split()) == SERVICES
    assert "-f services/Dockerfile --build-arg SERVICE=$$s" in makefile
