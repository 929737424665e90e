"""Which exports of an instance to keep (pure): the newest N, and/or one per day, ISO week, month (GFS)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from stackyard.errors import ValidationError


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None

    def __post_init__(self) -> None:
        for name in ("keep_last", "daily", "weekly", "monthly"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValidationError(name, f"must not be negative, got {value}")

    @property
    def is_empty(self) -> bool:
        """Nothing set: keep everything."""
        return all(getattr(self, n) is None for n in ("keep_last", "daily", "weekly", "monthly"))


@dataclass(frozen=True)
class ExportRef:
    id: str
    created_at: datetime


@dataclass(frozen=True)
class RetentionPlan:
    keep: tuple[ExportRef, ...]
    delete: tuple[ExportRef, ...]
    reasons: Mapping[str, tuple[str, ...]]  # kept export id -> why, e.g. ("last 3", "daily 2026-11-20")


def _buckets(
    ordered: list[ExportRef], count: int | None, label: str, key: Callable[[datetime], str]
) -> dict[str, str]:
    """The newest export of each of the `count` most recent periods that have one: id -> reason."""
    chosen: dict[str, str] = {}
    if not count:
        return chosen
    seen: set[str] = set()
    for ref in ordered:
        period = key(ref.created_at)
        if period in seen:
            continue
        seen.add(period)
        chosen[ref.id] = f"{label} {period}"
        if len(seen) == count:
            break
    return chosen


def plan_retention(exports: Iterable[ExportRef], policy: RetentionPolicy) -> RetentionPlan:
    """Newest first in both lists; ties in time are ordered by id so plans are deterministic."""
    ordered = sorted(exports, key=lambda ref: (ref.created_at, ref.id), reverse=True)
    if policy.is_empty:
        return RetentionPlan(tuple(ordered), (), {ref.id: ("no retention policy",) for ref in ordered})
    reasons: dict[str, list[str]] = {}
    if policy.keep_last:
        for ref in ordered[: policy.keep_last]:
            reasons.setdefault(ref.id, []).append(f"last {policy.keep_last}")
    rules: tuple[tuple[int | None, str, Callable[[datetime], str]], ...] = (
        (policy.daily, "daily", lambda t: t.strftime("%Y-%m-%d")),
        (policy.weekly, "weekly", lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
        (policy.monthly, "monthly", lambda t: t.strftime("%Y-%m")),
    )
    for count, label, key in rules:
        for export_id, reason in _buckets(ordered, count, label, key).items():
            reasons.setdefault(export_id, []).append(reason)
    keep = tuple(ref for ref in ordered if ref.id in reasons)
    delete = tuple(ref for ref in ordered if ref.id not in reasons)
    return RetentionPlan(keep, delete, {k: tuple(v) for k, v in reasons.items()})


_GFS_PART = re.compile(r"^(\d+)([dwm])$")


def parse_retention(keep_last: int | None, gfs: str | None) -> RetentionPolicy:
    """`keep_last` and a GFS text such as "7d,4w,12m" (any subset, any order)."""
    counts: dict[str, int] = {}
    for part in (gfs or "").replace(" ", "").split(","):
        if not part:
            continue
        match = _GFS_PART.match(part.lower())
        if match is None:
            raise ValidationError(
                "gfs", f"expected counts such as 7d,4w,12m (days, weeks, months), got {gfs!r}"
            )
        unit = {"d": "daily", "w": "weekly", "m": "monthly"}[match.group(2)]
        if unit in counts:
            raise ValidationError("gfs", f"{unit} is given twice in {gfs!r}")
        counts[unit] = int(match.group(1))
    return RetentionPolicy(keep_last=keep_last, **counts)
