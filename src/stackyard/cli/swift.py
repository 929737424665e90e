"""`stackyard swift upload|download|list|delete` with swift:// URLs, and `stackyard images import`."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from stackyard.cli.catalog import images_app
from stackyard.cli.common import DebugOption, FormatOption, boundary, context, local_actor
from stackyard.cli.exports import JobWatcher
from stackyard.cli.factory import export_commands
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.errors import NotFound, ValidationError
from stackyard.exports.imports import BootSpec, ImportRequest
from stackyard.exports.models import parse_size, parse_swift_url
from stackyard.exports.storage import download, upload
from stackyard.jobs.models import JobState

swift_app = typer.Typer(no_args_is_help=True, help="Swift objects by swift://container/name URLs.")

ProviderOption = Annotated[str | None, typer.Option("--provider", help="Default: exports.cloud.")]
RegionOption = Annotated[str | None, typer.Option("--region")]


def _bar() -> Progress:
    return Progress(
        BarColumn(), DownloadColumn(binary_units=True), TransferSpeedColumn(), TimeRemainingColumn()
    )


@swift_app.command("upload")
def swift_upload(
    file: Annotated[Path, typer.Argument(help="Local file.")],
    url: Annotated[str, typer.Argument(help="swift://container/name or swift://container/prefix/.")],
    segment_size: Annotated[str, typer.Option("--segment-size", help="Past this, a large object.")] = "100M",
    parallel: Annotated[int, typer.Option("--parallel", min=1, max=32)] = 4,
    provider: ProviderOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Upload a file; larger than one segment, it becomes a Static Large Object (segments in parallel)."""
    ctx = context(None, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        cmds = export_commands()
        objects = cmds.service.cloud(provider or cmds.default_provider, region).objects
        with _bar() as bar:
            task = bar.add_task("upload", total=file.stat().st_size if file.is_file() else None)
            where, size, sha256 = upload(
                objects,
                file,
                url,
                segment_size=parse_size(segment_size, "segment_size"),
                parallel=parallel,
                on_progress=lambda done, total, _rate: bar.update(task, completed=done, total=total),
            )
        ctx.err.print(f"{where}: {size} bytes, sha256 {sha256}")


@swift_app.command("download")
def swift_download(
    url: Annotated[str, typer.Argument(help="swift://container/name")],
    file: Annotated[Path, typer.Argument(help="Local file; an interrupted download continues.")],
    provider: ProviderOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Download an object (ranged, resumable from FILE.part), checked against its etag or export manifest."""
    ctx = context(None, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        cmds = export_commands()
        objects = cmds.service.cloud(provider or cmds.default_provider, region).objects
        with _bar() as bar:
            task = bar.add_task("download", total=None)
            result = download(
                objects, url, file, lambda done, total, _rate: bar.update(task, completed=done, total=total)
            )
        resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
        ctx.err.print(
            f"{result.path}: {result.size} bytes, sha256 {result.sha256} ({result.verified}{resumed})"
        )


@swift_app.command("list")
def swift_list(
    url: Annotated[
        str | None, typer.Argument(help="swift://container[/prefix]; none: the containers.")
    ] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="e.g. / for one level.")] = None,
    provider: ProviderOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Containers, or the objects under a prefix (every page)."""
    ctx = context(None, region, fmt, debug)
    with boundary(ctx):
        cmds = export_commands()
        objects = cmds.service.cloud(provider or cmds.default_provider, region).objects
        if url is None:
            emit_rows(
                ({"container": name} for name in objects.containers()),
                ["container"],
                ctx.fmt,
                sys.stdout,
                ctx.out,
            )
            return
        location = parse_swift_url(url)
        if not objects.container_exists(location.container):
            raise NotFound(f"container {location.container!r} does not exist", service="object_store")
        rows = (
            {
                "name": item.name,
                "bytes": None if item.is_pseudo_folder else item.size,
                "large": item.is_large,
                "etag": item.etag,
                "last_modified": item.last_modified.isoformat() if item.last_modified else None,
            }
            for item in objects.objects(location.container, prefix=location.name or None, delimiter=delimiter)
        )
        emit_rows(rows, ["name", "bytes", "large", "last_modified"], ctx.fmt, sys.stdout, ctx.out)


@swift_app.command("exists")
def swift_exists(
    url: Annotated[str, typer.Argument(help="swift://container/name")],
    provider: ProviderOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Exit 0 and show the object (size, etag, large or not) if it exists; exit 1 if it does not."""
    ctx = context(None, region, fmt, debug)
    with boundary(ctx):
        cmds = export_commands()
        objects = cmds.service.cloud(provider or cmds.default_provider, region).objects
        location = parse_swift_url(url)
        if location.is_prefix:
            raise ValidationError("url", f"{url} names a prefix; give an object name")
        info = objects.head_object(location.container, location.name)
        if info is not None:
            row: Row = {"name": info.name, "bytes": info.size, "large": info.is_large, "etag": info.etag}
            emit_one(row, ctx.fmt, sys.stdout, ctx.out)
    if info is None:
        ctx.err.print(f"{url}: no such object")
        raise typer.Exit(1)


@swift_app.command("delete")
def swift_delete(
    urls: Annotated[list[str], typer.Argument(help="swift://container/name ...")],
    provider: ProviderOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Delete objects; a large object's segments go with it. Exit 1 if any was missing."""
    ctx = context(None, region, OutputFormat.TABLE, debug)
    missing = 0
    with boundary(ctx):
        cmds = export_commands()
        objects = cmds.service.cloud(provider or cmds.default_provider, region).objects
        for url in urls:
            location = parse_swift_url(url)
            if location.is_prefix:
                raise ValidationError("url", f"{url} names a prefix; give object names")
            if objects.delete_object(location.container, location.name):
                ctx.err.print(f"deleted {url}")
            else:
                missing += 1
                ctx.err.print(f"{url}: no such object")
    if missing:
        raise typer.Exit(1)


@images_app.command("import")
def images_import(
    source: Annotated[str, typer.Argument(help="A file, or swift://container/name (.zst/.gz decompressed).")],
    name: Annotated[str | None, typer.Option("--name", help="Image name (default: from the source).")] = None,
    disk_format: Annotated[
        str | None, typer.Option("--disk-format", help="Default: the export manifest's.")
    ] = None,
    boot: Annotated[str | None, typer.Option("--boot", help="Boot an instance of this name from it.")] = None,
    flavor: Annotated[str | None, typer.Option("--flavor", help="Flavor for --boot.")] = None,
    network: Annotated[
        list[str] | None, typer.Option("--network", help="Network for --boot (repeatable).")
    ] = None,
    provider: ProviderOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Restore an export (or any image file) into Glance, verified against its export manifest."""
    ctx = context(None, region, fmt, debug)
    with boundary(ctx):
        if boot and not flavor:
            raise ValidationError("flavor", "--boot needs --flavor")
        path = source if source.startswith("swift://") else str(Path(source).resolve())
        cmds = export_commands()
        request = ImportRequest(
            provider=provider or cmds.default_provider,
            source=path,
            name=name,
            disk_format=disk_format,
            region=region,
            boot=BootSpec(boot, flavor or "", tuple(network or ())) if boot else None,
        )
        job = cmds.imports.submit(request, local_actor())
        ctx.err.print(f"import job {job.id}")
        worker = None
        if cmds.dispatcher is None:
            worker = threading.Thread(target=cmds.runner.run_one, args=(job.id,), daemon=True)
            worker.start()
        job = JobWatcher(ctx.err).follow(cmds.runner.get, job.id, worker)
        if worker is not None:
            worker.join()
            job = cmds.runner.get(job.id)
        if job.state is JobState.SUCCEEDED and job.result is not None:
            emit_one({k: str(v) for k, v in job.result.items()}, ctx.fmt, sys.stdout, ctx.out)
    if job.state is not JobState.SUCCEEDED:
        ctx.err.print(f"job {job.id} {job.state.value}: {job.error}")
        raise typer.Exit(1)
