"""The audit report: every section, Danish by default and English on request, small-cell suppression, no person
numbers, escaped text, inline SVG charts with units, the udvalg tables, the spreadsheet, and a real browser render."""

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.report import build_report, decision, gather, render_report
from pipeline.report.i18n import GLOSSARY, LANGUAGES, MESSAGES, number, translator
from pipeline.store import ParameterStore, database_url

SECTIONS = ("problems", "summary", "verdicts", "payers", "udvalg", "cross-subsidy", "udvalg-compare", "diff", "paths",
            "volumes", "plan", "over-time", "effects", "projection", "method", "quality", "glossary", "provenance")
TEMPLATE = Path(__file__).parents[1] / "pipeline" / "report" / "templates" / "audit.html.j2"


@pytest.fixture(scope="module")
def report_html(demo_run):
    _, _, _, outcome, _ = demo_run
    assert outcome.success, outcome.failures
    return open(outcome.report, encoding="utf-8").read()


@pytest.fixture(scope="module")
def demo_data(demo_run):
    workdir, _, _, _, _ = demo_run
    with ParameterStore(database_url(workdir)) as store:
        return gather(store, intervention="housing_first_demo", workdir=workdir)


def test_every_section_is_present_in_order(report_html):
    positions = [report_html.index(f'id="{s}"') for s in SECTIONS]
    assert positions == sorted(positions), [s for s, _ in sorted(zip(SECTIONS, positions, strict=True), key=lambda x: x[1])]
    assert "refuted-overestimated" in report_html and 'lang="da"' in report_html


def test_danish_by_default_with_summary_and_glossary(report_html):
    for text in ("Resumé", "Hvad blev antaget", "Hvad viser registrene", "Hvad ændrer sig (forslaget)",
                 "Hvem vinder, og hvem betaler", "Ordliste", "Metode, datagrundlag og begrænsninger",
                 "afkræftet — overvurderet", "Prisår", "Diskonteringsrente", "Horisont"):
        assert text in report_html, text
    for term, da, _ in GLOSSARY:
        assert term.replace("&", "&amp;") in report_html and da.split(" ")[0] in report_html
    for term in ("Udvalg", "Refusion", "Kontanthjælp", "SØM", "§ 176"):
        assert f"<th>{term}" in report_html
    # the summary states the numbers: the projected NPV in Danish format, and who pays and who gains by udvalg
    summary = report_html[report_html.index('id="summary"'):report_html.index('id="verdicts"')]
    assert re.search(r"nutidsværdi for hele den offentlige sektor på −?\d{1,3}(\.\d{3})+ kr", summary)
    assert "Kommunen: nutidsværdi" in summary and "Staten: nutidsværdi" in summary
    assert "beskaeftigelsesudvalget" in report_html and "Blandt udvalgene investerer" in summary


def test_english_on_request_from_the_same_template(demo_data, tmp_path):
    html = render_report(demo_data, tmp_path / "en.html", lang="en").read_text(encoding="utf-8")
    assert 'lang="en"' in html and "What was assumed" in html and "Glossary" in html and "Resumé" not in html
    assert "refuted — overestimated" in html
    with pytest.raises(ValueError, match="not available"):
        build_report(demo_data, lang="fr")


def test_catalogue_is_complete_for_every_key_the_template_uses():
    used = set(re.findall(r'\bt\("([a-z_0-9-]+)"\s*[,)]', TEMPLATE.read_text(encoding="utf-8")))
    source = (TEMPLATE.parents[1] / "__init__.py").read_text(encoding="utf-8")
    used |= set(re.findall(r'\bt\("([a-z_0-9-]+)"\s*[,)]', source))
    # keys composed from data: verdict labels, payers, payer roles, versions, diff changes
    used |= {f"label_{x}" for x in ("consistent", "inconclusive", "refuted-overestimated", "refuted-underestimated")}
    used |= {f"payer_{p}" for p in ("kommune", "region", "stat", "total")}
    used |= {f"role_{r}" for r in ("gains", "pays", "none")} | {"v_before", "v_after"}
    used |= {f"change_{c}" for c in ("added", "removed", "changed")}
    missing = used - set(MESSAGES)
    assert not missing, missing
    assert all(len(v) == len(LANGUAGES) and all(v) for v in MESSAGES.values())
    t = translator("en")
    assert t("payback_in", year=2030) == "; paid back in 2030"
    with pytest.raises(KeyError):
        t("no_such_key")
    assert number(1234567.8, "da", 1) == "1.234.567,8" and number(-1234.5, "en", 0) == "−1,234"


def test_charts_are_inline_svg_with_units_and_unique_ids(report_html):
    assert "data:image/png" not in report_html and "<img" not in report_html
    svgs = re.findall(r"<svg.*?</svg>", report_html, flags=re.S)
    assert len(svgs) >= 5
    for unit in ("mio. kr", "uger pr. behandlet person pr. år", "nætter pr. behandlet person pr. år",
                 "andel af deltagerne", "antal trækninger", "år siden start"):
        assert unit in report_html, unit
    ids = re.findall(r'\bid="([^"]+)"', "".join(svgs))
    assert len(ids) == len(set(ids))
    refs = set(re.findall(r"url\(#([^)]+)\)", "".join(svgs)))
    assert refs <= set(ids)


def test_no_person_numbers_and_nothing_external(report_html, demo_run):
    _, folder, _, _, _ = demo_run
    pnrs = set(pl.read_parquet(folder / "bef201512.parquet").get_column("PNR"))
    assert not any(p in report_html for p in pnrs)
    assert not re.search(r"\b\d{10}\b", report_html)
    assert not re.search(r"<script|<link|@import|https?://", report_html)


def test_text_is_escaped(demo_data, tmp_path):
    hostile = dataclasses.replace(demo_data, title="<b>x</b> & <script>alert(1)</script>",
                                  spec={**demo_data.spec, "title": "<i>spec</i>"})
    html = render_report(hostile, tmp_path / "x.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<i>spec</i>" not in html


def test_small_cells_are_suppressed_and_marked(demo_data, tmp_path):
    # With a minimum cell size above every group's size, every count-based cell must be suppressed.
    big = max(int(n) for n in demo_data.estimates.get_column("n_treated").to_list()) + 1
    strict = dataclasses.replace(demo_data, min_cell=big)
    html = render_report(strict, tmp_path / "strict.html").read_text(encoding="utf-8")
    assert f"undertrykt (&lt;{big})" in html and f"suppressed (&lt;{big})" not in html  # one mark, in Danish
    for n in {n for c in ("n_treated", "n_control") for n in demo_data.estimates.get_column(c).to_list()
              if n is not None and n < big}:
        for shown in {str(n), number(n, "en")}:  # (Danish 1.556 is also an English decimal: checked below)
            assert not re.search(rf"<td[^>]*>{re.escape(shown)}</td>", html), n
        method = html.split('id="method"')[1].split("</table>")[0]
        assert not re.search(rf"[ >/]{re.escape(number(n, 'da'))} ?[/<]", method), n
    # cohorts (planned and realised participants, all below the threshold) are withheld in the summary and diff
    summary = html[html.index('id="summary"'):html.index('id="verdicts"')]
    assert "antog undertrykt (&lt;" in summary
    diff = html[html.index('id="diff"'):html.index('id="paths"')]
    assert "cohorts[0].participants" in diff and "<td>793</td>" not in diff
    assert "<svg" in html  # the projection charts have no persons behind them and stay
    normal = render_report(demo_data, tmp_path / "normal.html").read_text(encoding="utf-8")
    assert html.count("<svg") < normal.count("<svg")


def test_failures_and_alerts_first_passed_checks_collapsed(demo_data, tmp_path):
    checks = [*demo_data.checks, {"asset": "panel", "check": "planted_failure", "passed": False, "severity": "ERROR",
                                  "unexpected_count": 7, "element_count": 100}]
    spec = {**demo_data.spec, "alerts": {"npv_kommune_probability_below": 0.99, "severity": "warn"}}
    html = render_report(dataclasses.replace(demo_data, checks=tuple(checks), spec=spec),
                         tmp_path / "f.html").read_text(encoding="utf-8")
    alerts, problems, summary = (html.index(f'id="{s}"') for s in ("alerts", "problems", "summary"))
    assert alerts < problems < summary and "ADVARSEL</strong>" in html[alerts:problems]
    assert html.index("planted_failure") < summary and "1 af" in html[problems:summary]
    quality = html[html.index('id="quality"'):html.index('id="glossary"')]
    details = quality[quality.index("<details>"):quality.index("</details>")]
    assert "planted_failure" not in details and details.count('class="pass"') == len(demo_data.checks)
    assert "planted_failure" in quality[:quality.index("<details>")]


def _ledger_doc(scale: float = 1.0) -> dict:
    """A hand-made projection document with the udvalg ledger of two payers over three years (the format of
    :meth:`som_models.projection.ledger.Ledger.to_dict`)."""
    disc = {"kommune/boerne_og_ungeudvalget": [-100.0, 19.0, 0.0], "kommune/beskaeftigelsesudvalget": [0.0, 48.0, 55.0],
            "region/somatik": [-10.0, 0.0, 11.0]}
    nominal = {"kommune/boerne_og_ungeudvalget": [-100.0, 20.0, 0.0], "kommune/beskaeftigelsesudvalget": [0.0, 50.0, 60.0],
               "region/somatik": [-10.0, 0.0, 12.0]}
    years = (2020, 2021, 2022)
    npv = {k: scale * sum(v) for k, v in disc.items()}
    payback = {"kommune/boerne_og_ungeudvalget": None, "kommune/beskaeftigelsesudvalget": None, "region/somatik": 2022}
    accounts = [{"payer": k.split("/")[0], "udvalg": k.split("/")[1], "label": k, "npv": npv[k],
                 "payback_year": payback[k], "role": "invests" if npv[k] < 0 else "gains", "description": ""}
                for k in disc]
    return {"udvalg": {"accounts": accounts,
                       "by_year": [{"year": y, **{k: scale * v[t] for k, v in nominal.items()}} for t, y in enumerate(years)],
                       "by_year_discounted": [{"year": y, **{k: scale * v[t] for k, v in disc.items()}}
                                              for t, y in enumerate(years)]},
            "break_even": {"udvalg": {"region/somatik": {"success_rate": {"status": "ok", "value": 0.4},
                                                         "cost_per_participant": {"status": "no_cost", "value": None}}}},
            "monte_carlo": {"udvalg": {"kommune/beskaeftigelsesudvalget": {"prob_break_even": 1.0}},
                            "udvalg_no_stake": ["stat/kriminalforsorg"]}}


def test_udvalg_rows_hand_computed():
    """Three udvalg accounts of two payers over three years, read from the ledger of the projection document."""
    doc = _ledger_doc()
    rows = {r["udvalg"]: r for r in decision.udvalg_rows(doc)}
    assert rows["boerne_og_ungeudvalget"]["npv"] == -81.0 and rows["boerne_og_ungeudvalget"]["role"] == "invests"
    assert rows["boerne_og_ungeudvalget"]["payback"] is None and rows["boerne_og_ungeudvalget"]["nominal"] == -80.0
    assert rows["beskaeftigelsesudvalget"]["npv"] == 103.0 and not rows["beskaeftigelsesudvalget"]["invested"]
    assert rows["beskaeftigelsesudvalget"]["p_break_even"] == 1.0 and "p_break_even" not in rows["somatik"]
    assert rows["somatik"]["payer"] == "region" and rows["somatik"]["payback"] == 2022 and rows["somatik"]["npv"] == 1.0
    assert rows["somatik"]["break_even_success_rate"] == 0.4 and rows["somatik"]["break_even_cost"] == "no_cost"
    assert decision.udvalg_extra_columns(list(rows.values())) == []
    names, by_year = decision.cross_subsidy(decision.udvalg_rows(doc))
    assert "region: somatik" in names and "beskaeftigelsesudvalget" in names
    assert [r["total"] for r in by_year] == [-110.0, 67.0, 66.0]
    compare = {r["udvalg"]: r for r in decision.udvalg_compare({"before": doc, "after": _ledger_doc(2.0)})}
    assert compare["beskaeftigelsesudvalget"]["change"] == 103.0 and compare["somatik"]["npv_after"] == 2.0
    assert decision.udvalg_rows({"cumulative": []}) == []


def test_payer_rows_hand_computed():
    rows_ = [{"year": 2020, "payer": "kommune", "item": "cost", "amount": -100.0, "discounted": -100.0},
             {"year": 2021, "payer": "kommune", "item": "x", "amount": 52.0, "discounted": 50.0},
             {"year": 2021, "payer": "stat", "item": "x", "amount": 84.0, "discounted": 80.0}]
    doc = {"npv": {"kommune": -50.0, "region": 0.0, "stat": 80.0, "total": 30.0}, "payback_year": 2021,
           "payback_by_payer": {"kommune": None, "region": None, "stat": None}, "rows": rows_,
           "monte_carlo": {"prob_break_even": {"kommune": 0.2, "region": None, "stat": 1.0, "total": 0.7}}}
    rows = {r["payer"]: r for r in decision.payer_rows({"before": {**doc, "npv": {**doc["npv"], "kommune": 9.0}},
                                                        "after": doc})}
    assert rows["kommune"]["npv_before"] == 9.0 and rows["kommune"]["npv_after"] == -50.0
    assert (rows["kommune"]["role"], rows["kommune"]["invested"], rows["kommune"]["p_break_even"]) == ("pays", True, 0.2)
    assert (rows["region"]["role"], rows["region"]["p_break_even"]) == ("none", "no_stake")
    assert (rows["stat"]["role"], rows["stat"]["invested"]) == ("gains", False)
    assert (rows["total"]["payback"], rows["total"]["invested"], rows["total"]["role"]) == (2021, True, "gains")


def test_som_report_command_writes_report_json_and_xlsx_with_equal_totals(demo_run, tmp_path):
    import openpyxl

    workdir, _, _, _, _ = demo_run
    out, xlsx, js = tmp_path / "r.html", tmp_path / "r.xlsx", tmp_path / "r.json"
    result = CliRunner().invoke(app, ["report", "--workdir", str(workdir), "--out", str(out), "--json", str(js),
                                      "--xlsx", str(xlsx), "--lang", "en"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.count('id="summary"') == 1 and "What was assumed" in html
    doc = json.loads(js.read_text(encoding="utf-8"))
    wb = openpyxl.load_workbook(xlsx, read_only=True)
    for key, label in (("before", "evaluated"), ("after", "proposal")):
        flows = list(wb[f"{label} · Flows by year"].iter_rows(values_only=True))
        col = flows[0].index("total discounted")
        assert sum(r[col] for r in flows[1:]) == pytest.approx(doc["projections"][key]["npv"]["total"], abs=0.01)
    payers = {r[0]: r for r in list(wb["Payers"].iter_rows(values_only=True))[1:]}
    for r in doc["payers"]:
        assert payers[r["payer"]][1] == pytest.approx(r["npv_before"]) and payers[r["payer"]][2] == pytest.approx(r["npv_after"])
    udvalg = {(r[0], r[1]): r[2] for r in list(wb["Udvalg"].iter_rows(values_only=True))[1:]}
    assert udvalg and udvalg == pytest.approx({(r["payer"], r["udvalg"]): r["npv"] for r in doc["udvalg"]})
    # each payer's udvalg add up to the payer's NPV, in the workbook as in the JSON
    for payer in ("kommune", "region", "stat"):
        assert sum(v for (p, _), v in udvalg.items() if p == payer) == pytest.approx(
            doc["projections"]["after"]["npv"][payer], abs=0.01)
    by_year = list(wb["Udvalg by year"].iter_rows(values_only=True))
    assert sum(r[-1] for r in by_year[1:]) == pytest.approx(sum(udvalg.values()), abs=0.01)
    bad = CliRunner().invoke(app, ["report", "--workdir", str(workdir), "--lang", "fr"])
    assert bad.exit_code == 2 and "choose one of da, en" in bad.output
    missing = CliRunner().invoke(app, ["report", "--workdir", str(tmp_path / "empty")])
    assert missing.exit_code == 2 and "no parameter store" in missing.output


def test_plan_shown_and_realised_vs_planned_after_a_second_vintage(tmp_path, monkeypatch):
    import dagster as dg

    from pipeline.evaluation import load_spec
    from pipeline.plan import make_plan, save_plan
    from pipeline.runner import run_evaluation
    from som_models.simulate import simulate, write_delivery
    from som_reference import asset

    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    work, instance = tmp_path / "som", dg.DagsterInstance.ephemeral()
    early = write_delivery(simulate("homelessness", 2500, 5, last_year=2021), tmp_path / "2022")
    late = write_delivery(simulate("homelessness", 2500, 5), tmp_path / "2023")
    loaded = load_spec(asset("evaluations", "housing_first_demo.yaml"))
    save_plan(work, make_plan(loaded.seed, loaded.spec, panel=None, treatments=None, level=None, version=1,
                              controls=2000, voi_draws=300, voi_seed=1))
    for delivery in (early, late):
        assert run_evaluation(work, delivery=delivery, instance=instance).success
    with ParameterStore(database_url(work)) as store:
        data = gather(store, intervention="housing_first_demo", workdir=work)
    html = build_report(data, workdir=work, lang="en").html
    plan = html[html.index('id="plan"'):html.index('id="over-time"')]
    assert "Refutable from" in plan and "effect_path:kontanthjaelp_weeks" in plan and "No plan is stored" not in plan
    assert "Realised vs planned precision" in plan
    vintages = {h["vintage"] for h in data.history}
    assert len(vintages) == 2 and all(v in plan for v in vintages)
    rows = re.findall(r"<tr><td>(\d{4}-\d{2})</td><td><code>effect_path:kontanthjaelp_weeks</code></td><td>v1</td>"
                      r"<td>(\d{4})</td><td class=\"n\">([\d.]+)</td><td class=\"n\">([\d.]+)</td>", plan)
    assert len(rows) == 2 and rows[0][1] < rows[1][1]
    assert float(rows[1][2]) < float(rows[0][2])  # more register years: a smaller planned se


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Debian chromium not installed (CI installs it)")
def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    from playwright.sync_api import sync_playwright

    _, _, _, outcome, _ = demo_run
    errors = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )
        page = context.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda req: errors.append(f"request {req.url}") if not req.url.startswith("file:") else None)
        page.goto(f"file://{outcome.report}")
        page.wait_for_load_state("load")
        charts = page.evaluate("Array.from(document.querySelectorAll('svg.chart')).map(s => {"
                               "const r = s.getBoundingClientRect(); "
                               "return [r.width, r.height, s.querySelectorAll('path').length]; })")
        visible = page.evaluate("document.body.innerText")
        passed_hidden = page.evaluate("(() => { const d = document.querySelector('#quality ~ details'); "
                                      "return d !== null && !d.open && !d.querySelector('table').checkVisibility(); })()")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        context.close()
    assert not errors, errors
    assert len(charts) >= 5 and all(w > 200 and h > 100 and n > 5 for w, h, n in charts), charts
    for text in ("Resumé", "Hvad blev antaget", "Hvem vinder, og hvem betaler", "Ordliste", "Refusion", "§ 176",
                 "Kontanthjælp", "mio. kr"):
        assert text in visible, text
    assert passed_hidden and "bef__between__KOM" not in visible  # passed checks collapsed
    assert (tmp_path / "report.png").stat().st_size > 20_000
