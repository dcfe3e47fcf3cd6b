"""Alembic migrations of the PostgreSQL target (run by :mod:`warehouse.postgres`)."""
