"""Inference at the level of assignment: cluster-robust influence-function SEs and the cluster bootstrap."""

import numpy as np
import polars as pl
import pytest

from som_models.estimators import aggregate, att_gt, pretrend_test
from som_models.estimators.bootstrap import bootstrap_aggregate, bootstrap_cells
from som_models.estimators.dispatch import EstimationSettings, estimate


def _rollout(seed, n_muni=20, persons=10, periods=(1, 2, 3, 4), shock_sd=1.0, effect=0.0):
    """Municipalities adopt in period 3 (half of them) or never; municipality × period shocks shared by all
    its residents, so persons in one municipality are correlated."""
    rng = np.random.default_rng(seed)
    muni = np.repeat(np.arange(n_muni), persons)
    g_muni = np.where(np.arange(n_muni) % 2 == 0, 3, 0)
    n = muni.shape[0]
    shock = rng.normal(0, shock_sd, (n_muni, len(periods)))
    alpha = rng.normal(size=n)
    y = alpha[:, None] + shock[muni] + rng.normal(size=(n, len(periods)))
    g = g_muni[muni]
    y += effect * ((np.array(periods)[None, :] >= g[:, None]) & (g[:, None] > 0))
    return pl.DataFrame({
        "id": np.repeat(np.arange(n), len(periods)),
        "t": np.tile(periods, n),
        "g": np.repeat(g, len(periods)),
        "muni": np.repeat(muni, len(periods)),
        "y": y.ravel(),
    })


def test_four_clusters_2x2_matches_the_formula():
    rng = np.random.default_rng(1)
    cl = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    d = np.isin(cl, [0, 1])
    n = cl.shape[0]
    y0 = rng.normal(size=n)
    y1 = y0 + rng.normal(size=n) + 2.0 * d
    data = pl.DataFrame({"id": np.repeat(np.arange(n), 2), "t": np.tile([1, 2], n),
                         "g": np.repeat(np.where(d, 2, 0), 2), "muni": np.repeat(cl, 2) + 100,
                         "y": np.column_stack([y0, y1]).ravel()})
    dy = y1 - y0
    mu_t, mu_c = dy[d].mean(), dy[~d].mean()
    psi = np.where(d, n / d.sum() * (dy - mu_t), -n / (~d).sum() * (dy - mu_c))
    s = np.array([psi[cl == c].sum() for c in range(4)])
    v_cluster = 4 / 3 * np.sum(s**2) / n**2
    v_unit = np.sum(psi**2) / n**2
    by_unit = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g")
    res = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g", cluster_col="muni")
    (cell,) = res.cells
    assert cell.estimate == pytest.approx(mu_t - mu_c, abs=1e-12)
    assert cell.se == pytest.approx(np.sqrt(v_cluster), rel=1e-10)
    assert by_unit.cells[0].se == pytest.approx(np.sqrt(v_unit), rel=1e-10)
    assert aggregate(res, "dynamic").overall_se == pytest.approx(np.sqrt(v_cluster), rel=1e-10)
    assert (res.notes["clusters"], res.notes["treated_clusters"]) == (4, 2)
    boot = bootstrap_cells(res, draws=200, seed=1)
    assert boot.clusters == 4


@pytest.mark.parametrize("unbalanced", [False, True])
def test_structured_and_dense_cluster_variances_agree(unbalanced):
    data = _rollout(3, periods=(1, 2, 3, 4, 5)).with_columns(
        pl.when(pl.col("muni") < 6).then(pl.lit(4)).otherwise(pl.col("g")).alias("g"))
    if unbalanced:
        data = data.filter(~((pl.col("id") == 7) & (pl.col("t") == 2)))
    res = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g", cluster_col="muni")
    psi = res.influence
    codes = res.clusters
    gcount = codes.max() + 1
    s = np.zeros((gcount, psi.shape[1]))
    np.add.at(s, codes, psi)
    want = np.sqrt(gcount / (gcount - 1) * (s**2).sum(axis=0)) / res.n_units
    np.testing.assert_allclose([c.se for c in res.cells], want, rtol=1e-10)
    agg = aggregate(res, "dynamic")
    so = np.zeros(gcount)
    np.add.at(so, codes, agg.overall_influence)
    assert agg.overall_se == pytest.approx(np.sqrt(gcount / (gcount - 1) * so @ so) / res.n_units, rel=1e-10)
    pre = [k for k, c in enumerate(res.cells) if c.time < c.group]
    theta = np.array([res.cells[k].estimate for k in pre])
    v = gcount / (gcount - 1) * s[:, pre].T @ s[:, pre] / res.n_units**2
    assert pretrend_test(res).statistic == pytest.approx(float(theta @ np.linalg.pinv(v) @ theta), rel=1e-8)
    by_level, overall = bootstrap_aggregate(agg, res.n_units, draws=100, seed=2, cluster=res.clusters)
    assert overall.clusters == by_level.clusters == gcount


def test_municipality_clustering_matches_monte_carlo_sd_person_clustering_does_not():
    est, se_unit, se_muni = [], [], []
    for rep in range(100):
        data = _rollout(100 + rep)
        a = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g")
        b = att_gt(data, outcome="y", id_col="id", time_col="t", group_col="g", cluster_col="muni")
        da, db = aggregate(a, "dynamic"), aggregate(b, "dynamic")
        assert da.overall == db.overall
        est.append(da.overall)
        se_unit.append(da.overall_se)
        se_muni.append(db.overall_se)
    sd = np.std(est, ddof=1)
    assert np.mean(se_unit) / sd < 0.6  # persons treated as independent: far too small
    assert 0.75 < np.sqrt(np.mean(np.square(se_muni))) / sd < 1.3


def test_cluster_must_be_constant_within_unit():
    data = _rollout(4)
    moved = data.with_columns(pl.when((pl.col("id") == 3) & (pl.col("t") == 4)).then(99).otherwise(pl.col("muni"))
                              .alias("muni"))
    with pytest.raises(ValueError, match=r"cluster column 'muni' must be constant within each unit.*1 units"):
        att_gt(moved, outcome="y", id_col="id", time_col="t", group_col="g", cluster_col="muni")
    with pytest.raises(ValueError, match=r"cluster column 'muni' has 1 missing"):
        holed = data.with_row_index("row").with_columns(
            pl.when(pl.col("row") == 0).then(None).otherwise(pl.col("muni")).alias("muni")).drop("row")
        att_gt(holed, outcome="y", id_col="id", time_col="t", group_col="g", cluster_col="muni")


def test_dispatcher_passes_the_cluster_and_records_counts():
    data = _rollout(5, effect=1.0)
    plain = estimate(data, outcomes=["y"], id_col="id", time_col="t", group_col="g")
    out = estimate(data, outcomes=["y"], id_col="id", time_col="t", group_col="g",
                   settings=EstimationSettings(cluster="muni"))
    assert (out.metadata["clusters"], out.metadata["treated_clusters"]) == (20, 10)
    assert (plain.metadata["clusters"], plain.metadata["treated_clusters"]) == (200, 100)
    assert "clustered by muni" in out.metadata["standard_errors"]
    assert out.table["estimate"].to_list() == plain.table["estimate"].to_list()
    assert out.table["se"].to_list() != plain.table["se"].to_list()
    boot = estimate(data, outcomes=["y"], id_col="id", time_col="t", group_col="g",
                    settings=EstimationSettings(cluster="muni", bootstrap=99))
    assert boot.metadata["clusters"] == 20
    with pytest.raises(ValueError, match="staggered design only"):
        EstimationSettings(design="rct", arm_col="a", start=1, cluster="muni")
    with pytest.raises(ValueError, match="'kommune' is not in the data"):
        estimate(data, outcomes=["y"], id_col="id", time_col="t", group_col="g",
                 settings=EstimationSettings(cluster="kommune"))
