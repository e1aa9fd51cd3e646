"""Known truth: planted effects are recovered inside their 95 % intervals; the bootstrap behaves."""

import numpy as np
import polars as pl
import pytest

from som_models.estimators import (
    aggregate,
    att_gt,
    bootstrap_aggregate,
    bootstrap_cells,
    multiplier_bootstrap,
    pretrend_test,
    som_consequences,
)
from som_models.estimators.synthetic import staggered_panel, true_effect

KW = dict(outcome="y", id_col="person_id", time_col="year", group_col="first_treat")


@pytest.fixture(scope="module")
def confounded():
    return staggered_panel(6000, periods=8, effect=-1.0, slope=-0.2, n_covariates=3, time_varying=False,
                           confounded=True, trend_strength=1.5, seed=11)


def test_doubly_robust_recovers_planted_event_effects(confounded):
    res = att_gt(confounded, covariates=["x1", "x2", "x3"], method="dr", **KW)
    dyn = aggregate(res, "dynamic")
    for e, est in dyn.estimates.items():
        truth = float(true_effect(e))
        assert abs(est - truth) < 1.96 * dyn.ses[e] + 1e-9 or abs(est - truth) < 2.6 * dyn.ses[e], (e, est, truth)
    inside = sum(abs(dyn.estimates[e] - float(true_effect(e))) <= 1.96 * dyn.ses[e] for e in dyn.estimates)
    assert inside >= len(dyn.estimates) - 1
    assert pretrend_test(res).p_value > 0.01


def test_unconditional_estimator_is_biased_when_trends_depend_on_covariates(confounded):
    res = att_gt(confounded, **KW)
    dyn = aggregate(res, "dynamic")
    assert pretrend_test(res).p_value < 0.001  # the pre-trend test flags the planted violation
    worst = max(abs(dyn.estimates[e] - float(true_effect(e))) / dyn.ses[e] for e in dyn.estimates if e >= 0)
    assert worst > 3


@pytest.mark.parametrize("method", ["reg", "ipw", "dr-imp"])
def test_other_conditional_estimators_recover_the_overall_effect(confounded, method):
    res = att_gt(confounded, covariates=["x1", "x2", "x3"], method=method, **KW)
    dyn = aggregate(res, "dynamic")
    truth = float(np.mean([true_effect(e) for e in dyn.estimates if e >= 0]))
    assert abs(dyn.overall - truth) < 2.58 * dyn.overall_se


def test_not_yet_treated_and_universal_base_recover_effects():
    d = staggered_panel(4000, periods=8, n_covariates=2, confounded=False, seed=5)
    for control, base in (("notyet", "varying"), ("never", "universal")):
        res = att_gt(d, control=control, base_period=base, **KW)
        simple = aggregate(res, "simple")
        post = [c for c in res.cells if c.time >= c.group]
        truth = sum(res.group_shares[c.group] * float(true_effect(c.event_time)) for c in post) / sum(
            res.group_shares[c.group] for c in post)
        assert abs(simple.overall - truth) < 2.58 * simple.overall_se, control


def test_bootstrap_ses_agree_with_analytic_and_band_is_wider():
    d = staggered_panel(3000, periods=7, n_covariates=1, confounded=False, seed=3)
    res = att_gt(d, **KW)
    boot = bootstrap_cells(res, draws=999, seed=42)
    analytic = np.array([c.se for c in res.cells])
    assert np.allclose(boot.se, analytic, rtol=0.12)
    assert boot.crit > 1.96  # a uniform band over many cells is wider than pointwise
    again = bootstrap_cells(res, draws=999, seed=42)
    assert np.array_equal(again.se, boot.se) and again.crit == boot.crit  # seeded
    other = bootstrap_cells(res, draws=999, seed=42, weights="rademacher")
    assert np.allclose(other.se, analytic, rtol=0.12)
    by_e, overall = bootstrap_aggregate(aggregate(res, "dynamic"), res.n_units, draws=499, seed=1)
    assert 1.5 < overall.crit < 2.5
    assert set(by_e.labels) == set(aggregate(res, "dynamic").estimates)


def test_uniform_band_covers_all_event_effects():
    d = staggered_panel(3000, periods=8, n_covariates=1, confounded=False, seed=8)
    res = att_gt(d, **KW)
    dyn = aggregate(res, "dynamic")
    band, _ = bootstrap_aggregate(dyn, res.n_units, draws=999, seed=2)
    truth = np.array([float(true_effect(e)) for e in band.labels])
    assert np.all((band.lower <= truth) & (truth <= band.upper))


def test_cluster_bootstrap_uses_cluster_sums():
    rng = np.random.default_rng(0)
    psi = rng.standard_normal((2000, 1))
    cluster = np.repeat(np.arange(200), 10)
    psi_c = psi + np.repeat(rng.standard_normal(200) * 3, 10)[:, None]  # strong within-cluster correlation
    by_unit = multiplier_bootstrap(psi_c, np.zeros(1), draws=2000, seed=1)
    by_cluster = multiplier_bootstrap(psi_c, np.zeros(1), draws=2000, seed=1, cluster=cluster)
    sums = np.bincount(cluster, weights=psi_c[:, 0])
    assert by_cluster.se[0] == pytest.approx(np.sqrt(sums @ sums) / 2000, rel=0.1)
    assert by_cluster.se[0] > 2 * by_unit.se[0]
    with pytest.raises(ValueError, match="mammen"):
        multiplier_bootstrap(psi, np.zeros(1), draws=10, weights="gauss")


def test_som_consequences_recover_planted_profile_and_flag_significance():
    rng = np.random.default_rng(4)
    n, ref = 3000, 2015
    success = rng.random(n) < 0.4
    sex = rng.integers(0, 2, n)
    age = rng.integers(18, 60, n)
    kommune = rng.choice(["101", "147", "751"], n)
    planted = {k: -2.0 + 0.15 * k for k in range(1, 8)}  # fewer shelter nights after success, fading; k=7 ≈ -0.95
    rows = []
    for k in range(0, 8):
        y = 5 + 1.5 * sex + 0.05 * age + (success * planted.get(k, 0.0)) + rng.standard_normal(n) * (1 + success)
        rows.append(pl.DataFrame({"pid": np.arange(n), "year": ref + k, "nights": y, "success": success.astype(int),
                                  "sex": sex, "age": age + k, "kommune": kommune}))
    panel = pl.concat(rows)
    tab = som_consequences(panel, outcomes=["nights"], id_col="pid", time_col="year", success_col="success",
                           reference=ref, covariates=["sex", "age"], factors=["kommune"], years=range(1, 8))
    assert tab.height == 7 and set(tab.get_column("estimand").to_list()) == {"consequence"}
    for r in tab.iter_rows(named=True):
        assert r["ci_low"] <= planted[r["event_time"]] <= r["ci_high"] or abs(
            r["estimate"] - planted[r["event_time"]]) < 2.6 * r["se"]
        assert r["significant_5pct"] == (r["p_value"] < 0.05)
    # a null outcome: nothing significant is filtered away, rows are all still there
    panel = panel.with_columns(pl.Series("noise", rng.standard_normal(panel.height)))
    null = som_consequences(panel, outcomes=["noise"], id_col="pid", time_col="year", success_col="success",
                            reference=ref, years=range(1, 8))
    assert null.height == 7  # non-significant years are kept, only flagged
    assert null.get_column("significant_5pct").to_list() == [p < 0.05 for p in null.get_column("p_value").to_list()]
    assert null.get_column("significant_5pct").sum() < 7
