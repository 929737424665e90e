"""The `api_keys` table (migration 0001) as a SQLAlchemy mapping; only the repository queries it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.db.base import Base, UTCDateTime


class ApiKeyRecord(Base):
    """One API key: its public prefix, the SHA-256 of the whole key, the role and project it grants."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("prefix"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # a stackyard.auth.models.Role value
    project_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        # key_hash stays out: it is not the key, but nothing about the key belongs in logs.
        return f"ApiKeyRecord(id={self.id!r}, name={self.name!r}, prefix={self.prefix!r}, role={self.role!r})"
