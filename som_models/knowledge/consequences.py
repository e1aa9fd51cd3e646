"""SØM-style consequence profiles estimated from a register panel of a target group (``som kb consequences``).

SØM builds its knowledge base's consequence estimates like this (Socialstyrelsen, vidensdatabasen konsekvenser;
shared/research/domain.md §1.4): the members of a register-delimited target group are split into a **success**
group (e.g. no shelter stay the year after delimitation) and a **non-success** group; both groups' use of public
services is followed in the following years; the difference is adjusted in regressions for systematic
differences (sex, age, …); only estimates significant at 5 % are shown; the knowledge is *not causal*.

Here, for a panel of target-group members (one row per person and year) with delimitation year ``d`` (one year
for everyone, or a column), success is the success measure in year ``d + 1`` (``rule: zero`` — the outcome is 0;
``positive`` — it is above 0), covariates are read at ``d``, and for ``k = 1 … J``
(:func:`som_models.estimators.consequences.som_consequences`)::

    Y_{i, d + k} = α_k + δ_k S_i + γ_k' X_i + u_ik          (HC2 standard errors)

so ``k`` is the consequence year ``j`` of a calculation document (year 1 = the success year, as in
:mod:`som_models.descriptive`). ``δ_k`` is the profile's ``units[k]``: the difference per successful person.

:func:`profile_document` turns the (already small-cell-suppressed) estimates into a document whose
``consequences`` section drops into a calculation document as ``kind: descriptive`` items, with the full
estimate table (SE, interval, p-value, SØM's 5 % flag, group sizes) and provenance. A profile runs from year 1
to the last year before the first year that is suppressed or not estimated (a profile has no holes); with
``zero_insignificant`` the years that are not significant at 5 % get ``units 0`` (SØM's publication rule,
stated in the document) — by default they keep their estimate and the flag says which they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from som_models.estimators.consequences import ConsequenceEstimates, consequence_estimates

SUCCESS_COL, REFERENCE_COL = "som_success", "som_delimitation"
RULES = ("zero", "positive")


def success_panel(panel: pl.DataFrame, *, success_outcome: str, rule: str, reference: int | str,
                  id_col: str = "person_id", time_col: str = "year") -> pl.DataFrame:
    """The panel rows of persons whose success is observed, with ``som_success`` (0/1) and ``som_delimitation``.

    A person is kept when the panel has a row at the delimitation year (covariates are read there) and a value of
    ``success_outcome`` in the year after (their success is otherwise unknown)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)} (got {rule!r})")
    need = [id_col, time_col, success_outcome] + ([reference] if isinstance(reference, str) else [])
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ValueError(f"panel: missing column(s) {', '.join(missing)} (has {', '.join(panel.columns)})")
    ref = pl.col(reference).cast(pl.Int64) if isinstance(reference, str) else pl.lit(int(reference), dtype=pl.Int64)
    df = panel.with_columns(ref.alias(REFERENCE_COL), pl.col(time_col).cast(pl.Int64).alias("_t"))
    if isinstance(reference, str):
        varying = df.group_by(id_col).agg(pl.col(REFERENCE_COL).n_unique().alias("n")).filter(pl.col("n") > 1)
        if varying.height:
            raise ValueError(f"panel: column {reference!r} (delimitation year) varies within {varying.height} person(s)")
        df = df.with_columns(pl.col(REFERENCE_COL).drop_nulls().first().over(id_col))
    y = pl.col(success_outcome).cast(pl.Float64)
    hit = (y == 0) if rule == "zero" else (y > 0)
    success = (df.filter((pl.col("_t") == pl.col(REFERENCE_COL) + 1) & y.is_not_null() & y.is_not_nan())
               .group_by(id_col).agg(hit.cast(pl.Int64).max().alias(SUCCESS_COL)))
    at_ref = df.filter(pl.col("_t") == pl.col(REFERENCE_COL)).select(id_col).unique()
    keep = success.join(at_ref, on=id_col, how="inner")
    return df.join(keep, on=id_col, how="inner").drop("_t")


def estimate_profiles(panel: pl.DataFrame, *, outcomes: Sequence[str], success_outcome: str, rule: str,
                      reference: int | str, years: int = 10, covariates: Sequence[str] = (),
                      factors: Sequence[str] = (), baseline: bool = False, robust: str = "HC2",
                      min_group_size: int = 5, id_col: str = "person_id", time_col: str = "year") -> ConsequenceEstimates:
    """δ_k for each outcome and ``k = 1 … years`` (module docstring); a year is skipped when either group has fewer
    than ``min_group_size`` persons with an outcome."""
    if years < 1:
        raise ValueError(f"years must be at least 1 (got {years})")
    if not outcomes:
        raise ValueError("name at least one outcome")
    missing = [c for c in outcomes if c not in panel.columns]
    if missing:
        raise ValueError(f"panel: outcome column(s) {', '.join(missing)} not found (has {', '.join(panel.columns)})")
    data = success_panel(panel, success_outcome=success_outcome, rule=rule, reference=reference, id_col=id_col,
                         time_col=time_col)
    if data.height == 0:
        raise ValueError("no person has a row at the delimitation year and an observed success measure the year after")
    return consequence_estimates(data, outcomes=list(outcomes), id_col=id_col, time_col=time_col,
                                 success_col=SUCCESS_COL, reference=REFERENCE_COL, covariates=list(covariates),
                                 factors=list(factors), baseline=baseline, years=range(1, years + 1), robust=robust,
                                 min_group_size=min_group_size)


def profile_document(table: pl.DataFrame, *, outcomes: Sequence[str], success_measure: Mapping[str, Any],
                     target_group: str, min_cell: int, zero_insignificant: bool = False,
                     provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The profile document from a suppressed estimate table (``suppressed`` column, nulls in withheld rows).

    ``consequences.<item>`` = ``{kind: descriptive, units, se, source}`` for years 1 … the last consecutive
    published year; items without a published year 1 are listed under ``not_published`` with the reason.
    """
    rows = table.to_dicts()
    consequences: dict[str, Any] = {}
    not_published: dict[str, str] = {}
    for item in outcomes:
        mine = {r["event_time"]: r for r in rows if r["outcome"] == item}
        units, ses, zeroed = [], [], []
        k = 1
        while k in mine and not mine[k].get("suppressed") and mine[k]["estimate"] is not None:
            r = mine[k]
            if zero_insignificant and not r["significant_5pct"]:
                units.append(0.0)
                zeroed.append(k)
            else:
                units.append(float(r["estimate"]))
            ses.append(float(r["se"]))
            k += 1
        if not units:
            reason = (f"suppressed: fewer than {min_cell} persons in a group" if 1 in mine
                      else "not estimated: too few persons in a group")
            not_published[item] = f"year 1 {reason}"
            continue
        stop = ("" if k not in mine and k - 1 == max(mine, default=0) else
                f"; stops before year {k} ({'suppressed' if k in mine else 'not estimated'})")
        rule = (f"; years {zeroed} not significant at 5 % set to 0 (SØM's publication rule)" if zeroed else
                "; every year kept, see estimates.significant_5pct" if not zero_insignificant else "")
        consequences[item] = {
            "kind": "descriptive", "units": units, "se": ses,
            "source": (f"som kb consequences on target group {target_group}: success vs non-success by year since "
                       f"success, regression-adjusted, HC2 SEs (descriptive, not causal){stop}{rule}"),
        }
    return {
        "kind": "descriptive",
        "target_group": target_group,
        "success_measure": dict(success_measure),
        "status": "estimated — register panel, success vs non-success (SØM's method); not causal",
        "min_cell": int(min_cell),
        "consequences": consequences,
        "not_published": not_published,
        "estimates": [{k: v for k, v in r.items() if k not in ("estimand", "group")} for r in rows],
        "provenance": dict(provenance or {}),
    }
