"""audit.source_status: per-source freshness (stale since when).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create audit.source_status."""
    schemas = context.config.attributes["schemas"]
    op.create_table(
        'source_status',
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('rows_read', sa.BigInteger(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('last_ok_run', sa.Text(), nullable=True),
        sa.Column('last_ok_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stale', sa.Boolean(), nullable=True),
        sa.Column('stale_since_run', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('source', name='pk_audit_source_status'),
        schema=schemas['audit'],
    )


def downgrade() -> None:
    """Drop audit.source_status."""
    schemas = context.config.attributes["schemas"]
    op.drop_table('source_status', schema=schemas['audit'])
