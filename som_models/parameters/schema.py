"""The parameter set of one intervention (DESIGN §3.4) — strict: an unknown key is an error naming it.

A parameter set is also a SØM calculation document: what the projection needs (cohorts, success rate,
costs, consequence profiles, unit prices, discounting) plus the success measure that ties the success rate
to a register outcome. Sign conventions: consequences are *units per successful person* (negative = less
use); amounts in the projection are savings positive, costs negative.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

PAYERS = ("kommune", "region", "stat")
SUCCESS_RULES = ("zero", "positive")


class ParameterError(ValueError):
    """A parameter document is invalid; the message names the key path."""


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error and source."""

    value: float
    se: float | None
    source: str


@dataclass(frozen=True)
class Consequence:
    """Units per successful person in consequence years 1, 2, … (negative = less use)."""

    item: str
    units: tuple[float, ...]
    se: tuple[float, ...] | None
    source: str


@dataclass(frozen=True)
class CostLine:
    course_year: int
    payer: str
    amount: float


@dataclass(frozen=True)
class SuccessMeasure:
    """Success = a person-year where ``outcome`` is zero (``rule='zero'``) or positive (``'positive'``)."""

    name: str
    outcome: str
    rule: str
    description: str


@dataclass(frozen=True)
class ParameterSet:
    """A validated parameter document; ``document`` keeps the original mapping for storage and hashing."""

    intervention: str
    title: str
    target_group: str
    start_year: int
    horizon_years: int
    price_year: int
    course_years: int
    cohorts: tuple[tuple[int, int], ...]
    success_measure: SuccessMeasure
    success_rate: Estimate
    costs: tuple[CostLine, ...]
    avoided_costs: tuple[CostLine, ...]
    consequences: tuple[Consequence, ...]
    prices: Mapping[str, Mapping[str, float]]
    discounting: Any
    document: Mapping[str, Any]

    def consequence(self, item: str) -> Consequence:
        for c in self.consequences:
            if c.item == item:
                return c
        raise KeyError(item)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the document (safe to modify)."""
        return copy.deepcopy(dict(self.document))

    @property
    def content_hash(self) -> str:
        return content_hash(self.document)


def content_hash(doc: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON form (sorted keys, no whitespace)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_TOP = {
    "intervention": True, "title": False, "target_group": True, "start_year": True, "horizon_years": True,
    "price_year": True, "course_years": False, "cohorts": True, "success_measure": True, "success_rate": True,
    "costs": True, "avoided_costs": False, "consequences": True, "prices": True, "discounting": False,
    "sources": False, "notes": False, "provenance": False,
}


def _keys(obj: Any, path: str, allowed: dict[str, bool]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ParameterError(f"{path or 'document'}: expected a mapping, got {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            raise ParameterError(f"{path + '.' if path else ''}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    for key, required in allowed.items():
        if required and key not in obj:
            raise ParameterError(f"{path + '.' if path else ''}{key}: required key missing")
    return obj


def _num(obj: Any, path: str, *, integer: bool = False, minimum: float | None = None) -> float:
    if isinstance(obj, bool) or not isinstance(obj, (int, float)) or (integer and not float(obj).is_integer()):
        raise ParameterError(f"{path}: expected {'an integer' if integer else 'a number'}, got {obj!r}")
    if obj != obj:  # NaN
        raise ParameterError(f"{path}: NaN is not allowed")
    if minimum is not None and obj < minimum:
        raise ParameterError(f"{path}: must be ≥ {minimum}, got {obj!r}")
    return int(obj) if integer else float(obj)


def _str(obj: Any, path: str) -> str:
    if not isinstance(obj, str) or not obj.strip():
        raise ParameterError(f"{path}: expected a non-empty string, got {obj!r}")
    return obj


def _lines(obj: Any, path: str) -> tuple[CostLine, ...]:
    if not isinstance(obj, list):
        raise ParameterError(f"{path}: expected a list of {{course_year, payer, amount}}")
    out = []
    for k, line in enumerate(obj):
        p = f"{path}[{k}]"
        _keys(line, p, {"course_year": True, "payer": True, "amount": True, "source": False})
        payer = _str(line["payer"], f"{p}.payer")
        if payer not in PAYERS:
            raise ParameterError(f"{p}.payer: {payer!r} is not one of {', '.join(PAYERS)}")
        out.append(CostLine(_num(line["course_year"], f"{p}.course_year", integer=True, minimum=1), payer,
                            _num(line["amount"], f"{p}.amount")))
    return tuple(out)


def _consequence(item: str, obj: Any, path: str) -> Consequence:
    if isinstance(obj, list):
        obj = {"units": obj}
    _keys(obj, path, {"units": True, "se": False, "source": False})
    units = obj["units"]
    if not isinstance(units, list) or not units:
        raise ParameterError(f"{path}.units: expected a non-empty list of numbers")
    values = tuple(_num(u, f"{path}.units[{k}]") for k, u in enumerate(units))
    se = None
    if obj.get("se") is not None:
        if not isinstance(obj["se"], list) or len(obj["se"]) != len(values):
            raise ParameterError(f"{path}.se: expected a list as long as units ({len(values)})")
        se = tuple(_num(s, f"{path}.se[{k}]", minimum=0) for k, s in enumerate(obj["se"]))
    return Consequence(item, values, se, str(obj.get("source", "")))


def _discounting(obj: Any) -> Any:
    if obj is None or obj in ("fm2021", "none"):
        return obj or "fm2021"
    if isinstance(obj, list) and obj:
        out = []
        for k, step in enumerate(obj):
            p = f"discounting[{k}]"
            _keys(step, p, {"from_year": True, "rate": True})
            out.append((_num(step["from_year"], f"{p}.from_year", integer=True, minimum=1),
                        _num(step["rate"], f"{p}.rate", minimum=0)))
        if out[0][0] != 1 or [a for a, _ in out] != sorted({a for a, _ in out}):
            raise ParameterError("discounting: steps must start at from_year 1 and increase")
        return tuple(out)
    raise ParameterError(f"discounting: expected 'fm2021', 'none' or a list of {{from_year, rate}}, got {obj!r}")


def parse_parameter_set(doc: Mapping[str, Any]) -> ParameterSet:
    """Validate a parameter document and return the immutable :class:`ParameterSet`."""
    _keys(doc, "", _TOP)
    cohorts = doc["cohorts"]
    if not isinstance(cohorts, list) or not cohorts:
        raise ParameterError("cohorts: expected a non-empty list of {year, participants}")
    parsed_cohorts = []
    for k, c in enumerate(cohorts):
        _keys(c, f"cohorts[{k}]", {"year": True, "participants": True})
        parsed_cohorts.append((_num(c["year"], f"cohorts[{k}].year", integer=True),
                               _num(c["participants"], f"cohorts[{k}].participants", integer=True, minimum=0)))
    sm = _keys(doc["success_measure"], "success_measure", {"name": True, "outcome": True, "rule": True, "description": False})
    rule = _str(sm["rule"], "success_measure.rule")
    if rule not in SUCCESS_RULES:
        raise ParameterError(f"success_measure.rule: {rule!r} is not one of {', '.join(SUCCESS_RULES)}")
    sr = _keys(doc["success_rate"], "success_rate", {"value": True, "se": False, "source": False})
    value = _num(sr["value"], "success_rate.value", minimum=0)
    if value > 1:
        raise ParameterError(f"success_rate.value: a share must be ≤ 1, got {value}")
    consequences = _keys(doc["consequences"], "consequences", {k: False for k in doc["consequences"]} if isinstance(doc["consequences"], Mapping) else {})
    parsed_cons = tuple(_consequence(item, obj, f"consequences.{item}") for item, obj in consequences.items())
    prices = _keys(doc["prices"], "prices", {k: False for k in doc["prices"]} if isinstance(doc["prices"], Mapping) else {})
    parsed_prices: dict[str, dict[str, float]] = {}
    for item, by_payer in prices.items():
        _keys(by_payer, f"prices.{item}", {p: False for p in PAYERS})
        parsed_prices[item] = {p: _num(v, f"prices.{item}.{p}") for p, v in by_payer.items()}
    for c in parsed_cons:
        if c.item not in parsed_prices:
            raise ParameterError(f"prices.{c.item}: consequence item has no unit prices")
    start_year = _num(doc["start_year"], "start_year", integer=True)
    horizon = _num(doc["horizon_years"], "horizon_years", integer=True, minimum=1)
    if horizon > 200:
        raise ParameterError(f"horizon_years: {horizon} is more than 200 years")
    return ParameterSet(
        intervention=_str(doc["intervention"], "intervention"),
        title=str(doc.get("title", "")),
        target_group=_str(doc["target_group"], "target_group"),
        start_year=start_year,
        horizon_years=horizon,
        price_year=_num(doc["price_year"], "price_year", integer=True),
        course_years=_num(doc.get("course_years", 1), "course_years", integer=True, minimum=1),
        cohorts=tuple(parsed_cohorts),
        success_measure=SuccessMeasure(_str(sm["name"], "success_measure.name"), _str(sm["outcome"], "success_measure.outcome"),
                                       rule, str(sm.get("description", ""))),
        success_rate=Estimate(value, _num(sr["se"], "success_rate.se", minimum=0) if sr.get("se") is not None else None,
                              str(sr.get("source", ""))),
        costs=_lines(doc["costs"], "costs"),
        avoided_costs=_lines(doc.get("avoided_costs", []), "avoided_costs"),
        consequences=parsed_cons,
        prices=parsed_prices,
        discounting=_discounting(doc.get("discounting")),
        document=copy.deepcopy(dict(doc)),
    )
