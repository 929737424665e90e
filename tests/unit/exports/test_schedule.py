"""Cron schedules: syntax, the day-of-month/day-of-week OR rule, leap days, macros, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.errors import ValidationError
from stackyard.exports.schedule import CronSchedule


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-11-22T10:07", "2026-11-22T10:15"),
        ("0 2 * * *", "2026-11-22T02:00", "2026-11-23T02:00"),
        ("30 1-3/2 * * *", "2026-11-22T01:30", "2026-11-22T03:30"),
        ("0 0 1,15 * *", "2026-11-02T00:00", "2026-11-15T00:00"),
        ("0 9 * * mon-fri", "2026-11-21T10:00", "2026-11-23T09:00"),  # Saturday -> Monday
        ("0 0 * jan,jul *", "2026-11-22T00:00", "2027-01-01T00:00"),
        ("0 0 29 2 *", "2027-03-01T00:00", "2028-02-29T00:00"),
        ("0 12 * * 0", "2026-11-22T12:00", "2026-11-29T12:00"),
        ("0 12 * * 7", "2026-11-22T12:00", "2026-11-29T12:00"),  # 7 is Sunday too
        ("@daily", "2026-12-31T23:59", "2027-01-01T00:00"),
        ("@hourly", "2026-11-22T10:00", "2026-11-22T11:00"),
        ("@weekly", "2026-11-22T10:00", "2026-11-29T00:00"),
        ("@monthly", "2026-11-22T10:00", "2026-12-01T00:00"),
    ],
)
def test_next_after(expression: str, after: str, expected: str) -> None:
    assert CronSchedule.parse(expression).next_after(utc(after)) == utc(expected)


def test_restricted_day_of_month_and_week_match_either() -> None:
    # The 13th, or any Friday: from Saturday 2026-11-14 the next is Friday the 20th.
    schedule = CronSchedule.parse("0 0 13 * fri")
    assert schedule.next_after(utc("2026-11-14T00:00")) == utc("2026-11-20T00:00")
    assert schedule.next_after(utc("2026-11-27T00:00")) == utc("2026-12-04T00:00")


def test_is_due_only_after_a_first_run_and_a_fire_time_since() -> None:
    schedule = CronSchedule.parse("0 2 * * *")
    assert not schedule.is_due(None, utc("2026-11-22T03:00"))
    assert schedule.is_due(utc("2026-11-22T01:59"), utc("2026-11-22T02:00"))
    assert not schedule.is_due(utc("2026-11-22T02:00"), utc("2026-11-23T01:59"))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 25 * * *", "hour: 25 is out of range 0-23"),
        ("* * *", "expected 5 fields"),
        ("*/0 * * * *", "minute: step '0'"),
        ("0 0 * foo *", "month: 'foo'"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 1,,2 * *", "empty list item"),
    ],
)
def test_bad_expressions_are_refused_naming_the_field(expression: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        CronSchedule.parse(expression)
    assert caught.value.field == "schedule"


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["*/7 * * * *", "0 */5 * * *", "15 3 * * 1-5", "0 0 1,10,20 * *", "30 4 * * sun"]),
    st.integers(min_value=0, max_value=2 * 365 * 24 * 60),
)
def test_next_after_is_the_first_matching_minute(expression: str, minutes: int) -> None:
    schedule = CronSchedule.parse(expression)
    moment = utc("2026-01-01T00:00") + timedelta(minutes=minutes)
    found = schedule.next_after(moment)
    assert found > moment and schedule.matches(found)
    probe = moment + timedelta(minutes=1)
    while probe < found and probe - moment < timedelta(days=2):  # brute force over a bounded window
        assert not schedule.matches(probe), probe
        probe += timedelta(minutes=1)
