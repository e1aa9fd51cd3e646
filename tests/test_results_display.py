"""The result protocol: summary(), to_polars() and a one-line repr on every result type (som_models.results_base)."""

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from som_models.estimators import (
    ESTIMATES_SCHEMA,
    aggregate,
    att_gt,
    consequence_estimates,
    estimate_realised_effects,
    match_comparison,
    rct_effects,
    som_consequences,
)
from som_models.estimators.results import stored, z_value
from som_models.estimators.synthetic import staggered_panel
from som_models.parameters import parse_parameter_set
from som_models.projection import compile_calculation, monte_carlo, project
from som_models.projection.engine import base_inputs, evaluate
from som_models.results_base import REPR_WIDTH, Result, fmt, fmt_ci, fmt_p, render_summary, text_table

ROOT = Path(__file__).resolve().parents[1]
KW = dict(outcome="y", id_col="person_id", time_col="year", group_col="first_treat")


def check_repr(obj, *must) -> str:
    text = repr(obj)
    assert "\n" not in text and len(text) <= REPR_WIDTH, text
    assert text.startswith(type(obj).__name__ + "(") and "array" not in text and "shape:" not in text, text
    for m in must:
        assert m in text, (m, text)
    return text


def check_protocol(obj) -> None:
    assert isinstance(obj, Result)
    field = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field, None)


def tidy_rows_in_summary(table: pl.DataFrame, text: str) -> None:
    """Every row's estimate, SE and interval appear formatted in the summary."""
    for r in table.iter_rows(named=True):
        for piece in (fmt(r["estimate"]), fmt(r["se"]), fmt_ci(r["ci_low"], r["ci_high"])):
            assert piece in text, (piece, r)


@pytest.fixture(scope="module")
def panel():
    return staggered_panel(600, periods=7, n_covariates=2, confounded=False, seed=3)


@pytest.fixture(scope="module")
def did(panel):
    return att_gt(panel, **KW)


def test_formatting_helpers():
    assert [fmt(x) for x in (None, float("nan"), 2019, np.int64(7), 0.123456, -1234.5678, 25_685_930.4, True)] == [
        "NA", "NA", "2019", "7", "0.1235", "-1235", "25,685,930", "yes"]
    assert (fmt_p(0.0004), fmt_p(0.04567), fmt_p(None)) == ("<0.001", "0.046", "NA")
    lines = text_table(["name", "value"], [["a", 1.5], ["bb", -22.25], ["c", None]], max_rows=2)
    assert lines[0].split() == ["name", "value"] and lines[2].endswith("1.5") and lines[3].endswith("-22.25")
    assert lines[-1] == "… 1 more rows (to_polars() has them all)"
    text = render_summary("Title", [("Key", 3), ("Longer key", "x"), ("Empty", None)], ["body"], ["foot"])
    assert text.splitlines() == ["Title", "=" * 20, "Key:        3", "Longer key: x", "", "body", "", "foot"]


def test_did_result(did):
    check_protocol(did)
    check_repr(did, "outcome='y'", f"cells={len(did.cells)}", "units=600", "control='never'")
    # the structured influence functions stay structured: neither repr nor summary builds the dense units × cells Ψ
    assert hasattr(stored(did, "influence"), "materialise") and "_influence_materialised" not in did.__dict__
    table = did.to_polars()
    assert table.schema == pl.Schema(ESTIMATES_SCHEMA) and table.height == len(did.cells)
    assert table.get_column("estimate").to_list() == [c.estimate for c in did.cells]
    assert set(table.get_column("estimand").to_list()) == {"att_gt"}
    z = z_value(0.1)
    t90 = did.to_polars(alpha=0.1)
    assert np.allclose(t90.get_column("ci_high").to_numpy(), [c.estimate + z * c.se for c in did.cells])
    text = did.summary()
    tidy_rows_in_summary(table, text)
    assert "_influence_materialised" not in did.__dict__
    assert "Callaway & Sant'Anna (2021)" in text and "never treated" in text and "Units:       600" in text
    assert "Pre-trend test" in text and "χ²(" in text
    assert "90 % CI" in did.summary(alpha=0.1)
    short = did.summary(max_rows=3)
    assert f"… {len(did.cells) - 3} more rows" in short


def test_aggregations(did):
    dyn = aggregate(did, "dynamic")
    check_protocol(dyn)
    check_repr(dyn, "kind='dynamic'", f"levels={len(dyn.estimates)}", f"overall={fmt(dyn.overall)}")
    table = dyn.to_polars()
    assert table.height == len(dyn.estimates) + 1
    events = table.filter(pl.col("estimand") == "event")
    assert events.get_column("event_time").to_list() == list(dyn.estimates)
    assert events.get_column("se").to_list() == [dyn.ses[e] for e in dyn.estimates]
    overall = table.filter(pl.col("estimand") == "overall").row(0, named=True)
    assert (overall["estimate"], overall["se"], overall["n_treated"]) == (dyn.overall, dyn.overall_se, None)
    text = dyn.summary()
    tidy_rows_in_summary(table, text)
    assert f"Overall: {fmt(dyn.overall)} (se {fmt(dyn.overall_se)})" in text
    grp = aggregate(did, "group").to_polars()
    assert grp.filter(pl.col("estimand") == "group").get_column("group").to_list() == sorted(did.group_shares)
    cal = aggregate(did, "calendar").to_polars()
    assert cal.filter(pl.col("estimand") == "calendar").get_column("time").null_count() == 0
    simple = aggregate(did, "simple")
    assert simple.to_polars().get_column("estimand").to_list() == ["overall"]


def test_realised_effects(panel):
    treatments = panel.select("person_id", pl.when(pl.col("first_treat") > 0).then(pl.col("first_treat"))
                              .alias("start_year")).unique()
    eff = estimate_realised_effects(panel, treatments, outcomes=["y", "x2"])
    check_protocol(eff)
    check_repr(eff, "outcomes=2", f"rows={eff.table.height}", "units=600")
    assert eff.to_polars() is eff.table
    text = eff.summary()
    shown = eff.table.filter(pl.col("estimand").is_in(["event", "overall"]))
    tidy_rows_in_summary(shown, text)
    cells = eff.table.height - shown.height
    assert f"({cells} ATT(g,t) cells not shown; to_polars() has them)" in text
    for outcome, test in eff.pretrends.items():
        assert f"{outcome}: χ²({test.df}) = {test.statistic:.2f}, p = {fmt_p(test.p_value)}" in text


@pytest.fixture(scope="module")
def rct_panel():
    rng = np.random.default_rng(8)
    n = 400
    arm = rng.integers(0, 2, n)
    rows = [pl.DataFrame({"id": np.arange(n), "year": 2010 + k, "arm": arm,
                          "y": 10 + rng.standard_normal(n) * 2 - (1.5 * arm if k >= 1 else 0)}) for k in range(4)]
    return pl.concat(rows)


def test_rct_result(rct_panel):
    res = rct_effects(rct_panel, outcome="y", id_col="id", time_col="year", arm_col="arm", start=2011)
    check_protocol(res)
    check_repr(res, "outcome='y'", "method='dim'", "robust='HC2'", f"overall={fmt(res.overall)}")
    assert res.to_polars() is res.table
    text = res.summary()
    tidy_rows_in_summary(res.table, text)
    assert "difference in means" in text and "HC2" in text and "balance checks" in text
    for p in res.details.get_column("p_robust").to_list():
        assert fmt_p(p) in text
    assert f"Overall (mean over e ≥ 0): {fmt(res.overall)} (se {fmt(res.overall_se)})" in text
    ancova = rct_effects(rct_panel, outcome="y", id_col="id", time_col="year", arm_col="arm", start=2011,
                         method="ancova", alpha=0.1)
    assert "ANCOVA" in ancova.summary() and "90 % CI" in ancova.summary() and ancova.alpha == 0.1


def test_match_result(panel):
    m = match_comparison(panel, covariates=["x1", "x2"], **KW)
    check_protocol(m)
    text = check_repr(m, "method='nearest'", "cohorts=2")
    assert f"max_abs_smd_after={fmt(m.max_abs_smd())}" in text
    assert m.to_polars() is m.balance and list(m.balance.columns)[:2] == ["group", "feature"]
    summary = m.summary()
    treated = int((m.weights.get_column("role") == "treated").sum())
    assert f"Treated units matched: {treated}" in summary
    for r in m.balance.iter_rows(named=True):
        assert r["feature"] in summary and fmt(r["smd_after"]) in summary


def test_consequence_estimates():
    rng = np.random.default_rng(4)
    n, ref = 400, 2015
    success = rng.random(n) < 0.4
    data = pl.concat([pl.DataFrame({"pid": np.arange(n), "year": ref + k, "success": success.astype(int),
                                    "sex": rng.integers(0, 2, n),
                                    "nights": 5 - success * (k > 0) * 1.0 + rng.standard_normal(n)})
                      for k in range(5)])
    kw = dict(outcomes=["nights"], id_col="pid", time_col="year", success_col="success", reference=ref,
              factors=["sex"], years=range(1, 5))
    res = consequence_estimates(data, **kw)
    check_protocol(res)
    check_repr(res, "outcomes=1", "rows=4", "robust='HC2'")
    assert res.to_polars().equals(som_consequences(data, **kw))  # same numbers as the plain function
    assert (res.reference, res.factors, res.baseline, res.alpha) == (ref, ("sex",), False, 0.05)
    text = res.summary()
    tidy_rows_in_summary(res.table, text)
    assert "sex (dummies)" in text and "HC2" in text and "flagged, not filtered" in text


@pytest.fixture(scope="module")
def params():
    doc = yaml.safe_load((ROOT / "assets" / "parameters" / "housing_first_demo.yaml").read_text())
    return parse_parameter_set(doc)


def test_projection(params):
    proj = project(params)
    check_protocol(proj)
    check_repr(proj, "intervention='housing_first_demo'", f"npv_total={fmt(proj.npv['total'])}",
               f"payback_year={proj.payback_year}")
    table = proj.to_polars()
    assert table.columns == ["payer", "npv", "payback_year"]
    assert dict(zip(table["payer"], table["npv"], strict=False)) == dict(proj.npv)
    assert table.row(3, named=True) == {"payer": "total", "npv": proj.npv["total"], "payback_year": proj.payback_year}
    text = proj.summary()
    for payer, npv in proj.npv.items():
        assert any(line.startswith(payer) and fmt(npv) in line for line in text.splitlines()), payer
    assert "3.5 % (years 1–35), 2.5 % (36–70), 1.5 % (71+)" in text and f"Success rate:  {fmt(params.success_rate.value)}" in text
    assert proj.discounting.startswith("3.5 %")


def test_monte_carlo_and_evaluation(params):
    mc = monte_carlo(params, draws=500, seed=4)
    check_protocol(mc)
    check_repr(mc, "draws=500", "seed=4", f"p_break_even={fmt(mc.prob_break_even['total'])}")
    table = mc.to_polars()
    assert table.columns == ["payer", "deterministic_npv", "mean", "p5", "p25", "p50", "p75", "p95", "p_break_even"]
    assert table.get_column("payer").to_list() == ["kommune", "region", "stat", "total"]
    assert table.get_column("p_break_even").to_list() == [mc.prob_break_even[k] for k in table["payer"]]
    assert table.get_column("p95").to_list() == [mc.percentiles[k][95.0] for k in table["payer"]]
    text = mc.summary()
    assert "Draws:" in text and " 500" in text and "Seed:" in text and "P(NPV ≥ 0)" in text
    assert fmt(mc.mean["total"]) in text and f"{mc.prob_break_even['total']:.3f}" in text
    assert mc.tornado[0].input in text
    c = compile_calculation(params)
    check_repr(c, "intervention='housing_first_demo'")
    ev = evaluate(c, *base_inputs(c))
    check_protocol(ev)
    check_repr(ev, "draws=1", f"mean_npv_total={fmt(mc.deterministic_npv['total'])}")
    assert ev.to_polars().columns == ["draw", "kommune", "region", "stat", "total"]
    assert ev.to_polars()["total"].to_list() == pytest.approx([mc.deterministic_npv["total"]])
    assert fmt(mc.deterministic_npv["total"]) in ev.summary()
