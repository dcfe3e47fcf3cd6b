"""Phone numbers to one digit string: mobiles ``1[3-9]XXXXXXXXX``, landlines ``0`` + area code +
local number (``0717-1234567`` -> ``07171234567``); anything else NA.

Cleaning (vectorised ``Series.str``): NFKC (full-width digits), the first of several numbers
(separated by ``/ , ; 、`` or ``，``) kept, an extension (``转123``, ``ext 12``, ``#12``) dropped,
spaces, hyphens, dots and parentheses removed, a float artefact ``.0`` removed, the country code
``+86`` / ``0086`` / ``86`` removed before a mobile, and before a landline written without its
trunk ``0`` (``+86 717 1234567``). Landline area codes: ``010`` / ``02X`` with 8-digit local
numbers, other ``0XXX`` with 7 or 8 digits; local numbers never start with 0.
A local number without area code (7-8 digits) gets ``default_area_code`` when one is given
(Yichang is ``0717``), else is NA. Excel's scientific notation (``1.38123E+10``) has lost digits:
NA.
"""

from __future__ import annotations

import pandas as pd

MOBILE = r"1[3-9][0-9]{9}"
LANDLINE = r"0(?:10|2[0-9])[1-9][0-9]{7}|0[3-9][0-9]{2}[1-9][0-9]{6,7}"
_STRING = "string"


def normalise_phone(s: pd.Series, default_area_code: str | None = None) -> pd.Series:
    """Mobile or landline digits, NA when invalid (``string`` dtype, same index)."""
    text = s.astype(_STRING)
    # fast path (RE2 via Arrow): values already in normal form are kept; only the rest is cleaned
    done = text.astype(pd.StringDtype("pyarrow")).str.fullmatch(f"{MOBILE}|{LANDLINE}")
    done = done.fillna(False).astype(bool)
    if bool(done.all()):
        return text
    rest = _clean(text[~done], default_area_code)
    out = text.where(done)
    out[~done] = rest
    return out.astype(_STRING)


def _clean(s: pd.Series, default_area_code: str | None) -> pd.Series:
    """The cleaning steps of :func:`normalise_phone` (module docstring)."""
    t = s.str.normalize("NFKC").str.strip()
    t = t.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    t = t.str.split(r"[/,;、，；]|\s{2,}", n=1, regex=True).str[0]
    t = t.str.replace(r"(?:转|分机|ext\.?|EXT\.?|x|X|#)\s*\d{1,6}$", "", regex=True)
    t = t.str.replace(r"[\s\-\u2010-\u2015\u2212.()（）\[\]]", "", regex=True)
    t = t.str.replace(r"^(?:\+|00)?86(?=1[3-9]\d{9}$)", "", regex=True)
    t = t.str.replace(r"^(?:\+|00)86(?=[1-9]\d{8,10}$)", "0", regex=True)  # +86 717 1234567
    if default_area_code:
        t = t.str.replace(r"^(?=[2-9]\d{6,7}$)", default_area_code, regex=True)
    ok = t.str.fullmatch(f"{MOBILE}|{LANDLINE}", na=False)
    return t.where(ok).astype(_STRING)


def phone_kind(p: pd.Series) -> pd.Series:
    """``mobile`` / ``landline`` / NA for :func:`normalise_phone` output."""
    t = p.astype(_STRING)
    kind = pd.Series(pd.NA, index=p.index, dtype=_STRING)
    kind[t.str.fullmatch(MOBILE, na=False)] = "mobile"
    kind[t.str.fullmatch(LANDLINE, na=False)] = "landline"
    return kind

