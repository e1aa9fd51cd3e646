"""Decision aids: one-off and fixed costs, named scenarios, discount sensitivity, optimism bias, cash view.

The hand case (HAND): 10 participants starting 2025, one course year, s = 0.5, a flat 10 % discount rate
(δ = 1, 1/1.1, 1/1.21, 1/1.331), costs −1,000 kr per participant (kommune), units [−20, −11] at 110 kr (kommune)
and 55 kr (stat); fixed costs: a one-off −5,000 kr (kommune, 2025), −2,420 kr a year (kommune, 2026–2027) and a
one-off −1,210 kr (region, 2027). Discounted:

  kommune  2025: −10,000 − 5,000            = −15,000
           2026: 5·20·110/1.1 − 2,420/1.1   = 10,000 − 2,200 = 7,800
           2027: 5·11·110/1.21 − 2,420/1.21 = 5,000 − 2,000  = 3,000      NPV −4,200
  region   2027: −1,210/1.21                                               NPV −1,000
  stat     2026: 5·20·55/1.1 = 5,000; 2027: 5·11·55/1.21 = 2,500           NPV  7,500
  total    −15,000, +12,800 (cum −2,200), +4,500 (cum 2,300 → payback 2027)  NPV 2,300
"""

import json

import numpy as np
import pytest
import yaml
from openpyxl import load_workbook
from typer.testing import CliRunner

from pipeline.cli import app
from som_models.parameters import ParameterError, parse_parameter_set
from som_models.projection import break_even, compile_calculation, monte_carlo, project
from som_models.projection.cashview import cash_view
from som_models.projection.decision import decision_aids
from som_models.projection.engine import base_inputs, evaluate
from som_models.projection.scenarios import scenario_table
from som_models.projection.sensitivity import discount_sensitivity, parse_schedules

runner = CliRunner()


def hand(**over):
    d = {
        "intervention": "hand", "target_group": "tg", "start_year": 2025, "horizon_years": 4, "price_year": 2025,
        "course_years": 1, "cohorts": [{"year": 2025, "participants": 10}],
        "success_rate": {"value": 0.5},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000}],
        "fixed_costs": [
            {"item": "implementation", "payer": "kommune", "amount": -5000, "year": 2025},
            {"item": "coordinator", "payer": "kommune", "amount": -2420, "years": [2026, 2027],
             "committee": "socialudvalget"},
            {"payer": "region", "amount": -1210, "year": 2027},
        ],
        "consequences": {"weeks": {"kind": "causal", "units": [-20, -11]}},
        "prices": {"weeks": {"kommune": 110, "stat": 55}},
        "discounting": [{"from_year": 1, "rate": 0.1}],
    }
    d.update(over)
    return d


def krone(x):
    return int(round(x))


def test_one_off_and_fixed_costs_hand_case_exact_to_the_krone():
    params = parse_parameter_set(hand())
    assert [f.one_off for f in params.fixed_costs] == [True, False, True]
    p = project(params)
    assert {k: krone(v) for k, v in p.npv.items()} == {"kommune": -4200, "region": -1000, "stat": 7500, "total": 2300}
    assert p.payback_year == 2027
    # PV of the intervention costs: −10,000 − 5,000 − 2,200 − 2,000 − 1,000
    assert krone(p.pv_costs) == -20200
    assert p.roi == pytest.approx(2300 / 20200, rel=1e-12)
    rows = {(r["year"], r["payer"], r["item"]): r["amount"] for r in p.rows.iter_rows(named=True)}
    assert rows[(2025, "kommune", "implementation")] == -5000
    assert rows[(2026, "kommune", "coordinator")] == rows[(2027, "kommune", "coordinator")] == -2420
    assert rows[(2027, "region", "one_off_cost")] == -1210
    assert krone(p.npv_by_committee["socialudvalget"]) == -4200  # −2,200 − 2,000
    # the vectorised engine (Monte Carlo, break-even) carries the same fixed costs
    c = compile_calculation(params)
    ev = evaluate(c, *base_inputs(c))
    assert ev.npv[0].tolist() == pytest.approx([p.npv["kommune"], p.npv["region"], p.npv["stat"]], abs=1e-9)
    mc = monte_carlo(params, draws=50, seed=1)
    assert mc.mean["total"] == pytest.approx(2300, abs=1e-6)
    assert mc.prob_break_even["region"] == 0.0  # the region pays a one-off cost: it has a stake


def test_break_even_stays_right_with_fixed_costs():
    b = break_even(parse_parameter_set(hand()))
    s, c = b.success_rate, b.cost_per_participant
    # kommune: a = −10,000 − 5,000 − 2,200 − 2,000 = −19,200; b = 2 · (10,000 + 5,000) = 30,000 → s* = 0.64
    assert (krone(s["kommune"].intercept), krone(s["kommune"].slope)) == (-19200, 30000)
    assert s["kommune"].value == pytest.approx(0.64, abs=1e-12)
    # total: a = −20,200, b = 2 · (15,000 + 7,500) = 45,000
    assert s["total"].value == pytest.approx(20200 / 45000, abs=1e-12)
    # region: only a fixed cost, the success rate does not move it
    assert s["region"].status == "no_effect" and c["region"].status == "no_cost"
    # cost per participant: kommune NPV at zero per-participant cost = −4,200 + 10,000 = 5,800 (fixed costs stay);
    # the per-participant costs are −10,000 → 1,000 · 5,800 / 10,000 = 580 kr
    assert (krone(c["kommune"].intercept), krone(c["kommune"].slope)) == (5800, -10000)
    assert c["kommune"].value == pytest.approx(580, abs=1e-9)
    assert c["total"].value == pytest.approx(1230, abs=1e-9)  # 1,000 · 12,300 / 10,000
    # NPV at the break-even values is 0 (the line-by-line frame)
    assert project(parse_parameter_set(hand()), success_rate=0.64).npv["kommune"] == pytest.approx(0, abs=1e-6)
    at_cost = hand(costs=[{"course_year": 1, "payer": "kommune", "amount": -580}])
    assert project(parse_parameter_set(at_cost)).npv["kommune"] == pytest.approx(0, abs=1e-6)


def test_fixed_costs_carry_their_udvalg_for_any_payer_in_the_ledger():
    from som_models.projection import ledger

    doc = hand()
    doc["fixed_costs"].append({"item": "prison_programme", "payer": "stat", "amount": -1100, "year": 2026,
                               "committee": "kriminalforsorg"})
    led = ledger(parse_parameter_set(doc))
    # −1,100 in 2026 (t = 1) at 10 %: −1,000; the kommune coordinator: −2,420/1.1 − 2,420/1.21 = −4,200
    assert krone(led.npv["stat/kriminalforsorg"]) == -1000
    assert krone(led.npv["kommune/socialudvalget"]) == -4200
    # a payer's accounts add up to the payer
    p = project(parse_parameter_set(doc))
    for payer in ("kommune", "region", "stat"):
        assert sum(v for k, v in led.npv.items() if k.startswith(payer + "/")) == pytest.approx(p.npv[payer], abs=1e-6)


def test_a_fixed_cost_quoted_in_another_price_year_is_converted():
    d = hand(fixed_costs=[{"payer": "kommune", "amount": -1000, "year": 2025, "price_year": 2024}],
             price_index={2024: 100, 2025: 102})
    p = project(parse_parameter_set(d))
    rows = {(r["year"], r["item"]): r["amount"] for r in p.rows.iter_rows(named=True)}
    assert rows[(2025, "one_off_cost")] == pytest.approx(-1020, abs=1e-9)


@pytest.mark.parametrize("fixed, message", [
    ({"payer": "kommune", "amount": -1, "year": 2030}, r"fixed_costs\[0\]\.year: 2030–2030 is outside the horizon"),
    ({"payer": "kommune", "amount": -1, "years": [2026, 2031]}, r"fixed_costs\[0\]\.years: 2026–2031 is outside"),
    ({"payer": "kommune", "amount": -1, "years": [2027, 2026]}, r"fixed_costs\[0\]\.years: first year 2027 is after"),
    ({"payer": "kommune", "amount": -1}, r"fixed_costs\[0\]: give either year"),
    ({"payer": "kommune", "amount": -1, "year": 2025, "years": [2025, 2026]}, r"fixed_costs\[0\]: give either year"),
    ({"payer": "kommune", "amount": 100, "year": 2025}, r"fixed_costs\[0\]\.amount: 100 is positive"),
    ({"payer": "kommune", "amount": -1, "year": 2025, "cashable": "no"}, r"fixed_costs\[0\]\.cashable: expected true"),
    ({"payer": "kommune", "amount": -1, "year": 2025, "when": 1}, r"fixed_costs\[0\]\.when: unknown key"),
    ({"payer": "kommune", "amount": -1, "year": 2025, "item": "weeks"}, r"fixed_costs\[0\]\.item: 'weeks' is also"),
])
def test_bad_fixed_costs_name_the_path(fixed, message):
    with pytest.raises(ParameterError, match=message):
        compile_calculation(parse_parameter_set(hand(fixed_costs=[fixed])))


SCENARIOS = {
    "pessimistic": {"description": "fewer successes, half the effect",
                    "set": {"success_rate.value": 0.3}, "scale": {"consequences": 0.5}},
    "optimistic": {"set": {"costs[0].amount": -500, "fixed_costs[1].amount": -1210}},
}


def test_scenario_table_hand_case_exact_to_the_krone():
    params = parse_parameter_set(hand(scenarios=SCENARIOS))
    table = scenario_table(params)
    assert table.names == ("base", "pessimistic", "optimistic")
    base, pess, opt = table.columns
    assert {k: krone(v) for k, v in base.npv.items()} == {"kommune": -4200, "region": -1000, "stat": 7500, "total": 2300}
    # pessimistic: N·s = 3, units [−10, −5.5]: kommune 3·10·110/1.1 + 3·5.5·110/1.21 = 3,000 + 1,500 → −19,200 + 4,500
    assert {k: krone(v) for k, v in pess.npv.items()} == {"kommune": -14700, "region": -1000, "stat": 2250,
                                                           "total": -13450}
    assert pess.success_rate == 0.3 and pess.description == "fewer successes, half the effect"
    # total by year: −15,000; +2,300; −750 → never paid back
    assert pess.payback["total"] is None
    # optimistic: costs −5,000, coordinator −1,100 − 1,000: kommune −5,000 − 5,000 − 2,100 + 15,000 = 2,900
    assert {k: krone(v) for k, v in opt.npv.items()} == {"kommune": 2900, "region": -1000, "stat": 7500, "total": 9400}
    assert opt.payback["total"] == 2026 and base.payback["total"] == 2027
    assert pess.describe_payback("total") == "never" and base.describe_payback("stat") == "no net cost"
    assert base.describe_payback("kommune") == "never" and base.bears_cost == {"kommune": True, "region": True,
                                                                               "stat": False, "total": True}
    assert opt.break_even.success_rate["kommune"].value == pytest.approx(12100 / 30000, abs=1e-12)
    assert pess.break_even.success_rate["kommune"].value == pytest.approx(19200 / 15000, abs=1e-12)
    wide = table.to_polars()
    npv_total = wide.filter((wide["measure"] == "npv") & (wide["payer"] == "total")).row(0, named=True)
    assert (krone(npv_total["base"]), krone(npv_total["pessimistic"]), krone(npv_total["optimistic"])) == (
        2300, -13450, 9400)
    # the stated base document is not changed by its scenarios
    assert params.costs[0].amount == -1000 and params.success_rate.value == 0.5


@pytest.mark.parametrize("scenarios, message", [
    ({"p": {"sett": {"success_rate.value": 0.3}}}, r"scenarios\.p\.sett: unknown key"),
    ({"p": {"description": "nothing"}}, r"scenarios\.p: a scenario needs set and/or scale"),
    ({"base": {"set": {"success_rate.value": 0.3}}}, r"scenarios\.base: a scenario needs a name other than 'base'"),
    ({"p": {"set": {"costs[5].amount": -1}}}, r"scenarios\.p\.set\.costs\[5\]\.amount: costs\[5\] does not exist"),
    ({"p": {"set": {"successrate.value": 0.3}}}, r"scenarios\.p\.set\.successrate\.value: successrate does not exist"),
    ({"p": {"set": {"success_rate.valu": 0.3}}},
     r"scenarios\.p \(the document with its overrides\): success_rate\.valu: unknown key"),
    ({"p": {"set": {"success_rate.value": 1.5}}}, r"scenarios\.p .*success_rate\.value: a share must be between"),
    ({"p": {"set": {"costs[0].amount": 10}}}, r"scenarios\.p .*costs\[0\]\.amount: 10 is positive"),
    ({"p": {"scale": {"prizes": 0.9}}}, r"scenarios\.p\.scale\.prizes: unknown scale target"),
    ({"p": {"scale": {"prices.nothing": 0.9}}}, r"scenarios\.p\.scale\.prices\.nothing: prices\.nothing does not"),
    ({"p": {"scale": {"costs": -1}}}, r"scenarios\.p\.scale\.costs: a scale factor must be a finite number ≥ 0"),
    ({"p": {"set": {"scenarios.q": {}}}}, r"scenarios\.p\.set\.scenarios\.q: a scenario cannot override scenarios"),
    ({"p": {"set": {"costs.x": 1}}}, r"scenarios\.p\.set\.costs\.x: costs is not a mapping"),
    ({"p": []}, r"scenarios\.p: expected a mapping"),
])
def test_bad_scenarios_name_the_path(scenarios, message):
    with pytest.raises(ParameterError, match=message):
        parse_parameter_set(hand(scenarios=scenarios))


def test_scenario_scale_targets_hand_case():
    d = hand(scenarios={"dear": {"scale": {"prices.weeks": 2, "fixed_costs": 0, "success_rate": 0.5}}})
    (dear,) = parse_parameter_set(d).scenarios
    assert dear.params.prices["weeks"] == {"kommune": 220, "stat": 110}
    assert [f.amount for f in dear.params.fixed_costs] == [0, 0, 0]
    # s = 0.25, prices doubled: kommune savings = 15,000 (same), costs −10,000 → 5,000
    assert krone(project(dear.params).npv["kommune"]) == 5000


def test_discount_sensitivity_hand_case():
    params = parse_parameter_set(hand(discounting="none"))
    sens = discount_sensitivity(params, parse_schedules("10,fm2021,none,3.5"))
    labels = [r.label for r in sens.rows]
    # the document's own schedule (none) comes first and is not repeated
    assert labels == ["document (none)", "flat 10 %", "fm2021", "flat 3.5 %"]
    by = {r.label: r for r in sens.rows}
    # undiscounted kommune: −15,000 + (11,000 − 2,420) + (6,050 − 2,420) = −2,790
    assert krone(by["document (none)"].npv["kommune"]) == -2790
    assert {k: krone(v) for k, v in by["flat 10 %"].npv.items()} == {"kommune": -4200, "region": -1000, "stat": 7500,
                                                                    "total": 2300}
    assert by["flat 10 %"].payback_year == 2027
    # fm2021 over four years is 3.5 % each year: kommune −15,000 + 8,580/1.035 + 3,630/1.035²
    assert by["fm2021"].npv["kommune"] == pytest.approx(-15000 + 8580 / 1.035 + 3630 / 1.035 ** 2, abs=1e-9)
    assert by["fm2021"].npv == pytest.approx(by["flat 3.5 %"].npv, abs=1e-9)
    # the default set: fm2021, fm2013, 0 %, 2 %, 3.5 %, 4 % after the document's
    default = [r.label for r in discount_sensitivity(parse_parameter_set(hand())).rows]
    assert default == ["document (custom)", "fm2021", "fm2013", "none", "flat 2 %", "flat 3.5 %", "flat 4 %"]
    fm2013 = next(r for r in discount_sensitivity(params).rows if r.label == "fm2013")
    assert fm2013.npv["stat"] == pytest.approx(5500 / 1.04 + 3025 / 1.04 ** 2, abs=1e-9)


@pytest.mark.parametrize("text, message", [("2,x", r"'x' is neither"), ("2,,3", r"an empty entry"),
                                           ("150", r"between 0 and 100")])
def test_bad_discount_lists(text, message):
    with pytest.raises(ValueError, match=message):
        parse_schedules(text)


def test_optimism_bias_hand_case_recorded_and_not_applied_twice():
    d = hand(optimism_bias={"costs": 0.25, "effects": 0.2, "source": "analyst's judgement (test)"})
    params = parse_parameter_set(d)
    p = project(params)
    # costs × 1.25: −12,500 − 6,250 − 2,750 − 2,500 = −24,000; savings × 0.8: 0.8 · 15,000 = 12,000
    assert {k: krone(v) for k, v in p.npv.items()} == {"kommune": -12000, "region": -1250, "stat": 6000,
                                                       "total": -7250}
    assert any("optimism bias: costs +25 %, effects −20 %" in n for n in p.notes)
    # the stated values stay (the evaluation tests them); compiling the adjusted set does not adjust again
    assert params.costs[0].amount == -1000 and params.consequences[0].units == (-20, -11)
    c = compile_calculation(params)
    assert compile_calculation(c.params).costs[0].amount == pytest.approx(-1250, abs=1e-9)
    aids = decision_aids(params)
    ob = aids.optimism_bias
    assert (ob["costs"], ob["effects"], ob["source"]) == (0.25, 0.2, "analyst's judgement (test)")
    assert {k: krone(v) for k, v in ob["npv_unadjusted"].items()} == {"kommune": -4200, "region": -1000, "stat": 7500,
                                                                     "total": 2300}
    # break-even and the Monte Carlo use the adjusted values too
    assert break_even(params).success_rate["kommune"].value == pytest.approx(24000 / 24000, abs=1e-12)
    assert monte_carlo(params, draws=20, seed=3).mean["total"] == pytest.approx(-7250, abs=1e-6)


@pytest.mark.parametrize("ob, message", [
    ({"costs": 0.2, "effects": 0.1}, r"optimism_bias\.source: required key missing"),
    ({"costs": 0.2, "effects": 1.0, "source": "x"}, r"optimism_bias\.effects: a haircut share must be below 1"),
    ({"costs": -0.1, "effects": 0.1, "source": "x"}, r"optimism_bias\.costs: must be ≥ 0"),
    ({"costs": 0.2, "effects": 0.1, "source": "x", "capex": 1}, r"optimism_bias\.capex: unknown key"),
])
def test_bad_optimism_bias_names_the_path(ob, message):
    with pytest.raises(ParameterError, match=message):
        parse_parameter_set(hand(optimism_bias=ob))


def test_cash_view_hand_case():
    d = hand(consequences={"weeks": {"kind": "causal", "units": [-20, -11]}, "beds": {"kind": "causal", "units": [-2]}},
             prices={"weeks": {"kommune": 110, "stat": 55}, "beds": {"region": 1100, "cashable": False}})
    d["fixed_costs"][1]["cashable"] = False
    params = parse_parameter_set(d)
    assert params.price_specs["weeks"].cashable and not params.price_specs["beds"].cashable
    cash = cash_view(params)
    # full: region −1,000 + 5·2·1,100/1.1 = 9,000; cash: the beds (not cashable) and the coordinator (not cashable) out
    assert {k: krone(v) for k, v in cash.npv_full.items()} == {"kommune": -4200, "region": 9000, "stat": 7500,
                                                               "total": 12300}
    assert {k: krone(v) for k, v in cash.npv_cash.items()} == {"kommune": 0, "region": -1000, "stat": 7500,
                                                               "total": 6500}
    assert {k: krone(v) for k, v in cash.npv_non_cash.items()} == {"kommune": -4200, "region": 10000, "stat": 0,
                                                                   "total": 5800}
    assert cash.non_cashable == ("beds", "coordinator")
    assert cash.payback_year == 2026 and cash.payback_by_payer["region"] is None
    # the full view equals the projection
    assert cash.npv_full["total"] == pytest.approx(project(params).npv["total"], abs=1e-9)
    # default: every line cashable, the views agree
    plain = cash_view(parse_parameter_set(hand()))
    assert not plain.differs and plain.npv_cash == pytest.approx(plain.npv_full, abs=1e-9)


def test_cash_view_drops_the_refusion_of_a_non_cashable_item():
    d = hand(fixed_costs=[], prices={"weeks": {"kommune": 110, "cashable": False}},
             refusion={"staircase": {"items": ["weeks"], "weeks_before": 0}})
    params = parse_parameter_set(d)
    full, cash = project(params), cash_view(params)
    assert full.npv["stat"] > 0  # the refusion moves part of the saving to the state
    assert cash.npv_cash["stat"] == pytest.approx(0, abs=1e-9)
    assert cash.npv_cash["kommune"] == pytest.approx(-10000, abs=1e-9)  # only the per-participant costs


def test_bad_cashable_names_the_path():
    with pytest.raises(ParameterError, match=r"prices\.weeks\.cashable: expected true or false"):
        parse_parameter_set(hand(prices={"weeks": {"kommune": 110, "cashable": "yes"}}))


def test_som_project_shows_and_exports_the_decision_aids(tmp_path):
    d = hand(scenarios=SCENARIOS, optimism_bias={"costs": 0.25, "effects": 0.2, "source": "test"},
             prices={"weeks": {"kommune": 110, "stat": 55, "cashable": False}})
    calc, out, book = tmp_path / "calc.yaml", tmp_path / "out.json", tmp_path / "out.xlsx"
    calc.write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
    result = runner.invoke(app, ["project", str(calc), "--json", str(out), "--xlsx", str(book), "--no-rows",
                                 "--discount-sensitivity", "fm2021,4"])
    assert result.exit_code == 0, result.output
    for text in ("Scenarios side by side", "pessimistic", "Discount rate sensitivity", "Full economic view vs cash view",
                 "Optimism bias applied"):
        assert text in result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [c["name"] for c in data["scenarios"]] == ["base", "pessimistic", "optimistic"]
    assert data["scenarios"][0]["npv"] == pytest.approx(data["npv"], abs=1e-9)
    assert [r["label"] for r in data["discount_sensitivity"]] == ["document (custom)", "fm2021", "flat 4 %"]
    assert data["cash_view"]["non_cashable"] == ["weeks"]
    assert data["optimism_bias"]["source"] == "test"
    wb = load_workbook(book)
    rows = list(wb["Scenarios"].iter_rows(values_only=True))
    header = rows[0]
    npv_total = next(r for r in rows[1:] if r[0] == "NPV (kr)" and r[1] == "total")
    for col in data["scenarios"]:
        assert npv_total[header.index(col["name"])] == pytest.approx(col["npv"]["total"], abs=1e-9)
    sens = list(wb["Discount sensitivity"].iter_rows(values_only=True))
    assert [r[0] for r in sens[1:]] == ["document (custom)", "fm2021", "flat 4 %"]
    assert sens[2][sens[0].index("NPV total")] == pytest.approx(data["discount_sensitivity"][1]["npv"]["total"])
    cash = list(wb["Cash view"].iter_rows(values_only=True))
    assert cash[2][0] == "cash view (cashable only)"
    assert cash[2][4] == pytest.approx(data["cash_view"]["npv_cash"]["total"], abs=1e-9)
    assert np.isclose(next(r for r in cash if r and r[0] == "NPV without optimism bias")[4],
                      data["optimism_bias"]["npv_unadjusted"]["total"])


def test_som_project_rejects_a_bad_discount_list(tmp_path):
    calc = tmp_path / "calc.yaml"
    calc.write_text(yaml.safe_dump(hand()), encoding="utf-8")
    result = runner.invoke(app, ["project", str(calc), "--discount-sensitivity", "fm2099"])
    assert result.exit_code != 0
    assert "--discount-sensitivity: 'fm2099' is neither" in result.output


def test_the_documented_example_has_working_decision_aids():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "calculation-document.md").read_text(encoding="utf-8")
    params = parse_parameter_set(yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0]))
    assert [f.one_off for f in params.fixed_costs] == [True, False]
    assert params.optimism_bias is not None and params.optimism_bias.source
    aids = decision_aids(params)
    assert aids.scenarios is not None and aids.scenarios.names == ("base", "pessimistic")
    pess = aids.scenarios.columns[1]
    assert pess.success_rate == 0.08 and pess.npv["total"] < aids.scenarios.columns[0].npv["total"]
    assert aids.discount.rows[0].is_document and not aids.cash.differs
