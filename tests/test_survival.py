"""Duration estimators: known truth by simulation, internal identities, bad input and the result protocol."""

import dataclasses

import numpy as np
import polars as pl
import pytest

from som_models.estimators import ESTIMATES_SCHEMA
from som_models.estimators.survival import cox_ph, duration_effects, kaplan_meier

LOG_HR = float(np.log(0.6))


def _weibull_trial(rng: np.random.Generator, n: int, *, log_hr: float = LOG_HR, shape: float = 1.5) -> pl.DataFrame:
    """Randomised arm, a covariate, Weibull times with hazard 0.1·k·t^(k−1)·exp(log_hr·arm + 0.5·x), right censoring
    by an exponential drop-out and administrative end at t = 8; times rounded up to whole months / 12."""
    arm = rng.integers(0, 2, n)
    x = rng.normal(size=n)
    eta = log_hr * arm + 0.5 * x
    t_event = (-np.log(rng.uniform(size=n)) / (0.1 * np.exp(eta))) ** (1 / shape)
    t_cens = np.minimum(rng.exponential(12.0, n), 8.0)
    time = np.ceil(np.minimum(t_event, t_cens) * 12) / 12  # monthly data: ties, so Efron matters
    return pl.DataFrame({"id": np.arange(n), "arm": arm, "x": x, "time": time,
                         "event": (t_event <= t_cens).astype(np.int64)})


def test_known_truth_weibull_hazard_ratio_is_recovered_within_its_interval():
    data = _weibull_trial(np.random.default_rng(11), 2000)
    res = duration_effects(data, id_col="id", time_col="time", event_col="event", arm_col="arm", covariates=["x"])
    row = res.to_polars().filter(pl.col("estimand") == "log_hazard_ratio").row(0, named=True)
    assert row["ci_low"] < LOG_HR < row["ci_high"]
    assert abs(row["estimate"] - LOG_HR) < 0.1
    hr = res.to_polars().filter(pl.col("estimand") == "hazard_ratio").row(0, named=True)
    assert hr["ci_low"] < 0.6 < hr["ci_high"] and hr["estimate"] == pytest.approx(np.exp(row["estimate"]))
    assert res.cox.coef[1] == pytest.approx(0.5, abs=0.08)


def test_known_truth_robust_se_matches_monte_carlo_spread():
    rng = np.random.default_rng(2024)
    est, se_rob, se_mod = [], [], []
    for _ in range(200):
        fit = cox_ph(_weibull_trial(rng, 300), time_col="time", event_col="event", covariates=["arm", "x"],
                     cluster_col="id")
        est.append(fit.coef[0])
        se_rob.append(fit.se[0])
        se_mod.append(fit.se_model[0])
    est = np.array(est)
    sd = est.std(ddof=1)
    assert abs(est.mean() - LOG_HR) < 3 * sd / np.sqrt(est.size)       # unbiased within MC error
    assert 0.85 < np.mean(se_rob) / sd < 1.15                           # sandwich SE ≈ Monte Carlo SD
    assert 0.85 < np.mean(se_mod) / sd < 1.15
    covered = np.mean(np.abs(est - LOG_HR) <= 1.96 * np.array(se_rob))
    assert 0.90 <= covered <= 0.99


def test_known_truth_time_varying_covariate_from_person_period_rows():
    """Piecewise exponential: hazard 0.2·exp(−0.5·arm + 0.8·z(t)), z switches from 0 to 1 at a person's own time s."""
    rng = np.random.default_rng(5)
    n, rows = 3000, []
    for i in range(n):
        arm, s = int(rng.integers(0, 2)), float(rng.uniform(0.5, 4))
        e1 = rng.exponential(1 / (0.2 * np.exp(-0.5 * arm)))
        t = e1 if e1 < s else s + rng.exponential(1 / (0.2 * np.exp(-0.5 * arm + 0.8)))
        c = 6.0
        end, event = min(t, c), int(t <= c)
        if end <= s:
            rows.append((i, arm, 0.0, end, event, 0))
        else:
            rows += [(i, arm, 0.0, s, 0, 0), (i, arm, s, end, event, 1)]
    data = pl.DataFrame(rows, schema=["id", "arm", "start", "stop", "event", "z"], orient="row")
    res = duration_effects(data, id_col="id", start_col="start", time_col="stop", event_col="event", arm_col="arm",
                           covariates=["z"], km_times=[1, 2, 3])
    fit = res.cox
    assert fit.counting_process and fit.n_clusters == n
    for k, truth in enumerate((-0.5, 0.8)):
        assert abs(fit.coef[k] - truth) < 2.58 * fit.se[k], (k, fit.coef[k])
    # immortal-time bias: coding "ever switched" as a fixed covariate on one row per person credits the time
    # before the switch to z = 1 and pushes its coefficient far below the truth
    ever = data.group_by("id").agg(pl.col("arm").first(), pl.col("stop").max(), pl.col("event").max(), pl.col("z").max())
    naive = cox_ph(ever, time_col="stop", event_col="event", covariates=["arm", "z"])
    assert naive.coef[1] < 0.8 - 0.5


def _split(data: pl.DataFrame, cuts: list[float]) -> pl.DataFrame:
    """The same follow-up as person-period rows cut at ``cuts`` (covariates constant)."""
    out = []
    for r in data.iter_rows(named=True):
        lo = 0.0
        for c in [c for c in cuts if c < r["time"]] + [r["time"]]:
            out.append({**r, "start": lo, "stop": c, "event": r["event"] if c == r["time"] else 0})
            lo = c
    return pl.DataFrame(out)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_person_period_split_gives_the_same_fit_and_robust_se(ties):
    data = _weibull_trial(np.random.default_rng(3), 150)
    whole = cox_ph(data, time_col="time", event_col="event", covariates=["arm", "x"], ties=ties, cluster_col="id")
    split = _split(data, [0.5, 1.0, 2.5, 4.0])
    assert split.height > data.height
    parts = cox_ph(split, start_col="start", time_col="stop", event_col="event", covariates=["arm", "x"], ties=ties,
                   cluster_col="id")
    np.testing.assert_allclose(parts.coef, whole.coef, rtol=1e-9)
    np.testing.assert_allclose(parts.se_model, whole.se_model, rtol=1e-8)
    np.testing.assert_allclose(parts.se, whole.se, rtol=1e-8)
    assert parts.tests["score"][0] == pytest.approx(whole.tests["score"][0], rel=1e-9)
    km_whole = kaplan_meier(data, time_col="time", event_col="event")
    km_split = kaplan_meier(split, start_col="start", time_col="stop", event_col="event")
    at = [1.0, 2.0, 3.0, 5.0]
    np.testing.assert_allclose(km_split.survival_at(at).get_column("survival").to_numpy(),
                               km_whole.survival_at(at).get_column("survival").to_numpy(), rtol=1e-12)


def test_integer_case_weights_equal_duplicated_rows():
    # exact for Breslow ties; Efron's correction counts tied rows, so weights and replicated rows differ there
    data = _weibull_trial(np.random.default_rng(8), 120).with_columns(
        pl.Series("w", np.random.default_rng(9).integers(1, 4, 120)))
    weighted = cox_ph(data, time_col="time", event_col="event", covariates=["arm", "x"], weight_col="w",
                      ties="breslow")
    repeated = data.select(pl.all().repeat_by(pl.col("w")).explode())
    dup = cox_ph(repeated, time_col="time", event_col="event", covariates=["arm", "x"], ties="breslow")
    np.testing.assert_allclose(weighted.coef, dup.coef, rtol=1e-9)
    np.testing.assert_allclose(weighted.se_model, dup.se_model, rtol=1e-8)


def test_efron_equals_breslow_without_ties_and_differs_with_them():
    data = _weibull_trial(np.random.default_rng(1), 200)
    continuous = data.with_columns(pl.col("time") + pl.Series(np.random.default_rng(2).uniform(0, 1e-3, 200)))
    e, b = (cox_ph(continuous, time_col="time", event_col="event", covariates=["arm"], ties=t) for t in ("efron", "breslow"))
    np.testing.assert_allclose(e.coef, b.coef, rtol=1e-10)
    e, b = (cox_ph(data, time_col="time", event_col="event", covariates=["arm"], ties=t) for t in ("efron", "breslow"))
    assert abs(e.coef[0] - b.coef[0]) > 1e-4


def test_duration_effects_table_follows_the_estimates_schema():
    data = _weibull_trial(np.random.default_rng(4), 400)
    res = duration_effects(data, id_col="id", time_col="time", event_col="event", arm_col="arm",
                           outcome="return_to_self_support")
    table = res.to_polars()
    assert table.schema == pl.Schema(ESTIMATES_SCHEMA)
    assert table.get_column("estimand").unique().sort().to_list() == [
        "hazard_ratio", "km", "log_hazard_ratio", "survival_difference"]
    km = table.filter(pl.col("estimand") == "km")
    assert km.get_column("event_time").unique().sort().to_list() == list(range(1, 9))  # whole units up to 8
    assert set(km.get_column("group").to_list()) == {0, 1}
    s1 = km.filter((pl.col("group") == 1) & (pl.col("event_time") == 3)).row(0, named=True)
    s0 = km.filter((pl.col("group") == 0) & (pl.col("event_time") == 3)).row(0, named=True)
    d = table.filter((pl.col("estimand") == "survival_difference") & (pl.col("event_time") == 3)).row(0, named=True)
    assert d["estimate"] == pytest.approx(s1["estimate"] - s0["estimate"])
    assert d["se"] == pytest.approx(np.hypot(s1["se"], s0["se"]))
    assert s1["estimate"] > s0["estimate"]  # hazard ratio 0.6: the treated arm survives longer
    hr = table.filter(pl.col("estimand") == "log_hazard_ratio").row(0, named=True)
    assert hr["n_treated"] + hr["n_control"] == 400 and hr["outcome"] == "return_to_self_support"
    text = repr(res)
    assert "\n" not in text and len(text) <= 160 and text.startswith("DurationEffects(")
    summary = res.summary()
    assert "hazard_ratio" in summary and "Efron" in summary and "Median time to event" in summary
    assert "Robust" in cox_ph(data, time_col="time", event_col="event", covariates=["arm"], cluster_col="id").summary()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.outcome = "x"


def test_matched_design_uses_group_col_and_weights():
    data = _weibull_trial(np.random.default_rng(6), 300).rename({"arm": "treated"}).with_columns(
        pl.lit(1.0).alias("w"))
    res = duration_effects(data, id_col="id", time_col="time", event_col="event", group_col="treated",
                           weight_col="w", robust=False)
    ref = cox_ph(data, time_col="time", event_col="event", covariates=["treated"])
    assert res.cox.coef[0] == pytest.approx(ref.coef[0]) and not res.cox.robust
    assert "treated = 1 vs 0" in res.summary()


def test_kaplan_meier_log_log_interval_is_inside_zero_one():
    km = kaplan_meier(_weibull_trial(np.random.default_rng(7), 60), time_col="time", event_col="event",
                      conf_type="log-log")
    rows = km.table.filter(pl.col("survival") > 0)
    assert (rows.get_column("ci_low") >= 0).all() and (rows.get_column("ci_high") <= 1).all()
    assert (rows.get_column("ci_low") <= rows.get_column("survival")).all()
    assert repr(km).startswith("KaplanMeierResult(") and "Median survival" in km.summary()


@pytest.mark.parametrize("change, kwargs, message", [
    (lambda d: d.drop("event"), {}, "column 'event' not found"),
    (lambda d: d.with_columns(pl.when(pl.col("id") == 3).then(2).otherwise(pl.col("event")).alias("event")), {},
     "column 'event' must be 0 (censored) or 1 (event); not so in 1 row (e.g. row 3)"),
    (lambda d: d.with_columns(pl.when(pl.col("id") == 5).then(None).otherwise(pl.col("time")).alias("time")), {},
     "column 'time' is missing or not finite in 1 row (e.g. row 5)"),
    (lambda d: d.with_columns(pl.when(pl.col("id") == 2).then(7).otherwise(pl.col("arm")).alias("arm")), {},
     "column 'arm' must be 0 (control) or 1 (treated); not so in 1 row (e.g. row 2)"),
    (lambda d: d, {"group_col": "arm"}, "exactly one of arm_col"),
    (lambda d: pl.concat([d, d.head(1)]), {}, "column 'id' repeats in 1 row (e.g. row 40)"),
])
def test_bad_input_names_column_and_rows(change, kwargs, message):
    data = change(_weibull_trial(np.random.default_rng(0), 40))
    with pytest.raises(ValueError) as info:
        duration_effects(data, id_col="id", time_col="time", event_col="event", arm_col="arm", **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_person_period_rows_are_refused():
    rows = pl.DataFrame({"id": [1, 1, 2, 2], "arm": [1, 1, 0, 0], "start": [0.0, 1.0, 0.0, 2.0],
                         "stop": [2.0, 3.0, 2.0, 2.0], "event": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=r"'stop' must exceed 'start'.*row 3"):
        cox_ph(rows, start_col="start", time_col="stop", event_col="event", covariates=["arm"])
    overlapping = rows.with_columns(pl.Series("stop", [2.0, 3.0, 2.0, 4.0]))
    with pytest.raises(ValueError, match=r"intervals of one 'id' overlap in 1 row \(e.g. row 1\)"):
        cox_ph(overlapping, start_col="start", time_col="stop", event_col="event", covariates=["arm"], cluster_col="id")
    varying = overlapping.with_columns(pl.Series("start", [0.0, 2.0, 0.0, 2.0]), pl.Series("arm", [1, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"'arm' must be constant within each 'id'.*row 1"):
        duration_effects(varying, id_col="id", start_col="start", time_col="stop", event_col="event", arm_col="arm")
    with pytest.raises(ValueError, match="ties must be one of"):
        cox_ph(rows, time_col="stop", event_col="event", covariates=["arm"], ties="exact")
    with pytest.raises(ValueError, match="covariate 'c' is constant"):
        cox_ph(rows.with_columns(pl.lit(1.0).alias("c")), time_col="stop", event_col="event", covariates=["arm", "c"])
