"""`som kb`: the knowledge base — effect studies, target groups, unit prices, meta-analysis.

Examples::

    som kb search housing --outcome stable_housing
    som kb search --own                     # the agency's own approved register evaluations
    som kb show stergiopoulos2015_hf_icm
    som kb show housing_first_demo_eval.no_shelter_stay
    som kb show voksne_i_hjemloeshed
    som kb pool --outcome stable_housing --measure share_of_time --method REML
    som kb pool --outcome employment_or_education --metric cox_d --baseline 0.4
    som kb template voksne_i_hjemloeshed --participants 100 --start-year 2025 --cost 95000 --success-rate 0.2 --out calc.yaml
    som kb consequences panel.parquet -t voksne_i_hjemloeshed --delimitation-year 2018 --factors sex --out profile.yaml

Besides the packaged studies (reference data), ``search``, ``show`` and ``pool`` read the agency's own evidence:
every approved evaluation in the parameter store of ``--workdir`` (or ``$SOM_DATABASE_URL``) is a study marked
``agency register evaluation``, with its provenance (:mod:`pipeline.kb_evidence`). Without a store, only the
packaged studies.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command

kb_app = typer.Typer(help="The knowledge base: effect studies, target groups with consequence profiles and prices, "
                          "meta-analysis. Example: som kb pool --outcome stable_housing",
                     no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")


def _load(workdir: Path | None = None, *, with_store: bool = True):
    """The packaged knowledge base, plus the agency's approved evaluations from the store (``with_store``)."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from pipeline.commands.params import display_url, store_url
    from som_models.knowledge import KnowledgeBase, KnowledgeError

    try:
        if not with_store:
            return KnowledgeBase.load()
        from pipeline.kb_evidence import knowledge_base

        return knowledge_base(workdir)[0]
    except KnowledgeError as exc:
        fail(f"knowledge base: {exc}")
    except ArgumentError:
        fail(f"SOM_DATABASE_URL is not a valid database URL: {display_url(store_url(workdir))}")
    except ModuleNotFoundError as exc:
        fail(f"no database driver for {display_url(store_url(workdir))} ({exc.name} is not installed)")
    except SQLAlchemyError as exc:
        fail(f"cannot read the agency's evaluations from the parameter store at {display_url(store_url(workdir))}: "
             f"{' '.join(str(getattr(exc, 'orig', exc)).split())[:300]}")


def _fmt(x) -> str:
    return "" if x is None else f"{x:.4g}"


@kb_app.command("search")
@json_command
def search(
    text: str = typer.Argument("", help="Words that must all occur (id, title, intervention, population, outcome, country)."),
    target_group: str | None = typer.Option(None, "--target-group", "-t", help="Only studies of this target group."),
    outcome: str | None = typer.Option(None, "--outcome", "-o", help="Only studies of this outcome."),
    max_level: int | None = typer.Option(None, "--max-level", help="Only evidence levels up to this (1 = meta-study/RCT)."),
    country: str | None = typer.Option(None, "--country", help="Only studies from this country."),
    own: bool = typer.Option(False, "--own", help="Only the agency's own register evaluations (approved in the store)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Find effect studies, packaged and the agency's approved evaluations. Example: som kb search housing --own"""
    if max_level is not None and max_level not in (1, 2, 3):
        fail(f"--max-level must be 1, 2 or 3 (got {max_level})")
    from som_models.knowledge import AGENCY, KnowledgeError

    kb = _load(workdir)
    try:
        found = kb.search(text, target_group=target_group, outcome=outcome, max_level=max_level, country=country,
                          origin=AGENCY if own else None)
    except KnowledgeError as exc:
        fail(str(exc))
    t = Table(title=f"{len(found)} effect stud{'y' if len(found) == 1 else 'ies'}")
    for col in ("id", "target group", "outcome", "design", "level", "country", "year", "n", "effect (se)", "origin"):
        t.add_column(col, overflow="fold")
    for s in found:
        std = s.standardised
        if s.own:
            e = s.effects.get("difference")
            effect = "" if e is None else f"difference {e.value:.4g} ({e.se:.3g})"
            p = s.provenance
            origin = (f"agency: vintage {p.get('data_vintage')}, run {str(p.get('run_id'))[:8]}, "
                      f"data {str(p.get('data_hash'))[:12]}, v{p.get('parameter_version')}")
        else:
            effect = "" if std is None else f"{std.metric} {std.value:.3f} ({std.se:.3f})"
            origin = f"{s.origin} ({s.status})"
        t.add_row(s.id, s.target_group, s.outcome, s.design, str(s.evidence_level), s.country, str(s.year), str(s.n or ""),
                  effect, origin)
    console.print(t)
    emit_json(json_out, [s.to_dict() for s in found])


@kb_app.command("show")
@json_command
def show(
    what: str = typer.Argument(..., help="A study id, a target-group id or a unit-price id."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Show one study, target group (consequence profile and prices) or unit price. Example: som kb show voksne_i_hjemloeshed"""
    kb = _load(workdir)
    study = next((s for s in kb.studies if s.id == what), None)
    if study is not None:
        d = study.to_dict()
        t = Table(title=f"Study {study.id}", show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value", overflow="fold")
        for key in ("title", "citation", "url", "country", "year", "target_group", "population", "intervention", "comparison",
                    "design", "evidence_level", "n_treatment", "n_control", "n_total", "outcome", "outcome_definition", "unit",
                    "desirable", "measure", "follow_up_months", "sample", "reported", "status", "notes"):
            if d[key] not in (None, ""):
                t.add_row(key, str(d[key]))
        for metric, e in study.effects.items():
            t.add_row(f"effect: {metric}", f"{e.value:.4f} (se {e.se:.4f}) — {e.derived_from}")
        if not study.effects:
            t.add_row("effects", "none computable (see notes)")
        t.add_row("origin", study.origin)
        for key, value in study.provenance.items():
            if key == "earlier_vintages":
                value = "; ".join(f"vintage {e['data_vintage']} (run {str(e['run_id'])[:8]}, data "
                                  f"{str(e['data_hash'])[:12]}, version {e['parameter_version']})" for e in value) or "none"
                key = "earlier approved vintages (superseded)"
            if value not in (None, ""):
                t.add_row(f"provenance: {key}", str(value))
        console.print(t)
        emit_json(json_out, d)
        return
    if what in kb.target_groups:
        tg = kb.target_groups[what]
        console.print(Text.assemble((tg.name, "bold"), f" ({tg.id})\n{tg.description}"), soft_wrap=True)
        sm = tg.success_measure
        console.print(f"Success measure: {sm['name']} — {sm.get('description', '')} ({sm['outcome']} {sm['rule']})",
                      soft_wrap=True)
        t = Table(title="Consequences per successful person by consequence year (negative = less use)")
        for col in ("item", "units by year", "valued by", "status"):
            t.add_column(col, overflow="fold")
        for c in tg.consequences:
            if c.price is not None:
                p = kb.prices[c.price]
                amounts = ", ".join(f"{k} {v:,.0f}" for k, v in p.amounts.items())
                valued = f"{p.id}: {amounts} kr ({p.price_year}; {p.status})"
            else:
                valued = f"tax on {c.taxable:g} kr taxable income per unit"
            t.add_row(c.item, ", ".join(f"{u:g}" for u in c.units), valued, c.status)
        console.print(t)
        studies = kb.search(target_group=tg.id)
        if studies:
            console.print(f"Effect studies: {', '.join(s.id for s in studies)}", soft_wrap=True)
        emit_json(json_out, {"id": tg.id, "name": tg.name, "description": tg.description,
                             "success_measure": dict(tg.success_measure),
                             "consequences": [{"item": c.item, "units": list(c.units), "se": list(c.se or ()),
                                               "price": c.price, "taxable": c.taxable, "status": c.status,
                                               "source": c.source} for c in tg.consequences]})
        return
    if what in kb.prices:
        p = kb.prices[what]
        console.print(Text.assemble((p.id, "bold"), f": {p.unit}\n" + ", ".join(f"{k} {v:,.2f} kr" for k, v in p.amounts.items())
                                + f" ({p.price_year} prices; {p.status})\nsource: {p.source}"), soft_wrap=True)
        emit_json(json_out, {"id": p.id, "unit": p.unit, "amounts": dict(p.amounts), "price_year": p.price_year,
                             "gross_for": p.gross_for, "status": p.status, "source": p.source})
        return
    fail(f"nothing called {what!r} in the knowledge base (studies: {', '.join(s.id for s in kb.studies)}; "
         f"target groups: {', '.join(sorted(kb.target_groups))}; unit prices: {', '.join(sorted(kb.prices))})")


@kb_app.command("pool")
@json_command
def pool(
    outcome: str = typer.Option(..., "--outcome", "-o", help="The outcome to pool (e.g. stable_housing)."),
    target_group: str | None = typer.Option(None, "--target-group", "-t", help="Only studies of this target group."),
    metric: str | None = typer.Option(None, "--metric", "-m",
                                      help="difference, log_odds_ratio, log_risk_ratio, cox_d, hedges_g or smd."),
    method: str = typer.Option("REML", "--method", help="REML, DL (DerSimonian–Laird) or FE (fixed effect)."),
    ids: str | None = typer.Option(None, "--ids", help="Comma-separated study ids to pool (default: all of the outcome)."),
    max_level: int | None = typer.Option(None, "--max-level", help="Only evidence levels up to this."),
    baseline: float | None = typer.Option(None, "--baseline", help="Control group's success share, to turn a Cox d / "
                                          "log OR into a success-rate prior."),
    basis: str = typer.Option("predictive", "--basis", help="Prior SD: predictive (√(τ²+se²), a new setting) or mean (se)."),
    measure: str | None = typer.Option(None, "--measure", help="Only studies of this measure: point, share_of_time, "
                                       "ever or score."),
    allow_incomparable: bool = typer.Option(False, "--allow-incomparable",
                                            help="Pool different measures or horizons anyway (a warning is recorded)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Random-effects meta-analysis and the prior it gives; refuses incomparable outcomes and states the
    transferability rule for a success rate. Example: som kb pool --outcome stable_housing --measure share_of_time"""
    from som_models.knowledge import METHODS, METRICS, KnowledgeError

    if method.upper() not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)} (got {method})")
    if metric is not None and metric not in METRICS:
        fail(f"--metric must be one of {', '.join(METRICS)} (got {metric})")
    if baseline is not None and not 0 < baseline < 1:
        fail(f"--baseline must be a share strictly between 0 and 1 (got {baseline})")
    if basis not in ("predictive", "mean"):
        fail(f"--basis must be predictive or mean (got {basis})")
    kb = _load(workdir)
    try:
        res = kb.pool(outcome=outcome, target_group=target_group, metric=metric, method=method,
                      ids=[i.strip() for i in ids.split(",") if i.strip()] if ids else None, max_level=max_level,
                      baseline=baseline, basis=basis, measure=measure, allow_incomparable=allow_incomparable)
    except KnowledgeError as exc:
        fail(str(exc))
    r = res.result
    t = Table(title=f"{outcome}: {res.metric} ({res.unit}), {r.method}")
    for col in ("study", "effect", "se", "weight"):
        t.add_column(col, justify="left" if col == "study" else "right")
    for s, w in zip(res.studies, r.weights, strict=False):
        e = s.effects[res.metric]
        t.add_row(s.id + (" [agency]" if s.own else ""), f"{e.value:.4f}", f"{e.se:.4f}", f"{w:.1%}")
    t.add_row(Text("pooled", style="bold"), Text(f"{r.estimate:.4f}", style="bold"), f"{r.se:.4f}", "100%")
    console.print(t)
    console.print(f"95 % CI {r.ci_low:.4f} to {r.ci_high:.4f}; prediction interval {r.pi_low:.4f} to {r.pi_high:.4f}; "
                  f"τ² = {r.tau2:.4g} (τ = {r.tau:.4g}); I² = {r.i2:.1%}; Q = {r.q:.3f} on {r.q_df} df"
                  + (f" (p = {r.q_p:.3g})" if r.q_p is not None else ""), soft_wrap=True)
    for sid, reason in res.excluded:
        console.print(Text(f"excluded {sid}: {reason}", style="dim"), soft_wrap=True, highlight=False)
    console.print(f"Prior ({res.prior.basis}): {res.prior.metric} {res.prior.value:.4f}, sd {res.prior.se:.4f}", soft_wrap=True)
    for w in res.warnings:
        console.print(Text.assemble(("warning:", "yellow"), f" {w}"), soft_wrap=True, highlight=False)
    if res.success_rate_prior is not None:
        p = res.success_rate_prior
        if res.transfer and res.transfer not in res.warnings:
            console.print(Text(res.transfer, style="dim"), soft_wrap=True, highlight=False)
        console.print(f"As a success rate for a calculation document: success_rate: {{value: {p.value:.4f}, se: {p.se:.4f}}}",
                      soft_wrap=True, highlight=False)
    emit_json(json_out, res.to_dict())


@kb_app.command("template")
def template(
    target_group: str = typer.Argument(..., help="A target-group id (see `som kb show`)."),
    participants: int = typer.Option(100, "--participants", help="Participants per cohort."),
    start_year: int = typer.Option(2025, "--start-year", help="First cohort's year."),
    cohorts: int = typer.Option(1, "--cohorts", help="Number of yearly cohorts."),
    cost: float = typer.Option(..., "--cost", help="Intervention cost per participant (kroner, paid by the kommune)."),
    success_rate: float = typer.Option(..., "--success-rate", help="Assumed success rate (net of what happens anyway)."),
    success_rate_se: float | None = typer.Option(None, "--success-rate-se", help="Its standard error."),
    price_year: int = typer.Option(2023, "--price-year", help="Price year of the document."),
    intervention: str | None = typer.Option(None, "--intervention",
                                            help="Intervention id (default: <target group>_calculation)."),
    out: Path | None = typer.Option(None, "--out", help="Write the YAML document here (default: standard output)."),
) -> None:
    """A calculation document from a target group's consequence profile and prices.

    Example: som kb template voksne_i_hjemloeshed --cost 95000 --success-rate 0.2
    """
    if participants < 0:
        fail(f"--participants must be non-negative (got {participants})")
    if cohorts < 1:
        fail(f"--cohorts must be at least 1 (got {cohorts})")
    if not 0 <= success_rate <= 1:
        fail(f"--success-rate must be between 0 and 1 (got {success_rate})")
    if success_rate_se is not None and success_rate_se < 0:
        fail(f"--success-rate-se must be non-negative (got {success_rate_se})")
    import yaml

    from som_models.knowledge import KnowledgeError
    from som_models.parameters import ParameterError, parse_parameter_set

    kb = _load(with_store=False)
    try:
        doc = kb.calculation_template(target_group, intervention=intervention or f"{target_group}_calculation",
                                      start_year=start_year, participants=participants, cost_per_participant=cost,
                                      success_rate=success_rate, success_rate_se=success_rate_se, price_year=price_year,
                                      cohorts=cohorts)
        parse_parameter_set(doc)
    except (KnowledgeError, ParameterError) as exc:
        fail(str(exc))
    text = ("# Calculation document built by `som kb template` from the knowledge base. Most values are PLACEHOLDERS\n"
            "# (see each source/status) — check them before using a result. Format: docs/calculation-document.md\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110))
    if out is None:
        typer.echo(text)
        return
    from pipeline.atomic import write_text_atomic

    try:
        write_text_atomic(out, text)
    except OSError as exc:
        fail(f"{out}: cannot write ({exc.strerror or exc})")
    console.print(f"Calculation document written to {out}; run: som project {out}", soft_wrap=True)


@kb_app.command("consequences")
@json_command
def consequences(
    panel: Path = typer.Argument(..., help="Register panel of the target group: one row per person and year (CSV or Parquet)."),
    target_group: str = typer.Option(..., "--target-group", "-t",
                                     help="Target-group id; a knowledge-base group supplies the success measure and outcomes."),
    outcomes: str | None = typer.Option(None, "--outcomes", "-o", help="Comma-separated outcome columns (default: the "
                                        "target group's consequence items)."),
    success_outcome: str | None = typer.Option(None, "--success-outcome", help="Column of the success measure."),
    rule: str | None = typer.Option(None, "--rule", help="Success when the success outcome is 'zero' or 'positive'."),
    delimitation_year: int | None = typer.Option(None, "--delimitation-year", help="Year everyone entered the target group."),
    delimitation_col: str | None = typer.Option(None, "--delimitation-col", help="Column with each person's delimitation year."),
    years: int = typer.Option(10, "--years", help="Consequence years to estimate (1 = the success year)."),
    covariates: str | None = typer.Option(None, "--covariates", help="Numeric adjustment columns (read at delimitation)."),
    factors: str | None = typer.Option(None, "--factors", help="Categorical adjustment columns (dummy-coded), e.g. sex."),
    baseline: bool = typer.Option(False, "--baseline", help="Also adjust for the outcome the year before delimitation."),
    id_col: str = typer.Option("person_id", "--id-col", help="Person id column (pseudonymised)."),
    time_col: str = typer.Option("year", "--time-col", help="Year column."),
    min_cell: int = typer.Option(5, "--min-cell", help="Withhold every number resting on fewer persons in a group."),
    min_cell_reason: str | None = typer.Option(None, "--min-cell-reason", help="Required for --min-cell below 5."),
    zero_insignificant: bool = typer.Option(False, "--zero-insignificant",
                                            help="SØM's publication rule: years not significant at 5 % get units 0."),
    out: Path | None = typer.Option(None, "--out", help="Write the profile document (YAML) here."),
    json_out: Path | None = JsonOpt,
) -> None:
    """SØM-style consequence profiles (success vs non-success, adjusted) from a register panel, as a descriptive
    profile. Example: som kb consequences panel.parquet -t voksne_i_hjemloeshed --delimitation-year 2018 --factors sex"""
    from pipeline.disclosure import check_min_cell_floor
    from pipeline.kb_consequences import ProfileRequest, build_profiles, parse_list, write_profiles
    from pipeline.registers.files import DeliveryError

    try:
        override = check_min_cell_floor(min_cell, min_cell_reason)
    except ValueError as exc:
        fail(str(exc))
    if (delimitation_year is None) == (delimitation_col is None):
        fail("give the delimitation year: --delimitation-year YEAR or --delimitation-col COLUMN (one of them)")
    kb = _load(with_store=False)
    tg = kb.target_groups.get(target_group)
    items = parse_list(outcomes) or (tuple(c.item for c in tg.consequences) if tg else ())
    sm = dict(tg.success_measure) if tg else {}
    success_outcome = success_outcome or sm.get("outcome")
    rule = rule or sm.get("rule")
    if not items:
        fail(f"{target_group!r} is not a knowledge-base target group: name the outcomes with --outcomes")
    if not success_outcome or not rule:
        fail(f"{target_group!r} is not a knowledge-base target group: give --success-outcome and --rule (zero or positive)")
    req = ProfileRequest(panel=panel, target_group=target_group, outcomes=items, success_outcome=success_outcome,
                         rule=rule, reference=delimitation_col if delimitation_col else int(delimitation_year),  # type: ignore[arg-type]
                         years=years, covariates=parse_list(covariates), factors=parse_list(factors), baseline=baseline,
                         id_col=id_col, time_col=time_col, min_cell=min_cell, zero_insignificant=zero_insignificant)
    try:
        doc, table = build_profiles(req)
    except (ValueError, DeliveryError) as exc:
        fail(str(exc))
    if override:
        doc["provenance"]["min_cell_override"] = override
    t = Table(title=f"Consequence profiles, {target_group}: success vs non-success by year since success "
                    "(descriptive, not causal)")
    for col in ("outcome", "year", "estimate", "se", "p", "5 %", "n success", "n non-success"):
        t.add_column(col, justify="left" if col == "outcome" else "right")
    for r in table.iter_rows(named=True):
        if r["suppressed"]:
            t.add_row(r["outcome"], str(r["event_time"]), f"suppressed (<{min_cell})", "", "", "", "", "")
            continue
        t.add_row(r["outcome"], str(r["event_time"]), f"{r['estimate']:.4g}", f"{r['se']:.3g}", f"{r['p_value']:.3g}",
                  "*" if r["significant_5pct"] else "", str(r["n_treated"]), str(r["n_control"]))
    console.print(t)
    for item, why in doc["not_published"].items():
        console.print(f"{item}: no profile — {why}", soft_wrap=True, highlight=False)
    console.print("Only estimates significant at 5 % (*) would be shown by SØM; here every year is flagged"
                  + (" and the others set to 0 in the profile." if zero_insignificant else ", none is dropped."),
                  soft_wrap=True, highlight=False)
    if out is not None:
        try:
            write_profiles(doc, out)
        except OSError as exc:
            fail(f"{out}: cannot write ({exc.strerror or exc})")
        console.print(f"Profile document written to {out} (kind: descriptive)", soft_wrap=True, highlight=False)
    emit_json(json_out, doc)
