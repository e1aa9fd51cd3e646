"""Effect-size conversions by hand, the seeded knowledge base, pooling into priors, templates, and `som kb`."""

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from som_models.knowledge import (
    KnowledgeBase,
    KnowledgeError,
    cox_d,
    hedges_g,
    log_odds_ratio,
    parse_study,
    se_from_ci,
    success_rate_from_d,
)
from som_models.parameters import parse_parameter_set
from som_models.projection import project

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase.load()


def test_hedges_g_by_hand():
    g, v = hedges_g(103, 5.5, 50, 100, 4.5, 50)
    # s_p = √((49·30.25 + 49·20.25)/98) = √25.25 = 5.024938; d = 3/5.024938 = 0.597022
    # J = 1 − 3/(4·98 − 1) = 1 − 3/391 = 0.992327; g = 0.592441
    # var(d) = 100/2500 + 0.597022²/200 = 0.04 + 0.001782 = 0.041782; var(g) = J²·var(d) = 0.041462
    d = 3 / math.sqrt(25.25)
    j = 1 - 3 / 391
    assert g == pytest.approx(j * d) and round(g, 4) == 0.5924
    assert v == pytest.approx(j**2 * (100 / 2500 + d**2 / 200)) and round(v, 4) == 0.0411


def test_log_odds_ratio_and_cox_transform_by_hand():
    lor, var = log_odds_ratio(72, 162, 62, 164)
    # a = 72, b = 90, c = 62, d = 102: ln(72·102 / (90·62)) = ln(7,344/5,580) = ln(1.316129) = 0.274695
    # var = 1/72 + 1/90 + 1/62 + 1/102 = 0.013889 + 0.011111 + 0.016129 + 0.009804 = 0.050933
    assert lor == pytest.approx(math.log(7344 / 5580)) and round(lor, 6) == 0.274695
    assert var == pytest.approx(1 / 72 + 1 / 90 + 1 / 62 + 1 / 102)
    d, vd = cox_d(lor, var)
    assert d == pytest.approx(lor / 1.65) and vd == pytest.approx(0.367 * var)  # Sánchez-Meca et al. (2003)
    # A zero cell adds 0.5 everywhere: 0/10 vs 5/10 → ln(0.5·5.5 / (10.5·5.5)) = ln(0.5/10.5)
    lor0, var0 = log_odds_ratio(0, 10, 5, 10)
    assert lor0 == pytest.approx(math.log(0.5 / 10.5)) and var0 == pytest.approx(1 / 0.5 + 1 / 10.5 + 2 / 5.5)
    with pytest.raises(ValueError, match="0 ≤ events ≤ n"):
        log_odds_ratio(12, 10, 1, 10)


def test_success_rate_from_a_cox_effect_and_se_from_a_ci():
    # baseline 0.4 (odds 2/3); d = ln(1.5)/1.65 multiplies the odds by 1.5 → odds 1, p1 = 0.5: success rate 0.1
    sr, se = success_rate_from_d(math.log(1.5) / 1.65, 0.2, 0.4)
    assert sr == pytest.approx(0.1) and se == pytest.approx(1.65 * 0.25 * 0.2)
    assert se_from_ci(0.36, 0.48) == pytest.approx(0.12 / (2 * 1.959964), rel=1e-6)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        success_rate_from_d(0.1, 0.1, 1.0)


def test_seeded_knowledge_base_is_complete_and_honest(kb):
    assert len(kb.studies) >= 5
    for s in kb.studies:
        assert s.status and s.url.startswith("http") and s.reported and s.evidence_level in (1, 2, 3)
    assert len(kb.target_groups) >= 3
    for tg in kb.target_groups.values():
        assert tg.consequences
        for c in tg.consequences:
            assert c.status in ("verified", "placeholder") and c.source
            assert (c.price in kb.prices) != (c.taxable is not None)
    for p in kb.prices.values():
        assert p.status and p.source
    gp = kb.prices["gp_contact_0_17"]
    assert (gp.amounts, gp.price_year, gp.status) == ({"kommune": 110, "region": 352, "stat": 0}, 2022, "verified")


def test_effects_are_computed_from_the_reported_data(kb):
    s = kb.study("stergiopoulos2015_hf_icm")
    # 0.751 − 0.393 = 0.358; se = √(((0.797−0.705)/3.92)² + ((0.442−0.343)/3.92)²)
    e = s.effects["difference"]
    assert e.value == pytest.approx(0.358)
    assert e.se == pytest.approx(math.hypot(se_from_ci(0.705, 0.797), se_from_ci(0.343, 0.442)))
    h = kb.study("hellstrom2017_ips_ma_dk")
    assert h.standardised.metric == "cox_d" and h.standardised.value == pytest.approx(math.log(7344 / 5580) / 1.65)
    assert kb.study("aubry2016_hf_act_24m").effects == {}  # no standard error in the abstract: not poolable
    meta = kb.study("frederick2019_ips_meta").effects["log_risk_ratio"]
    assert meta.value == pytest.approx(math.log(1.63)) and meta.se == pytest.approx(se_from_ci(math.log(1.46), math.log(1.82)))


def test_search_filters(kb):
    assert {s.id for s in kb.search(outcome="stable_housing")} == {
        "aubry2015_hf_act_12m", "aubry2016_hf_act_24m", "stergiopoulos2015_hf_icm", "somers2017_congregate_hf",
        "somers2017_scattered_hf"}
    assert [s.id for s in kb.search("ips", country="Denmark")] == ["christensen2019_ips_dk", "hellstrom2017_ips_ma_dk"]
    assert kb.search("no such words here") == []
    with pytest.raises(KnowledgeError, match="no target group 'nobody'"):
        kb.search(target_group="nobody")


def test_pool_keeps_one_study_per_sample_and_gives_a_success_rate_prior(kb):
    # a 12-month point share and a 24-month share of time: refused unless allowed, then pooled with a warning
    res = kb.pool(outcome="stable_housing", method="DL", allow_incomparable=True)
    assert [s.id for s in res.studies] == ["aubry2015_hf_act_12m", "stergiopoulos2015_hf_icm"]
    assert res.warnings[0].startswith("incomparable outcomes: the studies measure the outcome differently")
    assert "transferability rule 2" in res.transfer and "Canada vs treatment as usual" in res.transfer
    assert dict(res.excluded) == {
        "aubry2016_hf_act_24m": "no difference (no standard error reported)",
        "somers2017_congregate_hf": "same sample as aubry2015_hf_act_12m (at_home_chez_soi_high_needs)",
        "somers2017_scattered_hf": "same sample as aubry2015_hf_act_12m (at_home_chez_soi_high_needs)"}
    # DL by hand for two studies: w = 1/se²; Q = Σ w (y − ȳ_w)²; τ² = (Q − 1)/(Σw − Σw²/Σw).
    y = [0.42, 0.358]
    se = [se_from_ci(0.36, 0.48), math.hypot(se_from_ci(0.705, 0.797), se_from_ci(0.343, 0.442))]
    w = [1 / s**2 for s in se]
    fe = sum(wi * yi for wi, yi in zip(w, y, strict=False)) / sum(w)
    q = sum(wi * (yi - fe) ** 2 for wi, yi in zip(w, y, strict=False))
    tau2 = max(0.0, (q - 1) / (sum(w) - sum(wi**2 for wi in w) / sum(w)))
    ws = [1 / (s**2 + tau2) for s in se]
    mu = sum(wi * yi for wi, yi in zip(ws, y, strict=False)) / sum(ws)
    assert res.result.tau2 == pytest.approx(tau2) and res.result.estimate == pytest.approx(mu)
    sr = res.success_rate_prior
    assert sr.value == pytest.approx(mu) and sr.se == pytest.approx(math.sqrt(tau2 + 1 / sum(ws)))
    assert res.prior.basis == "predictive"
    mean_basis = kb.pool(outcome="stable_housing", method="DL", basis="mean", allow_incomparable=True)
    assert mean_basis.prior.se == pytest.approx(1 / math.sqrt(sum(ws)))
    # rule 2: a foreign contrast offered as a success rate keeps the predictive SD whatever basis was asked for
    assert mean_basis.success_rate_prior.se == pytest.approx(math.sqrt(tau2 + 1 / sum(ws)))


def test_pool_on_the_cox_scale_turns_into_a_success_rate_with_a_baseline(kb):
    res = kb.pool(outcome="employment_or_education", metric="cox_d", method="REML", baseline=0.4,
                  allow_incomparable=True)
    assert {s.id for s in res.studies} == {"bond_ips_young_adults", "hellstrom2017_ips_ma_dk"}
    # rule 1: the Danish study alone makes the success-rate prior (the US trial is pooled but not transferred)
    danish = kb.pool(outcome="employment_or_education", metric="cox_d", method="REML", ids=["hellstrom2017_ips_ma_dk"],
                     baseline=0.4)
    expected = success_rate_from_d(danish.prior.value, danish.prior.se, 0.4)
    assert (res.success_rate_prior.value, res.success_rate_prior.se) == pytest.approx(expected)
    assert "transferability rule 1" in res.transfer and "bond_ips_young_adults (United States)" in res.transfer
    assert danish.transfer == "Danish evidence: no transfer" and danish.warnings == ()
    no_baseline = kb.pool(outcome="employment_or_education", metric="cox_d", allow_incomparable=True)
    assert no_baseline.success_rate_prior is None
    with pytest.raises(KnowledgeError, match="no studies of outcome 'flying'"):
        kb.pool(outcome="flying")
    with pytest.raises(KnowledgeError, match="is not about outcome"):
        kb.pool(outcome="stable_housing", ids=["hellstrom2017_ips_ma_dk"])


def test_study_entries_are_strict():
    entry = yaml.safe_load((ROOT / "assets" / "knowledge" / "studies.yaml").read_text(encoding="utf-8"))["studies"][0]
    with pytest.raises(KnowledgeError, match=r"study\.effect_size: unknown key"):
        parse_study({**entry, "effect_size": 1})
    with pytest.raises(KnowledgeError, match=r"evidence_level: expected 1, 2 or 3"):
        parse_study({**entry, "evidence_level": 4})
    with pytest.raises(KnowledgeError, match=r"data\[0\]\.kind"):
        parse_study({**entry, "data": [{"kind": "vibes"}]})
    with pytest.raises(KnowledgeError, match=r"data\[0\]: give either se or ci"):
        parse_study({**entry, "data": [{"kind": "estimate", "metric": "difference", "value": 0.1}]})


def test_a_broken_asset_is_reported_with_its_place(tmp_path):
    shutil.copytree(ROOT / "assets" / "knowledge", tmp_path / "knowledge")
    shutil.copytree(ROOT / "assets" / "prices", tmp_path / "prices")
    path = tmp_path / "knowledge" / "target_groups" / "voksne_i_hjemloeshed.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["consequences"]["shelter_nights"]["price"] = "no_such_price"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"voksne_i_hjemloeshed\.consequences\.shelter_nights\.price: unknown unit price"):
        KnowledgeBase.load(tmp_path)


@pytest.mark.parametrize("tg", ["voksne_i_hjemloeshed", "udsatte_boern_unge_6_13",
                                "voksne_med_psykisk_lidelse_paa_offentlig_forsoergelse"])
def test_templates_are_valid_calculation_documents(kb, tg):
    doc = kb.calculation_template(tg, intervention="t", start_year=2025, participants=100, cost_per_participant=50_000,
                                  success_rate=0.2, success_rate_se=0.05)
    params = parse_parameter_set(doc)
    result = project(params)
    assert result.npv["total"] != 0
    if tg == "udsatte_boern_unge_6_13":
        assert doc["refusion"]["expensive_cases"]["rule"] == "barnets_lov_198"
    if tg == "voksne_med_psykisk_lidelse_paa_offentlig_forsoergelse":
        assert doc["tax"]["taxable"] == {"earnings_dkk": {"kroner": 1.0, "income": "earned"}}
        assert doc["tax"]["am_bidrag"] == 0.08 and doc["refusion"]["staircase"]["items"] == ["kontanthjaelp_weeks"]


def test_kb_cli(tmp_path):
    r = runner.invoke(app, ["kb", "search", "housing", "--outcome", "stable_housing", "--json", "-"])
    assert r.exit_code == 0, r.output
    assert {s["id"] for s in json.loads(r.stdout)} >= {"stergiopoulos2015_hf_icm"}
    r = runner.invoke(app, ["kb", "show", "hellstrom2017_ips_ma_dk"])
    assert r.exit_code == 0 and "cox_d" in r.output
    r = runner.invoke(app, ["kb", "show", "udsatte_boern_unge_6_13"])
    assert r.exit_code == 0 and "gp_contact_0_17" in r.output
    r = runner.invoke(app, ["kb", "pool", "--outcome", "stable_housing", "--method", "DL", "--json", "-"])
    assert r.exit_code == 2 and "incomparable outcomes" in r.output and "--allow-incomparable" in r.output
    r = runner.invoke(app, ["kb", "pool", "--outcome", "stable_housing", "--method", "DL", "--allow-incomparable",
                            "--json", "-"])
    assert r.exit_code == 0 and "warning: incomparable outcomes" in r.stderr
    pooled = json.loads(r.stdout)
    assert pooled["meta_analysis"]["method"] == "DL" and pooled["success_rate_prior"]["metric"] == "success_rate"
    out = tmp_path / "calc.yaml"
    r = runner.invoke(app, ["kb", "template", "voksne_i_hjemloeshed", "--cost", "95000", "--success-rate", "0.2",
                            "--success-rate-se", "0.05", "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["project", str(out), "--no-rows", "--json", "-"])
    assert r.exit_code == 0 and json.loads(r.stdout)["intervention"] == "voksne_i_hjemloeshed_calculation"


@pytest.mark.parametrize("args,text", [
    (["kb", "show", "nothing"], "nothing called 'nothing' in the knowledge base"),
    (["kb", "pool", "--outcome", "stable_housing", "--method", "PM"], "--method must be one of"),
    (["kb", "pool", "--outcome", "stable_housing", "--baseline", "1.5"], "--baseline must be a share"),
    (["kb", "pool", "--outcome", "nothing"], "no studies of outcome 'nothing'"),
    (["kb", "search", "--max-level", "7"], "--max-level must be 1, 2 or 3"),
    (["kb", "template", "nobody", "--cost", "1", "--success-rate", "0.1"], "no target group 'nobody'"),
    (["kb", "template", "voksne_i_hjemloeshed", "--cost", "1", "--success-rate", "2"], "--success-rate must be between 0 and 1"),
])
def test_kb_cli_bad_input_is_one_line(args, text):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert text in r.output and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_a_finished_evaluation_becomes_a_study_that_pools(kb):
    from som_models.knowledge import study_from_evaluation

    ev = study_from_evaluation(id="eval_hf_dk", target_group="voksne_i_hjemloeshed", outcome="stable_housing",
                               estimate=0.18, se=0.05, year=2026, design="quasi-experimental", evidence_level=2,
                               n_treatment=300, n_control=3000, source="https://example.org/evaluation-run/42",
                               intervention="Housing First (demo)")
    bigger = kb.with_study(ev)
    assert len(bigger.studies) == len(kb.studies) + 1 and len(KnowledgeBase.load().studies) == len(kb.studies)
    res = bigger.pool(outcome="stable_housing", method="DL", allow_incomparable=True)
    assert "eval_hf_dk" in [s.id for s in res.studies] and res.result.k == 3
    # the agency's own (Danish) evaluation alone makes the success-rate prior (transferability rule 1)
    assert res.success_rate_prior.value == pytest.approx(0.18) and "rule 1" in res.transfer
    with pytest.raises(KnowledgeError, match="duplicate id"):
        bigger.with_study(ev)
