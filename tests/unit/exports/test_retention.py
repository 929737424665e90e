"""Retention plans: keep-last, GFS buckets across month and year ends, ISO week 53, ties, parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackyard.errors import ValidationError
from stackyard.exports.retention import ExportRef, RetentionPolicy, parse_retention, plan_retention


def at(text: str, export_id: str | None = None) -> ExportRef:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return ExportRef(export_id or text, moment)


def kept(refs: list[ExportRef], policy: RetentionPolicy) -> list[str]:
    return [ref.id for ref in plan_retention(refs, policy).keep]


def test_keep_last_keeps_the_newest_n_newest_first() -> None:
    refs = [at(f"2026-11-{d:02d}T02:00") for d in range(1, 11)]
    plan = plan_retention(refs, RetentionPolicy(keep_last=3))
    assert [r.id for r in plan.keep] == ["2026-11-10T02:00", "2026-11-09T02:00", "2026-11-08T02:00"]
    assert len(plan.delete) == 7 and plan.delete[0].id == "2026-11-07T02:00"
    assert plan.reasons["2026-11-10T02:00"] == ("last 3",)


def test_daily_keeps_the_newest_of_each_recent_day() -> None:
    refs = [at("2026-11-20T01:00"), at("2026-11-20T23:00"), at("2026-11-19T05:00"), at("2026-11-17T05:00")]
    assert kept(refs, RetentionPolicy(daily=2)) == ["2026-11-20T23:00", "2026-11-19T05:00"]


def test_gfs_spans_month_and_year_ends() -> None:
    refs = [at("2027-01-02T00:00"), at("2026-12-31T23:59"), at("2026-12-01T00:00"), at("2026-11-30T12:00")]
    plan = plan_retention(refs, RetentionPolicy(monthly=3))
    assert [r.id for r in plan.keep] == ["2027-01-02T00:00", "2026-12-31T23:59", "2026-11-30T12:00"]
    assert plan.reasons["2026-12-31T23:59"] == ("monthly 2026-12",)
    assert [r.id for r in plan.delete] == ["2026-12-01T00:00"]


def test_weekly_uses_iso_weeks_including_week_53() -> None:
    # 2026-12-31 is in ISO week 2026-W53; 2027-01-04 starts 2027-W01.
    refs = [at("2027-01-04T00:00"), at("2027-01-03T00:00"), at("2026-12-28T00:00"), at("2026-12-27T00:00")]
    plan = plan_retention(refs, RetentionPolicy(weekly=2))
    assert [r.id for r in plan.keep] == ["2027-01-04T00:00", "2027-01-03T00:00"]
    assert plan.reasons["2027-01-03T00:00"] == ("weekly 2026-W53",)


def test_rules_combine_and_an_export_kept_twice_has_both_reasons() -> None:
    refs = [at(f"2026-11-{d:02d}T02:00") for d in range(1, 31)]
    plan = plan_retention(refs, RetentionPolicy(keep_last=2, daily=3, weekly=2, monthly=1))
    assert plan.reasons["2026-11-30T02:00"] == (
        "last 2",
        "daily 2026-11-30",
        "weekly 2026-W49",
        "monthly 2026-11",
    )
    assert [r.id for r in plan.keep] == ["2026-11-30T02:00", "2026-11-29T02:00", "2026-11-28T02:00"]


def test_ties_are_ordered_by_id() -> None:
    same = "2026-11-20T02:00"
    refs = [at(same, "b"), at(same, "a"), at(same, "c")]
    assert kept(refs, RetentionPolicy(keep_last=1)) == ["c"]


def test_an_empty_policy_keeps_everything() -> None:
    refs = [at("2026-11-20T02:00"), at("2026-11-21T02:00")]
    plan = plan_retention(refs, RetentionPolicy())
    assert len(plan.keep) == 2 and plan.delete == ()


def test_parse_retention_reads_gfs_counts_in_any_order() -> None:
    assert parse_retention(3, " 12m, 7d,4w ") == RetentionPolicy(keep_last=3, daily=7, weekly=4, monthly=12)
    assert parse_retention(None, None) == RetentionPolicy()


@pytest.mark.parametrize("text", ["7x", "d7", "7d,7d", "7d;4w", "-1d"])
def test_bad_gfs_text_names_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_retention(None, text)
    assert caught.value.field == "gfs"


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        RetentionPolicy(keep_last=-1)
    assert caught.value.field == "keep_last"


@given(
    st.lists(st.integers(min_value=0, max_value=3 * 365 * 24), max_size=60),
    st.none() | st.integers(0, 5),
    st.none() | st.integers(0, 5),
    st.none() | st.integers(0, 5),
)
def test_keep_and_delete_partition_the_exports(
    hours: list[int], last: int | None, daily: int | None, weekly: int | None
) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    refs = [ExportRef(f"e{i}", base + timedelta(hours=h)) for i, h in enumerate(hours)]
    plan = plan_retention(refs, RetentionPolicy(keep_last=last, daily=daily, weekly=weekly))
    assert {r.id for r in plan.keep} | {r.id for r in plan.delete} == {r.id for r in refs}
    assert not {r.id for r in plan.keep} & {r.id for r in plan.delete}
    assert set(plan.reasons) == {r.id for r in plan.keep}
