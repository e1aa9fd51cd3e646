"""Refusion rules as versioned data (``assets/refusion/*.yaml``) and the functions that apply them.

**Very expensive single cases** (Serviceloven § 176 / Barnets lov § 198). With thresholds ``T_1 < T_2 < T_3``
and marginal rates ``r_1 < r_2 < r_3`` (25 / 50 / 75 %), the state refunds of an annual case expense ``E``::

    R(E) = Σ_k (r_k − r_{k−1}) · max(0, E − T_k),   r_0 = 0

i.e. 25 % of the part between ``T_1`` and ``T_2``, 50 % of the part between ``T_2`` and ``T_3`` and 75 % of the
part above ``T_3``. A success that lowers a person's gross municipal case expense from ``E_0`` by ``d`` lowers
the refusion by ``ΔR = R(E_0) − R(E_0 − d)``; the projection shows ``ΔR`` as a transfer from kommune to stat.

**Refusion staircase** on income support: the state's share of a benefit week depends on the cumulative week
number ``w`` on public support (80 % in weeks 1–4, 40 % in 5–26, 30 % in 27–52, 20 % after). Treating weeks as
continuous (week ``w`` is the interval ``(w−1, w]``), the refunded share of ``n`` avoided weeks that follow ``W``
cumulative weeks is ``S(W, n) / n`` with::

    S(W, n) = ∫_W^{W+n} rate(x) dx = Σ_k rate_k · max(0, min(W + n, hi_k) − max(W, lo_k))

where step ``k`` covers ``(lo_k, hi_k] = (from_week_k − 1, to_week_k]``. A kommune gross saving ``G`` on the
item then carries the transfer ``G · S(W, |n|)/|n|`` from kommune to stat.

Sources and verification status are in each rule file (``assets/refusion/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from som_models.parameters.schema import ParameterError
from som_models.projection.prices import ASSETS_DIR, PriceIndex
from som_reference.strict_yaml import load_yaml
from som_reference.values import ReferenceDataError, check_status_unit


@dataclass(frozen=True)
class StaircaseRule:
    """Refusion rate by cumulative week: ``lo`` / ``hi`` are the interval ends ``(lo, hi]`` in weeks."""

    id: str
    version: str
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    rates: tuple[float, ...]
    source: str
    status: str

    def weeks_share(self, weeks_before, weeks):
        """``S(W, n)``: refunded week-equivalents of ``n ≥ 0`` weeks after ``W`` cumulative weeks (arrays broadcast)."""
        w0 = np.asarray(weeks_before, dtype=float)
        w1 = w0 + np.asarray(weeks, dtype=float)
        total = np.zeros(np.broadcast(w0, w1).shape)
        for lo, hi, rate in zip(self.lo, self.hi, self.rates, strict=False):
            total = total + rate * np.clip(np.minimum(w1, hi) - np.maximum(w0, lo), 0.0, None)
        return total


@dataclass(frozen=True)
class ExpensiveCaseRule:
    """Marginal refusion tiers on a case's annual expense; thresholds stated at price levels ``levels[year]``.

    ``growth`` is the annual growth factor per tier implied by the statute's own stated levels (``None`` with a
    single level and no ``indexation_from``): ``g_k = (T_k(y_b) / T_k(y_a))^(1 / (y_b − y_a))`` for the first and
    last stated levels ``y_a < y_b``.
    """

    id: str
    version: str
    rates: tuple[float, ...]
    levels: Mapping[int, tuple[float, ...]]
    source: str
    status: str
    growth: tuple[float, ...] | None = None
    growth_from: str = ""

    def thresholds(self, price_year: int, index: PriceIndex | None = None,
                   path: str = "refusion") -> tuple[tuple[float, ...], str]:
        """Thresholds in ``price_year`` kroner and a note on how they were obtained.

        A stated level for ``price_year`` is used as is. Otherwise the nearest stated level ``y`` (the later one on
        a tie) is carried to ``price_year`` with the growth the stated levels themselves imply,
        ``T_k(P) = T_k(y) · g_k^(P − y)`` — an estimate [E]. The net price index is *not* used: the statute
        restates the amounts at a price level ("(2022-niveau)"), and from 2020 to 2022 they rose 3.1–3.6 %, while
        the net price index rose 9.3 % (annual means 103.9 → 113.5), so they are not regulated with it (the
        regulation index itself was not found in the sources read). ``index`` is accepted for callers that pass
        one and is ignored.
        """
        del index
        if price_year in self.levels:
            return self.levels[price_year], f"{self.id} v{self.version}: thresholds at {price_year} level as stated"
        base = min(self.levels, key=lambda y: (abs(y - price_year), -y))
        if self.growth is None:
            raise ParameterError(f"{path}: {self.id} states thresholds only at {', '.join(map(str, sorted(self.levels)))} "
                                 f"level and no growth between levels; give the thresholds at {price_year} level inline")
        n = price_year - base
        out = tuple(t * g ** n for t, g in zip(self.levels[base], self.growth, strict=True))
        rates = ", ".join(f"{100 * (g - 1):.2f} %" for g in self.growth)
        return out, (f"{self.id} v{self.version}: thresholds at {base} level carried {n:+d} year(s) to {price_year} with "
                     f"the yearly growth of the statute's stated levels{self.growth_from} ({rates} by tier) — an "
                     "estimate; the official regulation index is not encoded")

    def refusion(self, expense, thresholds):
        """``R(E)`` for annual case expenses ``E`` (array) given thresholds in the same price year."""
        e = np.asarray(expense, dtype=float)
        out = np.zeros(e.shape)
        prev = 0.0
        for t, r in zip(thresholds, self.rates, strict=False):
            out = out + (r - prev) * np.clip(e - t, 0.0, None)
            prev = r
        return out


def _pick_version(doc: Mapping[str, Any], version: str | None, path: str) -> Mapping[str, Any]:
    versions = doc.get("versions") or []
    if version is None:
        return max(versions, key=lambda v: str(v["valid_from"]))
    for v in versions:
        if str(v["version"]) == version:
            return v
    raise ParameterError(f"{path}.version: rule {doc.get('id')!r} has no version {version!r} "
                         f"(versions: {', '.join(str(v['version']) for v in versions)})")


def _staircase(rule_id: str, version: str, data: Mapping[str, Any], path: str, source: str, status: str) -> StaircaseRule:
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ParameterError(f"{path}.rule: a staircase rule needs steps [{{from_week, to_week, rate}}]")
    lo, hi, rates = [], [], []
    for k, step in enumerate(steps):
        if (not isinstance(step, Mapping) or set(step) - {"from_week", "to_week", "rate"} or "from_week" not in step
                or "rate" not in step):
            raise ParameterError(f"{path}.rule.steps[{k}]: expected {{from_week, to_week, rate}}")
        lo.append(float(step["from_week"]) - 1)
        hi.append(float("inf") if step.get("to_week") is None else float(step["to_week"]))
        rates.append(float(step["rate"]))
        if not 0 <= rates[-1] <= 1 or hi[-1] <= lo[-1] or (k and lo[-1] != hi[-2]):
            raise ParameterError(f"{path}.rule.steps[{k}]: steps must be contiguous week bands with rates in [0, 1]")
    return StaircaseRule(rule_id, version, tuple(lo), tuple(hi), tuple(rates), source, status)


def _expensive(rule_id: str, version: str, data: Mapping[str, Any], path: str, source: str, status: str) -> ExpensiveCaseRule:
    rates = data.get("rates")
    levels = data.get("levels")
    if not isinstance(rates, list) or not rates or not isinstance(levels, Mapping) or not levels:
        raise ParameterError(f"{path}.rule: an expensive-cases rule needs rates [..] and levels {{year: [thresholds]}}")
    rates_t = tuple(float(r) for r in rates)
    if any(not 0 <= r <= 1 for r in rates_t) or list(rates_t) != sorted(rates_t):
        raise ParameterError(f"{path}.rule.rates: rates must be increasing shares in [0, 1]")
    parsed = {}
    for year, ts in levels.items():
        ts_t = tuple(float(t) for t in ts)
        if len(ts_t) != len(rates_t) or list(ts_t) != sorted(ts_t):
            raise ParameterError(f"{path}.rule.levels.{year}: need {len(rates_t)} increasing thresholds")
        parsed[int(year)] = ts_t
    return ExpensiveCaseRule(rule_id, version, rates_t, parsed, source, status, level_growth(parsed))


def level_growth(levels: Mapping[int, tuple[float, ...]]) -> tuple[float, ...] | None:
    """Per-tier yearly growth between the first and last stated level (``None`` with one level)."""
    if len(levels) < 2:
        return None
    a, b = min(levels), max(levels)
    return tuple((tb / ta) ** (1 / (b - a)) for ta, tb in zip(levels[a], levels[b], strict=True))


def load_rule(kind: str, rule: Any, version: str | None = None, *, path: str = "refusion",
              assets_dir: Path | None = None) -> StaircaseRule | ExpensiveCaseRule:
    """A refusion rule by id from ``assets/refusion`` (latest version unless ``version``) or an inline mapping."""
    if isinstance(rule, Mapping):
        builder = _staircase if kind == "staircase" else _expensive
        return builder("inline", "inline", rule, path, str(rule.get("source", "calculation document")),
                       "as given in the document")
    folder = (assets_dir or ASSETS_DIR) / "refusion"
    file = folder / f"{rule}.yaml"
    if not file.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ParameterError(f"{path}.rule: unknown refusion rule {rule!r} (known: {', '.join(known) or 'none'})")
    try:
        doc = load_yaml(file)
        for k, ver in enumerate(doc.get("versions") or []):
            check_status_unit(ver, f"{file}: versions[{k}]")
    except (ReferenceDataError, yaml.YAMLError) as exc:
        raise ParameterError(f"{path}.rule: {exc}") from None
    if doc.get("kind") != kind:
        raise ParameterError(f"{path}.rule: {rule!r} is a {doc.get('kind')} rule, not {kind}")
    v = _pick_version(doc, version, path)
    builder = _staircase if kind == "staircase" else _expensive
    built = builder(str(doc["id"]), str(v["version"]), v, path, str(v.get("source", "")), str(v.get("status", "")))
    other = v.get("indexation_from")
    if isinstance(built, ExpensiveCaseRule) and built.growth is None and other:
        if other == rule:
            raise ParameterError(f"{path}.rule: {rule!r} takes its indexation from itself")
        donor = load_rule(kind, other, path=path, assets_dir=assets_dir)
        if isinstance(donor, ExpensiveCaseRule) and donor.growth is not None:
            built = replace(built, growth=donor.growth, growth_from=f" of {donor.id} (same amounts)")
    return built


@dataclass(frozen=True)
class TaxShares:
    """Kroner to each payer per krone of changed income of one item: income tax ``tax[p]`` by payer, the
    AM-bidrag ``am`` (state) and the tilbageløb ``tilbageloeb`` (state)."""

    tax: Mapping[str, float]
    am: float
    tilbageloeb: float

    def to_payer(self, payer: str) -> float:
        """Everything ``payer`` receives per krone: its income tax, plus AM-bidrag and tilbageløb for the state."""
        return self.tax.get(payer, 0.0) + ((self.am + self.tilbageloeb) if payer == "stat" else 0.0)


def tax_shares(tax: Any, item: str) -> TaxShares:
    """Per krone of changed income ``y`` of ``item`` (``tax``: a :class:`~som_models.parameters.schema.TaxSpec`).

    Earned income (wages; ``income: earned``)::

        AM = a · y,   tax_p = r_p · (1 − a) · y,   tilbageløb = b · (y − AM − Σ_p tax_p) = b · (1 − a)(1 − Σ r) · y

    Transfer income (kontanthjælp, dagpenge …; ``income: transfer``) carries no AM-bidrag::

        AM = 0,       tax_p = r_p · y,             tilbageløb = b · (1 − Σ r) · y

    with ``a`` = ``am_bidrag`` (8 % in Danish law, [K] — see ``assets/prices/tax_rates.yaml``), ``r_p`` the income-tax
    rates by payer and ``b`` the tilbageløb share. Allowances, the employment deduction and top tax are not
    modelled (marginal rates on a change in income).
    """
    a = tax.am_bidrag if tax.income.get(item, "earned") == "earned" else 0.0
    base = 1.0 - a
    shares = {p: r * base for p, r in tax.rates.items()}
    return TaxShares(shares, a, tax.tilbageloeb * base * (1.0 - sum(tax.rates.values())))
