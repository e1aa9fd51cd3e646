"""Monte Carlo over the uncertain inputs of a calculation document, and one-way sensitivities (tornado).

Draws (vectorised with numpy, seeded; draws are generated in fixed chunks of ``CHUNK`` with one
``SeedSequence(seed).spawn`` child per chunk, so a result depends only on ``seed`` and ``draws``):

* success rate ``s = clip(s₀ + σ_s·z, 0, 1)``, ``z ~ N(0, 1)`` (``success_rate.se``);
* consequence units ``u[i, j] = u₀[i, j] + σ[i, j]·z`` with one ``z`` per item and draw
  (``consequence_correlation: item``, default: the year-by-year estimates of one item move together) or one
  per item, year and draw (``independent``);
* course-year units (``consequences.<item>.course``, per participant) ``v[i, k] = v₀[i, k] + σ[i, k]·z`` — with
  ``item`` correlation the same ``z`` as the item's consequence years (the course-year and later effects of one
  item move together), with ``independent`` one ``z`` per item, course year and draw (drawn after the costs,
  so a document without course-year effects gets the same draws as before);
* prices: one relative factor per item and draw from ``prices.<item>.range = [low, high]`` — triangular with
  mode 1 (default) or uniform; costs: the per-participant amount of each line from ``costs[k].range``,
  triangular with mode at the amount, or uniform.

Reported as WSIPP reports its risk analysis (shared/research/domain.md §3): percentiles of the NPV per payer
and in total, and the probability that the intervention at least breaks even (``NPV ≥ 0``) overall and per
payer — for payers with a stake only: a payer on whom no flow falls in any draw (every yearly amount 0) gets
``None`` ("no stake"; listed in ``no_stake``), not a meaningless 100 %. The same per udvalg: every draw is also
booked to the accounts (payer, udvalg) of the udvalg ledger (:func:`.ledger.account_flows`, whose accounts add
up to the payer's net in every draw), and ``udvalg`` gives per account with a stake (a flow in some draw) the
mean, p5, p50, p95 and P(NPV ≥ 0); the named udvalg without any flow are listed in ``udvalg_no_stake``.
The tornado table sets one uncertain input at a time to its low and high percentile
(``monte_carlo.tornado_percentiles``, default 5 % and 95 %) with every other input at its point value, and
sorts by the swing of the total NPV. With no uncertainty every draw equals the deterministic projection.

**Unverified consequence years** (``consequences.<item>.unverified``: years no evaluation observed, extrapolated
by :mod:`som_models.extrapolation`) are drawn like the others, from their own — wider — standard errors. The
result marks them: ``unverified`` names them per item, ``unverified_npv`` is the part of the deterministic NPV
that rests on them (``NPV − NPV with the unverified years' units set to 0``, per payer and in total), and the
tornado has one row per item for those years alone (``consequence:<item> unverified years …``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from som_models.extrapolation import year_span
from som_models.parameters.schema import PAYERS, ParameterSet
from som_models.projection.committees import UNASSIGNED
from som_models.projection.engine import Compiled, base_inputs, compile_calculation, evaluate, payback_years
from som_models.projection.ledger import account_flows, label
from som_models.results_base import ResultDisplay, fmt, frame_lines, render_summary

CHUNK = 4096
PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
KEYS = (*PAYERS, "total")


@dataclass(frozen=True)
class TornadoRow:
    """NPV (total and per payer) with one input at its low / high percentile, the rest at point values."""

    input: str
    low_value: float
    high_value: float
    npv_low: float
    npv_high: float
    swing: float
    npv_low_by_payer: Mapping[str, float] = field(default_factory=dict)
    npv_high_by_payer: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False, repr=False)
class MonteCarloResult(ResultDisplay):
    """Distribution of the NPV per payer (``npv_draws[:, k]`` for ``KEYS[k]``) and its summaries.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` has one row per payer and the total
    (deterministic NPV, mean, percentiles, P(NPV ≥ 0)); ``summary()`` adds the draws, seed, payback and the
    largest tornado swings.
    """

    intervention: str
    draws: int
    seed: int
    range_distribution: str
    consequence_correlation: str
    deterministic_npv: Mapping[str, float]
    mean: Mapping[str, float]
    percentiles: Mapping[str, Mapping[float, float]]
    #: P(NPV ≥ 0) per payer and in total; None for a payer with no stake (no flow in any draw)
    prob_break_even: Mapping[str, float | None]
    prob_payback: float
    median_payback_year: int | None
    tornado: tuple[TornadoRow, ...]
    tornado_percentiles: tuple[float, float]
    npv_draws: np.ndarray
    #: consequence item → its unverified (extrapolated) consequence years
    unverified: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: the part of the deterministic NPV resting on the unverified years, per payer and in total
    unverified_npv: Mapping[str, float] = field(default_factory=dict)
    #: payers on whom no flow falls in any draw (their P(NPV ≥ 0) is None)
    no_stake: tuple[str, ...] = ()
    #: per account ``payer/udvalg`` with a stake: mean, p5, p50, p95 of its NPV and P(NPV ≥ 0)
    udvalg: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: the named udvalg of the document on which no flow falls in any draw
    udvalg_no_stake: tuple[str, ...] = ()

    def _repr_fields(self) -> dict[str, Any]:
        return {"intervention": self.intervention, "draws": self.draws, "seed": self.seed,
                "mean_npv_total": self.mean.get("total"), "p_break_even": self.prob_break_even.get("total")}

    def to_polars(self) -> pl.DataFrame:
        """``payer`` (kommune, region, stat, total), ``deterministic_npv``, ``mean``, ``p5`` … ``p95`` (the
        percentiles of :data:`PERCENTILES`) and ``p_break_even`` = P(NPV ≥ 0)."""
        qs = sorted({q for d in self.percentiles.values() for q in d})
        rows = [{"payer": k, "deterministic_npv": self.deterministic_npv[k], "mean": self.mean[k],
                 **{f"p{q:g}": self.percentiles[k][q] for q in qs}, "p_break_even": self.prob_break_even[k]}
                for k in KEYS if k in self.mean]
        schema = {"payer": pl.Utf8, "deterministic_npv": pl.Float64, "mean": pl.Float64,
                  **{f"p{q:g}": pl.Float64 for q in qs}, "p_break_even": pl.Float64}
        return pl.DataFrame(rows, schema=schema)

    def summary(self, *, tornado_rows: int = 5) -> str:
        """Draws, seed, how inputs were drawn, the NPV distribution per payer, P(break even), payback, tornado."""
        info = [("Intervention", self.intervention), ("Draws", self.draws), ("Seed", self.seed),
                ("Price and cost ranges", self.range_distribution),
                ("Consequence correlation", self.consequence_correlation),
                ("P(payback within horizon)", f"{self.prob_payback:.3f}"),
                ("Median payback year", self.median_payback_year if self.median_payback_year is not None
                 else "none (fewer than half the draws pay back)")]
        table = self.to_polars().with_columns(
            pl.Series("p_break_even", ["no stake" if p is None else f"{p:.3f}"
                                       for p in self.to_polars().get_column("p_break_even").to_list()]))
        body = ["NPV (kroner, discounted):"] + frame_lines(
            table, labels={"deterministic_npv": "point", "p_break_even": "P(NPV ≥ 0)"})
        footer = []
        if self.udvalg:
            footer.append("P(NPV ≥ 0) by udvalg: " + ", ".join(f"{k} {v['prob_break_even']:.3f}"
                                                              for k, v in self.udvalg.items()))
        if self.unverified:
            footer.append("Unverified consequence years (no data; extrapolated, drawn with their wider SEs): "
                          + ", ".join(f"{item} {year_span(years)}" for item, years in self.unverified.items())
                          + f"; they contribute {fmt(self.unverified_npv.get('total', 0.0))} kr to the total NPV (point)")
        if self.tornado:
            lo, hi = self.tornado_percentiles
            footer.append(f"Largest one-way sensitivities (total NPV with the input at its p{lo:g} / p{hi:g}):")
            footer += [f"  {r.input}: {fmt(r.npv_low)} / {fmt(r.npv_high)} (swing {fmt(r.swing)})"
                       for r in self.tornado[:tornado_rows]]
        return render_summary(f"Monte Carlo — {self.intervention}", info, body, footer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "draws": self.draws, "seed": self.seed, "range_distribution": self.range_distribution,
            "consequence_correlation": self.consequence_correlation,
            "deterministic_npv": dict(self.deterministic_npv), "mean": dict(self.mean),
            "percentiles": {k: {f"p{q:g}": v for q, v in d.items()} for k, d in self.percentiles.items()},
            "prob_break_even": dict(self.prob_break_even), "no_stake": list(self.no_stake),
            "prob_payback_within_horizon": self.prob_payback, "median_payback_year": self.median_payback_year,
            "tornado_percentiles": list(self.tornado_percentiles),
            "tornado": [{"input": r.input, "low_value": r.low_value, "high_value": r.high_value, "npv_low": r.npv_low,
                         "npv_high": r.npv_high, "swing": r.swing, "npv_low_by_payer": dict(r.npv_low_by_payer),
                         "npv_high_by_payer": dict(r.npv_high_by_payer)} for r in self.tornado],
            "unverified": {item: list(years) for item, years in self.unverified.items()},
            "unverified_npv": dict(self.unverified_npv),
            "udvalg": {k: dict(v) for k, v in self.udvalg.items()}, "udvalg_no_stake": list(self.udvalg_no_stake),
        }


def _from_uniform(q: np.ndarray, low: np.ndarray, mode: np.ndarray, high: np.ndarray, dist: str) -> np.ndarray:
    """Inverse CDF of triangular(low, mode, high) or uniform(low, high) at ``q`` (degenerate ranges → mode)."""
    width = high - low
    if dist == "uniform":
        return np.where(width > 0, low + q * width, mode)
    safe = np.where(width > 0, width, 1.0)
    fc = (mode - low) / safe
    left = low + np.sqrt(np.clip(q * safe * (mode - low), 0, None))
    right = high - np.sqrt(np.clip((1 - q) * safe * (high - mode), 0, None))
    return np.where(width > 0, np.where(q < fc, left, right), mode)


class _Inputs:
    """The point values and uncertainty of a compiled calculation, as arrays."""

    def __init__(self, c: Compiled, dist: str):
        self.c = c
        self.dist = dist
        self.s0 = c.params.success_rate.value
        self.s_se = c.params.success_rate.se or 0.0
        self.lo = c.price_range[:, 0]
        self.hi = c.price_range[:, 1]
        self.cost0 = np.array([line.amount for line in c.costs], dtype=float)
        self.cost_lo = np.array([line.range[0] if line.range else line.amount for line in c.costs], dtype=float)
        self.cost_hi = np.array([line.range[1] if line.range else line.amount for line in c.costs], dtype=float)
        self.fixed0 = np.array([fx.amount for fx in c.fixed_lines], dtype=float)
        self.fixed_lo = np.array([fx.low for fx in c.fixed_lines], dtype=float)
        self.fixed_hi = np.array([fx.high for fx in c.fixed_lines], dtype=float)
        #: whether any fixed-cost line has a range (only then are fixed amounts drawn — after every other input,
        #: so documents without fixed-cost ranges keep exactly their earlier draws)
        self.fixed_drawn = bool(np.any(self.fixed_hi > self.fixed_lo))

    def draw(self, rng: np.random.Generator, n: int, correlation: str):
        c = self.c
        s = np.clip(self.s0 + self.s_se * rng.standard_normal(n), 0.0, 1.0)
        n_items, n_years = c.units.shape
        z = rng.standard_normal((n, n_items, 1) if correlation == "item" else (n, n_items, n_years))
        units = c.units[None, :, :] + c.se[None, :, :] * z
        pf = _from_uniform(rng.random((n, n_items)), self.lo[None, :], np.ones((1, n_items)), self.hi[None, :], self.dist)
        L = len(c.costs)
        costs = _from_uniform(rng.random((n, L)), self.cost_lo[None, :], self.cost0[None, :], self.cost_hi[None, :], self.dist)
        course = None
        if np.any(c.course_se):
            zc = z[:, :, :1] if correlation == "item" else rng.standard_normal((n, n_items, c.course_units.shape[1]))
            course = c.course_units[None, :, :] + c.course_se[None, :, :] * zc
        fixed = None
        if self.fixed_drawn:
            fixed = _from_uniform(rng.random((n, len(self.fixed0))), self.fixed_lo[None, :], self.fixed0[None, :],
                                  self.fixed_hi[None, :], self.dist)
        return s, units, pf, costs, course, fixed

    def quantile_value(self, kind: str, k: int, q: float):
        """The value of one input at quantile ``q`` (for the tornado)."""
        if kind == "success_rate":
            return float(np.clip(self.s0 + self.s_se * NormalDist().inv_cdf(q), 0, 1))
        if kind in ("consequence", "unverified", "course"):
            return NormalDist().inv_cdf(q)  # z shift applied to all years of the item
        if kind == "price":
            return float(_from_uniform(np.array(q), np.array(self.lo[k]), np.array(1.0), np.array(self.hi[k]), self.dist))
        if kind == "fixed":
            return float(_from_uniform(np.array(q), np.array(self.fixed_lo[k]), np.array(self.fixed0[k]),
                                       np.array(self.fixed_hi[k]), self.dist))
        return float(_from_uniform(np.array(q), np.array(self.cost_lo[k]), np.array(self.cost0[k]), np.array(self.cost_hi[k]),
                                   self.dist))


def _summaries(npv: np.ndarray) -> tuple[dict, dict, dict]:
    mean = {k: float(npv[:, n].mean()) for n, k in enumerate(KEYS)}
    pct = {k: {q: float(v) for q, v in zip(PERCENTILES, np.percentile(npv[:, n], PERCENTILES), strict=False)}
           for n, k in enumerate(KEYS)}
    prob = {k: float(np.mean(npv[:, n] >= 0)) for n, k in enumerate(KEYS)}
    return mean, pct, prob


def _npv4(ev) -> np.ndarray:
    return np.column_stack([ev.npv, ev.npv.sum(axis=1)])


def tornado(c: Compiled, dist: str, percentiles: tuple[float, float]) -> tuple[TornadoRow, ...]:
    """One-way sensitivities of the NPV, evaluated as one batch of designed draws."""
    inp = _Inputs(c, dist)
    s, u, pf, costs = base_inputs(c)
    specs: list[tuple[str, str, int]] = []
    if inp.s_se > 0:
        specs.append(("success_rate", "success_rate", -1))
    for i, item in enumerate(c.items):
        if np.any(c.se[i] > 0):
            specs.append((f"consequence:{item} (total units)", "consequence", i))
    masks = unverified_masks(c)
    for i, item in enumerate(c.items):
        if item in masks and np.any(c.se[i][masks[item]] > 0):
            years = [int(j) + 1 for j in np.flatnonzero(masks[item])]
            specs.append((f"consequence:{item} unverified years {year_span(years)} (total units)", "unverified", i))
    for i, item in enumerate(c.items):
        if np.any(c.course_se[i] > 0):
            specs.append((f"course:{item} (total units per participant)", "course", i))
    for i, item in enumerate(c.items):
        if inp.hi[i] > inp.lo[i] and np.any(c.prices[i]):
            specs.append((f"price:{item}", "price", i))
    for j, line in enumerate(c.costs):
        if inp.cost_hi[j] > inp.cost_lo[j]:
            specs.append((f"cost:{line.label}", "cost", j))
    for j, fx in enumerate(c.fixed_lines):
        if inp.fixed_hi[j] > inp.fixed_lo[j]:
            specs.append((f"fixed:{fx.label} (per year)", "fixed", j))
    if not specs:
        return ()
    n = 2 * len(specs)
    S = np.repeat(s, n)
    U = np.repeat(u, n, axis=0)
    PF = np.repeat(pf, n, axis=0)
    C = np.repeat(costs, n, axis=0)
    CU = np.repeat(c.course_units[None, :, :], n, axis=0)
    FX = np.repeat(inp.fixed0[None, :], n, axis=0) if inp.fixed_drawn else None
    values = []
    for r, (_name, kind, k) in enumerate(specs):
        pair = []
        for side, q in enumerate(percentiles):
            row = 2 * r + side
            v = inp.quantile_value(kind, k, q / 100)
            if kind == "success_rate":
                S[row] = v
            elif kind == "consequence":
                U[row, k, :] = c.units[k] + c.se[k] * v
                v = float(np.sum(U[row, k, :c.lengths[k]]))  # report the item's total units over its years
            elif kind == "unverified":
                mask = masks[c.items[k]]
                U[row, k, :] = np.where(mask, c.units[k] + c.se[k] * v, c.units[k])
                v = float(np.sum(U[row, k, mask]))  # the total units over the unverified years
            elif kind == "course":
                CU[row, k, :] = c.course_units[k] + c.course_se[k] * v
                v = float(np.sum(CU[row, k, :]))  # the total course-year units per participant
            elif kind == "price":
                PF[row, k] = v
            elif kind == "fixed":
                assert FX is not None
                FX[row, k] = v
            else:
                C[row, k] = v
            pair.append(v)
        values.append(pair)
    npv = _npv4(evaluate(c, S, U, PF, C, CU, FX))
    rows = []
    for r, (name, _, _) in enumerate(specs):
        lo_row, hi_row = npv[2 * r], npv[2 * r + 1]
        rows.append(TornadoRow(name, values[r][0], values[r][1], float(lo_row[-1]), float(hi_row[-1]),
                               float(abs(hi_row[-1] - lo_row[-1])),
                               {p: float(lo_row[n]) for n, p in enumerate(PAYERS)},
                               {p: float(hi_row[n]) for n, p in enumerate(PAYERS)}))
    return tuple(sorted(rows, key=lambda row: -row.swing))


def unverified_masks(c: Compiled) -> dict[str, np.ndarray]:
    """Consequence item → boolean mask over the compiled consequence years, True in its unverified years."""
    out = {}
    for i, cons in enumerate(c.params.consequences):
        if cons.unverified:
            mask = np.zeros(c.units.shape[1], dtype=bool)
            mask[[j - 1 for j in cons.unverified]] = True
            out[c.items[i]] = mask
    return out


def unverified_npv(c: Compiled) -> dict[str, float]:
    """The part of the deterministic NPV resting on the unverified years: ``NPV − NPV with their units at 0``
    (per payer and ``total``; empty when there are none)."""
    masks = unverified_masks(c)
    if not masks:
        return {}
    s, u, pf, costs = base_inputs(c)
    without = u.copy()
    for i, item in enumerate(c.items):
        if item in masks:
            without[0, i, masks[item]] = 0.0
    full, cut = _npv4(evaluate(c, s, u, pf, costs))[0], _npv4(evaluate(c, s, without, pf, costs))[0]
    return {k: float(full[n] - cut[n]) for n, k in enumerate(KEYS)}


def monte_carlo(params: ParameterSet, *, draws: int | None = None, seed: int | None = None,
                compiled: Compiled | None = None) -> MonteCarloResult:
    """Run ``draws`` Monte Carlo draws (default ``monte_carlo.draws`` of the document, else 10,000)."""
    spec = params.monte_carlo
    draws = int(draws if draws is not None else (spec.draws or 10_000))
    seed = int(seed if seed is not None else spec.seed)
    if draws < 1:
        raise ValueError("draws must be at least 1")
    c = compiled or compile_calculation(params)
    inp = _Inputs(c, spec.range_distribution)
    det = _npv4(evaluate(c, *base_inputs(c)))[0]
    n_chunks = -(-draws // CHUNK)
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    npv = np.empty((draws, len(KEYS)))
    payback = np.empty(draws, dtype=int)
    stake = np.zeros(len(PAYERS), dtype=bool)
    accts: tuple[tuple[str, str], ...] = ()
    acc_npv = np.empty((0, 0))
    acc_stake = np.zeros(0, dtype=bool)
    for k, child in enumerate(children):
        n = min(CHUNK, draws - k * CHUNK)
        ev, accts, Y = account_flows(c, *inp.draw(np.random.default_rng(child), n, spec.consequence_correlation))
        if k == 0:
            acc_npv = np.empty((draws, len(accts)))
            acc_stake = np.zeros(len(accts), dtype=bool)
        npv[k * CHUNK:k * CHUNK + n] = _npv4(ev)
        acc_npv[k * CHUNK:k * CHUNK + n] = Y @ c.factors
        payback[k * CHUNK:k * CHUNK + n] = payback_years(c, ev.yearly.sum(axis=1))
        stake |= np.any(ev.yearly != 0, axis=(0, 2))
        acc_stake |= np.any(Y != 0, axis=(0, 2))
    by_udvalg = {label(*a): {"mean": float(acc_npv[:, n].mean()),
                             **{f"p{q:g}": float(v) for q, v in zip((5.0, 50.0, 95.0),
                                                                    np.percentile(acc_npv[:, n], (5.0, 50.0, 95.0)),
                                                                    strict=True)},
                             "prob_break_even": float(np.mean(acc_npv[:, n] >= 0))}
                 for n, a in enumerate(accts) if acc_stake[n]}
    udvalg_no_stake = tuple(label(*a) for n, a in enumerate(accts) if not acc_stake[n] and a[1] != UNASSIGNED)
    mean, pct, prob_all = _summaries(npv)
    no_stake = tuple(p for n, p in enumerate(PAYERS) if not stake[n])
    prob: dict[str, float | None] = {k: (None if k in no_stake else v) for k, v in prob_all.items()}
    paid = payback >= 0
    median = None
    if paid.mean() >= 0.5:
        # the median over all draws, counting "never" as later than any year
        order = np.sort(np.where(paid, payback, np.iinfo(int).max))
        median = int(c.first + order[(draws - 1) // 2])
    return MonteCarloResult(
        params.intervention, draws, seed, spec.range_distribution, spec.consequence_correlation,
        {k: float(det[n]) for n, k in enumerate(KEYS)}, mean, pct, prob, float(paid.mean()), median,
        tornado(c, spec.range_distribution, spec.tornado_percentiles), spec.tornado_percentiles, npv,
        params.unverified(), unverified_npv(c), no_stake, by_udvalg, udvalg_no_stake,
    )
