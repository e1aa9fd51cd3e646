"""The udvalg ledger: who pays and who gains, per payer *and* per udvalg (committee of the kommune, sector of the
region and the state), by year — the silo-breaking view SØM exists for.

An **account** is a pair (payer, udvalg). Which udvalg an item's flows belong to is resolved per item and payer by
:func:`som_models.projection.committees.resolve_udvalg` (document price split → document ``udvalg.items`` →
default mapping ``assets/udvalg/default_committees.yaml``). With ``σ[i, p, a]`` the share of item ``i``'s flows of
payer ``p`` booked to account ``a`` of that payer, the ledger uses the engine's quantities
(:mod:`som_models.projection.engine`) per draw ``d`` and consequence year ``j``:

* **price**: ``Σ_i −u[d,i,j] · f[d,i] · price[i,p] · σ[i,p,a]``;
* **refusion follows the item**: the staircase transfer ``x[d,i,j]`` of item ``i`` is ``−x · σ[i,kommune,a]`` in
  the item's kommune udvalg and ``+x · σ[i,stat,a]`` in the item's stat sector; the expensive-case transfer
  ``ΔR[d,j]`` of a group is split over its items by their share of the kommune gross saving,
  ``g_i / Σ_k g_k`` (``g_i = −u · f · price[i,kommune]``), then by the item's udvalg of each payer;
* **tax follows the item** (the rule of this ledger, not a budget rule): ``tax:<item>`` of payer ``p`` is booked
  to the item's udvalg of ``p`` — ``rate_p · u[d,i,j] · taxable_i · σ[i,p,a]`` — and the tilbageløb to the item's
  stat sector; so the kommune's tax on extra earnings lands where the default mapping puts ``earnings_dkk``
  (beskæftigelse), a kommune that books tax centrally overrides the item's kommune udvalg;
* course-year effects the same way with ``N`` in place of ``N · s`` (the refusion with consequence year 1's
  figures, as the engine does);
* **costs**: a cost line with ``committee`` in (payer, committee), any payer.

``Y_a[d, t]`` is then formed with the engine's exposures exactly as ``Y[d, p, t]`` is. Whatever of a payer's
yearly net the ledger does not attribute (cost lines without a committee, items with no udvalg for that payer,
flows a newer part of the engine adds) is the account (payer, ``unassigned``):
``Y_(p, unassigned) = Y[d,p,t] − Σ_{a of p} Y_a`` (|·| below :data:`RESIDUAL_TOLERANCE` → 0). So the accounts of a
payer always add up to the payer's net, per draw and year.

NPV and payback of an account are those of its yearly net (:func:`.engine.payback_years`). The **cross-subsidy**
is read off the signs: an account with a negative NPV invests (pays more than it gets back within the horizon),
one with a positive NPV gains; :meth:`Ledger.by_year` gives the per-year per-udvalg table and
:meth:`Ledger.cross_subsidy` who invests and who gains, overall and year by year.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.parameters.schema import PAYERS, ParameterSet
from som_models.projection.committees import UNASSIGNED
from som_models.projection.engine import (
    KOMMUNE,
    Compiled,
    Evaluation,
    base_inputs,
    compile_calculation,
    evaluate,
    payback_years,
)
from som_models.results_base import ResultDisplay, fmt, frame_lines, render_summary

#: kroner: |a residual| below ``RESIDUAL_TOLERANCE · (1 + scale)`` is floating-point noise, not an unassigned flow
RESIDUAL_TOLERANCE = 1e-9
#: kroner: an NPV within this of 0 is neither investing nor gaining
ROLE_TOLERANCE = 1e-6
LEDGER_SCHEMA = {"year": pl.Int64, "payer": pl.Utf8, "udvalg": pl.Utf8, "amount": pl.Float64, "discounted": pl.Float64}


def label(payer: str, udvalg: str) -> str:
    """The account's name in tables and JSON keys: ``payer/udvalg``."""
    return f"{payer}/{udvalg}"


def accounts(c: Compiled) -> tuple[tuple[str, str], ...]:
    """All accounts of a compiled document, in payer order: its named udvalg (sorted), then ``unassigned``."""
    named: dict[str, set[str]] = {p: set() for p in PAYERS}
    for by_payer in c.udvalg.shares.values():
        for payer, shares in by_payer.items():
            named[payer].update(shares)
    for payer_index, committee in [(x.payer, x.committee) for x in c.costs] + [(x.payer, x.committee) for x in c.fixed_lines]:
        if committee:
            named[PAYERS[payer_index]].add(committee)
    named = {p: names - {UNASSIGNED} for p, names in named.items()}
    return tuple((p, u) for p in PAYERS for u in (*sorted(named[p]), UNASSIGNED))


def _index(accts: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], int]:
    return {a: n for n, a in enumerate(accts)}


def _valued(c: Compiled, idx: Mapping[tuple[str, str], int], units: np.ndarray, price_factor: np.ndarray,
            weeks_before: list[np.ndarray], case_expense: list[np.ndarray]) -> np.ndarray:
    """``V_a[d, a, j]``: the attributed kroner per person of ``units`` (D, I, J′) by account (formulas above)."""
    D, n_items, J = units.shape
    V = np.zeros((D, len(idx), J))

    def book(item: str, payer: str, amount: np.ndarray) -> None:
        for udvalg, share in c.udvalg.of(item, payer).items():
            V[:, idx[(payer, udvalg)], :] += amount * share

    saving = -units * price_factor[:, :, None]                      # (D, I, J′)
    for i, item in enumerate(c.items):
        for p, payer in enumerate(PAYERS):
            if c.prices[i, p]:
                book(item, payer, saving[:, i, :] * c.prices[i, p])
    for st, weeks in zip(c.staircase, weeks_before, strict=True):
        for i in st.items:
            u = units[:, i, :]
            x = -np.sign(u) * price_factor[:, i, None] * c.prices[i, KOMMUNE] * st.rule.weeks_share(weeks[None, :], np.abs(u))
            book(c.items[i], "kommune", -x)
            book(c.items[i], "stat", x)
    for ex, expense in zip(c.expensive, case_expense, strict=True):
        gross = {i: saving[:, i, :] * c.prices[i, KOMMUNE] for i in ex.items}
        d = sum(gross.values())
        e0 = expense[None, :]
        dr = ex.rule.refusion(e0, ex.thresholds) - ex.rule.refusion(e0 - d, ex.thresholds)
        safe = np.where(d != 0, d, 1.0)
        for i, g in gross.items():
            part = np.where(d != 0, dr * g / safe, 0.0)
            book(c.items[i], "kommune", -part)
            book(c.items[i], "stat", part)
    if c.has_tax:  # tax, AM-bidrag and tilbageløb of each payer follow the item (rules.tax_shares)
        for i, item in enumerate(c.items):
            if not c.taxable[i]:
                continue
            income = units[:, i, :] * c.taxable[i]
            for p, payer in enumerate(PAYERS):
                if c.tax_share[i, p]:
                    book(item, payer, c.tax_share[i, p] * income)
    return V


def account_flows(c: Compiled, success: np.ndarray, units: np.ndarray, price_factor: np.ndarray,
                  cost_amounts: np.ndarray, course_units: np.ndarray | None = None,
                  fixed_amounts: np.ndarray | None = None,
                  ) -> tuple[Evaluation, tuple[tuple[str, str], ...], np.ndarray]:
    """The engine's evaluation of ``D`` draws (:func:`.engine.evaluate`, same arguments), the accounts and the
    yearly net per account ``Y_a[d, a, t]`` (nominal), whose sum over a payer's accounts is ``Y[d, p, t]``."""
    ev = evaluate(c, success, units, price_factor, cost_amounts, course_units, fixed_amounts)
    accts = accounts(c)
    idx = _index(accts)
    D = success.shape[0]
    V = _valued(c, idx, units, price_factor, [st.weeks_before for st in c.staircase],
                [ex.case_expense for ex in c.expensive])
    Y = success[:, None, None] * (V @ c.exposure)                   # (D, A, T)
    if np.any(c.course_units) or (course_units is not None and np.any(course_units)):
        K = c.course_units.shape[1]
        v = np.broadcast_to(c.course_units, (D, *c.course_units.shape)) if course_units is None else course_units
        W = _valued(c, idx, v, price_factor, [np.full(K, st.weeks_before[0]) for st in c.staircase],
                    [np.full(K, ex.case_expense[0]) for ex in c.expensive])
        Y = Y + W @ c.cost_exposure[:K]
    if c.costs:
        C = np.zeros((D, len(accts), c.cost_exposure.shape[0]))
        for k, line in enumerate(c.costs):
            if line.committee:
                C[:, idx[(PAYERS[line.payer], line.committee)], line.course_year - 1] += cost_amounts[:, k]
        Y = Y + C @ c.cost_exposure
    for k, fixed in enumerate(c.fixed_lines):                      # one-off and fixed costs (drawn or point)
        if fixed.committee:
            amount = fixed.amount if fixed_amounts is None else fixed_amounts[:, k][:, None]
            Y[:, idx[(PAYERS[fixed.payer], fixed.committee)], fixed.t_first:fixed.t_last + 1] += amount
    for p, payer in enumerate(PAYERS):
        own = [idx[a] for a in accts if a[0] == payer and a[1] != UNASSIGNED]
        attributed = Y[:, own, :].sum(axis=1) if own else np.zeros_like(ev.yearly[:, p, :])
        residual = ev.yearly[:, p, :] - attributed
        scale = np.abs(Y[:, own, :]).sum(axis=1) + np.abs(ev.yearly[:, p, :]) if own else np.abs(ev.yearly[:, p, :])
        residual[np.abs(residual) <= RESIDUAL_TOLERANCE * (1.0 + scale)] = 0.0
        Y[:, idx[(payer, UNASSIGNED)], :] = residual
    return ev, accts, Y


@dataclass(frozen=True, eq=False, repr=False)
class Ledger(ResultDisplay):
    """The deterministic udvalg ledger of one projection: yearly net per account (nominal ``amounts`` and
    ``discounted``, shape (accounts, years)), NPV and payback per account. Only accounts with a flow are kept.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` has one row per account (payer, udvalg,
    NPV, payback year, role); ``summary()`` adds who invests and who gains.
    """

    accounts: tuple[tuple[str, str], ...]
    years: tuple[int, ...]
    amounts: np.ndarray
    discounted: np.ndarray
    npv: Mapping[str, float]
    payback: Mapping[str, int | None]
    origin: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def _repr_fields(self) -> dict[str, Any]:
        return {"accounts": len(self.accounts), "years": len(self.years),
                "invests": sum(self.role(k) == "invests" for k in self.labels),
                "gains": sum(self.role(k) == "gains" for k in self.labels)}

    def to_polars(self) -> pl.DataFrame:
        """``payer``, ``udvalg``, ``npv`` (discounted kroner), ``payback_year`` (null = none within the horizon) and
        ``role`` (invests / gains / neutral) per account."""
        return pl.DataFrame([{"payer": p, "udvalg": u, "npv": self.npv[label(p, u)],
                              "payback_year": self.payback[label(p, u)], "role": self.role(label(p, u))}
                             for p, u in self.accounts],
                            schema={"payer": pl.Utf8, "udvalg": pl.Utf8, "npv": pl.Float64, "payback_year": pl.Int64,
                                    "role": pl.Utf8})

    def summary(self) -> str:
        """Horizon, the NPV per account and who invests / gains."""
        cross = self.cross_subsidy()
        info = [("Years", f"{self.years[0]}–{self.years[-1]}" if self.years else None), ("Accounts", len(self.accounts))]
        footer = [f"Invests: {', '.join(f'{k} {fmt(v)}' for k, v in cross['invests'].items()) or 'none'}",
                  f"Gains: {', '.join(f'{k} {fmt(v)}' for k, v in cross['gains'].items()) or 'none'}"]
        return render_summary("Udvalg ledger (NPV, kroner, discounted)", info,
                              frame_lines(self.to_polars(), labels={"npv": "NPV (kr)", "payback_year": "payback"}),
                              footer)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label(p, u) for p, u in self.accounts)

    def role(self, key: str) -> str:
        """``invests`` (NPV < 0), ``gains`` (NPV > 0) or ``neutral``."""
        v = self.npv[key]
        return "invests" if v < -ROLE_TOLERANCE else "gains" if v > ROLE_TOLERANCE else "neutral"

    def rows(self) -> pl.DataFrame:
        """year × payer × udvalg, nominal and discounted (non-zero cells only)."""
        out = [{"year": y, "payer": p, "udvalg": u, "amount": float(self.amounts[a, t]),
                "discounted": float(self.discounted[a, t])}
               for a, (p, u) in enumerate(self.accounts) for t, y in enumerate(self.years) if self.amounts[a, t] != 0]
        return pl.DataFrame(out, schema=LEDGER_SCHEMA)

    def by_year(self, *, discounted: bool = False) -> list[dict[str, Any]]:
        """The per-year per-udvalg table: one row per year, one column per account (``payer/udvalg``)."""
        values = self.discounted if discounted else self.amounts
        return [{"year": y, **{k: float(values[a, t]) for a, k in enumerate(self.labels)}}
                for t, y in enumerate(self.years)]

    def cross_subsidy(self) -> dict[str, Any]:
        """Who invests and who gains: accounts by NPV sign (investors most negative first, gainers largest first),
        and per year the accounts with a net cost (``invests``) and with a net gain (``gains``), nominal."""
        invests = sorted((k for k in self.labels if self.role(k) == "invests"), key=lambda k: self.npv[k])
        gains = sorted((k for k in self.labels if self.role(k) == "gains"), key=lambda k: -self.npv[k])
        by_year = []
        for t, y in enumerate(self.years):
            col = {k: float(self.amounts[a, t]) for a, k in enumerate(self.labels)}
            by_year.append({"year": y, "invests": {k: v for k, v in col.items() if v < 0},
                            "gains": {k: v for k, v in col.items() if v > 0}})
        return {"invests": {k: self.npv[k] for k in invests}, "gains": {k: self.npv[k] for k in gains},
                "by_year": by_year}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``accounts`` (payer, udvalg, NPV, payback year, role, where the mapping came from), ``rows``,
        ``by_year`` (nominal) and ``by_year_discounted``, ``cross_subsidy``."""
        return {
            "accounts": [{"payer": p, "udvalg": u, "label": label(p, u), "npv": self.npv[label(p, u)],
                          "payback_year": self.payback[label(p, u)], "role": self.role(label(p, u)),
                          "description": self.names.get(p, {}).get(u, "")} for p, u in self.accounts],
            "mapping": {item: dict(by_payer) for item, by_payer in self.origin.items()},
            "rows": self.rows().to_dicts(),
            "by_year": self.by_year(),
            "by_year_discounted": self.by_year(discounted=True),
            "cross_subsidy": self.cross_subsidy(),
        }


def ledger(params: ParameterSet | None = None, *, compiled: Compiled | None = None,
           success_rate: float | None = None) -> Ledger:
    """The deterministic ledger of ``params`` (point values of every input; optionally another success rate)."""
    if compiled is None:
        if params is None:
            raise ValueError("ledger: give params or compiled")
        compiled = compile_calculation(params)
    c = compiled
    s, u, pf, costs = base_inputs(c)
    if success_rate is not None:
        s = np.array([float(success_rate)])
    _, accts, Y = account_flows(c, s, u, pf, costs)
    keep = [a for a in range(len(accts)) if np.any(Y[0, a] != 0)]
    amounts = Y[0, keep, :]
    disc = amounts * c.factors[None, :]
    kept = tuple(accts[a] for a in keep)
    labels = [label(p, u) for p, u in kept]
    pay = payback_years(c, amounts) if kept else np.array([], dtype=int)
    years = tuple(range(c.first, c.first + c.n_years))
    return Ledger(kept, years, amounts, disc, {k: float(disc[n].sum()) for n, k in enumerate(labels)},
                  {k: (None if pay[n] < 0 else years[int(pay[n])]) for n, k in enumerate(labels)},
                  c.udvalg.origin, c.udvalg.names)


def compare_ledgers(projected: Mapping[str, Any], realised: Mapping[str, Any]) -> dict[str, Any]:
    """Projected vs realised per udvalg, from two ledgers' :meth:`Ledger.to_dict` (``projected``: the approved
    version's projection; ``realised``: the projection under the evaluation's proposal, i.e. with what the
    registers showed). Pure and JSON-able:

    ``accounts`` — per account in either ledger: NPV projected / realised / difference (realised − projected),
    payback year and role in each; ``by_year`` — per year and account the nominal net projected, realised and the
    difference; ``role_changes`` — the accounts whose role (invests / gains / neutral) changed.
    An account missing from one ledger has NPV 0 there (no flow) and role ``none``.
    """
    before = {a["label"]: a for a in projected["accounts"]}
    after = {a["label"]: a for a in realised["accounts"]}
    keys = list(before) + [k for k in after if k not in before]
    rows = []
    for k in keys:
        b, a = before.get(k), after.get(k)
        ref = b if b is not None else after[k]
        payer, udvalg = ref["payer"], ref["udvalg"]
        npv_b = b["npv"] if b else 0.0
        npv_a = a["npv"] if a else 0.0
        rows.append({"payer": payer, "udvalg": udvalg, "label": k, "npv_projected": npv_b, "npv_realised": npv_a,
                     "npv_difference": npv_a - npv_b,
                     "payback_projected": b["payback_year"] if b else None,
                     "payback_realised": a["payback_year"] if a else None,
                     "role_projected": b["role"] if b else "none", "role_realised": a["role"] if a else "none"})
    years_b = {r["year"]: r for r in projected["by_year"]}
    years_a = {r["year"]: r for r in realised["by_year"]}
    by_year = []
    for y in sorted(set(years_b) | set(years_a)):
        rb, ra = years_b.get(y, {}), years_a.get(y, {})
        by_year.append({"year": y, **{k: {"projected": rb.get(k, 0.0), "realised": ra.get(k, 0.0),
                                          "difference": ra.get(k, 0.0) - rb.get(k, 0.0)} for k in keys}})
    return {"accounts": rows, "by_year": by_year,
            "role_changes": [{"label": r["label"], "from": r["role_projected"], "to": r["role_realised"]}
                             for r in rows if r["role_projected"] != r["role_realised"]]}
