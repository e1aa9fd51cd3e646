"""`som project --xlsx`: the workbook opens with openpyxl, its totals equal the JSON's, no small cohort is written."""

import json

import pytest
import yaml
from openpyxl import load_workbook
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()

DOC = {
    "intervention": "xl", "target_group": "tg", "start_year": 2024, "horizon_years": 6, "price_year": 2024,
    "course_years": 1, "cohorts": [{"year": 2024, "participants": 40}, {"year": 2025, "participants": 3}],
    "success_rate": {"value": 0.4, "se": 0.1},
    "costs": [{"course_year": 1, "payer": "kommune", "amount": -20000, "committee": "boerne_unge"},
              {"course_year": 1, "payer": "kommune", "amount": -1000}],
    "consequences": {"shelter_nights": {"units": [-10, -5, -3], "se": [2, 2, 2]}, "benefit_weeks": [-8, -8]},
    "prices": {"shelter_nights": {"kommune": {"social": 600, "sundhed": 200}, "stat": 300},
               "benefit_weeks": {"kommune": {"beskaeftigelse": 2900}}},
}


def sheet_rows(ws):
    rows = list(ws.iter_rows(values_only=True))
    return rows[0], rows[1:]


def run(tmp_path, *extra, doc=DOC):
    calc = tmp_path / "calc.yaml"
    calc.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out, book = tmp_path / "out.json", tmp_path / "out.xlsx"
    result = runner.invoke(app, ["project", str(calc), "--json", str(out), "--xlsx", str(book), "--no-rows", *extra])
    assert result.exit_code == 0, result.output
    assert "Workbook written" in result.output
    return json.loads(out.read_text(encoding="utf-8")), load_workbook(book)


def test_workbook_totals_equal_the_json(tmp_path):
    data, wb = run(tmp_path, "--draws", "300", "--seed", "2")
    assert wb.sheetnames == ["Summary", "Flows by year", "Rows", "NPV and payback", "Break-even", "Discount sensitivity",
                             "Cash view", "Udvalg", "Udvalg by year", "Udvalg by year (discounted)"]
    header, flows = sheet_rows(wb["Flows by year"])
    assert [r[0] for r in flows] == [c["year"] for c in data["cumulative"]]
    for payer in ("kommune", "region", "stat", "total"):
        disc = header.index(f"{payer} discounted")
        assert sum(r[disc] for r in flows) == pytest.approx(data["npv"][payer], abs=1e-6)
    nominal = {p: sum(r["amount"] for r in data["rows"] if r["payer"] == p) for p in ("kommune", "stat")}
    assert sum(r[header.index("kommune")] for r in flows) == pytest.approx(nominal["kommune"], abs=1e-6)
    assert sum(r[header.index("stat")] for r in flows) == pytest.approx(nominal["stat"], abs=1e-6)
    assert flows[-1][header.index("cumulative discounted")] == pytest.approx(data["cumulative"][-1]["cumulative_discounted"],
                                                                              abs=1e-6)
    _, rows = sheet_rows(wb["Rows"])
    assert len(rows) == len(data["rows"])
    header, npv = sheet_rows(wb["NPV and payback"])
    by_payer = {r[0]: r for r in npv}
    for payer in ("kommune", "region", "stat", "total"):
        assert by_payer[payer][1] == pytest.approx(data["npv"][payer], abs=1e-9)
    assert by_payer["region"][header.index("P(NPV ≥ 0)")] == "no stake"
    assert by_payer["total"][header.index("MC mean")] == pytest.approx(data["monte_carlo"]["mean"]["total"], abs=1e-9)
    header, be = sheet_rows(wb["Break-even"])
    be_by = {r[0]: r for r in be}
    assert be_by["total"][header.index("break-even success rate")] == pytest.approx(
        data["break_even"]["success_rate"]["total"]["value"], abs=1e-12)
    assert be_by["region"][header.index("success rate: status")] == "no_stake"
    # the udvalg ledger: NPV per account equals the JSON; the accounts of a payer sum to its NPV
    header, udvalg = sheet_rows(wb["Udvalg"])
    npv_by = {f"{r[0]}/{r[1]}": r[2] for r in udvalg}
    assert npv_by == pytest.approx({a["label"]: a["npv"] for a in data["udvalg"]["accounts"]}, abs=1e-9)
    assert set(npv_by) == {"kommune/boerne_unge", "kommune/social", "kommune/sundhed", "kommune/beskaeftigelse",
                           "kommune/unassigned", "stat/social"}  # stat/social: the default for shelter_nights
    for payer in ("kommune", "stat"):
        assert sum(v for k, v in npv_by.items() if k.startswith(payer)) == pytest.approx(data["npv"][payer], abs=1e-6)
    assert {f"{r[0]}/{r[1]}": r[header.index("P(NPV ≥ 0)")] for r in udvalg} == pytest.approx(
        {k: v["prob_break_even"] for k, v in data["monte_carlo"]["udvalg"].items()})
    assert {f"{r[0]}/{r[1]}": r[header.index("break-even success rate")] for r in udvalg} == pytest.approx(
        {k: v["success_rate"]["value"] for k, v in data["break_even"]["udvalg"].items()})
    # the cross-subsidy table: a discounted column sums to the account's NPV
    header, years = sheet_rows(wb["Udvalg by year (discounted)"])
    assert [r[0] for r in years] == [c["year"] for c in data["cumulative"]]
    for k, v in npv_by.items():
        assert sum(r[header.index(k)] for r in years) == pytest.approx(v, abs=1e-6)
    header, years = sheet_rows(wb["Udvalg by year"])
    assert sum(r[header.index("kommune/boerne_unge")] for r in years) == pytest.approx(-20000 * 43, abs=1e-6)


def test_small_cohort_is_not_written(tmp_path):
    _, wb = run(tmp_path)
    summary = dict(r for r in wb["Summary"].iter_rows(values_only=True))
    assert summary["cohort 2024: participants"] == 40
    assert summary["cohort 2025: participants"] == "suppressed (<5)"
    values = [v for ws in wb for row in ws.iter_rows(values_only=True) for v in row]
    assert 3 not in values  # the small cohort appears nowhere as a number


def test_udvalg_sheet_from_the_default_mapping(tmp_path):
    # no udvalg in the document: shelter_nights gets the default (kommune socialudvalget, stat social);
    # benefit_weeks is not in the default mapping and the cost line has no committee → unassigned
    doc = {**DOC, "costs": [{"course_year": 1, "payer": "kommune", "amount": -20000}],
           "prices": {"shelter_nights": {"kommune": 800, "stat": 300}, "benefit_weeks": {"kommune": 2900}}}
    data, wb = run(tmp_path, doc=doc)
    assert set(data["npv_by_committee"]) == {"socialudvalget", "unassigned"}
    _, udvalg = sheet_rows(wb["Udvalg"])
    assert {f"{r[0]}/{r[1]}" for r in udvalg} == {"kommune/socialudvalget", "kommune/unassigned", "stat/social"}
    assert sum(r[2] for r in udvalg if r[0] == "kommune") == pytest.approx(data["npv"]["kommune"], abs=1e-6)
    # items the default mapping does not know: no kommune committee view, the ledger has the unassigned accounts
    doc = {**doc, "consequences": {"benefit_weeks": [-8, -8]}, "prices": {"benefit_weeks": {"kommune": 2900}}}
    data, wb = run(tmp_path, doc=doc)
    assert "committees" not in data
    assert [a["label"] for a in data["udvalg"]["accounts"]] == ["kommune/unassigned"]


def test_bad_xlsx_target_is_a_one_line_error(tmp_path):
    calc = tmp_path / "calc.yaml"
    calc.write_text(yaml.safe_dump(DOC), encoding="utf-8")
    bad = runner.invoke(app, ["project", str(calc), "--xlsx", str(tmp_path / "out.csv")])
    assert bad.exit_code == 2 and "must end in .xlsx" in bad.output and "Traceback" not in bad.output
    (tmp_path / "dir.xlsx").mkdir()
    bad = runner.invoke(app, ["project", str(calc), "--no-rows", "--xlsx", str(tmp_path / "dir.xlsx")])
    assert bad.exit_code == 2 and "cannot be written" in bad.output and "Traceback" not in bad.output
    assert (tmp_path / "dir.xlsx").is_dir() and not list(tmp_path.glob(".dir.xlsx.*"))
