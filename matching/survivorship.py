"""Golden records: survivorship declared per field, with field-level lineage.

Each golden field names the ``std.record`` column it takes, the source kinds in priority order
(best first; kinds not listed rank after the listed ones), a validity rule (an SQL predicate on
the std record: invalid values are used only when no valid value exists) and whether the most
recent record wins among equals. Ties end on (source, source_key) so the choice is
deterministic. For every field the golden record also says which source record gave the value
(``<field>_source``, ``<field>_source_key``).
"""

from __future__ import annotations

from dataclasses import dataclass

REGISTRY_FIRST = ("household_registry", "birth_certificate", "death_certificate", "cremation",
                  "pension_payments", "subsistence_allowance", "wanted_list", "grid_collection")
"""Default priority: the household registry is the legal identity record."""

DEATH_FIRST = ("death_certificate", "cremation", "household_registry")
"""Death facts: the medical certificate, then cremation, then a cancelled registration."""

CONTACT_FIRST = ("grid_collection", "pension_payments", "cremation", "household_registry")
"""Phones: grid workers collect current contact data."""

RESIDENCE_FIRST = ("grid_collection", "household_registry", "pension_payments",
                   "subsistence_allowance", "birth_certificate", "death_certificate",
                   "cremation", "wanted_list")
"""Where the person lives now: the grid worker saw it."""


@dataclass(frozen=True)
class FieldRule:
    """How one golden field is chosen among a person's records."""

    field: str
    """Golden record column."""
    column: str
    """``std.record`` column (or SQL expression over it) giving the value."""
    priority: tuple[str, ...] = REGISTRY_FIRST
    """Source kinds, best first."""
    valid: str = "TRUE"
    """SQL predicate: a valid value beats any invalid one."""
    recency: bool = True
    """Among equal validity and priority, the newest record (``record_time``) wins."""


SURVIVORSHIP: tuple[FieldRule, ...] = (
    FieldRule("id_number", "id18", valid="id_status = 'valid'"),
    FieldRule("name", "name", valid="NOT coalesce(name_unknown, FALSE)"),
    FieldRule("sex", "sex", valid="id18 IS NULL OR id_sex IS NULL OR sex = id_sex"),
    FieldRule("birth_date", "birth_date",
              valid="id_birth_date IS NULL OR birth_date = id_birth_date"),
    FieldRule("ethnicity", "ethnicity"),
    FieldRule("registered_address", "address", priority=("household_registry",)),
    FieldRule("address", "address", priority=RESIDENCE_FIRST),
    FieldRule("house_key", "house_key", priority=RESIDENCE_FIRST),
    FieldRule("phone", "phone", priority=CONTACT_FIRST, valid="length(phone) = 11"),
    FieldRule("household_no", "household_no", priority=("household_registry",),
              valid="coalesce(registry_status, '正常') = '正常'"),
    FieldRule("death_date", "death_date", priority=DEATH_FIRST),
)
"""The declared survivorship (docs/matching.md shows it as a table)."""


def _priority_sql(priority: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(priority))
    return f"CASE kind {whens} ELSE {len(priority)} END"


def golden_sql(records: str, links: str, rules: tuple[FieldRule, ...] = SURVIVORSHIP) -> str:
    """SQL selecting one golden row per person from std records joined to their person ids.

    ``records``: a table with the std.record columns; ``links``: a table with
    ``source, source_key, person_id``.
    """
    parts = []
    for r in rules:
        valid = "" if r.valid.strip().upper() == "TRUE" else f"({r.valid}) DESC NULLS LAST, "
        order = (f"{valid}{_priority_sql(r.priority)}"
                 + (", record_time DESC NULLS LAST" if r.recency else "")
                 + ", source, source_key")
        flt = f"FILTER (WHERE ({r.column}) IS NOT NULL)"
        parts.append(f"first(({r.column}) ORDER BY {order}) {flt} AS {r.field}")
        parts.append(f"first(source ORDER BY {order}) {flt} AS {r.field}_source")
        parts.append(f"first(source_key ORDER BY {order}) {flt} AS {r.field}_source_key")
    cols = ",\n       ".join(parts)
    return f"""
SELECT l.person_id,
       count(*) AS n_records,
       list(DISTINCT r.source ORDER BY r.source) AS sources,
       {cols}
FROM {records} r JOIN {links} l USING (source, source_key)
GROUP BY l.person_id
"""
