"""Price book and estimate models and the arithmetic on them (pure: no framework, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Protocol

from stackyard.errors import ValidationError

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


# -- parsing and serialising price books -----------------------------------------------------------

MAX_PRICE = Decimal(10) ** 9  # per unit; anything near it is a typo
MAX_DECIMALS = 12
_TOP_LEVEL_KEYS = ("currency", "regions")
_REGION_KEYS = ("flavors", "units")


def _decimal(value: object, field_name: str) -> Decimal:
    """A non-negative finite price from a number or a numeric string (floats via their repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError(field_name, f"expected a price (a number or a numeric string), got {value!r}")
    try:
        # str() first, so YAML's float 0.1 becomes Decimal("0.1"), not its binary approximation
        price = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ValidationError(field_name, f"expected a price, got {value!r}") from None
    if not price.is_finite():
        raise ValidationError(field_name, f"a price must be a finite number, got {value!r}")
    if price < 0:
        raise ValidationError(field_name, f"a price cannot be negative, got {value!r}")
    # Bounds keep documents small: format(Decimal("1e999999999"), "f") would be a gigabyte.
    if price >= MAX_PRICE:
        raise ValidationError(field_name, f"a price must be below {MAX_PRICE:f}, got {value!r}")
    exponent = price.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise ValidationError(field_name, f"at most {MAX_DECIMALS} decimal places, got {value!r}")
    return price + 0  # + 0 turns -0 into 0


def _mapping(value: object, field_name: str, expected: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise ValidationError(field_name, f"expected {expected}, got {type(value).__name__}")
    return value


def _name(key: object, field_name: str, what: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError(f"{field_name}.{key}", f"a {what} must be a non-empty string, got {key!r}")
    return key


def _region_prices(value: object, where: str) -> RegionPrices:
    entry = _mapping(value, where, "a mapping with flavors and/or units")
    for key in entry:
        if key not in _REGION_KEYS:
            raise ValidationError(f"{where}.{key}", f"unknown key; known: {', '.join(_REGION_KEYS)}")
    flavors: dict[str, Decimal] = {}
    flavors_doc = entry.get("flavors")
    if flavors_doc is not None:
        for raw_name, price in _mapping(
            flavors_doc, f"{where}.flavors", "a mapping of flavor → price"
        ).items():
            name = _name(raw_name, f"{where}.flavors", "flavor name")
            flavors[name] = _decimal(price, f"{where}.flavors.{name}")
    units: dict[Unit, Decimal] = {}
    units_doc = entry.get("units")
    if units_doc is not None:
        known = ", ".join(u.value for u in Unit)
        for raw_unit, price in _mapping(units_doc, f"{where}.units", "a mapping of unit → price").items():
            try:
                unit = Unit(str(raw_unit))
            except ValueError:
                raise ValidationError(f"{where}.units.{raw_unit}", f"unknown unit; known: {known}") from None
            units[unit] = _decimal(price, f"{where}.units.{unit.value}")
    if not flavors and not units:
        raise ValidationError(where, "a region must price at least one flavor or unit")
    return RegionPrices(flavors=flavors, units=units)


def parse_price_book(document: Mapping[str, object], *, version: int = 0) -> PriceBook:
    """Validate a price book document (loaded from YAML or JSON) into a PriceBook.

    Shape: `{currency: EUR, regions: {RegionOne: {flavors: {m1.small: "0.02"}, units: {vcpu_hour:
    "0.01", ...}}, "*": {...}}}`; flavor prices are per hour, unit prices per their unit. Errors raise
    ValidationError naming the offending field as a dotted path (`regions.RegionOne.units.vcpu_hour`).
    """
    top = _mapping(document, "price_book", "a mapping with currency and regions")
    for key in top:
        if key not in _TOP_LEVEL_KEYS:
            raise ValidationError(str(key), f"unknown key; a price book has {', '.join(_TOP_LEVEL_KEYS)}")
    currency = top.get("currency")
    if currency is None:
        raise ValidationError("currency", "missing; give a 3-letter ISO 4217 code such as EUR")
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
    ):
        raise ValidationError("currency", f"expected a 3-letter ISO 4217 code such as EUR, got {currency!r}")
    if not currency.isupper():
        raise ValidationError("currency", f"write the currency code in upper case: {currency.upper()!r}")
    regions_doc = top.get("regions")
    if regions_doc is None:
        raise ValidationError("regions", "missing; price at least one region (or '*' for any region)")
    regions: dict[str, RegionPrices] = {}
    for raw_region, entry in _mapping(regions_doc, "regions", "a mapping of region → prices").items():
        region = _name(raw_region, "regions", "region name")
        regions[region] = _region_prices(entry, f"regions.{region}")
    if not regions:
        raise ValidationError("regions", "price at least one region (or '*' for any region)")
    return PriceBook(version=version, currency=currency, regions=regions)


def _price_text(price: Decimal) -> str:
    return format(price, "f")


def price_book_document(book: PriceBook) -> dict[str, object]:
    """The book as a JSON-ready document (prices as strings) that parse_price_book reads back."""
    regions: dict[str, object] = {}
    for name, prices in book.regions.items():
        entry: dict[str, object] = {}
        if prices.flavors:
            entry["flavors"] = {flavor: _price_text(p) for flavor, p in prices.flavors.items()}
        if prices.units:
            entry["units"] = {unit.value: _price_text(p) for unit, p in prices.units.items()}
        regions[name] = entry
    return {"currency": book.currency, "regions": regions}


@dataclass(frozen=True)
class PriceBookSummary:
    """One stored version of the price book, without its prices."""

    version: int
    currency: str
    comment: str
    created_by: str
    created_at: datetime


# -- cost over time: accrued cost of one instance, a project's report ------------------------------


def _hourly_rate(estimate: Estimate) -> Decimal:
    """The estimate's exact hourly price: line items' own hourly figures are rounded to the micro-unit,
    which a monthly unit (0.04 / 730 h) loses precision to; recompute from quantity and unit price."""
    rate = Decimal(0)
    for item in estimate.line_items:
        amount = item.quantity * item.unit_price
        rate += amount / HOURS_PER_MONTH if item.unit.endswith("_month") else amount
    return rate


def _hours_between(start: datetime, end: datetime, field_name: str) -> Decimal:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError(field_name, "give timezone-aware times (UTC), not naive ones")
    delta = end - start
    seconds = Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000
    return max(seconds / 3600, Decimal(0))


@dataclass(frozen=True)
class AccruedCost:
    currency: str
    price_book_version: int
    region: str | None
    created_at: datetime
    until: datetime
    hours: Decimal  # since creation, fractional
    hourly: Decimal
    accrued: Decimal
    monthly: Decimal  # projection: a full month (730 h) at the hourly price


def accrued_cost(
    book: PriceBook, region: str | None, size: InstanceSize, created_at: datetime, now: datetime
) -> AccruedCost:
    """What one instance of `size` has cost since `created_at`, and its monthly projection.

    Billing rule: an instance costs its hourly price for every hour it exists, whatever its power
    state, pro rata to the second — the way Nova's usage API (os-simple-tenant-usage) counts hours.
    Monthly units (root disk, volumes) are spread over 730 hours. Times must be timezone-aware; a
    creation time in the future (clock skew) accrues nothing. Raises LookupError as
    estimate_instance does.
    """
    estimate = estimate_instance(book, region, size, 1)
    hours = _hours_between(created_at, now, "created_at")
    return AccruedCost(
        currency=book.currency,
        price_book_version=book.version,
        region=region,
        created_at=created_at,
        until=now,
        hours=_money(hours),
        hourly=estimate.hourly,
        accrued=_money(_hourly_rate(estimate) * hours),
        monthly=estimate.monthly,
    )


class UsageRecord(Protocol):
    """One server's usage over a period, as the compute usage API reports it (any object with these
    read-only attributes: stackyard.cloud.usage.ServerUsage is one)."""

    @property
    def instance_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def flavor(self) -> str: ...

    @property
    def vcpus(self) -> int: ...

    @property
    def ram_mib(self) -> int: ...

    @property
    def disk_gib(self) -> int: ...

    @property
    def hours(self) -> Decimal: ...

    @property
    def state(self) -> str: ...


@dataclass(frozen=True)
class CostReportLine:
    """One server in a report. `unpriced` says why it has no cost (its flavor cannot be priced)."""

    instance_id: str
    name: str
    flavor: str
    state: str
    hours: Decimal
    hourly: Decimal | None
    cost: Decimal | None
    unpriced: str | None = None


@dataclass(frozen=True)
class CostReport:
    currency: str
    price_book_version: int
    region: str | None
    start: datetime
    end: datetime
    lines: Sequence[CostReportLine]
    total: Decimal  # of the priced lines
    total_hours: Decimal

    @property
    def unpriced(self) -> list[CostReportLine]:
        return [line for line in self.lines if line.unpriced is not None]


def cost_report(
    book: PriceBook, region: str | None, usages: Iterable[UsageRecord], start: datetime, end: datetime
) -> CostReport:
    """Cost of each server's usage hours over [start, end), priced like estimate_instance prices its
    flavor (flat flavor price, else vCPU, RAM and root-disk units), plus the total.

    A server whose flavor cannot be priced is listed with an `unpriced` reason instead of failing
    the report. Lines come most expensive first, unpriced ones last. Raises LookupError when the book
    has no prices for the region at all, ValidationError when the period is empty or its times naive.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError("start", "give timezone-aware times (UTC), not naive ones")
    if end <= start:
        raise ValidationError("end", f"the period must end after it starts ({start.isoformat()})")
    if book.prices_for(region) is None:
        raise LookupError(f"the price book (version {book.version}) has no prices for region {region!r}")
    lines: list[CostReportLine] = []
    for usage in usages:
        hours = max(usage.hours, Decimal(0))
        size = InstanceSize(usage.flavor, usage.vcpus, usage.ram_mib, usage.disk_gib)
        try:
            estimate = estimate_instance(book, region, size, 1)
        except LookupError as exc:
            lines.append(
                CostReportLine(
                    usage.instance_id,
                    usage.name,
                    usage.flavor,
                    usage.state,
                    _money(hours),
                    None,
                    None,
                    str(exc),
                )
            )
            continue
        cost = _money(_hourly_rate(estimate) * hours)
        lines.append(
            CostReportLine(
                usage.instance_id, usage.name, usage.flavor, usage.state, _money(hours), estimate.hourly, cost
            )
        )
    lines.sort(key=lambda line: (line.cost is None, -(line.cost or 0), line.name, line.instance_id))
    return CostReport(
        currency=book.currency,
        price_book_version=book.version,
        region=region,
        start=start,
        end=end,
        lines=lines,
        total=_money(sum((line.cost for line in lines if line.cost is not None), Decimal(0))),
        total_hours=_money(sum((line.hours for line in lines), Decimal(0))),
    )
