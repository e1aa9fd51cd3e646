"""The audit report: every section, small-cell suppression, no person numbers, and a real browser render."""

import dataclasses
import os
import re
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.report import gather, render_report
from pipeline.store import ParameterStore, database_url

SECTIONS = ("summary", "paths", "over-time", "effects", "projection", "quality", "provenance")


@pytest.fixture(scope="module")
def report_html(demo_run):
    _, _, _, outcome, _ = demo_run
    assert outcome.success, outcome.failures
    return open(outcome.report, encoding="utf-8").read()


def test_every_section_is_present(report_html):
    for section in SECTIONS:
        assert f'id="{section}"' in report_html
    assert "refuted-overestimated" in report_html and "Parameter versions" in report_html


def test_no_person_numbers_and_nothing_external(report_html, demo_run):
    _, folder, _, _, _ = demo_run
    pnrs = set(pl.read_parquet(folder / "bef201512.parquet").get_column("PNR"))
    assert not any(p in report_html for p in pnrs)
    assert not re.search(r"\b\d{10}\b", report_html)
    assert not re.search(r"<script|<link|@import|https?://", report_html)


def test_small_cells_are_suppressed_and_marked(demo_run, tmp_path):
    workdir, _, _, _, _ = demo_run
    with ParameterStore(database_url(workdir)) as store:
        data = gather(store, intervention="housing_first_demo", workdir=workdir)
    # With a minimum cell size above every group's size, every count-based cell must be suppressed.
    big = max(int(n) for n in data.estimates.get_column("n_treated").to_list()) + 1
    strict = dataclasses.replace(data, min_cell=big)
    html = render_report(strict, tmp_path / "strict.html").read_text(encoding="utf-8")
    assert f"suppressed (&lt;{big})" in html
    for n in set(data.estimates.get_column("n_treated").to_list()):
        assert not re.search(rf"<td>{n}</td>", html), n
    assert "<img" in html  # the projection chart has no persons behind it and stays
    assert html.count("data:image/png") < render_report(data, tmp_path / "normal.html").read_text().count("data:image/png")


def test_som_report_command_writes_the_report(demo_run, tmp_path):
    workdir, _, _, _, _ = demo_run
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--workdir", str(workdir), "--out", str(out), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").count('id="summary"') == 1
    missing = CliRunner().invoke(app, ["report", "--workdir", str(tmp_path / "empty")])
    assert missing.exit_code == 2 and "no parameter store" in missing.output


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
        page.goto(f"file://{outcome.report}")
        page.wait_for_load_state("load")
        drawn = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        context.close()
    assert not errors, errors
    assert len(drawn) >= 5 and all(drawn)
    assert (tmp_path / "report.png").stat().st_size > 20_000
