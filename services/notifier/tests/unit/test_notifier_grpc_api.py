"""The notifier's gRPC API behind the real interceptor (users' tokens, the access policy,
the request limits): listing messages, and retrying, cancelling and confirming the ones the
outbox could not finish."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import grpc
import pytest
from test_notifier_dispatch import Sink

from legation.events.v1 import notify_pb2, publish_pb2
from legation.notifier.v1 import notifier_service_pb2 as pb
from legation.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from legation_channels import outbox
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.grpc_server import build_server
from legation_devstack.users import UsersFile
from legation_notifier.adapters.grpc_api import NotifierApi
from legation_notifier.adapters.policy import POLICY, SERVICE_NAME
from legation_notifier.adapters.state import NotifierState
from legation_notifier.domain.messages import Planned
from legation_notifier.domain.people import parse_people

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
S = publish_pb2


def planned(message_id: str, person: str) -> Planned:
    notification = notify_pb2.NotificationState(notification_id=f"n-{message_id}", person=person)
    return Planned(message_id, person, "email", False, (notification,), "Subject", "Text", "")


@pytest.fixture
def state() -> NotifierState:
    state = NotifierState(Sink())
    state.record_messages([planned("m-failed", "ana"), planned("m-check", "omar")], NOW)
    state.record_messages([planned("m-sent", "ana")], NOW)
    ended: tuple[tuple[str, outbox.DeliveryState], ...] = (
        ("m-failed", "failed"),
        ("m-check", "needs-check"),
    )
    for message_id, end in ended:

        def finish(delivery: outbox.Delivery, end: outbox.DeliveryState = end) -> outbox.Delivery:
            return replace(delivery, state=end, reason="SMTP 554", attempts=6)

        state.change_delivery(message_id, finish)
    state.change_delivery("m-sent", lambda d: replace(d, state="delivered", attempts=1))
    return state


Stubs = dict[str, pb_grpc.NotifierServiceStub]


@pytest.fixture
def stub(state: NotifierState, auth_users: UsersFile) -> Iterator[Stubs]:
    team = parse_people(
        {
            "people": [
                {
                    "name": "viewer",
                    "roles": ["viewer"],
                    "time_zone": "Europe/Paris",
                    "channels": {"email": {"address": "v@m.example"}},
                    "quiet_hours": {"from": "22:00", "to": "07:00"},
                    "kinds": {"spike": "off"},
                    "follows": {"issues": ["ocean-day"]},
                }
            ]
        },
        {},
    )
    api = NotifierApi(state, clock=lambda: NOW, directory=team)
    server, _, port = build_server(
        0,
        [lambda s: pb_grpc.add_NotifierServiceServicer_to_server(api, s)],
        [SERVICE_NAME],
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(auth_users.path), [POLICY]),
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield {
            user: pb_grpc.NotifierServiceStub(with_token(channel, auth_users.token(user)))
            for user in ("viewer", "publisher", "admin")
        }
    server.stop(None).wait()


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    code: grpc.StatusCode = caught.value.code()
    return code


def test_the_messages_waiting_for_a_person_are_listed_and_can_be_finished(
    stub: Stubs, state: NotifierState
) -> None:
    waiting = stub["viewer"].ListMessages(
        pb.ListMessagesRequest(statuses=[S.DELIVERY_STATUS_FAILED, S.DELIVERY_STATUS_NEEDS_CHECK]),
        timeout=10,
    )
    assert sorted(m.message_id for m in waiting.messages) == ["m-check", "m-failed"]
    mine = stub["viewer"].ListMessages(pb.ListMessagesRequest(person="ana"), timeout=10)
    assert sorted(m.message_id for m in mine.messages) == ["m-failed", "m-sent"]
    retried = stub["publisher"].RetryMessage(pb.MessageRequest(message_id="m-failed"), timeout=10)
    assert retried.message.delivery.status == S.DELIVERY_STATUS_PENDING
    assert retried.message.delivery.attempts == 0
    assert "m-failed" in state.unfinished  # the dispatcher sends it at its next turn
    confirmed = stub["admin"].ConfirmMessage(pb.MessageRequest(message_id="m-check"), timeout=10)
    assert confirmed.message.delivery.status == S.DELIVERY_STATUS_PUBLISHED
    assert state.attention_counts() == {"failed": 0, "needs-check": 0}


def test_refusals_name_the_reason(stub: Stubs) -> None:
    viewer, publisher = stub["viewer"], stub["publisher"]
    request = pb.MessageRequest(message_id="m-failed")
    assert code_of(lambda: viewer.RetryMessage(request, timeout=10)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    sent = pb.MessageRequest(message_id="m-sent")
    assert code_of(lambda: publisher.RetryMessage(sent, timeout=10)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    unknown = pb.MessageRequest(message_id="nope")
    assert code_of(lambda: publisher.CancelMessage(unknown, timeout=10)) == (
        grpc.StatusCode.NOT_FOUND
    )
    too_many = pb.ListMessagesRequest(limit=5000)
    assert code_of(lambda: viewer.ListMessages(too_many, timeout=10)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    bad_id = pb.MessageRequest(message_id="../etc")
    assert code_of(lambda: publisher.CancelMessage(bad_id, timeout=10)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def inbox(state: NotifierState, person: str, count: int, start: int = 0) -> list[str]:
    """``count`` console messages delivered to ``person`` (a minute apart, the last newest)."""
    ids = []
    for number in range(start, start + count):
        message_id = f"c-{person}-{number}"
        notification = notify_pb2.NotificationState(
            notification_id=f"n-{message_id}", person=person, channel="console", kind="spike"
        )
        plan = Planned(
            message_id,
            person,
            "console",
            False,
            (notification,),
            f"Spike {number}",
            "<b>x</b>",
            "https://console.m.example/listen/alerts?issue_id=x",
        )
        state.record_messages([plan], NOW.replace(minute=number))
        state.change_delivery(message_id, lambda d: replace(d, state="delivered", attempts=1))
        ids.append(message_id)
    return ids


def test_a_person_lists_and_marks_only_their_own_inbox(stub: Stubs, state: NotifierState) -> None:
    viewer_ids = inbox(state, "viewer", 5)
    [publisher_id] = inbox(state, "publisher", 1)
    state.record_messages([planned("c-undelivered", "viewer")], NOW)
    first = stub["viewer"].ListMyNotifications(pb.ListMyNotificationsRequest(limit=2), timeout=10)
    assert first.unread_count == 5
    assert [m.message_id for m in first.notifications] == viewer_ids[:2:-1][:2]  # newest first
    assert first.notifications[0].kind == "spike" and first.notifications[0].text == "<b>x</b>"
    rest = stub["viewer"].ListMyNotifications(
        pb.ListMyNotificationsRequest(limit=10, page_token=first.next_page_token), timeout=10
    )
    assert [m.message_id for m in rest.notifications] == viewer_ids[2::-1]
    assert rest.next_page_token == ""
    # Mark one read: it goes after the unread ones; the count drops.
    marked = stub["viewer"].MarkNotificationsRead(
        pb.MarkNotificationsReadRequest(message_ids=[viewer_ids[4]]), timeout=10
    )
    assert (marked.marked, marked.unread_count) == (1, 4)
    again = stub["viewer"].MarkNotificationsRead(
        pb.MarkNotificationsReadRequest(message_ids=[viewer_ids[4]]), timeout=10
    )
    assert (again.marked, again.unread_count) == (0, 4)  # marking twice changes nothing
    listed = stub["viewer"].ListMyNotifications(pb.ListMyNotificationsRequest(), timeout=10)
    assert listed.notifications[-1].message_id == viewer_ids[4]
    assert listed.notifications[-1].HasField("read_at")
    unread = stub["viewer"].ListMyNotifications(
        pb.ListMyNotificationsRequest(unread_only=True), timeout=10
    )
    assert len(unread.notifications) == 4
    # Another person's id is as unknown as a missing one, and nothing of it changes.
    theirs = pb.MarkNotificationsReadRequest(message_ids=[viewer_ids[0], publisher_id])
    assert code_of(lambda: stub["viewer"].MarkNotificationsRead(theirs, timeout=10)) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert state.unread_count("viewer") == 4 and state.unread_count("publisher") == 1
    mine = stub["publisher"].ListMyNotifications(pb.ListMyNotificationsRequest(), timeout=10)
    assert [m.message_id for m in mine.notifications] == [publisher_id]
    # All at once.
    everything = stub["viewer"].MarkNotificationsRead(
        pb.MarkNotificationsReadRequest(all=True), timeout=10
    )
    assert (everything.marked, everything.unread_count) == (4, 0)
    assert state.unread_count("publisher") == 1


def test_inbox_requests_outside_the_limits_name_the_field(stub: Stubs) -> None:
    viewer = stub["viewer"]
    cases = [
        (lambda: viewer.ListMyNotifications(pb.ListMyNotificationsRequest(limit=201), timeout=10)),
        (
            lambda: viewer.ListMyNotifications(
                pb.ListMyNotificationsRequest(page_token="abc"), timeout=10
            )
        ),
        (lambda: viewer.MarkNotificationsRead(pb.MarkNotificationsReadRequest(), timeout=10)),
        (
            lambda: viewer.MarkNotificationsRead(
                pb.MarkNotificationsReadRequest(all=True, message_ids=["a"]), timeout=10
            )
        ),
        (
            lambda: viewer.MarkNotificationsRead(
                pb.MarkNotificationsReadRequest(message_ids=["x"] * 201), timeout=10
            )
        ),
    ]
    for call in cases:
        assert code_of(call) == grpc.StatusCode.INVALID_ARGUMENT


def test_a_person_sees_their_effective_preferences_and_nobody_elses(stub: Stubs) -> None:
    mine = stub["viewer"].GetMyPreferences(pb.GetMyPreferencesRequest(), timeout=10)
    assert mine.known and mine.time_zone == "Europe/Paris"
    assert list(mine.channels) == ["email"] and mine.default_channel == "email"
    assert (mine.quiet_from, mine.quiet_to, mine.digest_at) == ("22:00", "07:00", "08:00")
    kinds = {k.kind: (k.enabled, k.channel, k.mode) for k in mine.kinds}
    assert kinds["spike"] == (False, "", "")
    assert kinds["approval"] == (True, "email", "immediate")
    assert list(mine.follows_issues) == ["ocean-day"] and mine.console
    # Not in the people file: nothing, and never another person's.
    assert not stub["publisher"].GetMyPreferences(pb.GetMyPreferencesRequest(), timeout=10).known
