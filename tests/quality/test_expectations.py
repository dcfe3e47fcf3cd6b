"""The custom resident-ID expectation catches each bad kind and passes valid 18 / 15-digit ones."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.quality.conftest import bad_check, make_id

VALID = make_id("420502", "19900101", "123")
CASES: list[tuple[str, str | None, bool]] = [
    # (case, value, passes)
    ("valid 18", VALID, True),
    ("valid 18 with X", next(make_id("110101", "19800101", f"{s:03d}") for s in range(1000)
                             if make_id("110101", "19800101", f"{s:03d}").endswith("X")), True),
    ("lowercase x", next(make_id("110101", "19800101", f"{s:03d}") for s in range(1000)
                         if make_id("110101", "19800101", f"{s:03d}").endswith("X")).lower(), True),
    ("full-width digits", VALID.translate(str.maketrans("0123456789", "０１２３４５６７８９")), True),
    ("spaces and Excel apostrophe", "'" + VALID[:6] + " " + VALID[6:], True),
    ("legacy 15", "420502900101123", True),
    ("bad check digit", bad_check(VALID), False),
    ("bad date (month 13, right check)", make_id("420502", "19901301", "123"), False),
    ("bad length 17", VALID[:17], False),
    ("bad length 16", VALID[:16], False),
    ("bad chars", "42050219900101ABC4", False),
    ("lost digits (scientific)", "4.20502E+17", False),
    ("lost digits (Excel 000)", "420502199001014000", False),
    ("null is skipped", None, True),
    ("nothing left after cleaning is skipped", "' -", True),
]


@pytest.fixture(scope="module")
def gx_result() -> dict[str, bool]:
    """Run the expectation once with GX on a frame of every case; case -> passed."""
    import great_expectations as gx
    from quality.expectations import ExpectColumnValuesToBeValidResidentId

    df = pd.DataFrame({"case": [c for c, _, _ in CASES], "id": [v for _, v, _ in CASES]})
    ctx = gx.get_context(mode="ephemeral")
    batch = ctx.data_sources.add_pandas("p").add_dataframe_asset("a") \
        .add_batch_definition_whole_dataframe("b").get_batch(batch_parameters={"dataframe": df})
    res = batch.validate(ExpectColumnValuesToBeValidResidentId(column="id"),
                         result_format={"result_format": "COMPLETE",
                                        "unexpected_index_column_names": ["case"]})
    failed = {d["case"] for d in res.result["unexpected_index_list"]}
    return {c: c not in failed for c, _, _ in CASES}


@pytest.mark.parametrize("case,value,passes", CASES, ids=[c for c, _, _ in CASES])
def test_resident_id_expectation(gx_result: dict[str, bool], case: str, value: str | None,
                                 passes: bool) -> None:
    assert gx_result[case] is passes


def test_legacy15_can_be_refused() -> None:
    from quality.expectations import resident_id_ok
    s = pd.Series(["420502900101123", VALID, bad_check(VALID), None], dtype=object)
    assert resident_id_ok(s).tolist() == [True, True, False, True]
    assert resident_id_ok(s, allow_legacy15=False).tolist() == [False, True, False, True]


def test_expectation_counts_and_mostly() -> None:
    import great_expectations as gx
    from quality.expectations import ExpectColumnValuesToBeValidResidentId

    df = pd.DataFrame({"id": [VALID] * 9 + [bad_check(VALID)]})
    batch = gx.get_context(mode="ephemeral").data_sources.add_pandas("p") \
        .add_dataframe_asset("a").add_batch_definition_whole_dataframe("b") \
        .get_batch(batch_parameters={"dataframe": df})
    strict = batch.validate(ExpectColumnValuesToBeValidResidentId(column="id"))
    lenient = batch.validate(ExpectColumnValuesToBeValidResidentId(column="id", mostly=0.85))
    assert (strict.success, strict.result["unexpected_count"]) == (False, 1)
    assert lenient.success is True
