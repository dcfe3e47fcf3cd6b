"""The master and audit schemas, declared once.

Every table and column of the published master database is declared here as data
(:class:`TableSpec` / :class:`Col`) with its type, meaning, a synthetic example and the stage that
fills it. From that one declaration come:

- the DuckDB DDL (:func:`duckdb_ddl`), used by the publish builder;
- SQLAlchemy Core ``Table`` objects (:func:`sa_metadata`), used for PostgreSQL and to check that
  the Alembic migrations (``warehouse/migrations``) build exactly this shape;
- ``docs/data-dictionary.md`` (:func:`data_dictionary_markdown`; a test keeps the committed file
  equal to the generated one, so no column goes undocumented).

Run ``python -m warehouse.schema > docs/data-dictionary.md`` after changing a declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LogicalType = Literal["text", "int", "bigint", "double", "money", "date", "timestamptz", "bool",
                      "text_list", "json"]

DUCKDB_TYPES: dict[str, str] = {
    "text": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE",
    "money": "DECIMAL(18,2)", "date": "DATE", "timestamptz": "TIMESTAMPTZ", "bool": "BOOLEAN",
    "text_list": "VARCHAR[]", "json": "JSON",
}
"""Logical type -> DuckDB type."""

PG_TYPES: dict[str, str] = {
    "text": "text", "int": "integer", "bigint": "bigint", "double": "double precision",
    "money": "numeric(18,2)", "date": "date", "timestamptz": "timestamp with time zone",
    "bool": "boolean", "text_list": "text[]", "json": "jsonb",
}
"""Logical type -> PostgreSQL type (as the data dictionary shows it)."""


@dataclass(frozen=True)
class Col:
    """One column: name, logical type, meaning, a synthetic example, who fills it."""

    name: str
    type: LogicalType
    doc: str
    example: str = ""
    nullable: bool = True
    filled_by: str | None = None
    """Stage / component that fills the column (defaults to the table's)."""


@dataclass(frozen=True)
class TableSpec:
    """One table of the master database."""

    schema: str
    name: str
    doc: str
    filled_by: str
    columns: tuple[Col, ...]
    primary_key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"

    def column_names(self) -> tuple[str, ...]:
        """The column names in declared order."""
        return tuple(c.name for c in self.columns)


PUBLISH = "publish (warehouse/master_build.py)"
MATCH = "match (matching engineer: link.person via survivorship)"
SERVICE = "publish, for the query service (warehouse/service_tables.py)"

GOLDEN_FIELDS: tuple[tuple[str, LogicalType, str, str], ...] = (
    ("id_number", "text", "18-digit resident ID number (sensitive personal information: mask on "
     "display, first 6 + last 4)", "420502199001011234"),
    ("name", "text", "standardised name (simplified characters, standard middle dot)", "张伟"),
    ("sex", "text", "男 / 女", "男"),
    ("birth_date", "date", "date of birth", "1990-01-01"),
    ("ethnicity", "text", "ethnicity name (GB 3304)", "汉族"),
    ("registered_address", "text", "registered (户籍) address, from the household registry",
     "西陵区桃花苑小区3号楼2单元501室"),
    ("address", "text", "where the person lives now (grid collection first)",
     "西陵区桃花苑小区3号楼2单元501室"),
    ("house_key", "text", "house key of ``address`` (joins master.house.house_key)",
     "西陵区|桃花苑|3|2|501"),
    ("phone", "text", "mobile phone (11 digits)", "13800001234"),
    ("household_no", "text", "household number (户号) of the active registration", "420500123"),
    ("death_date", "date", "date of death (death certificate, then cremation, then a cancelled "
     "registration); NULL if no death evidence", "2024-03-05"),
)
"""Golden fields of master.person in order: name, type, meaning, example.

Each also has ``<field>_source`` and ``<field>_source_key``: the source record that gave the
value (field-level lineage)."""


def _golden_columns() -> tuple[Col, ...]:
    cols: list[Col] = []
    for name, typ, doc, ex in GOLDEN_FIELDS:
        cols.append(Col(name, typ, doc, ex, filled_by=MATCH))
        cols.append(Col(f"{name}_source", "text", f"source (contract name) that gave ``{name}``",
                        "ps_household_registry", filled_by=MATCH))
        cols.append(Col(f"{name}_source_key", "text",
                        f"key of the source record that gave ``{name}``", "HJ0000012345",
                        filled_by=MATCH))
    return tuple(cols)


RUN_ID = Col("run_id", "text", "run that published this row (business date YYYYMMDD)",
             "20261120", nullable=False, filled_by=PUBLISH)

MASTER_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "master", "person",
        "One golden record per person, with a stable opaque id and field-level lineage.",
        MATCH,
        (
            Col("person_id", "text", "stable opaque master id (``P`` + 12 hex digits); kept "
                "across runs, never derived from personal data", "P00000000002A",
                nullable=False),
            Col("n_records", "int", "number of source records linked to the person", "3"),
            Col("sources", "text_list", "sources (contract names) with a record of the person",
                "[ps_household_registry, grid_collection]"),
            *_golden_columns(),
            Col("is_deceased", "bool", "TRUE when ``death_date`` is known", "false",
                filled_by=PUBLISH),
            Col("house_id", "text", "master.house of ``house_key`` (current residence)",
                "H3F2A9C0D11B27E45", filled_by=PUBLISH),
            RUN_ID,
        ),
        ("person_id",),
    ),
    TableSpec(
        "master", "person_link",
        "Which person each source record belongs to. Every staged source record appears here "
        "exactly once (checked before publish).",
        "match (matching engineer: link.person_link)",
        (
            Col("source", "text", "source (contract name)", "ps_household_registry",
                nullable=False),
            Col("source_key", "text", "the record's key in its source (key columns joined "
                "with ``|``)", "HJ0000012345", nullable=False),
            Col("person_id", "text", "master.person it belongs to", "P00000000002A",
                nullable=False),
            Col("kind", "text", "source kind (household_registry, pension_payments, ...)",
                "household_registry", filled_by=PUBLISH),
            Col("department", "text", "department owning the source", "public_security",
                filled_by=PUBLISH),
            Col("method", "text", "how the link was made (e.g. model, exact_id, decision, "
                "singleton)", "model"),
            Col("score", "double", "link confidence 0..1 (NULL when not scored)", "0.997"),
            RUN_ID,
        ),
        ("source", "source_key"),
    ),
    TableSpec(
        "master", "person_event",
        "Identity events between runs: merges, splits, new and retired ids. History is kept "
        "across publishes.",
        "match (matching engineer: link.person_event)",
        (
            Col("event_id", "text", "event id (unique)", "20261120-000017", nullable=False),
            Col("run_id", "text", "run in which the event happened", "20261120",
                nullable=False),
            Col("event", "text", "merge, split, create or retire", "merge", nullable=False),
            Col("person_id", "text", "the surviving / kept / new / retired id", "P00000000002A"),
            Col("other_person_id", "text", "merge: the absorbed id; split: the other id",
                "P00000000003F"),
            Col("detail", "json", "event details (record counts, sources; no personal data)",
                '{"records_moved": 2}'),
            Col("at", "timestamptz", "when the event was recorded", "2026-11-20 02:14:09+08"),
        ),
        ("event_id",),
    ),
    TableSpec(
        "master", "house",
        "One row per distinct house (house key) seen in any source, with its standard address "
        "and grid.",
        PUBLISH,
        (
            Col("house_id", "text", "house id: ``H`` + 16 hex digits of md5(house_key); stable "
                "while the house key is", "H3F2A9C0D11B27E45", nullable=False),
            Col("house_key", "text", "district|compound|building|unit|room key that different "
                "address styles meet on", "西陵区|桃花苑|3|2|501", nullable=False),
            Col("standard_address", "text", "district, street, community, compound, building "
                "(号楼), unit (单元), room (室) in standard order; missing parts left out",
                "西陵区学院街道桃花社区桃花苑3号楼2单元501室"),
            Col("district", "text", "district (区/县): std.record's, else the name full-style "
                "addresses give for the district code, else the grid's", "西陵区"),
            Col("district_code", "text", "6-digit division code of the district", "420502"),
            Col("street", "text", "street / town (街道/镇): most frequent among the house's "
                "records (std.record, else parsed from full-style addresses), else the grid's",
                "学院街道"),
            Col("community", "text", "community / village (社区/村), as ``street``", "桃花社区"),
            Col("compound", "text", "residential compound (小区)", "桃花苑"),
            Col("building", "text", "building number (栋/幢/号楼)", "3"),
            Col("unit", "text", "unit (单元)", "2"),
            Col("room", "text", "room (室/号)", "501"),
            Col("grid_code", "text", "grid the house lies in (most frequent grid of its grid "
                "collection records; NULL if no grid worker has recorded it)", "420502001001003"),
            Col("n_registered", "int", "persons whose current registered residence it is", "3"),
            Col("n_actual", "int", "persons whose current actual residence it is", "2"),
            Col("n_records", "int", "source records whose address is this house", "7"),
            RUN_ID,
        ),
        ("house_id",),
    ),
    TableSpec(
        "master", "person_house",
        "Residence of a person at a house, one row per registry record (registered residence) "
        "or grid collection record (actual residence), with dates and source.",
        PUBLISH,
        (
            Col("person_id", "text", "master.person", "P00000000002A", nullable=False),
            Col("house_id", "text", "master.house", "H3F2A9C0D11B27E45", nullable=False),
            Col("relation", "text", "``registered`` (户籍, household registry) or ``actual`` "
                "(实住, grid collection)", "registered", nullable=False),
            Col("source", "text", "source of the record", "ps_household_registry",
                nullable=False),
            Col("source_key", "text", "key of the record", "HJ0000012345", nullable=False),
            Col("valid_from", "date", "registered: registration date; actual: collection date",
                "2015-06-01"),
            Col("valid_to", "date", "registered: cancellation date if cancelled; actual: NULL",
                "2024-03-10"),
            Col("is_current", "bool", "registered: an active registration; actual: the person's "
                "latest collection", "true"),
            Col("registry_status", "text", "registered: 正常 / 注销", "正常"),
            Col("resident_type", "text", "actual: 户籍人口 / 流动人口", "流动人口"),
            RUN_ID,
        ),
        ("source", "source_key"),
    ),
    TableSpec(
        "master", "household",
        "Household membership from the household registry: one row per registry record.",
        PUBLISH,
        (
            Col("household_no", "text", "household number (户号)", "420500123", nullable=False),
            Col("person_id", "text", "master.person of the member", "P00000000002A",
                nullable=False),
            Col("source", "text", "source of the record", "ps_household_registry",
                nullable=False),
            Col("source_key", "text", "key of the registry record", "HJ0000012345",
                nullable=False),
            Col("relation_to_head", "text", "与户主关系: 户主, 配偶, 子, 女, 父亲, 母亲, ...",
                "配偶"),
            Col("is_head", "bool", "relation_to_head is 户主", "false"),
            Col("registry_status", "text", "正常 / 注销", "正常"),
            Col("is_active", "bool", "registration not cancelled", "true"),
            Col("registered_at", "date", "registration date", "2015-06-01"),
            Col("cancel_date", "date", "cancellation date", "2024-03-10"),
            Col("cancel_reason", "text", "死亡 / 迁出", "死亡"),
            Col("house_id", "text", "master.house of the registered address", "H3F2A9C0D11B27E45"),
            Col("head_person_id", "text", "person of the household's active head (NULL if none)",
                "P00000000001B"),
            Col("n_members", "int", "active members of the household", "4"),
            RUN_ID,
        ),
        ("source", "source_key"),
    ),
    TableSpec(
        "master", "grid",
        "Grid hierarchy: one row per grid with its community, street and district.",
        PUBLISH,
        (
            Col("grid_code", "text", "grid code as grid workers record it", "420502001001003",
                nullable=False),
            Col("community", "text", "community (社区/村) of the grid: most frequent among its "
                "collection records and the houses in it", "桃花社区"),
            Col("street", "text", "street / town (街道/镇)", "学院街道"),
            Col("district", "text", "district (区/县)", "西陵区"),
            Col("district_code", "text", "6-digit division code", "420502"),
            Col("n_houses", "int", "master.house rows in the grid", "120"),
            Col("n_residents", "int", "persons whose current actual residence is in the grid",
                "310"),
            Col("n_records", "int", "grid collection records with this grid code", "330"),
            Col("first_collected_at", "timestamptz", "earliest collection",
                "2025-01-03 09:30:00+08"),
            Col("last_collected_at", "timestamptz", "latest collection", "2026-11-19 16:05:00+08"),
            RUN_ID,
        ),
        ("grid_code",),
    ),
    TableSpec(
        "master", "source_record",
        "Every linked source record's own fields (pension months, death dates, ...), so the "
        "query service shows a person's records by department without opening the work "
        "database.",
        SERVICE,
        (
            Col("source", "text", "source (contract name)", "hrss_pension_ledger",
                nullable=False),
            Col("source_key", "text", "the record's key in its source", "420500000123",
                nullable=False),
            Col("person_id", "text", "master.person it is linked to", "P00000000002A",
                nullable=False),
            Col("kind", "text", "source kind", "pension_payments"),
            Col("department", "text", "department owning the source", "hrss"),
            Col("fields", "json", "the record's canonical staged fields (latest row up to the "
                "run), lineage columns left out", '{"pension_last_paid_month": "2026-10"}'),
            RUN_ID,
        ),
        ("source", "source_key"),
    ),
    TableSpec(
        "master", "person_name",
        "Name search index: every linked record's standardised name with its pinyin and "
        "dialect-folded pinyin (so the service finds 刘娜 when asked for 刘拉 or liu na).",
        SERVICE,
        (
            Col("source", "text", "source (contract name)", "ps_household_registry",
                nullable=False),
            Col("source_key", "text", "the record's key in its source", "HJ0000012345",
                nullable=False),
            Col("person_id", "text", "master.person the record is linked to", "P00000000002A",
                nullable=False),
            Col("name", "text", "standardised name of the record", "刘娜"),
            Col("name_py", "text", "surname-aware pinyin, syllables separated by a space",
                "liu na"),
            Col("name_pyf", "text", "dialect-folded pinyin (zh->z, n->l, ...)", "liu la"),
            Col("birth_date", "date", "the record's own birth date (else its ID number's)",
                "1990-01-01"),
            RUN_ID,
        ),
        ("source", "source_key"),
    ),
    TableSpec(
        "master", "review_queue",
        "Record pairs the matcher is unsure of or finds conflicting, for department stewards "
        "(the service hides pairs decided since the run; the next run respects the decisions).",
        SERVICE + " (from the work database's link.review_queue)",
        (
            Col("queue_no", "bigint", "position in the run's queue", "17", nullable=False),
            Col("reason", "text", "review_band, one_id_two_people, one_person_two_ids or "
                "contradicting_decisions", "review_band", nullable=False),
            Col("left_source", "text", "source of the first record", "ps_household_registry",
                nullable=False),
            Col("left_key", "text", "key of the first record", "HJ0000012345", nullable=False),
            Col("left_person_id", "text", "person the first record is linked to now",
                "P00000000002A"),
            Col("left_department", "text", "department of the first record", "public_security"),
            Col("right_source", "text", "source of the second record", "grid_collection",
                nullable=False),
            Col("right_key", "text", "key of the second record", "CJ000987", nullable=False),
            Col("right_person_id", "text", "person the second record is linked to now",
                "P00000000003F"),
            Col("right_department", "text", "department of the second record", "grid_office"),
            Col("match_weight", "double", "total match weight (log2 Bayes factor)", "3.1"),
            Col("match_probability", "double", "match probability", "0.89"),
            Col("linked_now", "bool", "the two records are in the same person in this run",
                "false"),
            Col("decided", "text", "decision applied in this run (unsure, or NULL)", "unsure"),
            Col("explanation", "json", "per-comparison match weights that decided the pair",
                '{"mw_name": 6.2, "mw_birth_date": -3.1}'),
            RUN_ID,
        ),
        ("queue_no",),
    ),
    TableSpec(
        "master", "person_doc",
        "Each person's whole picture (golden record, records by department, households and "
        "members, houses, findings as published, merges and splits) as one JSON document, so "
        "``GET /persons/{id_number}`` is one point query. Stored once per person: under its ID "
        "number for the first person (by person id) carrying it, else under its person id.",
        "publish, for the query service (warehouse/person_doc.py)",
        (
            Col("id_key", "text", "lookup key: the ID number, or the person id when the person "
                "has no ID number or is not the first person carrying it",
                "420502199001011234", nullable=False),
            Col("person_id", "text", "the person the document describes", "P00000000002A",
                nullable=False),
            Col("other_person_ids", "text_list", "keyed by an ID number: the other persons "
                "carrying the same number (usually empty)", "[]"),
            Col("doc", "json", "the person picture as the service returns it before masking "
                "(dates ISO, timestamps ISO 8601 UTC)", '{"person_id": "P00000000002A", ...}',
                nullable=False),
            RUN_ID,
        ),
        ("id_key",),
    ),
)
"""Schema ``master``."""

AUDIT_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "audit", "run",
        "One row per publish attempt (published or failed); history kept across publishes.",
        PUBLISH + " (warehouse/publish.py)",
        (
            Col("run_id", "text", "run id (business date YYYYMMDD)", "20261120", nullable=False),
            Col("started_at", "timestamptz", "publish start", "2026-11-20 02:10:00+08",
                nullable=False),
            Col("finished_at", "timestamptz", "publish end", "2026-11-20 02:10:41+08"),
            Col("status", "text", "``published`` or ``failed`` (a failed run did not replace the "
                "master)", "published", nullable=False),
            Col("forced", "bool", "row-count bounds were waived (``--force``)", "false"),
            Col("seconds", "double", "publish duration", "41.2"),
            Col("persons", "bigint", "rows in master.person", "20000"),
            Col("person_links", "bigint", "rows in master.person_link", "61234"),
            Col("houses", "bigint", "rows in master.house", "9100"),
            Col("counts", "json", "row count of every master table", '{"person": 20000}'),
            Col("checks", "json", "every audit check with ok flag and detail",
                '[{"check": "links_unique", "ok": true, "detail": ""}]'),
            Col("failed_checks", "text_list", "names of failed checks (empty when published)",
                "[row_counts_within_bounds]"),
            Col("previous_run_id", "text", "run of the master this one replaced / was compared "
                "with", "20261119"),
            Col("message", "text", "summary or error message (no personal data)",
                "published 20000 persons"),
        ),
        ("run_id", "started_at"),
    ),
    TableSpec(
        "audit", "finding",
        "Cross-department discrepancies (pension paid after death, wanted person seen, ...). "
        "Carried forward by every publish so auditors' statuses survive.",
        "check (cross-department rules, later engineer); status columns by auditors",
        (
            Col("finding_id", "text", "stable id per rule + subject: F + 16 hex of sha256(rule, subject) (same finding, same id "
                "every run)", "F3A9C0D17E52B4F60", nullable=False),
            Col("rule", "text", "rule name (deceased_pensioner, wanted_person_seen, "
                "deceased_subsidy, duplicate_registration, death_not_cancelled, "
                "birth_not_registered, id_conflict)", "deceased_pensioner", nullable=False),
            Col("person_id", "text", "master.person concerned (NULL if none)", "P00000000002A"),
            Col("subject_key", "text", "what the finding is about besides the person "
                "(source:key, household number, ...)", "hrss_pension_ledger:420500000123"),
            Col("evidence", "json", "evidence: source records, dates, values",
                '{"death_date": "2024-03-05", "last_paid": "2026-10"}'),
            Col("amount_monthly", "money", "monthly amount concerned, yuan", "2350.00"),
            Col("amount_total", "money", "total amount concerned (e.g. overpaid), yuan",
                "49350.00"),
            Col("months", "int", "months concerned (e.g. paid after death)", "21"),
            Col("status", "text", "open, confirmed or dismissed", "open", nullable=False,
                filled_by="check (new findings: open); auditors"),
            Col("dismissed_reason", "text", "why an auditor dismissed it", "已核实为同名",
                filled_by="auditors"),
            Col("status_by", "text", "user who last set the status", "auditor01",
                filled_by="auditors"),
            Col("status_at", "timestamptz", "when the status was last set",
                "2026-11-20 10:00:00+08", filled_by="auditors"),
            Col("first_seen_run", "text", "first run that found it", "20261101"),
            Col("last_seen_run", "text", "latest run that still found it", "20261120"),
            Col("evidence_hash", "text", "hash of the evidence, to tell when it changed",
                "9f86d081884c7d65"),
        ),
        ("finding_id",),
    ),
    TableSpec(
        "audit", "decision",
        "Snapshot of the human review decisions (append-only; the original lives in "
        "``settings.decisions_db``), copied at publish.",
        "review CLI (matching engineer: matching/decisions.py); copied by publish",
        (
            Col("decision_id", "bigint", "decision number", "42", nullable=False),
            Col("left_source", "text", "source of the first record", "ps_household_registry",
                nullable=False),
            Col("left_key", "text", "key of the first record", "HJ0000012345", nullable=False),
            Col("right_source", "text", "source of the second record", "grid_collection",
                nullable=False),
            Col("right_key", "text", "key of the second record", "CJ000987", nullable=False),
            Col("verdict", "text", "same, different, unsure, or undo", "same", nullable=False),
            Col("user", "text", "reviewer", "steward07", nullable=False),
            Col("reason", "text", "reviewer's reason", "同一人，地址一致"),
            Col("decided_at", "timestamptz", "when decided", "2026-11-19 15:20:00+08",
                nullable=False),
            Col("supersedes", "bigint", "undo: the decision it cancels", "41"),
        ),
        ("decision_id",),
    ),
    TableSpec(
        "audit", "source_status",
        "Freshness of every source as of this run: which sources are stale and since when "
        "(an optional source that failed to extract does not stop the run; its last good data "
        "stays in use).",
        PUBLISH + " (from the work database's meta.source_run)",
        (
            Col("source", "text", "source (contract name)", "ca_cremation", nullable=False),
            Col("run_id", "text", "run this status describes", "20261120", nullable=False),
            Col("status", "text", "this run's extract status: ok or failed", "failed",
                nullable=False),
            Col("rows_read", "bigint", "rows read from the source in this run", "402"),
            Col("error", "text", "extract error of this run (no personal data)",
                "ca_cremation.xlsx: not an XLSX file"),
            Col("last_ok_run", "text", "latest run whose extract succeeded (NULL: never)",
                "20261119"),
            Col("last_ok_at", "timestamptz", "when that extract finished",
                "2026-11-19 02:03:10+08"),
            Col("stale", "bool", "true when this run's extract failed (data is from last_ok_run)",
                "true"),
            Col("stale_since_run", "text", "first failed run after the last good one",
                "20261120"),
        ),
        ("source",),
    ),
    TableSpec(
        "audit", "access_log",
        "Who looked at which person's data and why (PIPL); carried forward by every publish.",
        "API / web service (later); carried forward by publish",
        (
            Col("access_id", "bigint", "access number", "1001", nullable=False),
            Col("at", "timestamptz", "when", "2026-11-20 09:12:00+08", nullable=False),
            Col("user", "text", "who", "auditor01", nullable=False),
            Col("role", "text", "role of the user", "auditor"),
            Col("action", "text", "what was done (view_person, unmask_id, export, ...)",
                "view_person"),
            Col("person_id", "text", "person concerned", "P00000000002A"),
            Col("purpose", "text", "stated purpose", "养老金核查"),
        ),
        ("access_id",),
    ),
)
"""Schema ``audit``."""

ALL_TABLES: tuple[TableSpec, ...] = MASTER_TABLES + AUDIT_TABLES
CARRIED_FORWARD: tuple[str, ...] = ("audit.run", "audit.finding", "audit.access_log")
"""Tables copied from the previous master into the new one at every publish."""


def table(qualified: str) -> TableSpec:
    """The declared table ``schema.name``."""
    for t in ALL_TABLES:
        if t.qualified == qualified:
            return t
    raise KeyError(qualified)


def quote(name: str) -> str:
    """Quote an identifier (``user`` is reserved)."""
    return '"' + name.replace('"', '""') + '"'


def duckdb_table_ddl(t: TableSpec) -> str:
    """``CREATE TABLE`` for one table in DuckDB."""
    cols = [f"    {quote(c.name)} {DUCKDB_TYPES[c.type]}{'' if c.nullable else ' NOT NULL'}"
            for c in t.columns]
    cols.append(f"    PRIMARY KEY ({', '.join(quote(k) for k in t.primary_key)})")
    return f"CREATE TABLE {t.schema}.{t.name} (\n" + ",\n".join(cols) + "\n);"


def duckdb_ddl(tables: tuple[TableSpec, ...] = ALL_TABLES, primary_keys: bool = True) -> str:
    """DDL creating the schemas and tables in DuckDB.

    ``primary_keys=False`` leaves the keys out: the builder loads first and checks uniqueness
    itself (so a duplicate becomes a named failed check, not an insert error).
    """
    parts = [f"CREATE SCHEMA IF NOT EXISTS {s};" for s in dict.fromkeys(t.schema for t in tables)]
    for t in tables:
        ddl = duckdb_table_ddl(t)
        if not primary_keys:
            ddl = ddl.replace(",\n    PRIMARY KEY (" + ", ".join(quote(k) for k in t.primary_key)
                              + ")", "")
        parts.append(ddl)
    return "\n".join(parts)


def sa_metadata(schema_names: dict[str, str] | None = None):  # -> sqlalchemy.MetaData
    """SQLAlchemy Core tables for every declared table (PostgreSQL types).

    ``schema_names`` maps a logical schema (``master``, ``audit``) to the physical one (e.g.
    ``master_20261120``); default: same name.
    """
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql as pg

    sa_types = {
        "text": sa.Text, "int": sa.Integer, "bigint": sa.BigInteger, "double": sa.Float(53),
        "money": sa.Numeric(18, 2), "date": sa.Date, "timestamptz": sa.DateTime(timezone=True),
        "bool": sa.Boolean, "text_list": pg.ARRAY(sa.Text), "json": pg.JSONB,
    }
    names = schema_names or {}
    md = sa.MetaData()
    for t in ALL_TABLES:
        sa.Table(
            t.name, md,
            *[sa.Column(c.name, sa_types[c.type], nullable=c.nullable, comment=c.doc)
              for c in t.columns],
            sa.PrimaryKeyConstraint(*t.primary_key, name=f"pk_{t.schema}_{t.name}"),
            schema=names.get(t.schema, t.schema), comment=t.doc,
        )
    return md


def data_dictionary_markdown() -> str:
    """``docs/data-dictionary.md``, generated from the declarations."""
    out = [
        "# Data dictionary: the published master database",
        "",
        "Generated from `warehouse/schema.py` (`python -m warehouse.schema > "
        "docs/data-dictionary.md`); a test keeps this file equal to the declarations.",
        "",
        "The master is the DuckDB file `settings.master_db` (default `var/unigrid.duckdb`), "
        "replaced atomically by each publish (write, audit, swap): open it read-only and briefly "
        "(`warehouse.queries.open_master`). When `UNIGRID_PG_URL` is set, the same tables are "
        "published to PostgreSQL in the schemas `master` and `audit`, swapped in one transaction "
        "(PostgreSQL also has `audit.alembic_version`, the migration version of those tables).",
        "",
        "Opening the DuckDB file yourself: `duckdb.connect('var/unigrid.duckdb', read_only=True)` "
        "then `SELECT * FROM master.person`. Do not name the file `master.duckdb`: DuckDB names "
        "the catalog after the file, and a catalog `master` makes `master.person` ambiguous. "
        "Keep connections short: a publish replaces the file, and an open connection keeps "
        "reading the master it opened.",
        "",
        "Conventions: `person_id` is an opaque, stable id (never derived from personal data; "
        "follow `master.person_event` for merges and splits). `source` is a contract name and "
        "`source_key` the record's key in that source. Types are DuckDB / PostgreSQL. Examples "
        "are synthetic. ID numbers, names, phones and addresses are personal information "
        "(PIPL): mask on display (ID: first 6 + last 4), log every access in `audit.access_log`.",
        "",
        "## Tables",
        "",
    ]
    for t in ALL_TABLES:
        out.append(f"- [`{t.qualified}`](#{t.schema}{t.name}): {t.doc}")
    for t in ALL_TABLES:
        out += ["", f"## {t.qualified}", "", t.doc, "",
                f"Filled by: {t.filled_by}. Primary key: `({', '.join(t.primary_key)})`.", "",
                "| column | type (DuckDB / PostgreSQL) | null | meaning | example | filled by |",
                "|---|---|---|---|---|---|"]
        for c in t.columns:
            typ = f"{DUCKDB_TYPES[c.type]} / {PG_TYPES[c.type]}"
            ex = f"`{c.example}`" if c.example else ""
            doc = c.doc.replace("|", "\\|")
            out.append(f"| `{c.name}` | {typ} | {'yes' if c.nullable else 'no'} | {doc} | "
                       f"{ex.replace('|', chr(92) + '|')} | {c.filled_by or t.filled_by} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(data_dictionary_markdown(), end="")
