"""Descriptive consequence profiles: SØM's success-vs-non-success contrast, re-estimated and compared.

A consequence item of kind ``descriptive`` (:mod:`som_models.parameters.schema`) claims what SØM's knowledge
base claims: among the members of the target group, a person who succeeds differs from one who does not, in
consequence year ``j``, by ``units[j]`` (regression-adjusted; not causal). Such a profile is tested against
— and updated from — the same contrast estimated on the registers, never against the causal ATT path (which
answers another question: what the intervention changed per net success).

**The contrast on the evaluation's panel** (:func:`descriptive_panel`, :func:`estimate_descriptive`). The
persons are those listed in the treatments (every arm: the contrast is about success, not about treatment).
For a person starting in year ``g`` with ``K`` course years, the reference period is the last course year
``ref = g + K − 1`` and success is the success measure in consequence year 1, ``ref + 1`` (outcome zero for
``rule: zero``, positive for ``rule: positive``) — the same year in which the verdicts test the success rate.
:func:`som_models.estimators.consequences.som_consequences` then fits, for ``k = 1 … J``
(``J`` = the longest descriptive profile)::

    Y_{i, ref + k} = α_k + δ_k S_i + γ_k' X_i + u_ik

so that ``k`` *is* the consequence year ``j`` (calendar year ``g + K − 1 + j``, as in the projection).
Covariates are taken at the reference period (before success is observed).

**The comparison** (:func:`descriptive_comparison`), over the consequence years ``E`` observed with at least
``min_persons`` persons in the smaller of the two groups, ``a_j = units[j]`` (0 beyond the profile)::

    r̄ = mean_E δ_j,   ā = mean_E a_j,   se(r̄) ≤ mean_E se_j

The yearly regressions share persons, so their covariance is not known from the table; ``mean_E se_j`` is
the Cauchy–Schwarz bound (``Var(Σ x_j / k) ≤ (Σ se_j / k)²`` under any correlation) — conservative. The
shape test is the Bonferroni bound ``p = min(1, |E| · min_j p_j)`` on the yearly z-tests of ``δ_j = a_j``.
The result is a :class:`DescriptiveComparison`, which the verdict engine (:mod:`som_models.verdicts`)
judges exactly like a causal path comparison (same level test, Holm family, margin and labels). Unlike the
success rate, ``a_j`` is *not* multiplied by the success rate: the contrast is already per successful person.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from som_models.comparison import Comparison
from som_models.estimators.consequences import ConsequenceEstimates, consequence_estimates
from som_models.estimators.results import z_value
from som_models.lazy_scipy import stats
from som_models.parameters.schema import DESCRIPTIVE, Consequence, ParameterSet

#: The estimand of :func:`som_consequences` rows: the descriptive success-vs-non-success contrast.
CONTRAST = "consequence"
#: Columns of :func:`descriptive_panel` added to the panel.
SUCCESS_COL, REFERENCE_COL = "som_success", "som_reference"
_NEED = ("outcome", "estimand", "event_time", "estimate", "se", "n_treated", "n_control")


#: a descriptive profile paired with the register-estimated contrast (``kind`` ``descriptive``; ``n_treated`` is
#: the largest, over the consequence years, of the smaller group — successes or non-successes; ``path`` has one
#: entry per estimated year with ``n_success`` and ``n_non_success``)
DescriptiveComparison = Comparison

def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _descriptive_item(params: ParameterSet, item: str) -> Consequence:
    try:
        cons = params.consequence(item)
    except KeyError:
        raise ValueError(f"{item!r} is not a consequence item of {params.intervention!r}") from None
    if cons.kind != DESCRIPTIVE:
        raise ValueError(f"consequences.{item} is a {cons.kind} profile; only a descriptive profile is compared with "
                         "the descriptive success-vs-non-success contrast")
    return cons


def contrast_rows(table: pl.DataFrame | None, item: str) -> list[dict]:
    """The descriptive contrast rows of ``item`` (``outcome == item``), sorted by year since success.

    Refuses a table that is not a descriptive contrast table: missing columns, or a row of ``item`` whose
    ``estimand`` is not ``consequence`` (e.g. a causal ``event`` ATT) — the two kinds are never mixed.
    """
    if table is None:
        return []
    missing = [c for c in _NEED if c not in table.columns]
    if missing:
        raise ValueError(f"descriptive contrast table: missing column(s) {', '.join(missing)} (expected the table of "
                         "som_consequences / consequence_estimates)")
    rows = table.filter(pl.col("outcome") == item).to_dicts()
    other = sorted({str(r["estimand"]) for r in rows} - {CONTRAST})
    if other:
        raise ValueError(f"descriptive contrast table: outcome {item!r} has rows of estimand {', '.join(other)}; a "
                         f"descriptive profile is compared only with {CONTRAST!r} rows (the success-vs-non-success "
                         "contrast), never with a causal estimate")
    return sorted((r for r in rows if r["event_time"] is not None), key=lambda r: int(r["event_time"]))


def realised_contrast(table: pl.DataFrame | None, item: str, *, min_persons: int = 1) -> dict[int, dict]:
    """Consequence year ``j`` → ``{estimate, se, n_success, n_non_success}`` for the usable years of ``item``.

    Usable: finite estimate, positive finite se, and at least ``min_persons`` persons in each group. Used by
    calibration to update a descriptive profile (units per successful vs non-successful person).
    """
    out = {}
    for r in contrast_rows(table, item):
        n1, n0 = int(r["n_treated"] or 0), int(r["n_control"] or 0)
        if _finite(r["estimate"]) and _finite(r["se"]) and r["se"] > 0 and min(n1, n0) >= min_persons:
            out[int(r["event_time"])] = {"estimate": float(r["estimate"]), "se": float(r["se"]),
                                         "n_success": n1, "n_non_success": n0}
    return out


def descriptive_comparison(params: ParameterSet, item: str, table: pl.DataFrame | None, *, alpha: float = 0.05,
                           min_persons: int = 20) -> DescriptiveComparison:
    """Compare the descriptive profile of ``item`` with the register contrast in ``table`` (module docstring).

    ``table`` has the schema of :func:`som_models.estimators.consequences.som_consequences` with
    ``event_time`` = consequence year (as :func:`estimate_descriptive` produces it); ``None`` (not estimated)
    gives a comparison without a realised value, which the verdict engine calls inconclusive.
    """
    cons = _descriptive_item(params, item)
    z = z_value(alpha)
    K = params.course_years
    unit = "units per successful minus per non-successful person and year (descriptive contrast)"
    what = f"success-vs-non-success contrast on {item}"
    path = []
    for r in contrast_rows(table, item):
        j = int(r["event_time"])
        a = cons.units[j - 1] if 1 <= j <= len(cons.units) else 0.0
        n1, n0 = int(r["n_treated"] or 0), int(r["n_control"] or 0)
        ok = j >= 1 and _finite(r["estimate"]) and _finite(r["se"]) and r["se"] > 0 and min(n1, n0) >= min_persons
        entry = {"event_time": K - 1 + j, "consequence_year": j, "assumed": a, "realised": r["estimate"], "se": r["se"],
                 "n_treated": min(n1, n0), "n_success": n1, "n_non_success": n0, "used": ok,
                 "beyond_profile": j > len(cons.units)}
        if ok:
            zz = (r["estimate"] - a) / r["se"]
            entry.update(ci_low=r["estimate"] - z * r["se"], ci_high=r["estimate"] + z * r["se"], z=zz,
                         p_value=float(2 * stats.norm.sf(abs(zz))))
        path.append(entry)
    used = [p for p in path if p["used"]]
    n_max = max((p["n_treated"] for p in path), default=0)
    assumption = f"effect_path:{item}"
    if not used:
        why = ("no descriptive contrast was estimated for this item" if table is None or not path else
               f"no consequence year with at least {min_persons} persons in each group")
        return DescriptiveComparison(assumption, item, float(cons.units[0]), None, None, why, n_max, None,
                                     tuple(path), unit, None, (), what, DESCRIPTIVE)
    realised_v = np.array([p["realised"] for p in used], dtype=float)
    assumed_v = np.array([p["assumed"] for p in used], dtype=float)
    ses = np.array([p["se"] for p in used], dtype=float)
    k = len(used)
    shape = None
    if k >= 2:
        zs = (realised_v - assumed_v) / ses
        shape = {"test": f"Bonferroni over {k} consequence years (max |z|; yearly regressions, no covariance)",
                 "statistic": float(np.abs(zs).max()), "df": None,
                 "p_value": float(min(1.0, k * 2 * stats.norm.sf(np.abs(zs).max())))}
    source = ("SØM's success-vs-non-success contrast (regression-adjusted, by year since success)" if k == 1 else
              "mean of SØM's yearly success-vs-non-success contrasts (regression-adjusted), conservative se "
              "(mean of the yearly se)")
    return DescriptiveComparison(assumption, item, float(assumed_v.mean()), float(realised_v.mean()), float(ses.mean()),
                                 source, n_max, None, tuple(path), unit, shape,
                                 tuple(p["consequence_year"] for p in used), what, DESCRIPTIVE)


def descriptive_comparisons(params: ParameterSet, table: pl.DataFrame | None, *, alpha: float = 0.05,
                            min_persons: int = 20) -> tuple[DescriptiveComparison, ...]:
    """:func:`descriptive_comparison` for every descriptive item of ``params`` (in document order)."""
    return tuple(descriptive_comparison(params, c.item, table, alpha=alpha, min_persons=min_persons)
                 for c in params.consequences if c.kind == DESCRIPTIVE)


def descriptive_panel(panel: pl.DataFrame, treatments: pl.DataFrame, params: ParameterSet, *,
                      id_col: str = "person_id", time_col: str = "year", start_col: str = "start_year") -> pl.DataFrame:
    """The panel rows of the listed persons with their success (``som_success``, 0/1) and reference period
    (``som_reference`` = start + K − 1), ready for :func:`som_consequences` (module docstring).

    Persons without a start year, without a row at the reference period (covariates are read there) or
    without an observed success measure in consequence year 1 are left out: their success is unknown.
    """
    sm = params.success_measure
    if sm is None:
        raise ValueError(f"parameter set {params.intervention!r} has no success_measure: success cannot be read from "
                         "the panel")
    for frame, name, cols in ((panel, "panel", (id_col, time_col, sm.outcome)), (treatments, "treatments", (id_col, start_col))):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
    K = params.course_years
    starts = (treatments.filter(pl.col(start_col).is_not_null())
              .group_by(id_col).agg(pl.col(start_col).min().cast(pl.Int64).alias("_g")))
    df = panel.join(starts, on=id_col, how="inner").with_columns(
        (pl.col("_g") + K - 1).alias(REFERENCE_COL), pl.col(time_col).cast(pl.Int64).alias("_t"))
    y = pl.col(sm.outcome).cast(pl.Float64)
    hit = (y == 0) if sm.rule == "zero" else (y > 0)
    success = (df.filter((pl.col("_t") == pl.col(REFERENCE_COL) + 1) & y.is_not_null() & y.is_not_nan())
               .group_by(id_col).agg(hit.cast(pl.Int64).max().alias(SUCCESS_COL)))
    at_ref = df.filter(pl.col("_t") == pl.col(REFERENCE_COL)).select(id_col).unique()
    keep = success.join(at_ref, on=id_col, how="inner")
    return df.join(keep, on=id_col, how="inner").drop("_g", "_t")


def estimate_descriptive(panel: pl.DataFrame, treatments: pl.DataFrame, params: ParameterSet, *,
                         items: tuple[str, ...] | None = None, covariates: tuple[str, ...] = (),
                         factors: tuple[str, ...] = (), baseline: bool = False, robust: str = "HC2",
                         alpha: float = 0.05, min_group_size: int = 5, id_col: str = "person_id",
                         time_col: str = "year", start_col: str = "start_year") -> ConsequenceEstimates | None:
    """SØM's contrast for the descriptive items of ``params`` on an evaluation panel (``None`` if it has none).

    :func:`descriptive_panel` then :func:`consequence_estimates` with ``reference = som_reference``, years
    ``1 … J`` (the longest descriptive profile), so ``event_time`` is the consequence year. ``items`` narrows
    the items (each must be descriptive); every item must be an outcome column of the panel.
    """
    wanted = [c for c in params.consequences if c.kind == DESCRIPTIVE and (items is None or c.item in items)]
    if items is not None:
        for item in items:
            _descriptive_item(params, item)
    if not wanted:
        return None
    missing = [c.item for c in wanted if c.item not in panel.columns]
    if missing:
        raise ValueError(f"panel: descriptive consequence item(s) {', '.join(missing)} are not outcome columns")
    data = descriptive_panel(panel, treatments, params, id_col=id_col, time_col=time_col, start_col=start_col)
    longest = max(len(c.units) for c in wanted)
    return consequence_estimates(data, outcomes=[c.item for c in wanted], id_col=id_col, time_col=time_col,
                                 success_col=SUCCESS_COL, reference=REFERENCE_COL, covariates=list(covariates),
                                 factors=list(factors), baseline=baseline, years=range(1, longest + 1), robust=robust,
                                 alpha=alpha, min_group_size=min_group_size)
