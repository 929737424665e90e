"""The `node_configs` table (migration 0004) as a SQLAlchemy mapping; only the repository queries it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.db.base import Base, UTCDateTime


class NodeConfigRecord(Base):
    __tablename__ = "node_configs"
    __table_args__ = (
        UniqueConstraint("provider_id", "node_name"),
        Index("ix_node_configs_scope", "scope"),
        Index("ix_node_configs_instance_id", "instance_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    scope: Mapped[str] = mapped_column(String(255))  # who syncs it: a custom resource, or a CLI/API input
    provider_id: Mapped[str] = mapped_column(String(255))  # Kubernetes providerID, openstack:///<vm>
    node_name: Mapped[str] = mapped_column(String(255))
    instance_id: Mapped[str] = mapped_column(String(64))
    cloud: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    subnet_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)  # the document last computed
    content_hash: Mapped[str] = mapped_column(String(64))
    pushed_hash: Mapped[str | None] = mapped_column(String(64))  # what the external API last accepted
    last_synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
