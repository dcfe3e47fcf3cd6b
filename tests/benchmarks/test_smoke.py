"""Smoke test: the whole harness at a small size; checks the output's shape, never its times.

The issue asks for ``--persons 20000`` in CI; on 2 shared cores that run takes longer than the
three minutes we allow a smoke test (see docs/performance.md), so CI runs 2,000 persons and the
20,000-person figures are measured by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unigrid.stages import STAGES

PERSONS = 2000
STATUSES = {"ok", "partial", "failed", "not_implemented", "skipped", "reused"}


def _nonneg(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and x >= 0)


@pytest.mark.slow
def test_bench_smoke(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "unigrid.bench", "--persons", str(PERSONS), "--rl-persons", "1000",
         "--api-seconds", "3", "--api-clients", "5",
         "--work-dir", str(tmp_path / "bench"), "--results", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=900, env={"COLUMNS": "160",
                                                          **__import__("os").environ})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for title in ("unigrid bench", "accuracy", "unigrid / baseline", "targets"):
        assert title in proc.stdout
    files = list((tmp_path / "results").glob(f"bench-{PERSONS}-*.json"))
    assert len(files) == 1
    r = json.loads(files[0].read_text(encoding="utf-8"))

    assert r["schema"] == "unigrid-bench/1" and r["persons"] == PERSONS
    for k in ("machine", "city", "steps", "day1", "day2", "baselines", "accuracy", "comparison",
              "api", "targets", "started_at", "finished_at"):
        assert k in r, k
    m = r["machine"]
    assert m["logical_cores"] >= 1 and m["memory_gb"] > 0 and m["cpu_model"] and m["python"]
    assert r["city"]["source_records"] > PERSONS // 2

    for phase in ("day1", "day2"):
        names = [s["name"] for s in r["steps"] if s["phase"] == phase]
        assert names == list(STAGES), phase                    # every stage listed, in order
    for s in r["steps"]:
        assert s["status"] in STATUSES, s
        for k in ("seconds", "process_seconds", "peak_rss_mb", "records_per_second"):
            assert _nonneg(s[k]), (s["name"], k)
        if s["status"] not in ("skipped", "reused"):
            assert s["peak_rss_mb"] > 0 and s["process_seconds"] > 0
    assert r["steps"][0]["name"] == "generate"

    for system in ("splink", "recordlinkage"):
        b = r["baselines"][system]
        assert b["status"] == "ok", b
        assert b["seconds"]["linking"] >= 0 and b["peak_rss_mb"] > 0
        assert isinstance(b["notes"], list)
    assert r["baselines"]["recordlinkage"]["counts"]["records"] <= \
        r["baselines"]["splink"]["counts"]["records"]
    acc = r["accuracy"]
    assert acc["status"] == "ok"
    for scope, system in (("full", "splink"), ("subset", "splink"), ("subset", "recordlinkage")):
        s = acc[scope][system]
        assert s["status"] == "ok" and 0 <= s["precision"] <= 1 and 0 <= s["f1"] <= 1
    assert acc["full"]["splink"]["records"] == r["city"]["source_records"]
    u = acc["full"]["unigrid"]
    assert u["status"] in ("ok", "not_available")
    if u["status"] == "ok":
        assert 0 <= u["f1"] <= 1
    else:
        assert u["reason"]

    assert r["day2"]["status"] in ("ok", "incomplete", "failed")
    api = r["api"]
    assert api["status"] in ("ok", "not_available"), api
    if api["status"] == "ok":
        assert api["requests"] > 0 and 0 <= api["p50_ms"] <= api["p99_ms"] <= api["max_ms"]
    else:
        assert api["p99_ms"] is None and api["reason"]
    assert {t["target"] for t in r["targets"]} >= {"full run seconds", "peak RSS MB"}
    assert all(t["met"] in (True, False, None) for t in r["targets"])
