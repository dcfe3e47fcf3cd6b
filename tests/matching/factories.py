"""Tiny synthetic std records and a fixed (untrained) model for linkage tests."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pandas as pd

from matching.model import splink_settings
from matching.std import STD_COLUMNS


def std_row(source: str, key: str, *, name: str | None = None, py: str | None = None,
            id18: str | None = None, dob: date | None = None, sex: str | None = "男",
            house: str | None = None, phone: str | None = None, kind: str = "household_registry",
            household_no: str | None = None, record_time: str | None = None,
            **extra: Any) -> dict[str, Any]:
    """One std record (the fields linkage reads), with sensible derived columns."""
    row: dict[str, Any] = {c: None for c in STD_COLUMNS if c not in ("record_id",
                                                                      "family_household_no")}
    surname_py = py.split(" ")[0] if py else None
    row.update(source=source, source_key=key, kind=kind, department="d", run_id="r",
               id_raw=id18, id18=id18, id_key=id18, id_status="valid" if id18 else "missing",
               id_birth_date=pd.Timestamp(dob) if (id18 and dob) else None,
               id_sex=sex if id18 else None, name_raw=name, name=name,
               name_py=py.replace(" ", "") if py else None,
               name_pyf=py.replace(" ", "").replace("zh", "z") if py else None,
               surname=name[0] if name else None, surname_py=surname_py, name_unknown=False,
               sex=sex, birth_date=pd.Timestamp(dob) if dob else None,
               birth_month=pd.Timestamp(dob.replace(day=1)) if dob else None,
               phone=phone, address=house, district_code="420502" if house else None,
               compound=house.split("-")[0] if house else None,
               building=house.split("-")[1] if house else None, house_key=house,
               household_no=household_no,
               record_time=pd.Timestamp(record_time) if record_time else None, flags=None)
    row.update(extra)
    return row


def std_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A std frame (input of ``write_std``)."""
    return pd.DataFrame(rows)


def fixed_model(match_prior: float = 1e-4) -> dict[str, Any]:
    """The declared model with hand-set m/u: strong evidence levels first, 'different' last."""
    s = copy.deepcopy(splink_settings())
    s["probability_two_random_records_match"] = match_prior
    for comp in s["comparisons"]:
        levels = [lv for lv in comp["comparison_levels"]
                  if not lv.get("is_null_level") and not lv.get("fix_m_probability")]
        k = len(levels)
        for i, lv in enumerate(levels):
            if i == k - 1:  # 'different'
                lv["m_probability"], lv["u_probability"] = 0.02, 0.95
            else:
                lv["m_probability"] = 0.98 * (0.6 if i == 0 else 0.4 / (k - 2))
                lv["u_probability"] = 0.05 * (10.0 ** -(k - 1 - i)) if i else 0.0005
        # probabilities must be normalised
        m_tot = sum(lv["m_probability"] for lv in levels)
        u_tot = sum(lv["u_probability"] for lv in levels)
        for lv in levels:
            lv["m_probability"] /= m_tot
            lv["u_probability"] /= u_tot
    return s
