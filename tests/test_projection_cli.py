"""`som project`: tables and JSON for a calculation document or a stored version; bad input is one line, exit 2."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

DOC = {
    "intervention": "cli", "target_group": "tg", "start_year": 2024, "horizon_years": 3, "price_year": 2024,
    "cohorts": [{"year": 2024, "participants": 50}], "success_rate": {"value": 0.4, "se": 0.1},
    "costs": [{"course_year": 1, "payer": "kommune", "amount": -20000}],
    "consequences": {"shelter_nights": {"units": [-10, -5], "se": [2, 2]}},
    "prices": {"shelter_nights": {"kommune": 800, "stat": 800}}, "discounting": "none",
}


def write(tmp_path, doc, name="calc.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc), encoding="utf-8")
    return path


def one_line_error(result, text):
    assert result.exit_code == 2, result.output
    assert text in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_project_prints_tables_and_writes_json(tmp_path):
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["project", str(write(tmp_path, DOC)), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Budget consequences by year, payer and item" in result.output
    assert "Net present value" in result.output and "Payback year" in result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    # 20 successful × 10 × 800 = 160,000 (2025) and 80,000 (2026) for kommune and for stat; costs −1,000,000.
    assert data["npv"] == {"kommune": -760_000.0, "region": 0.0, "stat": 240_000.0, "total": -520_000.0}
    assert data["payback_year"] is None and "monte_carlo" not in data
    assert {(r["year"], r["payer"], r["item"]): r["amount"] for r in data["rows"]}[(2025, "stat", "shelter_nights")] == 160_000
    assert set(data["rows"][0]) == {"year", "payer", "item", "amount", "discounted"}


def test_project_monte_carlo_json_to_stdout_is_seeded(tmp_path):
    path = write(tmp_path, DOC, "calc.json")
    runs = [runner.invoke(app, ["project", str(path), "--draws", "500", "--seed", "4", "--json", "-"]) for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    data = json.loads(runs[0].stdout)
    assert data == json.loads(runs[1].stdout)
    mc = data["monte_carlo"]
    assert mc["draws"] == 500 and mc["seed"] == 4
    assert set(mc["prob_break_even"]) == {"kommune", "region", "stat", "total"}
    assert {row["input"] for row in mc["tornado"]} == {"success_rate", "consequence:shelter_nights (total units)"}


def test_project_a_stored_parameter_version(tmp_path, monkeypatch):
    from pipeline.store import ParameterStore

    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    seed = yaml.safe_load((ROOT / "assets" / "parameters" / "housing_first_demo.yaml").read_text(encoding="utf-8"))
    with ParameterStore.from_workdir(tmp_path) as store:
        store.ensure_parameter_set("housing_first_demo", seed, title="demo", source="assets/parameters/housing_first_demo.yaml")
    result = runner.invoke(app, ["project", "--intervention", "housing_first_demo", "--version", "1", "--workdir", str(tmp_path),
                                 "--json", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["payback_year"] == 2021  # course-year effects: a year earlier
    missing = runner.invoke(app, ["project", "--intervention", "housing_first_demo", "--version", "9",
                                  "--workdir", str(tmp_path)])
    one_line_error(missing, "no version 9")


@pytest.mark.parametrize("args,text", [
    (["project"], "give either a calculation document CALC or --intervention ID --version V"),
    (["project", "--intervention", "x"], "--intervention needs --version"),
    (["project", "--version", "2"], "give either"),
    (["project", "nowhere.yaml"], "nowhere.yaml: file not found"),
])
def test_bad_arguments_are_one_line_errors(args, text):
    one_line_error(runner.invoke(app, args), text)


def test_bad_documents_are_one_line_errors_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    one_line_error(runner.invoke(app, ["project", str(write(tmp_path, {**DOC, "sucess_rate": 1}))]), "sucess_rate: unknown key")
    bad = {**DOC, "cohorts": [{"year": 2024, "participants": -3}]}
    one_line_error(runner.invoke(app, ["project", str(write(tmp_path, bad))]), "cohorts[0].participants: must be ≥ 0")
    broken = tmp_path / "broken.yaml"
    broken.write_text("intervention: [unclosed\n", encoding="utf-8")
    one_line_error(runner.invoke(app, ["project", str(broken)]), "not valid YAML")
    path = write(tmp_path, DOC)
    one_line_error(runner.invoke(app, ["project", str(path), "--draws", "-1"]), "--draws must be between 0 and")
    one_line_error(runner.invoke(app, ["project", str(path), "--seed", "-2"]), "--seed must be non-negative")
    one_line_error(runner.invoke(app, ["project", str(path), "--intervention", "x", "--version", "1"]), "give either")
    one_line_error(runner.invoke(app, ["project", "--intervention", "x", "--version", "1", "--workdir", str(tmp_path / "empty")]),
                   "no parameter store in")


def test_project_shows_break_even_and_no_stake(tmp_path):
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["project", str(write(tmp_path, DOC)), "--json", str(out), "--draws", "300", "--no-rows"])
    assert result.exit_code == 0, result.output
    assert "Break-even" in result.output and "no stake" in result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    be = data["break_even"]["success_rate"]
    # kommune: −1,000,000 + s × 50 × (10 + 5) × 800 = −1,000,000 + 600,000 s → s* = 5/3 (not reachable)
    assert be["kommune"]["value"] == pytest.approx(5 / 3, abs=1e-12) and be["kommune"]["reachable"] is False
    # total: −1,000,000 + 1,200,000 s → s* = 5/6
    assert be["total"]["value"] == pytest.approx(5 / 6, abs=1e-12) and be["total"]["reachable"] is True
    assert be["region"]["status"] == "no_stake" and be["stat"]["value"] == 0.0
    cost = data["break_even"]["cost_per_participant"]
    # total at s = 0.4 and zero cost: 480,000; costs −1,000,000 for 20,000 kr per participant → 9,600 kr
    assert cost["total"]["value"] == pytest.approx(9_600, abs=1e-9)
    assert cost["kommune"]["status"] == "break_even" and cost["stat"]["status"] == "no_cost"
    assert data["monte_carlo"]["prob_break_even"]["region"] is None and data["monte_carlo"]["no_stake"] == ["region"]
