"""Cron expressions (pure): five fields, ranges, lists, steps, names, macros; the next time one fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stackyard.errors import ValidationError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: n for n, name in enumerate(_MONTH_NAMES, 1)}
_DAYS = {name: n for n, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, lowest, highest, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_SEARCH_DAYS = 5 * 366 + 1  # every valid expression fires within 5 years (Feb 29 at worst: 8)


def _number(text: str, field: str, names: dict[str, int], low: int, high: int) -> int:
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None:
        raise ValidationError("schedule", f"{field}: {text!r} is not a number or a known name")
    if not low <= value <= high:
        raise ValidationError("schedule", f"{field}: {value} is out of range {low}-{high}")
    return value


def _parse_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ValidationError("schedule", f"{field}: empty list item in {text!r}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValidationError("schedule", f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            left, _, right = base.partition("-")
            first, last = _number(left, field, names, low, high), _number(right, field, names, low, high)
            if first > last:
                raise ValidationError("schedule", f"{field}: range {base!r} runs backwards")
        else:
            first = _number(base, field, names, low, high)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 is folded into 0)
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        expanded = _MACROS.get(text.strip().lower(), text.strip())
        parts = expanded.split()
        if len(parts) != 5:
            raise ValidationError(
                "schedule",
                f"expected 5 fields (minute hour day month weekday) or a macro such as @daily, got {text!r}",
            )
        sets = [
            _parse_field(p, name, low, high, names)
            for p, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(0 if d == 7 else d for d in sets[4])
        schedule = cls(
            text=text.strip(),
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            days_restricted=parts[2] != "*",
            weekdays_restricted=parts[4] != "*",
        )
        schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # raises for one that never fires
        return schedule

    def __str__(self) -> str:
        return self.text

    def _day_matches(self, moment: datetime) -> bool:
        if moment.month not in self.months:
            return False
        in_days = moment.day in self.days
        in_weekdays = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays  # cron's rule: either restriction may match
        return in_days and in_weekdays

    def matches(self, moment: datetime) -> bool:
        """Whether the schedule fires in the minute of `moment` (UTC)."""
        at = moment.astimezone(UTC)
        return at.minute in self.minutes and at.hour in self.hours and self._day_matches(at)

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment` (UTC, whole minutes)."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for offset in range(_SEARCH_DAYS):
            candidate_day = day + timedelta(days=offset)
            if not self._day_matches(candidate_day):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    candidate = candidate_day.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
        raise ValidationError("schedule", f"{self.text!r} never fires")

    def is_due(self, last_run: datetime | None, now: datetime) -> bool:
        """A fire time lies in (last_run, now]; never before anything ran (the caller records `now`)."""
        if last_run is None:
            return False
        return self.next_after(last_run) <= now
