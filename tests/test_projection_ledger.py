"""The udvalg ledger: a hand-computed case to the krone (refusion and tax of one item split over the udvalg of two
payers, cost lines of two payers, cross-subsidy by year, break-even per udvalg), the Monte Carlo per udvalg (with
no stake), and projected vs realised per udvalg."""

from statistics import NormalDist

import numpy as np
import pytest

from som_models.parameters import parse_parameter_set
from som_models.projection import break_even, monte_carlo, project
from som_models.projection.engine import base_inputs, compile_calculation
from som_models.projection.ledger import account_flows, compare_ledgers

EXACT = 1e-6  # kroner


def doc(**over):
    d = {
        "intervention": "ledger", "target_group": "tg", "start_year": 2020, "horizon_years": 4, "price_year": 2024,
        "course_years": 1, "cohorts": [{"year": 2020, "participants": 10}],
        "success_rate": {"value": 0.5},
        "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000, "committee": "boerne_og_ungeudvalget"},
                  {"course_year": 1, "payer": "kommune", "amount": -2000, "committee": "beskaeftigelsesudvalget"},
                  {"course_year": 1, "payer": "stat", "amount": -200, "committee": "social"}],
        "consequences": {"kontanthjaelp_weeks": [-4, -2], "earnings_dkk": [10000, 20000]},
        "prices": {"kontanthjaelp_weeks": {"kommune": 1000}},
        "refusion": {"staircase": {"items": ["kontanthjaelp_weeks"], "weeks_before": 0,
                                   "rule": {"steps": [{"from_week": 1, "to_week": None, "rate": 0.2}]}}},
        "tax": {"rates": {"kommune": 0.25, "stat": 0.1}, "tilbageloeb": 0.2,
                "taxable": {"kontanthjaelp_weeks": 1000, "earnings_dkk": 1.0}},
        # the document's own split of kontanthjælp's kommune flows; the stat side and earnings_dkk from the default
        "udvalg": {"items": {"kontanthjaelp_weeks": {"kommune": {"beskaeftigelsesudvalget": 0.75,
                                                                 "socialudvalget": 0.25}}}},
        "discounting": "none",
    }
    d.update(over)
    return d


# Per successful person (5 = 10 participants × 0.5), consequence year 1 (2021): kontanthjælp −4 weeks, earnings
# +10,000 kr; year 2 (2022): −2 weeks, +20,000 kr.
#   kontanthjælp, kommune: saving 4 × 1,000 = 4,000; refusion lost 0.2 × 4,000 = −800; tax on the benefit
#     0.25 × (−4,000) = −1,000 → 2,200, split 0.75 / 0.25: beskæftigelse 1,650, social 550 (year 2: 825, 275)
#   kontanthjælp, stat (default: overførsler): refusion +800, tax 0.1 × (−4,000) = −400, tilbageløb
#     0.2 × (1 − 0.35) × (−4,000) = −520 → −120 (year 2: −60)
#   earnings, kommune (default: beskæftigelse): 0.25 × 10,000 = 2,500 (year 2: 5,000)
#   earnings, stat (default: skatter): 0.1 × 10,000 + 0.2 × 0.65 × 10,000 = 2,300 (year 2: 4,600)
# × 5 successes; costs in 2020 × 10 participants.
BY_YEAR = {
    "kommune/beskaeftigelsesudvalget": {2020: -20_000, 2021: 5 * (1_650 + 2_500), 2022: 5 * (825 + 5_000), 2023: 0},
    "kommune/boerne_og_ungeudvalget": {2020: -10_000, 2021: 0, 2022: 0, 2023: 0},
    "kommune/socialudvalget": {2020: 0, 2021: 5 * 550, 2022: 5 * 275, 2023: 0},
    "stat/overfoersler": {2020: 0, 2021: 5 * -120, 2022: 5 * -60, 2023: 0},
    "stat/skatter": {2020: 0, 2021: 5 * 2_300, 2022: 5 * 4_600, 2023: 0},
    "stat/social": {2020: -2_000, 2021: 0, 2022: 0, 2023: 0},
}


def test_hand_computed_ledger_to_the_krone():
    p = project(parse_parameter_set(doc()))
    book = p.ledger
    assert book is not None
    assert set(book.labels) == set(BY_YEAR)  # nothing unassigned: every flow has its udvalg
    for row in book.by_year():
        for key, years in BY_YEAR.items():
            assert row[key] == pytest.approx(years[row["year"]], abs=EXACT), (key, row["year"])
    npv = {k: sum(v.values()) for k, v in BY_YEAR.items()}
    assert npv == {"kommune/beskaeftigelsesudvalget": 29_875, "kommune/boerne_og_ungeudvalget": -10_000,
                   "kommune/socialudvalget": 4_125, "stat/overfoersler": -900, "stat/skatter": 34_500,
                   "stat/social": -2_000}
    assert dict(book.npv) == pytest.approx(npv, abs=EXACT)
    # the accounts of a payer add up to the payer's NPV (frame, a separate implementation)
    assert sum(v for k, v in book.npv.items() if k.startswith("kommune/")) == pytest.approx(p.npv["kommune"], abs=EXACT)
    assert sum(v for k, v in book.npv.items() if k.startswith("stat/")) == pytest.approx(p.npv["stat"], abs=EXACT)
    assert p.npv["kommune"] == pytest.approx(24_000, abs=EXACT) and p.npv["stat"] == pytest.approx(31_600, abs=EXACT)
    # payback: beskæftigelse pays 20,000 in 2020 and has 20,750 back in 2021; an account that only pays never does
    assert book.payback["kommune/beskaeftigelsesudvalget"] == 2021
    assert book.payback["kommune/boerne_og_ungeudvalget"] is None and book.payback["stat/overfoersler"] is None
    # the kommune part keeps the old committee view
    assert dict(p.npv_by_committee) == pytest.approx({k.split("/")[1]: v for k, v in npv.items()
                                                      if k.startswith("kommune/")}, abs=EXACT)
    out = p.to_dict()["udvalg"]
    assert out["mapping"]["kontanthjaelp_weeks"] == {"kommune": "document udvalg.items", "stat": "default (placeholder)"}
    assert {a["label"]: a["role"] for a in out["accounts"]} == {
        "kommune/beskaeftigelsesudvalget": "gains", "kommune/boerne_og_ungeudvalget": "invests",
        "kommune/socialudvalget": "gains", "stat/overfoersler": "invests", "stat/skatter": "gains",
        "stat/social": "invests"}


def test_cross_subsidy_by_year():
    cross = project(parse_parameter_set(doc())).ledger.cross_subsidy()
    assert list(cross["invests"]) == ["kommune/boerne_og_ungeudvalget", "stat/social", "stat/overfoersler"]
    assert list(cross["gains"]) == ["stat/skatter", "kommune/beskaeftigelsesudvalget", "kommune/socialudvalget"]
    years = {r["year"]: r for r in cross["by_year"]}
    assert years[2020]["invests"] == pytest.approx({"kommune/beskaeftigelsesudvalget": -20_000,
                                                    "kommune/boerne_og_ungeudvalget": -10_000, "stat/social": -2_000})
    assert years[2020]["gains"] == {}
    assert years[2021]["invests"] == pytest.approx({"stat/overfoersler": -600}, abs=EXACT)
    assert years[2021]["gains"] == pytest.approx({"kommune/beskaeftigelsesudvalget": 20_750,
                                                  "kommune/socialudvalget": 2_750, "stat/skatter": 11_500}, abs=EXACT)
    assert years[2023] == {"year": 2023, "invests": {}, "gains": {}}


def test_break_even_per_udvalg():
    b = break_even(parse_parameter_set(doc()))
    s, c = b.udvalg_success_rate, b.udvalg_cost_per_participant
    # beskæftigelse: NPV(s) = −20,000 + s · 5 · 2 · (4,150 + 5,825)·… = −20,000 + 99,750 s → s* = 20,000 / 99,750
    besk = s["kommune/beskaeftigelsesudvalget"]
    assert (besk.status, besk.intercept) == ("break_even", pytest.approx(-20_000, abs=EXACT))
    assert besk.slope == pytest.approx(99_750, abs=EXACT)
    assert besk.value == pytest.approx(20_000 / 99_750, abs=1e-12)
    # at s = 0.5 and zero cost it has 49,875; its costs are −20,000 for 2,000 kr per participant → 4,987.50 kr
    cb = c["kommune/beskaeftigelsesudvalget"]
    assert (cb.status, cb.current) == ("break_even", 2_000) and cb.value == pytest.approx(4_987.5, abs=EXACT)
    # børn og unge pays and gets nothing back: success does not move it; it breaks even only at zero cost
    assert s["kommune/boerne_og_ungeudvalget"].status == "no_effect"
    assert c["kommune/boerne_og_ungeudvalget"].value == pytest.approx(0.0, abs=EXACT)
    # overførsler loses with success (the state refunds less than it loses in tax): −1,800 s
    assert s["stat/overfoersler"].status == "falls_with_success"
    assert s["stat/overfoersler"].slope == pytest.approx(-1_800, abs=EXACT)
    assert c["stat/overfoersler"].status == "no_cost"
    # the project at s* gives beskæftigelse NPV 0
    p = project(parse_parameter_set(doc()), success_rate=besk.value)
    assert p.ledger.npv["kommune/beskaeftigelsesudvalget"] == pytest.approx(0, abs=EXACT)
    assert set(b.to_dict()["udvalg"]) == set(BY_YEAR)


def test_the_accounts_add_up_to_the_payers_in_every_draw():
    params = parse_parameter_set(doc(success_rate={"value": 0.5, "se": 0.2},
                                     consequences={"kontanthjaelp_weeks": {"units": [-4, -2], "se": [1, 1]},
                                                   "earnings_dkk": {"units": [10000, 20000], "se": [3000, 3000]}}))
    c = compile_calculation(params)
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 1, 50)
    u = c.units[None] + rng.normal(0, 1, (50, *c.units.shape)) * c.se[None]
    _, _, pf, costs = base_inputs(c)
    ev, accts, Y = account_flows(c, s, u, np.repeat(pf, 50, axis=0), np.repeat(costs, 50, axis=0))
    for p, payer in enumerate(("kommune", "region", "stat")):
        own = [n for n, a in enumerate(accts) if a[0] == payer]
        assert np.allclose(Y[:, own, :].sum(axis=1), ev.yearly[:, p, :], rtol=0, atol=1e-6)
    # every flow is attributed here: the unassigned accounts stay 0
    assert not np.any(Y[:, [n for n, a in enumerate(accts) if a[1] == "unassigned"], :])


def test_monte_carlo_per_udvalg_with_no_stake():
    # gp_contacts has a kommune price only; the default mapping also names region/somatik for it → no stake there
    d = doc(success_rate={"value": 0.5, "se": 0.2},
            consequences={"kontanthjaelp_weeks": [-4, -2], "earnings_dkk": [10000, 20000], "gp_contacts": [0]},
            prices={"kontanthjaelp_weeks": {"kommune": 1000}, "gp_contacts": {"kommune": 100}})
    params = parse_parameter_set(d)
    mc = monte_carlo(params, draws=20_000, seed=5)
    assert "region/somatik" in mc.udvalg_no_stake and "region/somatik" not in mc.udvalg
    assert "kommune/sundheds_og_aeldreudvalget" in mc.udvalg_no_stake  # zero units: no flow
    assert set(mc.udvalg) == set(BY_YEAR)
    # only the success rate is uncertain: beskæftigelse breaks even when s ≥ s* = 20,000 / 99,750,
    # s = clip(0.5 + 0.2 z, 0, 1) → P = 1 − Φ((s* − 0.5) / 0.2)
    expected = 1 - NormalDist().cdf((20_000 / 99_750 - 0.5) / 0.2)
    assert mc.udvalg["kommune/beskaeftigelsesudvalget"]["prob_break_even"] == pytest.approx(expected, abs=0.01)
    assert mc.udvalg["kommune/boerne_og_ungeudvalget"]["prob_break_even"] == 0.0  # pays, never gains
    assert mc.udvalg["stat/skatter"]["prob_break_even"] == 1.0
    # overførsler: −1,800 s ≥ 0 only where s is clipped to 0: P = Φ(−2.5)
    assert mc.udvalg["stat/overfoersler"]["prob_break_even"] == pytest.approx(NormalDist().cdf(-2.5), abs=0.003)
    # the accounts' means add up to the payer means
    for payer in ("kommune", "stat"):
        total = sum(v["mean"] for k, v in mc.udvalg.items() if k.startswith(payer + "/"))
        assert total == pytest.approx(mc.mean[payer], abs=1e-6)
    assert mc.to_dict()["udvalg_no_stake"] == list(mc.udvalg_no_stake)


def test_monte_carlo_without_uncertainty_equals_the_ledger():
    params = parse_parameter_set(doc())
    mc = monte_carlo(params, draws=10, seed=1)
    book = project(params).ledger
    for k, v in book.npv.items():
        assert mc.udvalg[k]["mean"] == pytest.approx(v, abs=EXACT) and mc.udvalg[k]["p5"] == pytest.approx(v, abs=EXACT)


def test_projected_vs_realised_per_udvalg():
    approved = project(parse_parameter_set(doc())).to_dict()["udvalg"]
    # the evaluation found half the earnings gain and no second-year kontanthjælp effect
    realised = project(parse_parameter_set(doc(consequences={"kontanthjaelp_weeks": [-4, 0],
                                                             "earnings_dkk": [5000, 10000]}))).to_dict()["udvalg"]
    cmp = compare_ledgers(approved, realised)
    rows = {r["label"]: r for r in cmp["accounts"]}
    # skatter: 5 × (0.1 + 0.13) × (5,000 + 10,000) = 17,250 instead of 34,500
    assert rows["stat/skatter"]["npv_realised"] == pytest.approx(17_250, abs=EXACT)
    assert rows["stat/skatter"]["npv_difference"] == pytest.approx(-17_250, abs=EXACT)
    # beskæftigelse: −20,000 + 5 × (1,650 + 1,250 + 2,500) = 7,000 (was 29,875)
    assert rows["kommune/beskaeftigelsesudvalget"]["npv_realised"] == pytest.approx(7_000, abs=EXACT)
    assert rows["kommune/beskaeftigelsesudvalget"]["payback_realised"] == 2022
    years = {r["year"]: r for r in cmp["by_year"]}
    assert years[2022]["kommune/socialudvalget"] == pytest.approx(
        {"projected": 1_375, "realised": 0, "difference": -1_375}, abs=EXACT)
    assert cmp["role_changes"] == []
    # an account that only one side has counts as 0 there
    gone = compare_ledgers(approved, project(parse_parameter_set(doc(costs=[]))).to_dict()["udvalg"])
    row = {r["label"]: r for r in gone["accounts"]}["stat/social"]
    assert (row["npv_realised"], row["role_realised"]) == (0.0, "none")
    assert {"label": "stat/social", "from": "invests", "to": "none"} in gone["role_changes"]


def test_switching_the_default_off_leaves_the_rest_unassigned():
    p = project(parse_parameter_set(doc(udvalg={"default": False, "items": {"kontanthjaelp_weeks": {
        "kommune": {"beskaeftigelsesudvalget": 1.0}}}})))
    npv = dict(p.ledger.npv)
    # stat: kontanthjælp's and earnings' stat flows have no udvalg now; the cost line keeps its own (social)
    assert npv["stat/unassigned"] == pytest.approx(-900 + 34_500, abs=EXACT)
    assert npv["stat/social"] == pytest.approx(-2_000, abs=EXACT)
    # kommune: earnings tax (default beskæftigelse) is unassigned; kontanthjælp all in beskæftigelse
    assert npv["kommune/unassigned"] == pytest.approx(5 * (2_500 + 5_000), abs=EXACT)
    assert npv["kommune/beskaeftigelsesudvalget"] == pytest.approx(-20_000 + 5 * (2_200 + 1_100), abs=EXACT)
    assert any("switched off" in n for n in p.notes)


def test_som_project_shows_and_writes_the_ledger(tmp_path):
    import json

    import yaml
    from typer.testing import CliRunner

    from pipeline.cli import app

    calc = tmp_path / "calc.yaml"
    calc.write_text(yaml.safe_dump(doc(success_rate={"value": 0.5, "se": 0.2})), encoding="utf-8")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["project", str(calc), "--no-rows", "--draws", "500", "--json", str(out)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Who invests, who gains" in result.output and "Cross-subsidy by year" in result.output
    assert "Invests: kommune/boerne_og_ungeudvalget -10,000, stat/social -2,000, stat/overfoersler -900" in result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {a["label"]: a["npv"] for a in data["udvalg"]["accounts"]} == pytest.approx(
        {k: sum(v.values()) for k, v in BY_YEAR.items()}, abs=EXACT)
    assert data["break_even"]["udvalg"]["kommune/beskaeftigelsesudvalget"]["success_rate"]["value"] == pytest.approx(
        20_000 / 99_750, abs=1e-12)
    assert set(data["monte_carlo"]["udvalg"]) == set(BY_YEAR)
    assert [r["year"] for r in data["udvalg"]["by_year"]] == [2020, 2021, 2022, 2023]


def test_every_flow_is_attributed_on_a_rich_document():
    """Two cohorts, two course years with course effects, staircase and expensive-case refusion, tax, avoided
    costs: with an udvalg for every item and payer, only the region's cost line without a committee is unassigned,
    and the accounts add up to the payers in every drawn input."""
    from som_models.projection.montecarlo import _Inputs
    from tests.test_projection_montecarlo import rich_doc, with_uncertainty

    d = with_uncertainty(rich_doc())
    d["consequences"]["weeks"]["course"] = {"units": [-2, -4], "se": [1, 1]}
    d["avoided_costs"][0]["committee"] = "social"
    d["udvalg"] = {"items": {"weeks": {"kommune": {"beskaeftigelse": 1.0}, "stat": {"overfoersler": 1.0}},
                             "gp": {"kommune": {"sundhed": 1.0}, "region": {"somatik": 1.0}},
                             "earnings": {"kommune": {"beskaeftigelse": 0.5, "social": 0.5}, "stat": {"skatter": 1.0}}}}
    c = compile_calculation(parse_parameter_set(d))
    draws = _Inputs(c, "triangular").draw(np.random.default_rng(11), 200, "item")
    ev, accts, Y = account_flows(c, *draws)
    for p, payer in enumerate(("kommune", "region", "stat")):
        own = [n for n, a in enumerate(accts) if a[0] == payer]
        assert np.allclose(Y[:, own, :].sum(axis=1), ev.yearly[:, p, :], rtol=1e-12, atol=1e-6)
    unassigned = {a: n for n, a in enumerate(accts) if a[1] == "unassigned"}
    assert not np.any(Y[:, unassigned[("kommune", "unassigned")], :])
    assert not np.any(Y[:, unassigned[("stat", "unassigned")], :])
    # region/unassigned is exactly the cost line: −5,000 × participants in course year 2 (2023: 30, 2024: 20)
    region = Y[:, unassigned[("region", "unassigned")], :]
    assert np.allclose(region[:, 1], -5_000 * 30) and np.allclose(region[:, 2], -5_000 * 20)
    assert np.allclose(np.delete(region, [1, 2], axis=1), 0)
    # the expensive-case refusion of placements lands in the stat sector of the item (default: social)
    assert ("stat", "social") in accts and np.any(Y[:, accts.index(("stat", "social")), :] > 0)


def test_the_ledger_follows_the_result_protocol():
    import dataclasses

    from som_models.results_base import REPR_WIDTH, Result

    book = project(parse_parameter_set(doc())).ledger
    assert isinstance(book, Result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        book.npv = {}  # type: ignore[misc]
    text = repr(book)
    assert text.startswith("Ledger(") and "\n" not in text and len(text) <= REPR_WIDTH and "invests=3" in text
    frame = book.to_polars()
    assert frame.columns == ["payer", "udvalg", "npv", "payback_year", "role"] and frame.height == 6
    summary = book.summary()
    assert "29,875" in summary and "Invests: kommune/boerne_og_ungeudvalget -10,000" in summary


def test_a_note_names_the_flows_without_an_udvalg():
    p = project(parse_parameter_set(doc(udvalg={"default": False})))
    note = next(n for n in p.notes if "no udvalg for" in n)
    assert ("kontanthjaelp_weeks kommune, kontanthjaelp_weeks stat, earnings_dkk kommune, earnings_dkk stat"
            in note)
    assert not any("no udvalg for" in n for n in project(parse_parameter_set(doc())).notes)
