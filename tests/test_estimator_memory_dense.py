"""No dense units × cells influence matrix, and no second units × periods outcome matrix, where none is needed
(issue 16, item 3): every design estimated through the dispatcher without a bootstrap — balanced and unbalanced,
unconditional and with covariates, and the matched design — must finish with every ``materialise`` patched to
raise; the staggered design's bootstrap streams the rows (still nothing dense); the matched design builds its dense
matrix only when the bootstrap asks. The matched design's moments must equal those of the dense stacking of the
cohorts' influence functions (the construction it replaced)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from som_models.estimators import _influence, aggregate, att_gt, pretrend_test
from som_models.estimators._influence import PermutedInfluence, StreamedInfluence
from som_models.estimators.dispatch import EstimationSettings, estimate
from som_models.estimators.matching import match_comparison, matched_att_gt
from som_models.estimators.panel import _RowSource, build_panel
from som_models.estimators.results import stored
from som_models.estimators.synthetic import staggered_panel

KW = dict(outcomes=["y"], id_col="person_id", time_col="year", group_col="first_treat")


def _frames(n: int = 1200, seed: int = 4) -> dict[str, pl.DataFrame]:
    """A balanced frame sorted by (person, year) — the rectangular layout read from the frame's buffers, with a
    float32 and a time-varying covariate — and the same persons with births and emigration (unbalanced)."""
    d = staggered_panel(n, periods=7, n_covariates=3, time_varying=True, seed=seed).with_columns(
        pl.col("x1").cast(pl.Float32), (pl.col("person_id") % 11).alias("muni"))
    rng = np.random.default_rng(seed)
    ids = d.get_column("person_id").unique().sort()
    enter = np.where(rng.random(ids.len()) < 0.25, rng.integers(1, 4, ids.len()), 0) + 2010
    leave = np.where(rng.random(ids.len()) < 0.25, rng.integers(4, 6, ids.len()), 6) + 2010
    spans = pl.DataFrame({"person_id": ids, "_a": enter, "_b": leave})
    unbal = (d.join(spans, on="person_id", how="left", maintain_order="left")
             .filter((pl.col("year") >= pl.col("_a")) & (pl.col("year") <= pl.col("_b"))).drop("_a", "_b")
             .sort("person_id", "year"))
    return {"balanced": d, "unbalanced": unbal}


class Materialised(AssertionError):
    pass


def _forbid_dense(monkeypatch) -> list[str]:
    """Patch every ``materialise`` of the influence forms to raise; returns the list the patched calls append their
    class name to before raising."""
    calls: list[str] = []

    def refuse(name):
        def materialise(self, *args, **kwargs):
            calls.append(name)
            raise Materialised(f"{name}.materialise called")
        return materialise

    for cls in (_influence.BlockInfluence, _influence.StreamedInfluence, _influence.PermutedInfluence):
        monkeypatch.setattr(cls, "materialise", refuse(cls.__name__))
    return calls


@pytest.mark.parametrize("shape", ["balanced", "unbalanced"])
@pytest.mark.parametrize("settings", [
    EstimationSettings(),
    EstimationSettings(covariates=("x1", "x2", "x3"), method="dr"),
    EstimationSettings(covariates=("x1", "x3"), method="dr-imp", cluster="muni", control="notyet"),
    EstimationSettings(covariates=("x2",), method="ipw", weight_col="x1_w"),
], ids=["unconditional", "dr", "dr-imp-clustered", "ipw-weighted"])
def test_no_dense_matrix_without_bootstrap(monkeypatch, shape, settings):
    data = _frames()[shape].with_columns((1 + pl.col("person_id") % 3).cast(pl.Float64).alias("x1_w"))
    calls = _forbid_dense(monkeypatch)
    out = estimate(data, **KW, settings=settings)  # all aggregations, the pre-trend test, the simple ATT
    res = out.results["y"]
    assert calls == []
    assert isinstance(stored(res, "influence"), (_influence.BlockInfluence, StreamedInfluence))
    assert "_influence_materialised" not in res.__dict__
    assert np.isfinite(out.table.get_column("se").to_numpy()).all()
    if shape == "balanced":  # the outcome matrix is never built: Δy is read from the frame's buffers
        source = stored(res, "influence").source
        panel = source if settings.covariates == () else source.panel
        assert isinstance(stored(panel, "y"), _RowSource) and "_y_materialised" not in panel.__dict__
        if "x3" in settings.covariates:  # time-varying: gathered from the frame's buffers, never pivoted
            assert isinstance(panel.covariates["x3"], _RowSource)


@pytest.mark.parametrize("covariates", [(), ("x1", "x2")])
def test_staggered_bootstrap_streams_rows(monkeypatch, covariates):
    """The bootstrap of the cells and of every aggregation reads the structured rows chunk by chunk."""
    data = _frames()["unbalanced"]
    calls = _forbid_dense(monkeypatch)
    out = estimate(data, **KW, settings=EstimationSettings(covariates=covariates, bootstrap=99, seed=1,
                                                          cluster="muni"))
    assert calls == []
    assert out.metadata["bootstrap"]["critical_values"]["y"]["overall"]["critical_value"] > 0


def _matched(data):
    m = match_comparison(data, outcome="y", id_col="person_id", time_col="year", group_col="first_treat",
                         covariates=["x1", "x2"], pre_periods=1, ratio=2)
    return m


@pytest.mark.parametrize("shape", ["balanced", "unbalanced"])
def test_matched_design_dense_only_for_the_bootstrap(monkeypatch, shape):
    data = _frames()[shape]
    settings = EstimationSettings(design="matched", match_on=("x1", "x2"), covariates=("x3",))
    calls = _forbid_dense(monkeypatch)
    res = estimate(data, **KW, settings=settings).results["y"]
    assert calls == [] and isinstance(stored(res, "influence"), PermutedInfluence)
    with pytest.raises(Materialised):  # the bootstrap asks for the rows: now (and only now) the dense matrix
        estimate(data, **KW, settings=EstimationSettings(design="matched", match_on=("x1", "x2"), bootstrap=49))
    assert calls == ["PermutedInfluence"]


@pytest.mark.parametrize("covariates", [(), ("x3",)])
def test_matched_moments_equal_the_dense_stacking(covariates):
    """Cells, SEs, aggregations and the pre-trend test from the moments equal those of the dense stacked matrix
    ``(n_union / n_g) ψ^g`` placed at each cohort's units — built here by hand from the cohorts' own results."""
    data = _frames()["unbalanced"]
    m = _matched(data)
    kw = dict(outcome="y", id_col="person_id", time_col="year", group_col="first_treat")
    res = matched_att_gt(data, m, covariates=covariates, **kw)
    union = m.weights.get_column("unit").unique(maintain_order=True)
    pos = {int(u): k for k, u in enumerate(union.to_list())}
    cols, groups = [], np.zeros(union.len(), dtype=np.int64)
    for g in sorted(m.weights.get_column("group").unique().to_list()):
        mw = m.weights.filter(pl.col("group") == g).select(pl.col("unit").alias("person_id"), "role",
                                                           pl.col("weight").alias("_mw"))
        sub = data.join(mw, on="person_id").with_columns(
            pl.when(pl.col("role") == "treated").then(g).otherwise(0).alias("_g"))
        r = att_gt(sub, outcome="y", id_col="person_id", time_col="year", group_col="_g", covariates=covariates,
                   weight_col="_mw")
        ids = build_panel(sub, outcome="y", id_col="person_id", time_col="year", group_col="_g").unit_ids.to_list()
        rows = np.array([pos[int(i)] for i in ids])
        for k in range(len(r.cells)):
            c = np.zeros(union.len())
            c[rows] = union.len() / r.n_units * r.influence[:, k]
            cols.append(c)
        groups[rows[r.unit_groups == g]] = g
    psi = np.column_stack(cols)
    np.testing.assert_array_equal(res.unit_groups, groups)
    np.testing.assert_allclose(res.influence, psi, rtol=1e-13, atol=1e-13 * np.abs(psi).max())
    infl = stored(res, "influence")
    np.testing.assert_allclose(infl.cross(), psi.T @ psi, rtol=1e-10, atol=1e-10 * np.abs(psi.T @ psi).max())
    n = res.n_units
    for kind in ("dynamic", "group", "calendar", "simple"):
        agg = aggregate(res, kind)
        levels = list(agg.estimates)
        got = np.column_stack([agg.influence[lvl] for lvl in levels] + [agg.overall_influence])
        np.testing.assert_allclose([agg.ses[lvl] for lvl in levels] + [agg.overall_se],
                                   np.sqrt(np.einsum("ij,ij->j", got, got)) / n, rtol=1e-10)
        assert abs(got[:, -1].sum()) < 1e-6 * n * max(1.0, np.abs(got[:, -1]).max())
    pre = pretrend_test(res)
    idx = [k for k, c in enumerate(res.cells) if c.time < c.group]
    theta = np.array([res.cells[k].estimate for k in idx])
    v = psi[:, idx].T @ psi[:, idx] / n**2
    assert pre.statistic == pytest.approx(float(theta @ np.linalg.pinv(v) @ theta), rel=1e-8)


def test_frame_backed_outcome_rows_equal_the_outcome_matrix():
    """``Panel.outcome_rows`` / ``outcome_change`` read from the frame's buffers give exactly ``y``'s values, and
    the rectangular layout's covariates (float32 and time-varying, checked chunk by chunk; the time-varying one
    gathered from the buffers) equal the general layout's (a shuffled frame)."""
    data = _frames()["balanced"].with_columns(pl.col("y").cast(pl.Float32).alias("y32"))
    kw = dict(outcome="y", id_col="person_id", time_col="year", group_col="first_treat", covariates=("x1", "x2", "x3"))
    fast = build_panel(data, **kw)
    general = build_panel(data.sample(fraction=1.0, shuffle=True, seed=2), **kw)
    assert isinstance(stored(fast, "y"), _RowSource)
    rows = fast.outcome_rows(5, 300)
    change = fast.outcome_change([(0, 40), (100, 180)], 4, 1)
    assert "_y_materialised" not in fast.__dict__  # still not built
    np.testing.assert_array_equal(rows, general.y[5:300])
    np.testing.assert_array_equal(change, np.concatenate([general.y[0:40, 4] - general.y[0:40, 1],
                                                          general.y[100:180, 4] - general.y[100:180, 1]]))
    assert fast.covariates["x3"].ndim == 2 and fast.covariates["x1"].ndim == 1
    assert isinstance(fast.covariates["x3"], _RowSource)  # read from the buffers where used
    pick = np.array([3, 1, 7, 200])
    np.testing.assert_array_equal(fast.covariates["x3"][pick, 2], general.covariates["x3"][pick, 2])
    np.testing.assert_array_equal(fast.covariates["x3"][10:90, 5], general.covariates["x3"][10:90, 5])
    np.testing.assert_array_equal(fast.covariate_matrix(pick, 4), general.covariate_matrix(pick, 4))
    for c in ("x1", "x2", "x3"):
        assert fast.covariates[c].dtype == np.float64
        np.testing.assert_array_equal(fast.covariates[c], general.covariates[c])
    f32 = build_panel(data, **{**kw, "outcome": "y32"})
    np.testing.assert_array_equal(f32.outcome_rows(0, f32.n), f32.y)


@pytest.mark.parametrize("cluster", [None, "muni"])
def test_the_evaluations_event_covariance_reads_the_influence_in_chunks(monkeypatch, cluster):
    """``pipeline.evaluation.event_covariances`` and the clusters' scores of the verdicts' wild bootstrap take
    ``Ψ'Ψ`` and ``S_c`` chunk by chunk of units (never the dense units × event-times matrix) and equal the dense
    computation: ``V = Ψ'Ψ / n²``, clustered ``G/(G − 1) · S'S / n²``."""
    from pipeline import evaluation as ev

    monkeypatch.setattr(ev, "_SCORE_CHUNK", 97)  # several chunks, one ragged
    data = _frames()["unbalanced"]
    out = estimate(data, **KW, settings=EstimationSettings(covariates=("x1", "x2"), method="dr", cluster=cluster))
    dyn = aggregate(out.results["y"], "dynamic")
    times = sorted(dyn.influence)
    psi = np.column_stack([dyn.influence[e] for e in times])  # dense, for the comparison only
    n = out.results["y"].n_units
    if cluster is None:
        want = psi.T @ psi / n ** 2
    else:
        codes = np.asarray(out.results["y"].clusters, dtype=np.int64)
        sums = np.zeros((codes.max() + 1, len(times)))
        np.add.at(sums, codes, psi)
        g = sums.shape[0]
        want = g / (g - 1) * sums.T @ sums / n ** 2
    fresh = estimate(data, **KW, settings=EstimationSettings(covariates=("x1", "x2"), method="dr", cluster=cluster))
    calls = _forbid_dense(monkeypatch)
    cov = ev.event_covariances(fresh)["y"]
    assert calls == []
    assert np.allclose(np.asarray(cov.matrix), want, rtol=1e-12, atol=0)
