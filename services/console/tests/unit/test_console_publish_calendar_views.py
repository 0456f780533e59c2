"""The Publish calendar's view model (week and month, days in the embassy's time zone,
filters, previous and next) and the delivery actions by role and state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from legation.events.v1 import publish_pb2
from legation_console.domain import recurrence
from legation_console.domain.people import Person
from legation_console.domain.views import publish as views

PUBLISHER = Person("eddie", "Eddie", frozenset({"editor", "publisher", "viewer"}), frozenset())
APPROVER = Person("april", "April", frozenset({"approver", "viewer"}), frozenset())
TODAY = date(2026, 12, 9)  # a Wednesday


def scheduled(
    post_id: str,
    at: datetime,
    zone: str,
    status: publish_pb2.PostStatus.ValueType = publish_pb2.POST_STATUS_SCHEDULED,
    campaign: str = "plastics",
) -> publish_pb2.PostState:
    state = publish_pb2.PostState(
        post_id=post_id,
        status=status,
        campaign_id=campaign,
        channels=["site-atom", "mastodon"],
        variants=[publish_pb2.LanguageVariant(language="en", title=f"Title <{post_id}>")],
    )
    state.schedule.time_zone = zone
    state.schedule.start_at.FromDatetime(at)
    return state


def test_the_week_puts_a_post_on_its_embassys_day() -> None:
    # 23:30 UTC on Thursday is 08:30 on Friday in Tokyo and 17:30 on Thursday in Mexico City.
    at = datetime(2026, 12, 10, 23, 30, tzinfo=UTC)
    posts = [
        scheduled("tokyo", at, "Asia/Tokyo"),
        scheduled("mexico", at, "America/Mexico_City", publish_pb2.POST_STATUS_PUBLISHED),
        scheduled("draft", at, "UTC", publish_pb2.POST_STATUS_DRAFT),
    ]
    query = views.calendar_query({"day": "2026-12-09"}, TODAY)
    page = views.calendar_page(posts, query, TODAY)
    assert page.heading == "Week of 7 December 2026"
    assert len(page.weeks) == 1
    days = {day.iso: day for day in page.weeks[0]}
    assert [d.label for d in page.weeks[0]][:2] == ["Mon 7 Dec", "Tue 8 Dec"]
    thursday, friday = days["2026-12-10"], days["2026-12-11"]
    assert [(e.post_id, e.time, e.status) for e in thursday.entries] == [
        ("mexico", "17:30 America/Mexico_City", "Published")
    ]
    assert [(e.post_id, e.time, e.title) for e in friday.entries] == [
        ("tokyo", "08:30 Asia/Tokyo", "Title <tokyo>")
    ]
    assert days["2026-12-09"].today and not thursday.today
    assert page.summary == "2 scheduled or published posts"  # the draft is not on it
    assert page.previous == "view=week&day=2026-11-30"
    assert page.next == "view=week&day=2026-12-14"
    assert (page.previous_label, page.next_label) == (
        "Week of 30 November 2026",
        "Week of 14 December 2026",
    )


def test_the_month_fills_whole_weeks_and_keeps_the_filters() -> None:
    posts = [
        scheduled("a", datetime(2026, 12, 1, 9, tzinfo=UTC), "UTC"),
        scheduled("b", datetime(2026, 12, 1, 10, tzinfo=UTC), "UTC", campaign="oceans"),
    ]
    query = views.calendar_query(
        {"view": "month", "day": "2026-12-20", "campaign": "plastics", "channel": "bad value!"},
        TODAY,
    )
    assert (query.campaign, query.channel) == ("plastics", "")
    page = views.calendar_page(posts, query, TODAY)
    assert page.heading == "December 2026"
    assert page.weeks[0][0].iso == "2026-11-30" and not page.weeks[0][0].in_period
    assert page.weeks[-1][-1].iso == "2027-01-03"
    assert len(page.weeks) == 5
    assert [e.post_id for w in page.weeks for d in w for e in d.entries] == ["a"]
    assert page.previous == "view=month&day=2026-11-01&campaign=plastics"
    assert page.next == "view=month&day=2027-01-01&campaign=plastics"
    assert page.week_view == "view=week&day=2026-12-20&campaign=plastics"
    start, end = views.calendar_window(query)
    assert (start, end) == (
        datetime(2026, 11, 29, tzinfo=UTC),
        datetime(2027, 1, 5, tzinfo=UTC),
    )


def test_a_bad_query_falls_back_to_this_week() -> None:
    query = views.calendar_query({"view": "year", "day": "2026-02-31"}, TODAY)
    assert (query.view, query.day) == ("week", TODAY)


def delivery(status: publish_pb2.DeliveryStatus.ValueType) -> publish_pb2.Delivery:
    return publish_pb2.Delivery(
        delivery_id="d1", channel="telegram", language="en", status=status, reason="timed out"
    )


def test_delivery_actions_follow_state_and_role() -> None:
    needs_check = views.delivery_view(delivery(publish_pb2.DELIVERY_STATUS_NEEDS_CHECK), PUBLISHER)
    assert (needs_check.status, needs_check.reason) == ("Needs a check", "timed out")
    assert needs_check.can_retry and needs_check.can_cancel and needs_check.can_confirm
    failed = views.delivery_view(delivery(publish_pb2.DELIVERY_STATUS_FAILED), PUBLISHER)
    assert failed.can_retry and failed.can_cancel and not failed.can_confirm
    done = views.delivery_view(delivery(publish_pb2.DELIVERY_STATUS_PUBLISHED), PUBLISHER)
    assert not (done.can_retry or done.can_cancel or done.can_confirm)
    pending = views.delivery_view(delivery(publish_pb2.DELIVERY_STATUS_PENDING), PUBLISHER)
    assert pending.can_cancel and not pending.can_retry
    refused = views.delivery_view(delivery(publish_pb2.DELIVERY_STATUS_NEEDS_CHECK), APPROVER)
    assert not (refused.can_retry or refused.can_cancel or refused.can_confirm)


def test_an_image_needs_its_description() -> None:
    form = views.post_form_errors(
        views.PostForm(campaign="c", title="t", body="b", media_url="https://example.org/a.png")
    )
    assert form.error("media_alt") == "Describe the image for people who cannot see it"
    bad = views.post_form_errors(
        views.PostForm(campaign="c", title="t", body="b", media_url="javascript:x", media_alt="a")
    )
    assert bad.error("media_url") == "Enter the image's address, starting with https://"
    refused = views.with_service_error(
        views.PostForm(), "content.media[0].alt_text is required", translation=False
    )
    assert refused.error("media_alt") == "Content.media[0].alt_text is required"


def test_media_show_their_alt_text_and_only_safe_links() -> None:
    shown = views.media_views(
        [
            publish_pb2.MediaRef(url="https://example.org/a.png", kind="image", alt_text="A <b>"),
            publish_pb2.MediaRef(url="javascript:alert(1)", kind="image"),
        ]
    )
    assert [(m.kind, m.url, m.alt_text) for m in shown] == [
        ("image", "https://example.org/a.png", "A <b>"),
        ("image", None, "No description"),
    ]


def recurring(
    post_id: str, local_time: str, zone: str, rule: str, start_utc: datetime
) -> publish_pb2.PostState:
    state = scheduled(post_id, start_utc, zone)
    state.schedule.local_time = local_time
    state.schedule.rrule = rule
    return state


def test_a_weekly_post_keeps_its_wall_clock_across_the_daylight_saving_change() -> None:
    # Mondays at 09:00 in Madrid from 19 October 2026 (CEST, UTC+2); CET (UTC+1) from 25 October.
    post = recurring(
        "weekly",
        "2026-10-19T09:00:00",
        "Europe/Madrid",
        "FREQ=WEEKLY;BYDAY=MO",
        datetime(2026, 10, 19, 7, tzinfo=UTC),
    )
    found = recurrence.occurrences_between(
        post.schedule, datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    )
    assert found == recurrence.Occurrences(
        (
            datetime(2026, 10, 19, 7, tzinfo=UTC),
            datetime(2026, 10, 26, 8, tzinfo=UTC),
            datetime(2026, 11, 2, 8, tzinfo=UTC),
        )
    )


def test_occurrences_stop_at_the_rules_count_and_at_the_cap() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    counted = recurring("four", "2026-12-01T00:00:00", "UTC", "FREQ=DAILY;COUNT=4", start)
    found = recurrence.occurrences_between(counted.schedule, start, start + timedelta(days=30))
    assert len(found.times) == 4 and not found.capped
    hourly = recurring("hourly", "2026-12-01T00:00:00", "UTC", "FREQ=HOURLY", start)
    found = recurrence.occurrences_between(hourly.schedule, start, start + timedelta(days=30))
    assert len(found.times) == recurrence.MAX_SHOWN and found.capped
    assert found.times[-1] == start + timedelta(hours=recurrence.MAX_SHOWN - 1)
    # Far from its start, an unbounded rule is expanded from a known occurrence (the
    # post's settled past) instead of walked from its first.
    later = datetime(2046, 12, 1, tzinfo=UTC)
    far = recurrence.occurrences_between(hourly.schedule, later, later + timedelta(hours=3))
    assert far.times == ()  # more than MAX_WALKED hours away: given up, not hung on
    anchored = recurrence.occurrences_between(
        hourly.schedule, later, later + timedelta(hours=3), anchor=later - timedelta(hours=5)
    )
    assert anchored.times == tuple(later + timedelta(hours=h) for h in range(3))


def test_a_broken_rule_or_no_schedule_yields_nothing() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    broken = recurring("broken", "2026-12-01T00:00:00", "UTC", "FREQ=SOMETIMES", start)
    assert recurrence.occurrences_between(broken.schedule, start, start + timedelta(days=9)) == (
        recurrence.Occurrences(())
    )
    assert recurrence.occurrences_between(
        publish_pb2.PostSchedule(), start, start + timedelta(days=9)
    ) == recurrence.Occurrences(())


def test_the_month_shows_a_recurring_posts_future_occurrences_from_its_rule() -> None:
    # Every Friday at 09:00 in Nairobi (UTC+3) from 4 December; the first one went out.
    post = recurring(
        "fridays",
        "2026-12-04T09:00:00",
        "Africa/Nairobi",
        "FREQ=WEEKLY;BYDAY=FR",
        datetime(2026, 12, 4, 6, tzinfo=UTC),
    )
    delivered = post.deliveries.add(
        delivery_id="d1",
        channel="site-atom",
        language="en",
        status=publish_pb2.DELIVERY_STATUS_PUBLISHED,
    )
    delivered.due_at.FromDatetime(datetime(2026, 12, 4, 6, tzinfo=UTC))
    # A draft with a rule is not on the calendar at all.
    draft = recurring(
        "draft",
        "2026-12-04T09:00:00",
        "UTC",
        "FREQ=DAILY",
        datetime(2026, 12, 4, 9, tzinfo=UTC),
    )
    draft.status = publish_pb2.POST_STATUS_DRAFT
    now = datetime(2026, 12, 9, 12, tzinfo=UTC)
    query = views.calendar_query({"view": "month", "day": "2026-12-09"}, TODAY)
    page = views.calendar_page([post, draft], query, TODAY, now)
    entries = {
        day.iso: [(e.post_id, e.time, e.repeats) for e in day.entries]
        for week in page.weeks
        for day in week
        if day.entries
    }
    friday = ("fridays", "09:00 Africa/Nairobi")
    assert entries == {
        "2026-12-04": [(*friday, False)],  # delivered: recorded, not from the rule
        "2026-12-11": [(*friday, True)],
        "2026-12-18": [(*friday, True)],
        "2026-12-25": [(*friday, True)],
        "2027-01-01": [(*friday, True)],  # the month's last week runs into January
    }
    assert page.summary == "5 scheduled or published posts"
    assert not page.capped
    # The week after: only that week's Friday.
    week = views.calendar_page(
        [post], views.calendar_query({"day": "2026-12-16"}, TODAY), TODAY, now
    )
    assert [e.repeats for day in week.weeks[0] for e in day.entries] == [True]


def test_an_hourly_post_is_capped_in_the_month_but_whole_in_a_week() -> None:
    post = recurring(
        "hourly", "2026-12-01T00:00:00", "UTC", "FREQ=HOURLY", datetime(2026, 12, 1, tzinfo=UTC)
    )
    now = datetime(2026, 12, 1, tzinfo=UTC)
    month = views.calendar_page(
        [post], views.calendar_query({"view": "month", "day": "2026-12-09"}, TODAY), TODAY, now
    )
    assert month.capped
    week = views.calendar_page(
        [post], views.calendar_query({"day": "2026-12-09"}, TODAY), TODAY, now
    )
    assert not week.capped
    assert sum(len(day.entries) for day in week.weeks[0]) == 7 * 24
