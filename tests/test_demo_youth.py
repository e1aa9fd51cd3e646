"""The youth demo (`som demo --scenario youth`): SØM's silo example generated, ingested, evaluated and projected.

* the ``youth_behaviour`` world plants what the story says (children at the start, adult outcomes observed);
* known truth: the planted event-time effects lie in the reported intervals, the correct assumptions come back
  consistent and the deliberately optimistic conviction profile is refuted (the demo's size and seed);
* the calculation document: børne- og ungeudvalget pays the intervention (to the krone), beskæftigelsesudvalget
  gains;
* the command itself, through the installed ``som`` entry point and the Dagster graph, on a small world.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline import evaluation as ev
from pipeline.registers import build_panel, read_manifest
from som_models.parameters import parse_parameter_set
from som_models.projection import project
from som_models.simulate import YOUTH_BEHAVIOUR, simulate, write_delivery
from som_reference import asset
from som_reference.strict_yaml import load_yaml

SPEC = asset("evaluations", "youth_behaviour_demo.yaml")
DOC = asset("parameters", "youth_behaviour_demo.yaml")
SOM = shutil.which("som", path=str(Path(sys.executable).parent)) or "som"
BU, BESK = "boerne_og_ungeudvalget", "beskaeftigelsesudvalget"


def test_the_world_follows_children_into_adulthood():
    sim = simulate("youth_behaviour", 1500, 4)
    start = sim.frames["indsats"].select("PNR", pl.col("START_DATO").dt.year().alias("start"))
    born = sim.frames["bef200812"].select("PNR", pl.col("FOED_DAG").dt.year().alias("born"))
    ages = start.join(born, on="PNR", how="inner").select(pl.col("start") - pl.col("born"))
    lo, hi = YOUTH_BEHAVIOUR.eligible_ages
    assert ages.height > 100 and ages.to_series().min() >= lo and ages.to_series().max() <= hi
    rows = {r["event_time"]: r for r in sim.truth["att_by_event_time"]}
    # children at the start: no kontanthjælp or wage income in the start year, so no effect there ...
    assert rows[0]["kontanthjaelp_weeks"] == 0 and rows[0]["earnings_dkk"] == 0
    # ... and the adult effects are observed: every participant is an adult from event time 5 on
    assert max(rows) >= 9 and sum(r["n_treated"] for e, r in rows.items() if e >= 5) > 0
    assert all(rows[e]["kontanthjaelp_weeks"] < 0 and rows[e]["earnings_dkk"] > 0 for e in range(5, 10))
    assert all(rows[e]["convictions"] < 0 and rows[e]["no_conviction"] > 0 for e in range(0, 5))
    # placements end at 18: no placement effect once every participant is an adult
    assert all(rows[e]["placement_days"] == 0 for e in range(6, 10)) and rows[1]["placement_days"] < 0


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The demo's world (8000 persons, seed 2) through ingestion, the estimators and the verdicts."""
    sim = simulate("youth_behaviour", 8000, 2)
    folder = write_delivery(sim, tmp_path_factory.mktemp("youth") / "d", truth_panel=False)
    loaded = ev.load_spec(SPEC)
    built = build_panel(read_manifest(folder), b"y" * 32, max_gx_rows=0)
    effects = ev.realised_effects(built.panel, built.treatments, loaded.spec, loaded.seed)
    verdicts = {v.assumption: v for v in ev.verdicts(loaded.seed, effects.table, ev.pretrend_frame(effects), loaded.spec)}
    return sim, effects, verdicts


def test_planted_effects_inside_the_reported_intervals(evaluated):
    """Every planted event-time effect (consequence years 1–9, both cohorts observed) lies inside its interval,
    simultaneously over outcomes × years (Bonferroni, from the reported SEs)."""
    from scipy.stats import norm

    sim, effects, _ = evaluated
    table = effects.table.filter(pl.col("estimand") == "event")
    outcomes = ("no_conviction", "convictions", "kontanthjaelp_weeks", "earnings_dkk")
    truth = [r for r in sim.truth["att_by_event_time"] if 1 <= r["event_time"] <= 9]
    z = norm.ppf(1 - 0.05 / (2 * len(outcomes) * len(truth)))
    for row in truth:
        for outcome in outcomes:
            est = table.filter((pl.col("outcome") == outcome) & (pl.col("event_time") == row["event_time"])).to_dicts()[0]
            assert abs(est["estimate"] - row[outcome]) <= z * est["se"], (outcome, row["event_time"])


def test_correct_assumptions_consistent_and_the_optimistic_one_refuted(evaluated):
    _, _, verdicts = evaluated
    labels = {k: v.label for k, v in verdicts.items()}
    assert labels["success_rate"] == "consistent"
    assert labels["effect_path:kontanthjaelp_weeks"] == "consistent"
    assert labels["effect_path:earnings_dkk"] == "consistent"
    # the business case's conviction profile is ~2.2 × the planted one: refuted, the effect was overestimated
    conv = verdicts["effect_path:convictions"]
    assert conv.label == "refuted-overestimated" and conv.assumed < conv.ci_low < conv.realised < 0
    # the noisier items are not refuted (their assumptions are the planted size)
    for item in ("prison_days", "placement_days", "psychiatric_bed_days"):
        assert not labels[f"effect_path:{item}"].startswith("refuted"), item


def test_the_document_has_kommune_region_and_stat_prices_and_the_cost_falls_on_boerne_og_unge():
    doc = load_yaml(DOC)
    payers = {p for prices in doc["prices"].values() for p in ("kommune", "region", "stat") if p in prices}
    assert payers == {"kommune", "region", "stat"}
    params = parse_parameter_set(doc)
    p = project(params)
    first = params.cohorts[0]
    # hand case: in the first cohort's course year the only kommune amount is the cost line, assigned to børn og
    # unge — N · amount to the krone (consequences start in consequence year 1, the year after)
    (cost,) = doc["costs"]
    assert cost["committee"] == BU
    year0 = p.committees.filter(pl.col("year") == first[0])
    assert year0.to_dicts() == [{"year": first[0], "committee": BU, "amount": first[1] * cost["amount"],
                                 "discounted": first[1] * cost["amount"]}]
    assert p.npv_by_committee[BU] < 0 < p.npv_by_committee[BESK]
    assert p.npv["region"] > 0 and p.npv["stat"] > 0


def test_the_document_states_causal_kinds_and_tested_items():
    params = parse_parameter_set(load_yaml(DOC), require_kind=True)
    assert set(params.kinds().values()) == {"causal"} and all(c.kind_stated for c in params.consequences)
    # every consequence item is an outcome of the canonical panel the youth world's delivery ingests to
    from som_models.simulate import OUTCOMES

    assert {c.item for c in params.consequences} <= set(OUTCOMES)
    assert params.success_measure.outcome == YOUTH_BEHAVIOUR.success[1]


def test_som_demo_scenario_youth_shows_boerne_og_unge_paying_and_beskaeftigelse_gaining(tmp_path):
    """The command through the installed entry point and the Dagster graph (the housing demo's path), small world:
    børne- og unge pays and beskæftigelse gains in the terminal, the report and the spreadsheet."""
    import openpyxl

    work = tmp_path / "work"
    book = tmp_path / "youth.xlsx"
    result = subprocess.run([SOM, "demo", "--scenario", "youth", "--persons", "1500", "--workdir", str(work),
                             "--xlsx", str(book), "--json", "-"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["scenario"] == "youth" and doc["intervention"] == "youth_behaviour_demo"
    assert Path(doc["source"]["delivery"]).name == "demo-youth" and Path(doc["report"]).is_file()
    assert {v["assumption"] for v in doc["verdicts"]} >= {"success_rate", "effect_path:convictions",
                                                         "effect_path:kontanthjaelp_weeks", "effect_path:earnings_dkk"}
    bu, besk = f"kommune/{BU}", f"kommune/{BESK}"
    for version in ("before", "after"):
        npv = doc["udvalg"][version]
        assert npv[bu] < 0 < npv[besk], (version, npv)
    # the terminal: the sentence and the projected-vs-realised table per udvalg
    human = result.stderr
    pays, _, gains = human.partition("Who pays, who gains")[2].partition("gains —")
    assert f"pays — {bu}" in pays and besk in gains.splitlines()[0]
    assert doc["udvalg_comparison"]["accounts"] and bu in human and besk in human
    # the report (Danish): both udvalg in the udvalg table, børne- og unge investing
    html = Path(doc["report"]).read_text(encoding="utf-8")
    table = html[html.index('id="udvalg"'):]
    assert BU in table and BESK in table and "investerer" in table
    # the spreadsheet: the report's Udvalg sheet, NPV per payer and udvalg
    rows = list(openpyxl.load_workbook(book, read_only=True)["Udvalg"].iter_rows(values_only=True))
    npv = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert npv[("kommune", BU)] < 0 < npv[("kommune", BESK)]
    assert npv[("kommune", BU)] == pytest.approx(doc["udvalg"]["after"][bu], rel=1e-9)


def test_unknown_scenario_is_refused():
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, ["demo", "--scenario", "homeless"])
    assert result.exit_code != 0 and "housing|youth" in result.output
