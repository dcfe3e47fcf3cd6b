"""master.source_record, master.person_name, master.review_queue: what the query service reads.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three service tables."""
    schemas = context.config.attributes["schemas"]
    op.create_table(
        'source_record',
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_key', sa.Text(), nullable=False),
        sa.Column('person_id', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=True),
        sa.Column('department', sa.Text(), nullable=True),
        sa.Column('fields', postgresql.JSONB(), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'source_key', name='pk_master_source_record'),
        schema=schemas['master'],
    )
    op.create_table(
        'person_name',
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_key', sa.Text(), nullable=False),
        sa.Column('person_id', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=True),
        sa.Column('name_py', sa.Text(), nullable=True),
        sa.Column('name_pyf', sa.Text(), nullable=True),
        sa.Column('birth_date', sa.Date(), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'source_key', name='pk_master_person_name'),
        schema=schemas['master'],
    )
    op.create_table(
        'review_queue',
        sa.Column('queue_no', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('left_source', sa.Text(), nullable=False),
        sa.Column('left_key', sa.Text(), nullable=False),
        sa.Column('left_person_id', sa.Text(), nullable=True),
        sa.Column('left_department', sa.Text(), nullable=True),
        sa.Column('right_source', sa.Text(), nullable=False),
        sa.Column('right_key', sa.Text(), nullable=False),
        sa.Column('right_person_id', sa.Text(), nullable=True),
        sa.Column('right_department', sa.Text(), nullable=True),
        sa.Column('match_weight', sa.Float(53), nullable=True),
        sa.Column('match_probability', sa.Float(53), nullable=True),
        sa.Column('linked_now', sa.Boolean(), nullable=True),
        sa.Column('decided', sa.Text(), nullable=True),
        sa.Column('explanation', postgresql.JSONB(), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('queue_no', name='pk_master_review_queue'),
        schema=schemas['master'],
    )


def downgrade() -> None:
    """Drop the three service tables."""
    schemas = context.config.attributes["schemas"]
    for name in ('review_queue', 'person_name', 'source_record'):
        op.drop_table(name, schema=schemas['master'])
