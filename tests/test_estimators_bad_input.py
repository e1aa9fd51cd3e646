"""Bad or awkward input: unbalanced panels, switching treatment, missing controls, small groups, wrong types."""

import numpy as np
import polars as pl
import pytest

from som_models.estimators import aggregate, att_gt, build_panel, rct_effects
from som_models.estimators.panel import first_treatment_period
from som_models.estimators.synthetic import staggered_panel

KW = dict(outcome="y", id_col="person_id", time_col="year", group_col="first_treat")


@pytest.fixture(scope="module")
def panel():
    return staggered_panel(800, periods=6, n_covariates=2, confounded=False, seed=2)


def test_unbalanced_panel_uses_units_observed_in_both_periods(panel):
    rng = np.random.default_rng(0)
    holes = panel.filter(pl.Series(rng.random(panel.height) > 0.15))
    res = att_gt(holes, **KW)
    assert res.notes["balanced"] is False and "unbalanced_panel" in res.notes
    c = res.cells[0]
    b = c.group - 1 if c.time >= c.group else c.time - 1
    wide = holes.pivot(on="year", index=["person_id", "first_treat"], values="y")
    dy = (wide.get_column(str(c.time)) - wide.get_column(str(b))).to_numpy()
    g = wide.get_column("first_treat").to_numpy()
    ok = ~np.isnan(dy)
    expected = dy[ok & (g == c.group)].mean() - dy[ok & (g == 0)].mean()
    assert c.estimate == pytest.approx(expected, abs=1e-12)
    assert c.n_treated == int((ok & (g == c.group)).sum())
    assert c.n_control == int((ok & (g == 0)).sum())
    cov = att_gt(holes, covariates=["x1", "x2"], **KW)  # conditional estimators also accept holes
    assert len(cov.cells) == len(res.cells)


def test_row_order_and_string_ids_do_not_change_results(panel):
    base = att_gt(panel, **KW)
    shuffled = panel.sample(fraction=1.0, shuffle=True, seed=1).with_columns(
        ("p" + pl.col("person_id").cast(pl.Utf8)).alias("person_id"))
    other = att_gt(shuffled, **KW)
    assert [c.estimate for c in other.cells] == pytest.approx([c.estimate for c in base.cells], abs=1e-12)
    assert [c.se for c in other.cells] == pytest.approx([c.se for c in base.cells], rel=1e-10)


def test_treatment_that_switches_off_is_refused(panel):
    bad = panel.with_columns(pl.when((pl.col("person_id") == 1) & (pl.col("year") == 2013))
                             .then(pl.lit(2012)).otherwise(pl.col("first_treat")).alias("first_treat"))
    with pytest.raises(ValueError, match="constant within each unit"):
        att_gt(bad, **KW)
    d = panel.with_columns(((pl.col("first_treat") > 0) & (pl.col("year") >= pl.col("first_treat"))).cast(pl.Int8).alias("D"))
    derived = first_treatment_period(d, id_col="person_id", time_col="year", treat_col="D", name="g2")
    assert (derived.get_column("g2") == derived.get_column("first_treat")).all()
    off = d.with_columns(pl.when((pl.col("first_treat") > 0) & (pl.col("year") == 2015)).then(0)
                         .otherwise(pl.col("D")).alias("D"))
    with pytest.raises(ValueError, match="switches off"):
        first_treatment_period(off, id_col="person_id", time_col="year", treat_col="D")


def test_no_never_treated_units_with_never_control_is_a_clear_error():
    panel = staggered_panel(800, periods=8, n_covariates=1, confounded=False, seed=2)
    treated_only = panel.filter(pl.col("first_treat") > 0)
    with pytest.raises(ValueError, match="never-treated"):
        att_gt(treated_only, **KW)
    res = att_gt(treated_only, control="notyet", **KW)  # not-yet-treated comparison still works
    assert res.cells


def test_small_groups_are_flagged_not_fatal(panel):
    first = panel.filter(pl.col("first_treat") == 2013).get_column("person_id").unique().sort()[:3]
    tiny = panel.filter((pl.col("first_treat") != 2013) | pl.col("person_id").is_in(first.to_list()))
    res = att_gt(tiny, covariates=["x1"], **KW)
    small = [c for c in res.cells if c.group == 2013]
    assert small and all("small_group" in c.flags for c in small)
    assert res.notes["small_groups"] == {2013: 3}
    aggregate(res, "dynamic")


def test_missing_outcomes_dropped_and_counted(panel):
    holes = panel.with_columns(pl.when(pl.col("person_id") % 10 == 0).then(None).otherwise(pl.col("y")).alias("y"))
    res = att_gt(holes, **KW)
    assert res.notes["rows_missing_outcome_dropped"] == holes.get_column("y").null_count()


@pytest.mark.parametrize("column, message", [
    ("y", "column 'y' must be numeric"),
    ("x1", "column 'x1' must be numeric"),
])
def test_non_numeric_columns_are_named(panel, column, message):
    bad = panel.with_columns(pl.col(column).cast(pl.Utf8))
    with pytest.raises(ValueError, match=message):
        att_gt(bad, covariates=["x1"], **KW)


def test_missing_column_duplicates_and_constant_covariate(panel):
    with pytest.raises(ValueError, match="column 'nope' not found"):
        att_gt(panel, outcome="nope", id_col="person_id", time_col="year", group_col="first_treat")
    with pytest.raises(ValueError, match="more than once"):
        att_gt(pl.concat([panel, panel.head(3)]), **KW)
    with pytest.raises(ValueError, match="covariate 'c' is constant"):
        att_gt(panel.with_columns(pl.lit(1.0).alias("c")), covariates=["c"], **KW)
    with pytest.raises(ValueError, match="covariate 'x1' has 1 missing"):
        att_gt(panel.with_columns(pl.when(pl.col("person_id") == 5).then(None).otherwise(pl.col("x1"))
                                  .alias("x1")).filter((pl.col("person_id") != 5) | (pl.col("year") == 2010)),
               covariates=["x1"], **KW)


def test_first_period_and_late_groups_follow_r_did(panel):
    d = panel.with_columns(pl.when(pl.col("person_id") <= 5).then(2010)
                           .when(pl.col("person_id").is_between(6, 9)).then(2030)
                           .otherwise(pl.col("first_treat")).alias("first_treat"))
    p = build_panel(d, **KW)
    assert p.notes["units_treated_in_first_period_dropped"] == 5
    assert p.notes["units_treated_after_last_period_as_never_treated"] == 4
    assert p.n == 795


def test_rct_bad_input():
    d = pl.DataFrame({"id": [1, 1, 2, 2, 3, 3], "t": [0, 1] * 3, "y": [1.0, 2, 3, 4, 5, 6], "arm": [1, 1, 0, 0, 2, 2]})
    with pytest.raises(ValueError, match="column 'arm' must be 0"):
        rct_effects(d, outcome="y", id_col="id", time_col="t", arm_col="arm", start=1)
    with pytest.raises(ValueError, match="constant within each unit"):
        rct_effects(d.with_columns(pl.Series("arm", [1, 0, 0, 0, 1, 1])), outcome="y", id_col="id", time_col="t",
                    arm_col="arm", start=1)
    with pytest.raises(ValueError, match="column 'y' must be numeric"):
        rct_effects(d.with_columns(pl.col("y").cast(pl.Utf8)), outcome="y", id_col="id", time_col="t", arm_col="arm",
                    start=1)
