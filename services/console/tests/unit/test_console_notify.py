"""The notifications pages without a browser or a service (fake notifier): the inbox with
its links and escaped text, the bell's words, mark read posts the person's own ids (with the
CSRF token), the failed / needs-check page only for the roles the notifier allows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import pytest
from console_fakes import CSRF, FakeServices, console_client
from starlette.testclient import TestClient

from legation.events.v1 import notify_pb2, publish_pb2
from legation.notifier.v1 import notifier_service_pb2 as notifier_pb
from legation_console.adapters.services import NotifierClient, ServiceError
from legation_console.domain.people import Person
from legation_console.domain.views import notify as views

PUBLIC = "https://console.m.example"


def message(message_id: str, person: str, *, read: bool = False) -> notify_pb2.NotificationMessage:
    found = notify_pb2.NotificationMessage(
        message_id=message_id,
        person=person,
        channel="console",
        subject="Approval waiting: <b>Treaty</b>",
        text="Post <img src=x onerror=alert(1)> waits for you",
        link=f"{PUBLIC}/publish/posts/p-1",
        kind="approval",
        campaign_id="plastics-2026",
    )
    found.created_at.FromSeconds(1_795_000_000)
    if read:
        found.read_at.FromSeconds(1_795_000_100)
    return found


class FakeNotifier(NotifierClient):
    def __init__(self) -> None:
        self.inbox = {"ana": [message("m-1", "ana"), message("m-0", "ana", read=True)]}
        self.marked: list[tuple[str, tuple[str, ...], bool]] = []
        self.changed: list[tuple[str, str, str]] = []

    async def list_my_notifications(
        self, person: Person, *, limit: int = 0, page_token: str = "", unread_only: bool = False
    ) -> notifier_pb.ListMyNotificationsResponse:
        mine = self.inbox.get(person.username, [])
        unread = [m for m in mine if not m.HasField("read_at")]
        return notifier_pb.ListMyNotificationsResponse(
            notifications=unread if unread_only else mine, unread_count=len(unread)
        )

    async def mark_read(
        self, person: Person, message_ids: Sequence[str] = (), *, everything: bool = False
    ) -> notifier_pb.MarkNotificationsReadResponse:
        mine = {m.message_id for m in self.inbox.get(person.username, [])}
        if not everything and not set(message_ids) <= mine:
            raise ServiceError(
                "notifier", "MarkNotificationsRead", grpc.StatusCode.NOT_FOUND, "not yours"
            )
        self.marked.append((person.username, tuple(message_ids), everything))
        return notifier_pb.MarkNotificationsReadResponse(marked=1)

    async def list_messages(
        self, person: Person, statuses: Sequence[int], limit: int = 100
    ) -> list[notify_pb2.NotificationMessage]:
        stuck = message("s-1", "omar")
        stuck.channel = "teams"
        stuck.delivery.status = publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
        return [stuck]

    async def change_message(
        self, person: Person, operation: str, message_id: str
    ) -> notify_pb2.NotificationMessage:
        self.changed.append((person.username, operation, message_id))
        return message(message_id, "omar")


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


@pytest.fixture
def client(notifier: FakeNotifier) -> Iterator[TestClient]:
    services: Any = FakeServices(None, None, None, None, notifier)  # type: ignore[arg-type]
    with console_client(services, public_url=PUBLIC) as started:
        yield started


def test_the_inbox_shows_what_and_where_with_a_link_into_the_console_as_text(
    client: TestClient,
) -> None:
    client.get("/sign-in?as=ana")
    page = client.get("/notifications")
    assert page.status_code == 200
    assert "1 unread notification" in page.text
    assert 'href="/publish/posts/p-1"' in page.text  # the console's own link, as a path
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and "<img src=x" not in page.text
    assert "Approval waiting: &lt;b&gt;Treaty&lt;/b&gt;" in page.text
    assert "campaign plastics-2026" in page.text
    assert page.text.count('data-testid="mark-read"') == 1  # only the unread one
    assert 'sse-connect="/notifications/bell/live"' in page.text  # the bell, on every page
    assert 'sse-connect="/notifications/bell/live"' in client.get("/").text


def test_mark_read_needs_the_csrf_token_and_names_the_persons_own_ids(
    client: TestClient, notifier: FakeNotifier
) -> None:
    client.get("/sign-in?as=ana")
    refused = client.post("/notifications/read", data={"message_id": "m-1"})
    assert refused.status_code == 403 and notifier.marked == []
    done = client.post(
        "/notifications/read",
        data={"message_id": "m-1", "csrf_token": CSRF},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("/notifications")
    client.post("/notifications/read", data={"all": "yes", "csrf_token": CSRF})
    assert notifier.marked == [("ana", ("m-1",), False), ("ana", (), True)]
    theirs = client.post("/notifications/read", data={"message_id": "x", "csrf_token": CSRF})
    assert "Not done: not yours" in theirs.text


def test_the_failed_messages_page_follows_the_notifiers_policy(
    client: TestClient, notifier: FakeNotifier
) -> None:
    client.get("/sign-in?as=vic")  # a viewer may list (the policy's read), not act
    page = client.get("/notifications/deliveries")
    assert page.status_code == 200 and "needs a check" in page.text
    assert 'data-testid="retry-message"' not in page.text


def test_the_bell_and_the_links() -> None:
    assert views.Bell(3).label == "Notifications, 3 unread"
    assert views.Bell(120).shown == "99+"
    assert views.console_link(f"{PUBLIC}/listen/alerts?issue_id=x", PUBLIC) == (
        "/listen/alerts?issue_id=x"
    )
    assert views.console_link("https://elsewhere.example/a", PUBLIC) == (
        "https://elsewhere.example/a"
    )
    assert views.console_link("javascript:alert(1)", PUBLIC) is None
    editor = Person("sam", "Sam", frozenset({"publisher"}), frozenset())
    viewer = Person("vic", "Vic", frozenset({"viewer"}), frozenset())
    stuck = notify_pb2.NotificationMessage(message_id="s", person="omar", subject="x")
    stuck.delivery.status = publish_pb2.DELIVERY_STATUS_FAILED
    [row] = views.stuck_page([stuck], editor).messages
    assert (row.status, row.can_retry, row.can_cancel, row.can_confirm) == (
        "failed",
        True,
        True,
        False,
    )
    [row] = views.stuck_page([stuck], viewer).messages
    assert not (row.can_retry or row.can_cancel or row.can_confirm)


def test_preferences_in_words() -> None:
    response = notifier_pb.GetMyPreferencesResponse(
        known=True,
        time_zone="Europe/Berlin",
        channels=["matrix"],
        default_channel="matrix",
        digest_at="08:00",
        kinds=[
            notifier_pb.KindPreference(
                kind="approval", enabled=True, channel="matrix", mode="immediate"
            ),
            notifier_pb.KindPreference(kind="spike", enabled=False),
        ],
        follows_issues=["ocean-day"],
        console=True,
    )
    page = views.preferences_page(response)
    facts = dict(page.facts)
    assert facts["Quiet hours"] == "none" and facts["Follows"] == "issues: ocean-day"
    assert [(k.kind, k.how) for k in page.kinds] == [
        ("Approval", "at once by matrix"),
        ("Spike", "off"),
    ]
    assert not views.preferences_page(notifier_pb.GetMyPreferencesResponse()).known
