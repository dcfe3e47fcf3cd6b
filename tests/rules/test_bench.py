"""The scale harness runs end to end on a small city and every rule finds something."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_small_city(tmp_path: Path) -> None:
    from quality.rules.bench import main

    res = main(["--persons", "20000", "--out", str(tmp_path)])
    assert set(res["findings"]) >= {"deceased_pensioner", "id_conflict"}
    assert all(n > 0 for n in res["findings"].values()), res["findings"]
    assert res["report_findings"] == sum(res["findings"].values())
    assert res["roll"]["rows"] > 0 and (tmp_path / "roll.xlsx").exists()
    assert (tmp_path / "report" / "report.html").exists()
