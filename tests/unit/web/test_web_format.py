"""How the dashboard writes bytes, rates, durations, money and percentages (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from stackyard.web.format import human_bytes, human_duration, human_rate, money, percent, when


def test_bytes_and_rates_use_binary_units() -> None:
    assert human_bytes(None) == "-"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
    assert human_rate(54 * 1024**2) == "54.0 MiB/s"
    assert human_rate(None) == "-"


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert human_duration(None) == "-"
    assert human_duration(0.4) == "0 s"
    assert human_duration(75) == "1 min 15 s"
    assert human_duration(3 * 3600 + 120) == "3 h 02 min"
    assert human_duration(-5) == "0 s"


def test_money_keeps_small_prices_exact_and_rounds_large_ones() -> None:
    assert money(Decimal("0.020000"), "EUR") == "0.02 EUR"
    assert money("43.8", "EUR") == "43.80 EUR"
    assert money(Decimal("1234.5")) == "1,234.50"
    assert money(None) == "-"


def test_percent_is_bounded_and_zero_without_a_total() -> None:
    assert percent(5, 10) == 50
    assert percent(15, 10) == 100
    assert percent(3, 0) == 0 and percent(3, None) == 0 and percent(None, 10) == 0
    assert percent(-1, 10) == 0


def test_times_are_shown_in_utc() -> None:
    assert when(datetime(2026, 12, 3, 9, 15, tzinfo=UTC)) == "2026-12-03 09:15 UTC"
    assert when(None) == "-"
