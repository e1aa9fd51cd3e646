"""The knowledge base: effect studies, effect-size conversion, random-effects meta-analysis, priors."""

from som_models.knowledge.base import (
    AGENCY,
    METRICS,
    ORIGINS,
    REFERENCE,
    ConsequenceProfile,
    Effect,
    EffectStudy,
    KnowledgeBase,
    KnowledgeError,
    PoolResult,
    Prior,
    TargetGroup,
    UnitPrice,
    parse_study,
    study_from_evaluation,
)
from som_models.knowledge.effect_sizes import (
    cox_d,
    hedges_g,
    log_odds_ratio,
    log_risk_ratio,
    risk_difference,
    se_from_ci,
    success_rate_from_d,
)
from som_models.knowledge.meta import METHODS, MetaResult, meta_analysis

__all__ = ["AGENCY", "METHODS", "METRICS", "ORIGINS", "REFERENCE",
           "ConsequenceProfile", "Effect", "EffectStudy", "KnowledgeBase", "KnowledgeError",
           "MetaResult", "PoolResult", "Prior", "TargetGroup", "UnitPrice", "cox_d", "hedges_g", "log_odds_ratio",
           "log_risk_ratio", "meta_analysis", "parse_study", "risk_difference", "se_from_ci", "study_from_evaluation",
           "success_rate_from_d"]
