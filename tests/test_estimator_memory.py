"""O(n) memory in the estimators and in reading panels (issue 16, item 3): the influence functions of unbalanced
panels and covariate methods are kept as moments and evaluated in chunks of persons; the results must be exactly
those of the dense units × cells matrix, the sorted-rows panel layout must equal the general one, and `som estimate`
reading only the needed columns in compact types must give the same numbers as estimating on the full frame."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from som_models.estimators import aggregate, att_gt, pretrend_test
from som_models.estimators._influence import StreamedInfluence
from som_models.estimators.dispatch import EstimationSettings, estimate
from som_models.estimators.panel import _SortedRows, build_panel
from som_models.estimators.results import stored
from som_models.estimators.synthetic import staggered_panel

runner = CliRunner()


def _unbalanced(n: int = 1500, seed: int = 5) -> pl.DataFrame:
    """A known-truth panel with births, deaths and emigration (≈ 30 % of persons incomplete), sorted by person
    and year, plus a municipality and a unit weight."""
    rng = np.random.default_rng(seed)
    d = staggered_panel(n, periods=8, n_covariates=3, time_varying=True, seed=seed)
    enter = np.where(rng.random(n) < 0.15, rng.integers(1, 5, n), 0) + 2010
    leave = np.where(rng.random(n) < 0.15, rng.integers(3, 7, n), 7) + 2010
    spans = pl.DataFrame({"person_id": d.get_column("person_id").unique().sort(), "_a": enter, "_b": leave})
    return (d.join(spans, on="person_id", how="left", maintain_order="left")
            .filter((pl.col("year") >= pl.col("_a")) & (pl.col("year") <= pl.col("_b"))).drop("_a", "_b")
            .sort("person_id", "year")
            .with_columns((pl.col("person_id") % 13).alias("muni"), (1 + (pl.col("person_id") % 4) / 3).alias("wt")))


@pytest.mark.parametrize("method, covariates", [(None, ()), ("dr", ("x1", "x2", "x3")), ("ipw", ("x1", "x2")),
                                                ("reg", ("x1", "x2")), ("dr-imp", ("x1", "x2")),
                                                ("ipw-ht", ("x1", "x2"))])
@pytest.mark.parametrize("cluster", [None, "muni"])
def test_streamed_moments_equal_the_dense_matrix(method, covariates, cluster):
    data = _unbalanced()
    res = att_gt(data, outcome="y", id_col="person_id", time_col="year", group_col="first_treat",
                 covariates=covariates, method=method, weight_col="wt", cluster_col=cluster, control="notyet")
    infl = stored(res, "influence")
    assert isinstance(infl, StreamedInfluence) and res.notes["balanced"] is False
    assert "_influence_materialised" not in res.__dict__  # nothing dense until asked for
    psi = res.influence  # the dense matrix, built chunk by chunk on request
    assert psi.shape == (res.n_units, len(res.cells))
    np.testing.assert_allclose(infl.cross(), psi.T @ psi, rtol=1e-10, atol=1e-8 * np.abs(psi.T @ psi).max())
    n = res.n_units
    if cluster is None:
        want = np.sqrt(np.einsum("ij,ij->j", psi, psi)) / n
    else:
        codes = res.clusters
        sums = np.zeros((int(codes.max()) + 1, psi.shape[1]))
        np.add.at(sums, codes, psi)
        np.testing.assert_allclose(infl.cluster_sums(), sums, rtol=1e-10, atol=1e-9 * np.abs(sums).max())
        g = sums.shape[0]
        want = np.sqrt(g / (g - 1) * np.einsum("cj,cj->j", sums, sums)) / n
    np.testing.assert_allclose([c.se for c in res.cells], want, rtol=1e-10)
    # aggregations: SEs from the moments equal those of the materialised Ψ W + w κ(G) columns
    for kind in ("dynamic", "group", "calendar", "simple"):
        agg = aggregate(res, kind)
        levels = list(agg.estimates)
        cols = np.column_stack([agg.influence[lvl] for lvl in levels] + [agg.overall_influence])
        if cluster is None:
            ss = np.einsum("ij,ij->j", cols, cols)
        else:
            s = np.zeros((int(res.clusters.max()) + 1, cols.shape[1]))
            np.add.at(s, res.clusters, cols)
            ss = s.shape[0] / (s.shape[0] - 1) * np.einsum("cj,cj->j", s, s)
        np.testing.assert_allclose([agg.ses[lvl] for lvl in levels] + [agg.overall_se], np.sqrt(ss) / n, rtol=1e-10)
        assert abs(cols[:, -1].sum()) < 1e-6 * n * max(1.0, np.abs(cols[:, -1]).max())  # influence sums to ≈ 0
    pre = pretrend_test(res)
    assert pre.df > 0 and np.isfinite(pre.statistic)


def test_streamed_columns_vanish_outside_each_cell():
    """ψ_ij = 0 for units outside cell j's sample or not observed in both of its periods."""
    data = _unbalanced()
    res = att_gt(data, outcome="y", id_col="person_id", time_col="year", group_col="first_treat",
                 covariates=("x1", "x2"), method="dr")
    panel = build_panel(data, outcome="y", id_col="person_id", time_col="year", group_col="first_treat",
                        covariates=("x1", "x2"))
    psi = res.influence
    index = {int(p): k for k, p in enumerate(panel.periods)}
    for j, c in enumerate(res.cells):
        t = index[c.time]
        b = index[c.group - 1] if c.time >= c.group else index[c.time - 1]
        seen = ~np.isnan(panel.y[:, t] - panel.y[:, b])
        in_cell = seen & ((panel.group == c.group) | (panel.group == 0))
        assert np.all(psi[~in_cell, j] == 0.0)
        assert int((in_cell & (panel.group == c.group)).sum()) == c.n_treated


def test_sorted_rows_layout_equals_the_general_layout():
    data = _unbalanced().with_columns(pl.col("x3").alias("x3_tv"))
    assert _SortedRows.scan(data, outcome="y", id_col="person_id", time_col="year", group_col="first_treat") is not None
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=3)  # unsorted: the general layout
    assert _SortedRows.scan(shuffled, outcome="y", id_col="person_id", time_col="year",
                            group_col="first_treat") is None
    kw = dict(outcome="y", id_col="person_id", time_col="year", group_col="first_treat", covariates=("x1", "x3"),
              weight_col="wt")
    a, b = build_panel(data, **kw), build_panel(shuffled, **kw)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.group, b.group)
    assert a.unit_ids.to_list() == b.unit_ids.to_list() and a.blocks == b.blocks
    assert a.covariates["x1"].ndim == 1 and a.covariates["x3"].ndim == 2  # x3 drifts by year: time-varying
    for c in ("x1", "x3"):
        np.testing.assert_array_equal(a.covariates[c], b.covariates[c])
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.notes == b.notes


def test_sorted_rows_refusals_are_those_of_the_general_layout():
    data = _unbalanced()
    moving = data.with_columns(pl.when((pl.col("person_id") == 7) & (pl.col("year") == 2015)).then(2013)
                               .otherwise(pl.col("first_treat")).alias("first_treat"))
    with pytest.raises(ValueError, match="constant within each unit"):
        build_panel(moving, outcome="y", id_col="person_id", time_col="year", group_col="first_treat")
    twice = pl.concat([data, data.filter(pl.col("person_id") == 3).head(1)]).sort("person_id", "year")
    with pytest.raises(ValueError, match="more than once"):
        build_panel(twice, outcome="y", id_col="person_id", time_col="year", group_col="first_treat")


def test_cli_reads_only_needed_columns_with_unchanged_results(tmp_path):
    """`som estimate` with a treatments file, column selection and compact types gives exactly the estimates of
    the dispatcher on the full float64 frame."""
    data = _unbalanced()
    rng = np.random.default_rng(0)
    panel = (data.drop("first_treat")
             .with_columns(pl.col("x1").cast(pl.Float64), pl.col("year").cast(pl.Int64),
                           pl.Series("counts", rng.poisson(3.0, data.height).astype(np.float64)),
                           pl.Series("unused", rng.random(data.height))))
    treat = (data.filter(pl.col("first_treat") > 0).group_by("person_id")
             .agg(pl.col("first_treat").first().alias("start_year")))
    panel.write_parquet(tmp_path / "panel.parquet")
    treat.write_parquet(tmp_path / "treatments.parquet")
    args = ["estimate", str(tmp_path / "panel.parquet"), "--treatments", str(tmp_path / "treatments.parquet"),
            "--id", "person_id", "--time", "year", "--outcome", "counts", "--outcome", "y", "--group", "start_year",
            "--covariates", "x1,x2", "--cluster", "muni", "--json", str(tmp_path / "out.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    got = pl.DataFrame(json.loads((tmp_path / "out.json").read_text())["estimates"])
    full = panel.join(treat.rename({"start_year": "g"}), on="person_id", how="left").with_columns(
        pl.col("g").fill_null(0)).sort("person_id", "year")
    want = estimate(full, outcomes=["counts", "y"], id_col="person_id", time_col="year", group_col="g",
                    settings=EstimationSettings(covariates=("x1", "x2"), cluster="muni")).table
    assert got.height == want.height
    for col in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(got.get_column(col).to_numpy().astype(float), want.get_column(col).to_numpy(),
                                   rtol=1e-12)
    meta = json.loads((tmp_path / "out.json").read_text())["metadata"]
    assert meta["data"]["rows"] == panel.height


def test_compact_types_keep_every_value():
    from pipeline.commands.estimate import compact

    frame = pl.DataFrame({"id": pl.Series([1, 2**31 - 1], dtype=pl.Int64), "big": pl.Series([0, 2**40]),
                          "count": [3.0, 1e6], "money": [0.1, 2.5], "huge": [1.0, 1e300], "gap": [1.0, None]})
    out = compact(frame, floats=True)
    assert out.schema["id"] == pl.Int32 and out.schema["big"] == pl.Int64
    assert out.schema["count"] == pl.Float32 and out.schema["gap"] == pl.Float32
    assert out.schema["money"] == pl.Float64 and out.schema["huge"] == pl.Float64  # 0.1 is not exact in float32
    for c in frame.columns:
        assert out.get_column(c).cast(frame.schema[c]).to_list() == frame.get_column(c).to_list()
    assert compact(frame).schema["count"] == pl.Float64  # floats only when asked (the staggered design)


@pytest.mark.parametrize("cluster", [None, "muni"])
def test_bootstrap_streams_the_rows_and_equals_the_dense_bootstrap(cluster):
    """The multiplier bootstrap of the cells reads the influence rows chunk by chunk (no dense matrix is kept on
    the result) and gives the draws of the bootstrap on the dense matrix."""
    from som_models.estimators.bootstrap import bootstrap_cells, multiplier_bootstrap

    data = _unbalanced()
    res = att_gt(data, outcome="y", id_col="person_id", time_col="year", group_col="first_treat",
                 covariates=("x1", "x2"), method="dr", cluster_col=cluster)
    streamed = bootstrap_cells(res, draws=199, seed=4)
    assert "_influence_materialised" not in res.__dict__
    dense = multiplier_bootstrap(np.array(res.influence), np.array([c.estimate for c in res.cells]), n=res.n_units,
                                 draws=199, seed=4, cluster=res.clusters)
    np.testing.assert_allclose(streamed.se, dense.se, rtol=1e-12)
    np.testing.assert_allclose(streamed.distribution, dense.distribution, rtol=1e-12, atol=1e-14)
    assert streamed.crit == pytest.approx(dense.crit, rel=1e-12)
