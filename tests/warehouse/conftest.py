"""Fixtures: settings pointing at a temporary folder with a small synthetic work database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.warehouse.factory import make_work_db
from unigrid.settings import Settings


def settings_at(home: Path) -> Settings:
    """Settings with every database under ``home``."""
    return Settings(home=home, work_db=home / "work.duckdb", master_db=home / "master.duckdb",
                    decisions_db=home / "decisions.duckdb", report_dir=home / "reports",
                    model_dir=home / "models")


def sha256(path: Path) -> str:
    """Content hash of a file (to prove a master is byte-identical)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a 40-person work database of run 20261120."""
    s = settings_at(tmp_path)
    make_work_db(s.work_db, persons=40, run_id="20261120")
    return s
