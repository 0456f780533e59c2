"""Renders every overlay in deploy/overlays once per test session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(
    p.parent.name for p in (ROOT / "deploy" / "overlays").glob("*/kustomization.yaml")
)


def render(directory: Path) -> list[dict[str, Any]]:
    if shutil.which("kustomize"):
        command = ["kustomize", "build", str(directory)]
    elif shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(directory)]
    else:
        pytest.fail("the deploy tests need kustomize or kubectl on PATH")
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(ROOT / "deploy" / "overlays" / name) for name in OVERLAYS}
