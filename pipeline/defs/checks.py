"""Asset checks beyond the GX suites: pre-trends, comparison-group balance, plausibility of proposals.

* ``pretrends_hold`` (WARN): every outcome's pre-trend Wald test has p ≥ 0.05, each judged on its own (not
  adjusted across outcomes, as in the verdicts: adjusting would weaken the gate as outcomes are added);
  failures make the affected verdicts ``inconclusive`` anyway, the check makes them visible.
* ``baseline_balance`` (WARN): standardised mean differences (:mod:`som_models.estimators.balance`, the same
  implementation as the matching estimator's balance table) of sex, age and every outcome in the first panel
  year between ever-treated and never-treated persons; |SMD| > 0.1 is flagged (Austin 2009).
* ``proposal_plausible`` (ERROR, **blocking**): the proposal computed by ``parameter_candidate`` (a value,
  nothing written) passes :func:`som_models.plausibility.plausibility_problems` against the version under
  test — success rate in [0, 1], no unsupported sign flip, no tenfold change, no jump at the data boundary,
  the unobserved years marked unverified. A failure stops the run before ``parameter_proposal``: nothing is
  written to the parameter store, and the check's description says why — such a proposal needs a human look.
* ``case_alerts`` (WARN or ERROR as the spec's ``alerts.severity`` says): the spec's alert thresholds
  (:mod:`som_models.alerts`, :func:`pipeline.alerts.run_alerts`) — P(NPV ≥ 0) of the proposed version for a payer
  below its threshold, a verdict with an alerting label. Passes when the spec sets none or none fires; the alerts
  are in the metadata (``alerts``) for a sensor to forward (docs/planning.md).
"""

import math
import warnings

import dagster as dg
import polars as pl

from pipeline.evaluation import proposal_problems
from som_models.estimators.balance import smd
from som_models.plausibility import ADVICE, describe

SMD_LIMIT = 0.1
MIN_CELL = 5  # the project's default small-cell rule (pipeline.disclosure)


def _pretrends_hold(pretrend_tests: pl.DataFrame) -> dg.AssetCheckResult:
    rows = [r for r in pretrend_tests.to_dicts() if r["p_value"] == r["p_value"]]
    failing = [r["outcome"] for r in rows if r["p_value"] < 0.05]
    return dg.AssetCheckResult(
        passed=not failing, severity=dg.AssetCheckSeverity.WARN,
        description=None if not failing else f"pre-trends rejected for {', '.join(failing)}",
        metadata={"p_value": dg.MetadataValue.json({r["outcome"]: round(r["p_value"], 6) for r in rows}),
                  "alpha": 0.05},
    )


def standardised_differences(panel: pl.DataFrame, treatments: pl.DataFrame) -> dict[str, float]:
    """SMD (:func:`som_models.estimators.balance.smd`) per numeric variable in the first panel year,
    ever-treated vs never-treated; variables with fewer than two persons in a group are left out."""
    first = panel.filter(pl.col("year") == panel.get_column("year").min())
    flag = pl.col("person_id").is_in(treatments.get_column("person_id").unique().implode())
    out = {}
    numeric = [c for c, t in first.schema.items()
               if c not in ("person_id", "year", "birth_year", "municipality") and t.is_numeric()]
    treated, comparison = first.filter(flag), first.filter(~flag)
    for col in numeric:
        a = treated.get_column(col).cast(pl.Float64).drop_nulls().to_numpy()
        b = comparison.get_column(col).cast(pl.Float64).drop_nulls().to_numpy()
        if len(a) < 2 or len(b) < 2:
            continue
        out[col] = smd(a, b)
    return out


def _baseline_balance(realised_effects: pl.DataFrame, panel: pl.DataFrame, treatments: pl.DataFrame) -> dg.AssetCheckResult:
    smd_by_var = standardised_differences(panel, treatments)
    flagged = {k: v for k, v in smd_by_var.items() if abs(v) > SMD_LIMIT}
    first = panel.filter(pl.col("year") == panel.get_column("year").min())
    n_treated = first.filter(pl.col("person_id").is_in(treatments.get_column("person_id").unique().implode())).height
    n_comparison = first.height - n_treated
    small = min(n_treated, n_comparison) < MIN_CELL  # group summaries of fewer than MIN_CELL persons are not shown
    shown = {} if small else {k: (round(v, 4) if math.isfinite(v) else str(v)) for k, v in smd_by_var.items()}
    return dg.AssetCheckResult(
        passed=not flagged, severity=dg.AssetCheckSeverity.WARN,
        description=None if not flagged else "imbalance at baseline: " + (
            ", ".join(flagged) if small else ", ".join(f"{k} {v:+.2f}" for k, v in flagged.items())),
        metadata={"smd": dg.MetadataValue.json(shown),
                  "n_treated": n_treated if n_treated >= MIN_CELL else f"suppressed (<{MIN_CELL})",
                  "n_comparison": n_comparison if n_comparison >= MIN_CELL else f"suppressed (<{MIN_CELL})"},
    )


def _proposal_plausible(parameter_candidate: dict, assumptions: dict) -> dg.AssetCheckResult:
    problems = proposal_problems(parameter_candidate, assumptions)
    return dg.AssetCheckResult(
        passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description=None if not problems else f"proposal refused, nothing written: {describe(problems)} — {ADVICE}",
        metadata={"problems": len(problems), "parent_version": parameter_candidate["parent_version"],
                  "checks_failed": dg.MetadataValue.json(sorted({p.check for p in problems}))},
    )


def _case_alerts(context: dg.AssetCheckExecutionContext, projections: dict, parameter_proposal: dict) -> dg.AssetCheckResult:
    from pipeline.alerts import stored_run_alerts
    from pipeline.defs.resources import SomSettings

    som: SomSettings = context.resources.som
    with som.store() as store:
        alerts = stored_run_alerts(store, parameter_proposal["run_id"])
    severe = any(a.severity == "error" for a in alerts)
    return dg.AssetCheckResult(
        passed=not alerts, severity=dg.AssetCheckSeverity.ERROR if severe else dg.AssetCheckSeverity.WARN,
        description=None if not alerts else "; ".join(a.message for a in alerts),
        metadata={"alerts": dg.MetadataValue.json([a.to_dict() for a in alerts]), "fired": len(alerts)},
    )


def build_extra_checks(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetChecksDefinition]:
    """The four checks above, partitioned like the assets they check."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks are "preview" in Dagster 1.13
        return [
            dg.asset_check(asset="pretrend_tests", name="pretrends_hold", partitions_def=partitions_def,
                           description="Parallel pre-trends are not rejected (each outcome at 5 %, unadjusted).",
                           )(_pretrends_hold),
            dg.asset_check(asset="realised_effects", name="baseline_balance", partitions_def=partitions_def,
                           additional_ins={"panel": dg.AssetIn("panel"), "treatments": dg.AssetIn("treatments")},
                           description="Treated and comparison persons are balanced at baseline (|SMD| ≤ 0.1).",
                           )(_baseline_balance),
            dg.asset_check(asset="parameter_candidate", name="proposal_plausible", partitions_def=partitions_def,
                           blocking=True, additional_ins={"assumptions": dg.AssetIn("assumptions")},
                           description="The proposed values are plausible against the version under test (blocks the "
                                       "write: no jump at the data boundary, sign flip or tenfold change; the "
                                       "unobserved years are marked unverified).")(_proposal_plausible),
            dg.asset_check(asset="projections", name="case_alerts", partitions_def=partitions_def,
                           additional_ins={"parameter_proposal": dg.AssetIn("parameter_proposal")},
                           required_resource_keys={"som"},
                           description="The spec's alert thresholds (P(NPV ≥ 0) per payer, verdict labels) after "
                                       "this evaluation; WARN or ERROR as the spec says.")(_case_alerts),
        ]
