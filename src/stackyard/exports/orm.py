"""The `exports` table (migration 0003) as a SQLAlchemy mapping; only the repository queries it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.db.base import Base, UTCDateTime


class ExportRecord(Base):
    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_instance_id_created_at", "instance_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the export job's id
    provider: Mapped[str] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(64))
    instance_name: Mapped[str | None] = mapped_column(String(255))
    image_id: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(1024))
    location: Mapped[str | None] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16))  # an ExportState value
    disk_format: Mapped[str | None] = mapped_column(String(16))
    compression: Mapped[str] = mapped_column(String(16))
    source_bytes: Mapped[int | None] = mapped_column(BigInteger)
    stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    hash_algo: Mapped[str | None] = mapped_column(String(16))
    hash_value: Mapped[str | None] = mapped_column(String(256))
    stored_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
