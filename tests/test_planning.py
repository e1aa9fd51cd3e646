"""Planning (issue 14): variance of the planned estimator (hand-computed), variance components (known truth),
EVPPI (regression vs brute-force nested Monte Carlo vs closed form), the plan on the demo spec, and alerts."""

import math

import numpy as np
import polars as pl
import pytest

from som_models.planning import (
    RolloutDesign,
    VarianceComponents,
    contrast_variance,
    estimate_components,
    evppi_gaussian,
    evppi_regression,
    mdd,
    nested_evppi,
    refutation_power,
    tost_power,
)


def test_contrast_variance_hand_computed():
    # one cohort of 100 starting 2020, 400 controls, iid outcomes (γ(0) = 4, γ(k > 0) = 0): ATT at e = 1 is a
    # difference of mean changes over two years, Var = 2·4/100 + 2·4/400 = 0.1
    comp = VarianceComponents("y", (4.0, 0.0), (0.0, 0.0), 1000, None, "hand")
    design = RolloutDesign({2020: 100}, 400, 1)
    var, deff = contrast_variance(design, comp, 2021, [1])
    assert var == pytest.approx(0.1)
    assert deff == pytest.approx(1.0)
    # with a between-cluster part of 1 in every lag (γ_b constant: a cluster level, not a change) the contrast of
    # changes is unaffected ...
    comp_b = VarianceComponents("y", (4.0, 1.0), (1.0, 1.0), 1000, 20, "hand")
    clustered = RolloutDesign({2020: 100}, 400, 1, "municipality", {2020: 10}, 40)
    var_b, deff_b = contrast_variance(clustered, comp_b, 2021, [1])
    # Var of a change: 2(γ(0) − γ(1)) = 6 per person, between part 2(1 − 1) = 0 → no design effect
    assert var_b == pytest.approx(6 / 100 + 6 / 400)
    assert deff_b == pytest.approx(1.0)
    # ... but a cluster-year shock (γ_b(0) = 1, γ_b(1) = 0) gives ρ = 2/8 and m = 10: design effect 1 + 9·0.25
    comp_s = VarianceComponents("y", (4.0, 0.0), (1.0, 0.0), 1000, 20, "hand")
    var_s, deff_s = contrast_variance(clustered, comp_s, 2021, [1])
    assert var_s == pytest.approx(8 / 100 * (1 + 9 * 0.25) + 8 / 400 * (1 + 9 * 0.25))
    assert deff_s == pytest.approx(3.25)


def test_power_formulas():
    z = 1.959963984540054
    assert refutation_power(0.0, 1.0, z) == pytest.approx(0.05)
    # the textbook MDD: (z_{1−α/2} + z_{0.8})·se = 2.8016 se (the far tail adds < 1e-6)
    assert mdd(2.0, z) == pytest.approx(2 * 2.8016, abs=2e-3)
    assert tost_power(1.0, 1.0, 1.645) == 0.0
    assert tost_power(4.0, 1.0, 1.645) == pytest.approx(2 * 0.99 - 1, abs=2e-3)


def test_components_recover_a_known_two_level_process():
    # Y_it = person effect (var 2) + cluster-year shock (var 0.5) + noise (var 1): γ(0) = 3.5, γ(k) = 2,
    # γ_b(0) = 0.5, γ_b(k) = 0
    rng = np.random.default_rng(3)
    persons, clusters, years = 6000, 60, 5
    cl = np.arange(persons) % clusters
    shock = rng.normal(0, math.sqrt(0.5), (clusters, years))
    y = rng.normal(0, math.sqrt(2), persons)[:, None] + shock[cl] + rng.normal(0, 1, (persons, years))
    panel = pl.DataFrame({"person_id": np.repeat(np.arange(persons), years), "year": np.tile(np.arange(years), persons),
                          "y": y.ravel(), "municipality": np.repeat(cl, years)})
    comp = estimate_components(panel, ["y"], cluster="municipality")["y"]
    assert comp.gamma[0] == pytest.approx(3.5, rel=0.06)
    assert comp.gamma[2] == pytest.approx(2.0, rel=0.08)
    assert comp.gamma_between[0] == pytest.approx(0.5, abs=0.15)
    assert comp.gamma_between[1] == pytest.approx(0.0, abs=0.1)


def test_components_bad_input_names_the_column():
    panel = pl.DataFrame({"person_id": [1, 1], "year": [1, 2], "x": [0.0, 1.0]})
    with pytest.raises(ValueError, match="missing column.*y"):
        estimate_components(panel, ["y"])


def _hand_case():
    """NPV = 1000·s·u − 150 with s ~ N(0.2, 0.05²), u ~ N(1, 0.6²) independent: E[NPV | s] = 1000 s − 150."""
    def npv(s, u):
        return 1000 * s * u - 150
    return npv


def test_evppi_regression_agrees_with_nested_monte_carlo_and_closed_form():
    npv = _hand_case()
    rng = np.random.default_rng(11)
    n = 40_000
    s, u = rng.normal(0.2, 0.05, n), rng.normal(1.0, 0.6, n)
    reg = evppi_regression(s, npv(s, u), seed=1)
    nested, nested_se = nested_evppi(lambda r, k: r.normal(0.2, 0.05, k),
                                     lambda sk, r, k: npv(sk, r.normal(1.0, 0.6, k)),
                                     outer=3000, inner=400, seed=5)
    # the inner Monte Carlo inflates the nested figure by at most E|inner error| ≈ σ_inner/√inner ≈ 0.8 here
    inner_bias = 1000 * 0.2 * 0.6 / math.sqrt(400)
    tol = 3 * math.hypot(reg.se, nested_se) + inner_bias
    assert abs(reg.evppi - nested) < tol, (reg, nested, nested_se)
    exact = evppi_gaussian(50.0, 1000 * 0.05)  # E[NPV | s] ~ N(50, 50²)
    assert abs(reg.evppi - exact) < 3 * reg.se + 0.5, (reg, exact)
    assert exact == pytest.approx(50 * 0.2419707 + 50 * 0.8413447 - 50, rel=1e-6)
    # u alone carries information too, but not the success rate's share
    reg_u = evppi_regression(u, npv(s, u), seed=1)
    assert reg_u.evppi > 0 and reg_u.fitted_variance_share < 1


def test_evppi_of_an_irrelevant_input_is_near_zero():
    rng = np.random.default_rng(2)
    y = rng.normal(10, 50, 20_000)
    noise = rng.normal(size=20_000)
    e = evppi_regression(noise, y, seed=0)
    assert e.evppi < 3 * e.se + 0.5


def test_projection_draws_are_the_monte_carlo_draws():
    import yaml

    from som_models.parameters import parse_parameter_set
    from som_models.planning.voi import projection_draws, value_of_information
    from som_models.projection import monte_carlo
    from som_reference import asset

    params = parse_parameter_set(yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text()))
    inputs, npv = projection_draws(params, draws=5000, seed=4)
    assert np.array_equal(npv, monte_carlo(params, draws=5000, seed=4).npv_draws)
    # item correlation (the default): the course-year profile shares the item's z, so it is one input with the
    # effect profile; drawn independently, it is an input of its own
    assert set(inputs) == {"success_rate", "consequence:shelter_nights", "consequence:kontanthjaelp_weeks"}
    independent = parse_parameter_set({**yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text()),
                                       "monte_carlo": {"consequence_correlation": "independent"}})
    assert set(projection_draws(independent, draws=2000, seed=4)[0]) == {
        "success_rate", "consequence:shelter_nights", "consequence:kontanthjaelp_weeks",
        "course:shelter_nights", "course:kontanthjaelp_weeks"}
    voi = value_of_information(params, draws=5000, seed=4)
    assert voi["ranking"][0] in inputs
    assert all(v["total"]["evppi"] <= voi["evpi"]["total"] + 3 * v["total"]["se"] for v in voi["by_assumption"].values())


def test_plan_on_the_demo_spec_with_knowledge_base_variances():
    from pipeline.evaluation import load_spec
    from pipeline.plan import make_plan
    from som_reference import asset

    loaded = load_spec(asset("evaluations", "housing_first_demo.yaml"))
    plan = make_plan(loaded.seed, loaded.spec, panel=None, treatments=None, level=None, version=None, controls=6000,
                     voi_draws=2000, voi_seed=1)
    assert "knowledge-base defaults" in plan.variance_source
    names = [a.assumption for a in plan.assumptions]
    assert names == ["success_rate", "effect_path:shelter_nights", "effect_path:kontanthjaelp_weeks", "participants",
                     "course_years", "cost_per_participant"]
    for a in plan.assumptions:
        assert all(r.power_refute <= 1 and r.mdd > 0 for r in a.rows)
        if a.kind == "effect":  # precision never falls as vintages add consequence years (same assumed level)
            assert a.rows[0].vintage == 2019
    kh = plan.by_name("effect_path:kontanthjaelp_weeks")
    assert kh.refutable_from is not None and kh.refutable_from == kh.rows[next(
        i for i, r in enumerate(kh.rows) if r.power_refute >= 0.8)].vintage
    doc = plan.to_dict()
    assert doc["value_of_information"]["draws"] == 2000 and doc["decidable"]
    assert plan.ranking()[0] in names


# ---- alerts ---------------------------------------------------------------------------------------------------

def test_alert_fires_on_a_planted_deterioration():
    import yaml

    from pipeline.alerts import run_alerts
    from som_reference import asset

    doc = yaml.safe_load(asset("parameters", "housing_first_demo.yaml").read_text())
    spec = {"alerts": {"npv_kommune_probability_below": 0.5, "verdict_turns": "refuted", "severity": "error"}}
    healthy = [{"assumption": "success_rate", "label": "consistent"}]
    assert run_alerts(spec, healthy, doc) == ()
    # planted deterioration: the realised success rate collapsed and the update carried it into the proposal
    worse = {**doc, "success_rate": {**doc["success_rate"], "value": 0.04}}
    turned = [{"assumption": "success_rate", "label": "refuted-overestimated"}]
    history = [{"assumption": "success_rate", "run_id": "a", "data_vintage": "2022", "label": "consistent"},
               {"assumption": "success_rate", "run_id": "b", "data_vintage": "2023", "label": "refuted-overestimated"}]
    alerts = run_alerts(spec, turned, worse, history, "b")
    kinds = {a.kind: a for a in alerts}
    assert set(kinds) == {"npv_probability", "verdict"}
    assert kinds["npv_probability"].value < 0.5 and kinds["npv_probability"].severity == "error"
    assert "consistent → refuted-overestimated" in kinds["verdict"].message and kinds["verdict"].new


def test_alert_rules_are_strict():
    from som_models.alerts import parse_alerts
    from som_models.evaluation_spec import parse_evaluation_spec
    from som_models.parameters.schema import ParameterError

    with pytest.raises(ValueError, match="payer"):
        parse_alerts({"npv_borough_probability_below": 0.5})
    with pytest.raises(ValueError, match="probability"):
        parse_alerts({"npv_kommune_probability_below": 5})
    base = {"evaluation": "e", "intervention": "i", "parameters": "p.yaml"}
    with pytest.raises(ParameterError, match="verdict_turns"):
        parse_evaluation_spec({**base, "alerts": {"verdict_turns": "wrong"}})
    rules = parse_evaluation_spec({**base, "alerts": {"verdict_turns": ["refuted", "inconclusive"]}}).alerts
    assert rules.verdict_labels == ("refuted-overestimated", "refuted-underestimated", "inconclusive")


def test_case_alerts_check_is_defined_on_projections():
    from pipeline.defs.checks import build_extra_checks

    keys = {(k.asset_key.to_user_string(), k.name) for c in build_extra_checks() for k in c.check_keys}
    assert ("projections", "case_alerts") in keys
