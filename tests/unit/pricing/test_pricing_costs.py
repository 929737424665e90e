"""Cost arithmetic: estimates with line items, accrued cost since creation, per-project reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from stackyard.errors import ValidationError
from stackyard.pricing.models import (
    HOURS_PER_MONTH,
    InstanceSize,
    PriceBook,
    accrued_cost,
    cost_report,
    estimate_instance,
    parse_price_book,
)

BOOK = parse_price_book(
    {
        "currency": "EUR",
        "regions": {
            "RegionOne": {
                "flavors": {"m1.small": "0.02"},
                "units": {
                    "vcpu_hour": "0.01",
                    "ram_gib_hour": "0.005",
                    "root_disk_gib_month": "0.04",
                    "volume_gib_month": "0.05",
                    "floating_ip_hour": "0.004",
                },
            },
            "*": {"units": {"vcpu_hour": "0.02", "ram_gib_hour": "0.01"}},
            "flat-only": {"flavors": {"m1.small": "0.03"}},
        },
    },
    version=4,
)
SMALL = InstanceSize("m1.small", vcpus=1, ram_mib=2048, disk_gib=20)
MEDIUM = InstanceSize("m1.medium", vcpus=2, ram_mib=4096, disk_gib=40)
T0 = datetime(2026, 9, 1, tzinfo=UTC)


# -- estimates -----------------------------------------------------------------------------------


def test_flat_flavor_price_times_count() -> None:
    estimate = estimate_instance(BOOK, "RegionOne", SMALL, 3)
    assert (estimate.currency, estimate.price_book_version, estimate.count) == ("EUR", 4, 3)
    assert estimate.hourly == Decimal("0.06")
    assert estimate.monthly == Decimal("43.8")
    [item] = estimate.line_items
    assert (item.unit, item.quantity, item.unit_price) == ("flavor_hour", 3, Decimal("0.02"))


def test_units_price_a_flavor_without_flat_price() -> None:
    estimate = estimate_instance(BOOK, "RegionOne", MEDIUM, 2)
    items = {i.unit: i for i in estimate.line_items}
    assert items["vcpu_hour"].quantity == 4 and items["vcpu_hour"].hourly == Decimal("0.04")
    assert items["ram_gib_hour"].quantity == 8 and items["ram_gib_hour"].hourly == Decimal("0.04")
    disk = items["root_disk_gib_month"]
    assert disk.quantity == 80 and disk.monthly == Decimal("3.2")
    assert disk.hourly == (Decimal("3.2") / HOURS_PER_MONTH).quantize(Decimal("0.000001"))
    assert estimate.monthly == Decimal("0.08") * 730 + Decimal("3.2")


def test_volumes_and_floating_ips_are_extra_line_items() -> None:
    size = InstanceSize("m1.small", 1, 2048, 20, volume_gib=100, floating_ips=1)
    estimate = estimate_instance(BOOK, "RegionOne", size, 2)
    items = {i.unit: i for i in estimate.line_items}
    assert items["volume_gib_month"].monthly == Decimal("10")  # 2 x 100 GiB x 0.05
    assert items["floating_ip_hour"].hourly == Decimal("0.008")
    assert estimate.monthly == Decimal("0.04") * 730 + 10 + Decimal("0.008") * 730


def test_unknown_region_falls_back_to_any_region() -> None:
    estimate = estimate_instance(BOOK, "RegionTwo", InstanceSize("m1.small", 1, 1024, 0), 1)
    assert estimate.hourly == Decimal("0.03")  # 0.02 vCPU + 1 GiB x 0.01, no disk


def test_missing_prices_are_lookup_errors() -> None:
    no_region = PriceBook(version=1, currency="EUR", regions={"RegionOne": BOOK.regions["RegionOne"]})
    with pytest.raises(LookupError, match="no prices for region 'Elsewhere'"):
        estimate_instance(no_region, "Elsewhere", SMALL)
    with pytest.raises(LookupError, match="root_disk_gib_month is not priced"):
        estimate_instance(BOOK, "RegionTwo", MEDIUM)
    with pytest.raises(LookupError, match="volume_gib_month"):
        estimate_instance(BOOK, "flat-only", InstanceSize("m1.small", 1, 2048, 20, volume_gib=1))


# -- accrued cost --------------------------------------------------------------------------------


def test_accrued_cost_is_hourly_price_times_hours_existed() -> None:
    cost = accrued_cost(BOOK, "RegionOne", SMALL, T0, T0 + timedelta(hours=36, minutes=30))
    assert cost.hours == Decimal("36.5")
    assert cost.hourly == Decimal("0.02")
    assert cost.accrued == Decimal("0.73")
    assert cost.monthly == Decimal("14.6")  # 0.02 x 730
    assert (cost.currency, cost.price_book_version, cost.region) == ("EUR", 4, "RegionOne")
    assert cost.created_at == T0 and cost.until == T0 + timedelta(hours=36, minutes=30)


def test_accrued_cost_is_pro_rata_to_the_second_across_time_zones() -> None:
    created = datetime(2026, 9, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))  # 00:00 UTC
    cost = accrued_cost(BOOK, "RegionOne", SMALL, created, T0 + timedelta(seconds=90))
    assert cost.hours == Decimal("0.025")
    assert cost.accrued == Decimal("0.0005")


def test_accrued_cost_of_monthly_units_uses_the_exact_rate() -> None:
    # One GiB of root disk at 0.04 a month: exactly 0.04 after 730 hours, although the rounded
    # hourly line item (0.000055) would say 0.04015.
    size = InstanceSize("disk-only", vcpus=0, ram_mib=0, disk_gib=1)
    cost = accrued_cost(BOOK, "RegionOne", size, T0, T0 + timedelta(hours=730))
    assert cost.accrued == Decimal("0.04")
    assert cost.monthly == Decimal("0.04")


def test_accrued_cost_never_negative_and_needs_aware_times() -> None:
    assert accrued_cost(BOOK, "RegionOne", SMALL, T0, T0 - timedelta(hours=1)).accrued == 0
    with pytest.raises(ValidationError) as caught:
        accrued_cost(BOOK, "RegionOne", SMALL, datetime(2026, 9, 1), T0)
    assert caught.value.field == "created_at"
    with pytest.raises(LookupError):
        accrued_cost(BOOK, "RegionTwo", MEDIUM, T0, T0 + timedelta(hours=1))


# -- project reports -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    instance_id: str
    name: str
    flavor: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    hours: Decimal
    state: str = "active"


def test_report_prices_each_server_and_totals_them() -> None:
    usages = [
        Usage("a", "web", "m1.small", 1, 2048, 20, Decimal("10")),
        Usage("b", "db", "m1.medium", 2, 4096, 40, Decimal("730"), "stopped"),
        Usage("c", "gone", "m1.small", 1, 2048, 20, Decimal("0.5"), "terminated"),
    ]
    report = cost_report(BOOK, "RegionOne", usages, T0, T0 + timedelta(days=31))
    by_id = {line.instance_id: line for line in report.lines}
    assert by_id["a"].cost == Decimal("0.2") and by_id["a"].hourly == Decimal("0.02")
    # 730 h of 2 vCPU + 4 GiB RAM per hour, plus a month of 40 GiB root disk
    assert by_id["b"].cost == Decimal("0.04") * 730 + Decimal("1.6")
    assert by_id["b"].state == "stopped"
    assert by_id["c"].cost == Decimal("0.01")
    assert report.total == Decimal("0.2") + Decimal("30.8") + Decimal("0.01")
    assert report.total_hours == Decimal("740.5")
    assert [line.instance_id for line in report.lines] == ["b", "a", "c"]  # most expensive first
    assert report.unpriced == []
    assert (report.currency, report.price_book_version, report.region) == ("EUR", 4, "RegionOne")


def test_report_lists_unpriced_servers_instead_of_failing() -> None:
    usages = [
        Usage("a", "web", "m1.small", 1, 2048, 20, Decimal("2")),
        Usage("x", "big", "m1.xlarge", 8, 16384, 160, Decimal("5")),
    ]
    report = cost_report(BOOK, "flat-only", usages, T0, T0 + timedelta(days=1))
    assert [line.instance_id for line in report.lines] == ["a", "x"]  # unpriced last
    [unpriced] = report.unpriced
    assert unpriced.instance_id == "x" and unpriced.cost is None and unpriced.hourly is None
    assert unpriced.unpriced is not None and "m1.xlarge" in unpriced.unpriced
    assert unpriced.hours == 5
    assert report.total == Decimal("0.06")
    assert report.total_hours == 7


def test_report_of_no_servers_is_zero() -> None:
    report = cost_report(BOOK, None, [], T0, T0 + timedelta(hours=1))
    assert report.lines == [] and report.total == 0 and report.total_hours == 0


def test_report_rejects_unpriced_region_empty_period_and_naive_times() -> None:
    no_fallback = PriceBook(version=1, currency="EUR", regions={"RegionOne": BOOK.regions["RegionOne"]})
    with pytest.raises(LookupError):
        cost_report(no_fallback, "Elsewhere", [], T0, T0 + timedelta(hours=1))
    with pytest.raises(ValidationError) as caught:
        cost_report(BOOK, "RegionOne", [], T0, T0)
    assert caught.value.field == "end"
    with pytest.raises(ValidationError) as naive:
        cost_report(BOOK, "RegionOne", [], datetime(2026, 9, 1), T0 + timedelta(hours=1))
    assert naive.value.field == "start"


def test_negative_usage_hours_count_as_zero() -> None:
    report = cost_report(
        BOOK,
        "RegionOne",
        [Usage("a", "a", "m1.small", 1, 2048, 20, Decimal("-1"))],
        T0,
        T0 + timedelta(hours=1),
    )
    assert report.lines[0].cost == 0 and report.total == 0
