"""The parameter set of one intervention (DESIGN §3.4) — strict: an unknown key is an error naming it.

A parameter set is also a SØM calculation document (``docs/calculation-document.md``): what the
projection needs (cohorts, success rate, costs, consequence profiles, unit prices, discounting) plus the
success measure that ties the success rate to a register outcome. Sign conventions: consequences are
*units per successful person* (negative = less use); amounts in the projection are savings positive, costs
negative.

Optional sections (all backwards compatible — a document without them means what it meant before):

* ``prices.<item>``: besides ``kommune``/``region``/``stat`` amounts, ``price_year`` (the year the amounts
  are quoted in; converted to the document's ``price_year`` with the net price index), ``range``
  (``[low, high]`` *relative* factors for the Monte Carlo, e.g. ``[0.8, 1.25]``), ``source``, ``status``;
  each payer's amount may be a mapping ``{udvalg: kr}`` splitting that payer's price by udvalg (committee
  or sector); its sum is the payer's price.
* ``costs[k]`` / ``avoided_costs[k]``: besides ``course_year``, ``payer``, ``amount``, optional ``item``
  (row label), ``committee`` (the udvalg of the line, any payer), ``price_year`` and ``range`` (``[low, high]`` in kroner per
  participant, containing ``amount``). A cost ``amount`` (and its ``range``) is ≤ 0 — a positive one is an
  error, not a silent sign flip (a saving belongs under ``avoided_costs``).
* ``refusion``: ``staircase`` (refusion staircase on income support by cumulative weeks) and
  ``expensive_cases`` (Serviceloven § 176 / Barnets lov § 198), each a mapping or a list of mappings.
* ``tax``: marginal tax rates by payer on changed taxable income, taxable kroner per unit of each item,
  optional ``tilbageloeb`` (indirect taxes returning to the state).
* ``monte_carlo``: ``draws``, ``seed``, ``range_distribution`` (``triangular``/``uniform``),
  ``consequence_correlation`` (``item``/``independent``), ``tornado_percentiles``.
* ``udvalg``: the udvalg ledger (:mod:`som_models.projection.ledger`): ``default`` (true/false, default true:
  the default mapping ``assets/udvalg/default_committees.yaml`` fills what the document does not say) and
  ``items.<item>.<payer>: {udvalg: share}`` (shares adding up to 1) for any consequence item.
* ``price_index``: the index used for price-year conversion — a name in ``assets/price_index``
  (default ``nettoprisindeks``) or an inline mapping ``{year: value}``.

* ``consequences.<item>.unverified``: the consequence years (1-based, increasing) that no evaluation has
  observed and an update extrapolated from the observed years; ``consequences.<item>.extrapolation``: the
  rule and its figures (:mod:`som_models.extrapolation`). Both are written by
  :func:`som_models.calibration.propose`; a document without them has no unverified years.

* ``consequences.<item>.course``: the item's **course-year effect** (effects during the intervention, as SØM has
  counted them since 2020): ``units`` — one value per course year ``1 … K`` (``K`` = ``course_years``; course
  year ``k`` is event time ``e = k − 1``, the cost lines' ``course_year`` numbering), optional ``se`` (as long
  as ``units``), ``kind`` (``causal`` / ``descriptive``, the same rules as the item's ``kind`` below: required
  with ``require_kind=True``, else ``causal``) and ``source``. The units are **per participant** (negative =
  less use), not per success: during the course success is not yet defined (it is measured in consequence
  year 1), so the projection multiplies them by the participants ``N``, not by ``N · s``, and a causal course
  profile is the event-time ATT at ``e = k − 1`` itself (:mod:`som_models.assumptions`). Absent = no effect
  during the course (what every document meant before).

* ``fixed_costs[k]``: costs that do not scale with participants — a one-off cost in calendar ``year`` or a fixed
  yearly cost in each of ``years: [first, last]`` (inclusive), kroner per year (≤ 0), with ``payer``, optional
  ``item``, ``committee`` (the udvalg of the line, any payer), ``price_year``, ``cashable`` (default true), ``source``
  and ``range`` (``[low, high]`` kroner per year for the Monte Carlo, containing ``amount``, both ≤ 0).
* ``prices.<item>.cashable``: whether the item's savings release cash (default true: every price line counts in
  the cash view, what every document meant before); the cash view (:mod:`som_models.projection.cashview`)
  counts only cashable amounts.
* ``optimism_bias``: ``costs`` (uplift share on costs, e.g. 0.2 = +20 %), ``effects`` (haircut share on effects,
  0 ≤ h < 1) and a required ``source`` — no defaults (:mod:`som_models.projection.optimism`).
* ``scenarios.<name>``: named overrides of the document — ``set`` (``{path: value}``, paths like
  ``success_rate.value`` or ``costs[0].amount``), ``scale`` (``{target: factor}``), ``description``; each
  scenario is validated as a whole document (:mod:`som_models.parameters.scenarios`).

``success_measure`` is optional for a pure calculation document; the evaluation pipeline needs it.

**Two kinds of consequence profile** (``consequences.<item>.kind``, never mixed; ``docs/concepts.md``):

* ``causal`` — the effect of the intervention per *net* success: ``units[j]`` is what one extra success
  caused by the intervention changes in consequence year ``j``, so the realised event-time ATT of the item
  is ``s · units[j]`` (``s`` = the net success rate). Tested against (and updated from) the causal ATT path.
* ``descriptive`` — SØM's own kind of consequence estimate: the regression-adjusted difference between
  target-group members who succeed and those who do not, by year since success (not causal). Tested against
  (and updated from) the same descriptive contrast re-estimated on the registers
  (:mod:`som_models.descriptive`), never against a causal effect path.

The projection's arithmetic is the same for both (``N · s · units[j] · price``: the consequences apply to the
persons who succeed); the kinds differ in what the number claims and in the evidence that can test it.
``kind`` is required by :func:`parse_parameter_set` with ``require_kind=True`` (new documents, the seeds in
``assets/parameters/``); without it a missing kind defaults to ``causal`` — what every consequence profile
meant in this project before the kinds were introduced — and :attr:`Consequence.kind_stated` is ``False``.
An update keeps each item's kind (:func:`check_kinds_kept`); a change of kind is an explicit step,
:func:`convert_profile`, recorded in ``provenance.conversions``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from som_models.extrapolation import year_span
from som_models.hashing import content_hash

PAYERS = ("kommune", "region", "stat")
SUCCESS_RULES = ("zero", "positive")
CAUSAL = "causal"
DESCRIPTIVE = "descriptive"
#: The kinds of consequence profile (module docstring).
CONSEQUENCE_KINDS = (CAUSAL, DESCRIPTIVE)
RANGE_DISTRIBUTIONS = ("triangular", "uniform")
CORRELATIONS = ("item", "independent")


class ParameterError(ValueError):
    """A parameter document is invalid; the message names the key path."""


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error and source."""

    value: float
    se: float | None
    source: str


@dataclass(frozen=True)
class CourseProfile:
    """Units per *participant* in course years 1 … K (negative = less use); course year ``k`` is event time ``k − 1``.

    ``kind`` follows the item's rules (``causal``: the effect of the intervention per participant, tested against
    and updated from the event-time ATT; ``descriptive``: a contrast that is not causal, projected but not tested
    against the causal path); ``kind_stated`` is False when the document did not say and ``causal`` was assumed.
    """

    units: tuple[float, ...]
    se: tuple[float, ...] | None
    source: str
    kind: str = "causal"
    kind_stated: bool = True


@dataclass(frozen=True)
class Consequence:
    """Units per successful person in consequence years 1, 2, … (negative = less use).

    ``kind`` is ``causal`` (effect per net success) or ``descriptive`` (SØM's success-vs-non-success
    contrast); ``kind_stated`` is False when the document did not say and ``causal`` was assumed.
    ``unverified`` lists the consequence years no evaluation has observed that an update extrapolated
    (:mod:`som_models.extrapolation`).
    """

    item: str
    units: tuple[float, ...]
    se: tuple[float, ...] | None
    source: str
    kind: str = CAUSAL
    kind_stated: bool = True
    #: consequence years without data behind them, extrapolated (``consequences.<item>.unverified``)
    unverified: tuple[int, ...] = ()
    #: the effect during the course, per participant (``consequences.<item>.course``); None = no effect assumed
    course: CourseProfile | None = None


@dataclass(frozen=True)
class CostLine:
    """Kroner per participant in course year ``course_year`` paid by ``payer`` (costs negative).

    ``range`` is ``(low, high)`` in kroner per participant for the Monte Carlo; ``price_year`` is the year the
    amount is quoted in (``None`` = the document's price year); ``item`` labels the projection row.
    """

    course_year: int
    payer: str
    amount: float
    item: str | None = None
    committee: str | None = None
    price_year: int | None = None
    range: tuple[float, float] | None = None
    source: str = ""


@dataclass(frozen=True)
class SuccessMeasure:
    """Success = a person-year where ``outcome`` is zero (``rule='zero'``) or positive (``'positive'``)."""

    name: str
    outcome: str
    rule: str
    description: str


@dataclass(frozen=True)
class PriceSpec:
    """What a price line says besides its amounts: quoted price year, Monte Carlo range, committee split.

    ``committees`` maps municipal committee → kroner per unit (their sum is the kommune price); ``udvalg`` maps
    payer → {udvalg: kroner per unit} for every payer whose price is split (``udvalg["kommune"]`` is
    ``committees``); ``range`` is ``(low, high)`` relative factors applied to all payers' prices of the item.
    """

    item: str
    price_year: int
    range: tuple[float, float] | None
    committees: Mapping[str, float]
    source: str
    status: str
    udvalg: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: whether the item's savings release cash (``prices.<item>.cashable``; default True)
    cashable: bool = True


@dataclass(frozen=True)
class FixedCost:
    """A cost that does not scale with participants: ``amount`` kroner (≤ 0) paid by ``payer`` in each calendar year
    ``first_year … last_year`` (one-off: ``first_year == last_year``); ``price_year`` None = the document's;
    ``range`` ``(low, high)`` kroner per year for the Monte Carlo (containing ``amount``, both ≤ 0; one draw per line
    applies to all its years), None = no uncertainty."""

    payer: str
    amount: float
    first_year: int
    last_year: int
    item: str | None = None
    committee: str | None = None
    price_year: int | None = None
    cashable: bool = True
    source: str = ""
    range: tuple[float, float] | None = None

    @property
    def one_off(self) -> bool:
        return self.first_year == self.last_year


@dataclass(frozen=True)
class OptimismBias:
    """Optimism-bias adjustment of a projection: costs × (1 + ``costs``), effects × (1 − ``effects``).

    ``applied`` is True on the adjusted parameter set the projection computes with
    (:func:`som_models.projection.optimism.apply_optimism_bias`), so it is never applied twice.
    """

    costs: float
    effects: float
    source: str
    applied: bool = False


@dataclass(frozen=True)
class UdvalgSpec:
    """The document's ``udvalg`` section: ``default`` — whether the default mapping fills what the document does
    not say; ``items`` — item → payer → {udvalg: share} (shares add up to 1)."""

    default: bool = True
    items: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class RefusionGroup:
    """One application of a refusion rule to consequence items.

    ``kind`` is ``staircase`` (``weeks_before``: cumulative weeks on public support before the avoided
    weeks, per consequence year or one value for all) or ``expensive_cases`` (``case_expense``: the
    municipality's gross annual expense per person in the case without success, in the document's price
    year, per consequence year or one value for all). ``rule`` is a rule id in ``assets/refusion`` or an
    inline rule mapping.
    """

    kind: str
    items: tuple[str, ...]
    rule: Any
    values: tuple[float, ...]
    version: str | None
    source: str
    path: str

    def value_for_year(self, j: int) -> float:
        """``weeks_before`` / ``case_expense`` in consequence year ``j ≥ 1`` (one value = every year)."""
        return self.values[0] if len(self.values) == 1 else self.values[min(j, len(self.values)) - 1]


@dataclass(frozen=True)
class TaxSpec:
    """Income tax on changed income ``Δincome_i = units_i · taxable[i]``, by kind of income (``income[i]``).

    ``am_bidrag`` (labour-market contribution, to the state) is levied on *earned* income only; income tax
    ``rates[p]`` falls on earned income after AM-bidrag and on transfer income (kontanthjælp etc.) in full;
    ``tilbageloeb`` is the share of the net income change returning to the state as indirect taxes (Finance
    Ministry principle, shared/research/domain.md §1.9). The formulas are in
    :func:`som_models.projection.rules.tax_shares`.
    """

    rates: Mapping[str, float]
    taxable: Mapping[str, float]
    tilbageloeb: float
    source: str
    am_bidrag: float = 0.0
    income: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MonteCarloSpec:
    draws: int = 0
    seed: int = 1
    range_distribution: str = "triangular"
    consequence_correlation: str = "item"
    tornado_percentiles: tuple[float, float] = (5.0, 95.0)


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
    success_measure: SuccessMeasure | None
    success_rate: Estimate
    costs: tuple[CostLine, ...]
    avoided_costs: tuple[CostLine, ...]
    consequences: tuple[Consequence, ...]
    prices: Mapping[str, Mapping[str, float]]
    discounting: Any
    document: Mapping[str, Any]
    price_specs: Mapping[str, PriceSpec] = field(default_factory=dict)
    refusion: tuple[RefusionGroup, ...] = ()
    tax: TaxSpec | None = None
    monte_carlo: MonteCarloSpec = MonteCarloSpec()
    price_index: Any = None
    fixed_costs: tuple[FixedCost, ...] = ()
    optimism_bias: OptimismBias | None = None
    #: named scenarios (``scenarios``), each a validated parameter set of its own
    scenarios: tuple[Scenario, ...] = ()
    udvalg: UdvalgSpec = UdvalgSpec()

    def consequence(self, item: str) -> Consequence:
        for c in self.consequences:
            if c.item == item:
                return c
        raise KeyError(item)

    def kinds(self) -> dict[str, str]:
        """Consequence item → its kind (``causal`` / ``descriptive``)."""
        return {c.item: c.kind for c in self.consequences}

    def describe_kinds(self) -> str:
        """One line naming each consequence item's kind, e.g. for ``som params show`` and the projection notes."""
        if not self.consequences:
            return "consequence profiles: none"
        parts = [f"{c.item} {c.kind}{'' if c.kind_stated else ' (not stated; assumed)'}" for c in self.consequences]
        return ("consequence profiles: " + ", ".join(parts)
                + " — causal = effect per net success; descriptive = SØM's success-vs-non-success contrast")

    def course_profiles(self) -> dict[str, CourseProfile]:
        """Consequence item → its course-year profile (units per participant), for the items that state one."""
        return {c.item: c.course for c in self.consequences if c.course is not None}

    def describe_course(self) -> str | None:
        """One line naming the course-year effects (None when there are none), e.g. for ``som params show`` and the
        projection notes."""
        profiles = self.course_profiles()
        if not profiles:
            return None
        return ("effects during the course (per participant, course years 1–" + str(self.course_years) + "): "
                + ", ".join(f"{item} {list(p.units)} {p.kind}" for item, p in profiles.items()))

    def unverified(self) -> dict[str, tuple[int, ...]]:
        """Consequence item → its unverified (extrapolated) consequence years, for the items that have any."""
        return {c.item: c.unverified for c in self.consequences if c.unverified}

    def describe_unverified(self) -> str | None:
        """One line naming the unverified consequence years (None when there are none), e.g. for
        ``som params show``, the projection notes and the report."""
        marks = self.unverified()
        if not marks:
            return None
        return ("unverified consequence years (no data; extrapolated from the observed years): "
                + ", ".join(f"{item} {year_span(years)}" for item, years in marks.items()))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the document (safe to modify)."""
        return copy.deepcopy(dict(self.document))

    @property
    def content_hash(self) -> str:
        return content_hash(self.document)


@dataclass(frozen=True)
class Scenario:
    """A named scenario: the document with its overrides applied (``scenarios.<name>``), validated."""

    name: str
    description: str
    params: ParameterSet




_TOP = {
    "intervention": True, "title": False, "target_group": True, "start_year": True, "horizon_years": True,
    "price_year": True, "course_years": False, "cohorts": True, "success_measure": False, "success_rate": True,
    "costs": True, "avoided_costs": False, "consequences": True, "prices": True, "discounting": False,
    "sources": False, "notes": False, "provenance": False,
    "refusion": False, "tax": False, "monte_carlo": False, "price_index": False,
    "fixed_costs": False, "optimism_bias": False, "scenarios": False, "udvalg": False,
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


def _num(obj: Any, path: str, *, integer: bool = False, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(obj, bool) or not isinstance(obj, (int, float)) or (integer and not float(obj).is_integer()):
        raise ParameterError(f"{path}: expected {'an integer' if integer else 'a number'}, got {obj!r}")
    if obj != obj or obj in (float("inf"), float("-inf")):  # NaN, ±inf
        raise ParameterError(f"{path}: {obj!r} is not allowed")
    if minimum is not None and obj < minimum:
        raise ParameterError(f"{path}: must be ≥ {minimum}, got {obj!r}")
    if maximum is not None and obj > maximum:
        raise ParameterError(f"{path}: must be ≤ {maximum}, got {obj!r}")
    return int(obj) if integer else float(obj)


def _int(obj: Any, path: str, *, minimum: float | None = None, maximum: float | None = None) -> int:
    """An integer-valued number (``3`` or ``3.0``) as ``int``; the same checks as :func:`_num`."""
    return int(_num(obj, path, integer=True, minimum=minimum, maximum=maximum))


def _str(obj: Any, path: str) -> str:
    if not isinstance(obj, str) or not obj.strip():
        raise ParameterError(f"{path}: expected a non-empty string, got {obj!r}")
    return obj


def _payer(obj: Any, path: str) -> str:
    payer = _str(obj, path)
    if payer not in PAYERS:
        raise ParameterError(f"{path}: {payer!r} is not a payer (allowed: {', '.join(PAYERS)})")
    return payer


def _pair(obj: Any, path: str) -> tuple[float, float]:
    if not isinstance(obj, list) or len(obj) != 2:
        raise ParameterError(f"{path}: expected [low, high], got {obj!r}")
    low, high = _num(obj[0], f"{path}[0]"), _num(obj[1], f"{path}[1]")
    if low > high:
        raise ParameterError(f"{path}: low {low:g} is above high {high:g}")
    return low, high


def _bool(obj: Any, path: str) -> bool:
    if not isinstance(obj, bool):
        raise ParameterError(f"{path}: expected true or false, got {obj!r}")
    return obj


def _cost_range(line: Mapping[str, Any], p: str, amount: float, *, avoided: bool = False) -> tuple[float, float] | None:
    """A cost line's (or fixed cost's) Monte Carlo ``range``: ``[low, high]`` containing ``amount``; a cost's range
    stays ≤ 0, an avoided cost's does not change sign. None when the line states none."""
    if line.get("range") is None:
        return None
    rng = _pair(line["range"], f"{p}.range")
    if not rng[0] <= amount <= rng[1]:
        raise ParameterError(f"{p}.range: [{rng[0]:g}, {rng[1]:g}] does not contain the amount {amount:g}")
    if not avoided and rng[1] > 0:
        raise ParameterError(f"{p}.range: the high end {rng[1]:g} is positive, but a cost is negative (savings "
                             "positive, costs negative)")
    if avoided and rng[0] * rng[1] < 0:
        raise ParameterError(f"{p}.range: an avoided cost range must not change sign")
    return rng


def _fixed_costs(obj: Any, start_year: int, horizon: int) -> tuple[FixedCost, ...]:
    """``fixed_costs``: one-off (``year``) or fixed yearly (``years: [first, last]``) costs, kroner per year ≤ 0."""
    if not isinstance(obj, list):
        raise ParameterError("fixed_costs: expected a list of {payer, amount, year | years}")
    last_horizon = start_year + horizon - 1
    out = []
    for k, line in enumerate(obj):
        p = f"fixed_costs[{k}]"
        _keys(line, p, {"payer": True, "amount": True, "year": False, "years": False, "item": False, "committee": False,
                        "price_year": False, "cashable": False, "source": False, "range": False})
        payer = _payer(line["payer"], f"{p}.payer")
        amount = _num(line["amount"], f"{p}.amount")
        if amount > 0:
            raise ParameterError(f"{p}.amount: {amount:g} is positive, but costs are negative cash flows (savings "
                                 f"positive, costs negative): write -{amount:g}")
        if ("year" in line) == ("years" in line):
            raise ParameterError(f"{p}: give either year (a one-off cost) or years: [first, last] (a fixed yearly cost)")
        if "year" in line:
            first = last = _int(line["year"], f"{p}.year")
            where = f"{p}.year"
        else:
            span = line["years"]
            if not isinstance(span, list) or len(span) != 2:
                raise ParameterError(f"{p}.years: expected [first, last] (calendar years, inclusive), got {span!r}")
            first, last = _int(span[0], f"{p}.years[0]"), _int(span[1], f"{p}.years[1]")
            where = f"{p}.years"
            if first > last:
                raise ParameterError(f"{where}: first year {first} is after last year {last}")
        if first < start_year or last > last_horizon:
            raise ParameterError(f"{where}: {first}–{last} is outside the horizon {start_year}–{last_horizon}")
        committee = None
        if line.get("committee") is not None:
            committee = _str(line["committee"], f"{p}.committee")
        rng = _cost_range(line, p, amount)
        out.append(FixedCost(
            payer, amount, first, last,
            item=_str(line["item"], f"{p}.item") if line.get("item") is not None else None,
            committee=committee,
            price_year=_int(line["price_year"], f"{p}.price_year") if line.get("price_year") is not None else None,
            cashable=_bool(line.get("cashable", True), f"{p}.cashable"), source=str(line.get("source", "")),
            range=rng,
        ))
    return tuple(out)


def _optimism_bias(obj: Any) -> OptimismBias:
    """``optimism_bias: {costs, effects, source}`` — shares, no defaults (module docstring)."""
    _keys(obj, "optimism_bias", {"costs": True, "effects": True, "source": True})
    costs = _num(obj["costs"], "optimism_bias.costs", minimum=0, maximum=10)
    effects = _num(obj["effects"], "optimism_bias.effects", minimum=0)
    if effects >= 1:
        raise ParameterError(f"optimism_bias.effects: a haircut share must be below 1, got {effects:g}")
    return OptimismBias(costs, effects, _str(obj["source"], "optimism_bias.source"))


def _scenarios(doc: Mapping[str, Any], require_kind: bool) -> tuple[Scenario, ...]:
    """``scenarios.<name>``: each the document with its overrides, validated as a whole (names the scenario)."""
    from som_models.parameters.scenarios import apply_scenario

    obj = doc["scenarios"]
    if not isinstance(obj, Mapping) or not obj:
        raise ParameterError("scenarios: expected a mapping {name: {description, set, scale}}")
    base = {k: v for k, v in doc.items() if k != "scenarios"}
    out = []
    for name, spec in obj.items():
        path = f"scenarios.{name}"
        if not isinstance(name, str) or not name.strip() or name == "base":
            raise ParameterError(f"{path}: a scenario needs a name other than 'base' (the document itself)")
        merged = apply_scenario(base, spec, path)
        try:
            scenario = parse_parameter_set(merged, require_kind=require_kind)
        except ParameterError as exc:
            raise ParameterError(f"{path} (the document with its overrides): {exc}") from None
        out.append(Scenario(name, str(spec.get("description", "")), scenario))
    return tuple(out)


def _lines(obj: Any, path: str, *, avoided: bool = False) -> tuple[CostLine, ...]:
    if not isinstance(obj, list):
        raise ParameterError(f"{path}: expected a list of {{course_year, payer, amount}}")
    out = []
    allowed = {"course_year": True, "payer": True, "amount": True, "source": False, "item": False,
               "committee": False, "price_year": False, "range": False}
    for k, line in enumerate(obj):
        p = f"{path}[{k}]"
        _keys(line, p, allowed)
        payer = _payer(line["payer"], f"{p}.payer")
        amount = _num(line["amount"], f"{p}.amount")
        if not avoided and amount > 0:
            raise ParameterError(f"{p}.amount: {amount:g} is positive, but costs are negative cash flows in a calculation "
                                 f"document (savings positive, costs negative): write -{amount:g}, or list a saving "
                                 "under avoided_costs")
        committee = None
        if line.get("committee") is not None:
            committee = _str(line["committee"], f"{p}.committee")
        rng = _cost_range(line, p, amount, avoided=avoided)
        out.append(CostLine(
            _int(line["course_year"], f"{p}.course_year", minimum=1), payer, amount,
            item=_str(line["item"], f"{p}.item") if line.get("item") is not None else None,
            committee=committee,
            price_year=_int(line["price_year"], f"{p}.price_year") if line.get("price_year") is not None else None,
            range=rng, source=str(line.get("source", "")),
        ))
    return tuple(out)


def _kind(obj: Mapping[str, Any], path: str) -> tuple[str, bool]:
    """The ``kind`` of a profile mapping and whether it was stated (default ``causal``)."""
    if "kind" not in obj:
        return CAUSAL, False
    kind = _str(obj["kind"], f"{path}.kind")
    if kind not in CONSEQUENCE_KINDS:
        raise ParameterError(f"{path}.kind: {kind!r} is not a kind of consequence profile "
                             f"(allowed: {', '.join(CONSEQUENCE_KINDS)})")
    return kind, True


def _course(obj: Any, path: str, course_years: int, require_kind: bool) -> CourseProfile:
    """``consequences.<item>.course``: one value per course year 1 … K, per participant (module docstring)."""
    _keys(obj, path, {"units": True, "se": False, "source": False, "kind": require_kind})
    kind, stated = _kind(obj, path)
    units = obj["units"]
    if not isinstance(units, list) or len(units) != course_years:
        raise ParameterError(f"{path}.units: expected a list of {course_years} number(s), one per course year 1–"
                             f"{course_years} (course_years), got {units!r}")
    values = tuple(_num(u, f"{path}.units[{k}]") for k, u in enumerate(units))
    se = _se_list(obj, path, len(values))
    return CourseProfile(values, se, str(obj.get("source", "")), kind, stated)


def _se_list(obj: Mapping[str, Any], path: str, n: int) -> tuple[float, ...] | None:
    """The optional ``se`` list of a profile: ``n`` non-negative numbers, one per value (None when absent)."""
    if obj.get("se") is None:
        return None
    if not isinstance(obj["se"], list) or len(obj["se"]) != n:
        raise ParameterError(f"{path}.se: expected a list as long as units ({n})")
    return tuple(_num(s, f"{path}.se[{k}]", minimum=0) for k, s in enumerate(obj["se"]))


def _consequence(item: str, obj: Any, path: str, require_kind: bool = False, course_years: int = 1) -> Consequence:
    if isinstance(obj, list):
        if require_kind:
            raise ParameterError(f"{path}.kind: required key missing — write the item as a mapping "
                                 f"{{kind: causal | descriptive, units: [...]}}")
        obj = {"units": obj}
    _keys(obj, path, {"units": True, "se": False, "source": False, "kind": require_kind, "unverified": False,
                      "extrapolation": False, "course": False})
    kind, stated = _kind(obj, path)
    units = obj["units"]
    if not isinstance(units, list) or not units:
        raise ParameterError(f"{path}.units: expected a non-empty list of numbers")
    values = tuple(_num(u, f"{path}.units[{k}]") for k, u in enumerate(units))
    se = _se_list(obj, path, len(values))
    unverified: tuple[int, ...] = ()
    if obj.get("unverified") is not None:
        raw = obj["unverified"]
        if not isinstance(raw, list):
            raise ParameterError(f"{path}.unverified: expected a list of consequence years (1–{len(values)})")
        unverified = tuple(_int(y, f"{path}.unverified[{k}]", minimum=1, maximum=len(values)) for k, y in enumerate(raw))
        if list(unverified) != sorted(set(unverified)):
            raise ParameterError(f"{path}.unverified: consequence years must be increasing and listed once, got {raw}")
    if obj.get("extrapolation") is not None and not isinstance(obj["extrapolation"], Mapping):
        raise ParameterError(f"{path}.extrapolation: expected a mapping (the rule that extrapolated the unverified years)")
    course = _course(obj["course"], f"{path}.course", course_years, require_kind) if obj.get("course") is not None else None
    return Consequence(item, values, se, str(obj.get("source", "")), kind, stated, unverified, course)


def _discounting(obj: Any) -> Any:
    if obj is None or obj in ("fm2021", "none"):
        return obj or "fm2021"
    if isinstance(obj, list) and obj:
        out = []
        for k, step in enumerate(obj):
            p = f"discounting[{k}]"
            _keys(step, p, {"from_year": True, "rate": True})
            out.append((_int(step["from_year"], f"{p}.from_year", minimum=1),
                        _num(step["rate"], f"{p}.rate", minimum=0)))
        if out[0][0] != 1 or [a for a, _ in out] != sorted({a for a, _ in out}):
            raise ParameterError("discounting: steps must start at from_year 1 and increase")
        return tuple(out)
    raise ParameterError(f"discounting: expected 'fm2021', 'none' or a list of {{from_year, rate}}, got {obj!r}")


def _prices(obj: Any, price_year: int) -> tuple[dict[str, dict[str, float]], dict[str, PriceSpec]]:
    prices = _keys(obj, "prices", {k: False for k in obj} if isinstance(obj, Mapping) else {})
    amounts: dict[str, dict[str, float]] = {}
    specs: dict[str, PriceSpec] = {}
    allowed = {**{p: False for p in PAYERS}, "price_year": False, "range": False, "source": False, "status": False,
               "cashable": False}
    for item, line in prices.items():
        path = f"prices.{item}"
        _keys(line, path, allowed)
        by_payer: dict[str, float] = {}
        split: dict[str, dict[str, float]] = {}
        for payer in PAYERS:
            if payer not in line:
                continue
            value = line[payer]
            if isinstance(value, Mapping):
                if not value:
                    raise ParameterError(f"{path}.{payer}: an udvalg split needs at least one udvalg")
                split[payer] = {}
                for committee, kr in value.items():
                    _str(committee, f"{path}.{payer} (udvalg name)")
                    split[payer][committee] = _num(kr, f"{path}.{payer}.{committee}")
                by_payer[payer] = float(sum(split[payer].values()))
            else:
                by_payer[payer] = _num(value, f"{path}.{payer}")
        if not by_payer:
            raise ParameterError(f"{path}: give a price for at least one payer ({', '.join(PAYERS)})")
        rng = None
        if line.get("range") is not None:
            rng = _pair(line["range"], f"{path}.range")
            if not (0 <= rng[0] <= 1 <= rng[1]):
                raise ParameterError(f"{path}.range: relative factors [low, high] need 0 ≤ low ≤ 1 ≤ high, got {list(rng)}")
        own_year = _int(line["price_year"], f"{path}.price_year") if line.get("price_year") is not None else price_year
        amounts[item] = by_payer
        specs[item] = PriceSpec(item, own_year, rng, split.get("kommune", {}), str(line.get("source", "")),
                                str(line.get("status", "")), split,
                                _bool(line.get("cashable", True), f"{path}.cashable"))
    return amounts, specs


def _per_year(obj: Any, path: str, minimum: float) -> tuple[float, ...]:
    if isinstance(obj, list):
        if not obj:
            raise ParameterError(f"{path}: expected a number or a non-empty list of numbers (one per consequence year)")
        return tuple(_num(v, f"{path}[{k}]", minimum=minimum) for k, v in enumerate(obj))
    return (_num(obj, path, minimum=minimum),)


_REFUSION_KINDS = {"staircase": "weeks_before", "expensive_cases": "case_expense"}


def _refusion(
    obj: Any,
    consequences: tuple[Consequence, ...],
    prices: Mapping[str, Mapping[str, float]],
) -> tuple[RefusionGroup, ...]:
    _keys(obj, "refusion", {k: False for k in _REFUSION_KINDS})
    by_item = {c.item: c for c in consequences}
    groups: list[RefusionGroup] = []
    seen: dict[str, str] = {}
    for kind, value_key in _REFUSION_KINDS.items():
        if kind not in obj:
            continue
        entries = obj[kind] if isinstance(obj[kind], list) else [obj[kind]]
        for k, entry in enumerate(entries):
            path = f"refusion.{kind}" if not isinstance(obj[kind], list) else f"refusion.{kind}[{k}]"
            _keys(entry, path, {"items": True, value_key: kind == "expensive_cases", "rule": False, "version": False,
                                "source": False})
            items = entry["items"]
            if not isinstance(items, list) or not items:
                raise ParameterError(f"{path}.items: expected a non-empty list of consequence items")
            for n, item in enumerate(items):
                _str(item, f"{path}.items[{n}]")
                if item not in by_item:
                    raise ParameterError(f"{path}.items[{n}]: {item!r} is not a consequence item")
                if "kommune" not in prices.get(item, {}):
                    raise ParameterError(f"{path}.items[{n}]: {item!r} has no kommune price for the refusion to split")
                if item in seen:
                    raise ParameterError(f"{path}.items[{n}]: {item!r} is already under {seen[item]}")
                seen[item] = path
            raw = entry.get(value_key, 0 if kind == "staircase" else None)
            values = _per_year(raw, f"{path}.{value_key}", 0)
            longest = max(len(by_item[i].units) for i in items)
            if len(values) > 1 and len(values) < longest:
                raise ParameterError(f"{path}.{value_key}: give one value or at least {longest} (one per consequence year)")
            rule = entry.get("rule")
            if rule is None:
                rule = "refusionstrappe" if kind == "staircase" else "serviceloven_176"
            elif not isinstance(rule, Mapping):
                rule = _str(rule, f"{path}.rule")
            version = str(entry["version"]) if entry.get("version") is not None else None
            groups.append(RefusionGroup(kind, tuple(items), copy.deepcopy(rule), values, version,
                                        str(entry.get("source", "")), path))
    return tuple(groups)


INCOME_KINDS = ("earned", "transfer")


def _tax(obj: Any, consequences: tuple[Consequence, ...]) -> TaxSpec:
    _keys(obj, "tax", {"rates": True, "taxable": True, "tilbageloeb": False, "am_bidrag": False, "source": False})
    rates_obj = _keys(obj["rates"], "tax.rates", {p: False for p in PAYERS})
    rates = {p: _num(v, f"tax.rates.{p}", minimum=0, maximum=1) for p, v in rates_obj.items()}
    if sum(rates.values()) >= 1:
        raise ParameterError(f"tax.rates: the rates add up to {sum(rates.values()):g}; they must add up to less than 1")
    items = {c.item for c in consequences}
    taxable_obj = obj["taxable"]
    if not isinstance(taxable_obj, Mapping) or not taxable_obj:
        raise ParameterError("tax.taxable: expected a mapping {consequence item: taxable kroner per unit}")
    am = _num(obj.get("am_bidrag", 0), "tax.am_bidrag", minimum=0, maximum=1)
    taxable, income = {}, {}
    for item, entry in taxable_obj.items():
        if item not in items:
            raise ParameterError(f"tax.taxable.{item}: not a consequence item")
        if isinstance(entry, Mapping):
            _keys(entry, f"tax.taxable.{item}", {"kroner": True, "income": True})
            kind = entry["income"]
            if kind not in INCOME_KINDS:
                raise ParameterError(f"tax.taxable.{item}.income: must be earned or transfer (got {kind!r})")
            taxable[item] = _num(entry["kroner"], f"tax.taxable.{item}.kroner")
            income[item] = str(kind)
        else:
            if am:
                raise ParameterError(f"tax.taxable.{item}: with am_bidrag, say whether the income is earned or a "
                                     f"transfer: {{kroner: {entry}, income: earned | transfer}} (AM-bidrag is levied on "
                                     "earned income only)")
            taxable[item] = _num(entry, f"tax.taxable.{item}")
            income[item] = "earned"
    tl = _num(obj.get("tilbageloeb", 0), "tax.tilbageloeb", minimum=0, maximum=1)
    return TaxSpec(rates, taxable, tl, str(obj.get("source", "")), am, income)


def _udvalg(obj: Any, items: set[str]) -> UdvalgSpec:
    """The ``udvalg`` section: ``default`` (bool) and ``items.<item>.<payer>: {udvalg: share}`` (shares ≥ 0 adding
    up to 1, for consequence items)."""
    _keys(obj, "udvalg", {"default": False, "items": False, "source": False})
    default = obj.get("default", True)
    if not isinstance(default, bool):
        raise ParameterError(f"udvalg.default: true or false (got {default!r})")
    raw = obj.get("items") or {}
    if not isinstance(raw, Mapping):
        raise ParameterError("udvalg.items: expected a mapping {item: {payer: {udvalg: share}}}")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for item, by_payer in raw.items():
        path = f"udvalg.items.{item}"
        if item not in items:
            raise ParameterError(f"{path}: not a consequence item (known: {', '.join(sorted(items))})")
        _keys(by_payer, path, {p: False for p in PAYERS})
        out[item] = {}
        for payer, shares in by_payer.items():
            if not isinstance(shares, Mapping) or not shares:
                raise ParameterError(f"{path}.{payer}: expected {{udvalg: share, …}}")
            parsed = {_str(u, f"{path}.{payer} (udvalg name)"): _num(v, f"{path}.{payer}.{u}", minimum=0, maximum=1)
                      for u, v in shares.items()}
            if abs(sum(parsed.values()) - 1.0) > 1e-9:
                raise ParameterError(f"{path}.{payer}: shares add up to {sum(parsed.values()):g}, not 1")
            out[item][payer] = parsed
    return UdvalgSpec(default, out)


def _monte_carlo(obj: Any) -> MonteCarloSpec:
    _keys(obj, "monte_carlo", {"draws": False, "seed": False, "range_distribution": False,
                               "consequence_correlation": False, "tornado_percentiles": False})
    dist = obj.get("range_distribution", "triangular")
    if dist not in RANGE_DISTRIBUTIONS:
        raise ParameterError(f"monte_carlo.range_distribution: {dist!r} is not one of {', '.join(RANGE_DISTRIBUTIONS)}")
    corr = obj.get("consequence_correlation", "item")
    if corr not in CORRELATIONS:
        raise ParameterError(f"monte_carlo.consequence_correlation: {corr!r} is not one of {', '.join(CORRELATIONS)}")
    tp = (5.0, 95.0)
    if obj.get("tornado_percentiles") is not None:
        tp = _pair(obj["tornado_percentiles"], "monte_carlo.tornado_percentiles")
        if not 0 < tp[0] < tp[1] < 100:
            raise ParameterError("monte_carlo.tornado_percentiles: need 0 < low < high < 100")
    return MonteCarloSpec(
        draws=_int(obj.get("draws", 0), "monte_carlo.draws", minimum=0, maximum=10_000_000),
        seed=_int(obj.get("seed", 1), "monte_carlo.seed", minimum=0),
        range_distribution=dist, consequence_correlation=corr, tornado_percentiles=tp,
    )


def _price_index(obj: Any) -> Any:
    if obj is None:
        return None
    if isinstance(obj, str):
        return _str(obj, "price_index")
    if isinstance(obj, Mapping) and obj:
        out = []
        for year, value in obj.items():
            try:
                y = int(year)
            except (TypeError, ValueError):
                raise ParameterError(f"price_index.{year}: expected a year") from None
            out.append((y, _num(value, f"price_index.{year}", minimum=1e-9)))
        return tuple(sorted(out))
    raise ParameterError(f"price_index: expected an index name or a mapping {{year: value}}, got {obj!r}")


def parse_parameter_set(doc: Mapping[str, Any], *, require_kind: bool = False) -> ParameterSet:
    """Validate a parameter document and return the immutable :class:`ParameterSet`.

    ``require_kind=True`` (new documents, the seeds) makes ``consequences.<item>.kind`` required; otherwise a
    missing kind means ``causal`` (module docstring).
    """
    _keys(doc, "", _TOP)
    start_year = _int(doc["start_year"], "start_year")
    horizon = _int(doc["horizon_years"], "horizon_years", minimum=1)
    if horizon > 200:
        raise ParameterError(f"horizon_years: {horizon} is more than 200 years")
    price_year = _int(doc["price_year"], "price_year")
    cohorts = doc["cohorts"]
    if not isinstance(cohorts, list) or not cohorts:
        raise ParameterError("cohorts: expected a non-empty list of {year, participants}")
    parsed_cohorts = []
    for k, c in enumerate(cohorts):
        _keys(c, f"cohorts[{k}]", {"year": True, "participants": True})
        year = _int(c["year"], f"cohorts[{k}].year")
        if not start_year <= year < start_year + horizon:
            raise ParameterError(f"cohorts[{k}].year: {year} is outside the horizon {start_year}–{start_year + horizon - 1}")
        parsed_cohorts.append((year, _int(c["participants"], f"cohorts[{k}].participants", minimum=0)))
    measure = None
    if doc.get("success_measure") is not None:
        sm = _keys(doc["success_measure"], "success_measure", {"name": True, "outcome": True, "rule": True, "description": False})
        rule = _str(sm["rule"], "success_measure.rule")
        if rule not in SUCCESS_RULES:
            raise ParameterError(f"success_measure.rule: {rule!r} is not one of {', '.join(SUCCESS_RULES)}")
        measure = SuccessMeasure(_str(sm["name"], "success_measure.name"), _str(sm["outcome"], "success_measure.outcome"),
                                 rule, str(sm.get("description", "")))
    sr = _keys(doc["success_rate"], "success_rate", {"value": True, "se": False, "source": False})
    value = _num(sr["value"], "success_rate.value")
    if not 0 <= value <= 1:
        raise ParameterError(f"success_rate.value: a share must be between 0 and 1, got {value:g}")
    course_years = _int(doc.get("course_years", 1), "course_years", minimum=1)
    consequences = _keys(doc["consequences"], "consequences",
                         {k: False for k in doc["consequences"]} if isinstance(doc["consequences"], Mapping) else {})
    parsed_cons = tuple(_consequence(item, obj, f"consequences.{item}", require_kind, course_years)
                        for item, obj in consequences.items())
    parsed_prices, price_specs = _prices(doc["prices"], price_year)
    tax = _tax(doc["tax"], parsed_cons) if doc.get("tax") is not None else None
    for c in parsed_cons:
        if c.item not in parsed_prices and not (tax and c.item in tax.taxable):
            raise ParameterError(f"prices.{c.item}: consequence item has no unit prices")
    refusion = _refusion(doc["refusion"], parsed_cons, parsed_prices) if doc.get("refusion") is not None else ()
    return ParameterSet(
        intervention=_str(doc["intervention"], "intervention"),
        title=str(doc.get("title", "")),
        target_group=_str(doc["target_group"], "target_group"),
        start_year=start_year,
        horizon_years=horizon,
        price_year=price_year,
        course_years=course_years,
        cohorts=tuple(parsed_cohorts),
        success_measure=measure,
        success_rate=Estimate(value, _num(sr["se"], "success_rate.se", minimum=0) if sr.get("se") is not None else None,
                              str(sr.get("source", ""))),
        costs=_lines(doc["costs"], "costs"),
        avoided_costs=_lines(doc.get("avoided_costs", []), "avoided_costs", avoided=True),
        consequences=parsed_cons,
        prices=parsed_prices,
        discounting=_discounting(doc.get("discounting")),
        document=copy.deepcopy(dict(doc)),
        price_specs=price_specs,
        refusion=refusion,
        tax=tax,
        monte_carlo=_monte_carlo(doc["monte_carlo"]) if doc.get("monte_carlo") is not None else MonteCarloSpec(),
        price_index=_price_index(doc.get("price_index")),
        fixed_costs=_fixed_costs(doc["fixed_costs"], start_year, horizon) if doc.get("fixed_costs") is not None else (),
        optimism_bias=_optimism_bias(doc["optimism_bias"]) if doc.get("optimism_bias") is not None else None,
        scenarios=_scenarios(doc, require_kind) if doc.get("scenarios") is not None else (),
        udvalg=_udvalg(doc["udvalg"], {c.item for c in parsed_cons}) if doc.get("udvalg") is not None else UdvalgSpec(),
    )


def _conversions(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    prov = doc.get("provenance")
    if not isinstance(prov, Mapping):
        return []
    conv = prov.get("conversions")
    return [c for c in conv if isinstance(c, Mapping)] if isinstance(conv, list) else []


def convert_profile(params: ParameterSet, item: str, *, to: str, reason: str,
                    units: list[float] | tuple[float, ...] | None = None,
                    se: list[float] | tuple[float, ...] | None = None, source: str | None = None,
                    by: str | None = None) -> ParameterSet:
    """A new parameter set in which consequence ``item`` is of kind ``to`` — the one way to change a kind.

    A causal effect per net success and a descriptive success-vs-non-success contrast are different
    quantities; no formula turns one into the other. Converting is therefore an analyst's statement, made
    explicitly: either the numbers were of the other kind all along (relabel: ``units`` omitted), or new
    values of the target kind replace them (``units``, optional ``se`` and ``source``). The step is refused
    when ``to`` is not a kind, equals the current kind (nothing to convert), ``item`` is unknown or ``reason``
    is empty; it is recorded in ``provenance.conversions`` (item, from, to, reason, the values before and
    after, the parent document's content hash, and ``by`` when given). The input is never modified.
    """
    if to not in CONSEQUENCE_KINDS:
        raise ParameterError(f"consequences.{item}.kind: cannot convert to {to!r} (allowed: {', '.join(CONSEQUENCE_KINDS)})")
    try:
        cons = params.consequence(item)
    except KeyError:
        raise ParameterError(f"consequences.{item}: not a consequence item of {params.intervention!r} "
                             f"(items: {', '.join(c.item for c in params.consequences)})") from None
    if cons.kind == to:
        raise ParameterError(f"consequences.{item}.kind: already {to}{'' if cons.kind_stated else ' (assumed)'}; "
                             "nothing to convert")
    if not isinstance(reason, str) or not reason.strip():
        raise ParameterError(f"consequences.{item}.kind: converting {cons.kind} → {to} needs a reason")
    doc = params.to_dict()
    old = doc["consequences"][item]
    entry: dict[str, Any] = dict(old) if isinstance(old, Mapping) else {"units": list(old)}
    entry["kind"] = to
    if units is not None:
        entry["units"] = [float(u) for u in units]
        entry.pop("unverified", None)  # new values: the old extrapolation no longer describes them
        entry.pop("extrapolation", None)
        if se is not None:
            entry["se"] = [float(x) for x in se]
        elif "se" in entry and len(entry["se"]) != len(entry["units"]):
            raise ParameterError(f"consequences.{item}.se: give se for the {len(entry['units'])} new units")
    elif se is not None:
        raise ParameterError(f"consequences.{item}.se: new standard errors need new units (a relabel keeps both)")
    if source is not None:
        entry["source"] = source
    doc["consequences"][item] = entry
    prov = doc.get("provenance")
    if prov is not None and not isinstance(prov, Mapping):
        raise ParameterError(f"provenance: expected a mapping to record the conversion of {item!r}, got {type(prov).__name__}")
    prov = dict(prov or {})
    record: dict[str, Any] = {"item": item, "from": cons.kind, "to": to, "reason": reason.strip(),
                              "units_before": list(cons.units), "units_after": list(entry["units"]),
                              "relabel": units is None, "parent_content_hash": params.content_hash}
    if by:
        record["by"] = by
    prov["conversions"] = [*(dict(c) for c in _conversions(doc)), record]
    doc["provenance"] = prov
    return parse_parameter_set(doc)


def check_kinds_kept(parent: ParameterSet, child: ParameterSet) -> None:
    """Raise :class:`ParameterError` if an item present in both has another kind in ``child`` without a
    matching ``provenance.conversions`` record (item, from, to) in ``child`` — an update keeps the kind — or a
    course-year profile present in both has another kind (course profiles have no conversion step)."""
    recorded = {(str(c.get("item")), str(c.get("from")), str(c.get("to"))) for c in _conversions(child.document)}
    before = parent.kinds()
    for cons in child.consequences:
        was = before.get(cons.item)
        if was is not None and was != cons.kind and (cons.item, was, cons.kind) not in recorded:
            raise ParameterError(f"consequences.{cons.item}.kind: changed from {was} to {cons.kind} without a recorded "
                                 "conversion (use convert_profile)")
    course_before = {item: p.kind for item, p in parent.course_profiles().items()}
    for item, profile in child.course_profiles().items():
        was = course_before.get(item)
        if was is not None and was != profile.kind:
            raise ParameterError(f"consequences.{item}.course.kind: changed from {was} to {profile.kind}; an update "
                                 "keeps the kind of a course-year profile")
