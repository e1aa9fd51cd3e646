"""After an evaluation: projected (the version under test) vs realised (the proposal) per udvalg, in the
``projections`` asset (the Dagster graph on the demo delivery) — one function, JSON-able."""

import json

import pytest

from pipeline import evaluation as ev
from pipeline.store import ParameterStore
from som_models.parameters import parse_parameter_set


def test_the_projections_asset_compares_per_udvalg(demo_run):
    _, _, _, outcome, _ = demo_run
    assert outcome.success, outcome.failures
    proj = outcome.projections
    cmp = proj["udvalg_comparison"]
    json.dumps(cmp, allow_nan=False)  # JSON-able as it is
    rows = {r["label"]: r for r in cmp["accounts"]}
    before = {a["label"]: a["npv"] for a in proj["before"]["udvalg"]["accounts"]}
    after = {a["label"]: a["npv"] for a in proj["after"]["udvalg"]["accounts"]}
    assert set(rows) == set(before) | set(after)
    for k, r in rows.items():
        assert r["npv_projected"] == pytest.approx(before.get(k, 0.0), abs=1e-9)
        assert r["npv_realised"] == pytest.approx(after.get(k, 0.0), abs=1e-9)
        assert r["npv_difference"] == pytest.approx(r["npv_realised"] - r["npv_projected"], abs=1e-9)
    for payer in ("kommune", "stat"):
        assert sum(r["npv_realised"] for r in cmp["accounts"] if r["payer"] == payer) == pytest.approx(
            proj["after"]["npv"][payer], abs=1e-6)
    # the housing-first demo: shelter nights are priced 850 kr for kommune (socialudvalget) and stat (social) →
    # the two accounts are equal on both sides; the cost line (no committee) is kommune/unassigned and follows
    # the participants, which the evaluation found many more of (1,584 vs 2 × 150)
    for side in ("npv_projected", "npv_realised"):
        assert rows["kommune/socialudvalget"][side] == pytest.approx(rows["stat/social"][side], rel=1e-12)
    from som_models.projection import discount_factors

    def pv_costs(content):
        f = discount_factors(content.get("discounting", "fm2021"), content["horizon_years"])
        return sum(c["participants"] * f[c["year"] - content["start_year"]] for c in content["cohorts"]) * -95_000

    with ParameterStore(outcome.database) as store:
        before_doc = store.get_version("housing_first_demo", outcome.versions["before"]).content
    after_doc = outcome.proposal["content"]
    assert rows["kommune/unassigned"]["npv_projected"] == pytest.approx(pv_costs(before_doc), abs=1e-6)
    assert rows["kommune/unassigned"]["npv_realised"] == pytest.approx(pv_costs(after_doc), abs=1e-6)
    years = cmp["by_year"]
    assert sum(y["kommune/unassigned"]["difference"] for y in years) == pytest.approx(
        -95_000 * (sum(c["participants"] for c in after_doc["cohorts"])
                   - sum(c["participants"] for c in before_doc["cohorts"])), abs=1e-6)
    # the same function the CLI (`som evaluate --json`) calls on the stored documents
    assert ev.udvalg_comparison(before_doc, after_doc) == cmp
    again = ev.udvalg_comparison(outcome.proposal["content"], outcome.proposal["content"])
    assert again is not None and all(r["npv_difference"] == 0 for r in again["accounts"])
    assert ev.udvalg_comparison(outcome.proposal["content"], None) is None
    # the asset's Dagster metadata: NPV per udvalg, projected / realised / difference
    import dagster as dg

    instance = demo_run[4]
    mats = {e.dagster_event.asset_key.to_user_string(): e.dagster_event.event_specific_data.materialization.metadata
            for e in instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    table = {r.data["label"]: r.data for r in mats["projections"]["npv_by_udvalg"].value.records}
    assert set(table) == set(rows)
    assert table["kommune/unassigned"]["npv_realised"] == pytest.approx(rows["kommune/unassigned"]["npv_realised"],
                                                                        rel=1e-7)
    assert parse_parameter_set(outcome.proposal["content"]).intervention == "housing_first_demo"


def test_som_audit_shows_projected_vs_realised_per_udvalg(tmp_path):
    """The latest run with a proposal of each evaluation: the version it tested vs the version it proposed, per
    udvalg — the hand case of tests/test_projection_ledger.py (realised: half the earnings gain, no second-year
    kontanthjælp effect)."""
    from typer.testing import CliRunner

    from pipeline.cli import app
    from tests.test_projection_ledger import doc

    url = f"sqlite:///{tmp_path / 'som.db'}"
    seed = doc()
    realised = doc(consequences={"kontanthjaelp_weeks": [-4, 0], "earnings_dkk": [5000, 10000]})
    verdict = {"assumption": "effect_path:earnings_dkk", "outcome": "earnings_dkk", "label": "refuted-overestimated",
               "test": "z-test", "assumed": 5000.0, "realised": 2500.0, "ci_low": 2000.0, "ci_high": 3000.0,
               "p_adjusted": 0.01, "sentence": "refuted", "evidence": {"n_treated": 200}}
    with ParameterStore(url) as store:
        store.ensure_parameter_set("ledger", seed, source="seed")
        run = store.record_run(evaluation_id="ledger_eval", intervention="ledger", data_vintage="2023-06",
                               data_hash="h" * 64, code_version="c", spec={}, tested_version=1)
        store.propose_version(intervention="ledger", parent_version=1, content=realised, reason="vintage 2023-06",
                              run_id=run.id, data_vintage="2023-06", data_hash="h" * 64, code_version="c",
                              evidence={}, estimates=[], verdicts=[verdict])
    result = CliRunner().invoke(app, ["audit", "ledger", "--json", "-"], env={"SOM_DATABASE_URL": url, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    doc_ = json.loads(result.stdout)
    (entry,) = doc_["udvalg_comparison"]
    assert (entry["evaluation"], entry["tested_version"], entry["proposed_version"]) == ("ledger_eval", 1, 2)
    rows = {r["label"]: r for r in entry["comparison"]["accounts"]}
    assert rows["kommune/beskaeftigelsesudvalget"]["npv_projected"] == pytest.approx(29_875, abs=1e-6)
    assert rows["kommune/beskaeftigelsesudvalget"]["npv_realised"] == pytest.approx(7_000, abs=1e-6)
    assert rows["stat/skatter"]["npv_difference"] == pytest.approx(-17_250, abs=1e-6)
    text = CliRunner().invoke(app, ["audit", "ledger"], env={"SOM_DATABASE_URL": url, "COLUMNS": "200"})
    assert "projected (v1) vs realised (v2) per udvalg" in text.stdout and "29,875" in text.stdout
