"""Evidence accounting through the one evaluation path (Dagster graph via `som evaluate`): two cumulative
vintages of one world handed over as panels; after approving the first, the second tests the approved version
and updates the root prior; the stored version records the panel's person-year window."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import ParameterStore

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "assets" / "evaluations" / "housing_first_demo.yaml"
HF = "housing_first_demo"


def _invoke(args):
    return CliRunner().invoke(app, args, env={"SOM_DATABASE_URL": "", "SOM_EVALUATIONS_DIR": None})


def test_second_cumulative_vintage_updates_the_root_prior_through_dagster(tmp_path):
    from pipeline.registers import build_panel, read_manifest
    from som_models.simulate import simulate, write_delivery

    folder = write_delivery(simulate("homelessness", 1500, 31), tmp_path / "d")
    built = build_panel(read_manifest(folder), b"k" * 32)
    treatments = tmp_path / "treatments.parquet"
    built.treatments.select("person_id", "start_year").write_parquet(treatments)
    work = tmp_path / "w"
    proposals = {}
    for cut in (2020, 2022):
        part = built.panel.filter(pl.col("year") <= cut)
        path = tmp_path / f"panel_{cut}.parquet"
        part.write_parquet(path)
        result = _invoke(["evaluate", str(SPEC), "--workdir", str(work), "--panel", str(path), "--treatments",
                          str(treatments), "--vintage", str(cut), "--json", "-"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        proposals[cut] = doc
        if cut == 2020:
            assert doc["tested_version"] == 1 and doc["proposal"]["version"] == 2
            approve = _invoke(["params", "approve", HF, "2", "--reason", "vintage 2020", "--by", "t",
                               "--workdir", str(work)])
            assert approve.exit_code == 0, approve.output
    later = proposals[2022]
    assert later["tested_version"] == 2 and later["proposal"]["version"] == 3
    assert "root version 1" in later["proposal"]["reason"]
    with ParameterStore(f"sqlite:///{work / 'som.db'}") as store:
        v2, v3 = store.get_version(HF, 2), store.get_version(HF, 3)
        persons = built.panel.get_column("person_id").n_unique()
        assert (v2.evidence_window["first_year"], v2.evidence_window["last_year"]) == (2015, 2020)
        assert v3.evidence_window["last_year"] == 2022 and v3.evidence_window["persons"] == persons
        assert (v2.prior_version, v3.prior_version, v3.parent_version) == (None, 1, 2)
        seed = store.get_version(HF, 1).content["success_rate"]
        change = next(c for c in v3.content["provenance"]["changes"] if c["parameter"] == "success_rate")
        assert (change["prior"], change["prior_se"]) == (seed["value"], seed["se"])
        assert change["from"] == v2.content["success_rate"]["value"]
