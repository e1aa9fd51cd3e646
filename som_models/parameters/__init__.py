"""Parameter-set schema (strict) and content hashing."""

from som_models.parameters.schema import (
    CAUSAL,
    CONSEQUENCE_KINDS,
    DESCRIPTIVE,
    PAYERS,
    Consequence,
    CostLine,
    CourseProfile,
    Estimate,
    MonteCarloSpec,
    ParameterError,
    ParameterSet,
    PriceSpec,
    RefusionGroup,
    SuccessMeasure,
    TaxSpec,
    check_kinds_kept,
    content_hash,
    convert_profile,
    parse_parameter_set,
)

__all__ = ["CAUSAL", "CONSEQUENCE_KINDS", "DESCRIPTIVE", "PAYERS", "Consequence", "CostLine", "CourseProfile", "Estimate",
           "MonteCarloSpec",
           "ParameterError", "ParameterSet", "PriceSpec", "RefusionGroup", "SuccessMeasure", "TaxSpec", "check_kinds_kept",
           "content_hash", "convert_profile", "parse_parameter_set"]
