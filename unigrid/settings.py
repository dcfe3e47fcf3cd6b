"""Settings: one place, read from a TOML file and ``UNIGRID_``-prefixed environment variables.

Precedence (highest first): environment variable, config file, default. The config file is
``$UNIGRID_CONFIG`` if set, else ``./unigrid.toml`` if present. Defaults give the embedded
setup: everything under ``var/`` in the working directory, DuckDB files only.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONTRACTS_DIR = PACKAGE_ROOT / "connectors" / "contracts"


@dataclass(frozen=True)
class Settings:
    """Every knob unigrid reads. Paths are absolute after :func:`load_settings`."""

    home: Path = Path("var")
    """Root folder for everything unigrid writes by default."""
    work_db: Path = Path("var/work.duckdb")
    """DuckDB file for a run's working layers: raw, staged, quarantine, std, link."""
    master_db: Path = Path("var/unigrid.duckdb")
    """DuckDB file readers see: master and audit schemas, replaced atomically on publish.

    Not named ``master.duckdb``: DuckDB names a file's catalog after the file, and a catalog
    ``master`` would make ``master.person`` ambiguous for readers who connect directly."""
    decisions_db: Path = Path("var/decisions.duckdb")
    """DuckDB file of human review decisions (append-only); kept apart from runs and master."""
    contracts_dir: Path = DEFAULT_CONTRACTS_DIR
    """Folder of source contract YAML files."""
    source_root: Path = Path("var/city/exports")
    """Folder that contract file globs are relative to (the departments' drop folder)."""
    truth_dir: Path = Path("var/city/truth")
    """Generator ground truth, used only by ``unigrid evaluate``."""
    report_dir: Path = Path("var/reports")
    """Where HTML / XLSX / CSV reports and the validation report go."""
    model_dir: Path = Path("var/models")
    """Versioned linkage model artefacts."""
    log_level: str = "INFO"
    timezone: str = "Asia/Shanghai"
    extra: Mapping[str, str] = field(default_factory=dict)
    """Other ``UNIGRID_*`` variables (e.g. ``UNIGRID_WANTED_DB_URL``), for contract expansion."""

    def ensure_dirs(self) -> "Settings":
        """Create the folders unigrid writes into; return self for chaining."""
        for p in (self.home, self.work_db.parent, self.master_db.parent, self.report_dir,
                  self.model_dir):
            Path(p).mkdir(parents=True, exist_ok=True)
        return self


_PATH_FIELDS = {f.name for f in fields(Settings) if f.type in ("Path", Path)}
_KNOWN = {f.name for f in fields(Settings)} - {"extra"}


def _coerce(name: str, value: Any) -> Any:
    """Turn a raw config/env value into the field's type."""
    if name in _PATH_FIELDS:
        return Path(str(value)).expanduser()
    return str(value)


def load_settings(env: Mapping[str, str] | None = None, config_file: Path | None = None,
                  cwd: Path | None = None) -> Settings:
    """Build :class:`Settings` from defaults, the config file and the environment.

    ``home`` moves every default path below it unless that path is set explicitly.
    Relative paths are resolved against ``cwd`` (default: the process working directory).
    """
    env = dict(os.environ if env is None else env)
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, Any] = {}
    cfg = config_file or (Path(env["UNIGRID_CONFIG"]) if env.get("UNIGRID_CONFIG") else None)
    if cfg is None and (cwd / "unigrid.toml").exists():
        cfg = cwd / "unigrid.toml"
    if cfg is not None:
        with open(cfg, "rb") as fh:
            data = tomllib.load(fh)
        for k, v in data.get("unigrid", data).items():
            if k not in _KNOWN:
                raise ValueError(f"{cfg}: unknown setting {k!r}; known: {sorted(_KNOWN)}")
            values[k] = _coerce(k, v)
    extra: dict[str, str] = {}
    for k, v in env.items():
        if not k.startswith("UNIGRID_") or k == "UNIGRID_CONFIG":
            continue
        name = k[len("UNIGRID_"):].lower()
        if name in _KNOWN:
            values[name] = _coerce(name, v)
        else:
            extra[k] = v
    home = Path(values.get("home", Settings.home))
    defaults = {
        "work_db": home / "work.duckdb",
        "master_db": home / "unigrid.duckdb",
        "decisions_db": home / "decisions.duckdb",
        "source_root": home / "city" / "exports",
        "truth_dir": home / "city" / "truth",
        "report_dir": home / "reports",
        "model_dir": home / "models",
    }
    for k, v in defaults.items():
        values.setdefault(k, v)
    s = Settings(**values, extra=extra)
    resolved = {n: (cwd / getattr(s, n)).resolve() for n in _PATH_FIELDS}
    return replace(s, **resolved)
