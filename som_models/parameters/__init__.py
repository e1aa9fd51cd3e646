"""Parameter-set schema (strict) and content hashing."""

from som_models.parameters.schema import (
    PAYERS, Consequence, CostLine, Estimate, MonteCarloSpec, ParameterError, ParameterSet, PriceSpec, RefusionGroup,
    SuccessMeasure, TaxSpec, content_hash, parse_parameter_set,
)

__all__ = ["PAYERS", "Consequence", "CostLine", "Estimate", "MonteCarloSpec", "ParameterError", "ParameterSet",
           "PriceSpec", "RefusionGroup", "SuccessMeasure", "TaxSpec", "content_hash", "parse_parameter_set"]
