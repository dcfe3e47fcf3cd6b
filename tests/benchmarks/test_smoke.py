"""Smoke test: the whole harness at ``--persons 20000`` as issue 8 asks; checks the output's
shape, never its times.

One run generates two cities (day 1 and day 2), runs every stage twice in its own process, both
baselines (recordlinkage on 1,000 persons), the evaluation twice and a 3-second, 5-client API
load. How long it takes on the 2-core machine, and where that time goes, is in
docs/performance.md ("Smoke test").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unigrid.stages import STAGES

PERSONS = 20_000
STATUSES = {"ok", "partial", "failed", "not_implemented", "skipped", "reused"}


def _nonneg(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and x >= 0)


@pytest.mark.slow
def test_bench_smoke(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "unigrid.bench", "--persons", str(PERSONS), "--rl-persons", "1000",
         "--api-seconds", "3", "--api-clients", "5",
         "--work-dir", str(tmp_path / "bench"), "--results", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=2400, env={"COLUMNS": "240",
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
    # the baselines score every row with a key: all rows written but the planted keyless ones
    man = json.loads((Path(r["city"]["path"]) / "manifest.json").read_text(encoding="utf-8"))
    keyless = sum(v.get("key_blank", 0) for v in man["bad_rows"].values())
    assert acc["full"]["splink"]["records"] == r["city"]["source_records"] - keyless
    u = acc["full"]["unigrid"]
    assert u["status"] in ("ok", "not_available")
    if u["status"] == "ok":
        assert 0 <= u["f1"] <= 1
    else:
        assert u["reason"]

    d2 = r["day2"]
    assert d2["status"] in ("ok", "incomplete", "failed")
    if d2["status"] == "ok":  # the churn the day-2 ratio was measured at is shown
        assert d2["changed_records"] >= 0 and 0 <= d2["changed_share"] <= 1
        assert "records changed" in proc.stdout
    api = r["api"]
    assert api["status"] in ("ok", "not_available"), api
    if api["status"] == "ok":
        assert api["requests"] > 0 and 0 <= api["p50_ms"] <= api["p99_ms"] <= api["max_ms"]
    else:
        assert api["p99_ms"] is None and api["reason"]
    assert {t["target"] for t in r["targets"]} >= {"full run seconds", "peak RSS MB"}
    assert all(t["met"] in (True, False, None) for t in r["targets"])
