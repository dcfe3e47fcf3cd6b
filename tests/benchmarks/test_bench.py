"""The harness's own logic: measuring children, summaries, ratios, targets, presentation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from unigrid import bench


@pytest.mark.parametrize("raw,system,mb", [
    (1024, "linux", 1.0), (2_097_152, "linux", 2048.0), (1_048_576, "darwin", 1.0),
])
def test_maxrss_mb(raw, system, mb):
    assert bench.maxrss_mb(raw, system) == mb


def test_run_measured_wall_and_peak(tmp_path: Path):
    big = [sys.executable, "-c", "b = b'x' * (200 * 1024 * 1024)"]
    seconds, rss, code, _ = bench.run_measured(big)
    assert code == 0 and seconds > 0 and rss > 190


@pytest.mark.parametrize("mb,low,high", [(0, 0, 100), (200, 190, 400)])
def test_self_peak_is_the_childs_own(mb, low, high):
    """Launched from this (large) test process, a child still reports only its own peak."""
    code = (f"b = b'x' * ({mb} * 1024 * 1024)\n"
            "from unigrid.bench import self_peak_rss_mb; print(self_peak_rss_mb())")
    out = __import__("subprocess").run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout
    assert low < float(out) < high


def test_run_child_uses_the_reported_peak(tmp_path: Path):
    m = bench.run_child("nonsense-kind", {}, tmp_path, {**__import__("os").environ}, "p")
    assert 0 < m.peak_rss_mb < 150     # the child's VmHWM, not this process's size at fork


def test_run_measured_cpu_seconds():
    _, _, _, cpu = bench.run_measured([sys.executable, "-c", "sum(range(30_000_000))"])
    _, _, _, idle = bench.run_measured([sys.executable, "-c", "import time; time.sleep(0.5)"])
    assert cpu > 0.2 and idle < cpu


def test_run_measured_exit_code_and_log(tmp_path: Path):
    log = tmp_path / "x.log"
    _, _, code, _ = bench.run_measured(
        [sys.executable, "-c", "print('hello'); raise SystemExit(3)"], log=log)
    assert code == 3
    assert "hello" in log.read_text()


def test_child_failure_is_a_result(tmp_path: Path):
    spec, res = tmp_path / "s.json", tmp_path / "r.json"
    spec.write_text(json.dumps({"truth": str(tmp_path / "nowhere")}))
    assert bench.child_main("evaluate", spec, res) == 1
    out = json.loads(res.read_text())
    assert out["status"] == "failed" and out["messages"]


def test_child_stage_reports_a_failed_stage(tmp_path: Path, monkeypatch):
    import unigrid.stages as stages

    def boom(settings, ctx):
        raise stages.StageFailed("no staged records")

    monkeypatch.setitem(stages.STAGES, "extract", boom)  # type: ignore[index]
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path / "home"))
    r = bench._child_stage({"stage": "extract", "business_date": "2026-11-20",
                            "full_rebuild": True})
    assert r["status"] == "failed" and "no staged records" in r["messages"][0]


def test_child_stage_survives_a_crashing_runner(tmp_path: Path, monkeypatch):
    import unigrid.stages as stages

    def crash(name, settings, ctx):
        raise RuntimeError("runner broke")

    monkeypatch.setattr(stages, "run_stage", crash)
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path / "home"))
    r = bench._child_stage({"stage": "extract", "business_date": "2026-11-20",
                            "full_rebuild": True})
    assert r["status"] == "failed" and r["messages"] == ["RuntimeError: runner broke"]
    assert r["seconds"] >= 0


def test_run_child_unknown_kind_is_failed(tmp_path: Path):
    m = bench.run_child("nonsense-kind", {}, tmp_path, {**__import__("os").environ}, "t")
    assert m.returncode == 1 and m.result["status"] == "failed"
    assert "KeyError" in m.result["messages"][0]


def test_run_child_without_result_is_failed(tmp_path: Path):
    fake = tmp_path / "fake" / "unigrid"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('broken install')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path / "fake")}
    m = bench.run_child("evaluate", {}, tmp_path / "work", env, "crash")
    assert m.returncode != 0 and m.result["status"] == "failed"
    assert "without a result" in m.result["messages"][0]
    assert "broken install" in (tmp_path / "work" / "logs" / "crash.log").read_text()


def test_child_env_owns_the_paths(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("UNIGRID_WORK_DB", "/elsewhere/work.duckdb")
    monkeypatch.setenv("UNIGRID_CONFIG", "/elsewhere/unigrid.toml")
    monkeypatch.setenv("UNIGRID_MATCH_RETRAIN", "1")
    env = bench.child_env(tmp_path / "home", tmp_path / "city")
    assert "UNIGRID_WORK_DB" not in env and "UNIGRID_CONFIG" not in env
    assert env["UNIGRID_MATCH_RETRAIN"] == "1"          # other knobs pass through
    assert env["UNIGRID_HOME"] == str((tmp_path / "home").resolve())
    assert env["UNIGRID_SOURCE_ROOT"].endswith("city/exports")
    assert env["UNIGRID_WANTED_DB_URL"].startswith("sqlite:///")


def _row(name, status, seconds, rss=100.0, counts=None):
    return {"phase": "day1", "name": name, "status": status, "seconds": seconds,
            "process_seconds": seconds, "peak_rss_mb": rss, "records": 10,
            "records_per_second": None, "counts": counts or {}, "messages": []}


@pytest.mark.parametrize("rows,seconds,peak,complete", [
    ([_row("a", "ok", 1.0, 50), _row("b", "partial", 2.0, 80)], 3.0, 80, True),
    ([_row("a", "ok", 1.0), _row("b", "not_implemented", 0.0),
      bench._skipped("day1", "c", "b")], 1.0, 100, False),
    ([_row("a", "failed", 4.0, 30)], 4.0, 30, False),
    ([], 0.0, None, False),
])
def test_pipeline_summary(rows, seconds, peak, complete):
    s = bench.pipeline_summary(rows)
    assert s["seconds"] == seconds and s["peak_rss_mb"] == peak and s["complete"] is complete


@pytest.mark.parametrize("counts,expected", [
    ({"per_source": {"a": {"rows_new": 2, "rows_changed": 3, "rows_disappeared": 1},
                     "b": {"rows_new": None, "rows_changed": 4}}}, 10),
    ({}, None),
    ({"per_source": "?"}, None),
])
def test_changed_records(counts, expected):
    assert bench.changed_records([_row("extract", "ok", 1.0, counts=counts)]) == expected


def _acc(u_f1=0.99, s_f1=0.9, r_f1=0.7):
    ok = lambda f: {"status": "ok", "f1": f, "precision": f, "recall": f, "records": 100}  # noqa: E731
    return {"full": {"unigrid": ok(u_f1), "splink": ok(s_f1)},
            "subset": {"records": 50, "unigrid": ok(u_f1), "splink": ok(s_f1),
                       "recordlinkage": ok(r_f1)}}


BASES = {"splink": {"seconds": {"linking": 20.0}, "counts": {"records": 100}},
         "recordlinkage": {"seconds": {"linking": 5.0}, "counts": {"records": 50}}}


def test_comparisons_ratios():
    rows = bench.comparisons(_acc(), {"seconds": 10.0, "complete": True}, BASES, 100)
    full = next(r for r in rows if r["baseline"] == "splink" and r["scope"] == "full")
    assert full["f1_ratio"] == pytest.approx(0.99 / 0.9, abs=1e-4)
    assert full["time_ratio"] == 0.5 and full["speed_ratio"] == 2.0
    rl = next(r for r in rows if r["baseline"] == "recordlinkage")
    assert rl["speed_ratio"] == 1.0 and "time_ratio" not in rl


def test_comparisons_without_a_complete_pipeline_have_no_time_ratio():
    rows = bench.comparisons(_acc(), {"seconds": 3.0, "complete": False}, BASES, 100)
    full = next(r for r in rows if r["baseline"] == "splink" and r["scope"] == "full")
    assert full["time_ratio"] is None and full["speed_ratio"] is None


@pytest.mark.parametrize("persons,day1,day2,u_f1,splink_s,met", [
    (1_000_000, {"seconds": 500.0, "peak_rss_mb": 5000.0, "complete": True},
     {"ratio_to_day1": 0.03, "complete": True}, 0.99, 550.0,
     [True, True, True, True, True, None]),
    (1_000_000, {"seconds": 700.0, "peak_rss_mb": 7000.0, "complete": True},
     {"ratio_to_day1": 0.2, "complete": True}, 0.8, 550.0,
     [False, False, False, False, False, None]),
    (2000, {"seconds": 5.0, "peak_rss_mb": 100.0, "complete": False},
     {"status": "skipped"}, 0.99, 20.0, [None, None, None, None, True, None]),
])
def test_check_targets(persons, day1, day2, u_f1, splink_s, met):
    bases = {**BASES, "splink": {"seconds": {"linking": splink_s}, "counts": {"records": 100}}}
    cmp = bench.comparisons(_acc(u_f1=u_f1), day1, bases, 100)
    api = {"p99_ms": None, "reason": "later issue"}
    t = bench.check_targets(persons, day1, day2, cmp, api)
    assert [x["met"] for x in t] == met
    assert t[-1]["note"] == "later issue"


@pytest.mark.parametrize("day2,linking,note", [
    ({"seconds": 24.0, "complete": True}, 30.0, "day-2 night 24.0 s = 0.80x"),
    ({"seconds": 45.0, "complete": True}, 30.0, "day-2 night 45.0 s = 1.50x"),
    ({"seconds": 24.0, "complete": False}, 30.0, ""),
    ({"status": "skipped"}, 30.0, ""),
    ({"seconds": 24.0, "complete": True}, None, ""),
])
def test_nightly_note(day2, linking, note):
    assert bench.nightly_note(day2, linking) == note


def test_splink_target_row_carries_the_nightly_note_but_judges_the_full_run():
    day1 = {"seconds": 500.0, "peak_rss_mb": 5000.0, "complete": True}
    bases = {**BASES, "splink": {"seconds": {"linking": 50.0}, "counts": {"records": 100}}}
    cmp = bench.comparisons(_acc(), day1, bases, 100)
    row = bench.check_targets(1_000_000, day1, {"seconds": 25.0, "complete": True,
                                                "ratio_to_day1": 0.05}, cmp, {})[3]
    assert row["met"] is False and row["note"] == "day-2 night 25.0 s = 0.50x"


@pytest.mark.parametrize("api,met,note", [
    ({"status": "ok", "p99_ms": 12.5}, True, ""),
    ({"status": "ok", "p99_ms": 25.0}, False, ""),
    ({"status": "not_available", "p99_ms": None, "reason": "no master"}, None, "no master"),
    ({"status": "failed", "messages": ["no successful request"]}, None,
     "no successful request"),
])
def test_api_target(api, met, note):
    day1 = {"seconds": 5.0, "peak_rss_mb": 100.0, "complete": True}
    t = bench.check_targets(1_000_000, day1, {}, [], api)[-1]
    assert t["met"] is met and t["note"] == note


def test_fresh_dir_refuses_outside(tmp_path: Path):
    with pytest.raises(ValueError):
        bench._fresh_dir(tmp_path.parent / "not-mine", tmp_path)
    (tmp_path / "h" / "x").mkdir(parents=True)
    bench._fresh_dir(tmp_path / "h", tmp_path)
    assert list((tmp_path / "h").iterdir()) == []


def _result() -> dict:
    day1 = {"seconds": 10.0, "peak_rss_mb": 100.0, "complete": True, "stages": {}}
    return {"schema": bench.SCHEMA, "persons": 2000, "started_at": "2026-11-21T00:00:00+00:00",
            "git_commit": "abc", "machine": {"cpu_model": "X", "logical_cores": 2,
                                             "memory_gb": 24, "python": "3.11"},
            "city": {"source_records": 100},
            "steps": [_row("extract", "ok", 10.0), _row("validate", "not_implemented", 0.0)],
            "day1": day1, "day2": {"status": "skipped"}, "accuracy": _acc(),
            "baselines": BASES, "comparison": bench.comparisons(_acc(), day1, BASES, 100),
            "api": {"name": "GET", "status": "not_available", "p99_ms": None, "reason": "later"},
            "targets": bench.check_targets(2000, day1, {}, [], {"reason": "later"})}


def test_report_and_markdown_render():
    console = Console(record=True, width=160)
    bench.print_report(_result(), console)
    text = console.export_text()
    for title in ("unigrid bench", "accuracy", "unigrid / baseline", "targets"):
        assert title in text
    assert "not built" in text and "recordlinkage" in text
    md = bench.to_markdown(_result())
    assert "| day1 | extract | ok | 10.0 |" in md and "| full | splink | 100 |" in md


def test_machine_info_keys():
    m = bench.machine_info()
    assert m["logical_cores"] >= 1 and m["memory_gb"] > 0
    assert set(bench.LIBRARIES) == set(m["libraries"])
    assert m["libraries"]["duckdb"]


@pytest.mark.parametrize("argv,ok", [(["--persons", "500"], True), (["--persons", "50"], False),
                                     (["--rl-persons", "0", "--no-day2"], True),
                                     (["--churn", "0.02"], True), (["--churn", "0"], True),
                                     (["--churn", "1.5"], False)])
def test_parse_args(argv, ok):
    if ok:
        a = bench.parse_args(argv)
        assert a.persons in (500, bench.DEFAULT_PERSONS)
    else:
        with pytest.raises(SystemExit):
            bench.parse_args(argv)


def test_comparisons_with_recordlinkage_on_the_whole_city():
    acc = _acc()
    acc["full"]["recordlinkage"] = acc.pop("subset")["recordlinkage"]
    rows = bench.comparisons(acc, {"seconds": 10.0, "complete": True}, BASES, 100)
    assert {(r["baseline"], r["scope"]) for r in rows} == {("splink", "full"),
                                                           ("recordlinkage", "full")}


def _truth_and_preds(tmp_path: Path, rl_keys: list[str]) -> dict:
    import pandas as pd

    truth = pd.DataFrame({"source": ["a"] * 4, "source_key": ["1", "2", "3", "4"],
                          "person_id": ["P1", "P1", "P2", "P2"]})
    (tmp_path / "truth").mkdir()
    truth.to_parquet(tmp_path / "truth" / "records.parquet")
    sp = truth.assign(person_id=["S1", "S1", "S2", "S3"])
    rl = truth[truth.source_key.isin(rl_keys)].assign(person_id="R1")
    sp.to_parquet(tmp_path / "sp.parquet")
    rl.to_parquet(tmp_path / "rl.parquet")
    return {"truth": str(tmp_path / "truth"), "work_db": str(tmp_path / "none.duckdb"),
            "assignments": {"splink": str(tmp_path / "sp.parquet"),
                            "recordlinkage": str(tmp_path / "rl.parquet")}}


def test_evaluate_child_whole_city(tmp_path: Path):
    r = bench._child_evaluate(_truth_and_preds(tmp_path, ["1", "2", "3", "4"]))
    assert "subset" not in r
    assert r["full"]["unigrid"]["status"] == "not_available"
    assert r["full"]["splink"]["recall"] == 0.5 and r["full"]["splink"]["precision"] == 1.0
    rl = r["full"]["recordlinkage"]          # everything in one cluster: 2 of 6 pairs right
    assert rl["precision"] == pytest.approx(2 / 6) and rl["recall"] == 1.0


def test_evaluate_child_subset(tmp_path: Path):
    r = bench._child_evaluate(_truth_and_preds(tmp_path, ["3", "4"]))
    sub = r["subset"]
    assert sub["records"] == 2 and "recordlinkage" not in r["full"]
    assert sub["recordlinkage"]["f1"] == 1.0
    assert sub["splink"]["records"] == 2 and sub["splink"]["recall"] == 0.0


@pytest.mark.parametrize("day2, expected", [
    ({"changed_records": 412, "changed_share": 0.0104, "source_records": 39591},
     "412 of 39,591 records changed (1.0%)"),
    ({"changed_records": 5, "changed_share": None, "source_records": None}, "5 records changed"),
    ({"changed_records": None}, "changed records not reported"),
])
def test_churn(day2, expected):
    assert bench.churn(day2) == expected


def test_day2_row_shows_churn():
    r = _result()
    r["day2"] = {"status": "ok", "seconds": 2.0, "cpu_seconds": 1.0, "peak_rss_mb": 50.0,
                 "business_date": "2026-11-21", "source_records": 101, "changed_records": 1,
                 "changed_share": 0.0099, "ratio_same_stages": 0.2}
    console = Console(record=True, width=200)
    bench.print_report(r, console)
    assert "1 of 101 records changed (1.0%)" in console.export_text()
    assert "Day 2 (2026-11-21): 1 of 101 records changed (1.0%), 2.0 s against 10.0 s" in \
        bench.to_markdown(r)


@pytest.mark.parametrize("client,wrk_installed,kinds", [
    ("auto", True, ["wrk"]), ("auto", False, ["python"]), ("both", True, ["python", "wrk"]),
    ("python", True, ["python"]), ("wrk", False, ["wrk"]),
])
def test_api_client_choice(monkeypatch, client, wrk_installed, kinds):
    """The API step's load client: wrk when installed (auto), else the Python one."""
    import shutil

    from benchmarks import bench_api

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/wrk" if wrk_installed else None)
    assert bench_api.client_kinds(client) == kinds


def test_api_step_without_a_master(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path))
    monkeypatch.setenv("UNIGRID_MASTER_DB", str(tmp_path / "none.duckdb"))
    monkeypatch.setenv("UNIGRID_DECISIONS_DB", str(tmp_path / "decisions.duckdb"))
    got = bench._child_api({"clients": 2, "seconds": 1})
    assert got["status"] == "not_available" and "master" in got["reason"]
