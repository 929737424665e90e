"""`stackyard exports run|list|show`, `stackyard jobs watch` and `stackyard worker`."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from stackyard.cli.common import DebugOption, FormatOption, boundary, context, local_actor
from stackyard.cli.factory import ExportCommands, export_commands
from stackyard.cli.quotas import jobs_app
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.cloud.compute import ComputeGateway
from stackyard.errors import NotFound, ValidationError
from stackyard.exports.models import Compression, DiskFormat, Export, parse_size
from stackyard.exports.retention import parse_retention
from stackyard.exports.service import ExportRequest
from stackyard.jobs.models import Job, JobState

exports_app = typer.Typer(no_args_is_help=True, help="Snapshot instances and export them to Swift or files.")

_EXPORT_COLUMNS = ["id", "state", "instance", "location", "stored_bytes", "compression", "created_at"]


def export_row(export: Export) -> Row:
    return {
        "id": export.id,
        "state": export.state.value,
        "instance": export.instance_name or export.instance_id or export.image_id,
        "instance_id": export.instance_id,
        "image_id": export.image_id,
        "target": export.target,
        "location": export.location,
        "source_bytes": export.source_bytes,
        "stored_bytes": export.stored_bytes,
        "hash": f"{export.hash_algo}:{export.hash_value}" if export.hash_value else None,
        "stored_sha256": export.stored_sha256,
        "compression": export.compression.value,
        "created_by": export.created_by,
        "created_at": export.created_at.isoformat(),
        "finished_at": export.finished_at.isoformat() if export.finished_at else None,
    }


def _resolve_instance(cmds: ExportCommands, provider: str, region: str | None, ref: str) -> str:
    """An instance id, or the id of the one instance with this exact name."""
    compute: ComputeGateway = cmds.service.cloud(provider, region).compute
    try:
        return compute.get_instance(ref).id
    except NotFound:
        pass
    matches = [i for i in compute.find_instances_by_name(ref, all_projects=True) if i.name == ref]
    if not matches:
        raise NotFound(f"no instance with id or name {ref!r}", service="compute")
    if len(matches) > 1:
        ids = ", ".join(i.id for i in matches)
        raise ValidationError("instance", f"{len(matches)} instances are named {ref!r} ({ids}); give an id")
    return matches[0].id


class JobWatcher:
    """Renders a job's progress (phase, bytes, rate, ETA) on stderr until it ends."""

    def __init__(self, console: Console, interval: float = 0.5) -> None:
        self._console = console
        self._interval = interval

    def follow(self, get: Callable[[str], Job], job_id: str, running: threading.Thread | None = None) -> Job:
        with Progress(
            TextColumn("[bold]{task.fields[phase]}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=self._console,
            transient=False,
        ) as progress:
            task: TaskID = progress.add_task("job", total=None, phase="queued", note="")
            while True:
                job: Job = get(job_id)
                progress.update(
                    task,
                    completed=job.progress_done,
                    total=job.progress_total,
                    phase=job.phase or job.state.value,
                    note=(job.message or "")[:60],
                )
                if job.state.is_final:
                    return job
                if running is not None and not running.is_alive() and not job.state.is_final:
                    return job  # the in-process attempt ended with a retry scheduled
                time.sleep(self._interval)


def _finish(ctx_err: Console, job: Job) -> None:
    if job.state is JobState.SUCCEEDED:
        return
    if job.state is JobState.QUEUED:
        ctx_err.print(
            f"job {job.id} will try again at {job.next_attempt_at:%H:%M:%S} ({job.error});"
            " it resumes where it stopped when `stackyard serve` or a worker runs it"
        )
        raise typer.Exit(75)  # EX_TEMPFAIL
    ctx_err.print(f"job {job.id} {job.state.value}: {job.error}")
    raise typer.Exit(1)


@exports_app.command("run")
def exports_run(
    instance: Annotated[str | None, typer.Argument(help="Instance id or unique name.")] = None,
    to: Annotated[str, typer.Option("--to", help="swift://container/prefix/, a path, or - for stdout.")] = "",
    image: Annotated[
        str | None, typer.Option("--image", help="Export this image instead of a snapshot.")
    ] = None,
    # NOTE: not --format: that is every command's output format (-f/--format).
    disk_format: Annotated[
        DiskFormat, typer.Option("--disk-format", help="Disk format to store (qemu-img converts).")
    ] = DiskFormat.KEEP,
    compress: Annotated[
        Compression, typer.Option("--compress", help="Streaming compression.")
    ] = Compression.NONE,
    segment_size: Annotated[str | None, typer.Option("--segment-size", help="e.g. 100M (Swift).")] = None,
    parallel: Annotated[
        int | None, typer.Option("--parallel", min=1, max=32, help="Segments in flight.")
    ] = None,
    quiesce: Annotated[bool, typer.Option("--quiesce", help="Stop for the snapshot, start after.")] = False,
    keep_snapshot: Annotated[bool, typer.Option("--keep-snapshot", help="Keep the snapshot image.")] = False,
    snapshot_timeout: Annotated[float | None, typer.Option("--snapshot-timeout", help="Seconds.")] = None,
    bandwidth: Annotated[str | None, typer.Option("--bandwidth", help="Cap per second, e.g. 50M.")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Default: exports.cloud.")] = None,
    region: Annotated[str | None, typer.Option("--region")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the job to its end.")] = True,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Snapshot INSTANCE (or take --image) and stream it to --to, verified against Glance's checksum.

    Without a broker the export runs in this process; with STACKYARD_BROKER_URL it is queued for
    `stackyard worker`. An interrupted export is resumed by `stackyard serve` or a worker.
    """
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        if not to:
            raise ValidationError("to", "give a target: --to swift://container/prefix/, a path, or -")
        to_stdout = to.strip() == "-"
        cmds = export_commands(stdout=sys.stdout.buffer if to_stdout else None)
        if to_stdout and cmds.dispatcher is not None:
            raise ValidationError(
                "to", "a stdout export runs in this process; unset STACKYARD_BROKER_URL for it"
            )
        name = provider or cmds.default_provider
        overrides: dict[str, object] = {
            "disk_format": disk_format,
            "compression": compress,
            "quiesce": quiesce,
            "keep_snapshot": keep_snapshot,
            "image_id": image,
        }
        if segment_size is not None:
            overrides["segment_size"] = parse_size(segment_size, "segment_size")
        if bandwidth is not None:
            overrides["bandwidth"] = float(parse_size(bandwidth, "bandwidth"))
        if parallel is not None:
            overrides["parallel_segments"] = parallel
        if snapshot_timeout is not None:
            overrides["snapshot_timeout"] = snapshot_timeout
        instance_id = _resolve_instance(cmds, name, region, instance) if instance else None
        request = ExportRequest(name, instance_id, to, cmds.service.default_options(**overrides), region)
        job = cmds.service.submit(request, local_actor(), allow_stdout=to_stdout)
        ctx.err.print(f"export job {job.id}")
        if cmds.dispatcher is None:
            worker = threading.Thread(target=cmds.runner.run_one, args=(job.id,), daemon=True)
            worker.start()
            if wait and not to_stdout:
                job = JobWatcher(ctx.err).follow(cmds.runner.get, job.id, worker)
            worker.join()
            job = cmds.runner.get(job.id)
        elif wait:
            job = JobWatcher(ctx.err).follow(cmds.runner.get, job.id)
        else:
            return
        if not to_stdout:
            emit_one(export_row(cmds.service.get(job.id)), ctx.fmt, sys.stdout, ctx.out)
    _finish(ctx.err, job)


@exports_app.command("list")
def exports_list(
    instance: Annotated[str | None, typer.Option("--instance", help="Only this instance id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Exports, newest first."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        exports = export_commands().service.list_exports(instance_id=instance, limit=limit)
        emit_rows([export_row(e) for e in exports], _EXPORT_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


@exports_app.command("show")
def exports_show(export_id: str, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        emit_one(export_row(export_commands().service.get(export_id)), ctx.fmt, sys.stdout, ctx.out)


@jobs_app.command("watch")
def jobs_watch(job_id: str, debug: DebugOption = False) -> None:
    """Follow a job's progress (phase, bytes, rate, ETA) until it ends; exit 1 if it failed."""
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        runner = export_commands().runner
        job = JobWatcher(ctx.err).follow(runner.get, job_id)
        ctx.err.print(f"job {job.id}: {job.state.value}" + (f" ({job.error})" if job.error else ""))
    if job.state is not JobState.SUCCEEDED:
        raise typer.Exit(1)


@exports_app.command("prune")
def exports_prune(
    instance: Annotated[
        str | None, typer.Option("--instance", help="Only this instance id (default: all).")
    ] = None,
    keep_last: Annotated[int | None, typer.Option("--keep-last", min=0, help="Keep the newest N.")] = None,
    gfs: Annotated[
        str | None, typer.Option("--gfs", help="Also one per day/week/month, e.g. 7d,4w,12m.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; delete nothing.")] = False,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Delete the exports a retention policy no longer keeps (objects, segments, manifests)."""
    ctx = context(None, None, fmt, debug)
    failed = 0
    with boundary(ctx):
        cmds = export_commands()
        lines = cmds.lifecycle.prune(instance, parse_retention(keep_last, gfs), dry_run=dry_run)
        rows: list[Row] = [
            {
                "id": line.export.id,
                "instance": line.export.instance_name or line.export.instance_id,
                "created_at": line.export.created_at.isoformat(),
                "action": "keep" if line.keep else ("would delete" if dry_run else "deleted"),
                "why": list(line.reasons),
                "location": line.export.location,
                "error": line.error,
            }
            for line in lines
        ]
        failed = sum(1 for line in lines if line.error)
        emit_rows(
            rows, ["id", "instance", "created_at", "action", "why", "error"], ctx.fmt, sys.stdout, ctx.out
        )
        dropped = sum(1 for line in lines if not line.keep)
        ctx.err.print(
            f"{len(lines) - dropped} kept, {dropped} {'to delete (dry run)' if dry_run else 'deleted'}"
        )
    if failed:
        raise typer.Exit(1)
