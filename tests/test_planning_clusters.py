"""The plan's tests when the intervention is assigned by cluster (issue 14, the part left open): the plan tests as
the verdicts do — ``t(G − 1)`` with the noncentral-t power, the exact TOST power over the chi-distributed standard
error, the t critical value at the alpha-spending boundary's nominal level — and marks assumptions the verdicts
cannot decide with at most five treated clusters.

Checked three ways: a published value (R's ``power.t.test``) and numerical integration for the noncentral-t
power, an independent Monte Carlo for the TOST power; a known-truth simulation of a 12-cluster design whose test
statistic has an exactly known t distribution; hand-counted roll-outs for the randomisation-inference rule."""

import inspect
import math

import numpy as np
import pytest
from scipy import integrate, stats

from som_models.estimators.results import cluster_df, two_sided_p
from som_models.planning import (
    PlanSettings,
    RolloutDesign,
    default_components,
    mdd,
    plan_evaluation,
    randomisation_min_p,
    refutation_power,
    t_critical,
    tost_power,
)


def _t_power_by_integration(x: float, c: float, df: int) -> float:
    """``P(|Z + x| ≥ c·U)`` with ``U = √(χ²_df/df)``: the two-sided t test's power, integrated over U."""
    root = math.sqrt(df)

    def f(u: float) -> float:
        return (stats.norm.cdf(x - c * u) + stats.norm.cdf(-x - c * u)) * root * stats.chi.pdf(u * root, df)

    return integrate.quad(f, 0, np.inf, limit=200, epsabs=1e-12)[0]


def test_noncentral_t_power_against_a_published_value_and_integration():
    # R: power.t.test(n = 20, delta = 4, sd = 5) → power = 0.6933994 (two-sample, df = 38; R counts the upper
    # tail only, strict = FALSE; printed in https://rstudio-pubs-static.s3.amazonaws.com/50607_4d5f89ca2cdd4d319e6f519b71c80ac5.html)
    se = 5 * math.sqrt(2 / 20)
    c = stats.t.isf(0.025, 38)
    p = refutation_power(4.0, se, c, df=38)
    lower = stats.nct.sf(c, 38, -4 / se)
    assert lower < 1e-5
    assert p - lower == pytest.approx(0.6933994, abs=1e-7)
    for df in (3, 11, 40):
        c = stats.t.isf(0.025, df)
        for x in (0.5, 2.0, 3.5):
            assert refutation_power(x, 1.0, c, df) == pytest.approx(_t_power_by_integration(x, c, df), abs=1e-8)
    # the size is the level, and the t power is below the normal power at the same critical value
    assert refutation_power(0.0, 1.0, stats.t.isf(0.025, 11), 11) == pytest.approx(0.05, abs=1e-12)
    assert refutation_power(3.0, 1.0, 2.2, 11) < refutation_power(3.0, 1.0, 2.2)
    # unclustered: the normal formula, unchanged
    assert refutation_power(2.8016, 1.0, 1.959964) == pytest.approx(
        stats.norm.cdf(2.8016 - 1.959964) + stats.norm.cdf(-2.8016 - 1.959964))


def test_tost_power_exact_over_the_estimated_standard_error():
    rng = np.random.default_rng(20261129)
    n = 400_000
    for df, lam in ((3, 3.0), (5, 4.0)):
        c = stats.t.isf(0.05, df)
        exact = tost_power(lam, 1.0, c, df)
        # independent Monte Carlo: d̂ ~ N(0, 1), ŝ² ~ χ²_df/df; both one-sided t tests reject iff |d̂| ≤ δ − c·ŝ
        d = rng.normal(0, 1, n)
        s = np.sqrt(rng.chisquare(df, n) / df)
        rate = float(np.mean(((d + lam) / s >= c) & ((lam - d) / s >= c)))
        assert exact == pytest.approx(rate, abs=4 * math.sqrt(rate * (1 - rate) / n))
    # the common shortcut 2·P(T' ≥ c) − 1 (T' ~ t(df, λ)) is a lower bound: it counts the event that neither
    # one-sided test rejects (c·ŝ > δ) twice; with few degrees of freedom the gap is large (df 3, λ 3: 0.54 vs 0.47)
    for df in (3, 5, 11, 31):
        c = stats.t.isf(0.05, df)
        for lam in (2.0, 3.0, 4.0):
            assert 2 * stats.nct.sf(c, df, lam) - 1 <= tost_power(lam, 1.0, c, df) + 1e-12
    c3 = stats.t.isf(0.05, 3)
    assert tost_power(3.0, 1.0, c3, 3) - (2 * stats.nct.sf(c3, 3, 3.0) - 1) > 0.05
    df, lam, c = 5, 4.0, stats.t.isf(0.05, 5)
    # many degrees of freedom: the normal formula
    assert tost_power(lam, 1.0, stats.norm.isf(0.05), 100_000) == pytest.approx(
        tost_power(lam, 1.0, stats.norm.isf(0.05)), abs=1e-4)
    assert tost_power(1.0, 1.0, c, df) < 0.01 and tost_power(0.0, 1.0, c, df) == 0.0


def test_mdd_solves_the_t_power_equation():
    for df in (1, 5, 11, 30):
        c = stats.t.isf(0.025, df)
        d = mdd(2.0, c, 0.8, df)
        assert refutation_power(d, 2.0, c, df) == pytest.approx(0.8, abs=1e-9)
        assert d > mdd(2.0, stats.norm.isf(0.025))  # the normal plan promises a smaller detectable deviation
    # df = 11, α = 5 %: the noncentrality at 80 % power is 3.078 (normal theory: z_{0.975} + z_{0.8} = 2.802)
    assert mdd(1.0, stats.t.isf(0.025, 11), 0.8, 11) == pytest.approx(3.0784, abs=1e-3)


def test_t_critical_is_the_verdicts_p_value_conversion():
    # the verdicts turn a t(df) p-value into its normal equivalent and compare it with the boundary c_k, so the
    # t statistic at the plan's critical value has exactly the boundary's nominal level 2Φ(−c_k)
    for ck in (1.96, 2.24, 2.77, 3.4):
        for df in (5, 11, 29):
            assert two_sided_p(t_critical(ck, df), df) == pytest.approx(2 * stats.norm.sf(ck), rel=1e-9)
    assert t_critical(2.24, None) == 2.24 and t_critical(math.inf, 11) == math.inf


def test_known_truth_twelve_clusters_rejection_rate_at_the_planned_mdd():
    """A roll-out over G = 12 clusters, 6 treated and 6 comparison: each cluster's mean change (post − pre) is
    normal with a cluster-level SD, so the pooled two-sample t statistic on the 12 changes is exactly noncentral
    t(10) — a setting whose distribution is known. Planting the effect at the MDD the t machinery gives for that
    reference must refute with 80 % probability; the normal-theory MDD refutes clearly less often."""
    rng = np.random.default_rng(14)
    sims, k = 40_000, 6
    sd_change = 1.3
    se = sd_change * math.sqrt(1 / k + 1 / k)  # SD of the difference of the arms' mean changes
    df = 2 * k - 2
    c = stats.t.isf(0.025, df)
    planned = mdd(se, c, 0.8, df)
    normal = mdd(se, stats.norm.isf(0.025))

    def rejection_rate(effect: float) -> float:
        treated = rng.normal(effect, sd_change, (sims, k))
        control = rng.normal(0.0, sd_change, (sims, k))
        diff = treated.mean(1) - control.mean(1)
        pooled = (treated.var(1, ddof=1) + control.var(1, ddof=1)) / 2
        t = diff / np.sqrt(pooled * (2 / k))
        return float(np.mean(np.abs(t) >= c))

    mc = math.sqrt(0.8 * 0.2 / sims)
    assert rejection_rate(planned) == pytest.approx(0.80, abs=3.5 * mc)
    off = rejection_rate(normal)  # the normal plan promises 80 % here
    assert off < 0.80 - 0.05
    assert off == pytest.approx(refutation_power(normal, se, c, df), abs=4 * mc)
    # the equivalence test at truth = assumption, margin δ = 3·se, one-sided t tests at 5 %
    delta, ct = 3 * se, stats.t.isf(0.05, df)
    treated = rng.normal(0.0, sd_change, (sims, k))
    control = rng.normal(0.0, sd_change, (sims, k))
    diff = treated.mean(1) - control.mean(1)
    s = np.sqrt((treated.var(1, ddof=1) + control.var(1, ddof=1)) / 2 * (2 / k))
    confirmed = float(np.mean(((diff + delta) / s >= ct) & ((delta - diff) / s >= ct)))
    expected = tost_power(delta, se, ct, df)
    assert confirmed == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / sims))


# ---- the plan itself ------------------------------------------------------------------------------------------

def _demo():
    from pipeline.evaluation import load_spec
    from som_reference import asset

    params = load_spec(asset("evaluations", "housing_first_demo.yaml")).seed
    items = [c.item for c in params.consequences if c.kind != "descriptive"]
    comps = default_components([params.success_measure.name, *items], params.target_group)
    return params, comps, items


def _plan(treated: dict[int, int], control_clusters: int, settings: PlanSettings | None = None, tested=None):
    params, comps, items = _demo()
    settings = settings or PlanSettings()
    cohorts = {int(g): int(n) for g, n in params.cohorts}
    design = RolloutDesign(cohorts, 6000, params.course_years, "municipality", treated, control_clusters)
    tested = tested or ["success_rate", f"effect_path:{items[0]}"]
    plan = plan_evaluation(params, design, comps, vintages=range(min(cohorts), max(cohorts) + 6), tested=tested,
                           settings=settings)
    return plan, design


def test_plan_uses_t_with_g_minus_1_and_the_verdicts_levels():
    from som_models.sequential import plan_look

    plan, design = _plan({2018: 6, 2019: 6}, 20)  # 12 treated of G = 32: the wild-bootstrap zone, t(31)
    df = cluster_df(design.clusters)
    assert df == 31
    level = 0.05 / plan.family_size
    for a in plan.assumptions:
        assert a.rows and "wild cluster bootstrap" in a.note and "t(31)" in a.note
        for r in a.rows:
            assert r.df == df and r.treated_clusters == sum(k for g, k in design.treated_clusters.items()
                                                             if g <= r.vintage)
            assert r.power_refute == pytest.approx(refutation_power(r.margin_abs, r.se, r.critical, df))
            assert r.power_confirm == pytest.approx(tost_power(r.margin_abs, r.se, r.tost_critical, df))
            assert r.mdd == pytest.approx(mdd(r.se, r.critical, 0.8, df))
        # look 1 under linear spending: a t statistic at the plan's critical value gives the verdicts' repeated
        # p-value (of its normal equivalent) exactly at the Bonferroni level
        first = a.rows[0]
        look = plan_look((), hypothesis="h", data_hash="d", vintage=str(first.vintage),
                         information=first.information, alpha=0.05, delta=first.margin_abs)
        z = stats.norm.isf(two_sided_p(first.critical, df) / 2)
        assert look.repeated_p(z) == pytest.approx(level, rel=1e-4)
    assert "t(31) tests over 32 municipality clusters" in plan.summary()
    assert plan.to_polars().get_column("df").to_list() == [df] * sum(len(a.rows) for a in plan.assumptions)
    # without alpha spending: t_{G−1}(1 − α/2m) directly
    fixed, _ = _plan({2018: 6, 2019: 6}, 20, PlanSettings(sequential="none"))
    assert fixed.assumptions[0].rows[0].critical == pytest.approx(stats.t.isf(level / 2, df))
    assert fixed.assumptions[0].rows[0].tost_critical == pytest.approx(stats.t.isf(level, df))


def test_unclustered_plan_stays_normal():
    params, comps, items = _demo()
    cohorts = {int(g): int(n) for g, n in params.cohorts}
    plan = plan_evaluation(params, RolloutDesign(cohorts, 6000, params.course_years), comps,
                           vintages=range(2018, 2024), tested=["success_rate"], settings=PlanSettings(sequential="none"))
    r = plan.assumptions[0].rows[0]
    assert r.df is None and r.treated_clusters is None and r.ri_min_p is None
    assert r.critical == pytest.approx(stats.norm.isf(0.025))
    assert r.power_refute == pytest.approx(stats.norm.cdf(r.margin_abs / r.se - r.critical)
                                           + stats.norm.cdf(-r.margin_abs / r.se - r.critical))
    assert "normal-theory tests" in plan.summary() and plan.assumptions[0].undecidable == ()


def test_randomisation_min_p_counts_the_rollouts():
    # cohorts 2018 and 2019 with one treated cluster each, 6 comparison clusters (G = 8): by 2018 one cluster has
    # adopted (8 roll-outs), by 2019 two at different times (8!/(1!·1!·6!) = 56)
    d = RolloutDesign({2018: 50, 2019: 50}, 300, 1, "municipality", {2018: 1, 2019: 1}, 6)
    assert randomisation_min_p(d, 2018) == (pytest.approx(1 / 8), 8)
    assert randomisation_min_p(d, 2019) == (pytest.approx(1 / 56), 56)
    # more roll-outs than are enumerated: sampled, p ≥ 1/(1 + draws)
    big = RolloutDesign({2018: 50}, 300, 1, "municipality", {2018: 5}, 35)
    assert randomisation_min_p(big, 2018) == (pytest.approx(1 / 10_000), math.comb(40, 5))
    assert randomisation_min_p(RolloutDesign({2018: 50}, 300, 1), 2018) is None
    # the plan's settings are the evaluation's randomisation inference
    from pipeline.evaluation import RI_DRAWS
    from som_models.estimators.randomisation import rollout_path_inference

    st = PlanSettings()
    assert st.ri_draws == RI_DRAWS
    assert st.ri_max_exact == inspect.signature(rollout_path_inference).parameters["max_exact"].default


def test_at_most_five_treated_clusters_without_a_reachable_level_is_not_decidable():
    from pipeline import jsonio

    # 2 treated clusters (one per cohort) of 6: at most 6!/(1!·1!·4!) = 30 roll-outs, p ≥ 1/30 > α/m = 0.025
    plan, design = _plan({2018: 1, 2019: 1}, 4, PlanSettings(sequential="none"))
    for a in plan.assumptions:
        assert a.refutable_from is None and a.confirmable_from is None
        assert a.undecidable == ("refute", "confirm")
        assert all(r.power_refute == 0.0 and r.power_confirm == 0.0 and math.isinf(r.mdd) for r in a.rows)
        assert all(r.ri_min_p is not None and r.ri_min_p >= 1 / 30 for r in a.rows)
        assert "randomisation inference" in a.note and "any planned vintage" in a.note
        # the t power alone would have promised something: the rule, not a lack of data, withholds it
        r = a.rows[-1]
        assert refutation_power(r.margin_abs, r.se, r.critical, r.df) > 0.05
    assert "not decidable (≤ 5 treated clusters)" in plan.summary()
    doc = jsonio.loads(jsonio.dumps(plan.to_dict()))
    assert doc["decidable"][0]["undecidable"] == ["refute", "confirm"]
    assert doc["assumptions"][0]["vintages"][0]["mdd"] is None


def test_at_most_five_treated_clusters_with_a_reachable_level_keeps_the_t_figures():
    # 4 treated of 24 (G!/(2!·2!·20!) roll-outs, sampled: p ≥ 1/10,000): reachable, t(23) figures with the note
    plan, design = _plan({2018: 2, 2019: 2}, 20, PlanSettings(sequential="none"))
    for a in plan.assumptions:
        assert a.undecidable == ()
        for r in a.rows:
            assert r.ri_min_p == pytest.approx(1 / 10_000) and r.df == 23
            assert r.power_refute == pytest.approx(refutation_power(r.margin_abs, r.se, r.critical, 23))
            assert math.isfinite(r.mdd)
        assert "approximates the randomisation test by t(23)" in a.note
    # the same few-cluster design is decidable or not by the level alone: 2 treated of 12 (12!/(1!·1!·10!) = 132
    # roll-outs, p ≥ 0.0076) reaches α = 5 % but not α = 0.1 %
    ok, _ = _plan({2018: 1, 2019: 1}, 10, PlanSettings(sequential="none"), tested=["success_rate"])
    strict, _ = _plan({2018: 1, 2019: 1}, 10, PlanSettings(sequential="none", alpha=0.001), tested=["success_rate"])
    assert ok.assumptions[0].rows[0].ri_min_p == pytest.approx(1 / 132)
    assert ok.assumptions[0].undecidable == () and ok.assumptions[0].rows[0].power_refute > 0
    assert strict.assumptions[0].undecidable == ("refute", "confirm")


def test_six_treated_clusters_is_the_wild_bootstrap_zone_not_the_withheld_one():
    plan, _ = _plan({2018: 3, 2019: 3}, 10, PlanSettings(sequential="none"))
    for a in plan.assumptions:
        rows_after = [r for r in a.rows if r.treated_clusters == 6]
        assert rows_after and all(r.ri_min_p is None for r in rows_after)
        assert "wild cluster bootstrap" in a.note
