"""Alembic environment for the PostgreSQL master target.

Run programmatically by :func:`warehouse.postgres.migrate`, never from the ``alembic`` command
line: the caller passes an open connection (``config.attributes["connection"]``) and the
physical schema names (``config.attributes["schemas"]``, e.g. ``{"master": "master_20261120",
"audit": "audit_20261120"}``). Every publish migrates a fresh pair of schemas to head, so the
version table lives in the new audit schema and is swapped in with it.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
schemas = config.attributes["schemas"]

context.configure(connection=connection, target_metadata=None,
                  version_table_schema=schemas["audit"], transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
