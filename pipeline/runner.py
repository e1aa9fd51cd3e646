"""Running the evaluation graph in-process against a workdir (used by ``som demo`` and the tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.workdir import dagster_home


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    failures: tuple[str, ...]
    verdicts: tuple[dict, ...]
    projections: dict
    versions: dict
    report: str | None
    database: str
    #: the Dagster run
    run_id: str
    #: the evaluation run in the parameter store (``parameter_proposal``'s ``run_id``); None if the run failed
    evaluation_run_id: int | None = None
    #: the ``parameter_proposal`` output (version, status, parent_version, reused, content, reason, run_id)
    proposal: dict | None = None
    #: the evaluated delivery (``delivery`` output: folder, kind, vintage, data_hash, …)
    delivery: dict | None = None


class EvaluationRefused(ValueError):
    """The evaluation cannot start: a bad spec, delivery or handed-over panel (the message says which).

    ``exit_code`` is the CLI's: 2 (bad input — the spec, or a spec that asks for what the data cannot give);
    :class:`DeliveryRefused` has 3."""

    exit_code = 2


class DeliveryRefused(EvaluationRefused):
    """The register delivery itself is refused before the run (its manifest or files): exit code 3, as for a
    delivery refused by the ``registers`` asset during the run."""

    exit_code = 3


#: the Dagster console log level of in-process runs: a failed step is logged at ERROR with its stack trace, so
#: only CRITICAL is shown; every failure is in :attr:`RunOutcome.failures` (one line each, the cause's message).
#: ``som --debug`` passes ``DEBUG_LOG_LEVEL``.
QUIET_LOG_LEVEL = "CRITICAL"
DEBUG_LOG_LEVEL = "WARNING"


def _root_message(error) -> str:
    """The innermost error's one-line message (Dagster wraps user errors in its own), without the exception's
    class name: ``pipeline.registers.files.DeliveryError: a.parquet: column PNR: …`` → ``a.parquet: column PNR: …``."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    if not lines:
        return error.cls_name or "failed"
    line = lines[-1]
    # Dagster's message is "module.Class: message"; the class name is the code's business, not the user's
    head, sep, rest = line.partition(": ")
    if sep and error.cls_name and head.split(".")[-1] == error.cls_name and rest.strip():
        return rest.strip()
    return line


def generate_demo_delivery(workdir: Path, *, persons: int, seed: int, name: str = "demo",
                           scenario: str = "homelessness") -> Path:
    """Write a synthetic delivery of world ``scenario`` (default the homelessness demo) to
    ``{workdir}/landing/{name}`` (replacing an old one whole)."""
    from pipeline.atomic import atomic_dir
    from som_models.simulate import simulate, write_delivery

    target = Path(workdir) / "landing" / name
    with atomic_dir(target) as staging:
        write_delivery(simulate(scenario, persons, seed), staging)
    return target


#: ``SOM_RUN_HISTORY=off`` runs in-process evaluations on an ephemeral Dagster instance: nothing is written to
#: the workdir's Dagster history (runs, event log), which spares the SQLite event log's disk syncs — half of a
#: small run's time. The parameter store, the asset values and the report are written as always; only the
#: run's record in ``som ui`` is missing. The tests set it; scheduled operation keeps the history.
HISTORY_SETTING = "SOM_RUN_HISTORY"


def keeps_history() -> bool:
    """False when ``SOM_RUN_HISTORY`` is ``off`` (also ``0``, ``false``, ``no``)."""
    return os.environ.get(HISTORY_SETTING, "on").strip().lower() not in ("off", "0", "false", "no")


def workdir_instance(workdir: Path):
    """The workdir's Dagster instance (``{workdir}/dagster``; its run history, shown by ``som ui``)."""
    import dagster as dg

    from pipeline.workdir import setup_lock

    home = dagster_home(Path(workdir))
    os.environ["DAGSTER_HOME"] = str(home)
    with setup_lock(Path(workdir)):  # the first open creates the instance's SQLite databases
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)
    return instance


def run_evaluation(workdir: Path, *, delivery: Path, evaluation_spec: str = "", instance=None,
                   log_level: str = QUIET_LOG_LEVEL, report_language: str = "") -> RunOutcome:
    """Materialise every asset and check in-process for one evaluation × vintage partition of ``delivery``
    (a register delivery or a staged panel delivery — the one evaluation path).

    ``evaluation_spec`` defaults to the demo spec; its folder becomes the evaluations folder. The delivery's
    vintage is registered as a dynamic partition. ``instance`` defaults to the workdir's Dagster instance (an
    ephemeral one when ``SOM_RUN_HISTORY=off``, :func:`keeps_history`). ``report_language`` (``da``/``en``; empty:
    ``SOM_REPORT_LANGUAGE`` or Danish) is the audit report's language.
    """
    import dagster as dg

    from pipeline.definitions import ASSETS, all_checks, build_resources
    from pipeline.defs.partitions import register_partition
    from pipeline.evaluation import load_spec
    from pipeline.registers import read_manifest
    from pipeline.store import database_url
    from pipeline.workdir import DEFAULT_SPEC

    spec_path = Path(evaluation_spec or DEFAULT_SPEC).resolve()
    evaluation = load_spec(spec_path).spec.evaluation
    vintage = read_manifest(Path(delivery)).vintage
    language = {"report_language": report_language} if report_language else {}
    resources = build_resources(str(workdir), delivery=str(delivery), evaluations_dir=str(spec_path.parent), **language)
    if instance is None:
        instance = workdir_instance(workdir) if keeps_history() else dg.DagsterInstance.ephemeral()
    partition = register_partition(instance, evaluation, vintage)
    result = dg.materialize(
        [*ASSETS, *all_checks()], resources=resources, instance=instance, raise_on_error=False,
        partition_key=partition,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    failures = []
    failed_steps = set()
    for event in result.all_events:
        if event.is_step_failure:
            failures.append(f"{event.step_key}: {_root_message(event.step_failure_data.error)}")
            failed_steps.add(event.step_key)
    # A check that failed in an asset's step that failed repeats the step's own refusal line (a blocking suite
    # rule of the registers step): the step's line, naming file, column, rule and rows, is the one reported.
    check_step = {(e.event_specific_data.asset_key, e.event_specific_data.check_name): e.step_key
                  for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    for check in result.get_asset_check_evaluations():
        step = check_step.get((check.asset_key, check.check_name))
        if step in failed_steps:
            if not step.endswith(check.check_name):
                continue
            # a blocking check in a step of its own: the step's failure only repeats the check's name; the check's
            # lines below say what failed and why
            failures = [f for f in failures if not f.startswith(f"{step}: ")]
        if not check.passed:
            sev = getattr(check.severity, "value", check.severity)
            failures.append(f"check {check.asset_key.to_user_string()}:{check.check_name} failed ({sev})")
            if check.blocking and check.description:  # a blocking check stopped the run: say why
                failures.append(f"{check.check_name}: {check.description}")
    if not result.success:
        return RunOutcome(False, tuple(failures), (), {}, {}, None, database_url(workdir), result.run_id)
    # The evaluation assets are partitioned: read this partition's outputs.
    verdicts = result.output_for_node("verdicts")
    proposal = result.output_for_node("parameter_proposal")
    assumptions = result.output_for_node("assumptions")
    return RunOutcome(
        success=True,
        failures=tuple(failures),
        verdicts=tuple(verdicts.drop("evidence").to_dicts()),
        projections=result.output_for_node("projections"),
        versions={"before": assumptions["version"], "after": proposal["version"]},
        report=result.output_for_node("audit_report"),
        database=database_url(workdir),  # the same rule as the settings (SOM_DATABASE_URL, else SQLite)
        run_id=result.run_id,
        evaluation_run_id=proposal["run_id"],
        proposal=proposal,
        delivery=result.output_for_node("delivery"),
    )


def evaluate(spec: str | Path, *, workdir: str | Path | None = None, delivery: str | Path | None = None,
             panel: str | Path | None = None, treatments: str | Path | None = None, vintage: str | None = None,
             instance=None, log_level: str = QUIET_LOG_LEVEL, report_language: str = "") -> RunOutcome:
    """One evaluation end to end — the function behind ``som evaluate`` and the notebook API.

    The data are a register ``delivery`` folder or a handed-over ``panel`` file (+ ``treatments``), else the
    spec's ``data:`` section. A panel is staged as a panel delivery under ``{workdir}/handover/`` (checked
    first: columns, years, the outcomes the spec needs), then the Dagster graph runs on the delivery — the
    same assets, checks and report either way. Raises :class:`EvaluationRefused` before anything runs when
    the spec or the data cannot be used; a run refused by a check returns ``success=False`` with the reasons.
    """
    from pipeline import evaluation as ev
    from pipeline.registers import DeliveryError, read_manifest
    from pipeline.registers.handover import default_vintage, write_panel_delivery
    from pipeline.workdir import prepare_workdir
    from som_models.parameters import ParameterError

    try:
        loaded = ev.load_spec(spec)
    except ParameterError as exc:
        raise EvaluationRefused(str(exc)) from None
    # the language asked for, or the one SOM_REPORT_LANGUAGE gives the run (checked alike: unchecked, a run would
    # store its proposal and fail only at the audit report)
    language = report_language or os.environ.get("SOM_REPORT_LANGUAGE", "").strip()
    if language:
        from pipeline.report.i18n import check_language

        try:
            check_language(language)
        except ValueError as exc:
            raise EvaluationRefused(str(exc)) from None
    if delivery is not None and (panel is not None or treatments is not None):
        raise EvaluationRefused("give either a delivery (--delivery) or a panel (--panel, + --treatments), not both")
    if treatments is not None and panel is None:
        raise EvaluationRefused("a treatments file (--treatments) needs a panel (--panel)")
    if delivery is None and panel is None:
        delivery = loaded.data_path("delivery")
        panel, treatments = loaded.data_path("panel"), loaded.data_path("treatments")
        if delivery is None and panel is None:
            raise EvaluationRefused(f"{loaded.path.name}: no data — give a delivery folder or a panel file, or a data: "
                                    "section in the spec")
    if delivery is not None and vintage is not None:
        raise EvaluationRefused("a vintage label (--vintage) applies to panels; a delivery's vintage comes from its manifest")
    if panel is None:  # a register delivery: refused, or the spec needs what it lacks → nothing is written
        _check_delivery(loaded, Path(delivery), workdir)
    home = prepare_workdir(Path(workdir) if workdir is not None else None)
    if panel is not None:
        try:
            columns = loaded.spec.data.columns if loaded.spec.data is not None else {}
            delivery = write_panel_delivery(
                Path(panel), Path(treatments) if treatments is not None else None,
                vintage=vintage or default_vintage(Path(panel)), columns=columns, root=home / "handover",
                check=lambda frame: ev.prepare_outcomes(frame, loaded.spec, loaded.seed))
            read_manifest(Path(delivery))
            spec_costs = loaded.data_path("costs")
            if spec_costs is not None:
                ev.read_costs(spec_costs)
        except (DeliveryError, ParameterError) as exc:
            raise EvaluationRefused(str(exc)) from None
    _check_unique_id(loaded.path, loaded.spec.evaluation)
    if loaded.spec.parameter_version is not None:
        # The version under test must exist before anything runs (the assumptions asset makes the same call).
        from pipeline.store import ParameterStore, StoreError, database_url

        try:
            with ParameterStore(database_url(home)) as store:
                ev.assumptions_version(store, loaded)
        except StoreError as exc:
            raise EvaluationRefused(str(exc)) from None
    return run_evaluation(home, delivery=Path(delivery).resolve(), evaluation_spec=str(loaded.path), instance=instance,
                          log_level=log_level, report_language=report_language)


def _check_delivery(loaded, delivery: Path, workdir=None) -> None:
    """Before anything runs or is written: the delivery's manifest and files (:class:`DeliveryRefused`; a folder
    without ``manifest.json`` is a wrong path, :class:`EvaluationRefused`), the
    registers the parameter set under test needs (a register neither delivered nor listed yields no column,
    :func:`pipeline.evaluation.check_delivery_registers`; the set is looked up read-only in the workdir's store,
    :func:`_tested_parameters`) and a cost file the spec names in ``data.costs``
    (a delivery's own cost file is checked with the delivery, by the ``registers`` asset)."""
    from pipeline import evaluation as ev
    from pipeline.registers import DeliveryError, read_manifest
    from som_models.parameters import ParameterError

    try:
        manifest = read_manifest(delivery)
    except DeliveryError as exc:
        if not (delivery / "manifest.json").is_file():  # no delivery there: a wrong path (bad input, exit 2)
            raise EvaluationRefused(str(exc)) from None
        raise DeliveryRefused(f"delivery refused: {exc}") from None
    try:
        ev.check_delivery_registers(loaded, manifest, _tested_parameters(loaded, workdir))
        spec_costs = loaded.data_path("costs")
        if spec_costs is not None:
            ev.read_costs(spec_costs)
    except ParameterError as exc:
        raise EvaluationRefused(str(exc)) from None


def _tested_parameters(loaded, workdir):
    """The parameter set under test (:func:`pipeline.evaluation.tested_parameters`), without writing anything: a
    SQLite store that does not exist yet, or a store whose schema is not at the current migration (the run migrates
    it), means the spec's seed; otherwise the store is read, never migrated."""
    from pipeline import evaluation as ev
    from pipeline.store import ParameterStore, StoreError, database_url
    from pipeline.workdir import resolve_workdir

    url = database_url(resolve_workdir(workdir))
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return ev.tested_parameters(None, loaded)
    try:
        with ParameterStore(url, migrate=False) as store:
            return ev.tested_parameters(store if store.is_current else None, loaded)
    except StoreError as exc:
        raise EvaluationRefused(str(exc)) from None


def _check_unique_id(spec_path: Path, evaluation: str) -> None:
    """The spec's evaluation id must be unique in its folder (the run finds the spec by id in that folder)."""
    from pipeline.defs.partitions import evaluation_specs

    same_id = evaluation_specs(spec_path.parent).get(evaluation)
    if same_id is None or same_id.resolve() != spec_path:
        raise EvaluationRefused(f"another spec in {spec_path.parent} ({same_id.name if same_id else '?'}) has the "
                                f"evaluation id {evaluation!r}; evaluation ids must be unique within a folder")
