"""The declared schema: DuckDB DDL runs, the data dictionary documents every column."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse.schema import (ALL_TABLES, DUCKDB_TYPES, PG_TYPES, data_dictionary_markdown,
                              duckdb_ddl, sa_metadata, table)

REPO = Path(__file__).resolve().parents[2]
DICTIONARY = REPO / "docs" / "data-dictionary.md"


def test_duckdb_ddl_creates_every_declared_column() -> None:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS mdb; USE mdb")
    con.execute(duckdb_ddl())
    for t in ALL_TABLES:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 'mdb' AND "
            "schema_name = ? AND table_name = ? ORDER BY column_index",
            [t.schema, t.name]).fetchall()]
        assert cols == list(t.column_names()), t.qualified


def test_ddl_without_keys_accepts_duplicates_with_keys_rejects() -> None:
    con = duckdb.connect()
    con.execute(duckdb_ddl(primary_keys=False))
    con.execute("INSERT INTO master.grid (grid_code, run_id) VALUES ('g1', 'r'), ('g1', 'r')")
    con2 = duckdb.connect()
    con2.execute(duckdb_ddl())
    con2.execute("INSERT INTO master.grid (grid_code, run_id) VALUES ('g1', 'r')")
    with pytest.raises(duckdb.ConstraintException):
        con2.execute("INSERT INTO master.grid (grid_code, run_id) VALUES ('g1', 'r')")


@pytest.mark.parametrize("t", ALL_TABLES, ids=lambda t: t.qualified)
def test_every_column_has_meaning_example_and_known_type(t) -> None:
    assert t.doc and t.filled_by and set(t.primary_key) <= set(t.column_names())
    assert len(set(t.column_names())) == len(t.columns)
    for c in t.columns:
        assert c.doc.strip(), f"{t.qualified}.{c.name} undocumented"
        assert c.example.strip(), f"{t.qualified}.{c.name} has no example"
        assert c.type in DUCKDB_TYPES and c.type in PG_TYPES


def test_data_dictionary_file_is_generated_from_the_declarations() -> None:
    assert DICTIONARY.read_text(encoding="utf-8") == data_dictionary_markdown(), (
        "docs/data-dictionary.md is stale: python -m warehouse.schema > docs/data-dictionary.md")


@pytest.mark.parametrize("t", ALL_TABLES, ids=lambda t: t.qualified)
def test_data_dictionary_mentions_every_column(t) -> None:
    text = DICTIONARY.read_text(encoding="utf-8")
    section = text.split(f"## {t.qualified}\n", 1)[1].split("\n## ", 1)[0]
    for c in t.columns:
        assert f"| `{c.name}` |" in section, f"{t.qualified}.{c.name}"


def test_sqlalchemy_tables_mirror_declarations_and_rename_schemas() -> None:
    md = sa_metadata({"master": "master_x", "audit": "audit_x"})
    assert len(md.tables) == len(ALL_TABLES)
    for t in ALL_TABLES:
        schema = {"master": "master_x", "audit": "audit_x"}[t.schema]
        sa_t = md.tables[f"{schema}.{t.name}"]
        assert [c.name for c in sa_t.columns] == list(t.column_names())
        assert [c.name for c in sa_t.primary_key.columns] == list(t.primary_key)


def test_table_lookup() -> None:
    assert table("master.person").primary_key == ("person_id",)
    with pytest.raises(KeyError):
        table("master.nope")
