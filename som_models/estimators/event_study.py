"""Realised effects of an intervention on a person-year panel, by year since start.

Joins the treatments (``person_id``, ``start_year``; never treated = absent or null) onto the panel, adds
the success indicator of the parameter set's success measure (1 if the outcome is zero / positive in the
year), and estimates ATT(g, t) (Callaway & Sant'Anna 2021) for every outcome, aggregated by event time.
The ``overall`` row is the mean of the event-time effects over ``min_e ≤ e`` (R ``did``'s ``aggte(min_e=)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import polars as pl

from som_models.estimators.results import DidResult, PreTrendTest

if TYPE_CHECKING:
    from som_models.estimators.dispatch import EstimationSettings


@dataclass(frozen=True, eq=False)
class RealisedEffects:
    """The tidy estimates table, the pre-trend test per outcome and the full results."""

    table: pl.DataFrame
    pretrends: Mapping[str, PreTrendTest]
    results: Mapping[str, DidResult]
    metadata: Mapping[str, object]


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
    settings: "EstimationSettings | None" = None,
) -> RealisedEffects:
    """Realised effects of the intervention on each outcome of a person-year panel (``person_id``, ``year``).

    The treatments' first ``start_year`` per person becomes the cohort (never treated = absent or null); the
    estimation itself is :func:`som_models.estimators.dispatch.estimate` with ``settings`` (default: the
    unconditional staggered design, never-treated comparison, event-time aggregation only).
    """
    from som_models.estimators.dispatch import EstimationSettings, estimate

    if settings is None:
        settings = EstimationSettings(aggregations=("dynamic",))
    starts = treatments.group_by("person_id").agg(pl.col("start_year").cast(pl.Int64).min())
    data = panel.join(starts, on="person_id", how="left").with_columns(pl.col("start_year").fill_null(0))
    return estimate(data, outcomes=outcomes, id_col="person_id", time_col="year", group_col="start_year",
                    settings=settings)
