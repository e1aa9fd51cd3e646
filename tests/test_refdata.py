"""Reference data that stay current (issue 13, item 4): the price index's extrapolation rule and its warning,
the offline StatBank import, a price year beyond the data, and AM-bidrag on earned income only.

The StatBank files below are made up (values chosen for the test), in the layout of a StatBank CSV export."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from som_models.parameters import ParameterError, parse_parameter_set
from som_models.projection import project
from som_models.projection.engine import base_inputs, compile_calculation, evaluate
from som_models.projection.prices import load_price_index
from som_models.projection.statbank import read_statbank_csv

runner = CliRunner()


def statbank_csv(path: Path, months: dict[str, str], *, extra: str = "") -> Path:
    """A made-up StatBank long CSV: classification columns VAREGR and ENHED, then TID and INDHOLD."""
    lines = ["VAREGR;ENHED;TID;INDHOLD"]
    lines += [f"00 Nettoprisindekset i alt;Indeks;{t};{v}" for t, v in months.items()]
    path.write_text("\ufeff" + "\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def year_of(year: int, values: list[float]) -> dict[str, str]:
    return {f"{year}M{m:02d}": f"{v:.1f}".replace(".", ",") for m, v in enumerate(values, start=1)}


def made_up_months() -> dict[str, str]:
    months = year_of(2015, [100.0] * 12)
    months |= year_of(2024, [110.0] * 12)
    months |= year_of(2025, [112.2, 112.2, 112.2])  # Jan–Mar 2025; March is 2 % above March 2024
    for y in range(2016, 2024):
        months |= year_of(y, [100.0 + (y - 2015) * 1.25] * 12)
    return months


def test_import_reads_the_statbank_layout_and_the_rule_extrapolates(tmp_path):
    src = statbank_csv(tmp_path / "PRIS116.csv", made_up_months())
    imported = read_statbank_csv(src)
    assert imported.first == (2015, 1) and imported.last == (2025, 3)
    out = tmp_path / "idx.yaml"
    result = runner.invoke(app, ["refdata", "import-price-index", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "months 2015-01 … 2025-03" in result.output and "+2.00 %" in result.output
    index = load_price_index(str(out))
    assert index.status.startswith("verified") and "sha256" in index.status and "PRIS116" in index.source
    assert index.level(2024) == pytest.approx(110.0)
    # 2025: January–March shown, April–December = 112.2 · 1.02^(k/12), k = 1 … 9 (hand computation)
    expected = (3 * 112.2 + sum(112.2 * 1.02 ** (k / 12) for k in range(1, 10))) / 12
    assert index.level(2025) == pytest.approx(expected)
    assert index.level(2026) == pytest.approx(sum(112.2 * 1.02 ** ((9 + m) / 12) for m in range(1, 13)) / 12)
    assert "2026 is extrapolated" in index.warnings_for(2026)[0]


@pytest.mark.parametrize("mutate,message", [
    (lambda m: m | {"2020M05": "abc"}, "column INDHOLD: 'abc' is not a number"),
    (lambda m: {k: v for k, v in m.items() if k != "2019M07"}, "month 2019-07 is missing inside the series"),
    (lambda m: m | {"2015M01": "140,0"}, "the mean of 2015 is 103.33, not 100"),
    (lambda m: m | {"2020": "104,0"}, "'2020' is an annual period"),
])
def test_import_refuses_bad_files_and_writes_nothing(tmp_path, mutate, message):
    src = statbank_csv(tmp_path / "bad.csv", mutate(made_up_months()))
    out = tmp_path / "idx.yaml"
    out.write_text("old", encoding="utf-8")
    result = runner.invoke(app, ["refdata", "import-price-index", str(src), "--out", str(out)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    assert str(src) in result.output
    assert out.read_text(encoding="utf-8") == "old"  # nothing half-written


def test_import_asks_for_where_when_a_column_has_several_values(tmp_path):
    src = statbank_csv(tmp_path / "two.csv", made_up_months(),
                       extra="00 Nettoprisindekset i alt;Ændring i forhold til måned året før (pct.);2024M01;1,2\n")
    result = runner.invoke(app, ["refdata", "import-price-index", str(src), "--dry-run"])
    assert result.exit_code == 2 and "column ENHED holds several values" in result.output
    result = runner.invoke(app, ["refdata", "import-price-index", str(src), "--dry-run", "--where", "ENHED=Indeks"])
    assert result.exit_code == 0 and "Dry run: nothing written" in result.output, result.output


PRICE_2025 = {
    "intervention": "py2025", "target_group": "tg", "start_year": 2025, "horizon_years": 2, "price_year": 2025,
    "cohorts": [{"year": 2025, "participants": 10}], "success_rate": {"value": 0.5},
    "costs": [{"course_year": 1, "payer": "kommune", "amount": -1000, "price_year": 2022}],
    "consequences": {"nights": {"units": [-2]}}, "prices": {"nights": {"kommune": 100, "price_year": 2022}},
    "discounting": "none",
}


def test_a_document_with_price_year_2025_works_and_states_the_extrapolation(tmp_path):
    index = load_price_index()
    f = index.level(2025) / index.level(2022)
    p = project(parse_parameter_set(PRICE_2025))
    # cost 10 · −1000 · f; saving 10 · 0.5 · 2 · 100 · f
    assert p.npv["kommune"] == pytest.approx(-10_000 * f + 1_000 * f)
    assert any("2025 is extrapolated" in w and "2024-06" in w for w in p.warnings)
    path = tmp_path / "calc.yaml"
    path.write_text(yaml.safe_dump(PRICE_2025), encoding="utf-8")
    result = runner.invoke(app, ["project", str(path), "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert any("2025 is extrapolated" in w for w in doc["warnings"])
    assert doc["npv"]["kommune"] == pytest.approx(p.npv["kommune"])
    result = runner.invoke(app, ["project", str(path)])
    assert "warning: price index nettoprisindeks: 2025 is extrapolated" in result.output


TAX = {
    "intervention": "tax", "target_group": "tg", "start_year": 2024, "horizon_years": 2, "price_year": 2024,
    "cohorts": [{"year": 2024, "participants": 1}], "success_rate": {"value": 1.0}, "costs": [],
    "consequences": {"earnings_dkk": {"units": [100_000]}, "kontanthjaelp_weeks": {"units": [-10]}},
    "prices": {}, "discounting": "none",
    "tax": {"rates": {"kommune": 0.25, "stat": 0.12}, "am_bidrag": 0.08, "tilbageloeb": 0.18,
            "taxable": {"earnings_dkk": {"kroner": 1.0, "income": "earned"},
                        "kontanthjaelp_weeks": {"kroner": 2900, "income": "transfer"}}},
}


def test_am_bidrag_only_on_earned_income_by_hand():
    p = project(parse_parameter_set(TAX))
    rows = {(r["payer"], r["item"]): r["amount"] for r in p.rows.to_dicts()}
    # wages +100,000: AM 8,000; income tax on 92,000: kommune 23,000, stat 11,040;
    #   tilbageløb 0.18 · (100,000 − 8,000 − 23,000 − 11,040) = 10,432.80
    assert rows[("stat", "am_bidrag:earnings_dkk")] == pytest.approx(8_000)
    assert rows[("kommune", "tax:earnings_dkk")] == pytest.approx(23_000)
    assert rows[("stat", "tax:earnings_dkk")] == pytest.approx(11_040)
    assert rows[("stat", "tilbageloeb:earnings_dkk")] == pytest.approx(10_432.80)
    # kontanthjælp −10 weeks × 2,900 = −29,000, no AM-bidrag: kommune −7,250, stat −3,480;
    #   tilbageløb 0.18 · (−29,000 + 7,250 + 3,480) = −3,288.60
    assert ("stat", "am_bidrag:kontanthjaelp_weeks") not in rows
    assert rows[("kommune", "tax:kontanthjaelp_weeks")] == pytest.approx(-7_250)
    assert rows[("stat", "tax:kontanthjaelp_weeks")] == pytest.approx(-3_480)
    assert rows[("stat", "tilbageloeb:kontanthjaelp_weeks")] == pytest.approx(-3_288.60)
    assert p.npv["kommune"] == pytest.approx(15_750)
    assert p.npv["stat"] == pytest.approx(22_704.20)
    # the vectorised evaluation (Monte Carlo path) gives the same
    c = compile_calculation(parse_parameter_set(TAX))
    ev = evaluate(c, *base_inputs(c))
    assert ev.npv[0, 0] == pytest.approx(15_750) and ev.npv[0, 2] == pytest.approx(22_704.20)


def test_am_bidrag_needs_the_kind_of_income():
    doc = json.loads(json.dumps(TAX))
    doc["tax"]["taxable"]["kontanthjaelp_weeks"] = 2900
    with pytest.raises(ParameterError, match=r"tax\.taxable\.kontanthjaelp_weeks: with am_bidrag, say whether"):
        parse_parameter_set(doc)
    doc["tax"]["taxable"]["kontanthjaelp_weeks"] = {"kroner": 2900, "income": "benefit"}
    with pytest.raises(ParameterError, match="must be earned or transfer"):
        parse_parameter_set(doc)


def test_a_stated_forecast_replaces_the_rule_for_the_years_it_names(tmp_path):
    doc = {"name": "made_up", "status": "illustrative (test data)", "unit": "index points", "source": "made up",
           "forecast": {2025: 0.03}, "forecast_source": "a made-up forecast for the test",
           "monthly": {2023: [100.0] * 12, 2024: [101.0] * 6 + [None] * 6}}
    path = tmp_path / "made_up.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    index = load_price_index(str(path))
    g = 1.01  # June 2023 → June 2024
    assert index.level(2024) == pytest.approx((6 * 101 + sum(101 * g ** (k / 12) for k in range(1, 7))) / 12)
    dec24 = 101 * g ** 0.5
    assert index.level(2025) == pytest.approx(sum(dec24 * 1.03 ** (m / 12) for m in range(1, 13)) / 12)
    dec25 = dec24 * 1.03
    assert index.level(2026) == pytest.approx(sum(dec25 * g ** (m / 12) for m in range(1, 13)) / 12)
    (w,) = index.warnings_for(2025)
    assert "stated forecast 2025 +3.00 % (a made-up forecast for the test)" in w
    with pytest.raises(ParameterError, match="month 2024-03 is missing inside the series"):
        bad = dict(doc, monthly={2024: [1.0, 1.0, None, 1.0] + [None] * 8})
        path.write_text(yaml.safe_dump(bad), encoding="utf-8")
        load_price_index(str(path))


def test_expensive_case_thresholds_in_2025_are_an_estimate_shown_as_a_warning():
    doc = json.loads(json.dumps(PRICE_2025))
    doc["refusion"] = {"expensive_cases": {"items": ["nights"], "case_expense": 2_000_000}}
    p = project(parse_parameter_set(doc))
    (w,) = [w for w in p.warnings if "serviceloven_176" in w]
    assert "thresholds at 2022 level carried +3 year(s) to 2025" in w and "estimate" in w
    assert "nettoprisindeks" not in w  # not indexed with the net price index
