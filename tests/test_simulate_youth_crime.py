"""The youth-crime world through ingestion, estimation and verdicts: the assumed crime reduction is refuted."""

from pathlib import Path

import pytest

from pipeline import evaluation as ev
from pipeline.registers import build_panel, read_manifest
from som_models.simulate import simulate, write_delivery

SPEC = Path(__file__).resolve().parents[1] / "assets" / "evaluations" / "youth_crime_demo.yaml"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    sim = simulate("youth_crime", 3000, 2)
    folder = write_delivery(sim, tmp_path_factory.mktemp("yc") / "d", truth_panel=False)
    loaded = ev.load_spec(SPEC)
    built = build_panel(read_manifest(folder), b"y" * 32, max_gx_rows=0)
    effects = ev.realised_effects(built.panel, built.treatments, loaded.spec, loaded.seed)
    verdicts = {v.assumption: v for v in ev.verdicts(loaded.seed, effects.table, ev.pretrend_frame(effects), loaded.spec)}
    return sim, effects, verdicts


def test_convictions_rise_and_the_assumed_reduction_is_refuted(evaluated):
    _, _, verdicts = evaluated
    v = verdicts["effect_path:convictions"]
    assert v.label == "refuted-overestimated"
    assert v.realised > 0 > v.assumed and v.ci_low > 0
    assert verdicts["success_rate"].label == "refuted-overestimated"


def test_realised_conviction_effects_cover_the_planted_ones(evaluated):
    import polars as pl

    sim, effects, _ = evaluated
    events = effects.table.filter((pl.col("estimand") == "event") & (pl.col("outcome") == "convictions"))
    hits = []
    for row in sim.truth["att_by_event_time"]:
        est = events.filter(pl.col("event_time") == row["event_time"]).to_dicts()
        if est:
            hits.append(est[0]["ci_low"] <= row["convictions"] <= est[0]["ci_high"])
    assert len(hits) >= 6 and sum(hits) / len(hits) >= 0.8
