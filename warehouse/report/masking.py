"""Masking of personal data on display (vectorised): ID numbers and names."""

from __future__ import annotations

import pandas as pd


def mask_id(s: pd.Series) -> pd.Series:
    """ID numbers as first 6 + ``*`` + last 4 (``420502********1234``); short values all ``*``."""
    t = s.astype("object").where(s.notna(), None).astype("string")
    n = t.str.len()
    masked = t.str[:6] + n.sub(10).clip(lower=0).map(
        lambda k: "*" * int(k) if pd.notna(k) else None).astype("string") + t.str[-4:]
    short = n.fillna(0) <= 10
    stars = n.map(lambda k: "*" * int(k) if pd.notna(k) else None).astype("string")
    return masked.where(~short, stars).astype("object").where(t.notna(), None)


def mask_name(s: pd.Series) -> pd.Series:
    """Names with the middle replaced: ``张*明``, two characters ``张*``, minority names keep the
    first character of each part (``买*·艾*``)."""
    t = s.astype("object").where(s.notna(), None).astype("string")

    def one(part: pd.Series) -> pd.Series:
        n = part.str.len()
        two = part.str[:1] + "*"
        longer = part.str[:1] + n.sub(2).clip(lower=1).map(
            lambda k: "*" * int(k) if pd.notna(k) else "").astype("string") + part.str[-1:]
        return two.where(n <= 2, longer).where(n > 1, part)

    has_dot = t.str.contains("·", regex=False).fillna(False)
    out = one(t)
    if has_dot.any():
        parts = t[has_dot].str.split("·", expand=True)
        masked = [one(parts[c].astype("string")) for c in parts.columns]
        joined = masked[0]
        for m in masked[1:]:
            joined = joined.str.cat(m, sep="·", na_rep="").str.rstrip("·")
        out[has_dot] = joined
    return out.astype("object").where(t.notna(), None)
