"""Source contracts: declared in YAML (``connectors/contracts/*.yaml``), validated on load.

A contract says where a department's export is, how to read it, which column is the key, how
each source column maps to a canonical field (with its parse format), the watermark for
incremental pulls, and extra expectations. Adding a source of a known kind is a new contract
file, not code. Errors name the file and the line of the offending entry.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

KINDS = (
    "household_registry", "wanted_list", "cremation", "death_certificate", "birth_certificate",
    "pension_payments", "subsistence_allowance", "grid_collection", "marriage", "disability",
)
"""Source kinds (DESIGN.md vocabulary, extended as sources appear)."""

FIELD_TYPES: dict[str, str] = {
    # identity
    "id_number": "id", "name": "text", "sex": "sex", "birth_date": "date", "birth_month": "month",
    "ethnicity": "text", "address": "text", "phone": "text",
    # registry
    "household_no": "text", "relation_to_head": "text", "registry_status": "text",
    "registered_at": "date", "cancel_date": "date", "cancel_reason": "text",
    # death / cremation
    "death_date": "date", "cremation_date": "date", "death_place": "text", "death_cause": "text",
    "next_of_kin_name": "text", "next_of_kin_phone": "text",
    # pensions and subsidies
    "pension_last_paid_month": "month", "pension_start_month": "month",
    "pension_monthly_amount": "decimal", "subsidy_monthly_amount": "decimal",
    "subsidy_last_paid_month": "month", "subsidy_approved_date": "date",
    "payment_status": "text", "household_size": "integer", "subsidy_case_no": "text",
    # wanted list
    "case_no": "text", "case_date": "date",
    # births
    "birth_place": "text", "mother_name": "text", "mother_id_number": "id",
    "father_name": "text", "father_id_number": "id",
    # grid collection
    "grid_code": "text", "resident_type": "text", "collected_at": "timestamp", "collector": "text",
    # any source
    "source_updated_at": "timestamp", "issued_at": "timestamp",
}
"""Canonical field -> value type. Documented in docs/data-dictionary.md."""

ValueType = Literal["text", "id", "sex", "date", "month", "timestamp", "decimal", "integer"]


class ContractError(ValueError):
    """A contract file is invalid; the message names the file and line."""


class ColumnMap(BaseModel):
    """One source column mapped to one canonical field."""

    model_config = ConfigDict(extra="forbid")

    column: str
    """The source column name exactly as the export has it (header, JSON key, SQL column)."""
    field: str
    """Canonical field name (see FIELD_TYPES)."""
    required: bool = False
    """A required field that is empty or does not parse puts the row in quarantine."""
    formats: list[str] = Field(default_factory=list)
    """strptime patterns tried in order for date/month/timestamp fields (empty = built-in set)."""
    codes: dict[str, str] = Field(default_factory=dict)
    """Code map applied before parsing (e.g. {'1': '男', '2': '女'})."""

    @field_validator("field")
    @classmethod
    def _known_field(cls, v: str) -> str:
        if v not in FIELD_TYPES:
            raise ValueError(f"unknown canonical field {v!r}; known: {', '.join(sorted(FIELD_TYPES))}")
        return v

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, v: Any) -> Any:
        return {str(k): str(val) for k, val in (v or {}).items()}

    @property
    def value_type(self) -> str:
        """The canonical field's value type."""
        return FIELD_TYPES[self.field]


class Location(BaseModel):
    """Where the data is: a file glob (relative to source_root) or a SQLAlchemy URL + table/query."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Location":
        if bool(self.path) == bool(self.url):
            raise ValueError("location needs exactly one of 'path' (file glob) or 'url' (SQLAlchemy)")
        if self.url and bool(self.table) == bool(self.query):
            raise ValueError("a SQL location needs exactly one of 'table' or 'query'")
        return self


class Format(BaseModel):
    """How to read the bytes."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["csv", "xlsx", "jsonl", "sql"]
    encoding: Literal["utf-8", "utf-8-sig", "gbk", "gb18030"] = "utf-8"
    delimiter: str = ","
    sheet: str | int | None = None
    header_row: int = 1
    """1-based row number of the header (CSV and XLSX)."""


class Expectation(BaseModel):
    """An extra declared expectation on a canonical field (beyond those implied by the mapping)."""

    model_config = ConfigDict(extra="forbid")

    field: str
    rule: Literal["not_null", "unique", "in_set", "between", "regex", "id_number"]
    severity: Literal["hard", "soft"] = "soft"
    """hard: the row goes to quarantine; soft: the row is kept and flagged."""
    values: list[str] | None = None
    min: float | str | None = None
    max: float | str | None = None
    pattern: str | None = None


class Contract(BaseModel):
    """One source: a department's export of a known kind."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    """Contract name: also the source name in raw/staged tables and master.person_link.source."""
    system: str
    department: str
    department_zh: str
    kind: Literal[KINDS]  # type: ignore[valid-type]
    description: str = ""
    required: bool = False
    """A required source failing to extract fails the run (the previous master is kept)."""
    snapshot: Literal["full", "incremental"] = "full"
    """full: each extract is the whole table (rows absent are 'disappeared'); incremental: only changes."""
    location: Location
    format: Format
    key: list[str] = Field(min_length=1)
    """Source column(s) forming the record key; joined with '|' into source_key."""
    watermark: str | None = None
    """Source column for incremental pulls (rows with a newer value than last run)."""
    columns: list[ColumnMap] = Field(min_length=1)
    expectations: list[Expectation] = Field(default_factory=list)
    path_: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "Contract":
        mapped = [c.field for c in self.columns]
        dup = sorted({f for f in mapped if mapped.count(f) > 1})
        if dup:
            raise ValueError(f"canonical field(s) mapped twice: {dup}")
        if self.format.type == "sql" and not self.location.url:
            raise ValueError("format 'sql' needs location.url")
        if self.format.type != "sql" and not self.location.path:
            raise ValueError(f"format {self.format.type!r} needs location.path")
        for e in self.expectations:
            if e.field not in mapped:
                raise ValueError(f"expectation on unmapped field {e.field!r}")
        return self

    def column_for(self, field: str) -> ColumnMap | None:
        """The mapping of a canonical field, if this source has it."""
        return next((c for c in self.columns if c.field == field), None)

    @property
    def source_columns(self) -> list[str]:
        """Every source column the contract reads (key, watermark and mapped)."""
        cols = list(self.key) + [c.column for c in self.columns]
        if self.watermark:
            cols.append(self.watermark)
        return list(dict.fromkeys(cols))


_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-((?:[^{}]|\{[^{}]*\})*))?\}")
"""``${VAR}`` or ``${VAR:-default}``; the default may hold ``{name}`` placeholders."""


def expand(text: str, env: dict[str, str], **named: str) -> str:
    """Expand ``${VAR}`` / ``${VAR:-default}`` from ``env`` and ``{name}`` placeholders."""
    def sub(m: re.Match[str]) -> str:
        return env.get(m.group(1)) or (m.group(2) if m.group(2) is not None else "")
    out = _VAR.sub(sub, text)
    for k, v in named.items():
        out = out.replace("{" + k + "}", v)
    return out


def _line_of(raw_text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the YAML node at a pydantic error location."""
    try:
        node = yaml.compose(raw_text)
        for part in loc:
            if node is None:
                return None
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                break
        return node.start_mark.line + 1 if node is not None else None
    except yaml.YAMLError:
        return None


def load_contract(path: Path) -> Contract:
    """Load and validate one contract file; raise :class:`ContractError` naming file and line."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ContractError(f"{path}{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{path}: a contract is a YAML mapping")
    try:
        c = Contract.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            line = _line_of(text, tuple(e["loc"]))
            where = f":{line}" if line else ""
            field = ".".join(str(p) for p in e["loc"]) or "(top)"
            msgs.append(f"{path}{where}: {field}: {e['msg']}")
        raise ContractError("\n".join(msgs)) from None
    c.path_ = Path(path)
    return c


def load_contracts(folder: Path, names: tuple[str, ...] | None = None) -> list[Contract]:
    """Every ``*.yaml`` contract in ``folder`` (sorted by name), optionally only ``names``."""
    contracts = [load_contract(p) for p in sorted(Path(folder).glob("*.yaml"))]
    seen: dict[str, Path | None] = {}
    for c in contracts:
        if c.name in seen:
            raise ContractError(f"{c.path_}: contract name {c.name!r} already used by {seen[c.name]}")
        seen[c.name] = c.path_
    if names:
        missing = set(names) - set(seen)
        if missing:
            raise ContractError(f"no contract named {sorted(missing)} in {folder}")
        contracts = [c for c in contracts if c.name in names]
    return contracts


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for contract expansion: the process env plus settings extras."""
    env = dict(os.environ)
    env.update(extra or {})
    return env
