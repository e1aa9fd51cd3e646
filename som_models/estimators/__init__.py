"""Realised-effect estimators: plain functions over polars frames returning immutable results."""

from som_models.estimators.results import (
    ESTIMATES_SCHEMA, AggregateEffect, AttCell, DidResult, PreTrendTest, estimates_table, z_value,
)
from som_models.estimators.staggered_did import aggregate, att_gt, pretrend_test

__all__ = [
    "ESTIMATES_SCHEMA", "AggregateEffect", "AttCell", "DidResult", "PreTrendTest",
    "aggregate", "att_gt", "estimates_table", "pretrend_test", "z_value",
]

from som_models.estimators.event_study import RealisedEffects, estimate_realised_effects, success_indicator  # noqa: E402

__all__ += ["RealisedEffects", "estimate_realised_effects", "success_indicator"]
