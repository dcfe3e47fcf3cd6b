"""SQL sources on the real servers (PostgreSQL and MariaDB on 127.0.0.1): types read as text,
streaming in chunks, the watermark pushed into the query, disappeared rows, a bad table name."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors.readers import SourceReadError, SqlReader
from connectors.stage import extract_source
from warehouse.connection import work_db

from .conftest import contract_dict, ctx, unique_table, write_contract

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"

SERVERS = [pytest.param(PG_URL, marks=pytest.mark.postgres, id="postgres"),
           pytest.param(MARIADB_URL, marks=pytest.mark.mariadb, id="mariadb")]

ROWS = [
    {"ztry_bh": "ZT00000001", "xm": "张三", "xb": 1, "csrq": "19900101", "sfzh": "042050199001011234",
     "lasj": dt.date(2024, 3, 5), "je": Decimal("1234.50"), "gxsj": dt.datetime(2026, 11, 1, 8, 0)},
    {"ztry_bh": "ZT00000002", "xm": "买买提·艾力", "xb": 2, "csrq": None, "sfzh": None,
     "lasj": None, "je": None, "gxsj": dt.datetime(2026, 11, 1, 9, 30, 15)},
]


@pytest.fixture
def wanted_table(request):
    """A uniquely named wanted-list table on the server, dropped after the test."""
    url = request.param
    name = unique_table("ug_wanted")
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    md = sa.MetaData()
    t = sa.Table(name, md,
                 sa.Column("ztry_bh", sa.String(20), primary_key=True),
                 sa.Column("xm", sa.String(50)), sa.Column("xb", sa.Integer),
                 sa.Column("csrq", sa.String(8)), sa.Column("sfzh", sa.String(18)),
                 sa.Column("lasj", sa.Date), sa.Column("je", sa.Numeric(10, 2)),
                 sa.Column("gxsj", sa.DateTime))
    md.create_all(eng)
    with eng.begin() as con:
        con.execute(t.insert(), ROWS)
    try:
        yield url, name, eng, t
    finally:
        md.drop_all(eng)
        eng.dispose()


def _contract(settings, url: str, table: str, **over):
    over.setdefault("location", {"url": url, "table": table})
    return write_contract(settings, contract_dict(
        name="wanted", kind="wanted_list", format={"type": "sql"},
        key=["ztry_bh"], watermark="gxsj",
        columns=[{"column": "xm", "field": "name", "required": True},
                 {"column": "xb", "field": "sex", "codes": {"1": "男", "2": "女"}},
                 {"column": "csrq", "field": "birth_date", "formats": ["%Y%m%d"]},
                 {"column": "sfzh", "field": "id_number"},
                 {"column": "lasj", "field": "case_date"},
                 {"column": "je", "field": "subsidy_monthly_amount"},
                 {"column": "gxsj", "field": "source_updated_at"}], **over))


@pytest.mark.parametrize("wanted_table", SERVERS, indirect=True)
def test_sql_reader_reads_every_type_as_text_in_chunks(wanted_table) -> None:
    url, name, eng, t = wanted_table
    with eng.begin() as con:
        con.execute(t.insert(), [{"ztry_bh": f"ZT9{i:07d}", "xm": "x", "gxsj": dt.datetime(2026, 1, 1)}
                                 for i in range(25)])
    r = SqlReader(url, table=name, chunk_rows=10)
    assert r.columns == ["ztry_bh", "xm", "xb", "csrq", "sfzh", "lasj", "je", "gxsj"]
    batches = list(r.batches())
    assert [b.num_rows for b in batches] == [10, 10, 7]
    got = pa.Table.from_batches(batches).to_pydict()
    i = got["ztry_bh"].index("ZT00000001")
    j = got["ztry_bh"].index("ZT00000002")
    assert [got[c][i] for c in ("xm", "xb", "csrq", "sfzh", "lasj", "je", "gxsj")] == \
        ["张三", "1", "19900101", "042050199001011234", "2024-03-05", "1234.50", "2026-11-01 08:00:00"]
    assert [got[c][j] for c in ("xm", "sfzh", "lasj", "je", "gxsj")] == \
        ["买买提·艾力", None, None, None, "2026-11-01 09:30:15"]
    assert got["_row_no"] == list(range(1, 28))
    assert set(got["_file"]) == {name}


@pytest.mark.parametrize("wanted_table", SERVERS, indirect=True)
def test_sql_source_lands_then_takes_only_newer_rows(settings, wanted_table) -> None:
    url, name, eng, t = wanted_table
    c = _contract(settings, url, name)
    with work_db(settings.work_db) as con:
        r1 = extract_source(con, c, settings, ctx(1))
        assert r1["status"] == "ok", r1["error"]
        assert (r1["rows_read"], r1["rows_new"], r1["watermark_max"]) == (2, 2, "2026-11-01 09:30:15")
        assert con.execute('SELECT "xm", "lasj", "_source_key" FROM raw.wanted ORDER BY _row_no'
                           ).fetchall()[0] == ("张三", "2024-03-05", "ZT00000001")
    with eng.begin() as sc:
        sc.execute(t.update().where(t.c.ztry_bh == "ZT00000001").values(
            xm="张叁", gxsj=dt.datetime(2026, 11, 2, 7, 0)))
        sc.execute(t.delete().where(t.c.ztry_bh == "ZT00000002"))
        sc.execute(t.insert(), [{"ztry_bh": "ZT00000003", "xm": "丙", "xb": 1,
                                 "gxsj": dt.datetime(2026, 11, 2, 8, 0)}])
    with work_db(settings.work_db) as con:
        r2 = extract_source(con, c, settings, ctx(2))
        assert r2["status"] == "ok", r2["error"]
        assert r2["watermark_since"] == "2026-11-01 09:30:15"
        assert (r2["rows_read"], r2["rows_new"], r2["rows_changed"], r2["rows_disappeared"]) == \
            (2, 1, 1, 1)
        assert con.execute("SELECT source_key FROM meta.disappeared").fetchall() == [("ZT00000002",)]
        # idempotent re-run of day 2 (the watermark is the one before day 2)
        r2b = extract_source(con, c, settings, ctx(2))
        assert (r2b["rows_read"], r2b["rows_new"], r2b["rows_changed"], r2b["rows_disappeared"]) == \
            (2, 1, 1, 1)


@pytest.mark.parametrize("wanted_table", SERVERS, indirect=True)
def test_sql_query_location_with_watermark(settings, wanted_table) -> None:
    url, name, eng, t = wanted_table
    c = _contract(settings, url, name, location={
        "url": url, "query": f"SELECT * FROM {name} WHERE xb = 1"})
    with work_db(settings.work_db) as con:
        r = extract_source(con, c, settings, ctx(1))
    assert r["status"] == "ok" and r["rows_read"] == 1


@pytest.mark.parametrize("wanted_table", SERVERS, indirect=True)
def test_sql_missing_table_is_a_clear_error(wanted_table) -> None:
    url, name, eng, t = wanted_table
    with pytest.raises(SourceReadError, match=rf"{name}_nope: query failed: "):
        SqlReader(url, table=name + "_nope")
