"""The SØM calculation frame on cases small enough to check on paper."""

import pytest

from som_models.parameters import ParameterError, parse_parameter_set
from som_models.projection import discount_factors, project


def doc(**over):
    d = {
        "intervention": "x", "target_group": "tg", "start_year": 2020, "horizon_years": 4, "price_year": 2024,
        "course_years": 1, "cohorts": [{"year": 2020, "participants": 10}],
        "success_measure": {"name": "ok", "outcome": "y", "rule": "zero"},
        "success_rate": {"value": 0.5, "se": 0.1},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "consequences": {"item": [-2, -1]},
        "prices": {"item": {"kommune": 100, "stat": 50}},
    }
    d.update(over)
    return d


def test_hand_computed_npv_by_payer():
    p = project(parse_parameter_set(doc()))
    # 2020: costs 10 × −1000; 2021: −10·0.5·(−2)·price; 2022: −10·0.5·(−1)·price; FM 3.5 %.
    assert p.npv["kommune"] == pytest.approx(-10000 + 1000 / 1.035 + 500 / 1.035**2, abs=1e-9)
    assert p.npv["stat"] == pytest.approx(500 / 1.035 + 250 / 1.035**2, abs=1e-9)
    assert p.npv["region"] == 0
    assert p.npv["total"] == pytest.approx(-7850.5916, abs=1e-4)  # 1500/1.035 + 750/1.035² − 10000
    assert p.payback_year is None
    rows = {(r["year"], r["payer"], r["item"]): r["amount"] for r in p.rows.to_dicts()}
    assert rows == {(2020, "kommune", "intervention_cost"): -10000, (2021, "kommune", "item"): 1000,
                    (2021, "stat", "item"): 500, (2022, "kommune", "item"): 500, (2022, "stat", "item"): 250}


def test_payback_year_and_two_course_years():
    p = project(parse_parameter_set(doc(course_years=2, horizon_years=6, consequences={"item": [-20, -20]},
                                        costs=[{"course_year": 1, "payer": "kommune", "amount": -500},
                                               {"course_year": 2, "payer": "kommune", "amount": -500}],
                                        discounting="none")))
    # Costs 2020, 2021 (−5000 each); success in 2021; consequences 2022, 2023: +15000 per year (kommune+stat).
    assert p.npv["total"] == pytest.approx(-10000 + 2 * 15000)
    assert p.payback_year == 2022


def test_fm2021_discount_schedule_steps():
    f = discount_factors("fm2021", 80)
    assert f[0] == 1
    assert f[35] == pytest.approx(1.035**-35)
    assert f[36] == pytest.approx(1.035**-35 / 1.025)
    assert f[71] == pytest.approx(1.035**-35 * 1.025**-35 / 1.015)


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ParameterError, match="sucess_rate: unknown key"):
        parse_parameter_set({**doc(), "sucess_rate": 1})
    with pytest.raises(ParameterError, match=r"costs\[0\]\.payer"):
        parse_parameter_set(doc(costs=[{"course_year": 1, "payer": "county", "amount": -1}]))
    with pytest.raises(ParameterError, match="prices.other"):
        parse_parameter_set(doc(consequences={"item": [-1], "other": [-1]}))
