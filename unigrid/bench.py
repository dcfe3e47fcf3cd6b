"""The city-scale benchmark (``unigrid bench``, ``make bench``, ``python -m unigrid.bench``).

One run, on one generated city:

1. generate the city (or reuse it when its manifest has the same persons and seed);
2. run every pipeline stage on a fresh home, each in its own process, measuring wall time, CPU
   time (``os.wait4``) and peak resident memory (the child's own ``VmHWM``);
3. the plain baselines on the same exports: Splink 5 with generic cleaning (its linking step
   timed apart) and recordlinkage 0.16 on a subset of persons it can handle;
4. accuracy (pairwise P/R/F1 by cluster-size arithmetic, :func:`matching.evaluate.evaluate_frames`)
   of unigrid's ``link.person_link`` and of each baseline, on all records and on the subset;
5. day 2: the next night's exports into a sibling folder (a typical night: about 1 % of the
   records changed, ``--churn`` sets the generator's rate), the pipeline run incrementally, its
   time as a share of the full run and the share of records it found changed;
6. ``GET /persons/{id_number}`` latency at 50 clients on the day-1 master (the load client of
   ``benchmarks/bench_api.py``, the server started on the bench's own home);
7. the targets of issue 8 checked against what was measured; a rich table on the terminal and
   a JSON file ``<results>/bench-<persons>-<timestamp>.json`` with the machine it ran on.

Stages that are not built yet report ``not_implemented`` (later stages: ``skipped``), and a
figure that cannot be measured (e.g. the API latency when the service or its load client is
missing) is a ``not_available`` row with a reason, never a made-up number.

Personal data: only counts and scores leave the child processes; their logs (in the bench
folder) hold library warnings, not records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "unigrid-bench/1"
DEFAULT_PERSONS = 1_000_000
DEFAULT_RL_PERSONS = 20_000
LIBRARIES = ("duckdb", "splink", "recordlinkage", "pandas", "numpy", "pyarrow", "scikit-learn",
             "great-expectations", "apache-airflow", "unigrid")
"""Distributions whose versions the result records."""

_PATH_SETTINGS = ("UNIGRID_CONFIG", "UNIGRID_HOME", "UNIGRID_WORK_DB", "UNIGRID_MASTER_DB",
                  "UNIGRID_DECISIONS_DB", "UNIGRID_SOURCE_ROOT", "UNIGRID_TRUTH_DIR",
                  "UNIGRID_REPORT_DIR", "UNIGRID_MODEL_DIR", "UNIGRID_WANTED_DB_URL")
"""Inherited settings the bench replaces for its child processes (it owns their folders)."""

TARGETS = {"full_run_seconds": 600.0, "peak_rss_mb": 6144.0, "day2_ratio": 0.05,
           "api_p99_ms": 20.0, "target_persons": DEFAULT_PERSONS}
"""Issue 8's targets (2 cores, 24 GB, 1,000,000 persons)."""


@dataclass(frozen=True)
class BenchOptions:
    """What ``unigrid bench`` was asked to do."""

    persons: int = DEFAULT_PERSONS
    seed: int = 7
    work_dir: Path = Path("var/bench")
    """City folders, the bench's unigrid home and the child logs go here."""
    results_dir: Path = Path("bench-results")
    rl_persons: int = DEFAULT_RL_PERSONS
    """Persons whose records recordlinkage links (0: skip recordlinkage)."""
    day2: bool = True
    baselines: bool = True
    reuse_city: bool = True
    """Reuse ``work_dir/city-<persons>-s<seed>`` if its manifest matches (day 1)."""
    api_seconds: float = 30.0
    """Seconds of ``GET /persons/{id_number}`` load on the day-1 master (0: skip)."""
    api_clients: int = 50
    churn: float | None = None
    """Day 2's ``daily_update_rate`` (None: the generator's default, about 1 % of records)."""


@dataclass
class Measured:
    """One child process: wall seconds, peak RSS, exit code and the result it wrote."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    result: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    """User + system CPU time of the process (its startup included)."""


# ---------------------------------------------------------------------------------------------
# measuring child processes


def maxrss_mb(ru_maxrss: int, system: str = sys.platform) -> float:
    """``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    return ru_maxrss / (1024 * 1024) if system == "darwin" else ru_maxrss / 1024


def run_measured(cmd: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, log: Path | None = None
                 ) -> tuple[float, float, int, float]:
    """Run ``cmd`` to completion: ``(wall seconds, peak RSS MiB, exit code, CPU seconds)``.

    The peak is the child's ``ru_maxrss`` from ``wait4`` (it includes the descendants the child
    waited for). Linux carries the parent's resident size at fork into that figure, so it is
    never below the caller's own size: children of :func:`run_child` report their exact peak
    themselves (:func:`self_peak_rss_mb`). CPU seconds (user + system) say how much work it
    was when a busy machine stretches the wall time.
    """
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=dict(env) if env is not None else None,
                                cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    return (seconds, maxrss_mb(usage.ru_maxrss), proc.returncode,
            usage.ru_utime + usage.ru_stime)


def self_peak_rss_mb() -> float:
    """This process's own peak resident size (``VmHWM``, counted from its ``exec``), or its
    children's if larger; falls back to ``ru_maxrss`` where ``/proc`` is missing."""
    import resource

    children = maxrss_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return max(int(line.split()[1]) / 1024, children)
    except (OSError, ValueError, IndexError):
        pass
    return max(maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), children)


def run_child(kind: str, spec: dict[str, Any], work: Path, env: Mapping[str, str],
              tag: str) -> Measured:
    """Run one bench step (``python -m unigrid.bench child <kind>``) and read its result."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    spec_path, result_path = logs / f"{tag}.spec.json", logs / f"{tag}.result.json"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec, default=str, indent=1), encoding="utf-8")
    cmd = [sys.executable, "-m", "unigrid.bench", "child", kind, str(spec_path),
           str(result_path)]
    seconds, rss, code, cpu = run_measured(cmd, env=env, cwd=work, log=logs / f"{tag}.log")
    if result_path.exists():
        result = json.loads(result_path.read_text(encoding="utf-8"))
        rss = float(result.pop("_peak_rss_mb", rss))
    else:
        result = {"status": "failed",
                  "messages": [f"{kind} process exited with code {code} without a result "
                               f"(see {logs / (tag + '.log')})"]}
    return Measured(seconds, rss, code, result, cpu)


# ---------------------------------------------------------------------------------------------
# what the child processes do


def _child_generate(spec: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import replace

    from unigrid.synthetic import DEFAULT_CONFIG, generate_city

    t0 = time.perf_counter()
    churn = spec.get("churn")
    config = replace(DEFAULT_CONFIG, daily_update_rate=churn) if churn is not None else None
    m = generate_city(persons=spec["persons"], seed=spec["seed"], out=Path(spec["out"]),
                      day=spec.get("day", 1), force=True, config=config)
    return {"status": "ok", "seconds": time.perf_counter() - t0,
            "manifest": {k: m[k] for k in ("persons", "seed", "day", "business_date")},
            "records": {s["name"]: s["records"] for s in m["sources"]}}


def _child_stage(spec: dict[str, Any]) -> dict[str, Any]:
    from datetime import date

    from unigrid.settings import load_settings
    from unigrid.stages import RunContext, run_stage

    settings = load_settings().ensure_dirs()
    ctx = RunContext.for_date(date.fromisoformat(spec["business_date"]),
                              full_rebuild=bool(spec["full_rebuild"]))
    t0 = time.perf_counter()
    try:
        return run_stage(spec["stage"], settings, ctx).to_dict()
    except Exception as exc:  # noqa: BLE001 - a crashing stage is a row of the table
        return {"stage": spec["stage"], "status": "failed",
                "seconds": time.perf_counter() - t0, "counts": {},
                "messages": [f"{type(exc).__name__}: {exc}"]}


def _baselines_importable() -> None:
    """``benchmarks/`` lives beside the packages in a clone: make it importable."""
    if str(PACKAGE_ROOT) not in sys.path:
        sys.path.insert(0, str(PACKAGE_ROOT))


def _child_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    _baselines_importable()
    import pandas as pd

    from benchmarks.generic import load_records

    t0 = time.perf_counter()
    records = load_records(Path(spec["exports"]))
    load_seconds = time.perf_counter() - t0
    if spec["system"] == "splink":
        from benchmarks.splink_baseline import link

        outcome = link(records, seed=spec.get("seed", 42))
    else:
        from benchmarks.recordlinkage_baseline import link, subset_records

        truth = pd.read_parquet(Path(spec["truth"]) / "records.parquet",
                                columns=["source", "source_key", "person_id"])
        records = subset_records(records, truth, spec["persons"], spec.get("seed", 42))
        outcome = link(records)
    outcome.assignments.to_parquet(spec["assignments"], index=False)
    return {"status": "ok", "load_seconds": load_seconds, "seconds": outcome.seconds,
            "counts": outcome.counts, "notes": outcome.notes}


def _scores(pred: Any, truth: Any, per_pair: bool) -> dict[str, Any]:
    from matching.evaluate import evaluate_frames

    ev = evaluate_frames(pred, truth, worst=0)
    out: dict[str, Any] = {"status": "ok", **ev.overall, **ev.unmatched_records}
    if per_pair:
        out["per_source_pair"] = ev.per_source_pair[
            ["source_a", "source_b", "true_pairs", "predicted_pairs", "true_positive_pairs",
             "precision", "recall", "f1"]].to_dict(orient="records")
    return out


def _unigrid_links(work_db: str | None) -> tuple[Any, str | None]:
    """``(person_link frame, None)`` or ``(None, reason)``."""
    if not work_db or not Path(work_db).exists():
        return None, "no work database (the pipeline did not run)"
    from warehouse.connection import connect

    try:
        con = connect(work_db, read_only=True)
    except Exception as exc:  # noqa: BLE001
        return None, f"work database not readable: {type(exc).__name__}"
    try:
        return con.execute("SELECT source, source_key, person_id FROM link.person_link").df(), None
    except Exception:  # noqa: BLE001 - table missing: match did not run
        return None, "link.person_link not written (the match stage did not complete)"
    finally:
        con.close()


def _child_evaluate(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    truth = pd.read_parquet(Path(spec["truth"]) / "records.parquet",
                            columns=["source", "source_key", "person_id"])
    truth["source_key"] = truth["source_key"].astype(str)
    preds: dict[str, Any] = {}
    full: dict[str, Any] = {}
    links, reason = _unigrid_links(spec.get("work_db"))
    if links is None:
        full["unigrid"] = {"status": "not_available", "reason": reason}
    else:
        preds["unigrid"] = links
    for name, path in (spec.get("assignments") or {}).items():
        if path and Path(path).exists():
            preds[name] = pd.read_parquet(path)
    for name, pred in preds.items():
        if name != "recordlinkage":
            full[name] = _scores(pred, truth, per_pair=True)
    out: dict[str, Any] = {"status": "ok", "full": full}
    if "recordlinkage" in preds:
        keys = preds["recordlinkage"][["source", "source_key"]].astype({"source_key": str})
        if len(keys) >= len(truth):  # the city was small enough: recordlinkage linked it all
            full["recordlinkage"] = _scores(preds["recordlinkage"], truth, per_pair=True)
            return out
        subset = {"records": int(len(keys))}
        if links is None:
            subset["unigrid"] = {"status": "not_available", "reason": reason}
        for name, pred in preds.items():
            p = pred.astype({"source_key": str}).merge(keys, on=["source", "source_key"])
            subset[name] = _scores(p, truth, per_pair=False)
        out["subset"] = subset
    return out


def _child_api(spec: dict[str, Any]) -> dict[str, Any]:
    """``GET /persons/{id_number}`` latency on the published master, with the load client of
    ``benchmarks/bench_api.py`` (the service engineer's; ``wrk`` when installed, else its
    built-in Python client: ``client`` says which), the server started here on it. Also the
    CPU seconds of server and client in the measured window, per request."""
    _baselines_importable()
    try:
        from benchmarks import bench_api as ba
    except Exception as exc:  # noqa: BLE001 - the service benchmark may not be there yet
        return {"status": "not_available", "reason": f"benchmarks.bench_api: {exc}"}
    from unigrid.settings import load_settings

    settings = load_settings()  # the bench's home, from the child's environment
    master = Path(settings.master_db)
    if not master.exists():
        return {"status": "not_available", "reason": "no published master (publish did not run)"}
    ids = ba.sample_ids(master, 10_000, 1)
    if not ids:
        return {"status": "not_available", "reason": "the master has no ID numbers"}
    token = ba.service_token(Path(settings.decisions_db))
    port = ba.free_port()
    workers = int(spec.get("workers", 1))  # 1 worker + its lookup thread: faster on 2 cores
    kind = ba.client_kinds(str(spec.get("client", "auto")))[0]
    proc = subprocess.Popen(ba.server_cmd(port, workers), cwd=PACKAGE_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        import asyncio

        asyncio.run(ba.wait_ready(url))
        out = ba.measure(kind, url, token, ids, int(spec["clients"]), float(spec["seconds"]),
                         3.0, 1, proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    if not out["requests"]:
        return {"status": "failed", "messages": [f"no successful request ({out['errors']} "
                                                 f"errors, {kind} client)"]}
    keep = ("client", "requests", "errors", "throughput_rps", "p50_ms", "p95_ms", "p99_ms",
            "max_ms", "server_cpu_s", "client_cpu_s", "server_cpu_ms_per_req",
            "client_cpu_ms_per_req", "load_avg_1m")
    return {"status": "ok", "clients": int(spec["clients"]), "workers": workers,
            **{k: out[k] for k in keep}}


_CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generate": _child_generate, "stage": _child_stage, "baseline": _child_baseline,
    "evaluate": _child_evaluate, "api": _child_api,
}


def child_main(kind: str, spec_path: Path, result_path: Path) -> int:
    """Entry of a child process: run one step, write its result JSON (also on failure)."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        result = _CHILDREN[kind](spec)
    except Exception as exc:  # noqa: BLE001 - reported as the step's status
        result = {"status": "failed", "messages": [f"{type(exc).__name__}: {exc}"]}
    result["_peak_rss_mb"] = self_peak_rss_mb()
    Path(result_path).write_text(json.dumps(result, default=str, ensure_ascii=False, indent=1),
                                 encoding="utf-8")
    return 0 if result.get("status") != "failed" else 1


# ---------------------------------------------------------------------------------------------
# machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, OS, Python and library versions, load at start."""
    from importlib.metadata import PackageNotFoundError, version

    import psutil

    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = None
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": libs,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PACKAGE_ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------------------------------------
# the run


def child_env(home: Path, city: Path) -> dict[str, str]:
    """Environment of the pipeline's child processes: the bench's own home and city."""
    env = {k: v for k, v in os.environ.items() if k not in _PATH_SETTINGS}
    exports = (city / "exports").resolve()
    env.update({"UNIGRID_HOME": str(home.resolve()), "UNIGRID_SOURCE_ROOT": str(exports),
                "UNIGRID_TRUTH_DIR": str((city / "truth").resolve()),
                "UNIGRID_WANTED_DB_URL": f"sqlite:///{exports / 'ps_wanted.sqlite'}",
                "PYTHONUNBUFFERED": "1"})
    return env


def _manifest(city: Path) -> dict[str, Any] | None:
    p = city / "manifest.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


def _rate(records: int | None, seconds: float | None) -> float | None:
    return round(records / seconds, 1) if records and seconds else None


def step_row(phase: str, name: str, m: Measured, records: int | None) -> dict[str, Any]:
    """One row of the steps table from a measured child process."""
    r = m.result
    own = r.get("seconds") if isinstance(r.get("seconds"), (int, float)) else None
    seconds = float(own) if own is not None else m.seconds
    return {"phase": phase, "name": name, "status": r.get("status", "failed"),
            "seconds": round(seconds, 3), "process_seconds": round(m.seconds, 3),
            "cpu_seconds": round(m.cpu_seconds, 3),
            "peak_rss_mb": round(m.peak_rss_mb, 1), "records": records,
            "records_per_second": _rate(records, seconds),
            "counts": r.get("counts", {}), "messages": list(r.get("messages", []))[:10]}


def _skipped(phase: str, name: str, after: str) -> dict[str, Any]:
    return {"phase": phase, "name": name, "status": "skipped", "seconds": None,
            "process_seconds": None, "cpu_seconds": None, "peak_rss_mb": None, "records": None,
            "records_per_second": None, "counts": {}, "messages": [f"not run: {after}"]}


def run_pipeline(phase: str, stages: Sequence[str], business_date: str, full_rebuild: bool,
                 work: Path, env: Mapping[str, str], records: int,
                 say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run the stages in order, one process each; stop after a failed or unbuilt stage."""
    rows: list[dict[str, Any]] = []
    stop: str | None = None
    for name in stages:
        if stop:
            rows.append(_skipped(phase, name, stop))
            continue
        m = run_child("stage", {"stage": name, "business_date": business_date,
                                "full_rebuild": full_rebuild}, work, env, f"{phase}-{name}")
        row = step_row(phase, name, m, records)
        rows.append(row)
        say(f"{phase} {name}: {row['status']} {row['seconds']:.1f} s, "
            f"{row['peak_rss_mb']:.0f} MB")
        if row["status"] in ("failed", "not_implemented"):
            stop = f"{name} {row['status']}"
    return rows


def pipeline_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Total seconds and peak RSS of a pipeline's stages; complete if every stage was ok."""
    ran = [r for r in rows if r["seconds"] is not None]
    return {"seconds": round(sum(r["seconds"] for r in ran), 3),
            "cpu_seconds": round(sum(r.get("cpu_seconds") or 0.0 for r in ran), 3),
            "peak_rss_mb": max((r["peak_rss_mb"] for r in ran), default=None),
            "complete": bool(rows) and all(r["status"] in ("ok", "partial") for r in rows),
            "stages": {r["name"]: r["status"] for r in rows}}


def changed_records(rows: Sequence[dict[str, Any]]) -> int | None:
    """New + changed + disappeared rows the extract stage saw (None if it did not say)."""
    ex = next((r for r in rows if r["name"] == "extract"), None)
    per = (ex or {}).get("counts", {}).get("per_source")
    if not isinstance(per, dict):
        return None
    keys = ("rows_new", "rows_changed", "rows_disappeared")
    return int(sum((v or {}).get(k) or 0 for v in per.values() for k in keys))


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def comparisons(acc: dict[str, Any], day1: dict[str, Any], baselines: dict[str, Any],
                records: int) -> list[dict[str, Any]]:
    """unigrid against each baseline: F1 ratio and speed ratio (>1: unigrid better)."""
    out = []
    u_rate = _rate(records, day1["seconds"]) if day1["complete"] else None
    pairs = [(scope, system) for scope in ("full", "subset")
             for system, v in (acc.get(scope) or {}).items()
             if system != "unigrid" and isinstance(v, dict)]
    for scope, system in pairs:
        a = (acc.get(scope) or {})
        u, b = a.get("unigrid") or {}, a.get(system) or {}
        base = baselines.get(system) or {}
        link_s = (base.get("seconds") or {}).get("linking")
        b_rate = _rate((base.get("counts") or {}).get("records"), link_s)
        row = {"baseline": system, "scope": scope,
               "unigrid_f1": u.get("f1"), "baseline_f1": b.get("f1"),
               "f1_ratio": _ratio(u.get("f1"), b.get("f1")),
               "unigrid_records_per_second": u_rate, "baseline_records_per_second": b_rate,
               "speed_ratio": _ratio(u_rate, b_rate)}
        if system == "splink" and scope == "full":
            row["unigrid_pipeline_seconds"] = day1["seconds"] if day1["complete"] else None
            row["baseline_linking_seconds"] = link_s
            row["time_ratio"] = _ratio(row["unigrid_pipeline_seconds"], link_s)
        if b.get("status") == "ok" or u.get("status") == "ok":
            out.append(row)
    return out


def nightly_note(day2: Mapping[str, Any], linking_seconds: float | None) -> str:
    """The day-2 incremental night against Splink's linking step, as a note beside the
    full-run target (which it does not replace): ``"day-2 night 24.1 s = 0.78x"``."""
    s2 = day2.get("seconds")
    if not day2.get("complete") or s2 is None or not linking_seconds:
        return ""
    return f"day-2 night {s2:.1f} s = {s2 / linking_seconds:.2f}x"


def check_targets(persons: int, day1: dict[str, Any], day2: dict[str, Any],
                  cmp_rows: Sequence[dict[str, Any]], api: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 8's targets, each ``met`` True / False / None (not measurable in this run)."""
    at_scale = persons >= TARGETS["target_persons"]
    note = "" if at_scale else f"targets are set for {TARGETS['target_persons']:,} persons"

    def row(name: str, limit: Any, measured: Any, met: bool | None, why: str = "") -> dict:
        return {"target": name, "limit": limit, "measured": measured, "met": met,
                "note": why or (note if met is not None else "")}

    complete = day1["complete"]
    t = [row("full run seconds", TARGETS["full_run_seconds"], day1["seconds"],
             (day1["seconds"] < TARGETS["full_run_seconds"]) if complete else None,
             "" if complete else "pipeline incomplete"),
         row("peak RSS MB", TARGETS["peak_rss_mb"], day1["peak_rss_mb"],
             (day1["peak_rss_mb"] < TARGETS["peak_rss_mb"]) if complete else None,
             "" if complete else "pipeline incomplete")]
    ratio = day2.get("ratio_to_day1")
    t.append(row("day-2 seconds / full run", TARGETS["day2_ratio"], ratio,
                 (ratio < TARGETS["day2_ratio"]) if ratio is not None and day2.get("complete")
                 else None, "" if day2.get("complete") else "day-2 run incomplete or skipped"))
    sp = next((c for c in cmp_rows if c["baseline"] == "splink" and c["scope"] == "full"), {})
    tr = sp.get("time_ratio")
    t.append(row("unigrid pipeline / Splink linking time", 1.0, tr,
                 (tr <= 1.0) if tr is not None else None,
                 nightly_note(day2, sp.get("baseline_linking_seconds")) if tr is not None
                 else "pipeline or baseline incomplete"))
    u, b = sp.get("unigrid_f1"), sp.get("baseline_f1")
    t.append(row("unigrid F1 > Splink F1", b, u, (u > b) if u is not None and b is not None
                 else None, "" if u is not None and b is not None else "F1 not available"))
    p99 = api.get("p99_ms") if api.get("status") == "ok" else None
    t.append(row("GET /persons/{id_number} p99 ms", TARGETS["api_p99_ms"], p99,
                 (p99 < TARGETS["api_p99_ms"]) if p99 is not None else None,
                 "" if p99 is not None else (api.get("reason") or "; ".join(
                     api.get("messages", [])) or "not measured")))
    return t


def _fresh_dir(path: Path, under: Path) -> None:
    """Remove ``path`` (a bench-owned folder inside ``under``) and create it empty."""
    path, under = path.resolve(), under.resolve()
    if under not in path.parents:
        raise ValueError(f"refusing to clear {path}: not inside {under}")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def run_bench(opts: BenchOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole benchmark and return its result (also written as JSON)."""
    from unigrid.stages import STAGES

    started = datetime.now(timezone.utc)
    work = Path(opts.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    _fresh_dir(work / "logs", work)
    city = work / f"city-{opts.persons}-s{opts.seed}"
    home = work / f"home-{opts.persons}"
    result: dict[str, Any] = {
        "schema": SCHEMA, "persons": opts.persons, "seed": opts.seed,
        "started_at": started.isoformat(timespec="seconds"), "git_commit": _git_commit(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "machine": machine_info(), "steps": []}
    steps: list[dict[str, Any]] = result["steps"]

    # 1. the city
    man = _manifest(city)
    if not (opts.reuse_city and man and man.get("persons") == opts.persons
            and man.get("seed") == opts.seed and man.get("day") == 1):
        say(f"generating a city of {opts.persons:,} persons in {city} ...")
        m = run_child("generate", {"persons": opts.persons, "seed": opts.seed, "out": str(city),
                                   "day": 1}, work, dict(os.environ), "generate-day1")
        steps.append(step_row("setup", "generate", m, None))
        man = _manifest(city) if m.result.get("status") == "ok" else None
    else:
        steps.append({**_skipped("setup", "generate", "reused the existing city"),
                      "status": "reused"})
    if man is None:
        result["error"] = "the city could not be generated: " + "; ".join(steps[-1]["messages"])
        return finish(result, opts, say)
    by_source = {s["name"]: s["records"] for s in man["sources"]}
    records = int(sum(by_source.values()))
    result["city"] = {"path": str(city), "business_date": man["business_date"],
                      "source_records": records, "by_source": by_source}
    say(f"city: {records:,} source records, business date {man['business_date']}")

    # 2. day 1: the full run on a fresh home
    _fresh_dir(home, work)
    env = child_env(home, city)
    day1_rows = run_pipeline("day1", list(STAGES), man["business_date"], True, work, env,
                             records, say)
    steps += day1_rows
    day1 = pipeline_summary(day1_rows)
    result["day1"] = day1

    # the service, on the day-1 master
    api_name = f"GET /persons/{{id_number}} p99 at {opts.api_clients} clients"
    if opts.api_seconds > 0:
        m = run_child("api", {"home": str(home), "clients": opts.api_clients,
                              "seconds": opts.api_seconds}, work, env, "api")
        result["api"] = {"name": api_name, "p99_ms": None, **m.result,
                         "peak_rss_mb": round(m.peak_rss_mb, 1)}
        say(f"api: {m.result.get('status')} p99 {_f(m.result.get('p99_ms'))} ms")
    else:
        result["api"] = {"name": api_name, "status": "skipped", "p99_ms": None,
                         "reason": "--api-seconds 0"}

    # 3. baselines on the same exports
    baselines: dict[str, Any] = {}
    assign: dict[str, str] = {}
    if opts.baselines:
        plans = [("splink", {})]
        if opts.rl_persons > 0:
            plans.append(("recordlinkage", {"persons": min(opts.rl_persons, opts.persons)}))
        for system, extra in plans:
            path = work / f"assignments-{system}.parquet"
            path.unlink(missing_ok=True)
            m = run_child("baseline", {"system": system, "exports": str(city / "exports"),
                                       "truth": str(city / "truth"), "assignments": str(path),
                                       "seed": 42, **extra}, work, env, f"baseline-{system}")
            r = m.result
            link_s = (r.get("seconds") or {}).get("linking") if isinstance(
                r.get("seconds"), dict) else None
            n = (r.get("counts") or {}).get("records")
            baselines[system] = {"status": r.get("status", "failed"),
                                 "load_seconds": r.get("load_seconds"),
                                 "seconds": r.get("seconds") if isinstance(r.get("seconds"),
                                                                           dict) else {},
                                 "process_seconds": round(m.seconds, 3),
                                 "cpu_seconds": round(m.cpu_seconds, 3),
                                 "peak_rss_mb": round(m.peak_rss_mb, 1),
                                 "counts": r.get("counts", {}),
                                 "records_per_second": _rate(n, link_s),
                                 "notes": r.get("notes", []),
                                 "messages": r.get("messages", []), **extra}
            steps.append({"phase": "baseline", "name": system, "status": r.get("status", "failed"),
                          "seconds": round(link_s, 3) if link_s is not None else None,
                          "process_seconds": round(m.seconds, 3),
                          "cpu_seconds": round(m.cpu_seconds, 3),
                          "peak_rss_mb": round(m.peak_rss_mb, 1), "records": n,
                          "records_per_second": _rate(n, link_s), "counts": r.get("counts", {}),
                          "messages": r.get("messages", [])})
            say(f"baseline {system}: {r.get('status')} linking "
                f"{link_s if link_s is None else round(link_s, 1)} s, {m.peak_rss_mb:.0f} MB")
            if r.get("status") == "ok":
                assign[system] = str(path)
    result["baselines"] = baselines

    # 4. accuracy of all, on the same truth
    m = run_child("evaluate", {"truth": str(city / "truth"),
                               "work_db": str(home / "work.duckdb"), "assignments": assign},
                  work, env, "evaluate-day1")
    acc = m.result
    result["accuracy"] = acc
    result["comparison"] = comparisons(acc, day1, baselines, records)

    # 5. day 2, incremental
    day2: dict[str, Any] = {"status": "skipped"}
    if opts.day2:
        city2 = work / f"city-{opts.persons}-s{opts.seed}-day2"
        say(f"generating day 2 in {city2} ...")
        m = run_child("generate", {"persons": opts.persons, "seed": opts.seed, "out": str(city2),
                                   "day": 2, "churn": opts.churn}, work, dict(os.environ),
                       "generate-day2")
        steps.append(step_row("setup", "generate day 2", m, None))
        man2 = _manifest(city2) if m.result.get("status") == "ok" else None
        if man2 is not None:
            rec2 = int(sum(s["records"] for s in man2["sources"]))
            env2 = child_env(home, city2)
            rows2 = run_pipeline("day2", list(STAGES), man2["business_date"], False, work, env2,
                                 rec2, say)
            steps += rows2
            s2 = pipeline_summary(rows2)
            changed = changed_records(rows2)
            same = [r["name"] for r in rows2 if r["seconds"] is not None]
            base = sum(r["seconds"] for r in day1_rows if r["name"] in same and r["seconds"])
            day2 = {"status": "ok" if s2["complete"] else "incomplete", **s2,
                    "business_date": man2["business_date"], "source_records": rec2,
                    "changed_records": changed,
                    "changed_share": _ratio(changed, rec2) if changed is not None else None,
                    "ratio_to_day1": _ratio(s2["seconds"], base) if s2["complete"]
                    and day1["complete"] else None,
                    "ratio_same_stages": _ratio(s2["seconds"], base)}
            m = run_child("evaluate", {"truth": str(city2 / "truth"),
                                       "work_db": str(home / "work.duckdb"), "assignments": {}},
                          work, env2, "evaluate-day2")
            day2["accuracy"] = (m.result.get("full") or {}).get("unigrid")
        else:
            day2 = {"status": "failed", "messages": steps[-1]["messages"]}
    result["day2"] = day2

    result["targets"] = check_targets(opts.persons, day1, day2, result["comparison"],
                                      result["api"])
    return finish(result, opts, say)


def finish(result: dict[str, Any], opts: BenchOptions, say: Callable[[str], None]) -> dict:
    """Stamp the end time and write the JSON file; returns the result (with ``json_path``)."""
    end = datetime.now(timezone.utc)
    result["finished_at"] = end.isoformat(timespec="seconds")
    result.setdefault("machine", {})["load_average_at_end"] = [round(x, 2)
                                                               for x in os.getloadavg()]
    out = Path(opts.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{opts.persons}-{end:%Y%m%dT%H%M%SZ}.json"
    result["json_path"] = str(path)
    path.write_text(json.dumps(result, default=str, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    say(f"results: {path}")
    return result


# ---------------------------------------------------------------------------------------------
# presenting


def _f(x: Any, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def _num(x: Any) -> str:
    """A limit or measurement for display: 4 significant digits for floats."""
    return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


_SHOWN = {"not_implemented": "not built", "not_available": "n/a"}
"""Short display forms of long statuses (the JSON keeps the full ones)."""


def _status(st: str) -> str:
    return f"[{_STYLE.get(st, 'white')}]{_SHOWN.get(st, st)}[/]"


_STYLE = {"ok": "green", "partial": "yellow", "failed": "bold red", "not_implemented": "magenta",
          "skipped": "dim", "reused": "dim", "not_available": "magenta", "incomplete": "yellow"}


def churn(day2: Mapping[str, Any]) -> str:
    """What day 2 was measured at: ``"412 of 39,591 records changed (1.0%)"``, from the
    extract stage's new + changed + disappeared rows."""
    n, share, total = (day2.get(k) for k in ("changed_records", "changed_share",
                                              "source_records"))
    if n is None:
        return "changed records not reported"
    of = f" of {total:,}" if total else ""
    return f"{n:,}{of} records changed" + (f" ({share:.1%})" if share is not None else "")


def tables(result: dict[str, Any]) -> list[Any]:
    """The rich tables: steps, accuracy and ratios, targets."""
    from rich.table import Table

    machine = result.get("machine", {})
    t1 = Table(title=f"unigrid bench: {result['persons']:,} persons "
                     f"({(result.get('city') or {}).get('source_records', 0):,} source records) "
                     f"on {machine.get('logical_cores')} cores, {machine.get('memory_gb')} GB, "
                     f"{machine.get('cpu_model')}")
    for c, j in (("phase", "left"), ("step", "left"), ("status", "left"), ("seconds", "right"),
                 ("CPU s", "right"), ("peak RSS MB", "right"), ("records/s", "right")):
        t1.add_column(c, justify=j)  # type: ignore[arg-type]
    for r in result.get("steps", []):
        st = r["status"]
        t1.add_row(r["phase"], r["name"], _status(st),
                   _f(r["seconds"]), _f(r.get("cpu_seconds")), _f(r["peak_rss_mb"], "{:.0f}"),
                   _f(r["records_per_second"], "{:,.0f}"))
    d1, d2 = result.get("day1") or {}, result.get("day2") or {}
    if d1:
        t1.add_row("day1", "[bold]total[/]", "complete" if d1.get("complete") else "incomplete",
                   _f(d1.get("seconds")), _f(d1.get("cpu_seconds")),
                   _f(d1.get("peak_rss_mb"), "{:.0f}"), "")
    if d2.get("seconds") is not None:
        t1.caption = f"day 2 ({d2.get('business_date')}) measured at {churn(d2)}"
        t1.add_row("day2", "[bold]total[/]", _status(d2.get("status", "")), _f(d2.get("seconds")),
                   _f(d2.get("cpu_seconds")), _f(d2.get("peak_rss_mb"), "{:.0f}"),
                   f"ratio {_f(d2.get('ratio_same_stages'), '{:.1%}')}")
    api = result.get("api") or {}
    if api:
        t1.add_row("service", "GET /persons/{id} p99 ms", _status(api.get("status", "")),
                   _f(api.get("p99_ms")), "-", _f(api.get("peak_rss_mb"), "{:.0f}"),
                   _f(api.get("throughput_rps"), "{:,.0f}"))

    t2 = Table(title="accuracy (pairwise, against the generator's truth)")
    for c in ("scope", "system", "records", "precision", "recall", "F1", "linking s"):
        t2.add_column(c, justify="left" if c in ("scope", "system") else "right")
    acc = result.get("accuracy") or {}
    base = result.get("baselines") or {}
    for scope in ("full", "subset"):
        for system, s in (acc.get(scope) or {}).items():
            if not isinstance(s, dict):
                continue
            if s.get("status") != "ok":
                t2.add_row(scope, system, "-", "-", "-", _status(s.get("status", "")), "-")
                continue
            link = (result.get("day1") or {}).get("seconds") if system == "unigrid" else \
                ((base.get(system) or {}).get("seconds") or {}).get("linking")
            t2.add_row(scope, system, f"{s['records']:,}", f"{s['precision']:.4f}",
                       f"{s['recall']:.4f}", f"{s['f1']:.4f}",
                       "-" if scope == "subset" and system != "recordlinkage" else _f(link))
    t3 = Table(title="unigrid / baseline (>1: unigrid better)")
    for c in ("baseline", "scope", "F1 ratio", "speed ratio (records/s)", "time ratio"):
        t3.add_column(c, justify="left" if c in ("baseline", "scope") else "right")
    for c in result.get("comparison", []):
        t3.add_row(c["baseline"], c["scope"], _f(c.get("f1_ratio"), "{:.3f}"),
                   _f(c.get("speed_ratio"), "{:.2f}"), _f(c.get("time_ratio"), "{:.2f}"))
    t4 = Table(title="targets (issue 8)")
    for c in ("target", "limit", "measured", "met", "note"):
        t4.add_column(c)
    for t in result.get("targets", []):
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]n/a[/]"}[t["met"]]
        t4.add_row(t["target"], _num(t["limit"]), _num(t["measured"]), met, t["note"])
    return [t1, t2, t3, t4]


def print_report(result: dict[str, Any], console: Any | None = None) -> None:
    """Print the tables (and a run error, if any) to a rich console."""
    from rich.console import Console

    console = console or Console()
    if result.get("error"):
        console.print(f"[bold red]{result['error']}[/]")
    for t in tables(result):
        console.print(t)
    for scope, systems in (result.get("accuracy") or {}).items():
        for system, s in (systems.items() if isinstance(systems, dict) else ()):
            if isinstance(s, dict) and s.get("reason") and scope == "full":
                console.print(f"[magenta]accuracy of {system}:[/] {s['reason']}")
    for r in result.get("steps", []):
        if r["status"] in ("failed", "not_implemented") and r["messages"]:
            console.print(f"[{_STYLE[r['status']]}]{r['phase']} {r['name']}:[/] "
                          f"{r['messages'][0][:300]}")
    if result.get("json_path"):
        console.print(f"JSON: {result['json_path']}")


def to_markdown(result: dict[str, Any]) -> str:
    """The headline figures as Markdown (for docs/performance.md)."""
    m = result.get("machine", {})
    lines = [f"Run of {result['started_at']} (commit {result.get('git_commit')}), "
             f"{result['persons']:,} persons, "
             f"{(result.get('city') or {}).get('source_records', 0):,} source records; "
             f"machine: {m.get('cpu_model')}, {m.get('logical_cores')} cores, "
             f"{m.get('memory_gb')} GB, Python {m.get('python')}.", "",
             "| phase | step | status | seconds | CPU s | peak RSS MB | records/s |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in result.get("steps", []):
        lines.append(f"| {r['phase']} | {r['name']} | {r['status']} | {_f(r['seconds'])} | "
                     f"{_f(r.get('cpu_seconds'))} | {_f(r['peak_rss_mb'], '{:.0f}')} | "
                     f"{_f(r['records_per_second'], '{:,.0f}')} |")
    d1, d2 = result.get("day1") or {}, result.get("day2") or {}
    if d2.get("seconds") is not None:
        lines += ["", f"Day 2 ({d2.get('business_date')}): {churn(d2)}, "
                      f"{_f(d2.get('seconds'))} s against {_f(d1.get('seconds'))} s for day 1 "
                      f"(ratio {_f(d2.get('ratio_same_stages'), '{:.1%}')})."]
    lines += ["", "| scope | system | records | precision | recall | F1 |",
              "|---|---|---:|---:|---:|---:|"]
    for scope in ("full", "subset"):
        for system, s in ((result.get("accuracy") or {}).get(scope) or {}).items():
            if isinstance(s, dict) and s.get("status") == "ok":
                lines.append(f"| {scope} | {system} | {s['records']:,} | {s['precision']:.4f} | "
                             f"{s['recall']:.4f} | {s['f1']:.4f} |")
            elif isinstance(s, dict):
                lines.append(f"| {scope} | {system} | - | - | - | {s.get('status')} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of ``python -m unigrid.bench`` (the same as ``unigrid bench``)."""
    ap = argparse.ArgumentParser(prog="unigrid bench", description=__doc__.splitlines()[0])
    ap.add_argument("--persons", "-n", type=int, default=DEFAULT_PERSONS)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work-dir", type=Path, default=Path("var/bench"))
    ap.add_argument("--results", type=Path, default=Path("bench-results"))
    ap.add_argument("--rl-persons", type=int, default=DEFAULT_RL_PERSONS,
                    help="persons whose records recordlinkage links (0: skip it)")
    ap.add_argument("--no-day2", action="store_true", help="skip the day-2 incremental run")
    ap.add_argument("--no-baselines", action="store_true", help="skip Splink and recordlinkage")
    ap.add_argument("--regenerate", action="store_true", help="regenerate the city even if "
                    "one with the same persons and seed exists")
    ap.add_argument("--api-seconds", type=float, default=30.0,
                    help="seconds of GET /persons/{id_number} load (0: skip)")
    ap.add_argument("--api-clients", type=int, default=50)
    ap.add_argument("--churn", type=float, default=None,
                    help="day 2's share of rows updated besides life events (default: the "
                    "generator's 0.01, about 1 %% of all records changed)")
    a = ap.parse_args(argv)
    if a.persons < 100:
        ap.error("--persons must be at least 100")
    if a.churn is not None and not 0 <= a.churn <= 1:
        ap.error("--churn must be between 0 and 1")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m unigrid.bench [options]``; ``... child <kind> <spec> <result>`` is internal.

    Exit code 0 when the run finished (whatever the stages' statuses: they are in the table),
    1 when the city could not be generated.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["child"]:
        return child_main(argv[1], Path(argv[2]), Path(argv[3]))
    from rich.console import Console

    a = parse_args(argv)
    console = Console()
    opts = BenchOptions(persons=a.persons, seed=a.seed, work_dir=a.work_dir,
                        results_dir=a.results, rl_persons=a.rl_persons, day2=not a.no_day2,
                        baselines=not a.no_baselines, reuse_city=not a.regenerate,
                        api_seconds=a.api_seconds, api_clients=a.api_clients, churn=a.churn)
    result = run_bench(opts, say=lambda s: console.print(f"[dim]{s}[/]"))
    print_report(result, console)
    return 1 if result.get("error") else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
