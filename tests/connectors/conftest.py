"""Fixtures for connector tests: settings in a temp folder, contract files, tiny exports."""

from __future__ import annotations

import itertools
import os
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from connectors.contract import Contract, load_contract
from unigrid.settings import Settings, load_settings
from unigrid.stages import RunContext

_seq = itertools.count(1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose every path is under ``tmp_path`` (contracts in ``tmp_path/contracts``)."""
    s = load_settings(env={}, cwd=tmp_path)
    s = replace(s, contracts_dir=tmp_path / "contracts", source_root=tmp_path / "exports")
    s.contracts_dir.mkdir()
    s.source_root.mkdir()
    return s


def ctx(day: int = 1, full: bool = False, sources: tuple[str, ...] | None = None) -> RunContext:
    """Run context of 2026-11-<day>."""
    return RunContext.for_date(date(2026, 11, day), full_rebuild=full, sources=sources)


def contract_dict(name: str = "people", **over: Any) -> dict[str, Any]:
    """A small CSV contract: key 编号, name 姓名, ID 身份证号, birth 出生日期, watermark none."""
    d: dict[str, Any] = {
        "name": name, "system": "测试系统", "department": "test", "department_zh": "测试局",
        "kind": "household_registry", "required": False, "snapshot": "full",
        "location": {"path": f"{name}.csv"},
        "format": {"type": "csv", "encoding": "utf-8"},
        "key": ["编号"],
        "columns": [
            {"column": "姓名", "field": "name", "required": True},
            {"column": "身份证号", "field": "id_number"},
            {"column": "出生日期", "field": "birth_date", "formats": ["%Y-%m-%d"]},
        ],
    }
    d.update(over)
    return d


def write_contract(settings: Settings, d: dict[str, Any]) -> Contract:
    """Write a contract YAML into the settings' contracts folder and load it back."""
    path = Path(settings.contracts_dir) / f"{d['name']}.yaml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_contract(path)


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8",
              header: list[str] | None = None) -> Path:
    """Write rows (first the header) as CSV text in an encoding (no quoting needed here)."""
    lines = ([",".join(header)] if header else []) + [",".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


PEOPLE_HEADER = ["编号", "姓名", "身份证号", "出生日期"]


def people_rows(n: int, start: int = 1) -> list[list[str]]:
    """n synthetic rows: keys P0001.., names 测试N, ID-like digits with a leading zero."""
    return [[f"P{i:04d}", f"测试{i}", f"0{i:017d}", f"1990-01-{(i % 28) + 1:02d}"]
            for i in range(start, start + n)]


def unique_table(prefix: str = "ug_test") -> str:
    """A table name unique to this test process and call."""
    return f"{prefix}_{os.getpid()}_{next(_seq)}"


@pytest.fixture
def people(settings: Settings) -> Callable[..., Contract]:
    """Factory: write the people contract (with overrides) and return it."""
    def make(**over: Any) -> Contract:
        return write_contract(settings, contract_dict(**over))
    return make
