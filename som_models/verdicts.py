"""Confirm or refute: one verdict per assumption, from the realised estimates.

Assumptions of a parameter set:

* ``success_rate`` — compared with the realised net success rate: the ATT on the success indicator in
  consequence year 1 (event time ``e = course_years``);
* for each consequence item ``i`` the implied effect path ``a_e = s · units_i[e − course_years + 1]``
  (success rate × consequence), compared through its mean over the observed consequence years with the
  realised ``overall`` effect (the plain mean of the event-time ATTs over the same event times).

Test: ``z = (realised − assumed) / se``, two-sided p-value, Holm-adjusted across all assumptions of the
evaluation. Labels, in order of precedence:

1. ``inconclusive`` — fewer than ``min_persons`` treated persons, or the pre-trend test of the outcome rejects
   at ``alpha`` (pre-trend p-values Holm-adjusted across the evaluation's outcomes);
2. ``refuted-overestimated`` / ``refuted-underestimated`` — Holm-adjusted p < ``alpha``; *overestimated*
   when the realised effect is smaller in magnitude than assumed or of the opposite sign;
3. ``inconclusive`` — too little power: the (1−α) interval contains both 0 and the assumption, or its
   half-width exceeds ``margin × |assumed|``;
4. ``consistent`` otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import polars as pl
from scipy import stats

from som_models.estimators.results import z_value
from som_models.parameters.schema import ParameterSet

LABELS = ("consistent", "refuted-overestimated", "refuted-underestimated", "inconclusive")


@dataclass(frozen=True)
class VerdictSettings:
    alpha: float = 0.05
    margin: float = 0.5
    min_persons: int = 20


@dataclass(frozen=True)
class Verdict:
    """The verdict on one assumption, with the test, its statistic, the margin and a memo sentence."""

    assumption: str
    outcome: str
    label: str
    test: str
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    margin: float
    assumed: float
    realised: float | None
    ci_low: float | None
    ci_high: float | None
    sentence: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["evidence"] = dict(self.evidence)
        return rec


@dataclass(frozen=True)
class _Comparison:
    assumption: str
    outcome: str
    assumed: float
    realised: float | None
    se: float | None
    n_treated: int
    pretrend_p: float | None
    path: tuple[dict, ...]
    unit: str


def holm(p_values: list[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values: p_(k) · (m − k + 1), made monotone, capped at 1."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[idx]))
        adjusted[idx] = running
    return adjusted.tolist()


def _event_rows(estimates: pl.DataFrame, outcome: str) -> dict[int, dict]:
    rows = estimates.filter((pl.col("outcome") == outcome) & (pl.col("estimand") == "event")).to_dicts()
    return {int(r["event_time"]): r for r in rows}


def comparisons(params: ParameterSet, estimates: pl.DataFrame, pretrend_p: Mapping[str, float]) -> list[_Comparison]:
    """Pair every assumption of ``params`` with its realised counterpart in the estimates table."""
    k0 = params.course_years
    out = []
    sm = params.success_measure.name
    ev = _event_rows(estimates, sm).get(k0)
    out.append(_Comparison(
        "success_rate", sm, params.success_rate.value,
        None if ev is None else ev["estimate"], None if ev is None else ev["se"],
        0 if ev is None else int(ev["n_treated"]), pretrend_p.get(sm),
        () if ev is None else ({"event_time": k0, "assumed": params.success_rate.value, "realised": ev["estimate"],
                                 "ci_low": ev["ci_low"], "ci_high": ev["ci_high"]},),
        "share",
    ))
    s = params.success_rate.value
    for cons in params.consequences:
        events = _event_rows(estimates, cons.item)
        path = []
        for e, row in sorted(events.items()):
            j = e - k0 + 1
            if j < 1:
                continue
            assumed = s * (cons.units[j - 1] if j <= len(cons.units) else 0.0)
            path.append({"event_time": e, "consequence_year": j, "assumed": assumed, "realised": row["estimate"],
                         "ci_low": row["ci_low"], "ci_high": row["ci_high"], "n_treated": int(row["n_treated"])})
        overall = estimates.filter((pl.col("outcome") == cons.item) & (pl.col("estimand") == "overall")).to_dicts()
        realised = overall[0]["estimate"] if overall and path else None
        se = overall[0]["se"] if overall and path else None
        assumed_mean = float(np.mean([p["assumed"] for p in path])) if path else s * cons.units[0]
        out.append(_Comparison(
            f"effect_path:{cons.item}", cons.item, assumed_mean, realised, se,
            max((p["n_treated"] for p in path), default=0), pretrend_p.get(cons.item), tuple(path), "units per person-year",
        ))
    return out


def judge(params: ParameterSet, estimates: pl.DataFrame, pretrend_p: Mapping[str, float],
          settings: VerdictSettings = VerdictSettings()) -> tuple[Verdict, ...]:
    """Verdicts on every assumption (Holm-adjusted across them)."""
    outcomes = [k for k, v in pretrend_p.items() if v == v]
    adjusted_pre = dict(zip(outcomes, holm([pretrend_p[k] for k in outcomes]))) if outcomes else {}
    comps = comparisons(params, estimates, adjusted_pre)
    tested = [c for c in comps if c.realised is not None and c.se is not None and c.se > 0]
    stats_ = {c.assumption: (c.realised - c.assumed) / c.se for c in tested}
    pvals = {a: float(2 * stats.norm.sf(abs(z))) for a, z in stats_.items()}
    adj = dict(zip(pvals, holm(list(pvals.values())))) if pvals else {}
    z = z_value(settings.alpha)
    verdicts = []
    for c in comps:
        verdicts.append(_label(c, stats_.get(c.assumption), pvals.get(c.assumption), adj.get(c.assumption), z, settings))
    return tuple(verdicts)


def _label(c: _Comparison, stat, p, p_adj, z, st: VerdictSettings) -> Verdict:
    level = f"{100 * (1 - st.alpha):g} %"
    evidence = {"path": list(c.path), "n_treated": c.n_treated, "pretrend_p": c.pretrend_p, "unit": c.unit}
    base = dict(assumption=c.assumption, outcome=c.outcome, test="two-sided z-test of realised = assumed, Holm-adjusted",
                statistic=stat, p_value=p, p_adjusted=p_adj, margin=st.margin, assumed=c.assumed,
                realised=c.realised, evidence=evidence)
    what = "success rate" if c.assumption == "success_rate" else f"effect on {c.outcome}"
    if c.realised is None or c.se is None:
        return Verdict(**base, label="inconclusive", ci_low=None, ci_high=None,
                       sentence=f"The {what} could not be estimated from the data (no comparable treated cohort in the follow-up window).")
    lo, hi = c.realised - z * c.se, c.realised + z * c.se
    base.update(ci_low=lo, ci_high=hi)
    fact = (f"Realised {what} {c.realised:.3g} ({level} CI {lo:.3g} to {hi:.3g}) against an assumed {c.assumed:.3g}")
    if c.n_treated < st.min_persons:
        return Verdict(**base, label="inconclusive", sentence=f"{fact}: inconclusive, only {c.n_treated} treated persons (minimum {st.min_persons}).")
    if c.pretrend_p is not None and c.pretrend_p == c.pretrend_p and c.pretrend_p < st.alpha:
        return Verdict(**base, label="inconclusive",
                       sentence=f"{fact}: inconclusive, the pre-trend test rejects parallel trends (Holm-adjusted p = {c.pretrend_p:.3g}).")
    if p_adj is not None and p_adj < st.alpha:
        smaller = np.sign(c.realised) != np.sign(c.assumed) or abs(c.realised) < abs(c.assumed)
        label = "refuted-overestimated" if smaller else "refuted-underestimated"
        word = "overestimated" if smaller else "underestimated"
        return Verdict(**base, label=label,
                       sentence=f"{fact}: the assumption {word} the effect (z = {stat:.2f}, Holm-adjusted p = {p_adj:.3g}).")
    if c.assumed != 0 and lo <= 0 <= hi and lo <= c.assumed <= hi:
        return Verdict(**base, label="inconclusive",
                       sentence=f"{fact}: inconclusive, the interval contains both zero and the assumption.")
    if c.assumed != 0 and (hi - lo) / 2 > st.margin * abs(c.assumed):
        return Verdict(**base, label="inconclusive",
                       sentence=f"{fact}: inconclusive, the interval is wider than ±{st.margin:.0%} of the assumption.")
    return Verdict(**base, label="consistent",
                   sentence=f"{fact}: consistent with the assumption (z = {stat:.2f}, Holm-adjusted p = {p_adj:.3g}).")
