"""All SQL on price books: add a new version, read the latest, one, or all of them."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import JSON, String, func, insert, literal, select, text
from sqlalchemy.orm import Session, defer

from stackyard.db.base import UTCDateTime, utcnow
from stackyard.pricing.orm import PriceBookRecord

# Key of the PostgreSQL advisory lock that serialises imports, so two at once cannot both take max+1.
_IMPORT_LOCK_KEY = 0x5059_5052_4943_45  # an arbitrary constant, unique to this table's writers


class PriceBookRepository:
    """Price book versions. Never commits: the caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self, document: Mapping[str, object], currency: str, comment: str, created_by: str
    ) -> PriceBookRecord:
        """Store `document` as the next version (the highest so far plus one)."""
        if self._session.get_bind().dialect.name == "postgresql":
            # Held until the caller's transaction ends: a concurrent import waits here, then its
            # INSERT (a new READ COMMITTED snapshot) sees this version and takes the next one.
            self._session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK_KEY})
        # One INSERT ... SELECT max+1: on SQLite it runs under the database's single write lock, so
        # two imports cannot read the same maximum.
        next_version = select(
            func.coalesce(func.max(PriceBookRecord.version), 0) + 1,
            literal(currency, String(3)),
            literal(dict(document), JSON()),
            literal(comment, String(500)),
            literal(created_by, String(255)),
            literal(utcnow(), UTCDateTime()),
        )
        new_id = self._session.execute(
            insert(PriceBookRecord)
            .from_select(
                ["version", "currency", "document", "comment", "created_by", "created_at"], next_version
            )
            .returning(PriceBookRecord.id)
        ).scalar_one()
        record = self._session.get(PriceBookRecord, new_id)
        if record is None:  # pragma: no cover - the row was inserted by the statement above
            raise LookupError(f"price book row {new_id} vanished inside its own transaction")
        return record

    def latest(self) -> PriceBookRecord | None:
        return self._session.scalar(select(PriceBookRecord).order_by(PriceBookRecord.version.desc()).limit(1))

    def get(self, version: int) -> PriceBookRecord | None:
        return self._session.scalar(select(PriceBookRecord).where(PriceBookRecord.version == version))

    def versions(self) -> list[PriceBookRecord]:
        """Every version, newest first, without loading documents (reading `document` raises)."""
        return list(
            self._session.scalars(
                select(PriceBookRecord)
                .options(defer(PriceBookRecord.document, raiseload=True))
                .order_by(PriceBookRecord.version.desc())
            )
        )
