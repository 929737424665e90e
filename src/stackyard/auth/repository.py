"""All SQL on API keys; runs inside the caller's transaction (flushes, never commits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackyard.auth.orm import ApiKeyRecord


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: ApiKeyRecord) -> ApiKeyRecord:
        self._session.add(record)
        self._session.flush()
        return record

    def by_id(self, key_id: str) -> ApiKeyRecord | None:
        return self._session.get(ApiKeyRecord, key_id)

    def by_prefix(self, prefix: str) -> ApiKeyRecord | None:
        return self._session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.prefix == prefix)).one_or_none()

    def list_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked and expired ones included, oldest first."""
        query = select(ApiKeyRecord).order_by(ApiKeyRecord.created_at, ApiKeyRecord.id)
        return list(self._session.scalars(query))

    def mark_revoked(self, record: ApiKeyRecord, when: datetime) -> ApiKeyRecord:
        record.revoked_at = when
        self._session.flush()
        return record
