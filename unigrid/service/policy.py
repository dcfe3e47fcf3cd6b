"""Who may call what and see which fields unmasked: the one place the service decides it.

``ENDPOINT_ROLES`` maps each protected operation to the roles allowed to call it (others get
403). ``UNMASKED`` says, per role, which kinds of personal data it sees in full; everything else
is masked on the way out by :func:`mask_record` (ID ``420502********1234``, name ``张*明``, phone
``138****1234``). docs/service.md shows the same matrix as a table; the tests check it as one.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

# one ID and one phone rule everywhere (the name rule here keeps each part of a minority name)
from connectors.mask import mask_id as mask_id_value
from connectors.mask import mask_phone as mask_phone_value

ROLES: tuple[str, ...] = ("admin", "steward", "auditor", "service")

ENDPOINT_ROLES: dict[str, frozenset[str]] = {
    "person": frozenset({"admin", "auditor", "service", "steward"}),
    "search": frozenset({"admin", "auditor", "service", "steward"}),
    "house": frozenset({"admin", "auditor", "service", "steward"}),
    "stats": frozenset({"admin", "auditor", "service", "steward"}),
    "voter_roll": frozenset({"admin", "service"}),
    "findings": frozenset({"admin", "auditor"}),
    "finding_review": frozenset({"admin", "auditor"}),
    "review_queue": frozenset({"admin", "steward"}),
    "review_decide": frozenset({"admin", "steward"}),
    "access_log": frozenset({"admin"}),
    "me": frozenset(ROLES),
}
"""Operation -> roles allowed. A steward's review operations are further limited to pairs with
a record of their own department."""

UNMASKED: dict[str, frozenset[str]] = {
    "admin": frozenset({"id", "name", "phone"}),
    "auditor": frozenset({"id", "name"}),
    "service": frozenset({"id", "name"}),
    "steward": frozenset(),
}
"""Role -> kinds of personal data it sees in full. A steward sees the two records of a pair it
reviews in full (it cannot judge them masked); every such view is in the access log."""

ID_FIELDS = frozenset({"id_number", "mother_id_number", "father_id_number", "id18", "id_raw"})
NAME_FIELDS = frozenset({"name", "mother_name", "father_name", "matched_name", "name_raw",
                         "head_name"})
PHONE_FIELDS = frozenset({"phone"})
KEY_FIELDS = frozenset({"source_key", "left_key", "right_key", "subject_key"})
"""Record keys: some sources key their records by ID number, so ID-like runs in them are masked
like ID numbers."""

_ID_RUN = re.compile(r"(?<![0-9])([0-9]{6})([0-9]{5,8})([0-9]{3}[0-9Xx]|[0-9]{4})(?![0-9A-Za-z])")


def allowed(role: str, operation: str) -> bool:
    """True if ``role`` may call ``operation``."""
    return role in ENDPOINT_ROLES[operation]


def _mask_name_part(p: str) -> str:
    if len(p) <= 1:
        return p
    if len(p) == 2:
        return p[0] + "*"
    return p[0] + "*" * (len(p) - 2) + p[-1]


def mask_name_value(v: str | None) -> str | None:
    """``张小明`` -> ``张*明``, ``张伟`` -> ``张*``, ``买买提·艾力`` -> ``买*提·艾*``."""
    if v is None:
        return None
    s = str(v)
    if "·" in s:
        return "·".join(_mask_name_part(p) for p in s.split("·")).rstrip("·")
    return _mask_name_part(s)


def mask_key_value(v: str | None) -> str | None:
    """ID-number-like digit runs inside a record key masked (first 6 + last 4 kept)."""
    if v is None:
        return None
    return _ID_RUN.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), str(v))


def field_kind(name: str) -> str | None:
    """``id``, ``name``, ``phone``, ``key`` or None for a field name."""
    if name in ID_FIELDS or name.endswith("_id_number"):
        return "id"
    if name in NAME_FIELDS:
        return "name"
    if name in PHONE_FIELDS or name.endswith("_phone"):
        return "phone"
    if name in KEY_FIELDS or name.endswith("_source_key"):
        return "key"
    return None


_MASKERS = {"id": mask_id_value, "name": mask_name_value, "phone": mask_phone_value,
            "key": mask_key_value}


def mask_value(role: str, name: str, value: Any) -> Any:
    """``value`` of field ``name`` as ``role`` may see it."""
    kind = field_kind(name)
    if kind is None or value is None:
        return value
    seen = UNMASKED.get(role, frozenset())
    if kind == "key":
        return value if "id" in seen else mask_key_value(value)
    return value if kind in seen else _MASKERS[kind](value)


def mask_record(role: str, record: dict[str, Any], full: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``record`` with every personal field masked for ``role`` (nested dicts and
    lists included). ``full`` names data kinds shown in full anyway (a steward's pair view)."""
    extra = frozenset(full)

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if isinstance(v, (dict, list)):
                    out[k] = walk(v)
                elif field_kind(k) in extra or (field_kind(k) == "key" and "id" in extra):
                    out[k] = v
                else:
                    out[k] = mask_value(role, k, v)
            return out
        if isinstance(obj, list):
            return [walk(x) for x in obj]
        return obj

    return walk(record)


OPERATION_ENDPOINTS: dict[str, str] = {
    "person": "`GET /persons/{id_number}`",
    "search": "`GET /persons?name=&birth_date=` (or `birth_year=`)",
    "house": "`GET /houses`, `GET /houses/{house_id}`",
    "stats": "`GET /stats/{level}`",
    "voter_roll": "`GET /voter-roll`",
    "findings": "`GET /findings`, `GET /findings/{id}`, `GET /findings.xlsx`; page `/audit`",
    "finding_review": "`POST /findings/{id}/review`; page form",
    "review_queue": "`GET /review/pairs`, `GET /review/pairs/{n}`; pages `/review`",
    "review_decide": "`POST /review/pairs/{n}/decision`, `GET /review/decisions`, "
                     "`POST /review/decisions/{id}/undo`; page forms",
    "access_log": "`GET /access-log`; page `/admin/access-log`",
    "me": "`GET /me`",
}


def matrix_markdown() -> str:
    """The role x operation matrix and the masking table as Markdown (for docs/service.md)."""
    head = "| operation | endpoints | " + " | ".join(ROLES) + " |"
    lines = [head, "|" + "---|" * (len(ROLES) + 2)]
    for op, roles in ENDPOINT_ROLES.items():
        cells = " | ".join("yes" if r in roles else "403" for r in ROLES)
        lines.append(f"| {op} | {OPERATION_ENDPOINTS[op]} | {cells} |")
    lines += ["", "| data | " + " | ".join(ROLES) + " |", "|" + "---|" * (len(ROLES) + 1)]
    for kind, label in (("id", "ID numbers (incl. ID-like record keys)"), ("name", "names"),
                        ("phone", "phones")):
        cells = " | ".join("full" if kind in UNMASKED[r] else "masked" for r in ROLES)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)
