"""Settings: defaults, config file, environment precedence, home relocation."""

from pathlib import Path

import pytest

from unigrid.settings import load_settings


def test_defaults_are_embedded_under_var(tmp_path: Path) -> None:
    s = load_settings(env={}, cwd=tmp_path)
    assert s.home == tmp_path / "var"
    assert s.work_db == tmp_path / "var" / "work.duckdb"
    assert s.master_db == tmp_path / "var" / "unigrid.duckdb"
    assert s.decisions_db == tmp_path / "var" / "decisions.duckdb"
    assert s.contracts_dir.name == "contracts" and s.contracts_dir.is_absolute()


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"UNIGRID_HOME": "/data/ug"}, "work_db", Path("/data/ug/work.duckdb")),
        ({"UNIGRID_HOME": "/data/ug"}, "report_dir", Path("/data/ug/reports")),
        ({"UNIGRID_HOME": "/data/ug", "UNIGRID_MASTER_DB": "/srv/m.duckdb"}, "master_db",
         Path("/srv/m.duckdb")),
        ({"UNIGRID_LOG_LEVEL": "DEBUG"}, "log_level", "DEBUG"),
        ({"UNIGRID_SOURCE_ROOT": "drop"}, "source_root", None),
    ],
)
def test_environment_overrides(tmp_path: Path, env: dict, field: str, expected) -> None:
    s = load_settings(env=env, cwd=tmp_path)
    if expected is None:  # relative path resolved against cwd
        assert getattr(s, field) == tmp_path / "drop"
    else:
        assert getattr(s, field) == expected


def test_config_file_then_env_precedence(tmp_path: Path) -> None:
    (tmp_path / "unigrid.toml").write_text('[unigrid]\nhome = "h1"\nlog_level = "WARNING"\n')
    s = load_settings(env={"UNIGRID_LOG_LEVEL": "ERROR"}, cwd=tmp_path)
    assert s.home == tmp_path / "h1"
    assert s.work_db == tmp_path / "h1" / "work.duckdb"
    assert s.log_level == "ERROR"


def test_unknown_config_key_is_an_error_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[unigrid]\nwarehouse = "x"\n')
    with pytest.raises(ValueError, match="unknown setting 'warehouse'"):
        load_settings(env={"UNIGRID_CONFIG": str(cfg)}, cwd=tmp_path)


def test_unknown_env_vars_are_kept_as_extras(tmp_path: Path) -> None:
    s = load_settings(env={"UNIGRID_WANTED_DB_URL": "postgresql://x/y", "OTHER": "1"}, cwd=tmp_path)
    assert s.extra == {"UNIGRID_WANTED_DB_URL": "postgresql://x/y"}
