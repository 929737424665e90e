"""Prices: the versioned price book, estimates before create."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field, field_validator

from stackyard.api.deps import AdminPrincipal, CurrentPrincipal, CurrentScope, Pricing, ProviderDep, State
from stackyard.api.schemas import EstimateCreate, EstimateRead, Money
from stackyard.errors import ValidationError
from stackyard.pricing.models import Estimate, price_book_document
from stackyard.providers.base import InstancePlan, UsageProvider

router = APIRouter(tags=["pricing"])

_EARLIEST = date(1970, 1, 1)  # the first day a usage period may start on


class PriceBookRead(BaseModel):
    version: int
    currency: str
    document: dict[str, object] = Field(description="The price book as imported (prices as strings).")


class PriceBookSummaryRead(BaseModel):
    version: int
    currency: str
    comment: str
    created_by: str
    created_at: datetime


class PriceBookVersions(BaseModel):
    items: list[PriceBookSummaryRead]


class CostReportLineRead(BaseModel):
    instance_id: str
    name: str
    flavor: str
    state: str
    hours: Money
    hourly: Money | None
    cost: Money | None
    unpriced: str | None


class CostReportRead(BaseModel):
    project_id: str
    currency: str
    price_book_version: int
    region: str | None
    start: datetime
    end: datetime
    total: Money
    total_hours: Money
    lines: list[CostReportLineRead]


class PriceBookCreate(BaseModel):
    currency: str = Field(min_length=3, max_length=3, examples=["EUR"])
    regions: dict[str, dict[str, dict[str, object]]] = Field(
        description='Per region (or "*"): {"flavors": {name: hourly}, "units": {unit: price}}.'
    )
    comment: str = Field(default="", max_length=500)

    @field_validator("comment")
    @classmethod
    def _storable(cls, comment: str) -> str:
        # NOTE: PostgreSQL text cannot hold a NUL character; the insert would fail with a server error.
        if "\x00" in comment:
            raise ValueError("must not contain NUL characters")
        return comment


@router.get("/api/v1/pricebook", response_model=PriceBookRead)
def get_price_book(pricing: Pricing, _principal: CurrentPrincipal) -> PriceBookRead:
    """The current (newest) price book."""
    book = pricing.current()
    return PriceBookRead(version=book.version, currency=book.currency, document=price_book_document(book))


@router.put("/api/v1/pricebook", response_model=PriceBookRead, status_code=201)
def put_price_book(
    pricing: Pricing, principal: AdminPrincipal, body: Annotated[PriceBookCreate, Body()]
) -> PriceBookRead:
    """Store a new version (admins); older versions stay readable. Rejected input changes nothing."""
    document: dict[str, object] = {"currency": body.currency, "regions": body.regions}
    book = pricing.import_price_book(document, comment=body.comment, actor=principal.name)
    return PriceBookRead(version=book.version, currency=book.currency, document=price_book_document(book))


@router.get("/api/v1/pricebook/versions", response_model=PriceBookVersions)
def list_price_book_versions(pricing: Pricing, _principal: CurrentPrincipal) -> PriceBookVersions:
    return PriceBookVersions(
        items=[
            PriceBookSummaryRead(
                version=v.version,
                currency=v.currency,
                comment=v.comment,
                created_by=v.created_by,
                created_at=v.created_at,
            )
            for v in pricing.versions()
        ]
    )


@router.get("/api/v1/pricebook/versions/{version}", response_model=PriceBookRead)
def get_price_book_version(
    pricing: Pricing, _principal: CurrentPrincipal, version: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> PriceBookRead:
    book = pricing.get(version)
    return PriceBookRead(version=book.version, currency=book.currency, document=price_book_document(book))


@router.post("/api/v1/providers/{provider}/estimates", response_model=EstimateRead)
def estimate(
    provider: ProviderDep, pricing: Pricing, _principal: CurrentPrincipal, body: EstimateCreate
) -> EstimateRead:
    """Hourly and monthly cost of planned instances, with line items, before anything is created."""
    book = pricing.current()
    planned: list[tuple[str, Estimate]] = []
    for index, item in enumerate(body.instances):
        plan = InstancePlan(
            name=item.name or "estimate",
            flavor=item.type,
            region=item.region,
            volume_gib=item.volume_gib,
            floating_ips=item.floating_ips,
        )
        try:
            planned.append((item.type, provider.estimate_cost(plan, book, item.count)))
        except ValidationError as exc:
            field = {"flavor": "type"}.get(exc.field, exc.field)
            raise ValidationError(f"instances[{index}].{field}", exc.message) from exc
    return EstimateRead.of(planned)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@router.get("/api/v1/providers/{provider}/projects/{project_id}/cost", response_model=CostReportRead)
def project_cost(
    state: State,
    provider: ProviderDep,
    pricing: Pricing,
    scope: CurrentScope,
    project_id: Annotated[str, Path(min_length=1, max_length=64)],
    since: Annotated[
        date | None, Query(description="First day, from 1970-01-01 (default: the 1st of this month).")
    ] = None,
    until: Annotated[date | None, Query(description="Day after the last (default: now).")] = None,
    region: Annotated[str | None, Query(max_length=255)] = None,
) -> CostReportRead:
    """A project's servers priced by their usage hours (Nova's os-simple-tenant-usage) over a period."""
    if not isinstance(provider, UsageProvider):
        raise ValidationError("provider", f"provider {provider.name!r} cannot report usage")
    for name, day in (("since", since), ("until", until)):
        if day is not None and day < _EARLIEST:
            # NOTE: Nova's usage API fails with a 500 for a year before 1000 (MySQL's DATETIME range);
            # no cloud has usage before 1970 anyway.
            raise ValidationError(name, f"give a day from {_EARLIEST.isoformat()} on")
    now = state.clock.now()
    start = datetime.combine(since, time(), UTC) if since else now.replace(day=1, hour=0, minute=0, second=0)
    end = datetime.combine(until, time(), UTC) if until else now
    if end <= start:
        raise ValidationError("until", "the period must end after it starts")
    usages = provider.project_usage(scope, project_id, start, end, region)
    report = pricing.project_report(usages, region or provider.default_region(), start, end)
    return CostReportRead(
        project_id=project_id,
        currency=report.currency,
        price_book_version=report.price_book_version,
        region=report.region,
        start=report.start,
        end=report.end,
        total=str(report.total),
        total_hours=str(report.total_hours),
        lines=[
            CostReportLineRead(
                instance_id=line.instance_id,
                name=line.name,
                flavor=line.flavor,
                state=line.state,
                hours=str(line.hours),
                hourly=_money(line.hourly),
                cost=_money(line.cost),
                unpriced=line.unpriced,
            )
            for line in report.lines
        ],
    )
