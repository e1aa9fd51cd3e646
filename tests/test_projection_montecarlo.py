"""Monte Carlo: zero variance reproduces the deterministic frame; the vectorised engine agrees with the
line-by-line projection at drawn inputs; seeding; break-even probability against a closed form; tornado."""

import copy
from statistics import NormalDist

import numpy as np
import pytest

from som_models.parameters import PAYERS, parse_parameter_set
from som_models.projection import compile_calculation, monte_carlo, project
from som_models.projection.engine import evaluate
from som_models.projection.montecarlo import CHUNK, _Inputs


def rich_doc(**over):
    """Two cohorts, two course years, staircase and expensive-case refusion, tax, committees, avoided costs."""
    d = {
        "intervention": "mc", "target_group": "tg", "start_year": 2022, "horizon_years": 8, "price_year": 2022,
        "course_years": 2, "cohorts": [{"year": 2022, "participants": 30}, {"year": 2023, "participants": 20}],
        "success_rate": {"value": 0.3},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -60000, "committee": "social"},
                  {"course_year": 2, "payer": "region", "amount": -5000}],
        "avoided_costs": [{"course_year": 2, "payer": "kommune", "amount": 4000}],
        "consequences": {
            "weeks": {"units": [-12, -8, -3]},
            "placement_days": {"units": [-150, -60]},
            "gp": {"units": [1, 0.5]},
            "earnings": {"units": [80000, 90000, 60000]},
        },
        "prices": {
            "weeks": {"kommune": 2900},
            "placement_days": {"kommune": {"boern": 2500, "skole": 500}},
            "gp": {"region": 352, "kommune": 110},
        },
        "refusion": {
            "staircase": {"items": ["weeks"], "weeks_before": [0, 20, 50]},
            "expensive_cases": {"items": ["placement_days"], "case_expense": [2_300_000, 1_000_000]},
        },
        "tax": {"rates": {"kommune": 0.24, "stat": 0.18}, "tilbageloeb": 0.15, "taxable": {"earnings": 1, "weeks": 2900}},
    }
    d.update(over)
    return d


def with_uncertainty(d):
    d = copy.deepcopy(d)
    d["success_rate"]["se"] = 0.08
    d["consequences"]["weeks"]["se"] = [4, 4, 2]
    d["consequences"]["placement_days"]["se"] = [60, 40]
    d["consequences"]["earnings"]["se"] = [20000, 20000, 20000]
    d["prices"]["weeks"]["range"] = [0.8, 1.3]
    d["prices"]["placement_days"]["range"] = [0.9, 1.1]
    d["costs"][0]["range"] = [-80000, -50000]
    d["avoided_costs"][0]["range"] = [2000, 6000]
    return d


def test_zero_variance_monte_carlo_equals_the_deterministic_result():
    params = parse_parameter_set(rich_doc())
    det = project(params)
    mc = monte_carlo(params, draws=500, seed=3)
    for k in (*PAYERS, "total"):
        assert mc.deterministic_npv[k] == pytest.approx(det.npv[k], abs=1e-6)
        assert np.allclose(mc.npv_draws[:, list((*PAYERS, "total")).index(k)], det.npv[k], atol=1e-6, rtol=0)
        assert all(v == pytest.approx(det.npv[k], abs=1e-6) for v in mc.percentiles[k].values())
        stake = k == "total" or bool(det.rows.filter(det.rows["payer"] == k).height)
        assert mc.prob_break_even[k] == ((1.0 if det.npv[k] >= 0 else 0.0) if stake else None)
    assert mc.tornado == ()
    assert mc.prob_payback == (1.0 if det.payback_year else 0.0)
    assert mc.median_payback_year == det.payback_year


def with_course(d):
    """Course-year effects (per participant) on a refunded, an expensive-case and a taxed item, with SEs."""
    d = copy.deepcopy(d)
    d["consequences"]["weeks"]["course"] = {"units": [-6, -4], "se": [2, 2]}
    d["consequences"]["placement_days"]["course"] = {"units": [-40, -20], "se": [10, 10]}
    d["consequences"]["earnings"]["course"] = {"units": [20000, 30000], "se": [5000, 5000]}
    return d


@pytest.mark.parametrize("course", [False, True])
@pytest.mark.parametrize("correlation", ["independent", "item"])
def test_vectorised_engine_matches_the_line_by_line_projection_at_drawn_inputs(course, correlation):
    d = with_uncertainty(rich_doc())
    if course:
        d = with_course(d)
    params = parse_parameter_set(d)
    c = compile_calculation(params)
    s, units, pf, costs, course_units, _ = _Inputs(c, "triangular").draw(np.random.default_rng(11), 6, correlation)
    assert (course_units is None) == (not course)
    ev = evaluate(c, s, units, pf, costs, course_units)
    for k in range(6):
        dk = copy.deepcopy(d)
        dk["success_rate"] = {"value": float(s[k])}
        for i, item in enumerate(c.items):
            n = len(dk["consequences"][item]["units"])
            had = dk["consequences"][item].get("course")
            dk["consequences"][item] = {"units": [float(x) for x in units[k, i, :n]]}
            if had is not None:
                dk["consequences"][item]["course"] = {"units": [float(x) for x in course_units[k, i]]}
            if item in dk["prices"]:
                for payer, v in list(dk["prices"][item].items()):
                    if payer == "kommune" and isinstance(v, dict):
                        dk["prices"][item][payer] = {name: kr * float(pf[k, i]) for name, kr in v.items()}
                    elif payer in PAYERS:
                        dk["prices"][item][payer] = v * float(pf[k, i])
                dk["prices"][item].pop("range", None)
        lines = dk["costs"] + dk["avoided_costs"]
        for line, amount in zip(lines, costs[k], strict=False):
            line["amount"] = float(amount)
            line.pop("range", None)
        det = project(parse_parameter_set(dk))
        for n, payer in enumerate(PAYERS):
            assert ev.npv[k, n] == pytest.approx(det.npv[payer], rel=1e-10, abs=1e-6)
        assert ev.yearly[k].sum(axis=0) == pytest.approx(np.array(det.cumulative["amount"].to_list()), rel=1e-10, abs=1e-6)


def test_seeded_reproducible_and_chunk_independent():
    params = parse_parameter_set(with_uncertainty(rich_doc()))
    a = monte_carlo(params, draws=2000, seed=5)
    b = monte_carlo(params, draws=2000, seed=5)
    c = monte_carlo(params, draws=2000, seed=6)
    assert np.array_equal(a.npv_draws, b.npv_draws)
    assert not np.array_equal(a.npv_draws, c.npv_draws)
    longer = monte_carlo(params, draws=CHUNK + 10, seed=5)
    first = monte_carlo(params, draws=CHUNK, seed=5)
    assert np.array_equal(longer.npv_draws[:CHUNK], first.npv_draws)  # a result depends on seed and draws only
    q = a.percentiles["total"]
    assert q[5.0] <= q[25.0] <= q[50.0] <= q[75.0] <= q[95.0]
    assert np.allclose(a.npv_draws[:, :3].sum(axis=1), a.npv_draws[:, 3])


def test_break_even_probability_matches_the_closed_form():
    # NPV = −10 × 1,100 + 10 × s × 2,000 (no discounting) is linear in s ~ N(0.5, 0.1):
    # break-even at s* = 0.55, so P(NPV ≥ 0) = 1 − Φ((0.55 − 0.5)/0.1) = 1 − Φ(0.5) = 0.3085.
    d = {"intervention": "be", "target_group": "tg", "start_year": 2024, "horizon_years": 2, "price_year": 2024,
         "cohorts": [{"year": 2024, "participants": 10}], "success_rate": {"value": 0.5, "se": 0.1},
         "costs": [{"course_year": 1, "payer": "kommune", "amount": -1100}], "consequences": {"x": [-1]},
         "prices": {"x": {"kommune": 2000}}, "discounting": "none"}
    mc = monte_carlo(parse_parameter_set(d), draws=200_000, seed=1)
    assert mc.prob_break_even["total"] == pytest.approx(1 - NormalDist().cdf(0.5), abs=0.005)
    assert mc.prob_break_even["region"] is None and mc.no_stake == ("region", "stat")  # nothing falls on them
    assert mc.percentiles["total"][50.0] == pytest.approx(-11_000 + 10_000, abs=60)
    # Tornado: the success rate at its 5th / 95th percentile, 0.5 ∓ 1.645 × 0.1.
    (row,) = mc.tornado
    lo, hi = 0.5 + 0.1 * NormalDist().inv_cdf(0.05), 0.5 + 0.1 * NormalDist().inv_cdf(0.95)
    assert (row.input, row.low_value, row.high_value) == ("success_rate", pytest.approx(lo), pytest.approx(hi))
    assert row.npv_low == pytest.approx(-11_000 + 20_000 * lo) and row.swing == pytest.approx(20_000 * (hi - lo))


def test_tornado_rows_match_one_way_projections_and_are_sorted():
    d = with_uncertainty(rich_doc())
    params = parse_parameter_set(d)
    mc = monte_carlo(params, draws=200, seed=2)
    # Uncertain: the success rate, three consequence items with SEs, two price ranges, two cost ranges.
    assert {r.input for r in mc.tornado} == {
        "success_rate", "consequence:weeks (total units)", "consequence:placement_days (total units)",
        "consequence:earnings (total units)", "price:weeks", "price:placement_days",
        "cost:costs[0] intervention_cost (course year 1, kommune)", "cost:avoided_costs[0] avoided_cost (course year 2, kommune)"}
    assert [r.swing for r in mc.tornado] == sorted((r.swing for r in mc.tornado), reverse=True)
    price = next(r for r in mc.tornado if r.input == "price:weeks")
    # Triangular(0.8, 1, 1.3): the 5th percentile is 0.8 + √(0.05 × 0.5 × 0.2) = 0.8707.
    assert price.low_value == pytest.approx(0.8 + (0.05 * 0.5 * 0.2) ** 0.5)
    low_doc = copy.deepcopy(d)
    low_doc["prices"]["weeks"] = {"kommune": 2900 * price.low_value}
    assert price.npv_low == pytest.approx(project(parse_parameter_set(low_doc)).npv["total"], rel=1e-9)
    cost = next(r for r in mc.tornado if r.input.startswith("cost:costs[0]"))
    assert -80_000 < cost.low_value < cost.high_value < -50_000


def test_success_rate_draws_stay_in_the_unit_interval():
    d = rich_doc(success_rate={"value": 0.05, "se": 0.5})
    c = compile_calculation(parse_parameter_set(d))
    s, *_ = _Inputs(c, "uniform").draw(np.random.default_rng(0), 5000, "item")
    assert s.min() >= 0 and s.max() <= 1 and (s == 0).any()
