"""The wanted list loaded into real SQL servers (PostgreSQL and MariaDB)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import MARIADB_URL, PG_URL
from tests.synthetic.conftest import manifest, read_sql
from unigrid.synthetic import generate_city
from unigrid.synthetic.writers import masked


def _load_and_check(url: str, tmp_path: Path) -> None:
    table = f"ps_wanted_list_t{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    try:
        m = generate_city(1000, 11, tmp_path / "c", sql_url=url, sql_table=table)
        src = next(s for s in m["sources"] if s["name"] == "ps_wanted_list")
        assert src["table"] == table and src["location"].endswith(table)
        assert src["url"] == masked(url)
        assert not (tmp_path / "c" / "exports" / "ps_wanted.sqlite").exists()
        df = read_sql(url, table)
        assert len(df) == src["records"] >= 3
        assert list(df.columns) == ["ztry_bh", "xm", "xb", "csrq", "sfzh", "ajbh", "lasj", "hjdz", "gxsj"]
        assert df["ztry_bh"].is_unique
        assert df["xm"].str.len().min() >= 2  # Chinese text survives the round trip
        # replaced, not appended, on the next generate
        generate_city(1000, 11, tmp_path / "c", sql_url=url, sql_table=table, force=True)
        assert len(read_sql(url, table)) == src["records"]
        assert manifest(tmp_path / "c")["sources"][1]["records"] == src["records"]
    finally:
        with engine.begin() as con:
            con.execute(text(f"DROP TABLE IF EXISTS {table}"))
        assert table not in inspect(engine).get_table_names()
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_wanted_list_in_postgresql(tmp_path: Path) -> None:
    _load_and_check(PG_URL, tmp_path)


@pytest.mark.mariadb
@pytest.mark.slow
def test_wanted_list_in_mariadb(tmp_path: Path) -> None:
    _load_and_check(MARIADB_URL, tmp_path)


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://u:secret@db:5432/x", "postgresql+psycopg://u:***@db:5432/x"),
    ("mysql+pymysql://root@127.0.0.1:3306/test", "mysql+pymysql://root@127.0.0.1:3306/test"),
])
def test_password_masked(url: str, shown: str) -> None:
    assert masked(url) == shown
