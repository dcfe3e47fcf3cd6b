"""Masking personal values for display (PIPL): ID first 6 + last 4, phone 3 + last 4, name 张*明.

Used wherever a value could appear on screen or in a message (``unigrid sources check``, error
messages). Pure functions on one value, plus :func:`mask_for_field` picking the rule by field.
"""

from __future__ import annotations

ID_FIELDS = frozenset({"id_number", "mother_id_number", "father_id_number"})
NAME_FIELDS = frozenset({"name", "mother_name", "father_name", "next_of_kin_name"})
PHONE_FIELDS = frozenset({"phone", "next_of_kin_phone"})


def mask_id(value: str | None) -> str | None:
    """``420502199001011234`` -> ``420502********1234``; short values are fully starred."""
    if value is None:
        return None
    v = str(value)
    if len(v) <= 10:
        return "*" * len(v)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


def mask_phone(value: str | None) -> str | None:
    """``13812341234`` -> ``138****1234``."""
    if value is None:
        return None
    v = str(value)
    if len(v) <= 7:
        return "*" * len(v)
    return v[:3] + "*" * (len(v) - 7) + v[-4:]


def mask_name(value: str | None) -> str | None:
    """``张三丰`` -> ``张*丰``, ``张三`` -> ``张*``, ``买买提·艾力`` -> ``买****力``."""
    if value is None:
        return None
    v = str(value)
    if len(v) <= 1:
        return v
    if len(v) == 2:
        return v[0] + "*"
    return v[0] + "*" * (len(v) - 2) + v[-1]


def mask_for_field(field: str, value: str | None) -> str | None:
    """Mask ``value`` if ``field`` holds an ID number, a name or a phone; else return it."""
    if field in ID_FIELDS:
        return mask_id(value)
    if field in NAME_FIELDS:
        return mask_name(value)
    if field in PHONE_FIELDS:
        return mask_phone(value)
    return value
