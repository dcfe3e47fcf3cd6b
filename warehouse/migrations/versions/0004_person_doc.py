"""master.person_doc: each person's picture as one JSON document for the query service.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create master.person_doc."""
    schemas = context.config.attributes["schemas"]
    op.create_table(
        'person_doc',
        sa.Column('id_key', sa.Text(), nullable=False),
        sa.Column('person_id', sa.Text(), nullable=False),
        sa.Column('other_person_ids', postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column('doc', postgresql.JSONB(), nullable=False),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id_key', name='pk_master_person_doc'),
        schema=schemas['master'],
    )


def downgrade() -> None:
    """Drop master.person_doc."""
    schemas = context.config.attributes["schemas"]
    op.drop_table('person_doc', schema=schemas['master'])
