"""Retention and schedules of exports: prune what a policy no longer keeps; fire cron schedules in `serve`.

A schedule fires as an `export.schedule` job (its creation time is when it fired, so every replica
sees the same history); the job picks the instances (ids, or a tag or metadata selector), submits one
export per instance and, when the schedule has a retention policy, prunes each instance's exports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.compute import ServerFilter
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import ValidationError
from stackyard.exports.models import (
    MANIFEST_SUFFIX,
    Export,
    ExportOptions,
    ExportState,
    parse_swift_url,
    parse_target,
)
from stackyard.exports.repository import ExportRepository
from stackyard.exports.retention import ExportRef, RetentionPolicy, parse_retention, plan_retention
from stackyard.exports.schedule import CronSchedule
from stackyard.exports.service import CloudFor, ExportRequest, ExportService
from stackyard.jobs.models import Job
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobContext

_LOG = logging.getLogger(__name__)

PRUNE_JOB = "export.prune"
SCHEDULE_JOB = "export.schedule"
SCHEDULE_ACTOR = "schedule"


@dataclass(frozen=True)
class PruneLine:
    export: Export
    keep: bool
    reasons: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class ExportSchedule:
    name: str
    cron: CronSchedule
    target: str
    provider: str | None = None
    instances: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)


def parse_schedules(entries: Sequence[Mapping[str, object]]) -> tuple[ExportSchedule, ...]:
    """`exports.schedules` from the settings; errors name the entry and field."""
    known = {
        "name",
        "cron",
        "target",
        "provider",
        "instances",
        "tags",
        "metadata",
        "options",
        "keep_last",
        "gfs",
    }
    schedules: list[ExportSchedule] = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"exports.schedules[{index}]"
        unknown = set(entry) - known
        if unknown:
            raise ValidationError(
                f"{where}.{sorted(unknown)[0]}",
                f"unknown schedule setting; known: {', '.join(sorted(known))}",
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise ValidationError(f"{where}.name", "each schedule needs a unique name")
        names.add(name)
        try:
            cron = CronSchedule.parse(str(entry.get("cron") or ""))
            parse_target(str(entry.get("target") or ""))
            options = entry.get("options") or {}
            if not isinstance(options, Mapping):
                raise ValidationError("options", "expected a mapping of export options")
            ExportOptions.from_payload(options)
            keep_last = entry.get("keep_last")
            retention = parse_retention(
                int(str(keep_last)) if keep_last is not None else None, _text(entry.get("gfs"))
            )
        except ValidationError as exc:
            raise ValidationError(f"{where}.{exc.field}", exc.message) from None
        instances, tags, metadata = (
            entry.get("instances") or [],
            entry.get("tags") or [],
            entry.get("metadata") or {},
        )
        if not isinstance(instances, list) or not isinstance(tags, list) or not isinstance(metadata, Mapping):
            raise ValidationError(where, "instances and tags are lists, metadata a mapping")
        if not instances and not tags and not metadata:
            raise ValidationError(where, "select instances: instances (ids), tags or metadata")
        schedules.append(
            ExportSchedule(
                name=name,
                cron=cron,
                target=str(entry["target"]),
                provider=_text(entry.get("provider")),
                instances=tuple(str(i) for i in instances),
                tags=tuple(str(t) for t in tags),
                metadata={str(k): str(v) for k, v in metadata.items()},
                options=dict(options),
                retention=retention,
            )
        )
    return tuple(schedules)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class ExportLifecycle:
    """Pruning by retention policy and firing export schedules."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        exports: ExportService,
        cloud_for: CloudFor,
        default_provider: str,
        schedules: Sequence[ExportSchedule] = (),
        *,
        dispatch: Callable[[str], None] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._exports = exports
        self._cloud_for = cloud_for
        self._provider = default_provider
        self._schedules = {s.name: s for s in schedules}
        self._dispatch = dispatch
        self._now = now
        self._started = now()

    # -- pruning -------------------------------------------------------------------------------------

    def prune(self, instance_id: str | None, policy: RetentionPolicy, *, dry_run: bool) -> list[PruneLine]:
        """Plan (and unless `dry_run`, delete) per instance: the export object, its segments and manifest."""
        if policy.is_empty:
            raise ValidationError("retention", "give keep_last and/or GFS counts (e.g. 7d,4w,12m)")
        with self._sessions() as session:
            done = ExportRepository(session).list_exports(
                instance_id=instance_id, states=[ExportState.SUCCEEDED], limit=100_000
            )
        by_instance: dict[str, list[Export]] = {}
        for export in done:
            by_instance.setdefault(export.instance_id or f"image:{export.image_id}", []).append(export)
        lines: list[PruneLine] = []
        for group in by_instance.values():
            plan = plan_retention((ExportRef(e.id, e.created_at) for e in group), policy)
            dropped = {ref.id for ref in plan.delete}
            for export in sorted(group, key=lambda e: (e.created_at, e.id), reverse=True):
                if export.id not in dropped:
                    lines.append(PruneLine(export, True, plan.reasons.get(export.id, ())))
                    continue
                error = None if dry_run else self._remove(export)
                lines.append(PruneLine(export, False, (), error))
        return lines

    def _remove(self, export: Export) -> str | None:
        try:
            if export.location and export.location.startswith("swift://"):
                objects = self._cloud_for(export.provider, export.region).objects
                location = parse_swift_url(export.location)
                objects.delete_object(location.container, location.name)  # segments too
                objects.delete_object(location.container, location.name + MANIFEST_SUFFIX)
            elif export.location:
                Path(export.location).unlink(missing_ok=True)
                Path(export.location + MANIFEST_SUFFIX).unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - one export that cannot be removed must not stop the rest
            _LOG.warning("could not prune export %s: %s", export.id, exc)
            return str(exc)
        with transaction(self._sessions) as session:
            ExportRepository(session).end(export.id, ExportState.PRUNED, self._now())
        return None

    def submit_prune(self, instance_id: str | None, policy: RetentionPolicy, created_by: str) -> Job:
        payload = {"instance_id": instance_id, "policy": policy.__dict__}
        with transaction(self._sessions) as session:
            job = JobRepository(session).add(
                PRUNE_JOB, payload, subject=instance_id, created_by=created_by, now=self._now()
            )
        if self._dispatch is not None:
            self._dispatch(job.id)
        return job

    def run_prune(self, ctx: JobContext) -> Mapping[str, object]:
        raw = ctx.job.payload.get("policy")
        policy = RetentionPolicy(**raw) if isinstance(raw, dict) else RetentionPolicy()
        instance = ctx.job.payload.get("instance_id")
        lines = self.prune(None if instance is None else str(instance), policy, dry_run=False)
        return {
            "kept": [line.export.id for line in lines if line.keep],
            "pruned": [line.export.id for line in lines if not line.keep and line.error is None],
            "failed": {line.export.id: line.error for line in lines if line.error is not None},
        }

    # -- schedules -----------------------------------------------------------------------------------

    def fire_due(self) -> list[Job]:
        """Called every minute by `serve`: a job for each schedule with a fire time since it last fired."""
        now = self._now()
        fired = []
        for schedule in self._schedules.values():
            with self._sessions() as session:
                last = JobRepository(session).list_jobs(
                    kinds=[SCHEDULE_JOB], subject=f"schedule:{schedule.name}", limit=1
                )
            last_run = max(last[0].created_at, self._started) if last else self._started
            if not schedule.cron.is_due(last_run, now):
                continue
            with transaction(self._sessions) as session:
                job = JobRepository(session).add(
                    SCHEDULE_JOB,
                    {"schedule": schedule.name},
                    subject=f"schedule:{schedule.name}",
                    created_by=SCHEDULE_ACTOR,
                    now=now,
                )
            if self._dispatch is not None:
                self._dispatch(job.id)
            fired.append(job)
        return fired

    def run_schedule(self, ctx: JobContext) -> Mapping[str, object]:
        name = str(ctx.job.payload.get("schedule"))
        schedule = self._schedules.get(name)
        if schedule is None:
            raise ValidationError("schedule", f"no schedule {name!r} in this process's settings")
        provider = schedule.provider or self._provider
        compute = self._cloud_for(provider, None).compute
        if schedule.instances:
            chosen = list(schedule.instances)
        else:
            filters = ServerFilter(tags=schedule.tags, metadata=schedule.metadata, all_projects=True)
            chosen = [instance.id for instance in compute.instances(filters)]
        submitted, failed = [], {}
        parsed = ExportOptions.from_payload(schedule.options)
        options = self._exports.default_options(**{key: getattr(parsed, key) for key in schedule.options})
        for instance_id in chosen:
            try:
                job = self._exports.submit(
                    ExportRequest(provider, instance_id, schedule.target, options), SCHEDULE_ACTOR
                )
                submitted.append(job.id)
            except Exception as exc:  # noqa: BLE001 - one instance's failure is recorded, the rest go on
                failed[instance_id] = str(exc)
        pruned: list[str] = []
        if not schedule.retention.is_empty:
            for instance_id in chosen:
                lines = self.prune(instance_id, schedule.retention, dry_run=False)
                pruned.extend(line.export.id for line in lines if not line.keep and line.error is None)
        return {"exports": submitted, "failed": failed, "pruned": pruned}

    def handlers(self) -> dict[str, Callable[[JobContext], Mapping[str, object] | None]]:
        return {PRUNE_JOB: self.run_prune, SCHEDULE_JOB: self.run_schedule}
