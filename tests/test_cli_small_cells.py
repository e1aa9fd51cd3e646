"""Small-cell suppression in the CLI outputs that publish person-based numbers: estimate, audit, params show."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.disclosure import SUPPRESSED
from pipeline.store import ParameterStore

runner = CliRunner()


def _panel(tmp_path):
    rng = np.random.default_rng(5)
    rows = []
    for unit in range(1, 81):
        group = 2017 if unit <= 3 else 2018 if unit <= 33 else 0  # cohort 2017 has 3 units, 2018 has 30
        for year in range(2014, 2021):
            rows.append({"id": unit, "year": year, "g": group,
                         "y": float(rng.normal()) + (1.0 if group and year >= group else 0)})
    path = tmp_path / "panel.csv"
    pl.DataFrame(rows).write_csv(path)
    return path


def test_estimate_suppresses_cells_of_fewer_than_min_cell_persons(tmp_path):
    out = tmp_path / "e.json"
    result = runner.invoke(app, ["estimate", str(_panel(tmp_path)), "--id", "id", "--time", "year", "--outcome", "y",
                                 "--group", "g", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["estimates"]
    small = [r for r in rows if r["estimand"] in ("att_gt", "group") and r["group"] == 2017]
    assert small and all(r["suppressed"] and r["estimate"] is None and r["n_treated"] is None for r in small)
    kept = [r for r in rows if r["estimand"] == "group" and r["group"] == 2018]
    assert kept and not kept[0]["suppressed"] and kept[0]["n_treated"] == 30
    assert f"(s) = {SUPPRESSED.format(n=5)}" in result.stdout and "rest on fewer than 5 persons" in result.stdout
    assert result.stdout.count("(s)") > len(small)
    relaxed = runner.invoke(app, ["estimate", str(_panel(tmp_path)), "--id", "id", "--time", "year", "--outcome", "y",
                                  "--group", "g", "--min-cell", "3", "--min-cell-reason", "test of the override",
                                  "--json", "-"])
    assert json.loads(relaxed.stdout)["metadata"]["min_cell_override"] == {"value": 3, "reason": "test of the override"}
    assert not any(r["suppressed"] for r in json.loads(relaxed.stdout)["estimates"] if r["group"] == 2017)
    bad = runner.invoke(app, ["estimate", str(_panel(tmp_path)), "--id", "id", "--time", "year", "--outcome", "y",
                              "--group", "g", "--min-cell", "0"])
    assert bad.exit_code == 2 and "--min-cell" in bad.stderr


def _store_with_small_and_large_verdicts(tmp_path):
    url = f"sqlite:///{tmp_path / 'som.db'}"
    seed = {"success_rate": {"value": 0.25}, "consequences": {"convictions": {"units": [-1.0]}}}
    verdicts = [
        {"assumption": "success_rate", "outcome": "success_rate", "label": "inconclusive", "test": "z", "assumed": 0.25,
         "realised": 0.11, "ci_low": -0.1, "ci_high": 0.3, "p_adjusted": 0.4,
         "sentence": "Inconclusive: 0.11, but only 3 treated persons were observed.", "evidence": {"n_treated": 3}},
        {"assumption": "effect_path:convictions", "outcome": "convictions", "label": "refuted-overestimated",
         "test": "z", "assumed": -0.25, "realised": 0.12, "ci_low": 0.05, "ci_high": 0.19, "p_adjusted": 0.01,
         "sentence": "Refuted: 0.12.", "evidence": {"n_treated": 200}},
    ]
    with ParameterStore(url) as store:
        store.ensure_parameter_set("mst", seed, source="seed")
        run = store.record_run(evaluation_id="mst_eval", intervention="mst", data_vintage="2015-06", data_hash="h" * 64,
                               code_version="c", spec={"min_cell": 5}, tested_version=1)
        store.propose_version(intervention="mst", parent_version=1, content={**seed, "provenance": {"changes": [
            {"parameter": "success_rate", "from": 0.25, "to": 0.2, "realised": 0.11}]}}, reason="r", run_id=run.id,
            data_vintage="2015-06", data_hash="h" * 64, code_version="c",
            evidence={"changes": [{"parameter": "success_rate", "from": 0.25, "to": 0.2, "realised": 0.11},
                                  {"parameter": "consequences.convictions", "from": -1.0, "to": -0.5, "realised": 0.12}],
                      "verdicts": [{k: v[k] for k in ("assumption", "label", "sentence")} for v in verdicts]},
            estimates=[], verdicts=verdicts)
    return {"SOM_DATABASE_URL": url}


def test_audit_and_params_show_withhold_what_rests_on_few_persons(tmp_path):
    env = _store_with_small_and_large_verdicts(tmp_path)
    result = runner.invoke(app, ["audit", "mst", "--json", "-"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (small,) = doc["assumptions"]["success_rate"]
    assert small["realised"] is None and small["ci_low"] is None and small["suppressed"] and small["n_treated"] is None
    assert "3 treated" not in small["sentence"] and "0.11" not in result.stdout
    (large,) = doc["assumptions"]["effect_path:convictions"]
    assert large["realised"] == 0.12 and large["n_treated"] == 200 and not large["suppressed"]
    table = runner.invoke(app, ["audit", "mst"], env=env)
    assert "suppressed" in table.stdout and "0.11" not in table.stdout

    shown = runner.invoke(app, ["params", "show", "mst", "--version", "2", "--json", "-"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "0.11" not in shown.stdout and "3 treated" not in shown.stdout
    version = json.loads(shown.stdout)
    changes = {c["parameter"]: c for c in version["evidence"]["changes"]}
    assert changes["success_rate"]["realised"] is None and changes["consequences.convictions"]["realised"] == 0.12
    assert version["content"]["provenance"]["changes"][0]["realised"] is None
    human = runner.invoke(app, ["params", "show", "mst", "--version", "2"], env=env)
    assert "0.11" not in human.stdout
