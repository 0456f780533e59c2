"""Generate the JSON Schemas of the configuration files a service reads (the users file, the
engager's rules file, a channels file) from the pydantic models that validate them, into
deploy/schemas/config/ (``make config-schemas``); never edited by hand. ``--check`` writes
nothing and exits 1 when they are stale (``make check``).

An editor with the YAML language server checks and completes a file whose first line is
``# yaml-language-server: $schema=<path or URL of the schema>``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from generated import ROOT, check_requested, write_or_check
from legation_channels.registry import channels_file_model
from legation_core.auth import USERS_FILE_MODEL
from legation_core.config import ConfigModel
from legation_engager.domain.rules import RULES_FILE_MODEL

OUT_DIR = ROOT / "deploy" / "schemas" / "config"
MODELS: dict[str, type[ConfigModel]] = {
    "users.schema.json": USERS_FILE_MODEL,
    "engager-rules.schema.json": RULES_FILE_MODEL,
    "channels.schema.json": channels_file_model(),
}


class _Schema(GenerateJsonSchema):
    """Draft 2020-12, with definitions named as in the document (no private underscores)."""

    def normalize_name(self, name: str) -> str:
        return super().normalize_name(name).lstrip("_")

    def generate(self, schema: Any, mode: Any = "validation") -> Any:
        generated = super().generate(schema, mode=mode)
        return {"$schema": self.schema_dialect, **generated}


def render() -> dict[Path, str]:
    """Output path → content."""
    return {
        OUT_DIR / name: json.dumps(
            model.model_json_schema(schema_generator=_Schema), indent=2, ensure_ascii=False
        )
        + "\n"
        for name, model in MODELS.items()
    }


def main(argv: list[str] | None = None) -> int:
    check = check_requested(argv, __doc__)
    return write_or_check(render(), "configuration schemas", check, target="config-schemas")


if __name__ == "__main__":
    sys.exit(main())
