"""Starting service processes in tests: ports nobody else is handed, waits that fail at once
when the process exits and name what went wrong."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from legation_devstack.processes import (
    GaveUp,
    free_port,
    spawn,
    wait_until,
)


def test_free_ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(port < low for port in ports)
    # Outgoing connections take their local port from the ephemeral range: none of them
    # can take a port handed out before its service binds it.
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()) as client,
    ):
        assert client.getsockname()[1] >= low


def test_a_failed_wait_names_the_last_error_and_reads_the_detail_when_it_fails() -> None:
    reads: list[float] = []

    def detail() -> str:
        reads.append(time.monotonic())
        return "the log's last line"

    def check() -> bool:
        raise ConnectionRefusedError("nobody listens")

    started = time.monotonic()
    with pytest.raises(TimeoutError) as failure:
        wait_until(check, 0.3, "the service", 0.05, detail=detail)
    message = str(failure.value)
    assert message.startswith("the service not ready after 0.3s")
    assert "ConnectionRefusedError: nobody listens" in message
    assert message.endswith("\nthe log's last line")
    assert len(reads) == 1 and reads[0] - started >= 0.3


def test_a_check_that_gives_up_ends_the_wait_at_once() -> None:
    def check() -> bool:
        raise GaveUp("the process is gone")

    started = time.monotonic()
    with pytest.raises(GaveUp, match="the process is gone"):
        wait_until(check, 30, "anything")
    assert time.monotonic() - started < 5


def test_waiting_for_a_process_that_exits_fails_at_once_with_its_code_and_log(
    tmp_path: Path,
) -> None:
    script = "import sys; print('port 1234 is in use', flush=True); sys.exit(2)"
    process = spawn("service", [sys.executable, "-c", script], tmp_path)
    started = time.monotonic()
    with pytest.raises(GaveUp) as failure:
        process.wait_serving(free_port(), timeout=60)
    assert time.monotonic() - started < 30
    assert str(failure.value) == "service exited with code 2:\nport 1234 is in use"
