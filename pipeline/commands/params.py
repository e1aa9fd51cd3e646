"""`som params list|show|history|diff|approve|reject`: the versioned parameter store.

Examples::

    som params list
    som params history housing_first_demo
    som params show housing_first_demo --version 2
    som params diff housing_first_demo 1 2
    som params approve housing_first_demo 2 --reason "register follow-up 2023" --by "A. Analyst"
    som params reject housing_first_demo 3 --reason "pre-trends look off" --json -

The store is found through ``--workdir`` / ``$SOM_HOME`` / ``./.som`` (SQLite ``som.db``) or
``$SOM_DATABASE_URL``. Every command takes ``--json OUT`` (``-`` = standard output). Bad input — an unknown
intervention or version, a decision on a version that is not a proposal, an approval that lost the race to
another approval (conflict) — is one line on standard error and exit code 2.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli import WorkdirOpt, console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.disclosure import DEFAULT_MIN_CELL, is_small
from pipeline.tables import npv_table

params_app = typer.Typer(help="The versioned parameter store: list, show, history, diff, approve, reject. "
                              "Example: som params history housing_first_demo",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(params_app, name="params")


# ----------------------------------------------------------------------------- helpers shared by the store commands

def store_url(workdir: Path | None) -> str:
    from pipeline.store import database_url
    from pipeline.workdir import resolve_workdir

    return database_url(resolve_workdir(workdir))


def display_url(url: str) -> str:
    """A database URL fit for output (password hidden)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


@contextmanager
def open_store(workdir: Path | None, *, create: bool = False) -> Iterator[Any]:
    """The parameter store of ``workdir`` (or ``$SOM_DATABASE_URL``); clear one-line errors.

    Without ``create`` a missing SQLite file is an error (reading commands never create a store).
    """
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from pipeline.store import ParameterStore
    from pipeline.workdir import resolve_workdir

    url = store_url(workdir)
    if url.startswith("sqlite:///") and not create:
        path = Path(url[len("sqlite:///"):])
        if not path.is_file():
            fail(f"no parameter store at {path} (run `som evaluate` or `som demo` with this workdir first, "
                 f"or set SOM_DATABASE_URL); workdir {resolve_workdir(workdir)}")
    try:
        store = ParameterStore(url)
    except ArgumentError:
        fail(f"SOM_DATABASE_URL is not a valid database URL: {display_url(url)}")
    except ModuleNotFoundError as exc:
        fail(f"no database driver for {display_url(url)} ({exc.name} is not installed)")
    except SQLAlchemyError as exc:
        fail(f"cannot open the parameter store at {display_url(url)}: {' '.join(str(getattr(exc, 'orig', exc)).split())[:300]}")
    try:
        yield store
    finally:
        store.close()


def store_errors():
    """The exception types a store call raises for bad requests (caught and shown as one line)."""
    from pipeline.store import StoreError

    return (StoreError,)


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _when(x: datetime | None) -> str:
    return "" if x is None else x.strftime("%Y-%m-%d %H:%M")


def version_dict(v: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(v)


def _assumption_of(parameter: str) -> str:
    """The verdict assumption a calibrated parameter answers to (``consequences.X`` → ``effect_path:X``,
    ``consequences.X.course`` → ``course_path:X``)."""
    if parameter.startswith("consequences.") and parameter.endswith(".course"):
        return "course_path:" + parameter[len("consequences."):-len(".course")]
    return "effect_path:" + parameter.split(".", 1)[1] if parameter.startswith("consequences.") else parameter


def _withhold(entries: Any, small: set[str], min_cell: int) -> Any:
    """Evidence entries (changes or verdict summaries) with realised figures of small comparisons withheld."""
    if not isinstance(entries, list):
        return entries
    out = []
    for e in entries:
        if isinstance(e, dict) and _assumption_of(str(e.get("parameter") or e.get("assumption") or "")) in small:
            e = {k: (None if k.startswith("realised") else v) for k, v in e.items()}
            if "sentence" in e:
                e["sentence"] = (f"{e.get('label') or 'verdict'}; the realised value is not shown: it rests on fewer "
                                 f"than {min_cell} treated persons.")
            e["suppressed"] = True
        out.append(e)
    return out


def disclosed_window(window: dict[str, Any] | None, min_cell: int = DEFAULT_MIN_CELL) -> dict[str, Any] | None:
    """An evidence window fit for output: its ``persons`` withheld (None, ``persons_suppressed``) below ``min_cell``."""
    if window is None:
        return None
    out = dict(window)
    if out.get("persons") is not None and is_small(out["persons"], min_cell):
        out["persons"], out["persons_suppressed"] = None, True
    return out


def describe_window(window: dict[str, Any] | None) -> str:
    """One line for an evidence window (as :func:`disclosed_window` gives it); "none" without one."""
    if window is None:
        return "none (not informed by evaluated data)"
    years = (f"years {window['first_year']}–{window['last_year']}" if window.get("first_year") is not None
             else "years unknown")
    persons = ("persons suppressed" if window.get("persons_suppressed") else
               f"{window['persons']} persons" if window.get("persons") is not None else "persons unknown")
    parts = [f"evaluation {window['evaluation']}", f"vintage {window.get('vintage') or '?'}", years, persons]
    if window.get("data_hash"):
        parts.append(f"data sha256 {str(window['data_hash'])[:12]}")
    return ", ".join(parts)


def disclosed_version(store: Any, record: Any) -> dict[str, Any]:
    """A parameter version as plain data fit for output (small-cell rule of :mod:`pipeline.disclosure`).

    Realised figures quoted in the version's evidence and provenance (changes, verdict sentences) are withheld
    for the assumptions whose comparison in the informing run rests on fewer than that run's ``min_cell``
    treated persons. ``informed_by`` lists the evidence windows of the version and its ancestors (newest
    first): every person-year window the version's values rest on.
    """
    doc = version_dict(record)
    doc["evidence_window"] = disclosed_window(record.evidence_window)
    doc["informed_by"] = [disclosed_window(w) for w in store.informed_by(record.intervention, record.version)]
    if not record.evaluation_run_id:
        return doc
    from pipeline.store import StoreError

    try:
        run = store.get_run(record.evaluation_run_id)
    except StoreError:
        return doc
    min_cell = int((run.spec or {}).get("min_cell", DEFAULT_MIN_CELL))
    small = {v["assumption"] for v in store.verdicts_for_run(run.id)
             if is_small((v.get("evidence") or {}).get("n_treated"), min_cell)}
    if not small:
        return doc
    evidence = dict(doc.get("evidence") or {})
    for key in ("changes", "verdicts"):
        if key in evidence:
            evidence[key] = _withhold(evidence[key], small, min_cell)
    doc["evidence"] = evidence
    content = dict(doc["content"])
    if isinstance(content.get("provenance"), dict):
        content["provenance"] = {**content["provenance"],
                                 "changes": _withhold(content["provenance"].get("changes"), small, min_cell)}
    doc["content"] = content
    return doc


def projection_summary(content: dict) -> dict | None:
    """NPV per payer, payback year and ROI of a parameter document (None if it is not a calculation document)."""
    from som_models.parameters import ParameterError, parse_parameter_set
    from som_models.projection import project

    try:
        p = project(parse_parameter_set(content))
    except (ParameterError, ValueError, KeyError, TypeError):
        return None
    return {"npv": dict(p.npv), "payback_year": p.payback_year, "roi": p.roi, "success_rate": p.success_rate}


def _carried_text(content: dict) -> str:
    """What the update's prior carried (``provenance.prior.carried`` / ``not_carried``, :mod:`som_models.evidence`)."""
    record = (content.get("provenance") or {}).get("prior") or {}
    carried = [str(c.get("version")) for c in record.get("carried") or [] if isinstance(c, dict)]
    missed = [str(c.get("version")) for c in record.get("not_carried") or [] if isinstance(c, dict)]
    text = f", with the evidence of version(s) {', '.join(carried)} carried" if carried else ""
    if missed:
        text += f"; version(s) {', '.join(missed)} not carried (their values cannot be re-derived; see the reason)"
    return text


def _kinds_line(content: dict) -> str:
    """Which kind (causal / descriptive) each consequence profile of a stored document is, in one line."""
    from som_models.parameters import ParameterError, parse_parameter_set

    try:
        params = parse_parameter_set(content)
    except (ParameterError, ValueError, KeyError, TypeError):
        return "consequence profiles: kinds unknown (the document is not a valid parameter set)"
    course = params.describe_course()
    return params.describe_kinds() + (f"; {course}" if course else "")


def _unverified_line(content: dict) -> str | None:
    """The consequence years of a stored document that no data have verified (extrapolated), in one line."""
    from som_models.parameters import ParameterError, parse_parameter_set

    try:
        return parse_parameter_set(content).describe_unverified()
    except (ParameterError, ValueError, KeyError, TypeError):
        return None


def _actor(by: str | None) -> str:
    if by and by.strip():
        return by.strip()
    env = os.environ.get("SOM_USER", "").strip()
    if env:
        return env
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        fail("who decides? give --by NAME (or set SOM_USER)")


# ----------------------------------------------------------------------------- commands

@params_app.command("list")
@json_command
def list_command(workdir: Path | None = WorkdirOpt, json_out: Path | None = JsonOpt) -> None:
    """Every parameter set in the store with its approved and latest version. Example: som params list"""
    with open_store(workdir) as store:
        rows = store.interventions()
    table = Table(title="Parameter sets")
    for col in ("intervention", "title", "approved", "latest", "versions", "open proposals", "runs"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["intervention"], r["title"], _fmt(r["approved_version"]), _fmt(r["latest_version"]),
                      str(r["versions"]), str(r["proposed"]), str(r["runs"]))
    console.print(table if rows else "The store holds no parameter sets yet.")
    emit_json(json_out, {"interventions": rows})


@params_app.command("show")
@json_command
def show_command(
    intervention: str = typer.Argument(..., help="Intervention id."),
    version: int | None = typer.Option(None, "--version", "-v", help="Version (default: the approved one)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """One parameter version: its status, provenance and content. Example: som params show housing_first_demo -v 2"""
    import yaml

    if version is not None and version < 1:
        fail(f"--version must be a positive integer (got {version})")
    with open_store(workdir) as store:
        try:
            record = store.latest_approved(intervention) if version is None else store.get_version(intervention, version)
        except store_errors() as exc:
            fail(str(exc))
        doc = disclosed_version(store, record)
    console.print(Text.assemble((record.intervention, "bold"), f" version {record.version} — {record.status}"),
                  highlight=False)
    for label, value in (("parent", record.parent_version), ("reason", record.reason),
                         ("created", _when(record.created_at)), ("evaluation run", record.evaluation_run_id),
                         ("data vintage", record.data_vintage), ("data sha256", record.data_hash),
                         ("code version", record.code_version), ("decided by", record.decided_by),
                         ("decided", _when(record.decided_at)), ("decision reason", record.decision_reason),
                         ("content sha256", record.content_hash)):
        if value not in (None, ""):
            console.print(f"  {label}: {value}", highlight=False, soft_wrap=True)
    console.print(f"  evidence: {describe_window(doc['evidence_window'])}", highlight=False, soft_wrap=True)
    if record.evaluation_run_id or record.prior_version is not None:
        prior = (f"root prior, version {record.prior_version} (the evidence overlaps evidence that informs the versions "
                 f"after it; see the reason)" if record.prior_version is not None else
                 f"the parent, version {record.parent_version}")
        prior += _carried_text(doc["content"])
        console.print(f"  update prior: {prior}", highlight=False, soft_wrap=True)
    for w in doc["informed_by"]:
        console.print(f"  informed by (version {w['version']}): {describe_window(w)}", highlight=False, soft_wrap=True)
    console.print(f"  {_kinds_line(doc['content'])}", highlight=False, soft_wrap=True)
    unverified = _unverified_line(doc["content"])
    if unverified:
        console.print(Text.assemble("  ", (unverified, "yellow")), highlight=False, soft_wrap=True)
    console.print(yaml.safe_dump(doc["content"], sort_keys=False, allow_unicode=True), highlight=False, soft_wrap=True)
    emit_json(json_out, doc)


@params_app.command("history")
@json_command
def history_command(
    intervention: str = typer.Argument(..., help="Intervention id."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Every version of an intervention's parameters, oldest first. Example: som params history housing_first_demo"""
    with open_store(workdir) as store:
        try:
            versions = store.versions(intervention)
        except store_errors() as exc:
            fail(str(exc))
    table = Table(title=f"Parameter versions of {intervention}")
    for col in ("version", "status", "parent", "prior", "created", "vintage", "years", "reason", "decided by", "decision"):
        table.add_column(col, overflow="fold")
    colours = {"approved": "green", "proposed": "yellow", "rejected": "red", "superseded": "dim"}
    for v in versions:
        w = v.evidence_window or {}
        years = f"{w['first_year']}–{w['last_year']}" if w.get("first_year") is not None else ""
        table.add_row(str(v.version), Text(v.status, style=colours.get(v.status, "white")), _fmt(v.parent_version),
                      _fmt(v.prior_version), _when(v.created_at), v.data_vintage or "", years, v.reason,
                      v.decided_by or "", v.decision_reason or "")
    console.print(table)
    emit_json(json_out, {"intervention": intervention,
                         "versions": [{**{k: v for k, v in version_dict(x).items() if k not in ("content", "evidence")},
                                       "evidence_window": disclosed_window(x.evidence_window)}
                                      for x in versions]})


@params_app.command("diff")
@json_command
def diff_command(
    intervention: str = typer.Argument(..., help="Intervention id."),
    a: int = typer.Argument(..., help="The older version (or the only one: compared with its parent)."),
    b: int | None = typer.Argument(None, help="The newer version."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """What changed between two versions (one version: against its parent). Example: som params diff housing_first_demo 1 2"""
    from pipeline.store.diff import diff_documents

    with open_store(workdir) as store:
        try:
            first = store.get_version(intervention, a)
            if b is None:
                if first.parent_version is None:
                    fail(f"version {a} of {intervention!r} has no parent; give two versions")
                first, second = store.get_version(intervention, first.parent_version), first
            else:
                second = store.get_version(intervention, b)
        except store_errors() as exc:
            fail(str(exc))
    changes = diff_documents(first.content, second.content)
    before, after = projection_summary(first.content), projection_summary(second.content)
    table = Table(title=f"{intervention}: version {first.version} → {second.version}")
    for col in ("path", "change", f"v{first.version}", f"v{second.version}"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(c["path"], c["change"], _short(c["from"]), _short(c["to"]))
    console.print(table if changes else f"Versions {first.version} and {second.version} have the same content.")
    if changes and (before or after):
        console.print(npv_table("Projection (NPV, kr, discounted)",
                                {f"v{first.version}": before, f"v{second.version}": after}))
    emit_json(json_out, {"intervention": intervention, "from_version": first.version, "to_version": second.version,
                         "changes": changes, "projection": {"from": before, "to": after}})


def _short(x: Any, width: int = 80) -> str:
    text = x if isinstance(x, str) else json.dumps(x, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _decide(intervention: str, version: int, *, approve: bool, reason: str, by: str | None,
            expect_parent: int | None, workdir: Path | None, json_out: Path | None) -> None:
    from pipeline.store import ConflictError

    if version < 1:
        fail(f"VERSION must be a positive integer (got {version})")
    if not reason or not reason.strip():
        fail("--reason must say why (it is kept in the audit log)")
    actor = _actor(by)
    with open_store(workdir) as store:
        try:
            previous = store.latest_approved(intervention) if approve else None
            record = store.decide(intervention, version, approve=approve, actor=actor, reason=reason.strip(),
                                  expected_parent=expect_parent)
        except ConflictError as exc:
            fail(f"conflict: {exc}")
        except store_errors() as exc:
            fail(str(exc))
        studies = _kb_studies(store, record) if approve else []
    doc: dict[str, Any] = {"intervention": intervention, "version": record.version, "status": record.status,
                           "decided_by": record.decided_by, "decided_at": record.decided_at,
                           "reason": record.decision_reason, "parent_version": record.parent_version}
    if approve:
        doc["superseded_version"] = previous.version
        doc["projection"] = {"previous": projection_summary(previous.content), "approved": projection_summary(record.content)}
    verb = "Approved" if approve else "Rejected"
    console.print(f"{verb} version {record.version} of {intervention} (by {actor}).", highlight=False, soft_wrap=True)
    if approve:
        console.print(f"Version {previous.version} is superseded; version {record.version} is now in force.", highlight=False)
        console.print(npv_table("Projection (NPV, kr, discounted)",
                                {f"v{previous.version} (before)": doc["projection"]["previous"],
                                 f"v{record.version} (approved)": doc["projection"]["approved"]}))
        doc["knowledge_base_studies"] = studies
        if studies:
            console.print(f"The evaluation is now evidence in the knowledge base ({len(studies)} stud"
                          f"{'y' if len(studies) == 1 else 'ies'}): som kb show {studies[0]}", highlight=False,
                          soft_wrap=True)
    emit_json(json_out, doc)


def _kb_studies(store: Any, record: Any) -> list[str]:
    """The knowledge-base studies an approved version's evaluation now provides (:mod:`pipeline.kb_evidence`)."""
    if not record.evaluation_run_id:
        return []
    from pipeline.kb_evidence import agency_studies

    return [s.id for s in agency_studies(store, [record.intervention])
            if s.provenance.get("parameter_version") == record.version]


@params_app.command("approve")
@json_command
def approve_command(
    intervention: str = typer.Argument(..., help="Intervention id."),
    version: int = typer.Argument(..., help="The proposed version to approve."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (kept in the audit log)."),
    by: str | None = typer.Option(None, "--by", help="Who decides (default: $SOM_USER, else the login name)."),
    expect_parent: int | None = typer.Option(None, "--expect-parent",
                                                help="Refuse unless the proposal was made on top of this version."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Approve a proposal: it supersedes the approved version (conflict if that moved on).

    Example: som params approve housing_first_demo 2 -r "ok"
    """
    _decide(intervention, version, approve=True, reason=reason, by=by, expect_parent=expect_parent, workdir=workdir,
            json_out=json_out)


@params_app.command("reject")
@json_command
def reject_command(
    intervention: str = typer.Argument(..., help="Intervention id."),
    version: int = typer.Argument(..., help="The proposed version to reject."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (kept in the audit log)."),
    by: str | None = typer.Option(None, "--by", help="Who decides (default: $SOM_USER, else the login name)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """Reject a proposal (the approved version stays in force). Example: som params reject housing_first_demo 3 -r "weak" """
    _decide(intervention, version, approve=False, reason=reason, by=by, expect_parent=None, workdir=workdir,
            json_out=json_out)
