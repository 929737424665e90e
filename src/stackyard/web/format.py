"""Numbers as people read them on the dashboard: bytes, rates, durations, money, percentages (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float | int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover - the loop always returns


def human_rate(value: float | None) -> str:
    return "-" if value is None else f"{human_bytes(value)}/s"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def money(value: Decimal | str | None, currency: str = "") -> str:
    if value is None:
        return "-"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = f"{amount.quantize(Decimal('0.01')):,}" if abs(amount) >= 1 else f"{amount.normalize():f}"
    return f"{text} {currency}".strip()


def percent(done: float | int | None, total: float | int | None) -> int:
    """0-100 for a bar; 0 when the total is unknown or zero."""
    if done is None or not total or total <= 0:
        return 0
    return max(0, min(100, int(100 * float(done) / float(total))))


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
