"""The evaluation's design block selects the estimator through the dispatcher; published references through
`som evaluate` on panels handed over as files (tests/reference/evaluate_designs/SOURCE.md).

The CLI runs are the expensive part (each materialises the Dagster graph): four, run in subprocesses two at a
time with ``SOM_EVALUATIONS_DIR`` pointing at the reference specs (the evaluation partitions are read from that
folder when the definitions load, so a fresh process is independent of what other tests loaded). Everything
else calls the plain functions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from reference_files import checked

from pipeline import evaluation as ev
from pipeline.registers.files import DeliveryError
from pipeline.registers.handover import assignment_level, read_panel
from som_models.evaluation_spec import parse_evaluation_spec
from som_models.parameters import ParameterError

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"
HERE = REF / "evaluate_designs"
SPECS = HERE / "evaluations"
BASE = {"evaluation": "e", "intervention": "i", "parameters": "p.yaml"}
SOM = shutil.which("som", path=str(Path(sys.executable).parent)) or "som"  # the installed entry point

# R did / csdid, xformla = ~lpop, est_method = "dr" (tests/reference/mpdta/EXPECTED.md, Source C), t = 2004..2007.
DR_MPDTA = {
    2004: [-0.0145297, -0.0764219, -0.1404483, -0.1069039],
    2006: [-0.0004721, -0.0062025, 0.0009606, -0.0412939],
    2007: [0.0267278, -0.0045766, -0.0284475, -0.0287814],
}


def _checked(name: str) -> Path:
    """A derived file of this folder, checked against PROVENANCE.json."""
    return checked("evaluate_designs", name)


def _loaded(name: str):
    return ev.load_spec(SPECS / f"{name}.yaml")


def _data(loaded):
    return read_panel(loaded.data_path("panel"), loaded.data_path("treatments"), loaded.spec.data.columns)


# ---------------------------------------------------------------------------------------------------- the spec


def test_design_is_a_name_or_a_mapping_checked_by_the_dispatcher():
    old = parse_evaluation_spec({**BASE, "design": "staggered", "control": "notyet", "base_period": "universal"})
    assert (old.design, old.control, old.base_period) == ("staggered", "notyet", "universal")
    s = parse_evaluation_spec({**BASE, "design": {"design": "staggered", "covariates": ["lpop"], "method": "dr",
                                                  "cluster": "municipality", "bootstrap": 99, "seed": 3}})
    settings = s.estimation.settings(alpha=0.05, min_e=1, cluster="municipality")
    assert (settings.covariates, settings.method, settings.bootstrap, settings.seed, settings.cluster) == (
        ("lpop",), "dr", 99, 3, "municipality")
    assert s.estimation.columns() == ("lpop", "municipality")
    bad = {
        "design.method for the rct design must be dim or ancova": {"design": "rct", "method": "dr"},
        "design.method dr needs design.covariates": {"method": "dr"},
        "design.cluster (clustered standard errors) is implemented for the staggered design only": {
            "design": "rct", "cluster": "municipality"},
        "design.colour: unknown key": {"colour": 1},
        "design.bootstrap must be 0 (off) or at least 2 draws": {"bootstrap": 1},
        "design must be staggered, rct, matched": "did",
    }
    for message, design in bad.items():
        with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_evaluation_spec({**BASE, "design": design})
    with pytest.raises(ParameterError, match=r"control: with a design: mapping give it inside it \(design.control\)"):
        parse_evaluation_spec({**BASE, "design": {"design": "staggered"}, "control": "never"})


def test_assumptions_assigned_by_and_the_arm_column_are_spec_keys():
    s = parse_evaluation_spec({**BASE, "assumptions": ["success_rate", "effect_path:x"], "assigned_by": "municipality",
                               "data": {"panel": "p.csv", "columns": {"arm": "treat"}}})
    assert s.assumptions == ("success_rate", "effect_path:x") and s.assigned_by == "municipality"
    assert s.data.columns == {"arm": "treat"}
    assert parse_evaluation_spec(BASE).assumptions is None
    with pytest.raises(ParameterError, match="assumptions\\[0\\]: 'earnings' is not success_rate or effect_path"):
        parse_evaluation_spec({**BASE, "assumptions": ["earnings"]})
    with pytest.raises(ParameterError, match="assumptions: effect_path:x listed twice"):
        parse_evaluation_spec({**BASE, "assumptions": ["effect_path:x", "effect_path:x"]})


def test_assumptions_must_name_the_parameter_sets_assumptions(tmp_path):
    text = (SPECS / "nsw_rct_0.yaml").read_text().replace("[effect_path:earnings]", "[effect_path:shelter_nights]")
    (tmp_path / "evaluations").mkdir()
    (tmp_path / "evaluations" / "s.yaml").write_text(text.replace("../parameters/", f"{HERE}/parameters/"))
    with pytest.raises(ParameterError, match="effect_path:shelter_nights is not an assumption of nsw_earnings_0.yaml "
                                             r"\(it has success_rate, effect_path:earnings\)"):
        ev.load_spec(tmp_path / "evaluations" / "s.yaml")


# -------------------------------------------------------------------------------------------- data and designs


def test_handed_over_arm_is_read_as_T_or_C_and_bad_values_name_the_column(tmp_path):
    loaded = _loaded("nsw_rct_0")
    _checked("nsw_dw_randomisation.csv")
    _, treatments = _data(loaded)
    counts = dict(treatments.group_by("arm").len().iter_rows())
    assert counts == {"T": 185, "C": 260} and treatments.get_column("start_year").unique().to_list() == [1976]
    pl.DataFrame({"id": [1, 2, 3], "randomised": [1976] * 3, "treat": ["1", "yes", "maybe"]}).write_csv(tmp_path / "t.csv")
    with pytest.raises(DeliveryError, match=r"treatments t.csv: column 'treat' \(arm\) must be T/C or 1/0; 2 row\(s\)"):
        read_panel(loaded.data_path("panel"), tmp_path / "t.csv", loaded.spec.data.columns)


def test_rct_compares_the_arms_and_a_staggered_design_never_counts_the_control_arm_as_treated():
    loaded = _loaded("nsw_rct_0")
    panel, treatments = _data(loaded)
    rct = ev.realised_effects(panel, treatments, loaded.spec, loaded.seed)
    row = rct.table.filter((pl.col("outcome") == "earnings") & (pl.col("event_time") == 2)).row(0, named=True)
    assert row["estimate"] == pytest.approx(1794.342, abs=1e-3)
    assert (row["n_treated"], row["n_control"]) == (185, 260)
    y78 = panel.filter(pl.col("year") == 1978).join(treatments, on="person_id")
    a = y78.filter(pl.col("arm") == "T").get_column("re").to_numpy()
    b = y78.filter(pl.col("arm") == "C").get_column("re").to_numpy()
    assert row["se"] == pytest.approx(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size), rel=1e-10)
    # The same delivery under a staggered design: arm C are comparison persons, not treated ones.
    spec = parse_evaluation_spec({**loaded.spec.document, "design": "staggered"})
    did = ev.realised_effects(panel, treatments, spec, loaded.seed)
    cell = did.table.filter((pl.col("outcome") == "earnings") & (pl.col("estimand") == "event")
                            & (pl.col("event_time") == 2)).row(0, named=True)
    assert cell["n_treated"] == 185 and cell["n_control"] == 260
    with pytest.raises(ParameterError, match="design rct: the treatments have no arm column"):
        ev.realised_effects(panel, treatments.drop("arm"), loaded.spec, loaded.seed)


def test_covariates_must_be_panel_columns():
    loaded = _loaded("lalonde_placebo_dr")
    panel, treatments = _data(loaded)
    with pytest.raises(ParameterError, match=r"panel: column\(s\) re74 named by the spec's design"):
        ev.realised_effects(panel.drop("re74"), treatments, loaded.spec, loaded.seed)


def test_survey_waves_are_matched_to_consequence_years():
    assert ev.calendar_event_times([1975, 1978], [1976]) == {-1: -1, 0: 2}
    assert ev.calendar_event_times(range(2015, 2023), [2018, 2019]) == {e: e for e in range(-4, 5)}
    assert ev.calendar_event_times([2010, 2012, 2014, 2016], [2012, 2014]) == {-2: -4, -1: -2, 0: 0, 1: 2, 2: 4}
    with pytest.raises(ParameterError, match="years are not consecutive and event time -1"):
        ev.calendar_event_times([2010, 2012, 2014, 2016], [2011, 2012])


def test_the_holm_family_is_the_tested_assumptions():
    loaded = _loaded("nsw_rct_0")
    panel, treatments = _data(loaded)
    effects = ev.realised_effects(panel, treatments, loaded.spec, loaded.seed)
    pre = ev.pretrend_frame(effects)
    one = ev.verdicts(loaded.seed, effects.table, pre, loaded.spec)
    assert [v.assumption for v in one] == ["effect_path:earnings"] and one[0].evidence["family_size"] == 1
    everything = parse_evaluation_spec({k: v for k, v in loaded.spec.document.items() if k != "assumptions"})
    both = {v.assumption: v for v in ev.verdicts(loaded.seed, effects.table, pre, everything)}
    assert set(both) == {"success_rate", "effect_path:earnings"}
    assert both["effect_path:earnings"].p_adjusted >= one[0].p_adjusted


def test_standard_errors_cluster_where_the_delivery_says_the_intervention_was_assigned(demo_delivery):
    from pipeline.registers import build_panel, read_manifest

    folder, _ = demo_delivery
    built = build_panel(read_manifest(folder), b"k" * 32)
    loaded = ev.load_spec(ROOT / "assets" / "evaluations" / "housing_first_demo.yaml")
    effects = ev.realised_effects(built.panel, built.treatments, loaded.spec, loaded.seed, assigned_by="municipality")
    pre = ev.pretrend_frame(effects)
    assert set(pre.get_column("cluster")) == {"municipality_at_assignment"}  # persons move after the roll-out
    assert set(pre.get_column("treated_clusters")) == {30}  # the demo roll-out: 30 of 98 kommuner
    info = ev.inference_from_frame(pre)["shelter_nights"]
    assert info == {"cluster": "municipality_at_assignment", "clusters": info["clusters"], "treated_clusters": 30,
                    "n_units": None, "cluster_scores": None, "ri_p": None, "ri_tost_p": None,
                    "ri_detail": None}  # 30 treated clusters: no few-cluster method needed
    # The covariance the verdicts use is the clustered one: its diagonal is the reported event-time variance.
    cov = ev.covariance_from_frame(pre)["shelter_nights"]
    rows = effects.table.filter((pl.col("outcome") == "shelter_nights") & (pl.col("estimand") == "event")).sort("event_time")
    diagonal = [np.sqrt(cov.matrix[k][k]) for k in range(len(cov.event_times))]
    assert diagonal == pytest.approx(rows.get_column("se").to_list(), rel=1e-9)
    doc = {k: v for k, v in loaded.spec.document.items() if k not in ("control", "base_period")}
    person = parse_evaluation_spec({**doc, "design": {"design": "staggered", "cluster": "person"}})
    assert ev.cluster_level(person, "municipality") is None
    rct = parse_evaluation_spec({**doc, "design": {"design": "rct"}})
    with pytest.raises(ParameterError, match="assigned by municipality, but the rct design cannot cluster"):
        ev.cluster_level(rct, "municipality")


# ------------------------------------------------------------------------------------ published references, CLI

RUNS = {  # evaluation id -> (panel, treatments or None)
    "nsw_rct_0": (REF / "nsw_dw_rct" / "nsw_dw_long.csv", HERE / "nsw_dw_randomisation.csv"),
    "nsw_rct_1794": (REF / "nsw_dw_rct" / "nsw_dw_long.csv", HERE / "nsw_dw_randomisation.csv"),
    "lalonde_placebo_dr": (REF / "lalonde_cps_drdid" / "nsw_long.parquet", HERE / "nsw_placebo_start.csv"),
    "mpdta_dr": (REF / "mpdta" / "mpdta.csv", None),
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """`som evaluate SPEC --panel FILE [--treatments FILE] --json OUT` for each reference, two at a time."""
    root = tmp_path_factory.mktemp("designs")
    env = {k: v for k, v in os.environ.items() if k not in ("SOM_HOME", "SOM_DATABASE_URL", "SOM_LANDING")}
    env.update(SOM_EVALUATIONS_DIR=str(SPECS), SOM_PSEUDONYM_KEY="ab" * 32, GX_ANALYTICS_ENABLED="False")
    out, pending = {}, list(RUNS.items())
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = []
        for name, (panel, treatments) in batch:
            work = root / name
            args = [SOM, "evaluate", str(SPECS / f"{name}.yaml"), "--panel", str(panel),
                    *(["--treatments", str(treatments)] if treatments else []), "--workdir", str(work),
                    "--json", str(root / f"{name}.json")]
            procs.append((name, work, subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                       text=True)))
        for name, work, proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"{name}: {stderr[-2000:]}"
            out[name] = (json.loads((root / f"{name}.json").read_text()), work, stdout)
    return out


def _estimates(work: Path, run_id: int) -> pl.DataFrame:
    from pipeline.store import ParameterStore

    with ParameterStore(f"sqlite:///{work / 'som.db'}") as store:
        return pl.DataFrame(store.estimates_for_run(run_id))


def test_nsw_experiment_refutes_an_assumed_zero_and_not_the_published_effect(cli_runs):
    doc, work, stdout = cli_runs["nsw_rct_0"]
    (verdict,) = doc["verdicts"]  # a family of one: only the tested assumption
    assert verdict["assumption"] == "effect_path:earnings" and verdict["label"] == "refuted-underestimated"
    assert verdict["realised"] == pytest.approx(1794.342, abs=1e-3)
    assert verdict["evidence"]["family_size"] == 1
    row = _estimates(work, doc["run"]["id"]).filter((pl.col("outcome") == "earnings") & (pl.col("event_time") == 2))
    assert row.get_column("estimate").item() == pytest.approx(1794.342, abs=1e-3)
    assert row.get_column("se").item() == pytest.approx(671.00, abs=0.01)  # HC2 = Neyman (classical: 632.85)
    assert "refuted-underestimated" in stdout
    doc, _, _ = cli_runs["nsw_rct_1794"]
    (verdict,) = doc["verdicts"]
    assert not verdict["label"].startswith("refuted") and verdict["p_adjusted"] > 0.99


def test_lalonde_placebo_with_real_survey_years_and_dr_is_refuted_with_the_dr_sign(cli_runs):
    _checked("nsw_placebo_start.csv")
    doc, work, _ = cli_runs["lalonde_placebo_dr"]
    (verdict,) = doc["verdicts"]
    assert verdict["label"].startswith("refuted-")
    assert verdict["realised"] == pytest.approx(-871.3271, abs=1e-3)  # R DRDID / Stata drdid dripw
    assert verdict["evidence"]["se"] == pytest.approx(396.0211, abs=1e-3)
    assert verdict["evidence"]["consequence_years"] == [1]  # 1978 = two years after the 1976 start
    cells = _estimates(work, doc["run"]["id"]).filter((pl.col("outcome") == "earnings") & (pl.col("estimand") == "att_gt"))
    assert cells.select("group", "time").rows() == [(1976, 1978)]  # base period 1975, the last wave before 1976


def test_mpdta_with_lpop_equals_som_estimate_and_r_did(cli_runs, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    doc, work, _ = cli_runs["mpdta_dr"]
    table = _estimates(work, doc["run"]["id"]).filter(pl.col("outcome") == "log_teen_employment")
    cells = {(r["group"], r["time"]): r["estimate"] for r in table.filter(pl.col("estimand") == "att_gt").to_dicts()}
    for g, row in DR_MPDTA.items():
        for t, att in zip(range(2004, 2008), row, strict=True):
            assert cells[(g, t)] == pytest.approx(att, abs=1e-6), (g, t)
    out = tmp_path / "estimate.json"
    result = CliRunner().invoke(app, ["estimate", str(REF / "mpdta" / "mpdta.csv"), "--id", "countyreal", "--time", "year",
                                      "--outcome", "lemp", "--group", "first.treat", "--covariates", "lpop", "--method",
                                      "dr", "--json", str(out)])
    assert result.exit_code == 0, result.output
    standalone = json.loads(out.read_text())
    rows = standalone["estimates"] if isinstance(standalone, dict) else standalone
    ref = {r["event_time"]: (r["estimate"], r["se"]) for r in rows if r["estimand"] == "event"}
    ours = {r["event_time"]: (r["estimate"], r["se"]) for r in table.filter(pl.col("estimand") == "event").to_dicts()}
    assert set(ours) == set(ref) == set(range(-3, 4))
    for e, (est, se) in ref.items():
        assert ours[e][0] == pytest.approx(est, abs=1e-12) and ours[e][1] == pytest.approx(se, abs=1e-12)
    # The evaluation's overall row is the mean over the consequence years e = 1..3 (course_years 1).
    overall = table.filter(pl.col("estimand") == "overall").get_column("estimate").item()
    assert overall == pytest.approx(np.mean([ref[e][0] for e in (1, 2, 3)]), abs=1e-12)
    (verdict,) = doc["verdicts"]
    assert verdict["realised"] == pytest.approx(overall, abs=1e-12) and verdict["label"] == "refuted-underestimated"


def test_the_demo_delivery_says_it_was_assigned_by_municipality(demo_delivery):
    folder, _ = demo_delivery
    assert assignment_level(folder) == "municipality"  # the simulated roll-out by municipality
