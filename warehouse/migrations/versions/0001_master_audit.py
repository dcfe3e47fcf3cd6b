"""master and audit schemas, first version (frozen copy of warehouse/schema.py at 2026-11).

Revision ID: 0001
Revises:
Create Date: 2026-11-21

A later change of warehouse/schema.py needs a new revision (0002, ...) doing the same change;
tests/warehouse/test_postgres.py checks that head equals the declarations.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every master and audit table in the schemas the caller named."""
    schemas = context.config.attributes["schemas"]
    op.create_table(
        'person',
        sa.Column('person_id', sa.Text(), nullable=False),
        sa.Column('n_records', sa.Integer(), nullable=True),
        sa.Column('sources', postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column('id_number', sa.Text(), nullable=True),
        sa.Column('id_number_source', sa.Text(), nullable=True),
        sa.Column('id_number_source_key', sa.Text(), nullable=True),
        sa.Column('name', sa.Text(), nullable=True),
        sa.Column('name_source', sa.Text(), nullable=True),
        sa.Column('name_source_key', sa.Text(), nullable=True),
        sa.Column('sex', sa.Text(), nullable=True),
        sa.Column('sex_source', sa.Text(), nullable=True),
        sa.Column('sex_source_key', sa.Text(), nullable=True),
        sa.Column('birth_date', sa.Date(), nullable=True),
        sa.Column('birth_date_source', sa.Text(), nullable=True),
        sa.Column('birth_date_source_key', sa.Text(), nullable=True),
        sa.Column('ethnicity', sa.Text(), nullable=True),
        sa.Column('ethnicity_source', sa.Text(), nullable=True),
        sa.Column('ethnicity_source_key', sa.Text(), nullable=True),
        sa.Column('registered_address', sa.Text(), nullable=True),
        sa.Column('registered_address_source', sa.Text(), nullable=True),
        sa.Column('registered_address_source_key', sa.Text(), nullable=True),
        sa.Column('address', sa.Text(), nullable=True),
        sa.Column('address_source', sa.Text(), nullable=True),
        sa.Column('address_source_key', sa.Text(), nullable=True),
        sa.Column('house_key', sa.Text(), nullable=True),
        sa.Column('house_key_source', sa.Text(), nullable=True),
        sa.Column('house_key_source_key', sa.Text(), nullable=True),
        sa.Column('phone', sa.Text(), nullable=True),
        sa.Column('phone_source', sa.Text(), nullable=True),
        sa.Column('phone_source_key', sa.Text(), nullable=True),
        sa.Column('household_no', sa.Text(), nullable=True),
        sa.Column('household_no_source', sa.Text(), nullable=True),
        sa.Column('household_no_source_key', sa.Text(), nullable=True),
        sa.Column('death_date', sa.Date(), nullable=True),
        sa.Column('death_date_source', sa.Text(), nullable=True),
        sa.Column('death_date_source_key', sa.Text(), nullable=True),
        sa.Column('is_deceased', sa.Boolean(), nullable=True),
        sa.Column('house_id', sa.Text(), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('person_id', name='pk_master_person'),
        schema=schemas['master'],
    )
    op.create_table(
        'person_link',
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_key', sa.Text(), nullable=False),
        sa.Column('person_id', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=True),
        sa.Column('department', sa.Text(), nullable=True),
        sa.Column('method', sa.Text(), nullable=True),
        sa.Column('score', sa.Float(precision=53), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'source_key', name='pk_master_person_link'),
        schema=schemas['master'],
    )
    op.create_table(
        'person_event',
        sa.Column('event_id', sa.Text(), nullable=False),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.Column('event', sa.Text(), nullable=False),
        sa.Column('person_id', sa.Text(), nullable=True),
        sa.Column('other_person_id', sa.Text(), nullable=True),
        sa.Column('detail', postgresql.JSONB(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('event_id', name='pk_master_person_event'),
        schema=schemas['master'],
    )
    op.create_table(
        'house',
        sa.Column('house_id', sa.Text(), nullable=False),
        sa.Column('house_key', sa.Text(), nullable=False),
        sa.Column('standard_address', sa.Text(), nullable=True),
        sa.Column('district', sa.Text(), nullable=True),
        sa.Column('district_code', sa.Text(), nullable=True),
        sa.Column('street', sa.Text(), nullable=True),
        sa.Column('community', sa.Text(), nullable=True),
        sa.Column('compound', sa.Text(), nullable=True),
        sa.Column('building', sa.Text(), nullable=True),
        sa.Column('unit', sa.Text(), nullable=True),
        sa.Column('room', sa.Text(), nullable=True),
        sa.Column('grid_code', sa.Text(), nullable=True),
        sa.Column('n_registered', sa.Integer(), nullable=True),
        sa.Column('n_actual', sa.Integer(), nullable=True),
        sa.Column('n_records', sa.Integer(), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('house_id', name='pk_master_house'),
        schema=schemas['master'],
    )
    op.create_table(
        'person_house',
        sa.Column('person_id', sa.Text(), nullable=False),
        sa.Column('house_id', sa.Text(), nullable=False),
        sa.Column('relation', sa.Text(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_key', sa.Text(), nullable=False),
        sa.Column('valid_from', sa.Date(), nullable=True),
        sa.Column('valid_to', sa.Date(), nullable=True),
        sa.Column('is_current', sa.Boolean(), nullable=True),
        sa.Column('registry_status', sa.Text(), nullable=True),
        sa.Column('resident_type', sa.Text(), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'source_key', name='pk_master_person_house'),
        schema=schemas['master'],
    )
    op.create_table(
        'household',
        sa.Column('household_no', sa.Text(), nullable=False),
        sa.Column('person_id', sa.Text(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_key', sa.Text(), nullable=False),
        sa.Column('relation_to_head', sa.Text(), nullable=True),
        sa.Column('is_head', sa.Boolean(), nullable=True),
        sa.Column('registry_status', sa.Text(), nullable=True),
        sa.Column('is_active', sa.Boolean(), nullable=True),
        sa.Column('registered_at', sa.Date(), nullable=True),
        sa.Column('cancel_date', sa.Date(), nullable=True),
        sa.Column('cancel_reason', sa.Text(), nullable=True),
        sa.Column('house_id', sa.Text(), nullable=True),
        sa.Column('head_person_id', sa.Text(), nullable=True),
        sa.Column('n_members', sa.Integer(), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'source_key', name='pk_master_household'),
        schema=schemas['master'],
    )
    op.create_table(
        'grid',
        sa.Column('grid_code', sa.Text(), nullable=False),
        sa.Column('community', sa.Text(), nullable=True),
        sa.Column('street', sa.Text(), nullable=True),
        sa.Column('district', sa.Text(), nullable=True),
        sa.Column('district_code', sa.Text(), nullable=True),
        sa.Column('n_houses', sa.Integer(), nullable=True),
        sa.Column('n_residents', sa.Integer(), nullable=True),
        sa.Column('n_records', sa.Integer(), nullable=True),
        sa.Column('first_collected_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_collected_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('grid_code', name='pk_master_grid'),
        schema=schemas['master'],
    )
    op.create_table(
        'run',
        sa.Column('run_id', sa.Text(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('forced', sa.Boolean(), nullable=True),
        sa.Column('seconds', sa.Float(precision=53), nullable=True),
        sa.Column('persons', sa.BigInteger(), nullable=True),
        sa.Column('person_links', sa.BigInteger(), nullable=True),
        sa.Column('houses', sa.BigInteger(), nullable=True),
        sa.Column('counts', postgresql.JSONB(), nullable=True),
        sa.Column('checks', postgresql.JSONB(), nullable=True),
        sa.Column('failed_checks', postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column('previous_run_id', sa.Text(), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('run_id', 'started_at', name='pk_audit_run'),
        schema=schemas['audit'],
    )
    op.create_table(
        'finding',
        sa.Column('finding_id', sa.Text(), nullable=False),
        sa.Column('rule', sa.Text(), nullable=False),
        sa.Column('person_id', sa.Text(), nullable=True),
        sa.Column('subject_key', sa.Text(), nullable=True),
        sa.Column('evidence', postgresql.JSONB(), nullable=True),
        sa.Column('amount_monthly', sa.Numeric(18, 2), nullable=True),
        sa.Column('amount_total', sa.Numeric(18, 2), nullable=True),
        sa.Column('months', sa.Integer(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('dismissed_reason', sa.Text(), nullable=True),
        sa.Column('status_by', sa.Text(), nullable=True),
        sa.Column('status_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('first_seen_run', sa.Text(), nullable=True),
        sa.Column('last_seen_run', sa.Text(), nullable=True),
        sa.Column('evidence_hash', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('finding_id', name='pk_audit_finding'),
        schema=schemas['audit'],
    )
    op.create_table(
        'decision',
        sa.Column('decision_id', sa.BigInteger(), nullable=False),
        sa.Column('left_source', sa.Text(), nullable=False),
        sa.Column('left_key', sa.Text(), nullable=False),
        sa.Column('right_source', sa.Text(), nullable=False),
        sa.Column('right_key', sa.Text(), nullable=False),
        sa.Column('verdict', sa.Text(), nullable=False),
        sa.Column('user', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('supersedes', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('decision_id', name='pk_audit_decision'),
        schema=schemas['audit'],
    )
    op.create_table(
        'access_log',
        sa.Column('access_id', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user', sa.Text(), nullable=False),
        sa.Column('role', sa.Text(), nullable=True),
        sa.Column('action', sa.Text(), nullable=True),
        sa.Column('person_id', sa.Text(), nullable=True),
        sa.Column('purpose', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('access_id', name='pk_audit_access_log'),
        schema=schemas['audit'],
    )


def downgrade() -> None:
    """Drop the tables (publish never downgrades: it builds fresh schemas)."""
    schemas = context.config.attributes["schemas"]
    for name in ("access_log", "decision", "finding", "run"):
        op.drop_table(name, schema=schemas["audit"])
    for name in ("grid", "household", "person_house", "house", "person_event", "person_link",
                 "person"):
        op.drop_table(name, schema=schemas["master"])
