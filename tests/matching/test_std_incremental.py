"""Incremental ``std.record`` equals a full rebuild, night after night (issue #6 item 3).

Random small staged tables (registry, birth certificates, grid) change over several "nights" the
way the validate stage changes them: new keys, new versions of keys (a parent moving household
included), keys disappearing and coming back. Home A standardises incrementally, home B rebuilds
every night: their ``std.record`` must be identical (every column, every row), ids must be
stable and never reused, A's delta must be exactly what changed between B's tables, and
re-running a night must give the same table and delta.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matching.stage import standardise_stage
from matching.std import STD_COLUMNS
from unigrid.settings import Settings, load_settings
from unigrid.stages import RunContext
from warehouse.connection import connect_work

NIGHT0 = date(2026, 11, 1)
SURNAMES = ["李", "王", "張", "刘", "陈", "单", "欧阳"]
GIVEN = ["伟", "丽", "娜", "强", "敏", "静", "磊", "洋"]
STREETS = ["西陵区桃花苑", "西陵区夷陵路", "伍家岗区东山"]


def _id(first17: str) -> str:
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return first17 + "10X98765432"[sum(int(c) * k for c, k in zip(first17, w)) % 11]


@dataclass
class City:
    """The sources as they stand: ``{source: {key: fields}}``, changed night by night."""

    rng: np.random.Generator
    rows: dict[str, dict[str, dict]] = field(default_factory=lambda: {
        "ps_household_registry": {}, "health_birth_cert": {}, "grid_collection": {}})
    gone: dict[str, dict[str, dict]] = field(default_factory=lambda: {
        "ps_household_registry": {}, "health_birth_cert": {}, "grid_collection": {}})
    serial: int = 0

    def _name(self) -> str:
        r = self.rng
        return str(r.choice(SURNAMES)) + "".join(r.choice(GIVEN, size=int(r.integers(1, 3))))

    def _address(self) -> str:
        r = self.rng
        return f"{r.choice(STREETS)}{r.integers(1, 4)}-{r.integers(1, 3)}-{r.integers(101, 104)}"

    def _parent_id(self) -> str | None:
        reg = list(self.rows["ps_household_registry"].values())
        if not reg or self.rng.random() < 0.15:
            return None
        return reg[int(self.rng.integers(len(reg)))]["id_number"]

    def new_row(self, source: str) -> dict:
        r = self.rng
        self.serial += 1
        born = date(1950, 1, 1) + timedelta(days=int(r.integers(0, 25000)))
        pid = _id(f"420502{born:%Y%m%d}{self.serial % 1000:03d}")
        if source == "ps_household_registry":
            return {"id_number": pid, "name": self._name(), "sex": str(r.choice(["男", "女"])),
                    "birth_date": born, "household_no": f"H{r.integers(0, 6)}",
                    "address": self._address(), "registry_status": "正常"}
        if source == "health_birth_cert":
            return {"name": self._name() if r.random() < 0.5 else None,
                    "sex": str(r.choice(["男", "女"])), "birth_date": born,
                    "mother_id_number": self._parent_id(), "father_id_number": self._parent_id(),
                    "address": self._address()}
        return {"id_number": pid if r.random() < 0.7 else None, "name": self._name(),
                "sex": str(r.choice(["男", "女", "1", "2"])), "birth_date": born,
                "address": self._address(), "phone": f"138{r.integers(0, 10**8):08d}"}

    def changed(self, source: str, row: dict) -> dict:
        r = self.rng
        row = dict(row)
        if source == "ps_household_registry":  # a parent moving household, or a new name
            key = "household_no" if r.random() < 0.6 else "name"
            row[key] = f"H{r.integers(0, 6)}" if key == "household_no" else self._name()
        elif source == "health_birth_cert":
            row["mother_id_number"] = self._parent_id()
        else:
            row["address"] = self._address()
        return row

    def night(self, first: bool) -> dict[str, set[str]]:
        """Change the sources for one night; return the keys touched per source."""
        touched: dict[str, set[str]] = {}
        r = self.rng
        for source, rows in self.rows.items():
            t: set[str] = set()
            for _ in range(int(r.integers(10, 25)) if first else int(r.integers(0, 6))):
                key = f"{source[:2].upper()}{self.serial:05d}"
                rows[key] = self.new_row(source)
                t.add(key)
            if not first:
                keys = sorted(rows)
                for k in r.choice(keys, size=min(len(keys), int(r.integers(0, 5))), replace=False):
                    rows[k] = self.changed(source, rows[k])
                    t.add(str(k))
                keys = sorted(set(rows) - t)
                for k in r.choice(keys, size=min(len(keys), int(r.integers(0, 3))), replace=False):
                    self.gone[source][str(k)] = rows.pop(str(k))
                back = sorted(self.gone[source])
                if back and r.random() < 0.5:  # a key disappeared earlier comes back
                    k = back[int(r.integers(len(back)))]
                    rows[k] = self.changed(source, self.gone[source].pop(k))
                    t.add(k)
            touched[source] = t
        return touched


def stage_night(settings: Settings, city: City, touched: dict[str, set[str]],
                run_id: str) -> None:
    """Write ``staged.<source>`` as the validate stage leaves it: one row per key, touched keys
    re-staged with this run's id, disappeared keys deleted."""
    con = connect_work(settings.work_db)
    try:
        for source, rows in city.rows.items():
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                 "table_schema = 'staged' AND table_name = ?",
                                 [source]).fetchall()[0][0]
            old = (con.execute(f"SELECT * FROM staged.{source}").df() if exists else None)
            keep = (old[old._source_key.isin(set(rows) - touched[source])]
                    if old is not None else None)
            fresh = pd.DataFrame([{**rows[k], "_source_key": k} for k in sorted(touched[source])
                                  if k in rows])
            if len(fresh):
                fresh["_run_id"] = run_id
                fresh["_source"] = source
                fresh["_row_no"] = range(1, len(fresh) + 1)
                fresh["_row_hash"] = [hashlib.md5(repr(sorted(rows[k].items())).encode())
                                      .hexdigest() for k in fresh._source_key]
                fresh["_flags"] = [[] for _ in range(len(fresh))]
            frames = [f for f in (keep, fresh) if f is not None and len(f)]
            if not frames and old is None:
                continue
            df = pd.concat(frames, ignore_index=True) if frames else old.iloc[:0]
            for c in ("birth_date",):
                if c in df:
                    df[c] = pd.to_datetime(df[c])
            con.register("night_df", df)
            con.execute(f"CREATE OR REPLACE TABLE staged.{source} AS SELECT * FROM night_df")
            con.unregister("night_df")
    finally:
        con.close()


def table(settings: Settings, sql: str) -> list[tuple]:
    con = connect_work(settings.work_db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def records(settings: Settings) -> list[tuple]:
    return table(settings, "SELECT * FROM std.record ORDER BY record_id")


def delta(settings: Settings) -> list[tuple]:
    return table(settings, "SELECT * FROM std.delta ORDER BY ALL")


def meta(settings: Settings) -> list[tuple]:
    return table(settings, "SELECT * FROM std.delta_meta")


def home(path: Path) -> Settings:
    return load_settings(env={"UNIGRID_HOME": str(path)}, cwd=path).ensure_dirs()


def expected_delta(before: list[tuple], after: list[tuple], full: bool) -> list[tuple]:
    """The delta between two std.record snapshots: keys added, keys gone, and keys kept whose
    staged version or family household changed (for a full run: every record new)."""
    col = {c: i for i, c in enumerate(STD_COLUMNS)}
    key = (lambda r: (r[col["source"]], r[col["source_key"]]))
    b, a = {key(r): r for r in before}, {key(r): r for r in after}
    out = [(a[k][0], *k, "new") for k in a if full or k not in b]
    out += [(b[k][0], *k, "removed") for k in b if k not in a]
    watch = [col["run_id"], col["row_hash"], col["family_household_no"]]
    out += [(a[k][0], *k, "changed") for k in a if k in b and not full
            and any(a[k][i] != b[k][i] for i in watch)]
    return sorted(out)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_incremental_equals_full_rebuild_night_after_night(seed: int, tmp_path: Path) -> None:
    inc, full = home(tmp_path / "inc"), home(tmp_path / "full")
    city = City(np.random.default_rng(seed))
    before: list[tuple] = []
    ids_seen: dict[tuple[str, str], int] = {}
    for night in range(5):
        touched = city.night(first=night == 0)
        ctx = RunContext.for_date(NIGHT0 + timedelta(days=night))
        for s in (inc, full):
            stage_night(s, city, touched, ctx.run_id)
        r_inc = standardise_stage(inc, ctx)
        r_full = standardise_stage(full, RunContext.for_date(ctx.business_date,
                                                             full_rebuild=True))
        a, b = records(inc), records(full)
        assert a == b, f"night {night}: incremental and full rebuild differ"
        assert len(a) == sum(len(rows) for rows in city.rows.values())
        # the delta is exactly what changed; the full run lists every record as new
        assert delta(inc) == expected_delta(before, a, full=night == 0)
        assert delta(full) == expected_delta(before, b, full=True)
        m = meta(inc)[0]
        assert m[:2] == (ctx.run_id, night == 0) and m[2] == len(a)
        assert (r_inc.counts["new"], r_inc.counts["changed"], r_inc.counts["removed"]) == m[3:]
        assert r_inc.counts["full"] is (night == 0) and r_full.counts["full"] is True
        if night:
            assert r_inc.counts["standardised"] == sum(
                len(t & set(city.rows[s])) for s, t in touched.items())
        # ids: stable, never reused, new keys numbered after every earlier one in key order
        now = {(r[1], r[2]): r[0] for r in a}
        assert all(ids_seen[k] == i for k, i in now.items() if k in ids_seen)
        new_keys = sorted(k for k in now if k not in ids_seen)
        assert [now[k] for k in new_keys] == list(range(len(ids_seen),
                                                         len(ids_seen) + len(new_keys)))
        ids_seen.update(now)
        # re-running the night (both ways) changes nothing, delta included
        d_inc, d_full, m_inc = delta(inc), delta(full), meta(inc)
        standardise_stage(inc, ctx)
        standardise_stage(full, RunContext.for_date(ctx.business_date, full_rebuild=True))
        assert (records(inc), delta(inc), meta(inc)) == (a, d_inc, m_inc)
        assert (records(full), delta(full)) == (b, d_full)
        before = a


def test_parent_moving_household_changes_the_newborn(tmp_path: Path) -> None:
    s = home(tmp_path)
    city = City(np.random.default_rng(0))
    pid = _id("42050219900101123")
    city.rows["ps_household_registry"]["R1"] = {"id_number": pid, "name": "王伟",
                                                "household_no": "H1"}
    city.rows["health_birth_cert"]["B1"] = {"father_id_number": pid, "sex": "男"}
    stage_night(s, city, {"ps_household_registry": {"R1"}, "health_birth_cert": {"B1"},
                          "grid_collection": set()}, "20261101")
    standardise_stage(s, RunContext.for_date(NIGHT0))
    city.rows["ps_household_registry"]["R1"]["household_no"] = "H9"
    stage_night(s, city, {"ps_household_registry": {"R1"}, "health_birth_cert": set(),
                          "grid_collection": set()}, "20261102")
    r = standardise_stage(s, RunContext.for_date(NIGHT0 + timedelta(days=1)))
    assert table(s, "SELECT source_key, family_household_no FROM std.record ORDER BY 1") == [
        ("B1", "H9"), ("R1", None)]
    assert delta(s) == [(0, "health_birth_cert", "B1", "changed"),
                        (1, "ps_household_registry", "R1", "changed")]
    assert (r.counts["standardised"], r.counts["changed"], r.counts["full"]) == (1, 2, False)
    # the father's registry row disappears: the newborn (not re-staged) loses the household
    del city.rows["ps_household_registry"]["R1"]
    stage_night(s, city, {"ps_household_registry": set(), "health_birth_cert": set(),
                          "grid_collection": set()}, "20261103")
    r = standardise_stage(s, RunContext.for_date(NIGHT0 + timedelta(days=2)))
    assert table(s, "SELECT source_key, family_household_no FROM std.record ORDER BY 1") == [
        ("B1", None)]
    assert delta(s) == [(0, "health_birth_cert", "B1", "changed"),
                        (1, "ps_household_registry", "R1", "removed")]
    assert (r.counts["standardised"], r.counts["changed"], r.counts["removed"]) == (0, 1, 1)


@pytest.mark.parametrize("damage", [
    "ALTER TABLE std.record ADD COLUMN extra INTEGER",
    "ALTER TABLE std.record DROP COLUMN flags",
    "DROP TABLE std.record",
])
def test_other_columns_or_no_table_rebuilds_everything(damage: str, tmp_path: Path) -> None:
    s = home(tmp_path)
    city = City(np.random.default_rng(5))
    touched = city.night(first=True)
    stage_night(s, city, touched, "20261101")
    standardise_stage(s, RunContext.for_date(NIGHT0))
    good = records(s)
    con = connect_work(s.work_db)
    con.execute(damage)
    con.close()
    r = standardise_stage(s, RunContext.for_date(NIGHT0 + timedelta(days=1)))
    assert r.counts["full"] is True and r.counts["standardised"] == len(good)
    assert records(s) == good  # same ids: the key map is kept
