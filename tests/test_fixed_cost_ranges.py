"""Fixed and one-off costs with a Monte Carlo range (``fixed_costs[k].range``), on the hand case of
tests/test_projection_decision.py (flat 10 % discounting: δ = 1, 1/1.1, 1/1.21, 1/1.331).

The coordinator line (−2,420 kr a year, kommune, 2026–2027, socialudvalget) gets ``range: [−3,630, −1,210]``; one
draw ``x`` per line applies to both its years, so per draw the total NPV moves by ``(x + 2,420) · (1/1.1 + 1/1.21)
= (x + 2,420) · 1.73554`` and nothing else moves (the fixed amounts are drawn after every other input: the other
draws are those of the document without the range).
"""

import numpy as np
import pytest

from som_models.parameters import ParameterError, parse_parameter_set
from som_models.planning.voi import projection_draws
from som_models.projection import compile_calculation, monte_carlo, project
from som_models.projection.optimism import apply_optimism_bias
from tests.test_projection_decision import hand

SPAN = 1 / 1.1 + 1 / 1.21


def ranged(lo=-3630.0, hi=-1210.0, dist="uniform", **over):
    doc = hand(**over)
    doc["fixed_costs"][1]["range"] = [lo, hi]
    doc["monte_carlo"] = {"range_distribution": dist}
    return doc


def test_the_range_is_checked_like_a_cost_lines():
    with pytest.raises(ParameterError, match=r"fixed_costs\[1\]\.range: \[-2000, -1000\] does not contain the amount -2420"):
        parse_parameter_set(ranged(-2000, -1000))
    with pytest.raises(ParameterError, match=r"fixed_costs\[1\]\.range: the high end 100 is positive"):
        parse_parameter_set(ranged(-3000, 100))
    assert parse_parameter_set(ranged()).fixed_costs[1].range == (-3630.0, -1210.0)


def test_each_draw_moves_the_npv_by_its_fixed_amount_only():
    plain = monte_carlo(parse_parameter_set(ranged() | {"fixed_costs": hand()["fixed_costs"]}), draws=4000, seed=3)
    mc = monte_carlo(parse_parameter_set(ranged()), draws=4000, seed=3)
    shift = (mc.npv_draws[:, -1] - plain.npv_draws[:, -1]) / SPAN   # x + 2,420 per draw
    assert shift.min() >= -3630 + 2420 - 1e-6 and shift.max() <= -1210 + 2420 + 1e-6
    assert shift.std() > 500  # uniform over 2,420 kr: sd 699
    assert shift.mean() == pytest.approx(0.0, abs=3 * 699 / np.sqrt(4000))  # uniform, centred on the amount
    # only the kommune moves; the point projection is unchanged
    assert np.allclose(mc.npv_draws[:, 1], plain.npv_draws[:, 1]) and np.allclose(mc.npv_draws[:, 2], plain.npv_draws[:, 2])
    assert project(parse_parameter_set(ranged())).npv["total"] == pytest.approx(2300, abs=1e-6)


def test_triangular_mean_and_the_udvalg_account():
    mc = monte_carlo(parse_parameter_set(ranged(-3630, -1210, "triangular")), draws=20000, seed=5)
    # triangular(−3,630, −2,420, −1,210) has mean −2,420: the mean NPV stays 2,300 within MC error (sd 494·1.7355)
    assert mc.mean["total"] == pytest.approx(2300, abs=3 * 494 * SPAN / np.sqrt(20000))
    acct = mc.udvalg["kommune/socialudvalget"]
    # the account is the coordinator line alone: −2,200 − 2,000 at the point, spread by the draws
    assert acct["mean"] == pytest.approx(-4200, abs=3 * 494 * SPAN / np.sqrt(20000))
    assert acct["p5"] < -4200 < acct["p95"] and acct["p95"] - acct["p5"] > 1000


def test_tornado_and_value_of_information_name_the_line():
    params = parse_parameter_set(ranged())
    mc = monte_carlo(params, draws=200, seed=1)
    row = next(r for r in mc.tornado if r.input == "fixed:fixed_costs[1] coordinator (2026–2027, kommune) (per year)")
    lo_q, hi_q = params.monte_carlo.tornado_percentiles
    lo_v, hi_v = -3630 + 2420 * lo_q / 100, -3630 + 2420 * hi_q / 100  # uniform quantiles
    assert (row.low_value, row.high_value) == pytest.approx((lo_v, hi_v))
    assert row.swing == pytest.approx((hi_v - lo_v) * SPAN)
    inputs, _ = projection_draws(params, draws=500, seed=2)
    name = "fixed:fixed_costs[1] coordinator (2026–2027, kommune)"  # the line's label, as cost lines are named
    assert name in inputs
    assert inputs[name].min() >= -3630 and inputs[name].max() <= -1210


def test_optimism_bias_scales_the_range():
    params = parse_parameter_set(ranged(optimism_bias={"costs": 0.5, "effects": 0.0, "source": "test"}))
    adjusted = apply_optimism_bias(params)
    assert adjusted.fixed_costs[1].range == (-3630 * 1.5, -1210 * 1.5)
    c = compile_calculation(adjusted)
    assert (c.fixed_lines[1].low, c.fixed_lines[1].high) == (-3630 * 1.5, -1210 * 1.5)
