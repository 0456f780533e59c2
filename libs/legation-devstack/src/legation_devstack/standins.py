"""The stand-in servers that play Kafka and OpenSearch on a development machine.

noida-db serves the Kafka protocol (it keeps data on disk, so a broker restart loses
nothing, and its offsets are exact); osmem-server serves the OpenSearch API (every query and
aggregation the evaluator uses passed on it). See the README for what each lacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import noida_db
from kafka import KafkaAdminClient
from osmem_server import resolve_binary

from legation_devstack.processes import (
    GaveUp,
    Process,
    free_port,
    http_ok,
    port_open,
    spawn,
    wait_until,
)


def noida_binary() -> str:
    return str(Path(noida_db.__file__).parent / "noida-db")


@dataclass
class KafkaStandIn:
    process: Process
    port: int
    data_dir: Path

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class OpenSearchStandIn:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_kafka(data_dir: Path, log_dir: Path, port: int | None = None) -> KafkaStandIn:
    """Starts noida-db's Kafka protocol with its data under ``data_dir``; waits until a
    Kafka admin client gets answers."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    process = spawn(
        "kafka",
        [
            noida_binary(),
            "start",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--only",
            "kafka",
            "--kafka-port",
            str(port),
        ],
        log_dir,
    )
    stand_in = KafkaStandIn(process, port, data_dir)

    def answers() -> bool:
        process.require_alive()
        return port_open(port) and _kafka_answers(stand_in.bootstrap_servers)

    try:
        wait_until(answers, 60, "Kafka stand-in", detail=process.log_tail)
    except (TimeoutError, GaveUp):
        process.stop()
        raise
    return stand_in


def _kafka_answers(bootstrap: str) -> bool:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def start_opensearch(log_dir: Path, port: int | None = None) -> OpenSearchStandIn:
    """Starts osmem-server (memory only); it exits by itself if this process dies."""
    port = port or free_port()
    process = spawn(
        "opensearch",
        [
            resolve_binary(),
            "-addr",
            f"127.0.0.1:{port}",
            "-no-stdin-watch",
            "-parent-pid",
            str(os.getpid()),
        ],
        log_dir,
    )
    stand_in = OpenSearchStandIn(process, port)

    def answers() -> bool:
        process.require_alive()
        return http_ok(stand_in.url)

    try:
        wait_until(answers, 30, "OpenSearch stand-in", detail=process.log_tail)
    except (TimeoutError, GaveUp):
        process.stop()
        raise
    return stand_in
