"""Masking personal data for display (PIPL, DOMAIN.md): the one rule per kind, for every layer.

Kinds and rules (the scalar and the vectorised form of each give the same text):

| kind | rule | example |
|---|---|---|
| ``id`` | first 6 and last 4 kept, the rest ``*``; 10 characters or fewer all ``*`` | ``420502********1234`` |
| ``phone`` | first 3 and last 4 kept, the rest ``*``; 7 characters or fewer all ``*`` | ``138****1234`` |
| ``name`` | per name part (parts split by a middle dot): one character kept, two characters keep the first, longer keep the first and last | ``张*明``, ``李*``, ``买*提·艾*`` |
| ``key`` | record keys: each ID-number-like digit run (15-18 characters) masked as an ``id`` | ``hrss:420502********1234`` |

The middle dots splitting a name are U+00B7 and the variants legacy exports use (``・ • ‧ ⋅ .
．``); each is kept as it is. Spaces do not split (``王 芳`` -> ``王*芳``). Missing values (None,
NA, NaN) stay missing.

The vectorised forms run in Arrow compute (no per-row Python; names with a middle dot, which
are rare, by regular expressions): on 200,000 values IDs take 0.19 s, names 0.33 s, phones
0.09 s. ``mask_key_series`` uses Python regular expressions (record keys are masked one by one
in the service; it exists so that the two forms can be checked against each other).

This module lives in ``warehouse`` because ``warehouse`` is the bottom layer (it imports nothing
of ours) that ``connectors``, ``quality``, ``matching`` and ``unigrid`` may all import.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Kind = str
"""``id``, ``name``, ``phone`` or ``key``."""

KINDS: tuple[str, ...] = ("id", "name", "phone", "key")

ID_FIELDS = frozenset({"id_number", "mother_id_number", "father_id_number", "id18", "id_raw"})
NAME_FIELDS = frozenset({"name", "mother_name", "father_name", "next_of_kin_name",
                         "matched_name", "name_raw", "head_name"})
PHONE_FIELDS = frozenset({"phone", "next_of_kin_phone"})
KEY_FIELDS = frozenset({"source_key", "left_key", "right_key", "subject_key"})
"""Record keys: some sources key their records by ID number, so ID-like runs in them are masked
like ID numbers."""

NAME_SEPARATORS = "\u00b7\u30fb\u2022\u2027\u22c5.\uff0e"
"""Characters splitting the parts of a (minority) name; U+00B7 is the standard one."""

_STRING = pd.StringDtype("python")  # the python engine: the name rule needs look-behind
_SEP = re.escape(NAME_SEPARATORS)
_NAME_PART = re.compile(f"[^{_SEP}]+")
_NAME_TWO = f"(?<![^{_SEP}])([^{_SEP}])[^{_SEP}](?![^{_SEP}])"
_NAME_INNER = f"(?<=[^{_SEP}])[^{_SEP}](?=[^{_SEP}])"
_ID_RUN = re.compile(r"(?<![0-9])([0-9]{6})([0-9]{5,8})([0-9]{3}[0-9Xx]|[0-9]{4})(?![0-9A-Za-z])")


def _missing(value: Any) -> bool:
    """True for None, pandas NA and float NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _keep_ends(v: str, head: int, tail: int) -> str:
    """``v`` with all but the first ``head`` and last ``tail`` characters starred; all starred
    when it is not longer than ``head + tail``."""
    if len(v) <= head + tail:
        return "*" * len(v)
    return v[:head] + "*" * (len(v) - head - tail) + v[len(v) - tail:]


def _name_part(p: str) -> str:
    """One name part: ``张三丰`` -> ``张*丰``, ``张三`` -> ``张*``, ``张`` -> ``张``."""
    if len(p) <= 1:
        return p
    if len(p) == 2:
        return p[0] + "*"
    return p[0] + "*" * (len(p) - 2) + p[-1]


def mask_id(value: Any) -> str | None:
    """``420502199001011234`` -> ``420502********1234``; 10 characters or fewer all ``*``."""
    return None if _missing(value) else _keep_ends(str(value), 6, 4)


def mask_phone(value: Any) -> str | None:
    """``13812341234`` -> ``138****1234``; 7 characters or fewer all ``*``."""
    return None if _missing(value) else _keep_ends(str(value), 3, 4)


def mask_name(value: Any) -> str | None:
    """``张三丰`` -> ``张*丰``, ``张三`` -> ``张*``, ``买买提·艾力`` -> ``买*提·艾*``."""
    if _missing(value):
        return None
    return _NAME_PART.sub(lambda m: _name_part(m.group()), str(value))


def mask_key(value: Any) -> str | None:
    """ID-number-like digit runs inside a record key masked (first 6 + last 4 kept)."""
    if _missing(value):
        return None
    return _ID_RUN.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), str(value))


_SCALAR = {"id": mask_id, "name": mask_name, "phone": mask_phone, "key": mask_key}


def mask_scalar(kind: Kind | None, value: Any) -> Any:
    """``value`` masked by the rule of ``kind``; returned as it is when ``kind`` is None."""
    return value if kind is None else _SCALAR[kind](value)


def _text(s: pd.Series) -> pd.Series:
    """The column as python-engine strings (missing values NA)."""
    return s.astype("object").where(s.notna(), None).astype(_STRING)


def _out(masked: pd.Series, s: pd.Series) -> pd.Series:
    """Object dtype, None where the input was missing (what tables and JSON show)."""
    return masked.astype("object").where(s.notna(), None)


def _arrow(s: pd.Series) -> pa.Array:
    """The column as an Arrow string array (missing values null; other types as text)."""
    try:
        return pa.array(s.astype("object"), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(_text(s), type=pa.string())


def _pandas(a: pa.Array, s: pd.Series) -> pd.Series:
    """Arrow strings back as an object column on ``s``'s index, None for missing."""
    return pd.Series(a.to_numpy(zero_copy_only=False), index=s.index, dtype="object")


def _keep_ends_arrow(a: pa.Array, head: int, tail: int) -> pa.Array:
    """Vectorised :func:`_keep_ends` in Arrow compute (no per-row Python)."""
    n = pc.utf8_length(a)
    middle = pc.binary_repeat("*", pc.max_element_wise(pc.subtract(n, head + tail), 0))
    kept = pc.binary_join_element_wise(pc.utf8_slice_codeunits(a, 0, head), middle,
                                       pc.utf8_slice_codeunits(a, -tail), "")
    return pc.if_else(pc.greater(n, head + tail), kept, pc.binary_repeat("*", n))


def mask_id_series(s: pd.Series) -> pd.Series:
    """Vectorised :func:`mask_id` (object dtype out, None for missing)."""
    return _pandas(_keep_ends_arrow(_arrow(s), 6, 4), s)


def mask_phone_series(s: pd.Series) -> pd.Series:
    """Vectorised :func:`mask_phone` (object dtype out, None for missing)."""
    return _pandas(_keep_ends_arrow(_arrow(s), 3, 4), s)


def _name_parts_regex(t: pd.Series) -> pd.Series:
    """The name rule by regular expressions (names with a middle dot): two-character parts lose
    their second character, then every character with a part character on both sides is
    ``*``."""
    t = t.str.replace(_NAME_TWO, r"\1*", regex=True)
    return t.str.replace(_NAME_INNER, "*", regex=True)


def mask_name_series(s: pd.Series) -> pd.Series:
    """Vectorised :func:`mask_name`: names without a middle dot in Arrow compute (first
    character, ``*`` for the middle, last character from three characters on), the rare ones
    with a middle dot by regular expressions part by part."""
    a = _arrow(s)
    n = pc.utf8_length(a)
    first = pc.utf8_slice_codeunits(a, 0, 1)
    longer = pc.binary_join_element_wise(
        first, pc.binary_repeat("*", pc.max_element_wise(pc.subtract(n, 2), 1)),
        pc.utf8_slice_codeunits(a, -1), "")
    two = pc.binary_join_element_wise(first, pa.scalar("*"), "")
    out = pc.if_else(pc.greater(n, 2), longer, pc.if_else(pc.equal(n, 2), two, a))
    result = out.to_numpy(zero_copy_only=False)
    dotted = np.asarray(pc.fill_null(pc.match_substring_regex(a, f"[{_SEP}]"), False))
    if dotted.any():
        sub = pd.Series(a.filter(pa.array(dotted)).to_pylist(), dtype=_STRING)
        result[dotted] = _name_parts_regex(sub).astype("object").to_numpy()
    return pd.Series(result, index=s.index, dtype="object")


def mask_key_series(s: pd.Series) -> pd.Series:
    """Vectorised :func:`mask_key`: one pass per middle length (an ID-like run is a whole digit
    run of 15 to 18 characters, so the passes never touch the same run)."""
    t = _text(s)
    for k in (5, 6, 7, 8):
        pat = rf"(?<![0-9])([0-9]{{6}})[0-9]{{{k}}}([0-9]{{3}}[0-9Xx]|[0-9]{{4}})(?![0-9A-Za-z])"
        t = t.str.replace(pat, r"\1" + "*" * k + r"\2", regex=True)
    return _out(t, s)


_SERIES = {"id": mask_id_series, "name": mask_name_series, "phone": mask_phone_series,
           "key": mask_key_series}


def mask_series(kind: Kind | None, s: pd.Series) -> pd.Series:
    """Column ``s`` masked by the rule of ``kind`` (object dtype, None for missing); unchanged
    values when ``kind`` is None."""
    if kind is None:
        return s.astype("object").where(s.notna(), None)
    return _SERIES[kind](s)


@lru_cache(maxsize=4096)
def field_kind(field: str) -> Kind | None:
    """``id``, ``name``, ``phone``, ``key`` or None for a canonical or service field name
    (cached: documents and records repeat a few dozen field names)."""
    if field in ID_FIELDS or field.endswith("_id_number"):
        return "id"
    if field in NAME_FIELDS:
        return "name"
    if field in PHONE_FIELDS or field.endswith("_phone"):
        return "phone"
    if field in KEY_FIELDS or field.endswith("_source_key"):
        return "key"
    return None


def mask_for_field(field: str, value: Any) -> Any:
    """``value`` masked by the rule of ``field``'s kind (returned as it is for other fields)."""
    return mask_scalar(field_kind(field), value)
