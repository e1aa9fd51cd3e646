"""Known truth: plant effects in the synthetic world, recover them through ingestion and estimation."""

import tempfile
from pathlib import Path

import polars as pl

from pipeline import evaluation as ev
from pipeline.registers import build_panel, read_manifest
from som_models.simulate import simulate, write_delivery

SPEC = Path(__file__).resolve().parents[1] / "assets" / "evaluations" / "housing_first_demo.yaml"
OUTCOMES = ("no_shelter_stay", "shelter_nights", "kontanthjaelp_weeks")


def _evaluate(folder):
    loaded = ev.load_spec(SPEC)
    built = build_panel(read_manifest(folder), b"k" * 32)
    effects = ev.realised_effects(built.panel, built.treatments, loaded.spec, loaded.seed)
    return loaded, effects


def _coverage(effects, truth):
    hits = []
    events = effects.table.filter(pl.col("estimand") == "event")
    for row in truth["att_by_event_time"]:
        for outcome in OUTCOMES:
            est = events.filter((pl.col("outcome") == outcome) & (pl.col("event_time") == row["event_time"])).to_dicts()[0]
            hits.append(est["ci_low"] <= row[outcome] <= est["ci_high"])
    return hits


def test_demo_world_effects_fall_inside_their_confidence_intervals(demo_delivery):
    """All 15 planted effects inside their intervals at Bonferroni's simultaneous level (15 pointwise 95 %
    intervals miss at least one planted value in about half of all worlds)."""
    from scipy.stats import norm

    folder, sim = demo_delivery
    _, effects = _evaluate(folder)
    events = effects.table.filter(pl.col("estimand") == "event")
    z = norm.ppf(1 - 0.05 / (2 * 15))
    misses = []
    for row in sim.truth["att_by_event_time"]:
        for outcome in OUTCOMES:
            est = events.filter((pl.col("outcome") == outcome) & (pl.col("event_time") == row["event_time"])).to_dicts()[0]
            if abs(est["estimate"] - row[outcome]) > z * est["se"]:
                misses.append((outcome, row["event_time"]))
    assert len(sim.truth["att_by_event_time"]) * len(OUTCOMES) == 15 and not misses, misses


def test_coverage_over_several_worlds_is_near_nominal():
    hits = []
    for seed in (11, 12, 13, 14):
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_delivery(simulate("homelessness", 2000, seed), Path(tmp) / "d")
            hits += _coverage(_evaluate(folder)[1], simulate("homelessness", 2000, seed).truth)
    share = sum(hits) / len(hits)
    assert share >= 0.85, f"95 % intervals covered the planted effect in only {share:.0%} of {len(hits)} cells"


def test_planted_verdicts_are_recovered(demo_delivery):
    folder, _ = demo_delivery
    loaded, effects = _evaluate(folder)
    verdicts = {v.assumption: v for v in ev.verdicts(loaded.seed, effects.table, ev.pretrend_frame(effects), loaded.spec)}
    assert verdicts["success_rate"].label == "consistent"
    assert verdicts["effect_path:shelter_nights"].label == "consistent"
    assert verdicts["effect_path:kontanthjaelp_weeks"].label == "refuted-overestimated"


def test_without_an_effect_nothing_is_found():
    from som_models.simulate.homelessness import HomelessnessWorld, simulate_homelessness

    world = HomelessnessWorld(responder_share=0.0, kh_effect_per_responder=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_delivery(simulate_homelessness(3000, 5, world), Path(tmp) / "d")
        _, effects = _evaluate(folder)
    overall = effects.table.filter(pl.col("estimand") == "overall")
    for row in overall.to_dicts():
        assert row["ci_low"] <= 0 <= row["ci_high"], row["outcome"]
