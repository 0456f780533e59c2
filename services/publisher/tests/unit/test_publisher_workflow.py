"""The publisher's domain: content checks, tracked links, the approval workflow, schedules
and due deliveries, CSV import. No I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation_channels import outbox
from legation_channels.base import ChannelLimits, problems
from legation_core.auth import Caller
from legation_core.calls import AccessDenied
from legation_publisher.domain import schedule as sched
from legation_publisher.domain import workflow
from legation_publisher.domain.content import ChannelProfile, with_utm
from legation_publisher.domain.csv_import import parse_csv
from legation_publisher.domain.delivery import from_outbox, outgoing, publication_for
from legation_publisher.domain.posts import InvalidPost
from legation_publisher.domain.workflow import Conflict, WorkflowPolicy

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POLICY = WorkflowPolicy()
CHANNELS = {
    "site-atom": ChannelProfile(
        "site-atom",
        "site-atom",
        ChannelLimits(
            max_title_length=300,
            max_media=4,
            media_kinds=frozenset({"image", "video", "document"}),
            alt_text_required=True,
        ),
    ),
    "short": ChannelProfile(
        "short",
        "mastodon",
        ChannelLimits(max_text_length=60, max_media=1, media_kinds=frozenset({"image"})),
    ),
}
REDIRECT = "https://go.ministry.example/"


User = Caller


EDITOR = User("jean", frozenset({"editor"}))
DESK = User("amina", frozenset({"approver"}))
HEAD = User("lucia", frozenset({"approver"}))
PUBLISHER = User("omar", frozenset({"publisher"}))
VIEWER = User("vic", frozenset({"viewer"}))


def content(**fields: object) -> pb.VariantContent:
    values: dict[str, object] = {
        "title": "Our position on the plastics treaty",
        "body": "We support a binding cap. Read more: https://ministry.example/plastics.",
        "author": "Press office",
    }
    values.update(fields)
    return pb.VariantContent(**values)  # type: ignore[arg-type]


def draft(channels: tuple[str, ...] = ("site-atom",), **fields: Any) -> publish_pb2.PostState:
    request = pb.CreatePostRequest(
        request_id="r1",
        campaign_id="plastics-2026",
        language="en",
        content=content(**fields),
        channels=list(channels),
    )
    return workflow.create_post(request, EDITOR, POLICY, CHANNELS, ["site-atom"], NOW)


def approved_post() -> publish_pb2.PostState:
    post = draft()
    post = workflow.add_translation(
        post, "fr", "en", content(title="Notre position"), EDITOR, POLICY, CHANNELS, NOW
    )
    post = workflow.submit_for_review(post, [], "", EDITOR, POLICY, NOW)
    post = workflow.approve(post, [], "", DESK, POLICY, NOW)
    return workflow.approve(post, [], "ok", HEAD, POLICY, NOW)


# ----------------------------------------------------------------------------- content


def test_a_draft_has_its_source_variant_and_an_event_of_its_creation() -> None:
    post = draft()
    assert post.status == publish_pb2.POST_STATUS_DRAFT
    assert [v.language for v in post.variants] == ["en"]
    assert post.transition.action == "create" and post.transition.user == "jean"
    assert post.version == 1 and post.created_by == "jean"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": ""}, "content.title"),
        ({"body": " "}, "content.body"),
        ({"title": "x" * 301}, "content.title"),
        (
            {"media": [publish_pb2.MediaRef(url="https://x.example/a.png", kind="image")]},
            "content.media[0].alt_text",
        ),
        (
            {"media": [publish_pb2.MediaRef(url="https://x.example/a", kind="gif", alt_text="a")]},
            "content.media[0].kind",
        ),
        (
            {"media": [publish_pb2.MediaRef(url="ftp://x", kind="image", alt_text="a")]},
            "content.media[0].url",
        ),
    ],
)
def test_invalid_content_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPost) as error:
        draft(**fields)
    assert error.value.field == field


def test_text_too_long_for_a_channel_names_the_channel_variant() -> None:
    variant = publish_pb2.ChannelVariant(channel="short", text="x" * 61)
    with pytest.raises(InvalidPost, match="at most 60") as error:
        draft(("site-atom", "short"), body="short body", channel_variants=[variant])
    assert error.value.field == "content.channel_variants[0].text"


def test_a_body_too_long_for_a_channel_without_its_own_text_names_the_body() -> None:
    with pytest.raises(InvalidPost, match="channel short") as error:
        draft(("site-atom", "short"), body="y" * 80)
    assert error.value.field == "content.body"


def test_links_count_at_the_length_of_the_short_links_they_become() -> None:
    """A text that fits as written but not once its links are short links would be
    approved and then fail on the channel: it is refused while drafting."""
    limits = ChannelLimits(max_text_length=60, link_in_text=True)
    tracked = {"short": ChannelProfile("short", "telegram", limits, REDIRECT)}
    body = "x" * 30 + " https://mfa.example/p"  # 52 as written, 72 once shortened
    request = pb.CreatePostRequest(
        request_id="r1", campaign_id="c", channels=["short"], content=content(body=body)
    )
    untracked = {"short": ChannelProfile("short", "telegram", limits)}
    assert workflow.create_post(request, EDITOR, POLICY, untracked, [], NOW).variants
    with pytest.raises(InvalidPost) as error:
        workflow.create_post(request, EDITOR, POLICY, tracked, [], NOW)
    assert error.value.field == "content.body"
    assert "is 72 characters" in str(error.value)
    assert "links counted as short links of 41 characters" in str(error.value)
    # What passes the check goes out within the limit.
    fits = content(body="x" * 18 + " https://mfa.example/p")
    post = workflow.create_post(
        pb.CreatePostRequest(request_id="r2", campaign_id="c", channels=["short"], content=fits),
        EDITOR,
        POLICY,
        tracked,
        [],
        NOW,
    )
    post = workflow.submit_for_review(post, [], "", EDITOR, POLICY, NOW)
    post = workflow.approve(post, [], "", DESK, POLICY, NOW)
    post = workflow.approve(post, [], "", HEAD, POLICY, NOW)
    plan = sched.parse_schedule("", "UTC", "", NOW)
    post = workflow.schedule_post(post, plan, PUBLISHER, POLICY, tracked, REDIRECT, NOW)
    [due] = sched.due_deliveries(post, NOW)
    message = outgoing(post, due.delivery_id, "en", "short")
    assert len(message.text) == 60 and problems(message, limits) == []


def test_hashtags_count_against_the_channel_limit_and_are_checked() -> None:
    too_long = publish_pb2.ChannelVariant(channel="short", text="x" * 51, hashtags=["plastics"])
    with pytest.raises(InvalidPost, match="at most 60"):
        draft(("site-atom", "short"), body="b", channel_variants=[too_long])
    bad = publish_pb2.ChannelVariant(channel="short", text="x", hashtags=["no spaces"])
    with pytest.raises(InvalidPost) as error:
        draft(("site-atom", "short"), body="b", channel_variants=[bad])
    assert error.value.field == "content.channel_variants[0].hashtags[0]"


def test_unknown_channel_is_named() -> None:
    with pytest.raises(InvalidPost) as error:
        draft(("site-atom", "myspace"))
    assert error.value.field == "channels[1]"


def test_utm_parameters_are_added_and_editor_ones_kept() -> None:
    url = with_utm("https://m.example/p?utm_source=newsletter&x=1", "c1", "site-atom", "site", "p1")
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "utm_source": ["newsletter"],
        "x": ["1"],
        "utm_medium": ["site"],
        "utm_campaign": ["c1"],
        "utm_content": ["p1"],
    }


def test_scheduling_fixes_short_links_and_deliveries_carry_them() -> None:
    post = workflow.schedule_post(
        approved_post(),
        sched.parse_schedule("", "UTC", "", NOW),
        PUBLISHER,
        POLICY,
        CHANNELS,
        REDIRECT,
        NOW,
    )
    [link] = [link for link in post.links if link.language == "en"]
    assert link.target_url == "https://ministry.example/plastics"
    assert link.short_url == f"https://go.ministry.example/r/{link.code}"
    assert "utm_campaign=plastics-2026" in link.tracked_url
    message = outgoing(post, "d1", "en", "site-atom")
    # The sentence's full stop stays outside the link.
    assert message.text.endswith(f"Read more: {link.short_url}.")


# ---------------------------------------------------------------------------- workflow


def test_two_step_approval_with_two_translations() -> None:
    post = draft()
    for language in ("fr", "es"):
        post = workflow.add_translation(
            post, language, "", content(title=f"title {language}"), EDITOR, POLICY, CHANNELS, NOW
        )
    assert [v.source_language for v in post.variants] == ["", "en", "en"]
    post = workflow.submit_for_review(post, [], "please", EDITOR, POLICY, NOW)
    assert post.status == publish_pb2.POST_STATUS_IN_REVIEW
    post = workflow.approve(post, [], "", DESK, POLICY, NOW)
    assert post.transition.step == "policy-desk"
    assert post.status == publish_pb2.POST_STATUS_IN_REVIEW
    post = workflow.approve(post, ["en", "fr"], "", HEAD, POLICY, NOW)
    assert [v.status for v in post.variants] == [
        publish_pb2.POST_STATUS_APPROVED,
        publish_pb2.POST_STATUS_APPROVED,
        publish_pb2.POST_STATUS_IN_REVIEW,
    ]
    assert post.status == publish_pb2.POST_STATUS_IN_REVIEW
    post = workflow.approve(post, ["es"], "", HEAD, POLICY, NOW)
    assert post.status == publish_pb2.POST_STATUS_APPROVED
    assert post.transition.from_status == publish_pb2.POST_STATUS_IN_REVIEW
    assert post.transition.to_status == publish_pb2.POST_STATUS_APPROVED
    assert post.version == 7


def test_one_user_cannot_pass_two_steps() -> None:
    post = workflow.submit_for_review(draft(), [], "", EDITOR, POLICY, NOW)
    post = workflow.approve(post, [], "", DESK, POLICY, NOW)
    with pytest.raises(AccessDenied, match="another approver"):
        workflow.approve(post, [], "", DESK, POLICY, NOW)


@pytest.mark.parametrize("caller", [EDITOR, PUBLISHER, VIEWER])
def test_approval_needs_the_step_role(caller: User) -> None:
    post = workflow.submit_for_review(draft(), [], "", EDITOR, POLICY, NOW)
    with pytest.raises(AccessDenied, match="approver"):
        workflow.approve(post, [], "", caller, POLICY, NOW)


def test_steps_are_configurable_and_an_admin_may_pass_any() -> None:
    policy = WorkflowPolicy(approval_steps=workflow.parse_steps("legal:publisher"))
    post = workflow.submit_for_review(draft(), [], "", EDITOR, policy, NOW)
    with pytest.raises(AccessDenied):
        workflow.approve(post, [], "", DESK, policy, NOW)
    admin = User("root", frozenset({"admin"}))
    assert workflow.approve(post, [], "", admin, policy, NOW).status == (
        publish_pb2.POST_STATUS_APPROVED
    )


@pytest.mark.parametrize("text", ["", "desk", "a:b,a:c", "a:b,,c:d"])
def test_bad_step_configuration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"step|names no step"):
        workflow.parse_steps(text)


def test_changes_requested_need_a_comment_and_reset_approvals() -> None:
    post = workflow.submit_for_review(draft(), [], "", EDITOR, POLICY, NOW)
    post = workflow.approve(post, [], "", DESK, POLICY, NOW)
    with pytest.raises(InvalidPost) as error:
        workflow.request_changes(post, [], "", HEAD, POLICY, NOW)
    assert error.value.field == "comment"
    post = workflow.request_changes(post, [], "Cite the treaty article", HEAD, POLICY, NOW)
    assert post.status == publish_pb2.POST_STATUS_CHANGES_REQUESTED
    assert list(post.variants[0].approvals) == []
    assert post.comments[-1].text == "Cite the treaty article"
    post = workflow.update_variant(post, "en", content(title="New"), EDITOR, POLICY, CHANNELS, NOW)
    assert post.variants[0].title == "New"
    assert post.status == publish_pb2.POST_STATUS_CHANGES_REQUESTED
    post = workflow.submit_for_review(post, [], "", EDITOR, POLICY, NOW)
    assert post.status == publish_pb2.POST_STATUS_IN_REVIEW


def test_a_variant_in_review_cannot_be_edited_and_drafting_needs_the_editor_role() -> None:
    post = workflow.submit_for_review(draft(), [], "", EDITOR, POLICY, NOW)
    with pytest.raises(Conflict):
        workflow.update_variant(post, "en", content(), EDITOR, POLICY, CHANNELS, NOW)
    with pytest.raises(AccessDenied):
        workflow.add_translation(draft(), "fr", "", content(), DESK, POLICY, CHANNELS, NOW)


def test_scheduling_needs_every_variant_approved_and_the_publisher_role() -> None:
    plan = sched.parse_schedule("", "UTC", "", NOW)
    post = workflow.add_translation(draft(), "fr", "", content(), EDITOR, POLICY, CHANNELS, NOW)
    with pytest.raises(AccessDenied):
        workflow.schedule_post(approved_post(), plan, EDITOR, POLICY, CHANNELS, REDIRECT, NOW)
    with pytest.raises(Conflict, match="en, fr"):
        workflow.schedule_post(post, plan, PUBLISHER, POLICY, CHANNELS, REDIRECT, NOW)


def test_comments_from_anyone_in_the_workflow_but_not_a_viewer() -> None:
    post = workflow.add_comment(draft(), "en", "Nice", DESK, POLICY, NOW)
    assert post.comments[0].user == "amina" and post.transition.action == "comment"
    with pytest.raises(AccessDenied):
        workflow.add_comment(draft(), "", "Nice", VIEWER, POLICY, NOW)


# ---------------------------------------------------------------------------- schedule


def test_schedule_in_the_embassy_time_zone() -> None:
    plan = sched.parse_schedule("2026-12-01T09:00", "Africa/Nairobi", "", NOW)
    assert plan.start_at.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("local_time", "zone", "rule", "field"),
    [
        ("2026-12-01T09:00", "Mars/Olympus", "", "time_zone"),
        ("2026-11-20T11:00", "Africa/Nairobi", "", "local_time"),  # 08:00 UTC: past
        ("yesterday", "UTC", "", "local_time"),
        ("2026-12-01T09:00+01:00", "UTC", "", "local_time"),
        ("2027-03-28T02:30", "Europe/Paris", "", "local_time"),  # skipped by DST
        ("2026-12-01T09:00", "UTC", "FREQ=SOMETIMES", "rrule"),
        ("2026-12-01T09:00", "UTC", "FREQ=MINUTELY", "rrule"),
        ("2026-12-01T09:00", "UTC", "DTSTART:20261201T090000\nRRULE:FREQ=DAILY", "rrule"),
        ("2026-12-01T09:00", "UTC", "FREQ=DAILY;UNTIL=20261101T000000", "rrule"),
    ],
)
def test_bad_schedules_name_the_field(local_time: str, zone: str, rule: str, field: str) -> None:
    with pytest.raises(InvalidPost) as error:
        sched.parse_schedule(local_time, zone, rule, NOW)
    assert error.value.field == field


def test_weekly_recurrence_keeps_the_wall_clock_across_dst() -> None:
    plan = sched.parse_schedule("2027-03-22T09:00", "Europe/Paris", "FREQ=WEEKLY;COUNT=3", NOW)
    times = list(sched.occurrences(plan, datetime(2028, 1, 1, tzinfo=UTC)))
    # Paris moves from UTC+1 to UTC+2 on 28 March 2027.
    assert [t.hour for t in times] == [8, 7, 7]
    assert not sched.finished(plan, times[1]) and sched.finished(plan, times[2])


def scheduled(rule: str = "") -> publish_pb2.PostState:
    plan = sched.parse_schedule("2026-11-20T10:00", "UTC", rule, NOW)
    return workflow.schedule_post(approved_post(), plan, PUBLISHER, POLICY, CHANNELS, REDIRECT, NOW)


def record(
    post: publish_pb2.PostState,
    planned: sched.PlannedDelivery,
    state: outbox.DeliveryState,
    at: datetime,
    **fields: Any,
) -> publish_pb2.PostState:
    """``post`` after the outbox put ``planned`` in ``state``."""
    delivery = replace(outbox.new_delivery(planned.delivery_id, planned.channel, at), state=state)
    delivery = replace(delivery, **fields)
    return workflow.record_delivery(
        post, from_outbox(delivery, planned.language, planned.due_at), at
    )


def test_deliveries_are_due_once_and_never_after_being_recorded() -> None:
    post = scheduled()
    assert post.status == publish_pb2.POST_STATUS_SCHEDULED
    assert sched.due_deliveries(post, NOW) == []
    later = NOW + timedelta(hours=1)
    due = sched.due_deliveries(post, later)
    assert sorted((d.language, d.channel) for d in due) == [
        ("en", "site-atom"),
        ("fr", "site-atom"),
    ]
    post = record(post, due[0], "sending", later, attempts=1)
    assert post.transition.action == "delivery_sending"
    assert [d.delivery_id for d in sched.in_flight(post, later)] == [due[0].delivery_id]
    assert [d.delivery_id for d in sched.due_deliveries(post, later)] == [due[1].delivery_id]
    at = later + timedelta(seconds=1)
    for planned, item in ((due[0], "urn:x"), (due[1], "urn:y")):
        post = record(
            post,
            planned,
            "delivered",
            at,
            channel_item_id=item,
            url=f"https://u/{item}",
            published_at=at,
        )
    assert sched.due_deliveries(post, at) == [] and sched.in_flight(post, at) == []
    assert post.status == publish_pb2.POST_STATUS_PUBLISHED
    assert post.transition.action == "delivery_published"
    publication = publication_for(post, post.deliveries[0])
    assert (publication.channel_item_id, publication.url) == ("urn:x", "https://u/urn:x")


def test_a_pending_retry_waits_for_its_backoff() -> None:
    later = NOW + timedelta(hours=1)
    post = scheduled()
    first, _ = sched.due_deliveries(post, later)
    wait = later + timedelta(minutes=5)
    post = record(post, first, "pending", later, attempts=1, next_attempt_at=wait)
    assert first not in sched.due_deliveries(post, later)
    assert first in sched.due_deliveries(post, wait)


def test_a_failed_delivery_is_visible_can_be_retried_or_cancelled() -> None:
    later = NOW + timedelta(hours=1)
    post = scheduled()
    first, second = sched.due_deliveries(post, later)
    post = record(post, first, "failed", later, attempts=6, reason="feed not writable")
    assert post.status == publish_pb2.POST_STATUS_FAILED
    assert post.deliveries[0].reason == "feed not writable"
    with pytest.raises(AccessDenied):
        workflow.retry_delivery(post, first.delivery_id, EDITOR, POLICY, later)
    post = workflow.retry_delivery(post, first.delivery_id, PUBLISHER, POLICY, later)
    assert post.transition.action == "retry" and post.transition.user == "omar"
    assert post.deliveries[0].attempts == 0
    assert post.status == publish_pb2.POST_STATUS_SCHEDULED
    assert first.delivery_id in {d.delivery_id for d in sched.due_deliveries(post, later)}
    with pytest.raises(Conflict, match="only failed or needs-check"):
        workflow.retry_delivery(post, first.delivery_id, PUBLISHER, POLICY, later)
    post = workflow.cancel_delivery(post, second.delivery_id, PUBLISHER, POLICY, later)
    assert second.delivery_id not in {d.delivery_id for d in sched.due_deliveries(post, later)}
    with pytest.raises(InvalidPost) as error:
        workflow.cancel_delivery(post, "nope", PUBLISHER, POLICY, later)
    assert error.value.field == "delivery_id"


def test_a_delivery_being_sent_or_published_cannot_be_cancelled() -> None:
    later = NOW + timedelta(hours=1)
    post = scheduled()
    first, second = sched.due_deliveries(post, later)
    post = record(post, first, "sending", later)
    post = record(post, second, "delivered", later)
    for planned in (first, second):
        with pytest.raises(Conflict):
            workflow.cancel_delivery(post, planned.delivery_id, PUBLISHER, POLICY, later)


def test_a_delivery_needing_a_check_fails_the_post_until_someone_acts() -> None:
    later = NOW + timedelta(hours=1)
    post = scheduled()
    first, _ = sched.due_deliveries(post, later)
    post = record(post, first, "needs-check", later, reason="interrupted while sending")
    assert post.status == publish_pb2.POST_STATUS_FAILED
    assert post.deliveries[0].status == publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
    post = workflow.cancel_delivery(post, first.delivery_id, PUBLISHER, POLICY, later)
    assert post.status == publish_pb2.POST_STATUS_SCHEDULED


def test_a_delivery_needing_a_check_found_on_the_channel_is_confirmed_published() -> None:
    later = NOW + timedelta(hours=1)
    post = scheduled()
    first, second = sched.due_deliveries(post, later)
    post = record(post, first, "needs-check", later, reason="interrupted while sending")
    post = record(post, second, "delivered", later, channel_item_id="urn:y", published_at=later)
    confirm = workflow.confirm_delivery
    with pytest.raises(AccessDenied):
        confirm(post, first.delivery_id, "42", "", EDITOR, POLICY, later)
    with pytest.raises(InvalidPost) as missing:
        confirm(post, first.delivery_id, " ", "", PUBLISHER, POLICY, later)
    assert missing.value.field == "channel_item_id"
    with pytest.raises(InvalidPost) as bad_url:
        confirm(post, first.delivery_id, "42", "t.me/news/42", PUBLISHER, POLICY, later)
    assert bad_url.value.field == "url"
    with pytest.raises(InvalidPost) as unknown:
        confirm(post, "nope", "42", "", PUBLISHER, POLICY, later)
    assert unknown.value.field == "delivery_id"
    # Only a delivery needing a check: a published one is not confirmed again.
    with pytest.raises(Conflict):
        confirm(post, second.delivery_id, "42", "", PUBLISHER, POLICY, later)
    post = confirm(post, first.delivery_id, "42", "https://t.me/news/42", PUBLISHER, POLICY, later)
    assert (post.transition.action, post.transition.user) == ("confirm", "omar")
    confirmed = post.deliveries[0]
    assert confirmed.status == publish_pb2.DELIVERY_STATUS_PUBLISHED and not confirmed.reason
    assert (confirmed.channel_item_id, confirmed.url) == ("42", "https://t.me/news/42")
    assert post.status == publish_pb2.POST_STATUS_PUBLISHED
    assert sched.due_deliveries(post, later) == [] and sched.in_flight(post, later) == []


def test_a_daily_post_goes_on_past_the_expansion_cap_and_its_record_stays_small(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real figures (1000 occurrences per window, 24 kept) scaled down to stay fast.
    monkeypatch.setattr(sched, "MAX_OCCURRENCES", 40)
    monkeypatch.setattr(sched, "KEEP_SETTLED_OCCURRENCES", 5)
    post = scheduled("FREQ=DAILY")
    day = timedelta(days=1)
    at = NOW + timedelta(hours=1)
    sizes = []
    for n in range(120):
        due = sched.due_deliveries(post, at)
        # Every day's two variants are due, also past the expansion cap.
        assert len(due) == 2, n
        for planned in due:
            post = record(post, planned, "delivered", at, channel_item_id=f"urn:{n}")
        sizes.append(post.ByteSize())
        at += day
    keep = sched.KEEP_SETTLED_OCCURRENCES
    assert len(post.deliveries) == 2 * keep
    assert post.settled_until.ToDatetime(tzinfo=UTC) == at - keep * day
    assert max(sizes[-50:]) <= max(sizes[keep : keep + 50]) + 50  # no longer grows
    assert post.status == publish_pb2.POST_STATUS_SCHEDULED
    # Nothing dropped is due again, and the calendar still finds far-off days.
    assert len(sched.due_deliveries(post, at)) == 2
    far = at + 100 * day
    assert sched.in_range(post, far - timedelta(hours=1), far + timedelta(hours=1))
    assert not sched.in_range(post, far + timedelta(hours=1), far + timedelta(hours=2))
    # Occurrences before the settled past are still in the calendar.
    first = NOW + timedelta(hours=1)
    assert sched.in_range(post, None, first + timedelta(minutes=1))
    assert sched.in_range(post, first, first + timedelta(minutes=1))


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR",
        "FREQ=MONTHLY",
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1",
        "FREQ=DAILY;BYHOUR=9,17",
        "FREQ=WEEKLY;WKST=SU;INTERVAL=3;BYDAY=SU,SA",
    ],
)
@pytest.mark.parametrize("zone", ["Europe/Paris", "Australia/Lord_Howe"])
def test_expanding_from_a_settled_occurrence_gives_the_same_occurrences(
    rule: str, zone: str
) -> None:
    schedule = sched.parse_schedule("2027-01-31T09:30", zone, rule, NOW)
    until = NOW + timedelta(days=800)  # across daylight-saving changes
    every = list(sched.occurrences(schedule, until))
    assert len(every) >= 10
    for k in (3, len(every) // 2):
        settled = every[k]
        again = list(sched.occurrences(schedule, until, settled, settled))
        # Both stop after MAX_OCCURRENCES, counted from where each started.
        assert again[: len(every) - k] == every[k:]
        assert sched.finished(schedule, settled, settled) is False


def test_an_unsettled_occurrence_stops_the_pruning_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sched, "KEEP_SETTLED_OCCURRENCES", 5)
    post = scheduled("FREQ=DAILY")
    at = NOW + timedelta(hours=1)
    first = sched.due_deliveries(post, at)
    post = record(post, first[0], "failed", at, reason="credentials")
    post = record(post, first[1], "delivered", at)
    for n in range(1, 10):
        for planned in sched.due_deliveries(post, at + timedelta(days=n)):
            post = record(post, planned, "delivered", at)
    # The failed delivery keeps every later record until someone retries or cancels it.
    assert not post.HasField("settled_until") and len(post.deliveries) == 20
    post = workflow.cancel_delivery(post, first[0].delivery_id, PUBLISHER, POLICY, at)
    assert len(post.deliveries) == 2 * sched.KEEP_SETTLED_OCCURRENCES
    assert post.status == publish_pb2.POST_STATUS_SCHEDULED


def test_calendar_range_uses_occurrences() -> None:
    post = scheduled("FREQ=DAILY;COUNT=3")
    day = timedelta(days=1)
    assert sched.in_range(post, NOW + 2 * day, NOW + 3 * day)
    assert not sched.in_range(post, NOW + 3 * day, NOW + 9 * day)


# -------------------------------------------------------------------------------- CSV


def test_csv_import_creates_drafts() -> None:
    text = (
        "request_id,campaign_id,title,body,language,channels\n"
        "a,plastics-2026,Title A,Body A,en,site-atom\n"
        'b,plastics-2026,"Title, B",Body B,fr,\n'
    )
    posts = parse_csv(text, EDITOR, POLICY, CHANNELS, ["site-atom"], NOW)
    assert [(p.request_id, p.variants[0].title, p.variants[0].language) for p in posts] == [
        ("a", "Title A", "en"),
        ("b", "Title, B", "fr"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("request_id,campaign_id,title\na,b,c\n", "row 1: missing the column(s) body"),
        ("request_id,campaign_id,title,body,colour\n", "row 1, column colour"),
        (
            "request_id,campaign_id,title,body\na,c,t,b\nb,c,,b\n",
            "row 3, column title: is required",
        ),
        (
            "request_id,campaign_id,title,body,language\na,c,t,b,english!\n",
            "row 2, column language",
        ),
        ("request_id,campaign_id,title,body\na,c,t,b\na,c,t,b\n", "row 3, column request_id"),
        ("request_id,campaign_id,title,body,channels\na,c,t,b,fax\n", "row 2, column channels"),
    ],
)
def test_csv_errors_name_row_and_column(text: str, message: str) -> None:
    with pytest.raises(InvalidPost) as error:
        parse_csv(text, EDITOR, POLICY, CHANNELS, ["site-atom"], NOW)
    assert error.value.field == "csv"
    assert message in str(error.value)
