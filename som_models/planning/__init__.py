"""Planning before looking (issue 14): the evaluation plan — minimum detectable deviation by data vintage and the
vintage at which each assumption becomes decidable (:mod:`.power`, variances from :mod:`.variance`, simulated
course-length and cost plans in :mod:`.volumes`) — and the value of information per assumption, payer and udvalg
(:mod:`.voi`)."""

from som_models.planning.power import (
    AssumptionPlan,
    EvaluationPlan,
    PlanSettings,
    RolloutDesign,
    VintagePlan,
    contrast_variance,
    mdd,
    plan_evaluation,
    randomisation_min_p,
    refutation_power,
    t_critical,
    tost_power,
)
from som_models.planning.variance import VarianceComponents, default_components, estimate_components
from som_models.planning.voi import (
    evppi_gaussian,
    evppi_regression,
    nested_evppi,
    value_of_information,
)
from som_models.planning.volumes import band_decisions, simulate_band_power

__all__ = [
    "AssumptionPlan", "EvaluationPlan", "PlanSettings", "RolloutDesign", "VarianceComponents", "VintagePlan",
    "band_decisions", "contrast_variance", "default_components",
    "estimate_components", "evppi_gaussian", "evppi_regression", "mdd", "nested_evppi", "plan_evaluation",
    "randomisation_min_p", "refutation_power", "simulate_band_power", "t_critical", "tost_power",
    "value_of_information",
]
