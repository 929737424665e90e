"""All SQL on the exports table: record an export, finish it, list an instance's exports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackyard.errors import NotFound
from stackyard.exports.models import Compression, Export, ExportState
from stackyard.exports.orm import ExportRecord


def _export(row: ExportRecord) -> Export:
    return Export(
        id=row.id,
        provider=row.provider,
        region=row.region,
        instance_id=row.instance_id,
        instance_name=row.instance_name,
        image_id=row.image_id,
        target=row.target,
        location=row.location,
        state=ExportState(row.state),
        disk_format=row.disk_format,
        compression=Compression(row.compression),
        source_bytes=row.source_bytes,
        stored_bytes=row.stored_bytes,
        hash_algo=row.hash_algo,
        hash_value=row.hash_value,
        stored_sha256=row.stored_sha256,
        created_by=row.created_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
        pruned_at=row.pruned_at,
    )


@dataclass(frozen=True)
class ExportOutcome:
    """What a finished export records."""

    location: str
    image_id: str | None
    disk_format: str | None
    source_bytes: int
    stored_bytes: int
    hash_algo: str
    hash_value: str
    stored_sha256: str


class ExportRepository:
    """Works inside the caller's transaction; flushes, never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        export_id: str,
        *,
        provider: str,
        region: str | None,
        instance_id: str | None,
        instance_name: str | None,
        image_id: str | None,
        target: str,
        compression: Compression,
        created_by: str,
        now: datetime,
    ) -> Export:
        row = ExportRecord(
            id=export_id,
            provider=provider,
            region=region,
            instance_id=instance_id,
            instance_name=instance_name,
            image_id=image_id,
            target=target,
            state=ExportState.QUEUED.value,
            compression=compression.value,
            created_by=created_by,
            created_at=now,
        )
        self._session.add(row)
        self._session.flush()
        return _export(row)

    def get(self, export_id: str) -> Export:
        row = self._session.get(ExportRecord, export_id)
        if row is None:
            raise NotFound(f"no export {export_id!r}")
        return _export(row)

    def succeed(self, export_id: str, outcome: ExportOutcome, now: datetime) -> None:
        row = self._session.get(ExportRecord, export_id)
        if row is None:
            raise NotFound(f"no export {export_id!r}")
        row.state = ExportState.SUCCEEDED.value
        row.location = outcome.location
        row.image_id = outcome.image_id
        row.disk_format = outcome.disk_format
        row.source_bytes = outcome.source_bytes
        row.stored_bytes = outcome.stored_bytes
        row.hash_algo = outcome.hash_algo
        row.hash_value = outcome.hash_value
        row.stored_sha256 = outcome.stored_sha256
        row.finished_at = now

    def end(self, export_id: str, state: ExportState, now: datetime) -> None:
        """Failed, cancelled or pruned."""
        row = self._session.get(ExportRecord, export_id)
        if row is None:
            return
        row.state = state.value
        if state is ExportState.PRUNED:
            row.pruned_at = now
        else:
            row.finished_at = now

    def list_exports(
        self,
        *,
        instance_id: str | None = None,
        states: Sequence[ExportState] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> list[Export]:
        query = select(ExportRecord).order_by(ExportRecord.created_at.desc(), ExportRecord.id)
        if instance_id is not None:
            query = query.where(ExportRecord.instance_id == instance_id)
        if states:
            query = query.where(ExportRecord.state.in_([s.value for s in states]))
        return [_export(row) for row in self._session.scalars(query.limit(limit).offset(offset))]

    def admit(self, export_id: str, *, target_key: str, per_cloud: int, per_target: int) -> bool:
        """Move a queued export to running if its cloud and its target have a free slot; True when it
        runs (or already ran: a resumed attempt keeps its slot)."""
        row = self._session.get(ExportRecord, export_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no export {export_id!r}")
        if row.state != ExportState.QUEUED.value:
            return True
        if self.count_running(provider=row.provider) >= per_cloud:
            return False
        if self.count_running(target_key=target_key) >= per_target:
            return False
        row.state = ExportState.RUNNING.value
        return True

    def count_running(self, *, provider: str | None = None, target_key: str | None = None) -> int:
        """Running exports against one cloud, or into one target (by the target's key prefix)."""
        query = (
            select(func.count())
            .select_from(ExportRecord)
            .where(ExportRecord.state == ExportState.RUNNING.value)
        )
        if provider is not None:
            query = query.where(ExportRecord.provider == provider)
        if target_key is not None:
            query = query.where(ExportRecord.target.startswith(target_key, autoescape=True))
        return int(self._session.scalar(query) or 0)
