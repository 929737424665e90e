"""Network inventory: the node_configs table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stackyard.db.base import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_configs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("node_name", sa.String(255), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("cloud", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=True),
        sa.Column("subnet_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("pushed_hash", sa.String(64), nullable=True),
        sa.Column("last_synced_at", UTCDateTime(), nullable=False),
        sa.Column("last_pushed_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_configs")),
        sa.UniqueConstraint("provider_id", "node_name", name=op.f("uq_node_configs_provider_id")),
    )
    op.create_index("ix_node_configs_scope", "node_configs", ["scope"])
    op.create_index("ix_node_configs_instance_id", "node_configs", ["instance_id"])


def downgrade() -> None:
    op.drop_index("ix_node_configs_instance_id", table_name="node_configs")
    op.drop_index("ix_node_configs_scope", table_name="node_configs")
    op.drop_table("node_configs")
