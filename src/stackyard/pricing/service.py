"""Price books as operators manage them (validated, versioned imports) and the costs priced with them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from stackyard.errors import NotFound, ValidationError
from stackyard.pricing.models import (
    AccruedCost,
    CostReport,
    Estimate,
    InstanceSize,
    PriceBook,
    PriceBookSummary,
    Unit,
    UsageRecord,
    accrued_cost,
    cost_report,
    estimate_instance,
    parse_price_book,
    price_book_document,
)
from stackyard.pricing.orm import PriceBookRecord
from stackyard.pricing.repository import PriceBookRepository

MAX_COMMENT = 500  # the width of price_books.comment
MAX_ACTOR = 255  # the width of price_books.created_by
_NONE_YET = (
    "price book: none has been imported yet; import one with `stackyard pricebook import FILE`"
    " or POST it to the API"
)


def _summary(record: PriceBookRecord) -> PriceBookSummary:
    return PriceBookSummary(
        version=record.version,
        currency=record.currency,
        comment=record.comment,
        created_by=record.created_by,
        created_at=record.created_at,
    )


def _check_size(size: InstanceSize, count: int) -> None:
    if count < 1:
        raise ValidationError("count", f"must be at least 1, got {count}")
    for name, value in (
        ("vcpus", size.vcpus),
        ("ram_mib", size.ram_mib),
        ("disk_gib", size.disk_gib),
        ("volume_gib", size.volume_gib),
        ("floating_ips", size.floating_ips),
    ):
        if value < 0:
            raise ValidationError(name, f"cannot be negative, got {value}")


def _unpriced_field(book: PriceBook, region: str | None, size: InstanceSize) -> str:
    """Which input a LookupError from the models is about: the region, an extra, or the flavor."""
    prices = book.prices_for(region)
    if prices is None:
        return "region"
    if size.volume_gib and Unit.VOLUME_GIB_MONTH not in prices.units:
        return "volume_gib"
    if size.floating_ips and Unit.FLOATING_IP_HOUR not in prices.units:
        return "floating_ips"
    return "flavor"


class PricingService:
    """Price book versions on the database session it is given, and estimates priced with the latest.

    Flushes, never commits: the caller owns the transaction.
    """

    def __init__(self, session: Session) -> None:
        self._repository = PriceBookRepository(session)

    # -- price books ---------------------------------------------------------------------------

    def import_price_book(self, document: Mapping[str, object], *, comment: str, actor: str) -> PriceBook:
        """Validate `document` and store it as the next version. Invalid input stores nothing."""
        if len(comment) > MAX_COMMENT:
            raise ValidationError("comment", f"at most {MAX_COMMENT} characters, got {len(comment)}")
        if not actor.strip() or len(actor) > MAX_ACTOR:
            raise ValidationError("actor", f"give who imports the price book (1-{MAX_ACTOR} characters)")
        book = parse_price_book(document)
        record = self._repository.add(price_book_document(book), book.currency, comment, actor)
        return parse_price_book(record.document, version=record.version)

    def current(self) -> PriceBook:
        """The latest version; NotFound when none has been imported."""
        record = self._repository.latest()
        if record is None:
            raise NotFound(_NONE_YET)
        return parse_price_book(record.document, version=record.version)

    def get(self, version: int) -> PriceBook:
        record = self._repository.get(version)
        if record is None:
            raise NotFound(
                f"price book: there is no version {version}; `stackyard pricebook versions` lists them"
            )
        return parse_price_book(record.document, version=record.version)

    def summary(self, version: int | None = None) -> PriceBookSummary:
        """Who imported a version (default: the latest), when, and why."""
        record = self._repository.latest() if version is None else self._repository.get(version)
        if record is None:
            if version is None:
                raise NotFound(_NONE_YET)
            raise NotFound(
                f"price book: there is no version {version}; `stackyard pricebook versions` lists them"
            )
        return _summary(record)

    def versions(self) -> list[PriceBookSummary]:
        """Every version, newest first."""
        return [_summary(r) for r in self._repository.versions()]

    # -- costs, priced with the current book ---------------------------------------------------

    def estimate(self, region: str | None, size: InstanceSize, count: int = 1) -> Estimate:
        """Hourly and monthly cost of `count` instances of `size`; unpriced input is a ValidationError
        naming the field (region, flavor, volume_gib, floating_ips)."""
        _check_size(size, count)
        book = self.current()
        try:
            return estimate_instance(book, region, size, count)
        except LookupError as exc:
            raise ValidationError(_unpriced_field(book, region, size), str(exc)) from None

    def instance_cost(
        self, region: str | None, size: InstanceSize, created_at: datetime, now: datetime
    ) -> AccruedCost:
        """What an instance has cost since it was created, and its monthly projection."""
        _check_size(size, 1)
        book = self.current()
        try:
            return accrued_cost(book, region, size, created_at, now)
        except LookupError as exc:
            raise ValidationError(_unpriced_field(book, region, size), str(exc)) from None

    def project_report(
        self, usages: Iterable[UsageRecord], region: str | None, start: datetime, end: datetime
    ) -> CostReport:
        """A project's servers priced over [start, end) from their usage hours (the compute usage
        API's). Servers whose flavor cannot be priced are listed as unpriced, not an error."""
        book = self.current()
        try:
            return cost_report(book, region, usages, start, end)
        except LookupError as exc:
            raise ValidationError("region", str(exc)) from None
