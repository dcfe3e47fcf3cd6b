"""``generate_city``: build the city, each department's export and the ground truth."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from unigrid.progress import Progress, no_progress
from unigrid.synthetic import writers
from unigrid.synthetic.badrows import bad_rows_truth, export_rows, plant_bad_rows
from unigrid.synthetic.config import DEFAULT_CONFIG, GeneratorConfig
from unigrid.synthetic.days import apply_day
from unigrid.synthetic.population import build_city
from unigrid.synthetic.sources import KEYS, SOURCES, build_all
from unigrid.synthetic.truth import anomalies_truth, persons_truth, records_truth

TRUTH_FILES = ("persons", "houses", "grids", "records", "anomalies", "bad_rows")


def business_date(day: int, config: GeneratorConfig = DEFAULT_CONFIG):
    """The business date of snapshot ``day`` (day 1 is ``config.day1``)."""
    return config.day1 + timedelta(days=day - 1)


def generate_city(persons: int, seed: int, out: Path, day: int = 1, sql_url: str | None = None,
                  force: bool = False, progress: Progress | None = None, *,
                  config: GeneratorConfig | None = None,
                  sql_table: str = writers.SQL_TABLE) -> dict:
    """Generate a synthetic city of ``persons`` persons and write it to ``out``.

    Writes ``out/manifest.json``, ``out/exports/*`` (docs/sources.md) and ``out/truth/*.parquet``
    (``bad_rows.parquet``: the planted hard errors validation must quarantine, see badrows.py).
    Deterministic from (seed, persons, day): day N rebuilds day 1 and applies days 2..N, each
    with ``numpy.random.default_rng([seed, day])``. The wanted list goes into ``sql_table`` at
    ``sql_url`` (default: a SQLite file in the exports). Returns the manifest (with
    ``sources``: name, location, records; and ``seconds``).

    Raises FileExistsError if ``out`` already holds a manifest and ``force`` is false.
    """
    if persons < 100:
        raise ValueError("a city needs at least 100 persons")
    if day < 1:
        raise ValueError("day starts at 1")
    cfg = config or DEFAULT_CONFIG
    progress = progress or no_progress
    out = Path(out)
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and not force:
        raise FileExistsError(f"{manifest_path} exists")
    t0 = time.perf_counter()
    steps = 4 + max(0, day - 1)
    progress("city", 0, steps)
    city = build_city(persons, seed, cfg)
    progress("city", 1, steps)
    frames = build_all(city, cfg, progress)
    plant_bad_rows(city, frames, np.random.default_rng([seed, 3]), cfg)
    progress("city", 2, steps)
    for d in range(2, day + 1):
        apply_day(city, frames, d, cfg)
        progress("city", 1 + d, steps)
    exports, truth = out / "exports", out / "truth"
    exports.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    created = datetime.combine(cfg.day1, datetime.min.time())
    sources = []
    written = {name: export_rows(frames[name]) for name in SOURCES}
    for i, name in enumerate(SOURCES):
        f = written[name]
        if name == "ps_wanted_list":
            url = sql_url or writers.sqlite_url(exports)
            writers.write_sql(f, url, sql_table)
            entry = {"name": name, "location": f"{writers.masked(url)} table {sql_table}",
                     "url": writers.masked(url), "table": sql_table, "format": "sql"}
        else:
            file, fmt, enc = writers.FILES[name]
            path = exports / file
            if fmt == "csv":
                writers.write_csv(f, path, enc)
            elif fmt == "xlsx":
                writers.write_xlsx(f, path, enc, created)
            else:
                writers.write_jsonl(f, path)
            entry = {"name": name, "location": f"exports/{file}", "format": fmt}
            entry.update({"sheet": enc} if fmt == "xlsx" else {"encoding": enc})
        entry.update({"records": int(len(f)), "key": list(KEYS[name])})
        sources.append(entry)
        progress("writing exports", i + 1, len(SOURCES))
    tables = {
        "persons": persons_truth(city),
        "houses": city.houses.drop(columns=["road", "door_no"]).assign(
            road=city.houses["road"], door_no=city.houses["door_no"]),
        "grids": city.grids,
        "records": records_truth(written),
        "anomalies": anomalies_truth(city, frames, cfg),
        "bad_rows": bad_rows_truth(written),
    }
    for i, (name, table) in enumerate(tables.items()):
        writers.write_parquet(table, truth / f"{name}.parquet")
        progress("writing truth", i + 1, len(tables))
    progress("city", steps, steps)
    anomalies = tables["anomalies"]["anomaly"].value_counts().sort_index()
    bad = tables["bad_rows"].groupby(["source", "kind"]).size()
    per_source = tables["bad_rows"]["source"].value_counts()
    for entry in sources:
        entry["bad_rows"] = int(per_source.get(entry["name"], 0))
    manifest = {
        "generator": "unigrid.synthetic",
        "seed": seed, "persons": persons, "day": day,
        "business_date": city.business_date.isoformat(),
        "persons_in_truth": int(len(tables["persons"])),
        "houses": int(len(city.houses)), "grids": int(len(city.grids)),
        "sources": sources,
        "truth": {name: f"truth/{name}.parquet" for name in TRUTH_FILES},
        "anomalies": {k: int(v) for k, v in anomalies.items()},
        "bad_rows": {src: {k: int(v) for (s2, k), v in bad.items() if s2 == src}
                     for src in sorted(per_source.index)},
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


__all__ = ["generate_city", "business_date"]
