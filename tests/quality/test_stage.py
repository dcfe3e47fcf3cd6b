"""validate_stage: every extracted source validated, one failure stops no other, status and report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from tests.quality.conftest import PERSON_CONTRACT, land_raw, person_row

DAY = date(2026, 11, 20)
RUN = "20261120"


def _setup(tmp_path: Path, sources: dict[str, dict]) -> object:
    """Contracts + raw tables + meta.source_run rows. ``sources``: name -> {required, extract,
    rows (None = no raw table)}."""
    from connectors.landing import ensure_meta, record_source_run
    from unigrid.settings import load_settings
    from warehouse.connection import work_db

    cdir = tmp_path / "contracts"
    cdir.mkdir()
    settings = load_settings(env={"UNIGRID_HOME": str(tmp_path / "var"),
                                  "UNIGRID_CONTRACTS_DIR": str(cdir)}, cwd=tmp_path)
    with work_db(settings.work_db) as con:
        ensure_meta(con)
        for name, spec in sources.items():
            data = {**PERSON_CONTRACT, "name": name, "required": spec["required"]}
            (cdir / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                               encoding="utf-8")
            if spec.get("rows") is not None:
                land_raw(con, name, spec["rows"])
            if spec.get("extract"):
                record_source_run(con, {"run_id": RUN, "source": name, "status": spec["extract"],
                                        "error": None if spec["extract"] == "ok" else "bad file"})
    return settings


def _run(settings: object) -> object:
    from quality.stage import validate_stage
    from unigrid.stages import RunContext
    return validate_stage(settings, RunContext.for_date(DAY))  # type: ignore[arg-type]


GOOD = [person_row("K1"), person_row(None), person_row("K2", sex="9")]


def test_all_sources_ok(tmp_path: Path) -> None:
    settings = _setup(tmp_path, {
        "src_a": {"required": True, "extract": "ok", "rows": GOOD},
        "src_b": {"required": False, "extract": "ok", "rows": GOOD[:1]}})
    r = _run(settings)
    assert r.status == "ok", r.messages
    assert r.counts["sources"]["src_a"] == {
        "read": 3, "staged": 2, "quarantined": 1, "flagged": 1, "unchanged": 0, "removed": 0,
        "reconcile_ok": True, "status": "ok"}
    assert (r.counts["rows_read"], r.counts["rows_staged"], r.counts["rows_quarantined"]) == (4, 3, 1)
    report = Path(r.counts["report"])
    assert report.name == f"validation-{RUN}.html" and report.parent == settings.report_dir
    assert "src_b" in report.read_text(encoding="utf-8")
    assert any("src_a: 1 of 3 row(s) quarantined: key_missing" in m for m in r.messages)


def test_optional_source_failing_does_not_stop_the_others(tmp_path: Path) -> None:
    settings = _setup(tmp_path, {
        "src_a": {"required": True, "extract": "ok", "rows": GOOD},
        "src_b": {"required": False, "extract": "ok", "rows": None}})  # raw table missing
    r = _run(settings)
    assert r.status == "partial"
    assert r.counts["sources"]["src_a"]["staged"] == 2
    assert r.counts["sources"]["src_b"]["status"] == "failed"
    assert any("src_b" in m and "does not exist" in m for m in r.messages)


def test_required_source_failing_fails_the_stage(tmp_path: Path) -> None:
    settings = _setup(tmp_path, {
        "src_a": {"required": True, "extract": "ok", "rows": None},
        "src_b": {"required": False, "extract": "ok", "rows": GOOD}})
    r = _run(settings)
    assert r.status == "failed"
    assert r.counts["sources"]["src_b"]["staged"] == 2


def test_source_whose_extract_failed_is_skipped_and_named(tmp_path: Path) -> None:
    settings = _setup(tmp_path, {
        "src_a": {"required": False, "extract": "ok", "rows": GOOD},
        "src_b": {"required": False, "extract": "failed", "rows": GOOD}})
    r = _run(settings)
    assert r.status == "ok"
    assert r.counts["sources"]["src_b"]["status"] == "skipped"
    assert any("src_b" in m and "extract failed" in m for m in r.messages)


def test_reconcile_mismatch_fails_the_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import quality.validate as v
    monkeypatch.setattr(v, "reconcile", lambda con, source, run_id, rows_read, rows_unchanged=0:
                        (rows_read - 1, 0, False))
    settings = _setup(tmp_path, {"src_a": {"required": False, "extract": "ok", "rows": GOOD}})
    r = _run(settings)
    assert r.status == "failed"
    assert r.counts["sources"]["src_a"]["status"] == "mismatch"
    assert any("RECONCILE FAILED" in m for m in r.messages)


def test_broken_contract_file_is_reported(tmp_path: Path) -> None:
    settings = _setup(tmp_path, {"src_a": {"required": False, "extract": "ok", "rows": GOOD}})
    (settings.contracts_dir / "zz_broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    r = _run(settings)
    assert r.status == "partial"
    assert any("zz_broken.yaml" in m for m in r.messages)
    assert r.counts["sources"]["src_a"]["status"] == "ok"


@pytest.mark.parametrize("rows, contexts", [
    ({"src_a": GOOD, "src_b": GOOD[:1], "src_c": GOOD[1:]}, 1),  # three sources, one context
    ({"src_a": [], "src_b": []}, 0),  # nothing to validate: Great Expectations never started
])
def test_one_gx_context_per_stage_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      rows: dict[str, list], contexts: int) -> None:
    import quality.validate as v
    made: list[int] = []
    real = v.GxRunner._context

    def counting(self):  # type: ignore[no-untyped-def]
        if self._ctx is None:
            made.append(1)
        return real(self)

    monkeypatch.setattr(v.GxRunner, "_context", counting)
    settings = _setup(tmp_path, {name: {"required": True, "extract": "ok", "rows": r}
                                 for name, r in rows.items()})
    r = _run(settings)
    assert r.status == "ok", r.messages
    assert len(made) == contexts
    assert r.counts["rows_read"] == sum(len(x) for x in rows.values())
