"""`stackyard cost estimate|report` and `stackyard pricebook import|show|versions`: prices and costs."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
import yaml
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cli.common import (
    CloudOption,
    DebugOption,
    FormatOption,
    RegionOption,
    boundary,
    context,
    local_actor,
)
from stackyard.cli.factory import cloud_session, open_database
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.usage import UsageGateway
from stackyard.compute.service import InstanceService
from stackyard.config import load_settings
from stackyard.db.engine import transaction
from stackyard.errors import ValidationError
from stackyard.pricing.models import (
    CostReport,
    CostReportLine,
    Estimate,
    InstanceSize,
    PriceBook,
    PriceBookSummary,
    Unit,
    price_book_document,
)
from stackyard.pricing.service import PricingService

cost_app = typer.Typer(
    no_args_is_help=True, help="Costs priced with the current price book: estimates and project reports."
)
pricebook_app = typer.Typer(
    no_args_is_help=True, help="The price book: import a new version, show one, list the versions."
)

ESTIMATE_COLUMNS = ["description", "unit", "quantity", "unit_price", "hourly", "monthly"]
REPORT_COLUMNS = ["name", "instance_id", "flavor", "state", "hours", "hourly", "cost", "unpriced"]
VERSION_COLUMNS = ["version", "currency", "created_at", "created_by", "comment"]
PRICE_COLUMNS = ["region", "kind", "name", "price", "per"]


def _text(value: Decimal) -> str:
    return format(value, "f")


def _database() -> sessionmaker[Session]:
    return open_database(load_settings())


def _write_document(document: Mapping[str, object], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False))
    sys.stdout.flush()


def _is_document_format(fmt: OutputFormat) -> bool:
    return fmt in (OutputFormat.JSON, OutputFormat.YAML)


# -- stackyard cost ------------------------------------------------------------------------------


def _estimate_document(estimate: Estimate, flavor: str) -> dict[str, object]:
    return {
        "flavor": flavor,
        "count": estimate.count,
        "region": estimate.region,
        "currency": estimate.currency,
        "price_book_version": estimate.price_book_version,
        "hourly": _text(estimate.hourly),
        "monthly": _text(estimate.monthly),
        "line_items": [
            {
                "description": i.description,
                "unit": i.unit,
                "quantity": _text(i.quantity),
                "unit_price": _text(i.unit_price),
                "hourly": _text(i.hourly),
                "monthly": _text(i.monthly),
            }
            for i in estimate.line_items
        ],
    }


@cost_app.command("estimate")
def estimate(
    flavor: Annotated[str, typer.Option("--flavor", help="Flavor name or id.")],
    count: Annotated[int, typer.Option("--count", min=1, help="How many instances.")] = 1,
    volume_gib: Annotated[
        int, typer.Option("--volume-gib", min=0, help="GiB of volumes attached to each instance.")
    ] = 0,
    floating_ips: Annotated[
        int, typer.Option("--floating-ips", min=0, help="Floating IPs per instance.")
    ] = 0,
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Hourly and monthly cost of planned instances, with line items (flavor looked up on the cloud)."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx), _database()() as db:
        pricing = PricingService(db)
        pricing.current()  # no price book: fail before any cloud call
        session = cloud_session(ctx)
        try:
            found = InstanceService(ComputeGateway(session)).resolve_flavor(flavor)
            price_region = ctx.region or UsageGateway(session).region
        finally:
            session.close()
        size = InstanceSize(
            flavor=found.name,
            vcpus=found.vcpus,
            ram_mib=found.ram_mib,
            disk_gib=found.disk_gib,
            volume_gib=volume_gib,
            floating_ips=floating_ips,
        )
        result = pricing.estimate(price_region, size, count)
        if _is_document_format(ctx.fmt):
            _write_document(_estimate_document(result, found.name), ctx.fmt)
            return
        if ctx.fmt is OutputFormat.TABLE:
            ctx.out.print(
                f"{count} x {found.name} in {price_region or 'any region'}: {result.currency},"
                f" price book version {result.price_book_version}"
            )
        rows: list[Row] = [
            {
                "description": i.description,
                "unit": i.unit,
                "quantity": _text(i.quantity),
                "unit_price": _text(i.unit_price),
                "hourly": _text(i.hourly),
                "monthly": _text(i.monthly),
            }
            for i in result.line_items
        ]
        rows.append(
            {"description": "total", "hourly": _text(result.hourly), "monthly": _text(result.monthly)}
        )
        emit_rows(rows, ESTIMATE_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


def _moment(raw: str, option: str, *, is_end: bool) -> datetime:
    """YYYY-MM-DD (a UTC day: its start, or for an end the start of the next day, so the day
    counts) or an ISO 8601 time (naive means UTC)."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if is_end else start
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(option, f"expected YYYY-MM-DD or an ISO 8601 time, got {raw!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _report_line(line: CostReportLine) -> Row:
    """One server of a report, as the table row and as the document's entry."""
    return {
        "instance_id": line.instance_id,
        "name": line.name,
        "flavor": line.flavor,
        "state": line.state,
        "hours": _text(line.hours),
        "hourly": None if line.hourly is None else _text(line.hourly),
        "cost": None if line.cost is None else _text(line.cost),
        "unpriced": line.unpriced,
    }


def _report_document(report: CostReport, project_id: str, project: str) -> dict[str, object]:
    return {
        "project_id": project_id,
        "project": project,
        "region": report.region,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "currency": report.currency,
        "price_book_version": report.price_book_version,
        "total": _text(report.total),
        "total_hours": _text(report.total_hours),
        "servers": [_report_line(line) for line in report.lines],
    }


@cost_app.command("report")
def report(
    project: Annotated[str, typer.Option("--project", help="Project name or id.")],
    since: Annotated[str, typer.Option("--since", help="Start: YYYY-MM-DD (UTC) or an ISO 8601 time.")],
    until: Annotated[
        str | None, typer.Option("--until", help="End, that day included (default: now).")
    ] = None,
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Cost of a project's servers over a period, from the compute usage API (deleted ones included)."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx), _database()() as db:
        now = datetime.now(UTC)
        start = _moment(since, "since", is_end=False)
        end = min(_moment(until, "until", is_end=True), now) if until else now
        if start >= end:
            raise ValidationError("since", "the period must start before --until and before now")
        pricing = PricingService(db)
        pricing.current()  # no price book: fail before any cloud call
        session = cloud_session(ctx)
        try:
            usage = UsageGateway(session)
            found = usage.find_project(project)
            price_region = ctx.region or usage.region
            usages = usage.project_usage(found.id, start, end)
        finally:
            session.close()
        result = pricing.project_report(usages, price_region, start, end)
        for line in result.unpriced:
            ctx.err.print(f"warning: {line.name} ({line.instance_id}) is not priced: {line.unpriced}")
        if _is_document_format(ctx.fmt):
            _write_document(_report_document(result, found.id, found.name), ctx.fmt)
            return
        if ctx.fmt is OutputFormat.TABLE:
            ctx.out.print(
                f"project {found.name or found.id} from {start.isoformat()} to {end.isoformat()}"
                f" in {price_region or 'any region'}: {result.currency},"
                f" price book version {result.price_book_version}"
            )
        rows: list[Row] = [_report_line(line) for line in result.lines]
        rows.append({"name": "total", "hours": _text(result.total_hours), "cost": _text(result.total)})
        emit_rows(rows, REPORT_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


# -- stackyard pricebook -------------------------------------------------------------------------


def read_document(path: Path) -> Mapping[str, object]:
    """A YAML or JSON file (JSON is YAML) holding a mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError("file", f"cannot read {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError("file", f"{path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValidationError("file", f"{path} must hold a mapping with currency and regions")
    return document


def _summary_row(summary: PriceBookSummary) -> Row:
    return {
        "version": summary.version,
        "currency": summary.currency,
        "created_at": summary.created_at.isoformat(),
        "created_by": summary.created_by,
        "comment": summary.comment,
    }


@pricebook_app.command("import")
def pricebook_import(
    file: Annotated[Path, typer.Argument(help="Price book as YAML or JSON.")],
    comment: Annotated[str, typer.Option("--comment", help="Why this version (kept with it).")] = "",
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Validate a price book and store it as the next version; an invalid file stores nothing."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        document = read_document(file)
        with transaction(_database()) as db:
            pricing = PricingService(db)
            book = pricing.import_price_book(document, comment=comment, actor=local_actor())
            summary = pricing.summary(book.version)
        ctx.err.print(f"imported {file} as price book version {book.version}")
        emit_one({**_summary_row(summary), "regions": sorted(book.regions)}, ctx.fmt, sys.stdout, ctx.out)


_PER = {
    Unit.VCPU_HOUR: "vCPU-hour",
    Unit.RAM_GIB_HOUR: "GiB RAM-hour",
    Unit.ROOT_DISK_GIB_MONTH: "GiB root disk-month",
    Unit.VOLUME_GIB_MONTH: "GiB volume-month",
    Unit.FLOATING_IP_HOUR: "floating IP-hour",
    Unit.OBJECT_GIB_MONTH: "GiB object storage-month",
}


def _price_rows(book: PriceBook) -> list[Row]:
    rows: list[Row] = []
    for region, prices in book.regions.items():
        for flavor, price in prices.flavors.items():
            rows.append(
                {
                    "region": region,
                    "kind": "flavor",
                    "name": flavor,
                    "price": _text(price),
                    "per": "instance-hour",
                }
            )
        for unit, price in prices.units.items():
            rows.append(
                {
                    "region": region,
                    "kind": "unit",
                    "name": unit.value,
                    "price": _text(price),
                    "per": _PER[unit],
                }
            )
    return rows


@pricebook_app.command("show")
def pricebook_show(
    version: Annotated[int | None, typer.Option("--version", help="Version (default: the latest).")] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """The prices of one version; json/yaml give the document plus version, author and comment."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx), _database()() as db:
        pricing = PricingService(db)
        book = pricing.current() if version is None else pricing.get(version)
        summary = pricing.summary(book.version)
        if _is_document_format(ctx.fmt):
            _write_document({**_summary_row(summary), **price_book_document(book)}, ctx.fmt)
            return
        if ctx.fmt is OutputFormat.TABLE:
            ctx.out.print(
                f"price book version {book.version} ({book.currency}),"
                f" imported {summary.created_at:%Y-%m-%d %H:%M} UTC by {summary.created_by}"
                + (f": {summary.comment}" if summary.comment else "")
            )
        emit_rows(_price_rows(book), PRICE_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


@pricebook_app.command("versions")
def pricebook_versions(fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    """Every imported version, newest first."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx), _database()() as db:
        rows = [_summary_row(s) for s in PricingService(db).versions()]
        emit_rows(rows, VERSION_COLUMNS, ctx.fmt, sys.stdout, ctx.out)
