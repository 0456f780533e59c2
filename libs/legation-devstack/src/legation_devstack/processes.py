"""Child processes started and stopped by process id, never by name."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Settings of this shell that reach the processes started from it anyway: the Kafka client
# a test run chose (``LEGATION_KAFKA_CLIENT=confluent pytest ...``, ``make run``).
PASSED_ON = ("LEGATION_KAFKA_CLIENT",)


def child_env() -> dict[str, str]:
    """This process's environment for a service process it starts: without its
    ``LEGATION_*`` settings (the caller sets exactly those an operator would) but those in
    :data:`PASSED_ON`."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEGATION_") or key in PASSED_ON
    }


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None when it
    does not exist or the system has no /proc. With the pid it names one process: a pid
    reused after a reboot or a crash has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which may itself hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 of proc(5): starttime


def cpu_seconds(pid: int) -> float | None:
    """CPU time process ``pid`` has used so far (user + system, every thread), or None when
    it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def memory_kib(pid: int) -> tuple[int, int] | None:
    """Resident memory of process ``pid`` now and at its highest (VmRSS, VmHWM in KiB), or
    None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def load_average() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15 minute load averages."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


# Ports handed out by this process, never handed out twice (a service may not have bound
# its port yet when the next one is chosen).
_handed_out: set[int] = set()
_port_lock = threading.Lock()
# Its own generator: a test run that seeds ``random`` (pytest-randomly) would otherwise
# replay the same ports in every process it starts.
_port_random = random.Random()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # the Linux default


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's
    ephemeral range: a port from that range may be taken as the local end of any outgoing
    connection before the service that was given it binds it (a start-up that fails now
    and then). Never the same port twice in one process."""
    low, _ = _ephemeral_range()
    first = 10000 if low > 12000 else 1024
    below = low - first >= 1000  # else (a machine set so) the kernel's choice
    with _port_lock:
        for _ in range(200):
            wanted = _port_random.randrange(first, low) if below else 0
            if wanted in _handed_out:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", wanted))
                except OSError:
                    continue
                port: int = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port found between {first} and {low}")


class GaveUp(Exception):
    """Raised by a :func:`wait_until` check when waiting longer cannot help (the process
    waited for has exited): the wait ends at once with this error."""


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.1,
    *,
    detail: Callable[[], str] | None = None,
) -> None:
    """Polls ``check`` until it returns True; raises TimeoutError naming ``what``, the last
    error the check raised and ``detail()`` (a log's tail, read when the wait fails). A
    check raising :class:`GaveUp` ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except GaveUp:
            raise
        except Exception as error:
            last_error = error
        time.sleep(interval)
    message = f"{what} not ready after {timeout}s"
    if last_error is not None:
        message += f" (last check: {type(last_error).__name__}: {str(last_error)[:300]})"
    if detail is not None:
        message += f"\n{detail()}"
    raise TimeoutError(message)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


@dataclass
class Process:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def require_alive(self) -> None:
        """Raises :class:`GaveUp` with the exit code and the log's tail when the process
        has exited (for :func:`wait_until` checks)."""
        code = self.popen.poll()
        if code is not None:
            raise GaveUp(f"{self.name} exited with code {code}:\n{self.log_tail()}")

    def wait_serving(self, grpc_port: int, service: str = "", timeout: float = 60.0) -> None:
        """Waits until the process's gRPC health check on ``grpc_port`` answers SERVING for
        ``service`` ("" for the whole server); fails at once if the process exits, and
        with the log's tail after ``timeout`` seconds."""

        def serving() -> bool:
            self.require_alive()
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                response = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=2
                )
            return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

        wait_until(serving, timeout, f"{self.name} serving", detail=self.log_tail)

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait, SIGKILL if it did not exit; returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to clean up."""
        if self.alive():
            self.popen.kill()
        self.popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(
    name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None
) -> Process:
    """Starts ``argv`` in its own session (so a terminal's Ctrl-C reaches only the
    supervisor, which then stops children in order), output appended to ``<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    return Process(name, popen, log_path)
