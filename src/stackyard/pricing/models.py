"""Price book and estimate models and the arithmetic on them (pure: no framework, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

HOURS_PER_MONTH = Decimal(730)  # 365 days * 24 h / 12, the convention public clouds bill by
ANY_REGION = "*"  # a price book region entry that applies where no region-specific entry exists


class Unit(StrEnum):
    """A priced resource unit. Hourly units accrue per hour; monthly ones per 730 hours."""

    VCPU_HOUR = "vcpu_hour"
    RAM_GIB_HOUR = "ram_gib_hour"
    ROOT_DISK_GIB_MONTH = "root_disk_gib_month"
    VOLUME_GIB_MONTH = "volume_gib_month"
    FLOATING_IP_HOUR = "floating_ip_hour"
    OBJECT_GIB_MONTH = "object_gib_month"

    @property
    def is_monthly(self) -> bool:
        return self.value.endswith("_month")


@dataclass(frozen=True)
class RegionPrices:
    """Prices of one region: a flat hourly price per flavor name, and/or prices per resource unit.

    A flavor with a flat price is charged that price for compute (vCPU, RAM, root disk); otherwise
    it is charged per unit. Volumes, floating IPs and object storage are always charged per unit.
    """

    flavors: Mapping[str, Decimal] = field(default_factory=dict)
    units: Mapping[Unit, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class PriceBook:
    version: int
    currency: str
    regions: Mapping[str, RegionPrices]

    def prices_for(self, region: str | None) -> RegionPrices | None:
        if region is not None and region in self.regions:
            return self.regions[region]
        return self.regions.get(ANY_REGION)


@dataclass(frozen=True)
class InstanceSize:
    """What an instance consumes, as far as prices go."""

    flavor: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    volume_gib: int = 0
    floating_ips: int = 0


@dataclass(frozen=True)
class LineItem:
    description: str
    unit: str  # a Unit value, or "flavor_hour" for a flat flavor price
    quantity: Decimal
    unit_price: Decimal
    hourly: Decimal
    monthly: Decimal


@dataclass(frozen=True)
class Estimate:
    currency: str
    price_book_version: int
    region: str | None
    count: int
    hourly: Decimal
    monthly: Decimal
    line_items: Sequence[LineItem]


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001"))


def _line(description: str, unit: str, quantity: Decimal, price: Decimal, *, monthly_unit: bool) -> LineItem:
    if monthly_unit:
        monthly = quantity * price
        hourly = monthly / HOURS_PER_MONTH
    else:
        hourly = quantity * price
        monthly = hourly * HOURS_PER_MONTH
    return LineItem(description, unit, quantity, price, _money(hourly), _money(monthly))


def estimate_instance(book: PriceBook, region: str | None, size: InstanceSize, count: int = 1) -> Estimate:
    """Hourly and monthly cost of `count` instances of `size` in `region`.

    Raises LookupError when the book prices neither the region nor ANY_REGION, or when the flavor
    has no flat price and the compute units it needs are not priced (the caller names the field).
    """
    prices = book.prices_for(region)
    if prices is None:
        raise LookupError(f"the price book (version {book.version}) has no prices for region {region!r}")
    n = Decimal(count)
    items: list[LineItem] = []
    flat = prices.flavors.get(size.flavor)
    if flat is not None:
        items.append(_line(f"flavor {size.flavor}", "flavor_hour", n, flat, monthly_unit=False))
    else:
        needed = (
            (Unit.VCPU_HOUR, Decimal(size.vcpus), "vCPU"),
            (Unit.RAM_GIB_HOUR, Decimal(size.ram_mib) / 1024, "GiB RAM"),
            (Unit.ROOT_DISK_GIB_MONTH, Decimal(size.disk_gib), "GiB root disk"),
        )
        for unit, quantity, label in needed:
            if quantity == 0:
                continue
            if unit not in prices.units:
                raise LookupError(
                    f"flavor {size.flavor!r} has no flat price and {unit.value} is not priced"
                    f" for region {region!r}"
                )
            items.append(
                _line(label, unit.value, quantity * n, prices.units[unit], monthly_unit=unit.is_monthly)
            )
    extras = (
        (Unit.VOLUME_GIB_MONTH, Decimal(size.volume_gib), "GiB volume"),
        (Unit.FLOATING_IP_HOUR, Decimal(size.floating_ips), "floating IP"),
    )
    for unit, quantity, label in extras:
        if quantity == 0:
            continue
        if unit not in prices.units:
            raise LookupError(f"{unit.value} is not priced for region {region!r}")
        items.append(_line(label, unit.value, quantity * n, prices.units[unit], monthly_unit=unit.is_monthly))
    return Estimate(
        currency=book.currency,
        price_book_version=book.version,
        region=region,
        count=count,
        hourly=_money(sum((i.hourly for i in items), Decimal(0))),
        monthly=_money(sum((i.monthly for i in items), Decimal(0))),
        line_items=items,
    )
