"""Known truth: the demo run's verdicts on participants, course length and cost, the proposal's realised cohorts and
the report's volume section (the whole Dagster graph, once per session: ``demo_run``)."""

from __future__ import annotations

import polars as pl
import pytest

from som_models.parameters import parse_parameter_set
from som_models.projection import project


@pytest.fixture(scope="module")
def volume(demo_run):
    from pipeline.store import ParameterStore

    workdir, folder, sim, outcome, _ = demo_run
    assert outcome.success, outcome.failures
    with ParameterStore(outcome.database) as store:
        verdicts = {v["assumption"]: v for v in store.verdicts_for_run(outcome.proposal["run_id"])}
    return folder, sim, outcome, verdicts


def test_participants_refuted_against_the_assumed_two_cohorts_of_150(volume):
    folder, sim, outcome, verdicts = volume
    register = pl.read_parquet(folder / "indsats.parquet")
    by_year = dict(register.group_by(pl.col("START_DATO").dt.year()).len().iter_rows())
    v = verdicts["participants"]
    assert v["assumed"] == 300
    assert v["realised"] == sim.truth["participants"] == register.height  # every planted participant is counted
    assert v["label"] == "refuted-underestimated"
    assert v["ci_low"] > 300 * 1.2  # the decisive interval lies above the band
    cohorts = {r["year"]: r["realised"] for r in v["evidence"]["cohorts"] if r["realised"]}
    assert cohorts == by_year


def test_course_length_and_cost_recover_the_planted_values(volume):
    folder, sim, outcome, verdicts = volume
    course = verdicts["course_years"]
    # planted: 365 days × U(0.7, 1.3), i.e. one year on average; the assumption says 1 course year
    assert course["realised"] == pytest.approx(1.0, abs=0.02) and course["label"] == "consistent"
    assert course["evidence"]["measured_by"].startswith("dates")
    cost = verdicts["cost_per_participant"]
    costs = pl.read_parquet(folder / "costs.parquet")
    assert cost["realised"] == pytest.approx(costs.get_column("BELOEB").mean())
    assert cost["ci_low"] < 105_000 < cost["ci_high"] or abs(cost["realised"] - 105_000) < 3 * cost["evidence"]["se"]
    assert cost["assumed"] == 95_000 and cost["label"] == "consistent"  # +9 %: inside the ±20 % band


def test_projection_after_the_update_uses_the_realised_cohorts(volume):
    _, _, outcome, verdicts = volume
    after = parse_parameter_set(outcome.proposal["content"])
    cohorts = {r["year"]: r["realised"] for r in verdicts["participants"]["evidence"]["cohorts"] if r["realised"]}
    assert dict(after.cohorts) == cohorts and sum(cohorts.values()) > 300
    assert outcome.proposal["content"]["sources"]["cohorts"]["status"] == "estimated"
    # the asset's "after" projection is the proposal's, with the realised volumes (not the assumed 2 × 150)
    assumed = dict(outcome.proposal["content"], cohorts=[{"year": 2018, "participants": 150},
                                                         {"year": 2019, "participants": 150}])
    npv = outcome.projections["after"]["npv"]
    assert npv["total"] == pytest.approx(project(after).npv["total"])
    assert npv["total"] != pytest.approx(project(parse_parameter_set(assumed)).npv["total"])


def test_report_shows_the_volume_verdicts(volume):
    _, _, outcome, verdicts = volume
    html = open(outcome.report, encoding="utf-8").read()
    assert "Deltagere pr. kohorteår" in html  # the report is in Danish by default
    for name in ("participants", "course_years", "cost_per_participant"):
        assert f"<code>{name}</code>" in html
    assert verdicts["participants"]["sentence"].split(";")[0][:60] in html.replace("&#39;", "'")
