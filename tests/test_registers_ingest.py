"""Ingestion of generated deliveries: exactly the outcomes the generator planted, in every format."""

import json
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.registers import build_panel, ingest, load_column_map, pseudonymise, read_manifest
from som_models.simulate import simulate, write_delivery

KEY = b"s" * 32
runner = CliRunner()


@pytest.fixture(scope="module")
def small():
    return simulate("small", 300, 7)


def _expected(sim, columns):
    exp = sim.expected.with_columns(pseudonymise(sim.expected["pnr"], KEY).alias("person_id"),
                                    (pl.col("year") - pl.col("birth_year")).alias("age"))
    return exp.select(columns).sort("person_id", "year")


def _assert_exact(panel: pl.DataFrame, sim):
    assert panel.height == sim.expected.height
    exp = _expected(sim, panel.columns)
    got = panel.sort("person_id", "year")
    for col in panel.columns:
        assert got[col].to_list() == exp[col].to_list(), col


@pytest.mark.parametrize("fmt", ["parquet", "csv", "csv-dk", "sas"])
def test_generated_delivery_ingests_exactly_in_every_format(small, tmp_path, fmt):
    folder = write_delivery(small, tmp_path / fmt, fmt)
    built = build_panel(read_manifest(folder), KEY, max_gx_rows=None if fmt == "parquet" else 0)
    _assert_exact(built.panel, small)
    assert set(built.outcomes) >= {"shelter_nights", "somatic_bed_days", "psychiatric_bed_days", "outpatient_visits",
                                   "emergency_visits", "prison_days", "convictions", "placement_days", "preventive_days",
                                   "earnings_dkk", "kontanthjaelp_weeks", "self_support_weeks"}
    treat = built.treatments
    indsats = small.frames["indsats"]
    assert treat.height == indsats.height and set(treat["arm"]) == {"T", "C"}
    assert treat["start_year"].to_list() == [2020] * treat.height


def test_other_worlds_ingest_exactly(tmp_path):
    for name, persons in (("youth_crime", 800), ("children_placed", 800), ("homelessness", 400)):
        sim = simulate(name, persons, 2)
        built = build_panel(read_manifest(write_delivery(sim, tmp_path / name)), KEY, max_gx_rows=0)
        _assert_exact(built.panel, sim)


def test_panel_matches_the_fingerprints_in_truth_json(small, tmp_path):
    folder = write_delivery(small, tmp_path / "d", "csv-dk")
    truth = json.loads((folder / "truth.json").read_text())["expected_panel"]["by_year"]
    panel = build_panel(read_manifest(folder), KEY, max_gx_rows=0).panel
    for year, entry in truth.items():
        rows = panel.filter(pl.col("year") == int(year))
        assert rows.height == entry["person_years"]
        for outcome, fp in entry.items():
            if outcome == "person_years":
                continue
            v = rows[outcome]
            assert float(v.sum()) == pytest.approx(fp["sum"], rel=1e-12, abs=1e-6), (year, outcome)
            assert float((v * v).sum()) == pytest.approx(fp["sum_sq"], rel=1e-12), (year, outcome)
            assert int((v != 0).sum()) == fp["nonzero"], (year, outcome)
            assert float((v * rows["birth_year"]).sum()) == pytest.approx(fp["sum_x_birth_year"], rel=1e-12), (year, outcome)


def test_column_mapping_config_reads_a_differently_named_delivery(small, tmp_path):
    folder = write_delivery(small, tmp_path / "d")
    manifest = json.loads((folder / "manifest.json").read_text())
    files = []
    for name in manifest["files"]:
        if name.startswith("bef"):
            df = pl.read_parquet(folder / name).rename({"PNR": "cpr_krypt", "KOM": "bopael_kom"})
            new = name.replace("bef", "befolkning_")
            df.write_parquet(folder / new)
            (folder / name).unlink()
            files.append(new)
        elif name == "shelter.parquet":
            pl.read_parquet(folder / name).rename({"START_DATO": "indskrevet"}).write_parquet(folder / "herberg.parquet")
            (folder / name).unlink()
            files.append("herberg.parquet")
        else:
            files.append(name)
    manifest["files"], manifest["sha256"] = files, {}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    config = tmp_path / "columns.yaml"
    config.write_text("bef:\n  file: 'befolkning_{year}12'\n  columns: {PNR: CPR_KRYPT, kom: Bopael_Kom}\n"
                      "shelter:\n  file: herberg\n  columns: {START_DATO: indskrevet}\n")
    built = build_panel(read_manifest(folder), KEY, load_column_map(config), max_gx_rows=0)
    _assert_exact(built.panel, small)


def test_ingest_writes_outputs_atomically_and_records_counts_only(small, tmp_path):
    folder = write_delivery(small, tmp_path / "d")
    out = tmp_path / "out"
    result = ingest(folder, out, KEY)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["ingest.json", "panel.parquet",
                                                                                   "treatments.parquet"]
    _assert_exact(pl.read_parquet(result.panel), small)
    text = (out / "ingest.json").read_text()
    summary = json.loads(text)
    assert summary["rows"]["person_years"] == small.expected.height and summary["vintage"] == "2023-06"
    assert not any(p in text for p in small.frames["bef202212"]["PNR"].to_list())
    # A second ingestion replaces the outputs whole: one version folder remains, the earlier one is pruned.
    ingest(folder, out, KEY, max_gx_rows=0)
    assert len([p for p in (out / ".ingest").iterdir() if p.name.startswith("v-")]) == 1
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["ingest.json", "panel.parquet",
                                                                                   "treatments.parquet"]


def test_cli_generate_then_ingest_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", KEY.hex())
    d, out = tmp_path / "delivery", tmp_path / "panel"
    res = runner.invoke(app, ["generate", "--out", str(d), "--persons", "250", "--seed", "3", "--scenario", "small",
                              "--format", "sas"])
    assert res.exit_code == 0, res.output
    assert (d / "manifest.json").exists() and (d / "truth.json").exists() and (d / "dream.xpt").exists()
    res = runner.invoke(app, ["ingest", str(d), "--out", str(out), "--gx-rows", "0"])
    assert res.exit_code == 0, res.output
    truth = json.loads((d / "truth.json").read_text())["expected_panel"]["by_year"]
    panel = pl.read_parquet(out / "panel.parquet")
    for year, entry in truth.items():
        rows = panel.filter(pl.col("year") == int(year))
        assert rows.height == entry["person_years"]
        assert float(rows["convictions"].sum()) == entry["convictions"]["sum"]
        assert float(rows["earnings_dkk"].sum()) == pytest.approx(entry["earnings_dkk"]["sum"], rel=1e-12)
    # Refuses to overwrite a non-empty folder without --force.
    res = runner.invoke(app, ["generate", "--out", str(d), "--persons", "250", "--scenario", "small"])
    assert res.exit_code == 2 and "--force" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args, message", [
    (["generate", "--out", "X", "--scenario", "nope"], "--scenario must be one of"),
    (["generate", "--out", "X", "--format", "xlsx"], "--format must be one of"),
    (["generate", "--out", "X", "--persons", "3"], "--persons must be at least 20"),
    (["generate", "--out", "X", "--target-share", "0"], "--target-share must be in (0, 1]"),
    (["generate", "--out", "X", "--scenario", "youth_crime", "--first-year", "2012"], "outside the period"),
    (["ingest", "/no/such/folder", "--out", "X"], "is not a folder"),
])
def test_cli_bad_input_is_one_clear_line(tmp_path, args, message):
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_cli_bad_column_config_is_exit_2(small, tmp_path, monkeypatch):
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", KEY.hex())
    folder = write_delivery(small, tmp_path / "d")
    config = tmp_path / "c.yaml"
    config.write_text("bef:\n  columns: {NOT_A_COLUMN: x}\n")
    res = runner.invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "o"), "--columns", str(config)])
    assert res.exit_code == 2 and "unknown column 'NOT_A_COLUMN'" in res.output
    config.write_text("udda:\n  columns: {PNR: x}\n")
    res = runner.invoke(app, ["ingest", str(folder), "--out", str(tmp_path / "o"), "--columns", str(config)])
    assert res.exit_code == 2 and "unknown register 'udda'" in res.output
    shutil.rmtree(folder)
