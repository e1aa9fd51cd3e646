"""`som plan SPEC`: the evaluation plan of the parameter version under test, made before looking at outcomes.

Examples::

    som plan assets/evaluations/housing_first_demo.yaml --delivery .som/deliveries/demo
    som plan spec.yaml --baseline panel/panel.parquet --json plan.json
    som plan spec.yaml --controls 4000 --treated-clusters 30      # no baseline: knowledge-base variances

For each assumption (success rate, causal effect paths, participants): the minimum detectable deviation at 80 %
power by data vintage and the first vintage at which a miss of ±margin can be refuted or the assumption
confirmed; the assumptions ranked by their value of information (EVPPI per payer). The plan is written to
``<workdir>/plans/<intervention>-v<version>.json`` (formulas and approximations: docs/planning.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command


def register(app: typer.Typer) -> None:
    app.command(name="plan")(json_command(plan_command))


def _pct(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:.0%}" if math.isfinite(x) else "∞"


def plan_command(
    spec: Path = typer.Argument(..., help="Evaluation spec (YAML)."),
    baseline: Path | None = typer.Option(None, "--baseline", help="Baseline panel (Parquet/CSV, e.g. from som ingest; "
                                         "a treatments.parquet beside it marks treated years)."),
    delivery: Path | None = typer.Option(None, "--delivery", help="A register delivery folder to take the baseline from "
                                         "(ingested on the fly; only untreated person-years are used)."),
    version: int | None = typer.Option(None, "--version", help="Parameter version to plan (default: the spec's, else "
                                       "the latest approved in the store, else the spec's seed file)."),
    until: int | None = typer.Option(None, "--until", help="Last data vintage (register year) to plan for."),
    controls: int | None = typer.Option(None, "--controls", help="Comparison persons (default: from the baseline)."),
    treated_clusters: int | None = typer.Option(None, "--treated-clusters",
                                                help="Treated clusters in all (default: from the baseline's treatments)."),
    draws: int = typer.Option(20_000, "--draws", help="Monte Carlo draws of the value of information."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of those draws (default: the parameter set's)."),
    sim_draws: int = typer.Option(2000, "--sim-draws", help="Draws per truth and vintage of the simulated plans "
                                  "(course length, cost per participant)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """When will the registers decide each assumption, and which is worth following up? Example: som plan spec.yaml"""
    from pipeline.evaluation import load_spec
    from pipeline.plan import plan_version
    from pipeline.workdir import resolve_workdir
    from som_models.parameters import parse_parameter_set
    from som_models.parameters.schema import ParameterError

    if baseline is not None and delivery is not None:
        fail("give --baseline or --delivery, not both")
    if draws < 100:
        fail(f"--draws must be at least 100 (got {draws})")
    if sim_draws < 100:
        fail(f"--sim-draws must be at least 100 (got {sim_draws})")
    try:
        loaded = load_spec(spec)
    except (ParameterError, OSError) as exc:
        fail(str(exc))
    params, tested_version = loaded.seed, None
    wanted = version if version is not None else loaded.spec.parameter_version
    home = resolve_workdir(workdir)
    from pipeline.commands.params import open_store, store_errors, store_url

    url = store_url(workdir)
    if wanted is not None or not url.startswith("sqlite:///") or Path(url[len("sqlite:///"):]).is_file():

        with open_store(workdir) as store:
            try:
                record = (store.get_version(loaded.spec.intervention, wanted) if wanted is not None
                          else store.latest_approved(loaded.spec.intervention))
                params, tested_version = parse_parameter_set(record.content), record.version
            except store_errors() as exc:
                if wanted is not None:
                    fail(str(exc))
    try:
        key = None
        if delivery is not None:
            from pipeline.registers import load_key

            key = load_key(home)
        with console.status("Planning…"):
            plan, path = plan_version(home, loaded, params, tested_version,
                                      baseline=None if baseline is None else baseline.expanduser(),
                                      delivery=None if delivery is None else delivery.expanduser(), key=key,
                                      until=until, controls=controls, treated_clusters=treated_clusters,
                                      voi_draws=draws, voi_seed=seed, sim_draws=sim_draws)
    except (ValueError, ParameterError, OSError) as exc:
        fail(str(exc))
    _print(plan, path)
    emit_json(json_out, {**plan.to_dict(), "stored_at": str(path)})


def _print(plan, path: Path) -> None:
    from som_models.planning.power import cohort_source_text, decidable_text, reference_text
    from som_models.results_base import fmt

    console.print(Text.assemble(("Evaluation plan", "bold"), f" — {plan.intervention}"
                                + (f" v{plan.version}" if plan.version is not None else " (seed file)")), highlight=False)
    console.print(f"Variances: {plan.variance_source}. Tests: α = {plan.settings.alpha:g}, Bonferroni over "
                  f"{plan.family_size} (a lower bound on Holm's power), {plan.settings.sequential} alpha spending with "
                  f"one look per vintage; miss planned for ±{plan.settings.margin:.0%} of the assumption; power "
                  f"{plan.settings.power:.0%}; {reference_text(plan.design)}.", highlight=False, soft_wrap=True)
    console.print(f"Cohort sizes: {cohort_source_text(plan.design)}.", highlight=False, soft_wrap=True)
    voi = plan.value_of_information
    table = Table(title="Decidable by vintage, ranked by value of information", title_justify="left")
    for col in ("assumption", "refute ±margin from", "confirm from", "EVPPI total (kr)", "EVPPI kommune (kr)",
                "follow-up cost"):
        table.add_column(col, justify="right" if "EVPPI" in col else "left",
                         min_width=31 if col == "assumption" else None)
    for d in plan.decidable():
        e = voi.get("by_assumption", {}).get(_key(d["assumption"]), {})
        table.add_row(d["assumption"],
                      decidable_text(d["refutable_from"], "refute" in d["undecidable"], "not by the plan's last vintage"),
                      decidable_text(d["confirmable_from"], "confirm" in d["undecidable"],
                                     "not by the plan's last vintage"),
                      fmt(e.get("total", {}).get("evppi")) if e else "", fmt(e.get("kommune", {}).get("evppi")) if e else "",
                      fmt(d["follow_up_cost"]) if d["follow_up_cost"] is not None else "")
    console.print(table)
    detail = Table(title="Minimum detectable deviation (80 % power) by vintage", title_justify="left")
    for col in ("assumption", "vintage", "cons. years", "assumed", "se", "design effect", "MDD", "MDD / assumed",
                "P(refute miss)", "P(confirm)"):
        detail.add_column(col, justify="left" if col == "assumption" else "right",
                          min_width=31 if col == "assumption" else None)
    for a in plan.assumptions:
        for r in a.rows:
            detail.add_row(a.assumption, str(r.vintage), str(len(r.consequence_years)) if r.consequence_years else "",
                           fmt(r.assumed), fmt(r.se), f"{r.design_effect:.2f}", fmt(r.mdd), _pct(r.mdd_relative),
                           _pct(r.power_refute), _pct(r.power_confirm))
    console.print(detail)
    for a in plan.assumptions:
        if a.note:
            console.print(f"  {a.assumption}: {a.note}", highlight=False, soft_wrap=True)
    for note in plan.notes:
        console.print(f"  {note}", highlight=False, soft_wrap=True)
    others = [k for k in voi.get("ranking", []) if not k.startswith(("consequence:", "success_rate"))]
    if others:
        console.print("Other uncertain inputs by EVPPI (total): " + ", ".join(
            f"{k} {fmt(voi['by_assumption'][k]['total']['evppi'])}" for k in others), highlight=False, soft_wrap=True)
    udvalg = voi.get("udvalg", {}).get("keys", [])
    if udvalg:
        def top(k: str) -> str:
            ranked = sorted((a for a, e in voi["by_assumption"].items() if k in e.get("udvalg", {})),
                            key=lambda a: -voi["by_assumption"][a]["udvalg"][k]["evppi"])
            return ", ".join(f"{a} {fmt(voi['by_assumption'][a]['udvalg'][k]['evppi'])}" for a in ranked[:3])

        console.print("EVPPI per udvalg (ledger account, deciding on its own NPV; kr, largest three): " + "; ".join(
            f"{k}: {top(k)}" for k in udvalg), highlight=False, soft_wrap=True)
    console.print(f"EVPI (all inputs, total): {fmt(voi.get('evpi', {}).get('total'))} kr; {voi.get('draws')} draws, seed "
                  f"{voi.get('seed')}. Plan stored at {path}.", highlight=False, soft_wrap=True)


def _key(assumption: str) -> str:
    return "consequence:" + assumption.split(":", 1)[1] if assumption.startswith("effect_path:") else assumption
