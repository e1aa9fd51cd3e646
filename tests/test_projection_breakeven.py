"""Break-even success rate and cost per participant per payer: hand-computed cases, and the frame agrees."""

import pytest

from som_models.parameters import parse_parameter_set
from som_models.projection import break_even, monte_carlo, project


def doc(**over):
    d = {
        "intervention": "be", "target_group": "tg", "start_year": 2020, "horizon_years": 4, "price_year": 2024,
        "course_years": 1, "cohorts": [{"year": 2020, "participants": 10}],
        "success_measure": {"name": "ok", "outcome": "y", "rule": "zero"},
        "success_rate": {"value": 0.5, "se": 0.1},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"item": [-20, -10]},
        "prices": {"item": {"kommune": 100, "stat": 50}}, "discounting": "none",
    }
    d.update(over)
    return d


def test_hand_computed_break_even_without_discounting():
    b = break_even(parse_parameter_set(doc()))
    s = b.success_rate
    # kommune: NPV(s) = −10 × 1,000 + s × 10 × (20 + 10) × 100 = −10,000 + 30,000 s → s* = 1/3
    assert (s["kommune"].status, s["kommune"].intercept, s["kommune"].slope) == ("break_even", -10_000, 30_000)
    assert s["kommune"].value == pytest.approx(1 / 3, abs=1e-12) and s["kommune"].reachable
    # stat: NPV(s) = 15,000 s → breaks even at s* = 0 (any success rate)
    assert (s["stat"].status, s["stat"].value, s["stat"].slope) == ("break_even", 0.0, 15_000)
    # total: −10,000 + 45,000 s → 2/9
    assert s["total"].value == pytest.approx(2 / 9, abs=1e-12)
    assert (s["region"].status, s["region"].value) == ("no_stake", None)
    c = b.cost_per_participant
    # kommune at s = 0.5 and zero cost: 15,000; the costs: −10,000 per 1,000 kr per participant → 1,500 kr
    assert (c["kommune"].status, c["kommune"].intercept, c["kommune"].slope) == ("break_even", 15_000, -10_000)
    assert c["kommune"].value == pytest.approx(1_500, abs=1e-9) and c["kommune"].current == 1_000
    # total: 22,500 at zero cost → 2,250 kr per participant
    assert c["total"].value == pytest.approx(2_250, abs=1e-9)
    assert (c["stat"].status, c["stat"].value) == ("no_cost", None)
    assert (c["region"].status, c["region"].value) == ("no_stake", None)


def test_hand_computed_break_even_fm2021_two_course_years():
    # Costs −600 in course years 1 and 2 (2020, 2021); success in 2021; consequences in 2022, 2023.
    # Discount factors 1/1.035^t (t = years after 2020).
    p = parse_parameter_set(doc(course_years=2, horizon_years=4, discounting="fm2021",
                                costs=[{"course_year": 1, "payer": "kommune", "amount": -600},
                                       {"course_year": 2, "payer": "kommune", "amount": -600}]))
    b = break_even(p)
    a = -6_000 - 6_000 / 1.035
    slope = 10 * (20 * 100 / 1.035**2 + 10 * 100 / 1.035**3)
    assert b.success_rate["kommune"].intercept == pytest.approx(a, abs=1e-9)
    assert b.success_rate["kommune"].slope == pytest.approx(slope, abs=1e-9)
    assert b.success_rate["kommune"].value == pytest.approx(-a / slope, abs=1e-12)
    # at s* the frame (a separate implementation) gives NPV 0 for the kommune, to the krone
    assert project(p, success_rate=b.success_rate["kommune"].value).npv["kommune"] == pytest.approx(0, abs=1e-6)
    assert project(p, success_rate=b.success_rate["total"].value).npv["total"] == pytest.approx(0, abs=1e-6)
    # cost per participant: 1,200 kr now; NPV at zero cost = 0.5 × slope
    c = b.cost_per_participant["kommune"]
    assert c.current == 1_200
    assert c.value == pytest.approx(1_200 * (0.5 * slope) / -a, abs=1e-9)


def test_no_break_even_when_success_costs_the_payer_or_does_not_move_it():
    # Success makes the stat pay more (units +1 of a stat-priced item): NPV falls with success, no s*.
    p = parse_parameter_set(doc(consequences={"item": [-20, -10], "study": [1, 1]},
                                prices={"item": {"kommune": 100}, "study": {"stat": 300}},
                                costs=[{"course_year": 1, "payer": "kommune", "amount": -1000},
                                       {"course_year": 1, "payer": "region", "amount": -100}]))
    b = break_even(p)
    st = b.success_rate["stat"]
    assert (st.status, st.value, st.slope, st.ceiling) == ("falls_with_success", None, -6_000, 0.0)
    assert "falls" in st.describe() and "s ≤ 0" in st.describe()  # a = 0: breaks even only with no success
    # the region pays a cost no success changes: no effect; at zero cost its NPV is 0, so it breaks even at 0 kr
    rg = b.success_rate["region"]
    assert (rg.status, rg.value, rg.intercept) == ("no_effect", None, -1_000)
    assert (b.cost_per_participant["region"].status, b.cost_per_participant["region"].value) == ("break_even", 0.0)
    # the kommune breaks even at s* = 1,000 × 10 / 30,000; the stat bears no cost line
    assert b.success_rate["kommune"].value == pytest.approx(1 / 3, abs=1e-12)
    assert (b.cost_per_participant["stat"].status, b.cost_per_participant["stat"].value) == ("no_cost", None)


def test_success_rate_out_of_reach_is_reported_not_clipped():
    b = break_even(parse_parameter_set(doc(costs=[{"course_year": 1, "payer": "kommune", "amount": -6000}])))
    # kommune: −60,000 + 30,000 s → s* = 2: above 1
    assert b.success_rate["kommune"].value == pytest.approx(2.0, abs=1e-12)
    assert b.success_rate["kommune"].reachable is False
    assert "not reachable" in b.success_rate["kommune"].describe()
    # at s = 0.5: 15,000 − 60,000 < 0 — and at zero cost 15,000 ≥ 0 → 1,500 kr
    assert b.cost_per_participant["kommune"].value == pytest.approx(1_500, abs=1e-9)


def test_not_even_at_zero_cost():
    # the kommune's consequences cost it money (positive units priced to the kommune) → no cost breaks even
    b = break_even(parse_parameter_set(doc(consequences={"item": [5]}, prices={"item": {"kommune": 100}})))
    c = b.cost_per_participant["kommune"]
    assert (c.status, c.value, c.intercept) == ("not_even_at_zero_cost", None, -2_500)


def test_monte_carlo_probability_only_for_payers_with_a_stake():
    mc = monte_carlo(parse_parameter_set(doc()), draws=2000, seed=3)
    assert mc.no_stake == ("region",)
    assert mc.prob_break_even["region"] is None
    assert mc.prob_break_even["stat"] == 1.0 and mc.prob_break_even["kommune"] is not None
    assert mc.to_dict()["prob_break_even"]["region"] is None and mc.to_dict()["no_stake"] == ["region"]
    assert "no stake" in mc.summary()
