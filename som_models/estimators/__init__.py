"""Realised-effect estimators: plain functions over polars frames returning immutable results."""

from som_models.estimators.results import (
    ESTIMATES_SCHEMA,
    AggregateEffect,
    AttCell,
    DidResult,
    PreTrendTest,
    z_value,
)
from som_models.estimators.staggered_did import aggregate, att_gt, pretrend_test

__all__ = [
    "ESTIMATES_SCHEMA", "AggregateEffect", "AttCell", "DidResult", "PreTrendTest",
    "aggregate", "att_gt", "pretrend_test", "z_value",
]

from som_models.estimators.event_study import RealisedEffects, estimate_realised_effects, success_indicator  # noqa: E402

__all__ += ["RealisedEffects", "estimate_realised_effects", "success_indicator"]

from som_models.estimators.ate import ATE_METHODS, AteResult, ate  # noqa: E402
from som_models.estimators.bootstrap import (  # noqa: E402
    BootstrapInference,
    bootstrap_aggregate,
    bootstrap_cells,
    multiplier_bootstrap,
)
from som_models.estimators.consequences import (  # noqa: E402
    CONSEQUENCE_SCHEMA,
    ConsequenceEstimates,
    consequence_estimates,
    som_consequences,
)
from som_models.estimators.drdid import TwoByTwo, drdid_panel  # noqa: E402
from som_models.estimators.matching import MatchResult, match_comparison, matched_att_gt  # noqa: E402
from som_models.estimators.panel import Panel, build_panel  # noqa: E402
from som_models.estimators.rct import RctResult, rct_effects  # noqa: E402
from som_models.estimators.results import effects_table  # noqa: E402

__all__ += [
    "ATE_METHODS", "AteResult", "ate",
    "BootstrapInference", "bootstrap_aggregate", "bootstrap_cells", "multiplier_bootstrap",
    "CONSEQUENCE_SCHEMA", "ConsequenceEstimates", "consequence_estimates", "som_consequences", "TwoByTwo", "drdid_panel",
    "MatchResult", "match_comparison",
    "matched_att_gt", "Panel", "build_panel", "RctResult", "rct_effects", "effects_table",
]

from som_models.estimators.survival import (  # noqa: E402
    CoxResult,
    DurationEffects,
    KaplanMeierResult,
    cox_ph,
    duration_effects,
    kaplan_meier,
)

__all__ += ["CoxResult", "DurationEffects", "KaplanMeierResult", "cox_ph", "duration_effects", "kaplan_meier"]
