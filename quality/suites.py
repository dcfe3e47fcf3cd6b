"""Expectation suites generated from source contracts.

Two layers:

* :func:`suite_specs` turns a :class:`~connectors.contract.Contract` into a list of
  :class:`ExpectationSpec` — plain data: the Great Expectations expectation type and its
  arguments, the column of the *validation frame* it runs on (see :mod:`quality.parse`), and
  what a failing row means: ``hard`` (the row goes to quarantine with ``rule`` as the reason) or
  ``soft`` (the row is staged and gets ``flag`` in ``_flags``). Pure, no GX import.
* :func:`build_suite` turns those specs into a GX 1.24 ``ExpectationSuite`` (imports GX lazily:
  it costs seconds).

The mapping to hard / soft follows one rule (docs/validation.md): a row we cannot key or whose
required field is empty or unparseable is quarantined; everything matching can still weigh
(bad check digit, legacy 15-digit number, implausible birth date, ID birth date or sex differing
from the record's, unknown region code, an optional field that does not parse) is a soft flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from connectors.contract import Contract

if TYPE_CHECKING:  # pragma: no cover
    import great_expectations as gx

Severity = Literal["hard", "soft"]

KEY_COLUMN = "_source_key"
"""Validation-frame column holding the record key (null when a key column is empty)."""
KEY_SEQ_COLUMN = "_key_seq"
"""1 for the first occurrence of a key (lowest file, row number), 2, 3, ... for later ones."""
INDEX_COLUMN = "_rid"
"""Row id in the validation frame; GX reports failing rows by it."""

PARSED_TYPES = ("sex", "date", "month", "timestamp", "decimal", "integer")
"""Value types whose text is parsed; a present value that does not parse is a finding."""

SEX_VALUES = ("男", "女")
"""Canonical sex values after :func:`matching.standardise.sex.normalise_sex`."""

ID_STATUSES = ("valid", "legacy15", "bad_check", "bad_date", "bad_length", "lost_digits",
               "bad_chars", "missing")
"""Statuses of :func:`matching.standardise.ids.classify_ids`."""

ID_STATUS_FLAGS = ("bad_check", "bad_date", "bad_length", "lost_digits", "bad_chars")
"""Statuses the resident-ID expectation rejects; each becomes the flag ``<prefix>_<status>``."""

EARLIEST_BIRTH = date(1900, 1, 1)
"""Birth dates before this are flagged ``birth_date_implausible``."""

HARD_RULES = ("key_missing", "duplicate_key", "required_missing", "unparseable")
"""Reason rules of quarantined rows (plus declared hard expectations: their ``rule`` name)."""


def raw_col(field_name: str) -> str:
    """Validation-frame column of a field's source text (stripped, blank = null)."""
    return f"{field_name}__raw"


def id_col(field_name: str, part: str) -> str:
    """Validation-frame column of an ID field's classification part (status, birth_date, ...)."""
    return f"{field_name}__{part}"


def id_prefix(field_name: str) -> str:
    """Flag prefix of an ID field: ``id`` for ``id_number``, ``mother_id`` for ``mother_id_number``."""
    return "id" if field_name == "id_number" else field_name.removesuffix("_number")


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a generated suite, and what failing it means for a row."""

    expectation: str
    """GX expectation class name, e.g. ``ExpectColumnValuesToNotBeNull``."""
    kwargs: dict[str, Any]
    """Arguments of the expectation (``column``, ``value_set``, ...)."""
    severity: Severity
    rule: str
    """Reason rule (hard) or flag name (soft); for the resident-ID check the flag is per status."""
    field: str | None = None
    """Canonical field the expectation is about (None for the record key)."""
    source_column: str | None = None
    """Source column the reason names (key columns joined with ``|`` for the key)."""
    row_condition_not_null: str | None = None
    """Only rows where this frame column is not null are checked (GX row_condition)."""
    description: str = ""
    flags_by_status: bool = False
    """Soft resident-ID check: the flag of a failing row is ``<rule>_<id status>``."""

    @property
    def column(self) -> str:
        """The validation-frame column (``column`` or ``column_A``)."""
        return str(self.kwargs.get("column") or self.kwargs.get("column_A"))

    def identity(self) -> str:
        """What GX compares to deduplicate a suite: type, arguments and row condition."""
        return repr((self.expectation, sorted((k, repr(v)) for k, v in self.kwargs.items()),
                     self.row_condition_not_null))

    def label(self) -> str:
        """Short human label, e.g. ``ExpectColumnValuesToNotBeNull(birth_date__raw)``."""
        cols = self.kwargs.get("column") or (
            f"{self.kwargs.get('column_A')}, {self.kwargs.get('column_B')}")
        return f"{self.expectation}({cols})"


@dataclass
class SuiteSpec:
    """Every expectation of one source, in evaluation order."""

    source: str
    specs: list[ExpectationSpec] = field(default_factory=list)

    def columns(self) -> set[str]:
        """Every validation-frame column the suite reads (expectation columns, row conditions)."""
        out: set[str] = set()
        for s in self.specs:
            out |= {str(s.kwargs[k]) for k in ("column", "column_A", "column_B") if k in s.kwargs}
            if s.row_condition_not_null:
                out.add(s.row_condition_not_null)
        return out

    def first_of_kind(self) -> list[int]:
        """For each spec, the index of the first spec with the same identity.

        GX keeps one of identical expectations in a suite; a later twin (e.g. a contract's
        declared ``in_set`` equal to an implied one) takes the first one's failing rows.
        """
        seen: dict[str, int] = {}
        return [seen.setdefault(s.identity(), i) for i, s in enumerate(self.specs)]

    def flags(self) -> list[str]:
        """Every flag name the suite can set (per-status ID flags expanded)."""
        out: list[str] = []
        for s in self.specs:
            if s.severity != "soft":
                continue
            if s.flags_by_status:
                out += [f"{s.rule}_{st}" for st in ID_STATUS_FLAGS]
            else:
                out.append(s.rule)
        return list(dict.fromkeys(out))


def _to_bound(value: float | str | None, value_type: str) -> Any:
    """A declared min/max converted to the parsed column's type."""
    if value is None:
        return None
    if value_type in ("date", "month", "timestamp"):
        import pandas as pd
        return pd.Timestamp(str(value))
    if value_type in ("decimal", "integer"):
        return float(value)
    return value


def suite_specs(contract: Contract, today: date) -> SuiteSpec:
    """The expectations a contract implies (see module doc), in a stable order.

    ``today`` bounds plausible birth dates (use the run's business date for reproducibility).
    """
    import pandas as pd

    suite = SuiteSpec(source=contract.name)
    add = suite.specs.append
    key_cols = "|".join(contract.key)
    add(ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": KEY_COLUMN}, "hard",
                        "key_missing", None, key_cols, description="record key present"))
    add(ExpectationSpec("ExpectColumnValuesToBeBetween",
                        {"column": KEY_SEQ_COLUMN, "min_value": 1, "max_value": 1}, "hard",
                        "duplicate_key", None, key_cols,
                        description="key unique (first occurrence kept, later ones quarantined)"))
    fields = {c.field: c for c in contract.columns}
    for c in contract.columns:
        vt = c.value_type
        if c.required:
            col = c.field if vt == "id" else raw_col(c.field)
            add(ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": col}, "hard",
                                "required_missing", c.field, c.column,
                                description=f"required {c.field} present"))
        if vt in PARSED_TYPES:
            add(ExpectationSpec(
                "ExpectColumnValuesToNotBeNull", {"column": c.field},
                "hard" if c.required else "soft",
                "unparseable" if c.required else f"{c.field}_unparseable", c.field, c.column,
                row_condition_not_null=raw_col(c.field),
                description=f"{c.field} parses as {vt} where present"))
        if vt == "sex":
            add(ExpectationSpec("ExpectColumnValuesToBeInSet",
                                {"column": c.field, "value_set": list(SEX_VALUES)}, "soft",
                                "sex_not_in_set", c.field, c.column, description="sex is 男 or 女"))
        if vt == "id":
            p = id_prefix(c.field)
            add(ExpectationSpec("ExpectColumnValuesToBeValidResidentId",
                                {"column": raw_col(c.field), "allow_legacy15": True}, "soft", p,
                                c.field, c.column, flags_by_status=True,
                                description="resident ID: structure, date, check digit"))
            add(ExpectationSpec("ExpectColumnValuesToNotBeInSet",
                                {"column": id_col(c.field, "status"), "value_set": ["legacy15"]},
                                "soft", f"{p}_legacy15", c.field, c.column,
                                description="18-digit number (15-digit legacy flagged)"))
            add(ExpectationSpec("ExpectColumnValuesToBeInSet",
                                {"column": id_col(c.field, "region_known"), "value_set": [True]},
                                "soft", f"{p}_region_unknown", c.field, c.column,
                                description="region code in the division table"))
    for bf in ("birth_date", "birth_month"):
        if bf in fields:
            add(ExpectationSpec("ExpectColumnValuesToBeBetween",
                                {"column": bf, "min_value": pd.Timestamp(EARLIEST_BIRTH),
                                 "max_value": pd.Timestamp(today)}, "soft",
                                f"{bf}_implausible", bf, fields[bf].column,
                                description=f"{bf} between {EARLIEST_BIRTH} and the run date"))
    if "death_date" in fields and "birth_date" in fields:
        add(ExpectationSpec("ExpectColumnPairValuesAToBeGreaterThanB",
                            {"column_A": "death_date", "column_B": "birth_date", "or_equal": True,
                             "ignore_row_if": "either_value_is_missing"}, "soft",
                            "death_before_birth", "death_date", fields["death_date"].column,
                            description="death date not before birth date"))
    if "id_number" in fields:
        if "birth_date" in fields:
            add(ExpectationSpec("ExpectColumnPairValuesToBeEqual",
                                {"column_A": "birth_date", "column_B": id_col("id_number", "birth_date"),
                                 "ignore_row_if": "either_value_is_missing"}, "soft",
                                "birth_date_mismatch_id", "birth_date", fields["birth_date"].column,
                                description="record birth date equals the ID's"))
        if "birth_month" in fields:
            add(ExpectationSpec("ExpectColumnPairValuesToBeEqual",
                                {"column_A": "birth_month", "column_B": id_col("id_number", "birth_month"),
                                 "ignore_row_if": "either_value_is_missing"}, "soft",
                                "birth_month_mismatch_id", "birth_month", fields["birth_month"].column,
                                description="record birth month equals the ID's"))
        if "sex" in fields:
            add(ExpectationSpec("ExpectColumnPairValuesToBeEqual",
                                {"column_A": "sex", "column_B": id_col("id_number", "sex"),
                                 "ignore_row_if": "either_value_is_missing"}, "soft",
                                "sex_mismatch_id", "sex", fields["sex"].column,
                                description="record sex equals the ID's"))
    for e in contract.expectations:
        cm = fields[e.field]
        vt = cm.value_type
        if e.rule == "id_number" and vt == "id" and e.severity == "soft":
            continue  # the implied resident-ID check above already flags it, per status
        rule = e.rule if e.severity == "hard" else f"{e.field}_{e.rule}_failed"
        if e.rule == "not_null":
            spec = ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": e.field}, e.severity,
                                   rule, e.field, cm.column, description="declared: not null")
        elif e.rule == "unique":
            spec = ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": e.field}, e.severity,
                                   rule, e.field, cm.column,
                                   description="declared: unique (every occurrence fails)")
        elif e.rule == "in_set":
            spec = ExpectationSpec("ExpectColumnValuesToBeInSet",
                                   {"column": e.field, "value_set": list(e.values or [])},
                                   e.severity, rule, e.field, cm.column,
                                   description=f"declared: in {list(e.values or [])}")
        elif e.rule == "between":
            spec = ExpectationSpec("ExpectColumnValuesToBeBetween",
                                   {"column": e.field, "min_value": _to_bound(e.min, vt),
                                    "max_value": _to_bound(e.max, vt)}, e.severity, rule, e.field,
                                   cm.column, description=f"declared: between {e.min} and {e.max}")
        elif e.rule == "regex":
            spec = ExpectationSpec("ExpectColumnValuesToMatchRegex",
                                   {"column": raw_col(e.field), "regex": e.pattern or ""},
                                   e.severity, rule, e.field, cm.column,
                                   description=f"declared: matches {e.pattern}")
        else:  # id_number
            spec = ExpectationSpec("ExpectColumnValuesToBeValidResidentId",
                                   {"column": raw_col(e.field), "allow_legacy15": True}, e.severity,
                                   rule, e.field, cm.column, description="declared: resident ID")
        add(spec)
    return suite


def build_suite(spec: SuiteSpec, name: str | None = None,
                context: Any = None) -> "gx.ExpectationSuite":
    """A GX ``ExpectationSuite`` for the specs; each expectation's ``meta`` carries its index.

    GX needs an active data context to build a suite: pass yours, or an ephemeral one is made.
    Identical specs (see :meth:`SuiteSpec.first_of_kind`) are added once.
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    import quality.expectations as qx

    if context is None:
        gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name=name or f"unigrid.{spec.source}")
    first = spec.first_of_kind()
    for i, s in enumerate(spec.specs):
        if first[i] != i:
            continue
        cls = (qx.ExpectColumnValuesToBeValidResidentId
               if s.expectation == "ExpectColumnValuesToBeValidResidentId"
               else getattr(gx.expectations, s.expectation))
        kwargs = dict(s.kwargs)
        if s.row_condition_not_null:
            kwargs["row_condition"] = Column(s.row_condition_not_null).is_not_null()
        suite.add_expectation(cls(**kwargs, meta={"spec": i, "severity": s.severity,
                                                  "rule": s.rule}))
    return suite
