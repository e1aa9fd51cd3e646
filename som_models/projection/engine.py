"""Compiling a calculation document into arrays, and the vectorised evaluation used by the Monte Carlo.

:func:`compile_calculation` resolves everything that does not vary between draws: price-year conversion
(``amount · I(P)/I(y)``, :mod:`som_models.projection.prices`), refusion rules and their thresholds in the price
year (:mod:`som_models.projection.rules`), the discount factors, and the cohort exposure matrices

    E[j, t] = Σ_c N_c · [t = c − start + K − 1 + j]      (participants reaching consequence year j in year t)
    F[k, t] = Σ_c N_c · [t = c − start + k − 1]          (participants in course year k in year t)

for cohorts ``c`` of ``N_c`` participants, ``K`` course years and ``t = 0 … horizon−1`` years after start.

:func:`evaluate` computes, for ``D`` draws at once, the yearly net amount per payer ``Y[d, p, t]``:

    V[d, p, j] = Σ_i −u[d,i,j] · f[d,i] · price[i,p]                  consequences per successful person
                 ∓ refusion transfers (staircase, expensive cases; kommune −, stat +)
                 + Σ_i u[d,i,j] · taxable_i · share[i,p]   (tax, AM-bidrag on earned income, tilbageløb:
                                                              rules.tax_shares)
    W[d, p, k] = the same valuation of the course-year units v[d,i,k] (per participant)
    Y[d, p, t] = s[d] · Σ_j V[d,p,j] · E[j,t] + Σ_{k≤K} W[d,p,k] · F[k,t] + Σ_k C[d,p,k] · F[k,t] + G[p, t]

with ``s`` the success rate, ``u`` the consequence units, ``v`` the course-year units
(``consequences.<item>.course``: per participant, so not multiplied by ``s``), ``f`` the relative price factors
``C`` the cost per participant by payer and course year and ``G`` the one-off and fixed costs (``fixed_costs``,
kroner per calendar year, not scaled by participants). An ``optimism_bias`` section is applied first
(:mod:`som_models.projection.optimism`; ``Compiled.params`` is the adjusted set). The refusion rules value a course year with the
figures of consequence year 1 (``weeks_before`` / ``case_expense``: the nearest year the document states).
``NPV[d, p] = Σ_t Y[d,p,t] · δ_t``. :func:`som_models.projection.project`
computes the same quantities line by line (a separate implementation; a test checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from som_models.parameters.schema import PAYERS, ParameterError, ParameterSet, RefusionGroup
from som_models.projection.committees import UdvalgMap, resolve_udvalg
from som_models.projection.optimism import apply_optimism_bias
from som_models.projection.optimism import describe as describe_optimism
from som_models.projection.prices import PriceIndex, load_price_index
from som_models.projection.rules import ExpensiveCaseRule, StaircaseRule, load_rule, tax_shares
from som_models.results_base import ResultDisplay, frame_lines, render_summary, short_repr

FM2021 = ((1, 0.035), (36, 0.025), (71, 0.015))
KOMMUNE, REGION, STAT = 0, 1, 2
PAYBACK_TOLERANCE = 1e-6  # kroner: a cumulative net of −0.000001 kr counts as paid back (rounding noise)


def discount_factors(schedule: Any, years: int) -> np.ndarray:
    """Factors δ_t for t = 0 … years−1: ``δ_t = Π_{s=1..t} 1/(1 + r(s))`` (t = 0 is the start year, δ_0 = 1).

    ``fm2021`` (default): the Finance Ministry schedule since 2021, r = 3.5 % for years 1–35, 2.5 % for 36–70,
    1.5 % after (shared/research/domain.md §2); ``none``: r = 0; or steps ``((from_year, rate), …)``.
    """
    steps: tuple[tuple[int, float], ...]
    if schedule in (None, "fm2021"):
        steps = FM2021
    elif schedule == "none":
        steps = ((1, 0.0),)
    else:
        steps = tuple(schedule)
    rates = np.zeros(years)
    for t in range(1, years):
        rates[t] = [r for start, r in steps if start <= t][-1]
    return np.cumprod(1.0 / (1.0 + rates))


def describe_discounting(schedule: Any) -> str:
    """The discount schedule in words, e.g. ``3.5 % (years 1–35), 2.5 % (36–70), 1.5 % (71+) — fm2021``."""
    if schedule == "none":
        return "none (0 %)"
    steps = FM2021 if schedule in (None, "fm2021") else tuple(schedule)
    parts = []
    for k, (start, rate) in enumerate(steps):
        end = steps[k + 1][0] - 1 if k + 1 < len(steps) else None
        span = f"{start}+" if end is None else f"{start}–{end}"
        parts.append(f"{100 * rate:g} % ({'years ' if k == 0 else ''}{span})")
    label = " — Finance Ministry schedule since 2021" if schedule in (None, "fm2021") else ""
    return ", ".join(parts) + label


@dataclass(frozen=True)
class CostSpec:
    """A cost line in price-year kroner per participant; ``avoided`` lines are positive."""

    course_year: int
    payer: int
    amount: float
    range: tuple[float, float] | None
    item: str
    committee: str | None
    avoided: bool
    label: str


@dataclass(frozen=True)
class FixedSpec:
    """A one-off or fixed yearly cost in price-year kroner per year, in years ``t_first … t_last`` after start;
    ``low``/``high`` its Monte Carlo range in the same kroner (both ``amount`` when the line states none)."""

    payer: int
    amount: float
    t_first: int
    t_last: int
    item: str
    committee: str | None
    cashable: bool
    label: str
    low: float = 0.0
    high: float = 0.0


@dataclass(frozen=True, eq=False)
class StaircaseSpec:
    group: RefusionGroup
    rule: StaircaseRule
    items: tuple[int, ...]
    weeks_before: np.ndarray  # (J,)


@dataclass(frozen=True, eq=False)
class ExpensiveSpec:
    group: RefusionGroup
    rule: ExpensiveCaseRule
    items: tuple[int, ...]
    case_expense: np.ndarray  # (J,)
    thresholds: tuple[float, ...]
    label: str


@dataclass(frozen=True, eq=False, repr=False)
class Compiled:
    """Everything about a calculation that does not vary between Monte Carlo draws (arrays documented above)."""

    params: ParameterSet
    first: int
    n_years: int
    factors: np.ndarray         # (T,)
    items: tuple[str, ...]      # consequence items (I)
    units: np.ndarray           # (I, J)
    se: np.ndarray              # (I, J)
    lengths: tuple[int, ...]    # consequence years per item
    prices: np.ndarray          # (I, P) price-year kroner per unit
    price_range: np.ndarray     # (I, 2) relative factors
    udvalg: UdvalgMap           # item -> payer -> {udvalg: share} (:func:`.committees.resolve_udvalg`)
    costs: tuple[CostSpec, ...]
    staircase: tuple[StaircaseSpec, ...]
    expensive: tuple[ExpensiveSpec, ...]
    tax_share: np.ndarray       # (I, P) kroner to each payer per krone of changed income (tax, AM-bidrag, tilbageløb)
    taxable: np.ndarray         # (I,)
    exposure: np.ndarray        # (J, T)
    cost_exposure: np.ndarray   # (K, T)
    course_units: np.ndarray    # (I, K) units per participant in course years 1 … K (0 = no course effect)
    course_se: np.ndarray       # (I, K)
    index: PriceIndex | None
    notes: tuple[str, ...]
    warnings: tuple[str, ...]
    fixed_lines: tuple[FixedSpec, ...] = ()
    fixed: np.ndarray | None = None  # (P, T) one-off and fixed costs per payer and year; None = none

    @property
    def has_tax(self) -> bool:
        return bool(np.any(self.taxable)) and bool(np.any(self.tax_share))

    def __repr__(self) -> str:
        return short_repr("Compiled", {"intervention": self.params.intervention, "items": len(self.items),
                                       "years": self.n_years, "costs": len(self.costs),
                                       "refusion": len(self.staircase) + len(self.expensive)})


def _per_year(group: RefusionGroup, J: int) -> np.ndarray:
    return np.array([group.value_for_year(j) for j in range(1, J + 1)], dtype=float)


def _loaded(index: PriceIndex | None, where: str) -> PriceIndex:
    """``index`` itself; an error naming ``where`` when a price-year conversion is asked for without an index."""
    if index is None:
        raise ParameterError(f"{where}: converting between price years needs a price index, but none is loaded")
    return index


def compile_calculation(params: ParameterSet) -> Compiled:
    """Resolve prices, rules, thresholds and exposures of ``params`` (raises ParameterError naming the field)."""
    params = apply_optimism_bias(params)
    first, T, K = params.start_year, params.horizon_years, params.course_years
    items = tuple(c.item for c in params.consequences)
    J = max(len(c.units) for c in params.consequences) if params.consequences else 1
    n_items = len(items)
    units = np.zeros((n_items, J))
    se = np.zeros((n_items, J))
    for i, c in enumerate(params.consequences):
        units[i, :len(c.units)] = c.units
        if c.se is not None:
            se[i, :len(c.se)] = c.se
    course_units = np.zeros((n_items, K))
    course_se = np.zeros((n_items, K))
    for i, c in enumerate(params.consequences):
        if c.course is not None:
            course_units[i] = c.course.units
            if c.course.se is not None:
                course_se[i] = c.course.se
    notes: list[str] = [params.describe_kinds()]  # both kinds are applied per successful person (N · s · units)
    if params.optimism_bias is not None:
        notes.append(describe_optimism(params.optimism_bias))
    course_note = params.describe_course()
    if course_note:
        notes.append(course_note + " — projected in the course years for every participant (N · units, no success "
                                   "rate); refusion with the figures of consequence year 1")
    unverified_note = params.describe_unverified()
    if unverified_note:
        notes.append(unverified_note + " — projected with their wider standard errors")
    warnings: list[str] = []
    years_needed = ({s.price_year for s in params.price_specs.values()}
                    | {c.price_year for c in params.costs + params.avoided_costs if c.price_year}
                    | {f.price_year for f in params.fixed_costs if f.price_year})
    index = None
    if (years_needed - {params.price_year} or params.price_index is not None
            or any(g.kind == "expensive_cases" for g in params.refusion)):
        try:
            index = load_price_index(params.price_index)
        except ParameterError:
            if years_needed - {params.price_year} or params.price_index is not None:
                raise
    prices = np.zeros((n_items, len(PAYERS)))
    price_range = np.ones((n_items, 2))
    for i, item in enumerate(items):
        if item not in params.prices:
            continue
        spec = params.price_specs.get(item)
        f = 1.0
        if spec is not None and spec.price_year != params.price_year:
            where = f"prices.{item}.price_year"
            pindex = _loaded(index, where)
            f = pindex.factor(spec.price_year, params.price_year, where)
            notes.append(f"prices.{item}: {spec.price_year} → {params.price_year} prices × {f:.4f} ({pindex.name})")
            warnings.extend(pindex.warnings_for(spec.price_year, params.price_year))
        for p, payer in enumerate(PAYERS):
            prices[i, p] = params.prices[item].get(payer, 0.0) * f
        if spec is not None and spec.range is not None:
            price_range[i] = spec.range
    udvalg = resolve_udvalg(params)
    notes.extend(udvalg.notes)
    costs = []
    for kind, lines in (("costs", params.costs), ("avoided_costs", params.avoided_costs)):
        avoided = kind == "avoided_costs"
        for k, line in enumerate(lines):
            f = _price_factor(index, line.price_year, params.price_year, f"{kind}[{k}]", notes, warnings)
            amount = line.amount * f
            rng: tuple[float, float] | None = None if line.range is None else (line.range[0] * f, line.range[1] * f)
            if avoided:
                amount = abs(amount)
                if rng is not None:
                    low, high = sorted((abs(rng[0]), abs(rng[1])))
                    rng = (low, high)
            label = line.item or ("avoided_cost" if avoided else "intervention_cost")
            if label in items:
                raise ParameterError(f"{kind}[{k}].item: {label!r} is also a consequence item; use another label")
            costs.append(CostSpec(line.course_year, PAYERS.index(line.payer), amount, rng, label, line.committee, avoided,
                                  f"{kind}[{k}] {label} (course year {line.course_year}, {line.payer})"))
    fixed_lines, fixed = _fixed(params, index, items, notes, warnings)
    staircase: list[StaircaseSpec] = []
    expensive: list[ExpensiveSpec] = []
    for group in params.refusion:
        idx = tuple(items.index(i) for i in group.items)
        rule = load_rule(group.kind, group.rule, group.version, path=group.path)
        notes.append(f"{group.path}: rule {rule.id} v{rule.version} ({rule.status or 'status not stated'}) "
                     f"on {', '.join(group.items)}")
        if group.kind == "staircase":
            if not isinstance(rule, StaircaseRule):
                raise ParameterError(f"{group.path}: a staircase group got a {type(rule).__name__} rule {rule.id!r}")
            staircase.append(StaircaseSpec(group, rule, idx, _per_year(group, J)))
        else:
            if not isinstance(rule, ExpensiveCaseRule):
                raise ParameterError(f"{group.path}: an expensive-case group got a {type(rule).__name__} rule {rule.id!r}")
            thresholds, note = rule.thresholds(params.price_year, index, group.path)
            notes.append(note)
            if "estimate" in note:
                warnings.append(note)
            label = f"refusion:{rule.id}" if rule.id != "inline" else "refusion:expensive_cases"
            if any(e.label == label for e in expensive):
                label = f"{label}#{len(expensive) + 1}"
            expensive.append(ExpensiveSpec(group, rule, idx, _per_year(group, J), thresholds, label))
    tax_share = np.zeros((n_items, len(PAYERS)))
    taxable = np.zeros(n_items)
    if params.tax is not None:
        for item, kr in params.tax.taxable.items():
            i = items.index(item)
            taxable[i] = kr
            shares = tax_shares(params.tax, item)
            for p, payer in enumerate(PAYERS):
                tax_share[i, p] = shares.to_payer(payer)
    exposure = np.zeros((J, T))
    kmax = max([K] + [c.course_year for c in costs])
    cost_exposure = np.zeros((kmax, T))
    for year, n in params.cohorts:
        for j in range(1, J + 1):
            t = year - first + K - 1 + j
            if 0 <= t < T:
                exposure[j - 1, t] += n
        for k in range(1, kmax + 1):
            t = year - first + k - 1
            if 0 <= t < T:
                cost_exposure[k - 1, t] += n
    return Compiled(params, first, T, discount_factors(params.discounting, T), items, units, se,
                    tuple(len(c.units) for c in params.consequences), prices, price_range, udvalg, tuple(costs),
                    tuple(staircase), tuple(expensive), tax_share, taxable, exposure, cost_exposure, course_units,
                    course_se, index, tuple(notes), tuple(dict.fromkeys(warnings)), fixed_lines=fixed_lines,
                    fixed=fixed)


def _price_factor(index: PriceIndex | None, quoted: int | None, price_year: int, line: str, notes: list[str],
                  warnings: list[str]) -> float:
    """The factor ``I(price_year)/I(quoted)`` converting a cost line quoted in another price year (1 when it is
    quoted in the document's), with a note of the conversion and the index's warnings (years it extrapolates)."""
    if quoted is None or quoted == price_year:
        return 1.0
    where = f"{line}.price_year"
    pindex = _loaded(index, where)
    f = pindex.factor(quoted, price_year, where)
    notes.append(f"{line}: {quoted} → {price_year} prices × {f:.4f} ({pindex.name})")
    warnings.extend(pindex.warnings_for(quoted, price_year))
    return f


def _fixed(params: ParameterSet, index: PriceIndex | None, items: tuple[str, ...], notes: list[str],
           warnings: list[str]) -> tuple[tuple[FixedSpec, ...], np.ndarray | None]:
    """The ``fixed_costs`` lines in price-year kroner and ``G[p, t]``, their sum per payer and year (None if none)."""
    if not params.fixed_costs:
        return (), None
    G = np.zeros((len(PAYERS), params.horizon_years))
    out = []
    for k, line in enumerate(params.fixed_costs):
        f = _price_factor(index, line.price_year, params.price_year, f"fixed_costs[{k}]", notes, warnings)
        label = line.item or ("one_off_cost" if line.one_off else "fixed_cost")
        if label in items:
            raise ParameterError(f"fixed_costs[{k}].item: {label!r} is also a consequence item; use another label")
        t0, t1 = line.first_year - params.start_year, line.last_year - params.start_year
        low, high = line.range if line.range is not None else (line.amount, line.amount)
        spec = FixedSpec(PAYERS.index(line.payer), line.amount * f, t0, t1, label, line.committee, line.cashable,
                         f"fixed_costs[{k}] {label} ({line.first_year}"
                         f"{'' if line.one_off else f'–{line.last_year}'}, {line.payer})", low * f, high * f)
        G[spec.payer, t0:t1 + 1] += spec.amount
        out.append(spec)
    return tuple(out), G


@dataclass(frozen=True, eq=False, repr=False)
class Evaluation(ResultDisplay):
    """Draw-wise results: ``yearly[d, p, t]`` (nominal), ``npv[d, p]`` (payers in PAYERS order), totals.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` has one row per draw with the NPV per payer
    and in total; ``summary()`` the mean NPV per payer.
    """

    yearly: np.ndarray
    npv: np.ndarray

    @property
    def npv_total(self) -> np.ndarray:
        return self.npv.sum(axis=1)

    def _repr_fields(self) -> dict[str, Any]:
        return {"draws": self.npv.shape[0], "payers": self.npv.shape[1], "years": self.yearly.shape[2],
                "mean_npv_total": float(self.npv_total.mean()) if self.npv.shape[0] else None}

    def to_polars(self) -> pl.DataFrame:
        """``draw`` and the NPV of each payer (``kommune``, ``region``, ``stat``) and ``total``."""
        cols = {"draw": np.arange(self.npv.shape[0], dtype=np.int64)}
        cols.update({p: self.npv[:, k] for k, p in enumerate(PAYERS)})
        cols["total"] = self.npv_total
        return pl.DataFrame(cols)

    def summary(self) -> str:
        """Draws, years and the mean NPV per payer over the draws."""
        means = self.to_polars().drop("draw").mean()
        info = [("Draws", self.npv.shape[0]), ("Years", self.yearly.shape[2])]
        return render_summary("Projection evaluated per draw (NPV, kroner)", info,
                              frame_lines(means.rename({c: f"mean {c}" for c in means.columns})))


def _valued(c: Compiled, units: np.ndarray, price_factor: np.ndarray, weeks_before: list[np.ndarray],
            case_expense: list[np.ndarray]) -> np.ndarray:
    """``V[d, p, j]``: kroner per person of ``units`` (D, I, J′) by payer — savings at the unit prices, the refusion
    transfers (``weeks_before`` / ``case_expense``: per refusion group, one value per column j) and the tax."""
    saving = -units * price_factor[:, :, None]                      # (D, I, J′), units saved × price factor
    V = np.einsum("dij,ip->dpj", saving, c.prices)                  # (D, P, J′)
    for st, weeks in zip(c.staircase, weeks_before, strict=True):
        for i in st.items:
            u = units[:, i, :]
            share = st.rule.weeks_share(weeks[None, :], np.abs(u))   # S(W_j, |u|)
            x = -np.sign(u) * price_factor[:, i, None] * c.prices[i, KOMMUNE] * share
            V[:, KOMMUNE, :] -= x
            V[:, STAT, :] += x
    for ex, expense in zip(c.expensive, case_expense, strict=True):
        d = sum(saving[:, i, :] * c.prices[i, KOMMUNE] for i in ex.items)  # (D, J′) kommune gross saving
        e0 = expense[None, :]
        dr = ex.rule.refusion(e0, ex.thresholds) - ex.rule.refusion(e0 - d, ex.thresholds)
        V[:, KOMMUNE, :] -= dr
        V[:, STAT, :] += dr
    if c.has_tax:
        # Σ_i u[d,i,j] · taxable_i · share[i,p]: income tax, AM-bidrag (earned income only) and tilbageløb
        V += np.einsum("dij,i,ip->dpj", units, c.taxable, c.tax_share)
    return V


def evaluate(c: Compiled, success: np.ndarray, units: np.ndarray, price_factor: np.ndarray,
             cost_amounts: np.ndarray, course_units: np.ndarray | None = None,
             fixed_amounts: np.ndarray | None = None) -> Evaluation:
    """Evaluate ``D`` draws: ``success`` (D,), ``units`` (D, I, J), ``price_factor`` (D, I), ``cost_amounts`` (D, L),
    ``course_units`` (D, I, K; default the point values of every draw), ``fixed_amounts`` (D, F: each fixed-cost
    line's yearly amount per draw, in ``c.fixed_lines`` order; default ``c.fixed``, the point amounts)."""
    D = success.shape[0]
    P = len(PAYERS)
    # consequences per successful person: V[d, p, j] = Σ_i −u[d,i,j] · f[d,i] · price[i,p] (± refusion, tax)
    V = _valued(c, units, price_factor, [st.weeks_before for st in c.staircase],
                [ex.case_expense for ex in c.expensive])
    yearly = success[:, None, None] * (V @ c.exposure)               # (D, P, T)
    if np.any(c.course_units) or (course_units is not None and np.any(course_units)):
        K = c.course_units.shape[1]
        v = np.broadcast_to(c.course_units, (D, *c.course_units.shape)) if course_units is None else course_units
        # course years: per participant (no success rate), refusion with consequence year 1's figures
        W = _valued(c, v, price_factor, [np.full(K, st.weeks_before[0]) for st in c.staircase],
                    [np.full(K, ex.case_expense[0]) for ex in c.expensive])
        yearly = yearly + W @ c.cost_exposure[:K]
    if c.costs:
        kmax = c.cost_exposure.shape[0]
        C = np.zeros((D, P, kmax))
        for k, line in enumerate(c.costs):
            C[:, line.payer, line.course_year - 1] += cost_amounts[:, k]
        yearly = yearly + C @ c.cost_exposure
    if fixed_amounts is not None and c.fixed_lines:
        yearly = yearly + fixed_by_draw(c, fixed_amounts)           # one-off and fixed costs, drawn per line
    elif c.fixed is not None:
        yearly = yearly + c.fixed[None, :, :]                        # one-off and fixed costs, same in every draw
    return Evaluation(yearly, yearly @ c.factors)


def fixed_by_draw(c: Compiled, fixed_amounts: np.ndarray) -> np.ndarray:
    """``G[d, p, t]``: the fixed-cost lines' amounts of each draw (``fixed_amounts`` (D, F)) in their payer and
    years (each line's one draw applies to all its years)."""
    assert c.fixed is not None
    G = np.zeros((fixed_amounts.shape[0], *c.fixed.shape))
    for k, fx in enumerate(c.fixed_lines):
        G[:, fx.payer, fx.t_first:fx.t_last + 1] += fixed_amounts[:, k][:, None]
    return G


def base_inputs(c: Compiled) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The deterministic inputs as one draw."""
    return (np.array([c.params.success_rate.value]), c.units[None, :, :].copy(), np.ones((1, len(c.items))),
            np.array([[line.amount for line in c.costs]]).reshape(1, len(c.costs)))


def payback_years(c: Compiled, yearly_total: np.ndarray) -> np.ndarray:
    """Per draw: index t of the first year, at or after the first year with a net cost, in which the cumulative
    discounted net is ≥ 0; −1 if none (``yearly_total`` is (D, T) nominal)."""
    disc = yearly_total * c.factors[None, :]
    cum = np.cumsum(disc, axis=1)
    seen = np.maximum.accumulate(disc < 0, axis=1)
    ok = seen & (cum >= -PAYBACK_TOLERANCE)
    first = np.argmax(ok, axis=1)
    return np.where(ok.any(axis=1), first, -1)
