"""`som project`: the SØM calculation frame on a calculation document or a stored parameter version.

Examples::

    som project assets/parameters/housing_first_demo.yaml
    som project calc.yaml --draws 10000 --seed 7 --json result.json
    som project --intervention housing_first_demo --version 2 --workdir .som

The document format is described in docs/calculation-document.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command

MAX_DRAWS = 1_000_000


def register(app: typer.Typer) -> None:
    app.command(name="project")(json_command(project_command))


def _read_document(path: Path) -> Any:
    import yaml

    from som_reference.strict_yaml import loads_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{path}: file not found")
    except IsADirectoryError:
        fail(f"{path}: is a folder, not a calculation document")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot be read ({exc})")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return loads_yaml(text, str(path))
    except json.JSONDecodeError as exc:
        fail(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        fail(f"{path}: not valid YAML{where}")


def _stored_document(intervention: str, version: int, workdir: Path | None) -> Any:
    import os

    from pipeline.store import ParameterStore, StoreError
    from pipeline.workdir import resolve_workdir

    home = resolve_workdir(workdir)
    if not os.environ.get("SOM_DATABASE_URL", "").strip() and not (home / "som.db").is_file():
        fail(f"no parameter store in {home} (run `som demo` there first, or set SOM_DATABASE_URL)")
    try:
        with ParameterStore.from_workdir(home) as store:
            return store.get_version(intervention, version).content
    except StoreError as exc:
        fail(str(exc))


def _kr(x: float) -> str:
    return f"{x:,.0f}"


def project_command(
    calc: Path | None = typer.Argument(None, help="Calculation document (YAML or JSON)."),
    intervention: str | None = typer.Option(None, "--intervention", "-i",
                                            help="Project a stored parameter version of this intervention."),
    version: int | None = typer.Option(None, "--version", "-v", help="The stored version (with --intervention)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
    draws: int | None = typer.Option(None, "--draws", "-n",
                                     help="Monte Carlo draws (default: the document's monte_carlo.draws, else none)."),
    seed: int | None = typer.Option(None, "--seed", "-s",
                                    help="Monte Carlo seed (default: the document's monte_carlo.seed, else 1)."),
    rows: bool = typer.Option(True, "--rows/--no-rows", help="Print the year × payer × item table."),
    xlsx: Path | None = typer.Option(None, "--xlsx", metavar="PATH",
                                     help="Also write an Excel workbook: flows by year and payer, NPV and payback, "
                                          "break-even, udvalg (committee) split."),
    discount_sensitivity: str | None = typer.Option(
        None, "--discount-sensitivity", metavar="LIST",
        help="Discount schedules to compare, comma-separated: fm2021, fm2013, none, or flat rates in per cent "
             "(default: fm2021,fm2013,none,2,3.5,4)."),
) -> None:
    """Budget consequences per year, payer and item; NPV, payback, ROI; Monte Carlo.

    Example: som project calc.yaml --draws 10000 --json out.json --xlsx out.xlsx

    CALC is a calculation document (docs/calculation-document.md); or project a stored parameter version with
    --intervention ID --version V.
    """
    if (calc is None) == (intervention is None):
        fail("give either a calculation document CALC or --intervention ID --version V")
    if intervention is not None and version is None:
        fail("--intervention needs --version (the stored parameter version to project)")
    if version is not None and intervention is None:
        fail("--version needs --intervention")
    if version is not None and version < 1:
        fail(f"--version must be at least 1 (got {version})")
    if draws is not None and not 0 <= draws <= MAX_DRAWS:
        fail(f"--draws must be between 0 and {MAX_DRAWS:,} (got {draws})")
    if seed is not None and seed < 0:
        fail(f"--seed must be non-negative (got {seed})")
    if xlsx is not None and xlsx.suffix.lower() != ".xlsx":
        fail(f"--xlsx {xlsx}: the workbook file name must end in .xlsx")

    schedules = None
    if discount_sensitivity is not None:
        from som_models.projection.sensitivity import parse_schedules

        try:
            schedules = parse_schedules(discount_sensitivity)
        except ValueError as exc:
            fail(f"--discount-sensitivity: {exc}")
    doc = _read_document(calc) if calc is not None else _stored_document(intervention, version, workdir)
    source = str(calc) if calc is not None else f"{intervention} version {version}"

    from som_models.parameters import ParameterError, parse_parameter_set
    from som_models.projection import break_even, monte_carlo, project
    from som_models.projection.decision import decision_aids

    try:
        params = parse_parameter_set(doc)
        result = project(params)
        be = break_even(params)
        aids = decision_aids(params, discount_schedules=schedules)
        n_draws = draws if draws is not None else params.monte_carlo.draws
        mc = monte_carlo(params, draws=n_draws, seed=seed) if n_draws else None
    except ParameterError as exc:
        fail(f"{source}: {exc}")

    from som_models.projection.document import projection_document

    out = projection_document(result, be, mc, aids, source=source)
    _print(result, mc, source, rows, be)
    from pipeline.decision_output import print_decision_aids

    print_decision_aids(console, aids)
    if xlsx is not None:
        from pipeline.xlsx_export import write_projection_xlsx

        try:
            write_projection_xlsx(xlsx, out, cohorts=params.cohorts)
        except OSError as exc:
            fail(f"--xlsx {xlsx}: cannot be written ({exc.strerror or exc})")
        console.print(f"Workbook written: {xlsx}", soft_wrap=True, highlight=False)
    emit_json(json_out, out)


def _print(result, mc, source: str, show_rows: bool, be) -> None:
    import polars as pl

    from som_models.parameters import PAYERS

    console.print(Text.assemble((result.intervention, "bold"), f" — {source}; success rate {result.success_rate:.3g}; "
                                f"kroner at {result.price_year} prices; savings positive, costs negative"), soft_wrap=True)
    if show_rows:
        t = Table(title="Budget consequences by year, payer and item")
        for col, just in (("year", "right"), ("payer", "left"), ("item", "left"), ("nominal", "right"), ("discounted", "right")):
            t.add_column(col, justify=just)
        for r in result.rows.iter_rows(named=True):
            t.add_row(str(r["year"]), r["payer"], r["item"], _kr(r["amount"]), _kr(r["discounted"]))
        console.print(t)
    by_payer = (result.rows.group_by("year", "payer").agg(pl.col("amount").sum())
                .pivot(on="payer", index="year", values="amount") if result.rows.height else None)
    per = {} if by_payer is None else {r["year"]: r for r in by_payer.iter_rows(named=True)}
    t = Table(title="Net by year (nominal) and cumulative net")
    t.add_column("year", justify="right")
    for p in PAYERS:
        t.add_column(p, justify="right")
    for col in ("total", "discounted", "cumulative", "cumulative discounted"):
        t.add_column(col, justify="right")
    for r in result.cumulative.iter_rows(named=True):
        row = per.get(r["year"], {})
        t.add_row(str(r["year"]), *(_kr(row.get(p) or 0.0) for p in PAYERS), _kr(r["amount"]), _kr(r["discounted"]),
                  _kr(r["cumulative"]), _kr(r["cumulative_discounted"]))
    console.print(t)
    t = Table(title="Net present value (discounted)")
    for col in (*PAYERS, "total"):
        t.add_column(col, justify="right")
    t.add_row(*(_kr(result.npv[k]) for k in (*PAYERS, "total")))
    console.print(t)
    payback = {p: result.payback_by_payer.get(p) for p in PAYERS}
    yearly = result.rows.group_by("year", "payer").agg(pl.col("discounted").sum())
    bears_cost = {p: bool((yearly.filter(pl.col("payer") == p)["discounted"] < 0).any()) for p in PAYERS}
    per_payer = ", ".join(f"{p} {payback[p] or ('never' if bears_cost[p] else 'no net cost')}" for p in PAYERS)
    console.print(Text.assemble("Payback year: ", (str(result.payback_year or "none within the horizon"), "bold"),
                                f" (by payer: {per_payer}); ROI {'n/a' if result.roi is None else f'{result.roi:.2f}'} "
                                "(NPV per krone of discounted intervention cost)"), soft_wrap=True)
    t = Table(title="Break-even (NPV = 0; NPV is linear in each, so exact)")
    for col, just in (("payer", "left"), ("success rate", "left"), ("cost per participant", "left")):
        t.add_column(col, justify=just)
    for k in (*PAYERS, "total"):
        t.add_row(k, be.success_rate[k].describe(), be.cost_per_participant[k].describe())
    console.print(t)
    if result.ledger is not None and result.ledger.accounts:
        _print_ledger(result.ledger, be, mc)
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"), soft_wrap=True, highlight=False)
    for w in result.warnings:
        console.print(Text.assemble(("warning:", "yellow"), f" {w}"), soft_wrap=True, highlight=False)
    if mc is None:
        return
    t = Table(title=f"Monte Carlo: {mc.draws:,} draws, seed {mc.seed} (NPV, kr)")
    t.add_column("payer")
    for col in ("mean", "p5", "p25", "median", "p75", "p95", "P(NPV ≥ 0)"):
        t.add_column(col, justify="right")
    for k in (*PAYERS, "total"):
        q = mc.percentiles[k]
        t.add_row(k, _kr(mc.mean[k]), _kr(q[5.0]), _kr(q[25.0]), _kr(q[50.0]), _kr(q[75.0]), _kr(q[95.0]),
                  "no stake" if mc.prob_break_even[k] is None else f"{mc.prob_break_even[k]:.1%}")
    console.print(t)
    console.print(Text.assemble("Probability of at least breaking even: ", (f"{mc.prob_break_even['total']:.1%}", "bold"),
                                f"; paid back within the horizon in {mc.prob_payback:.1%} of draws "
                                f"(median payback year {mc.median_payback_year or 'none'})."), soft_wrap=True)
    if mc.tornado:
        lo, hi = mc.tornado_percentiles
        t = Table(title=f"One-way sensitivity (tornado): total NPV with one input at its p{lo:g} / p{hi:g}")
        for col, just in (("input", "left"), ("low value", "right"), ("high value", "right"), ("NPV at low", "right"),
                          ("NPV at high", "right"), ("swing", "right")):
            t.add_column(col, justify=just)
        for r in mc.tornado:
            t.add_row(r.input, f"{r.low_value:,.4g}", f"{r.high_value:,.4g}", _kr(r.npv_low), _kr(r.npv_high), _kr(r.swing))
        console.print(t)


def _print_ledger(book, be, mc) -> None:
    """The udvalg ledger: NPV, payback, role, break-even and P(NPV ≥ 0) per udvalg; the cross-subsidy by year."""
    t = Table(title="Who invests, who gains: NPV and payback by udvalg (discounted kr; break-even exact)")
    cols = ["payer", "udvalg", "NPV", "payback", "role", "break-even success rate", "break-even cost per participant"]
    if mc is not None:
        cols.append("P(NPV ≥ 0)")
    for col in cols:
        t.add_column(col, justify="right" if col in ("NPV", "payback", "P(NPV ≥ 0)") else "left", overflow="fold")
    for n, (payer, udvalg) in enumerate(book.accounts):
        k = book.labels[n]
        paid = book.payback[k]
        payback = str(paid) if paid is not None else ("never" if (book.amounts[n] < 0).any() else "no net cost")
        row = [payer, udvalg, _kr(book.npv[k]), payback, book.role(k),
               be.udvalg_success_rate[k].short() if k in be.udvalg_success_rate else "",
               be.udvalg_cost_per_participant[k].short() if k in be.udvalg_cost_per_participant else ""]
        if mc is not None:
            p = mc.udvalg.get(k)
            row.append("no stake" if p is None else f"{p['prob_break_even']:.1%}")
        t.add_row(*row)
    console.print(t)
    if mc is not None and mc.udvalg_no_stake:
        console.print(f"No stake (no flow in any draw): {', '.join(mc.udvalg_no_stake)}", highlight=False, soft_wrap=True)
    t = Table(title="Cross-subsidy by year: net per udvalg (nominal kr; negative = invests, positive = gains)")
    t.add_column("year", justify="right")
    for payer, udvalg in book.accounts:
        t.add_column(f"{payer}/\n{udvalg}", justify="right")
    for row in book.by_year():
        t.add_row(str(row["year"]), *(_kr(row[k]) for k in book.labels))
    console.print(t)
    cross = book.cross_subsidy()
    invests = ", ".join(f"{k} {_kr(v)}" for k, v in cross["invests"].items()) or "none"
    gains = ", ".join(f"{k} {_kr(v)}" for k, v in cross["gains"].items()) or "none"
    console.print(Text.assemble(("Invests: ", "bold"), invests, ("; gains: ", "bold"), gains, " (NPV, kr)"),
                  soft_wrap=True, highlight=False)


def udvalg_comparison_table(cmp: dict, title: str) -> Table:
    """Projected vs realised NPV per udvalg (:func:`som_models.projection.ledger.compare_ledgers`), for
    `som evaluate` and `som audit`."""
    t = Table(title=title)
    for col in ("udvalg", "projected", "realised", "difference", "role"):
        t.add_column(col, justify="left" if col in ("udvalg", "role") else "right")
    for r in cmp["accounts"]:
        role = r["role_projected"] if r["role_projected"] == r["role_realised"] else \
            f"{r['role_projected']} → {r['role_realised']}"
        t.add_row(r["label"], _kr(r["npv_projected"]), _kr(r["npv_realised"]), _kr(r["npv_difference"]), role)
    return t
