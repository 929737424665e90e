"""Lenient readers of the numbers and times OpenStack APIs send, shared by the gateways."""

from __future__ import annotations

from datetime import UTC, datetime


def as_int(value: object, default: int = 0) -> int:
    """An integer field, or `default` when it is missing or not a number."""
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return default


def utc_time(raw: object) -> datetime | None:
    """An ISO 8601 time as a UTC-aware datetime; services that write naive times mean UTC
    (Nova writes `2026-09-01T10:00:00.000000`). None when missing or unreadable."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
