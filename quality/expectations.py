"""Custom Great Expectations expectation: values are valid Chinese resident ID numbers.

``ExpectColumnValuesToBeValidResidentId`` checks structure (18 characters: 17 digits + a check
digit or ``X``), the birth date inside the number, the region code's shape and the ISO 7064
MOD 11-2 check digit (GB 11643-1999). 15-digit legacy numbers (issued before 1999, no check
digit) are recognised and pass unless ``allow_legacy15=False``. The classification itself is
:func:`matching.standardise.ids.classify_ids` (vectorised; one implementation everywhere):
a value passes when its status is ``valid`` (or ``legacy15`` when allowed). Nulls are skipped,
as by every map expectation: pair it with a not-null expectation where the ID is required.

Importing this module imports Great Expectations (seconds) and registers the expectation and
its metric ``column_values.valid_resident_id``: import it inside the functions that need it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

PASSING_STATUSES = ("valid", "missing")
"""Statuses that pass (``missing``: nothing left after cleaning, e.g. a lone apostrophe: that
is for a not-null expectation to judge); ``legacy15`` is added when legacy numbers are allowed."""


def resident_id_ok(values: pd.Series, allow_legacy15: bool = True) -> pd.Series:
    """Boolean Series: True where the value is a valid resident ID (vectorised).

    Nulls come back True (the caller, GX, skips them anyway).
    """
    from matching.standardise.ids import classify_ids

    status = classify_ids(values.astype("object"))["id_status"]
    ok = list(PASSING_STATUSES) + (["legacy15"] if allow_legacy15 else [])
    out = pd.Series(status.isin(ok).to_numpy(), index=values.index)
    return out | values.isna()


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    """Map metric: is each value a valid resident ID number (pandas engine)."""

    condition_metric_name = "column_values.valid_resident_id"
    condition_value_keys = ("allow_legacy15",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, allow_legacy15: bool = True, **kwargs: Any) -> pd.Series:
        return resident_id_ok(column, allow_legacy15=allow_legacy15)


class ExpectColumnValuesToBeValidResidentId(ColumnMapExpectation):
    """Expect column values to be valid Chinese resident ID numbers (GB 11643-1999).

    Args:
        column: the column to check (text; cleaning of full-width digits, lowercase ``x``,
            spaces and Excel apostrophes is part of the check).
        allow_legacy15: accept 15-digit pre-1999 numbers (default True).
        mostly: the usual fraction of values that must pass.
    """

    allow_legacy15: bool = True

    map_metric = "column_values.valid_resident_id"
    success_keys = ("mostly", "allow_legacy15")
    args_keys = ("column", "allow_legacy15")

    library_metadata: ClassVar[dict[str, Any]] = {
        "maturity": "experimental",
        "tags": ["unigrid", "resident id", "GB 11643-1999"],
        "contributors": ["unigrid"],
    }
