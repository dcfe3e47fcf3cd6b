"""The Splink 5 (DuckDB) linkage model: declared comparisons, blocking, training, artefacts.

Comparisons are declared as Splink settings (data), over ``std.record`` columns, with custom
SQL levels for what generic cleaning misses in Chinese identity data: ID numbers within one
substitution or adjacent transposition (Damerau distance 1), names equal in surname-aware
pinyin (homophone typing errors), dialect-folded pinyin, names with unknown characters (``?``)
matched as patterns, birth date against the date inside the ID number, month-precision birth
dates, the house key, the phone, and the family household (how a newborn's birth certificate
meets its registry row).

A trained model is a versioned JSON artefact in ``settings.model_dir``:
``model-v<N>-<YYYYMMDD>.json`` plus ``current.json`` naming the version in use. Nightly runs
load the current model; training happens only on request (``train_model``).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

MODEL_COLUMNS = [
    "record_id", "source", "id18", "id_key", "id_birth_date", "name", "name_py", "name_pyf",
    "name_like", "surname_py", "sex_any", "dob", "bdate", "bmonth", "birth_month",
    "phone", "house_key", "building_key", "compound_key", "district_code", "hh",
    "mother_id_key", "father_id_key",
]
"""Columns of ``std.record`` (or derived in :data:`MODEL_INPUT_SQL`) that the model reads."""

MODEL_INPUT_SQL = """
SELECT record_id, source, id18, id_key, id_birth_date, name, name_py, name_pyf,
       CASE WHEN name_unknown THEN replace(replace(name, '_', ''), '?', '_') END AS name_like,
       surname_py,
       coalesce(sex, id_sex) AS sex_any,
       coalesce(birth_date, id_birth_date) AS dob,
       birth_date AS bdate,
       coalesce(birth_month, date_trunc('month', birth_date))::DATE AS bmonth,
       coalesce(birth_month, date_trunc('month', coalesce(birth_date, id_birth_date)))::DATE
           AS birth_month,
       phone, house_key,
       CASE WHEN compound IS NOT NULL AND building IS NOT NULL
            THEN coalesce(district_code, '') || '|' || compound || '|' || building END
           AS building_key,
       CASE WHEN compound IS NOT NULL
            THEN coalesce(district_code, '') || '|' || compound END AS compound_key,
       district_code,
       coalesce(household_no, family_household_no) AS hh,
       mother_id_key, father_id_key
FROM {table}
"""
"""Model input derived from std.record (one row per record)."""


def _lvl(sql: str, label: str, null: bool = False, tf: str | None = None,
         fixed: tuple[float, float] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"sql_condition": sql, "label_for_charts": label}
    if fixed:
        d["m_probability"], d["u_probability"] = fixed
        d["fix_m_probability"] = d["fix_u_probability"] = True
    if null:
        d["is_null_level"] = True
    if tf:
        d["tf_adjustment_column"] = tf
        d["tf_adjustment_weight"] = 1.0
    return d


def _cmp(name: str, description: str, levels: list[dict[str, Any]]) -> dict[str, Any]:
    return {"output_column_name": name, "comparison_description": description,
            "comparison_levels": levels}


COMPARISONS: list[dict[str, Any]] = [
    _cmp("id", "ID number: parent's / equal / one substitution or transposition", [
        _lvl('"id18_l" IN ("mother_id_key_r", "father_id_key_r") OR '
             '"id18_r" IN ("mother_id_key_l", "father_id_key_l")',
             "one is the other's parent", fixed=(1e-6, 0.1)),
        _lvl('"id18_l" IS NULL OR "id18_r" IS NULL', "null", null=True),
        _lvl('"id18_l" = "id18_r"', "exact"),
        _lvl('damerau_levenshtein("id18_l", "id18_r") <= 1', "one edit"),
        _lvl("ELSE", "different"),
    ]),
    _cmp("name", "Name: exact / pinyin / unknown characters / dialect pinyin / close", [
        _lvl('"name_l" IS NULL OR "name_r" IS NULL', "null", null=True),
        _lvl('"name_l" = "name_r"', "exact", tf="name"),
        _lvl('"name_py_l" = "name_py_r"', "pinyin equal"),
        _lvl('("name_like_l" IS NOT NULL AND "name_r" LIKE "name_like_l") OR '
             '("name_like_r" IS NOT NULL AND "name_l" LIKE "name_like_r")',
             "equal but unknown characters"),
        _lvl('"name_pyf_l" = "name_pyf_r"', "dialect pinyin equal"),
        _lvl('"surname_py_l" = "surname_py_r" AND '
             'jaro_winkler_similarity("name_py_l", "name_py_r") >= 0.88', "close pinyin"),
        _lvl("ELSE", "different"),
    ]),
    _cmp("dob", "Birth date of the record (the ID's date only against a record's own date)", [
        _lvl('"bdate_l" = "bdate_r"', "exact"),
        _lvl('("bdate_l" = "id_birth_date_r" OR "id_birth_date_l" = "bdate_r") '
             'AND "id18_l" IS DISTINCT FROM "id18_r"', "record date equals the other's ID date"),
        _lvl('("bdate_l" IS NULL AND "bmonth_l" IS NULL) OR ("bdate_r" IS NULL AND "bmonth_r" IS NULL)',
             "null", null=True),
        _lvl('("bdate_l" IS NULL OR "bdate_r" IS NULL) AND "bmonth_l" = "bmonth_r"',
             "same month (month-precision source)"),
        _lvl('damerau_levenshtein(strftime("bdate_l", \'%Y%m%d\'), '
             'strftime("bdate_r", \'%Y%m%d\')) <= 1', "one digit or transposition"),
        _lvl('year("bmonth_l") = year("bmonth_r")', "same year"),
        _lvl('abs(year("bmonth_l") - year("bmonth_r")) < 10', "different"),
        _lvl("ELSE", "ten years or more apart"),
    ]),
    _cmp("sex", "Sex (record, else from the ID number)", [
        _lvl('"sex_any_l" IS NULL OR "sex_any_r" IS NULL', "null", null=True),
        _lvl('"sex_any_l" = "sex_any_r"', "equal"),
        _lvl("ELSE", "different"),
    ]),
    _cmp("house", "Household / house key: same household / room / building / compound", [
        _lvl('("house_key_l" IS NULL AND "compound_key_l" IS NULL AND "hh_l" IS NULL) OR '
             '("house_key_r" IS NULL AND "compound_key_r" IS NULL AND "hh_r" IS NULL)', "null",
             null=True),
        _lvl('"hh_l" = "hh_r"', "same household (a newborn: its parents')"),
        _lvl('"house_key_l" = "house_key_r"', "same house"),
        _lvl('"building_key_l" = "building_key_r"', "same building"),
        _lvl('"compound_key_l" = "compound_key_r"', "same compound"),
        _lvl("ELSE", "different"),
    ]),
    _cmp("phone", "Phone", [
        _lvl('"phone_l" IS NULL OR "phone_r" IS NULL', "null", null=True),
        _lvl('"phone_l" = "phone_r"', "equal"),
        _lvl("ELSE", "different"),
    ]),
]
"""The declared comparisons (docs/matching.md explains each level)."""

BLOCKING_RULES: list[str] = [
    'l.id18 = r.id18',
    'substr(l.id18, 1, 14) = substr(r.id18, 1, 14)',
    'substr(l.id18, 7, 4) || substr(l.id18, 15, 4) = substr(r.id18, 7, 4) || substr(r.id18, 15, 4)',
    'substr(l.id18, 11, 8) = substr(r.id18, 11, 8)',
    'l.name_py = r.name_py AND l.dob = r.dob',
    'l.name_py = r.name_py AND l.birth_month = r.birth_month',
    'l.name_pyf = r.name_pyf AND l.house_key = r.house_key',
    'l.dob = r.dob AND l.house_key = r.house_key',
    'l.surname_py = r.surname_py AND l.dob = r.dob AND l.district_code = r.district_code',
    'l.hh = r.hh AND l.dob = r.dob',
    'l.phone = r.phone AND l.surname_py = r.surname_py',
]
"""Candidate pairs: union of these rules. Each bounds its blocks (dates, houses, names) so the
pair count grows about linearly with the city; the ID rules together catch any one-digit
error or adjacent transposition."""

TRAINING_BLOCKS: list[str] = [
    "l.id18 = r.id18",
    "l.name_py = r.name_py AND l.dob = r.dob",
    "l.dob = r.dob AND l.house_key = r.house_key",
]
"""EM training passes: each estimates the m of the comparisons it does not block on."""


def splink_settings() -> dict[str, Any]:
    """The Splink settings dictionary of the model (untrained)."""
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "record_id",
        "probability_two_random_records_match": 1e-5,
        "comparisons": COMPARISONS,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": r, "sql_dialect": "duckdb"} for r in BLOCKING_RULES],
        "retain_intermediate_calculation_columns": True,
        "retain_matching_columns": False,
        "additional_columns_to_retain": ["source"],
    }


LINK_MEMORY_LIMIT = "4GB"
"""DuckDB memory limit of the linkage engine's private database (it spills to disk past it);
override with ``UNIGRID_MATCH_MEMORY_LIMIT``."""

TF_COLUMNS: tuple[str, ...] = ("name",)
"""Columns with a term-frequency adjusted level (``tf=`` in :data:`COMPARISONS`)."""

TF_SQL = """
SELECT {col}, count(*) / sum(count(*)) OVER () AS tf_{col}
FROM ({input}) WHERE {col} IS NOT NULL GROUP BY {col} ORDER BY {col}
"""
"""Term-frequency table of one column (Splink's own definition: share of non-null values)."""


def term_frequency_sql(col: str, table: str = "std.record") -> str:
    """SQL of the term-frequency table of ``col`` over the model input of ``table``."""
    return TF_SQL.format(col=col, input=MODEL_INPUT_SQL.format(table=table))


def tf_path(model_dir: Path, version: int, col: str = "name") -> Path:
    """Where the frozen term-frequency table of ``col`` for model ``version`` is kept."""
    return Path(model_dir) / f"model-v{version}.tf_{col}.parquet"


def ensure_frozen_tf(con: Any, model_dir: Path, version: int,
                     table: str = "std.record") -> dict[str, Path]:
    """The frozen term-frequency tables of model ``version`` (written from ``table`` the
    first time: at training, or on the first run of a model trained before they existed).

    Freezing makes a pair's weight a function of the pair and the model version only, so an
    incremental linkage scores exactly as a full one. A value absent from the frozen table
    gets no term-frequency adjustment (Splink's rule: the level's average weight).
    """
    out = {}
    for col in TF_COLUMNS:
        path = tf_path(model_dir, version, col)
        if not path.exists():
            tmp = path.with_suffix(".parquet.tmp")
            con.execute(f"COPY ({term_frequency_sql(col, table)}) TO '{tmp}' (FORMAT parquet)")
            tmp.replace(path)
        out[col] = path
    return out


def _spill_folder(temp_dir: Path | None) -> Path:
    import os
    import tempfile
    import uuid

    root = Path(temp_dir or tempfile.gettempdir()) / "unigrid-link-spill"
    return root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _close_engine(con: Any, spill: Path) -> None:
    """Close a linker's private DuckDB and remove its spill folder."""
    import shutil

    try:
        con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _engine(memory_limit: str | None, temp_dir: Path | None) -> tuple[Any, Path]:
    import os

    import duckdb

    limit = memory_limit or os.environ.get("UNIGRID_MATCH_MEMORY_LIMIT") or LINK_MEMORY_LIMIT
    spill = _spill_folder(temp_dir)
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": limit, "temp_directory": str(spill),
                                 "preserve_insertion_order": False})
    con.execute("SET threads TO 2")
    return con, spill


SCOPE_COLUMN = "unigrid_in_scope"
"""Boolean model-input column: with ``scoped`` linkers a pair is blocked only when one of its
records has it true."""


def _prepared_settings(model: dict[str, Any] | Path | None, scoped: bool = False) -> Any:
    settings = model if model is not None else splink_settings()
    if isinstance(settings, dict):
        settings = json.loads(json.dumps(settings))  # Splink mutates its input
        # scoped: the same condition on every rule, so each pair still comes from the same
        # (first) rule as unscoped and is scored the same; only pairs outside are not built
        scope = f" AND (l.{SCOPE_COLUMN} OR r.{SCOPE_COLUMN})" if scoped else ""
        settings["blocking_rules_to_generate_predictions"] = [
            {"blocking_rule": f"({r}){scope}" if scope else r, "sql_dialect": "duckdb"}
            for r in BLOCKING_RULES]
        settings["retain_intermediate_calculation_columns"] = True
        settings["retain_matching_columns"] = False
    return settings


def _select_model_columns(frame: Any, extra: tuple[str, ...] = ()) -> Any:
    """The model columns (and ``extra``) of a pandas frame or an Arrow table."""
    cols = [*MODEL_COLUMNS, *extra]
    return frame.select(cols) if hasattr(frame, "select") and not isinstance(
        frame, pd.DataFrame) else frame[cols]


def make_linker(frame: Any, model: dict[str, Any] | Path | None = None,
                memory_limit: str | None = None, temp_dir: Path | None = None,
                tf: dict[str, Any] | None = None, scoped: bool = False) -> Any:
    """A Splink ``Linker`` over a model-input frame (pandas or Arrow), on a private in-memory
    DuckDB that spills to ``temp_dir`` (default: the system temp folder) past
    ``memory_limit``. ``tf``: frozen term-frequency tables by column (Parquet paths or
    frames) to register instead of deriving them from ``frame``. ``scoped``: ``frame`` has
    the boolean :data:`SCOPE_COLUMN` and only pairs with a record in scope are blocked.

    The private database is closed and its spill folder removed by :func:`release_linker`
    (or when the linker is garbage-collected)."""
    import weakref

    from splink import DuckDBAPI, Linker

    con, spill = _engine(memory_limit, temp_dir)
    api = DuckDBAPI(con)
    sdf = api.register(_select_model_columns(frame, (SCOPE_COLUMN,) if scoped else ()),
                       table_name="std_model_input")
    linker = Linker(sdf, _prepared_settings(model, scoped), log_level=logging.WARNING)
    _register_tf(linker, api, con, tf)
    linker._unigrid_release = weakref.finalize(linker, _close_engine, con, spill)
    return linker


def _register_tf(linker: Any, api: Any, con: Any, tf: dict[str, Any] | None) -> None:
    for col, table in (tf or {}).items():
        name = f"unigrid_tf_{col}"
        if isinstance(table, (str, Path)):
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{table}')")
            sdf = api.register(name, table_name=f"{name}_in")
        else:
            sdf = api.register(table, table_name=f"{name}_in")
        linker.table_management.register_term_frequency_lookup(sdf, col)


def release_linker(linker: Any) -> None:
    """Close the linker's private DuckDB and remove its spill folder (idempotent)."""
    release = getattr(linker, "_unigrid_release", None)
    if release is not None:
        release()


def train(frame: pd.DataFrame, seed: int = 42, max_pairs: float = 5e6,
          em_records: int = 200_000) -> dict[str, Any]:
    """Train the model on a model-input frame; return the Splink model dictionary.

    u by random sampling (seeded, so reproducible); the prior from the exact-ID rule and the
    name + birth date + house rule (assumed recall 0.85); m by EM over :data:`TRAINING_BLOCKS`
    on a sample of ``em_records`` records (all of a small city).
    """
    linker = make_linker(frame)
    linker.training.estimate_probability_two_random_records_match(
        ["l.id_key = r.id_key", "l.name_py = r.name_py AND l.dob = r.dob AND l.house_key = r.house_key"],
        recall=0.85)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    proportion = min(1.0, em_records / max(len(frame), 1))
    for rule in TRAINING_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, record_sample_proportion=proportion)
    try:
        return linker.misc.save_model_to_json()
    finally:
        release_linker(linker)


_VERSION = re.compile(r"model-v(\d+)-(\d{8})\.json$")


def save_model(model: dict[str, Any], model_dir: Path, on: date | None = None,
               meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as the next version and point ``current.json`` at it."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    versions = [int(m.group(1)) for p in model_dir.glob("model-v*.json")
                if (m := _VERSION.search(p.name))]
    n = max(versions, default=0) + 1
    path = model_dir / f"model-v{n}-{(on or date.today()):%Y%m%d}.json"
    path.write_text(json.dumps(model, ensure_ascii=False, indent=1), encoding="utf-8")
    pointer = {"version": n, "file": path.name, **(meta or {})}
    tmp = model_dir / "current.json.tmp"
    tmp.write_text(json.dumps(pointer, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(model_dir / "current.json")
    return path


def current_model(model_dir: Path) -> tuple[int, dict[str, Any]] | None:
    """``(version, model dict)`` of the model ``current.json`` names, or None."""
    pointer = Path(model_dir) / "current.json"
    if not pointer.exists():
        return None
    meta = json.loads(pointer.read_text(encoding="utf-8"))
    model = json.loads((Path(model_dir) / meta["file"]).read_text(encoding="utf-8"))
    return int(meta["version"]), model


PAIR_KEY_COLUMNS = ["record_id_l", "record_id_r", "match_weight", "match_probability"]
"""Columns of a scored pair kept besides the per-comparison ``mw_`` weights."""


def score_into(target: Any, table: str, frame: Any, model: dict[str, Any],
               tf: dict[str, Any], threshold: float, dirty_ids: Any = None,
               memory_limit: str | None = None) -> int:
    """Score candidate pairs with Splink and write them to ``table`` on connection ``target``
    (streamed as Arrow batches: no pandas frame of pairs). Returns the number of pairs.

    ``frame``: the model input (Arrow or pandas) of the records to pair. ``dirty_ids``: None
    keeps every blocked pair; an array of record ids keeps only the pairs with at least one
    side in it (the caller passes in ``frame`` those records plus every record that shares a
    blocking key with one, so these are exactly the pairs a full run finds for them). One
    ``predict_within`` either way, so pairs come out oriented (``l < r``) as in a full run.
    Term frequencies come from ``tf`` (frozen), never from ``frame``. Columns:
    :data:`PAIR_KEY_COLUMNS` then ``mw_<comparison>``; weights ``>= threshold`` only.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if dirty_ids is not None:  # block only pairs touching a dirty record (not every
        # pair among the records sharing a key with one: most of those are clean-clean)
        if isinstance(frame, pd.DataFrame):
            frame = pa.Table.from_pandas(frame, preserve_index=False)
        frame = frame.append_column(SCOPE_COLUMN, pc.is_in(
            frame.column("record_id"), value_set=pa.array(dirty_ids, pa.int64())))
    linker = make_linker(frame, model, memory_limit=memory_limit, tf=tf,
                         scoped=dirty_ids is not None)
    try:
        api = linker._db_api
        eng = api._con
        everyone = api.register("std_model_input", table_name="everyone")
        out = linker.inference.predict_within(everyone, threshold_match_weight=threshold,
                                              warning_mode="never")
        where = ""
        if dirty_ids is not None:
            eng.register("unigrid_dirty_ids", pa.table({"record_id": pa.array(dirty_ids,
                                                                              pa.int64())}))
            where = (" WHERE record_id_l IN (SELECT record_id FROM unigrid_dirty_ids)"
                     " OR record_id_r IN (SELECT record_id FROM unigrid_dirty_ids)")
        cols = [r[0] for r in eng.execute(f"DESCRIBE {out.physical_name}").fetchall()
                if r[0].startswith("mw_")]
        select = ", ".join(f'"{c}"' for c in PAIR_KEY_COLUMNS + cols)
        reader = eng.sql(f"SELECT {select} FROM {out.physical_name}{where}").to_arrow_reader()
        target.register("unigrid_scored_in", reader)
        try:
            target.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS "
                           "SELECT * FROM unigrid_scored_in")
        finally:
            target.unregister("unigrid_scored_in")
        return int(target.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    finally:
        release_linker(linker)
