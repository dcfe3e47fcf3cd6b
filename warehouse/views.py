"""Population views the city asks for, and the voter roll: SQL over the published master.

- :func:`population` — per grid, community, street or district: population, males, females,
  sex ratio (males per 100 females). Who counts: persons alive on the date (no death date, or
  a death after it), born on or before it, placed where they live now
  (``master.person.house_id``); the grid's community / street / district come from
  ``master.grid`` where the house has a grid, else from the house's own address parts;
  unknown places are ``未知``.
- :func:`age_pyramid` — the same persons in 5-year age bands (``0-4`` ... ``95-99``,
  ``100+``) by sex, per area.
- :func:`voter_roll` — for an election date and a district: persons 18 or older on that date,
  alive (no death evidence), with an active household registration (户籍) whose registered
  house lies in the district; one row per person (a person registered twice is listed once).
  :func:`export_voter_roll` writes it to XLSX with Chinese headers, ID numbers masked unless
  asked otherwise.

Each function takes an open read-only master connection (``warehouse.queries.open_master``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

Level = Literal["grid", "community", "street", "district"]

LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "district": ("district",),
    "street": ("district", "street"),
    "community": ("district", "street", "community"),
    "grid": ("district", "street", "community", "grid_code"),
}
"""Columns identifying an area of each level (its parents first)."""

LEVEL_ZH = {"district": "区县", "street": "街道", "community": "社区", "grid_code": "网格编码"}

BANDS = tuple(f"{a}-{a + 4}" for a in range(0, 100, 5)) + ("100+",)
"""Age bands of the pyramid, youngest first."""

UNKNOWN = "未知"


def _age_sql(birth: str, on: str) -> str:
    """SQL: whole years of age on date ``on`` (a birthday on ``on`` counts)."""
    return (f"(year({on}) - year({birth}) - CASE WHEN month({on}) * 100 + day({on}) "
            f"< month({birth}) * 100 + day({birth}) THEN 1 ELSE 0 END)")


def residents_sql(on: date) -> str:
    """Persons alive on ``on`` with their age, sex and area (district .. grid) of residence."""
    d = f"DATE '{on.isoformat()}'"
    return f"""
        SELECT p.person_id, p.sex, {_age_sql('p.birth_date', d)} AS age,
               coalesce(g.district, h.district, '{UNKNOWN}') AS district,
               coalesce(g.street, h.street, '{UNKNOWN}') AS street,
               coalesce(g.community, h.community, '{UNKNOWN}') AS community,
               coalesce(h.grid_code, '{UNKNOWN}') AS grid_code
        FROM master.person p
        LEFT JOIN master.house h ON h.house_id = p.house_id
        LEFT JOIN master.grid g ON g.grid_code = h.grid_code
        WHERE p.birth_date IS NOT NULL AND p.birth_date <= {d}
          AND (p.death_date IS NULL OR p.death_date > {d})"""


def population(con: duckdb.DuckDBPyConnection, level: Level, on: date) -> pd.DataFrame:
    """Population, males, females and sex ratio per area of ``level`` on date ``on``."""
    keys = ", ".join(LEVEL_KEYS[level])
    return con.execute(f"""
        SELECT {keys}, count(*) AS population,
               count(*) FILTER (WHERE sex = '男') AS male,
               count(*) FILTER (WHERE sex = '女') AS female,
               round(100.0 * count(*) FILTER (WHERE sex = '男')
                     / nullif(count(*) FILTER (WHERE sex = '女'), 0), 1) AS sex_ratio
        FROM ({residents_sql(on)}) r
        GROUP BY {keys} ORDER BY {keys}""").df()


def age_pyramid(con: duckdb.DuckDBPyConnection, level: Level, on: date) -> pd.DataFrame:
    """Persons per area of ``level``, 5-year age band and sex on date ``on``.

    Columns: the level's keys, ``band`` (``0-4`` .. ``100+``), ``band_no`` (0..20),
    ``male``, ``female``. Every band appears for every area (zeros included).
    """
    keys = LEVEL_KEYS[level]
    k = ", ".join(keys)
    bands = ", ".join(f"({i}, '{b}')" for i, b in enumerate(BANDS))
    return con.execute(f"""
        WITH r AS (SELECT *, least(age // 5, 20) AS band_no FROM ({residents_sql(on)}) x),
        areas AS (SELECT DISTINCT {k} FROM r),
        b(band_no, band) AS (VALUES {bands}),
        c AS (SELECT {k}, band_no, count(*) FILTER (WHERE sex = '男') AS male,
                     count(*) FILTER (WHERE sex = '女') AS female
              FROM r GROUP BY {k}, band_no)
        SELECT {', '.join(f'a.{x}' for x in keys)}, b.band, b.band_no,
               coalesce(c.male, 0) AS male, coalesce(c.female, 0) AS female
        FROM areas a CROSS JOIN b
        LEFT JOIN c ON {' AND '.join(f'c.{x} = a.{x}' for x in keys)} AND c.band_no = b.band_no
        ORDER BY {', '.join(f'a.{x}' for x in keys)}, b.band_no""").df()


VOTER_COLUMNS_ZH: dict[str, str] = {
    "seq": "序号", "name": "姓名", "sex": "性别", "birth_date": "出生日期", "age": "年龄",
    "id_number": "公民身份号码", "address": "户籍地址", "street": "街道", "community": "社区",
    "person_id": "人员编号",
}
"""Voter roll column -> Chinese header, in export order."""


def voter_roll(con: duckdb.DuckDBPyConnection, election_date: date,
               district: str | None = None) -> pd.DataFrame:
    """The voter roll of ``district`` (every district when None) for ``election_date``.

    Persons 18 or older on the date, without death evidence, with an active registration in
    the district; ordered by street, community and person id. Columns: :data:`VOTER_COLUMNS_ZH`
    keys (unmasked) plus ``district``.
    """
    d = f"DATE '{election_date.isoformat()}'"
    where = "AND coalesce(g.district, h.district) = $district" if district else ""
    params = {"district": district} if district else {}
    return con.execute(f"""
        WITH reg AS (
            SELECT person_id, house_id FROM master.household
            WHERE is_active AND house_id IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY person_id
                                       ORDER BY registered_at DESC NULLS LAST, source,
                                                source_key) = 1),
        v AS (
            SELECT p.person_id, p.name, p.sex, p.birth_date, {_age_sql('p.birth_date', d)} AS age,
                   p.id_number, coalesce(h.standard_address, p.registered_address) AS address,
                   coalesce(g.district, h.district) AS district,
                   coalesce(g.street, h.street, '{UNKNOWN}') AS street,
                   coalesce(g.community, h.community, '{UNKNOWN}') AS community
            FROM master.person p
            JOIN reg ON reg.person_id = p.person_id
            JOIN master.house h ON h.house_id = reg.house_id
            LEFT JOIN master.grid g ON g.grid_code = h.grid_code
            WHERE p.death_date IS NULL AND coalesce(p.is_deceased, FALSE) = FALSE
              AND p.birth_date IS NOT NULL AND p.birth_date <= {d} - INTERVAL 18 YEAR
              {where})
        SELECT row_number() OVER (ORDER BY district, street, community, person_id) AS seq,
               name, sex, birth_date, age, id_number, address, street, community, person_id,
               district
        FROM v ORDER BY seq""", params).df()


@dataclass(frozen=True)
class RollExport:
    """A written voter roll: path, rows and seconds (query, write)."""

    path: Path
    rows: int
    query_seconds: float
    write_seconds: float


def export_voter_roll(con: duckdb.DuckDBPyConnection, election_date: date, district: str,
                      out: Path | str, unmask: bool = False) -> RollExport:
    """Write the district's voter roll to XLSX (sheet ``<district>选民名单``, Chinese headers).

    ID numbers are masked (first 6 + last 4) unless ``unmask``: a public roll shows names;
    full ID numbers only for the election office (log the access).
    """
    from warehouse.report.fastxlsx import write_table_xlsx
    from warehouse.masking import mask_id_series

    t0 = time.perf_counter()
    roll = voter_roll(con, election_date, district)
    t1 = time.perf_counter()
    if not unmask:
        roll["id_number"] = mask_id_series(roll["id_number"])
    roll["birth_date"] = pd.to_datetime(roll["birth_date"]).dt.strftime("%Y-%m-%d")
    table = roll[list(VOTER_COLUMNS_ZH)].rename(columns=VOTER_COLUMNS_ZH)
    path = write_table_xlsx(out, table, f"{district}选民名单")
    return RollExport(Path(path), len(roll), t1 - t0, time.perf_counter() - t1)


def export_views(con: duckdb.DuckDBPyConnection, on: date, out: Path | str) -> Path:
    """Write population and age pyramids of every level to one XLSX (Chinese headers)."""
    from warehouse.report.writers import write_xlsx

    sheets = []
    names = {"population": "人口", "male": "男", "female": "女",
             "sex_ratio": "性别比（女=100）", "band": "年龄组", "band_no": "年龄组序号"}
    for level, zh in (("district", "区县"), ("street", "街道"), ("community", "社区"),
                      ("grid", "网格")):
        hdr = {**LEVEL_ZH, **names}
        sheets.append((f"{zh}人口", population(con, level, on).rename(columns=hdr)))
        sheets.append((f"{zh}年龄结构", age_pyramid(con, level, on).rename(columns=hdr)))
    return write_xlsx(Path(out), sheets)
