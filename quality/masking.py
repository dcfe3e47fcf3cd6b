"""Masking of personal values shown in quarantine reasons and the validation report.

ID numbers keep the first 6 and last 4 characters (``420502********1234``, DOMAIN.md); names
keep the first and last character (``张*明``); phone numbers keep the first 3 and last 4
(``138****1234``). Other values are shown as they are (dates, amounts, codes).
"""

from __future__ import annotations

import pandas as pd

NAME_FIELDS_SUFFIX = "name"
PHONE_FIELDS_SUFFIX = "phone"


def mask_id(s: pd.Series) -> pd.Series:
    """ID numbers: first 6 + last 4 kept; values of 10 characters or fewer fully masked."""
    from matching.standardise.ids import mask_id as _mask_id
    return _mask_id(s).astype("object").where(s.notna(), None)


def mask_name(s: pd.Series) -> pd.Series:
    """Names: first and last character kept (``张*明``, ``李*``)."""
    t = s.astype("string")
    n = t.str.len()
    long = t.str.slice(0, 1) + t.str.slice(1, -1).str.replace(r".", "*", regex=True) \
        + t.str.slice(-1)
    short = t.str.slice(0, 1) + "*"
    out = long.where(n > 2, short.where(n == 2, "*"))
    return out.astype("object").where(s.notna(), None)


def mask_phone(s: pd.Series) -> pd.Series:
    """Phone numbers: first 3 and last 4 kept (``138****1234``); short ones fully masked."""
    from matching.standardise.phones import mask_phone as _mask_phone
    return _mask_phone(s).astype("object").where(s.notna(), None)


def mask_values(s: pd.Series, value_type: str, field: str = "") -> pd.Series:
    """Mask a column of values by its canonical field's type or name (object dtype out)."""
    if value_type == "id":
        return mask_id(s)
    if field.endswith(NAME_FIELDS_SUFFIX):
        return mask_name(s)
    if field.endswith(PHONE_FIELDS_SUFFIX):
        return mask_phone(s)
    return s.astype("object").where(s.notna(), None)
