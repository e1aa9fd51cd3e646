"""`som kb consequences` and the ``consequence_profiles`` asset: SØM-style profiles from a register panel.

Known-truth world: 2,000 persons delimited in 2018 (years 2017–2023). Success = no shelter night in 2019, more
likely for women (sex = 1: 60 %, sex = 0: 30 %). Weeks on benefits ``W = 10 + 8·sex − 4·S·1{year ≥ 2019} + N(0, 3²)``:
the adjusted success-vs-non-success contrast is −4 in every consequence year k = 1 … 5 (2019 … 2023), while the
unadjusted contrast is biased by sex: −4 + 8·(P(sex=1|S=1) − P(sex=1|S=0)) = −4 + 8·(0.3/0.45 − 0.2/0.55) ≈ −1.58."""

import json

import numpy as np
import polars as pl
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from som_models.parameters import parse_parameter_set

runner = CliRunner()


def world(tmp_path, n=2000, seed=3, tiny_late=False):
    rng = np.random.default_rng(seed)
    sex = (rng.random(n) < 0.5).astype(float)
    success = rng.random(n) < np.where(sex == 1, 0.6, 0.3)
    rows = []
    for year in range(2017, 2024):
        after = year >= 2019
        nights = np.where(after & success, 0.0, rng.integers(1, 60, n).astype(float))
        weeks = 10 + 8 * sex - 4 * (success & after) + rng.normal(0, 3, n)
        if tiny_late and year == 2023:  # only 3 successes still observed in 2023: that year must be withheld
            keep = ~success | (np.cumsum(success) <= 3)
            weeks = np.where(keep, weeks, np.nan)
        rows.append(pl.DataFrame({"person_id": [f"p{i:05d}" for i in range(n)], "year": np.full(n, year),
                                  "shelter_nights": nights, "weeks": weeks, "noise": rng.normal(0, 1, n), "sex": sex}))
    path = tmp_path / "panel.parquet"
    pl.concat(rows).write_parquet(path)
    return path


ARGS = ["--target-group", "tg", "--outcomes", "weeks", "--success-outcome", "shelter_nights", "--rule", "zero",
        "--delimitation-year", "2018", "--years", "5"]


def test_profiles_recover_the_adjusted_contrast_and_drop_into_a_calculation_document(tmp_path):
    panel = world(tmp_path)
    out = tmp_path / "profile.yaml"
    result = runner.invoke(app, ["kb", "consequences", str(panel), *ARGS, "--factors", "sex", "--out", str(out),
                                 "--json", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert doc["kind"] == "descriptive" and doc["status"].startswith("estimated")
    cons = doc["consequences"]["weeks"]
    assert cons["kind"] == "descriptive" and len(cons["units"]) == 5
    for u, se in zip(cons["units"], cons["se"], strict=True):
        assert abs(u - (-4)) < 4 * se and se < 0.3
    assert all(r["significant_5pct"] for r in doc["estimates"])
    prov = doc["provenance"]
    assert prov["panel"] == "panel.parquet" and len(prov["panel_sha256"]) == 64 and prov["persons_in_panel"] == 2000
    assert "p00001" not in out.read_text(encoding="utf-8")  # no person id leaves the estimation
    # the profile is a valid descriptive item of a calculation document
    calc = {"intervention": "x", "target_group": "tg", "start_year": 2025, "horizon_years": 7, "price_year": 2024,
            "cohorts": [{"year": 2025, "participants": 10}], "success_rate": {"value": 0.2}, "costs": [],
            "consequences": doc["consequences"], "prices": {"weeks": {"kommune": 1000}}}
    params = parse_parameter_set(calc)
    assert params.kinds() == {"weeks": "descriptive"}
    assert json.loads((tmp_path / "p.json").read_text())["consequences"]["weeks"]["units"] == cons["units"]
    # without adjustment the contrast is confounded by sex (≈ −1.58), which the adjusted run corrects
    raw = runner.invoke(app, ["kb", "consequences", str(panel), *ARGS, "--json", "-"])
    units = json.loads(raw.stdout)["consequences"]["weeks"]["units"]
    df = pl.read_parquet(panel).filter(pl.col("year") == 2019).with_columns((pl.col("shelter_nights") == 0).alias("s"))
    gap = df.filter(pl.col("s"))["sex"].mean() - df.filter(~pl.col("s"))["sex"].mean()  # in this sample
    assert all(abs(u - (-4 + 8 * gap)) < 4 * 0.25 for u in units) and all(u > -3 for u in units)


def test_small_cells_are_withheld_and_the_profile_stops_before_them(tmp_path):
    panel = world(tmp_path, tiny_late=True)
    result = runner.invoke(app, ["kb", "consequences", str(panel), *ARGS, "--factors", "sex", "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    late = [r for r in doc["estimates"] if r["event_time"] == 5]
    assert late and late[0]["suppressed"] and late[0]["estimate"] is None and late[0]["n_treated"] is None
    for r in doc["estimates"]:
        assert r["suppressed"] or (r["n_treated"] >= 5 and r["n_control"] >= 5)
    assert len(doc["consequences"]["weeks"]["units"]) == 4
    assert "stops before year 5 (suppressed)" in doc["consequences"]["weeks"]["source"]
    assert "suppressed (<5)" in result.stderr


def test_zero_insignificant_applies_soms_rule_and_bad_input_is_one_line(tmp_path):
    panel = world(tmp_path)
    result = runner.invoke(app, ["kb", "consequences", str(panel), *ARGS[:3], "weeks,noise", *ARGS[4:],
                                 "--factors", "sex", "--zero-insignificant", "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for item in ("weeks", "noise"):
        rows = sorted((r for r in doc["estimates"] if r["outcome"] == item), key=lambda r: r["event_time"])
        expected = [r["estimate"] if r["significant_5pct"] else 0.0 for r in rows]
        assert doc["consequences"][item]["units"] == expected
    assert doc["consequences"]["weeks"]["units"] == [r["estimate"] for r in doc["estimates"] if r["outcome"] == "weeks"]
    noise_flags = [r["significant_5pct"] for r in doc["estimates"] if r["outcome"] == "noise"]
    assert not all(noise_flags)  # pure noise: (this seed) at least one year is not significant → 0
    bad = runner.invoke(app, ["kb", "consequences", str(panel), *ARGS[:3], "nope", *ARGS[4:]])
    assert bad.exit_code == 2 and "outcome column(s) nope not found" in bad.output and "Traceback" not in bad.output
    both = runner.invoke(app, ["kb", "consequences", str(panel), "-t", "tg", "--outcomes", "weeks",
                               "--success-outcome", "shelter_nights", "--rule", "zero"])
    assert both.exit_code == 2 and "--delimitation-year" in both.output
    low = runner.invoke(app, ["kb", "consequences", str(panel), *ARGS, "--min-cell", "3"])
    assert low.exit_code == 2 and "below the agency's small-cell floor" in low.output


def test_dagster_asset_runs_the_same_path_as_the_command(tmp_path):
    import dagster as dg

    from pipeline.defs.assets import consequence_profiles
    from pipeline.defs.io_managers import PolarsParquetIOManager
    from pipeline.defs.resources import SomSettings

    panel = world(tmp_path)
    config = {"panel": str(panel), "target_group": "tg", "outcomes": ["weeks"], "success_outcome": "shelter_nights",
              "rule": "zero", "delimitation_year": 2018, "years": 5, "factors": ["sex"]}
    result = dg.materialize(
        [consequence_profiles],
        resources={"som": SomSettings(workdir=str(tmp_path / "som")),
                   "io_manager": PolarsParquetIOManager(base_dir=str(tmp_path / "storage"))},
        run_config={"ops": {"consequence_profiles": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    doc = result.output_for_node("consequence_profiles")
    cli = runner.invoke(app, ["kb", "consequences", str(panel), *ARGS, "--factors", "sex", "--json", "-"])
    assert doc["consequences"] == json.loads(cli.stdout)["consequences"]
    written = yaml.safe_load((tmp_path / "som" / "knowledge" / "consequences_tg.yaml").read_text(encoding="utf-8"))
    assert written["consequences"] == doc["consequences"]
    meta = result.asset_materializations_for_node("consequence_profiles")[0].metadata
    assert meta["profiles"].value == {"weeks": 5}
