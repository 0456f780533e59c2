"""The demo's generated week: deterministic, shaped like a campaign, cut in time order."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from legation_devstack import campaign_week
from legation_devstack.localdata import demo_record, mark_replayed, reset_data

END = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_the_same_seed_gives_the_same_week_and_another_seed_another() -> None:
    assert campaign_week.week(END, 500) == campaign_week.week(END, 500)
    assert campaign_week.week(END, 500) != campaign_week.week(END, 500, seed=7)


def test_a_week_has_languages_platforms_questions_and_a_spike() -> None:
    items = campaign_week.week(END, 3000)
    assert len(items) == 3000
    assert [i.at for i in items] == sorted(i.at for i in items)
    assert END - timedelta(days=7) <= items[0].at and items[-1].at <= END
    assert set(Counter(i.language for i in items)) == set(campaign_week.LANGUAGES)
    assert set(Counter(i.platform for i in items)) == set(campaign_week.PLATFORMS)
    assert 150 < sum(i.question for i in items) < 350
    per_hour = Counter((i.at - items[0].at) // timedelta(hours=1) for i in items)
    busiest = max(per_hour, key=lambda hour: per_hour[hour])
    assert per_hour[busiest] > 3 * sorted(per_hour.values())[len(per_hour) // 2]


def test_slices_keep_every_item_in_order() -> None:
    items = campaign_week.week(END, 400)
    parts = campaign_week.slices(items, 28)
    assert len(parts) == 28
    assert [i for part in parts for i in part] == items


def test_stream_gives_rate_times_seconds_items() -> None:
    items = list(campaign_week.stream(END, 50, 4))
    assert len(items) == 200
    assert items[-1].at - items[0].at < timedelta(seconds=4)


def test_answered_picks_the_same_share_whatever_the_order() -> None:
    ids = [f"c{n}" for n in range(10)]
    chosen = campaign_week.answered(ids)
    assert len(chosen) == 6
    assert campaign_week.answered(list(reversed(ids))) == chosen


def test_the_demo_record_keeps_its_anchor_until_reset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = demo_record(data, END)
    assert demo_record(data, END + timedelta(days=3)) == first
    mark_replayed(data, first)
    assert demo_record(data, END + timedelta(days=3)).replayed
    assert reset_data(data) and not data.exists()
    assert demo_record(data, END + timedelta(days=3)).anchor == END + timedelta(days=3)
