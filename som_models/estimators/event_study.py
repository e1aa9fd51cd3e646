"""Realised effects of an intervention on a person-year panel, by year since start.

Joins the treatments (``person_id``, ``start_year``; never treated = absent or null) onto the panel, adds
the success indicator of the parameter set's success measure (1 if the outcome is zero / positive in the
year), and estimates ATT(g, t) (Callaway & Sant'Anna 2021) for every outcome, aggregated by event time.
The ``overall`` row is the mean of the event-time effects over ``min_e ≤ e`` (R ``did``'s ``aggte(min_e=)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from som_models.estimators.results import DidResult, PreTrendTest, ci_label, pretrend_line, tidy_lines
from som_models.results_base import MAX_ROWS, ResultDisplay, render_summary

if TYPE_CHECKING:
    from som_models.estimators.dispatch import EstimationSettings
    from som_models.estimators.rct import RctResult


@dataclass(frozen=True, eq=False, repr=False)
class RealisedEffects(ResultDisplay):
    """The tidy estimates table, the pre-trend test per outcome and the full results.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` is ``table``; ``summary()`` shows the
    event-time and overall rows of every outcome (the ATT(g, t) cells are in ``to_polars()``) and the pre-trend
    tests.
    """

    table: pl.DataFrame
    pretrends: Mapping[str, PreTrendTest]
    results: Mapping[str, DidResult | RctResult]
    metadata: Mapping[str, Any]

    def _repr_fields(self) -> dict[str, Any]:
        units = max((getattr(r, "n_units", 0) for r in self.results.values()), default=0)
        return {"outcomes": len(self.results), "rows": self.table.height, "units": units,
                "comparison": str(self.metadata.get("comparison_group", ""))}

    def to_polars(self) -> pl.DataFrame:
        """The tidy estimates table (DESIGN §3.3): ``att_gt`` cells, ``event`` rows and ``overall`` per outcome."""
        return self.table

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Design and method, sizes, the event-time and overall effects per outcome, pre-trend tests."""
        meta = self.metadata
        alpha = float(meta.get("alpha", 0.05))
        shown = self.table.filter(pl.col("estimand").is_in(["event", "overall"]))
        cells = self.table.height - shown.height
        info = [("Design", str(meta.get("design", ""))), ("Comparison", str(meta.get("comparison_group", ""))),
                ("Base period", str(meta.get("base_period", ""))),
                ("Covariates", ", ".join(meta.get("covariates", ())) or "none"),
                ("Method", str(meta.get("method", ""))), ("Overall", str(meta.get("overall", ""))),
                ("Units", max((getattr(r, "n_units", 0) for r in self.results.values()), default=0)),
                ("Outcomes", ", ".join(self.results)),
                ("Standard errors", str(meta.get("standard_errors", ""))),
                ("Intervals", f"{meta.get('intervals', 'pointwise')} {ci_label(alpha)}")]
        body = tidy_lines(shown, alpha, drop=("group", "time"), max_rows=max_rows)
        if cells:
            body.append(f"({cells} ATT(g,t) cells not shown; to_polars() has them)")
        footer = ["Pre-trend tests (all t < g cells zero):"] if self.pretrends else []
        footer += [f"  {pretrend_line(k, t)}" for k, t in self.pretrends.items()]
        return render_summary("Realised effects by year since start", info, body, footer)


def success_indicator(panel: pl.DataFrame, *, name: str, outcome: str, rule: str) -> pl.DataFrame:
    """Add the 0/1 column ``name``: ``outcome == 0`` (rule ``zero``) or ``outcome > 0`` (``positive``)."""
    if outcome not in panel.columns:
        raise ValueError(f"success measure outcome {outcome!r} is not a panel column")
    cond = pl.col(outcome) == 0 if rule == "zero" else pl.col(outcome) > 0
    return panel.with_columns(cond.cast(pl.Float64).alias(name))


def estimate_realised_effects(
    panel: pl.DataFrame,
    treatments: pl.DataFrame,
    *,
    outcomes: list[str],
    settings: EstimationSettings | None = None,
) -> RealisedEffects:
    """Realised effects of the intervention on each outcome of a person-year panel (``person_id``, ``year``).

    The treatments' first ``start_year`` per person becomes the cohort (never treated = absent or null); the
    estimation itself is :func:`som_models.estimators.dispatch.estimate` with ``settings`` (default: the
    unconditional staggered design, never-treated comparison, event-time aggregation only).
    """
    from som_models.estimators.dispatch import EstimationSettings, estimate

    if settings is None:
        settings = EstimationSettings(aggregations=("dynamic",))
    return estimate(with_cohort(panel, treatments), outcomes=outcomes, id_col="person_id", time_col="year",
                    group_col="start_year", settings=settings)


def with_cohort(panel: pl.DataFrame, treatments: pl.DataFrame) -> pl.DataFrame:
    """The panel with each person's cohort ``start_year``: the first ``start_year`` in ``treatments`` (0 = never
    treated) — the cohort every staggered estimate of the evaluation uses."""
    starts = treatments.group_by("person_id").agg(pl.col("start_year").cast(pl.Int64).min())
    return panel.join(starts, on="person_id", how="left").with_columns(pl.col("start_year").fill_null(0))
