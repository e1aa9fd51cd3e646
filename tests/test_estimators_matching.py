"""Matched comparison groups: exact and nearest-neighbour matching, balance, DiD on the matched sample."""

import numpy as np
import polars as pl
import pytest

from som_models.estimators import aggregate, match_comparison, matched_att_gt
from som_models.estimators.synthetic import true_effect


def _world(n=4000, seed=0):
    """Treated persons have higher pre-period levels and a covariate-dependent trend (selection on observables)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    sex = rng.integers(0, 2, n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 1.2 * x)))
    g = np.where(treated, 2014, 0)
    years = np.arange(2010, 2018)
    alpha = rng.standard_normal(n) + x
    y = (alpha[:, None] + 0.3 * x[:, None] * (years - 2010)[None, :] + 0.5 * sex[:, None]
         + true_effect(years[None, :] - np.where(g > 0, g, 9999)[:, None]) + rng.standard_normal((n, len(years))))
    return pl.DataFrame({"pid": np.repeat(np.arange(n), len(years)), "year": np.tile(years, n), "y": y.ravel(),
                         "g": np.repeat(g, len(years)), "x": np.repeat(x, len(years)), "sex": np.repeat(sex, len(years))})


KW = dict(outcome="y", id_col="pid", time_col="year", group_col="g")


def test_nearest_neighbour_matching_balances_and_recovers_effect():
    d = _world()
    m = match_comparison(d, covariates=["x"], exact=["sex"], pre_periods=2, ratio=2, caliper=0.2, replace=True, **KW)
    bal = m.balance
    assert set(bal.get_column("feature").to_list()) == {"x", "outcome[g-1]", "outcome[g-2]"}
    assert (bal.get_column("smd_before").abs() > 0.3).all()
    assert (bal.get_column("smd_after").abs() < 0.1).all()
    controls = m.weights.filter(pl.col("role") == "control")
    treated = m.weights.filter(pl.col("role") == "treated")
    assert controls.get_column("weight").sum() == pytest.approx(treated.height)  # each treated unit spreads weight 1
    res = matched_att_gt(d, m, **KW)
    dyn = aggregate(res, "dynamic")
    for e in (0, 1, 2, 3):
        assert abs(dyn.estimates[e] - float(true_effect(e))) < 2.6 * dyn.ses[e], e


def test_matching_without_replacement_uses_each_control_once():
    d = _world(2000, seed=1)
    m = match_comparison(d, covariates=["x"], pre_periods=1, replace=False, caliper=0.5, seed=3, **KW)
    controls = m.weights.filter(pl.col("role") == "control")
    assert controls.get_column("unit").n_unique() == controls.height
    assert (controls.get_column("weight") == 1.0).all()
    n_t = d.filter(pl.col("g") > 0).get_column("pid").n_unique()
    dropped = m.notes.get("cohort 2014: treated units without a match", 0)
    assert m.weights.filter(pl.col("role") == "treated").height == n_t - dropped


def test_exact_matching_weights_reproduce_treated_strata():
    d = _world(1500, seed=2)
    m = match_comparison(d, exact=["sex"], method="exact", **KW)
    w = m.weights.join(d.filter(pl.col("year") == 2010).select(pl.col("pid").alias("unit"), "sex"), on="unit")
    for s in (0, 1):
        t = w.filter((pl.col("role") == "treated") & (pl.col("sex") == s)).height
        c = w.filter((pl.col("role") == "control") & (pl.col("sex") == s)).get_column("weight").sum()
        assert c == pytest.approx(t)
    assert m.balance.filter(pl.col("feature") == "sex").get_column("smd_after").abs().max() < 1e-12


def test_matching_needs_never_treated_and_valid_options():
    d = _world(500, seed=3)
    with pytest.raises(ValueError, match="never-treated"):
        match_comparison(d.filter(pl.col("g") > 0), covariates=["x"], **KW)
    with pytest.raises(ValueError, match="caliper"):
        match_comparison(d, covariates=["x"], caliper=-1, **KW)
    with pytest.raises(ValueError, match="exact matching needs"):
        match_comparison(d, method="exact", **KW)
