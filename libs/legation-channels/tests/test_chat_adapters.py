"""Slack, Teams and Matrix adapters against the local chat server, over real sockets, driven
by the outbox: delivery, a rate limit then a retry, a revoked hook, and a crash between
sending and recording (Matrix: resent under the same transaction, posted once; Slack and
Teams: needs-check, never posted twice)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from channel_kit import FAST, Crash, CrashAfterDeliver

from legation_channels.adapters.chat import MatrixChannel, SlackChannel, TeamsChannel
from legation_channels.base import Channel, Outgoing
from legation_channels.outbox import Deliverer, Delivery, RetryPolicy, new_delivery
from legation_channels.registry import ChannelConfigError, build_channels
from legation_devstack.channel_servers import Canned, ChatServer

pytestmark = pytest.mark.integration

MESSAGE = Outgoing(
    idempotency_key="notification-1",
    title="Spike on plastics-treaty: 42 mentions in an hour",
    text="42 mentions between 14:00 and 15:00 UTC.",
    link="https://console.example.org/listen/alerts?issue_id=plastics-treaty",
)


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def drive(channel: Channel, deliverer: Deliverer | None = None) -> Delivery:
    saved: list[Delivery] = []
    delivery = new_delivery(MESSAGE.idempotency_key, channel.name, _now())
    return (deliverer or Deliverer()).run(delivery, channel, MESSAGE, saved.append)


def _now() -> datetime:
    return datetime.now(UTC)


def test_slack_teams_and_matrix_each_show_the_message_with_its_link(chat: ChatServer) -> None:
    slack = SlackChannel("slack", chat.slack_url("ana"), timeout=FAST)
    teams = TeamsChannel("teams", chat.teams_url("omar"), timeout=FAST)
    matrix = MatrixChannel("matrix", chat.url, "!desk:m.example", "matrix-token", timeout=FAST)
    for channel in (slack, teams, matrix):
        assert drive(channel).state == "delivered", channel.kind
    for kind, room in (("slack", "ana"), ("teams", "omar"), ("matrix", "!desk:m.example")):
        [shown] = chat.in_room(kind, room)
        assert "42 mentions in an hour" in shown.text
        assert "console.example.org/listen/alerts" in shown.text
    [teams_message] = chat.in_room("teams", "omar")
    card = teams_message.body["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["actions"][0]["type"] == "Action.OpenUrl"


def test_a_rate_limit_is_retried_after_the_rooms_retry_after(chat: ChatServer) -> None:
    slack = SlackChannel("slack", chat.slack_url("ana"), timeout=FAST)
    chat.fail_next("/slack/", Canned(429, b"rate_limited", {"Retry-After": "30"}))
    delivery = drive(slack)
    assert delivery.state == "pending" and delivery.attempts == 1
    assert delivery.next_attempt_at is not None and delivery.updated_at is not None
    assert (delivery.next_attempt_at - delivery.updated_at).total_seconds() >= 30
    assert chat.in_room("slack", "ana") == []


def test_a_revoked_hook_fails_visibly_without_showing_its_secret_url(chat: ChatServer) -> None:
    url = f"{chat.url}/slack/revoked-secret-token"
    delivery = drive(SlackChannel("slack", url, timeout=FAST))
    assert delivery.state == "failed"
    assert "revoked-secret-token" not in delivery.reason
    unreachable = "http://127.0.0.1:9/teams/another-secret"
    down = drive(TeamsChannel("teams", unreachable, timeout=FAST))
    assert down.state == "pending" and "another-secret" not in down.reason


def test_matrix_resends_an_interrupted_message_under_the_same_transaction(
    chat: ChatServer,
) -> None:
    matrix = MatrixChannel("matrix", chat.url, "!desk:m.example", "matrix-token", timeout=FAST)
    saved: list[Delivery] = []
    deliverer = Deliverer(RetryPolicy(max_attempts=3))
    delivery = new_delivery(MESSAGE.idempotency_key, "matrix", _now())
    with pytest.raises(Crash):
        deliverer.run(delivery, CrashAfterDeliver(matrix), MESSAGE, saved.append)
    assert saved[-1].state == "sending"  # what a restart finds
    after = deliverer.run(saved[-1], matrix, MESSAGE, saved.append)
    assert after.state == "delivered"
    assert len(chat.in_room("matrix", "!desk:m.example")) == 1


def test_slack_interrupted_mid_send_needs_a_check_and_is_not_posted_twice(
    chat: ChatServer,
) -> None:
    slack = SlackChannel("slack", chat.slack_url("ana"), timeout=FAST)
    saved: list[Delivery] = []
    deliverer = Deliverer()
    delivery = new_delivery(MESSAGE.idempotency_key, "slack", _now())
    with pytest.raises(Crash):
        deliverer.run(delivery, CrashAfterDeliver(slack), MESSAGE, saved.append)
    after = deliverer.run(saved[-1], slack, MESSAGE, saved.append)
    assert after.state == "needs-check"
    assert len(chat.in_room("slack", "ana")) == 1


def test_a_wrong_matrix_token_is_a_credentials_failure(chat: ChatServer) -> None:
    matrix = MatrixChannel("matrix", chat.url, "!desk:m.example", "stolen", timeout=FAST)
    delivery = drive(matrix)
    assert (delivery.state, delivery.reason_field) == ("failed", "credentials")


def test_the_registry_builds_chat_channels_with_their_urls_as_secrets() -> None:
    env = {"SLACK_HOOK": "https://hooks.slack.example/T/B/x", "MATRIX_TOKEN": "t"}

    with pytest.raises(ChannelConfigError) as caught:
        build_channels(
            {
                "channels": [
                    {"name": "desk", "kind": "slack", "secrets": {"webhook_url": "SLACK_HOOK"}},
                    {
                        "name": "room",
                        "kind": "matrix",
                        "options": {"homeserver": "https://matrix.example", "room_id": "bad"},
                        "secrets": {"access_token": "MATRIX_TOKEN"},
                    },
                ]
            },
            env,
        )
    assert caught.value.problems == [
        "channels[1].options.room_id: expected a room id like !abc:example.org"
    ]
    built = build_channels(
        {"channels": [{"name": "desk", "kind": "slack", "secrets": {"webhook_url": "SLACK_HOOK"}}]},
        env,
    )
    assert built["desk"].kind == "slack" and built["desk"].reconcile == "none"
