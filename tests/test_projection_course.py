"""Course-year effects in the projection: a hand-computed case, exact to the krone, and the Monte Carlo draws them."""

import copy

import numpy as np
import pytest

from som_models.parameters import parse_parameter_set
from som_models.projection import compile_calculation, monte_carlo, project


def doc(course=True):
    """Two cohorts (2020: 10, 2021: 5 participants), two course years, one item priced 100 kommune / 50 stat."""
    d = {
        "intervention": "course", "target_group": "tg", "start_year": 2020, "horizon_years": 4, "price_year": 2020,
        "course_years": 2, "cohorts": [{"year": 2020, "participants": 10}, {"year": 2021, "participants": 5}],
        "success_rate": {"value": 0.5},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"nights": {"kind": "causal", "units": [-4]}},
        "prices": {"nights": {"kommune": 100, "stat": 50}},
        "discounting": "fm2021",
    }
    if course:
        d["consequences"]["nights"]["course"] = {"kind": "causal", "units": [-2, -1], "se": [1, 0.5]}
    return d


def test_hand_computed_projection_with_course_year_effects():
    """By hand (amounts per year; course years per participant, no success rate; consequence year 1 after the course):

    cohort 2020 (N = 10): 2020 cost −10·1000 = −10 000 (kommune); course year 1: −10·(−2)·100 = +2000 kommune,
    −10·(−2)·50 = +1000 stat; 2021 course year 2: +1000 kommune, +500 stat; 2022 consequence year 1:
    −10·0.5·(−4)·100 = +2000 kommune, +1000 stat.
    cohort 2021 (N = 5): 2021 cost −5000; course year 1 +1000 / +500; 2022 course year 2 +500 / +250; 2023
    consequence year 1 +1000 / +500.
    Per year (kommune; stat): 2020 −8000; 1000 — 2021 −3000; 1000 — 2022 2500; 1250 — 2023 1000; 500.
    Discounted at 3.5 % (fm2021, δ_t = 1.035^−t):
    kommune −8000 − 3000/1.035 + 2500/1.035² + 1000/1.035³ = −8000 − 2898.55 + 2333.78 + 901.94 = −7662.83;
    stat 1000 + 1000/1.035 + 1250/1.035² + 500/1.035³ = 1000 + 966.18 + 1166.89 + 450.97 = 3584.04.
    """
    p = project(parse_parameter_set(doc()))
    by_year = {(r["year"], r["payer"]): 0.0 for r in p.rows.to_dicts()}
    for r in p.rows.to_dicts():
        by_year[(r["year"], r["payer"])] += r["amount"]
    assert by_year == {(2020, "kommune"): -8000, (2020, "stat"): 1000, (2021, "kommune"): -3000, (2021, "stat"): 1000,
                       (2022, "kommune"): 2500, (2022, "stat"): 1250, (2023, "kommune"): 1000, (2023, "stat"): 500}
    assert round(p.npv["kommune"], 2) == -7662.83
    assert round(p.npv["stat"], 2) == 3584.04
    assert round(p.npv["total"], 2) == round(-7662.83 + 3584.04, 2)
    # the course-year part does not depend on the success rate: with s = 0 only the course years and costs remain
    # (kommune −8000 − 3000/1.035 + 500/1.035² = −10431.80; stat 1000 + 1000/1.035 + 250/1.035² = 2199.56)
    zero = project(parse_parameter_set(doc()), success_rate=0.0)
    assert round(zero.npv["kommune"], 2) == -10431.80 and round(zero.npv["stat"], 2) == 2199.56
    assert any("effects during the course" in n for n in p.notes)


def test_without_a_course_profile_nothing_changes():
    """Backward compatible: no ``course`` = no effect during the course (the consequence years start after it)."""
    p = project(parse_parameter_set(doc(course=False)))
    # kommune −10000 − 5000/1.035 + 2000/1.035² + 1000/1.035³; stat 1000/1.035² + 500/1.035³
    assert round(p.npv["kommune"], 2) == -12061.95 and round(p.npv["stat"], 2) == 1384.48
    assert not any("during the course" in n for n in p.notes)


def test_monte_carlo_draws_the_course_years():
    params = parse_parameter_set(doc())
    det = project(params)
    mc = monte_carlo(params, draws=4000, seed=5)
    assert mc.deterministic_npv["total"] == pytest.approx(det.npv["total"], abs=1e-6)
    total = mc.npv_draws[:, -1]
    assert total.std() > 0  # only the course years are uncertain (the success rate and consequences have no se)
    # linear in the course units: the mean NPV is the point NPV; the draws' SD is that of the course part:
    # N-weighted discounted course units × (100 + 50) with one z per item (item correlation)
    d = np.array([1 / 1.035 ** t for t in range(4)])
    sd = 150 * abs(10 * 1 * d[0] + 10 * 0.5 * d[1] + 5 * 1 * d[1] + 5 * 0.5 * d[2])
    assert total.mean() == pytest.approx(det.npv["total"], abs=4 * sd / np.sqrt(4000))
    assert total.std() == pytest.approx(sd, rel=0.05)
    assert any(r.input.startswith("course:nights") for r in mc.tornado)
    c = compile_calculation(params)
    assert c.course_units.tolist() == [[-2.0, -1.0]]


def test_a_course_profile_without_uncertainty_gives_the_same_draws_as_before():
    """A document whose course profile has no se draws exactly what it drew before course-year effects existed
    (the course z are drawn only when some course se is positive), shifted by the course part."""
    d = doc()
    d["success_rate"]["se"] = 0.1
    without = copy.deepcopy(d)
    del without["consequences"]["nights"]["course"]
    d["consequences"]["nights"]["course"].pop("se")
    a = monte_carlo(parse_parameter_set(d), draws=200, seed=9).npv_draws
    b = monte_carlo(parse_parameter_set(without), draws=200, seed=9).npv_draws
    shift = project(parse_parameter_set(d)).npv["total"] - project(parse_parameter_set(without)).npv["total"]
    assert np.allclose(a[:, -1] - b[:, -1], shift)
