"""The non-GX asset checks, called directly."""

import dagster as dg
import polars as pl
import pytest

from pipeline.defs.checks import build_extra_checks, standardised_differences
from som_models.plausibility import plausibility_problems
from tests.static_io import StaticIOManager


def test_plausibility_flags_sign_flips_tenfold_changes_and_bad_rates():
    parent = {"consequences": {"x": {"units": [-10, -5]}}, "success_rate": {"value": 0.2}}
    ok = {"consequences": {"x": {"units": [-12, -4]}}, "success_rate": {"value": 0.25}}
    assert plausibility_problems(parent, ok) == ()
    bad = {"consequences": {"x": {"units": [3, -60]}}, "success_rate": {"value": 1.2}}
    problems = plausibility_problems(parent, bad)
    assert [p.check for p in problems] == ["success_rate", "sign_flip", "magnitude"]
    assert "outside [0, 1]" in problems[0].message


def test_standardised_differences_by_hand():
    panel = pl.DataFrame({"person_id": ["a", "b", "c", "d"], "year": [2015] * 4, "birth_year": [1980] * 4,
                          "municipality": [101] * 4, "sex": [1, 1, 2, 2], "y": [1.0, 3.0, 2.0, 4.0]})
    treatments = pl.DataFrame({"person_id": ["a", "b"]})
    smd = standardised_differences(panel, treatments)
    # treated y: mean 2, var 2; comparison y: mean 3, var 2 → SMD = (2 − 3)/√2
    assert smd["y"] == pytest.approx(-1 / 2**0.5)
    # sex is constant within each group but differs between them: infinitely imbalanced
    assert smd["sex"] == float("-inf")


def test_pretrend_check_result():
    checks = {next(iter(c.check_keys)).name: c for c in build_extra_checks()}
    assert set(checks) == {"pretrends_hold", "baseline_balance", "proposal_plausible", "case_alerts"}
    result = dg.materialize(
        [dg.AssetSpec("pretrend_tests").with_io_manager_key("io_manager"), checks["pretrends_hold"]],
        resources={"io_manager": StaticIOManager({"pretrend_tests": pl.DataFrame({"outcome": ["a", "b"], "statistic": [1.0, 30.0],
                                                                          "df": [3, 3], "p_value": [0.8, 0.0001]})})},
        selection=dg.AssetSelection.checks_for_assets("pretrend_tests"),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and "b" in evaluation.description


