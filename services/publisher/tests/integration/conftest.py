"""The publisher as a process (``python -m legation_publisher``) for integration tests:
its own ports, the session's Kafka stand-in and users file, stopped by process id."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import grpc
import pytest

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation.publisher.v1 import publisher_service_pb2_grpc as pb_grpc
from legation_core.auth import with_token
from legation_core.config import CoreSettings
from legation_devstack.processes import Process, child_env, free_port, spawn
from legation_devstack.users import UsersFile

SERVICE = "legation.publisher.v1.PublisherService"


class PublisherProcess:
    """``python -m legation_publisher`` with its own ports, stopped by process id."""

    def __init__(
        self,
        settings: CoreSettings,
        users: UsersFile,
        feed: Path,
        log_dir: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.users = users
        self.grpc_port = free_port()
        self.redirect_port = free_port()
        env = child_env()
        env.update(
            {
                "LEGATION_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "LEGATION_GRPC_PORT": str(self.grpc_port),
                "LEGATION_METRICS_PORT": str(free_port()),
                "LEGATION_AUTH_USERS_FILE": str(users.path),
                "LEGATION_PUBLISHER_SITE_FEED_PATH": str(feed),
                "LEGATION_PUBLISHER_REDIRECT_PORT": str(self.redirect_port),
                "LEGATION_PUBLISHER_REDIRECT_BASE_URL": f"http://127.0.0.1:{self.redirect_port}/",
                "LEGATION_PUBLISHER_SCHEDULER_INTERVAL_SECONDS": "0.2",
                **(extra_env or {}),
            }
        )
        self.process: Process = spawn(
            "publisher", [sys.executable, "-m", "legation_publisher"], log_dir, env
        )
        self.process.wait_serving(self.grpc_port, SERVICE)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")

    def stub(self, channel: grpc.Channel, user: str) -> pb_grpc.PublisherServiceStub:
        """The API as ``user`` of the users file (a bearer token on every call)."""
        return pb_grpc.PublisherServiceStub(with_token(channel, self.users.token(user)))

    def get_post(self, post_id: str) -> publish_pb2.PostState:
        with self.channel() as channel:
            stub = self.stub(channel, "viewer")
            return stub.GetPost(pb.GetPostRequest(post_id=post_id), timeout=10).post


StartPublisher = Callable[..., PublisherProcess]


@pytest.fixture
def start_publisher(
    kafka_settings: CoreSettings, auth_users: UsersFile, tmp_path: Path
) -> Iterator[StartPublisher]:
    """``start_publisher(feed, extra_env=None)`` starts a publisher process and waits until
    its API serves; every one started is stopped (SIGTERM, by pid) after the test."""
    started: list[PublisherProcess] = []

    def start(feed: Path, extra_env: Mapping[str, str] | None = None) -> PublisherProcess:
        log_dir = tmp_path / f"logs-{len(started)}"
        started.append(PublisherProcess(kafka_settings, auth_users, feed, log_dir, extra_env))
        return started[-1]

    yield start
    for publisher in started:
        publisher.process.stop()
