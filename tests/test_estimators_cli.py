"""`som estimate`: reference data through the CLI, JSON contract, clear one-line errors."""

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()
REF = Path(__file__).parent / "reference"
MPDTA = str(REF / "mpdta" / "mpdta.csv")
BASE = ["estimate", MPDTA, "--id", "countyreal", "--time", "year", "--outcome", "lemp", "--group", "first.treat"]


def test_conditional_dr_json_contract(tmp_path):
    out = tmp_path / "est.json"
    result = runner.invoke(app, [*BASE, "--covariates", "lpop", "--method", "dr", "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    rows = doc["estimates"]
    assert set(rows[0]) == {"outcome", "estimand", "group", "time", "event_time", "estimate", "se", "ci_low", "ci_high",
                            "n_treated", "n_control", "suppressed"}
    assert not any(r["suppressed"] for r in rows)  # mpdta: every cell has at least 5 counties
    cell = next(r for r in rows if r["estimand"] == "att_gt" and r["group"] == 2004 and r["time"] == 2006)
    assert cell["estimate"] == pytest.approx(-0.1404483, abs=1e-6)
    assert {r["estimand"] for r in rows} == {"att_gt", "event", "group", "calendar", "overall"}
    meta = doc["metadata"]
    assert meta["method"] == "dr" and meta["covariates"] == ["lpop"] and meta["comparison_group"] == "never treated"
    assert meta["data"]["sha256"] == hashlib.sha256(Path(MPDTA).read_bytes()).hexdigest()
    assert meta["pretrend_test"]["lemp"]["df"] == 5
    assert meta["code_version"]
    assert "2004" in result.output and "Pre-trend test" in result.output


def test_bootstrap_uniform_bands_reported(tmp_path):
    out = tmp_path / "boot.json"
    result = runner.invoke(app, [*BASE, "--bootstrap", "499", "--seed", "7", "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    crit = doc["metadata"]["bootstrap"]["critical_values"]["lemp"]
    assert crit["cells"]["critical_value"] > 2.0 and crit["dynamic"]["critical_value"] > 2.0
    ev = next(r for r in doc["estimates"] if r["estimand"] == "event" and r["event_time"] == 2)
    assert ev["ci_high"] - ev["estimate"] == pytest.approx(crit["dynamic"]["critical_value"] * ev["se"], rel=1e-9)
    again = runner.invoke(app, [*BASE, "--bootstrap", "499", "--seed", "7", "--json", str(tmp_path / "b2.json")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "b2.json").read_text())["estimates"] == doc["estimates"]


def test_rct_design_on_the_nsw_experiment(tmp_path):
    out = tmp_path / "rct.json"
    result = runner.invoke(app, ["estimate", str(REF / "nsw_dw_rct" / "nsw_dw_long.csv"), "--id", "id", "--time", "year",
                                 "--outcome", "re", "--design", "rct", "--arm", "treat", "--start", "1976",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    row = next(r for r in doc["estimates"] if r["event_time"] == 2)
    assert row["estimate"] == pytest.approx(1794.342, abs=1e-3)
    assert doc["metadata"]["method"] == "dim"


def test_semicolon_csv_and_treatment_indicator(tmp_path):
    import polars as pl

    d = pl.read_csv(MPDTA).with_columns(
        ((pl.col("first.treat") > 0) & (pl.col("year") >= pl.col("first.treat"))).cast(pl.Int8).alias("D"))
    text = d.write_csv(separator=";").replace(".", ",").replace("first,treat", "first.treat")
    path = tmp_path / "danish.csv"
    path.write_text(text)
    result = runner.invoke(app, ["estimate", str(path), "--id", "countyreal", "--time", "year", "--outcome", "lemp",
                                 "--treatment", "D", "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "o.json").read_text())["estimates"]
    cell = next(r for r in rows if r["estimand"] == "att_gt" and r["group"] == 2004 and r["time"] == 2006)
    assert cell["estimate"] == pytest.approx(-0.1373, abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--covariates", "nope"], "column 'nope' not found"),
    (["--method", "dr"], "--method dr needs --covariates"),
    (["--control", "sometimes"], "--control must be never or notyet"),
    (["--bootstrap", "1"], "--bootstrap must be 0"),
])
def test_bad_options_are_one_clear_line(args, message):
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_file_and_non_numeric_outcome(tmp_path):
    result = runner.invoke(app, ["estimate", str(tmp_path / "none.parquet"), "--id", "a", "--time", "b", "--outcome", "c",
                                 "--group", "d"])
    assert result.exit_code == 2 and "does not exist" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("id,year,y,g\n1,2000,a,0\n1,2001,b,0\n2,2000,c,2001\n2,2001,d,2001\n")
    result = runner.invoke(app, ["estimate", str(bad), "--id", "id", "--time", "year", "--outcome", "y", "--group", "g"])
    assert result.exit_code == 2 and "column 'y' must be numeric" in result.output


def test_cluster_option_clusters_the_standard_errors(tmp_path):
    import polars as pl

    """--cluster reaches the dispatcher: the SEs change, the metadata name the level and count the clusters."""
    base = ["estimate", MPDTA, "--id", "countyreal", "--time", "year", "--outcome", "lemp", "--group", "first.treat"]
    data = pl.read_csv(MPDTA).with_columns((pl.col("countyreal") % 40).alias("region"))
    path = tmp_path / "mpdta_regions.csv"
    data.write_csv(path)
    base[1] = str(path)
    plain = runner.invoke(app, [*base, "--json", str(tmp_path / "a.json")])
    clustered = runner.invoke(app, [*base, "--cluster", "region", "--json", str(tmp_path / "b.json")])
    assert plain.exit_code == 0 and clustered.exit_code == 0, clustered.output
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert b["metadata"]["clusters"] == data["region"].n_unique() and "region" in b["metadata"]["standard_errors"]
    se_a = {(r["estimand"], r["event_time"]): r["se"] for r in a["estimates"] if r["estimand"] == "overall"}
    se_b = {(r["estimand"], r["event_time"]): r["se"] for r in b["estimates"] if r["estimand"] == "overall"}
    assert se_a.keys() == se_b.keys() and all(se_a[k] != se_b[k] for k in se_a)
    bad = runner.invoke(app, [*base, "--cluster", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
