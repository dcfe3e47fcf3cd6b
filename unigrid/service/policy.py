"""Who may call what and see which fields unmasked: the one place the service decides it.

``ENDPOINT_ROLES`` maps each protected operation to the roles allowed to call it (others get
403). ``UNMASKED`` says, per role, which kinds of personal data it sees in full; everything else
is masked on the way out by :func:`mask_record` (ID ``420502********1234``, name ``张*明``, phone
``138****1234``). docs/service.md shows the same matrix as a table; the tests check it as one.
"""

from __future__ import annotations

from typing import Any, Iterable

# the one masking rule per kind, and the field -> kind table, shared with every other layer
from warehouse.masking import field_kind, mask_scalar

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


def allowed(role: str, operation: str) -> bool:
    """True if ``role`` may call ``operation``."""
    return role in ENDPOINT_ROLES[operation]


def mask_value(role: str, name: str, value: Any) -> Any:
    """``value`` of field ``name`` as ``role`` may see it."""
    kind = field_kind(name)
    if kind is None or value is None:
        return value
    seen = UNMASKED.get(role, frozenset())
    if kind == "key":
        return value if "id" in seen else mask_scalar("key", value)
    return value if kind in seen else mask_scalar(kind, value)


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
                    continue
                kind = field_kind(k)  # cached per field name
                if kind is None or v is None or kind in extra or (kind == "key" and "id" in extra):
                    out[k] = v
                else:
                    out[k] = mask_value(role, k, v)
            return out
        if isinstance(obj, list):
            return [walk(x) for x in obj]
        return obj

    return walk(record)


def masked_kinds(role: str) -> frozenset[str]:
    """The data kinds :func:`mask_record` masks for ``role`` (record keys go with ID numbers)."""
    seen = UNMASKED.get(role, frozenset())
    return frozenset(k for k in ("id", "name", "phone", "key")
                     if k not in seen and not (k == "key" and "id" in seen))


def mask_in_place(role: str, record: Any) -> Any:
    """:func:`mask_record` without the copy: masks ``record`` (a freshly parsed document the
    caller owns) in place and returns it; walks nothing for a role that sees everything.
    Equal to ``mask_record(role, record)`` (tested on every published document and role)."""
    kinds = masked_kinds(role)
    if not kinds:
        return record

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, (dict, list)):
                    walk(v)
                elif v is not None:
                    kind = field_kind(k)  # cached per field name
                    if kind in kinds:
                        obj[k] = mask_scalar(kind, v)  # same keys: safe while iterating
        elif isinstance(obj, list):
            for x in obj:
                if isinstance(x, (dict, list)):
                    walk(x)

    walk(record)
    return record


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
