"""The local stack's data folder: what ``make run`` keeps between runs, and how to reset it.

One folder (``.legation/data`` by default) holds everything a run leaves behind:

- ``kafka-data/``: the broker stand-in's log, the source of truth; the services rebuild
  their own state from its compacted topics and the evaluator its index (the index
  stand-in keeps nothing across a restart);
- ``demo.json``: the moment the demo campaign was first set up (its period and its
  generated week are computed from it, so a second run produces the very same events);
- ``site/feed.atom``: the publisher's site feed; ``users.yaml`` / ``tokens.yaml``: the demo
  users (new tokens each run); ``logs/``: every process's log, appended run after run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

DEFAULT_DATA_DIR = Path(".legation") / "data"
DEMO_FILE = "demo.json"


@dataclass(frozen=True)
class DemoRecord:
    """When the demo was first set up on this data, and whether its week was replayed."""

    anchor: datetime
    replayed: bool = False


def demo_record(data_dir: Path, now: datetime) -> DemoRecord:
    """The demo record in ``data_dir``; records ``now`` as the anchor when there is none yet
    (a new data folder)."""
    path = data_dir / DEMO_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        return DemoRecord(datetime.fromisoformat(saved["anchor"]), bool(saved.get("replayed")))
    record = DemoRecord(now)
    _write(data_dir, record)
    return record


def mark_replayed(data_dir: Path, record: DemoRecord) -> None:
    """Records that the demo's week has been replayed in full."""
    _write(data_dir, DemoRecord(record.anchor, replayed=True))


def _write(data_dir: Path, record: DemoRecord) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    payload = {"anchor": record.anchor.isoformat(), "replayed": record.replayed}
    (data_dir / DEMO_FILE).write_text(json.dumps(payload))


def reset_data(data_dir: Path) -> bool:
    """Deletes the data folder (the next run starts empty); False when there was none."""
    if not data_dir.exists():
        return False
    shutil.rmtree(data_dir)
    return True
