"""Exports: byte-sized job progress with a phase, a rate and a resume checkpoint; the exports table.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stackyard.db.base import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Byte counts pass 2 GiB, which a 32-bit INTEGER (PostgreSQL) cannot hold.
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("progress_done", existing_type=sa.Integer(), type_=sa.BigInteger())
        batch.alter_column("progress_total", existing_type=sa.Integer(), type_=sa.BigInteger())
        batch.add_column(sa.Column("phase", sa.String(32), nullable=True))
        batch.add_column(sa.Column("rate", sa.Float(), nullable=True))
        batch.add_column(sa.Column("checkpoint", sa.JSON(), nullable=True))
    op.create_table(
        "exports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("instance_id", sa.String(64), nullable=True),
        sa.Column("instance_name", sa.String(255), nullable=True),
        sa.Column("image_id", sa.String(64), nullable=True),
        sa.Column("target", sa.String(1024), nullable=False),
        sa.Column("location", sa.String(1024), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("disk_format", sa.String(16), nullable=True),
        sa.Column("compression", sa.String(16), nullable=False),
        sa.Column("source_bytes", sa.BigInteger(), nullable=True),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=True),
        sa.Column("hash_algo", sa.String(16), nullable=True),
        sa.Column("hash_value", sa.String(256), nullable=True),
        sa.Column("stored_sha256", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("pruned_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    op.create_index("ix_exports_instance_id_created_at", "exports", ["instance_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_exports_instance_id_created_at", table_name="exports")
    op.drop_table("exports")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("checkpoint")
        batch.drop_column("rate")
        batch.drop_column("phase")
        batch.alter_column("progress_total", existing_type=sa.BigInteger(), type_=sa.Integer())
        batch.alter_column("progress_done", existing_type=sa.BigInteger(), type_=sa.Integer())
