"""`make stop` signals only the processes the stack started, recognised by id and start time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from legation_devstack.__main__ import stop
from legation_devstack.processes import start_time


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_stop_signals_a_recorded_process_that_is_still_the_same(tmp_path: Path) -> None:
    child = _sleeper()
    try:
        pid_file = tmp_path / "stack.json"
        record = {"pid": child.pid, "started": start_time(child.pid)}
        pid_file.write_text(json.dumps({"supervisor": {"pid": 0, "started": "0"}, "x": record}))
        assert stop(pid_file) == 0
        assert child.wait(timeout=10) == -15  # SIGTERM
        assert not pid_file.exists()
    finally:
        child.kill()
        child.wait()


def test_stop_leaves_alone_a_process_that_reused_a_recorded_id(tmp_path: Path) -> None:
    child = _sleeper()
    try:
        pid_file = tmp_path / "stack.json"
        stale = {"pid": child.pid, "started": "1"}  # same id, another start time
        pid_file.write_text(json.dumps({"supervisor": stale, "kafka": stale}))
        assert stop(pid_file) == 0
        assert child.poll() is None  # still running: not ours to stop
    finally:
        child.kill()
        child.wait()


def test_start_time_of_a_missing_process_is_none() -> None:
    child = _sleeper()
    child.kill()
    child.wait()
    assert start_time(child.pid) is None
