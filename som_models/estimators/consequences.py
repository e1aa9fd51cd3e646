"""SØM consequence estimation: success vs non-success within a target group, by year since success.

SØM's consequence profiles say how much less (or more) a person who *succeeds* (e.g. becomes self-supporting)
uses each service in each of the following years, compared with a person from the same target group who does
not succeed, adjusted for background characteristics. For every year ``k`` since the success measurement
(``t = ref + k``) we fit, on the target-group members with an outcome in ``t``::

    Y_{i,ref+k} = α_k + δ_k S_i + γ_k' X_i + u_ik

with ``S`` the 0/1 success indicator, ``X`` the adjustment covariates (numeric columns taken at the reference
period, dummy-coded ``factors`` such as sex or municipality, and optionally the baseline outcome at
``ref − 1``), and report ``δ_k`` with a heteroskedasticity-robust standard error (**HC2** by default; HC0,
HC1, HC3 available). SØM only publishes consequences that are significant at the 5 % level; here that rule is
kept as the boolean column ``significant_5pct`` (``p < 0.05``, two-sided, normal reference) — nothing is
filtered out.

This is a regression adjustment under selection on observables, not a causal design: it reproduces how SØM
builds its knowledge base (Socialstyrelsen, *SØM — metode og antagelser*), so that the profiles can be
re-estimated and compared with the assumed ones.

:func:`som_consequences` returns the table; :func:`consequence_estimates` returns the same table inside a
:class:`ConsequenceEstimates` result (with the settings, ``summary()``, ``to_polars()``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from som_models.estimators._numerics import NotEstimable, ols_hc
from som_models.estimators.panel import check_columns
from som_models.estimators.results import ESTIMATES_SCHEMA, ci_label, tidy_lines, z_value
from som_models.lazy_scipy import stats
from som_models.results_base import MAX_ROWS, ResultDisplay, fmt_p, render_summary

#: The tidy estimates schema plus the p-value and SØM's 5 % significance flag.
CONSEQUENCE_SCHEMA = {**ESTIMATES_SCHEMA, "p_value": pl.Float64, "significant_5pct": pl.Boolean}


def som_consequences(
    data: pl.DataFrame,
    *,
    outcomes: list[str] | tuple[str, ...],
    id_col: str,
    time_col: str,
    success_col: str,
    reference: int | str,
    covariates: list[str] | tuple[str, ...] = (),
    factors: list[str] | tuple[str, ...] = (),
    baseline: bool = False,
    years: range | list[int] = range(1, 11),
    robust: str = "HC2",
    alpha: float = 0.05,
    min_group_size: int = 5,
) -> pl.DataFrame:
    """Consequence profile ``δ_k`` for each outcome and year ``k`` since success (schema ``CONSEQUENCE_SCHEMA``).

    ``reference`` is the period the success is measured in (an int for everyone, or a column name when it
    differs between persons); ``success_col`` is 0/1 and constant within person. Covariates and factors are
    taken from the row at the reference period (so age at success can be a column ``age``). Years where either
    group has fewer than ``min_group_size`` persons are skipped (not estimated) rather than reported.
    """
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    ref_cols = [reference] if isinstance(reference, str) else []
    check_columns(data, [*outcomes, id_col, time_col, success_col, *covariates, *factors, *ref_cols],
                  numeric=[*outcomes, time_col, success_col, *covariates, *ref_cols])
    per_person = data.group_by(id_col).agg(pl.col(success_col).n_unique().alias("_k"),
                                           pl.col(success_col).first().cast(pl.Float64).alias("_s"),
                                           *([pl.col(ref_cols[0]).first().cast(pl.Int64).alias("_ref"),
                                              pl.col(ref_cols[0]).n_unique().alias("_kr")] if ref_cols else []))
    if per_person.filter(pl.col("_k") > 1).height:
        raise ValueError(f"column {success_col!r} must be constant within each person")
    if ref_cols and per_person.filter(pl.col("_kr") > 1).height:
        raise ValueError(f"column {reference!r} must be constant within each person")
    s_vals = set(per_person.get_column("_s").drop_nulls().to_list())
    if per_person.get_column("_s").null_count() or not s_vals <= {0.0, 1.0} or len(s_vals) < 2:
        raise ValueError(f"column {success_col!r} must be 0/1 without missing values, with both successes and non-successes")
    if not ref_cols:
        per_person = per_person.with_columns(pl.lit(int(reference), dtype=pl.Int64).alias("_ref"))
    df = data.with_columns(pl.col(time_col).cast(pl.Int64).alias("_t")).join(
        per_person.select(id_col, "_s", "_ref"), on=id_col, how="left")
    at_ref = df.filter(pl.col("_t") == pl.col("_ref")).select(
        id_col, *[pl.col(c).cast(pl.Float64).alias(f"_c{k}") for k, c in enumerate(covariates)],
        *[pl.col(f).cast(pl.Utf8).alias(f"_f{k}") for k, f in enumerate(factors)])
    n_persons = per_person.height
    if at_ref.height < n_persons:
        raise ValueError(f"{n_persons - at_ref.height} persons have no row at their reference period; covariates are "
                         "taken from that row")
    for k, c in enumerate(covariates):
        if at_ref.get_column(f"_c{k}").null_count():
            raise ValueError(f"covariate {c!r} is missing at the reference period for some persons")
    dummies: list[str] = []
    for k, f in enumerate(factors):
        if at_ref.get_column(f"_f{k}").null_count():
            raise ValueError(f"factor {f!r} is missing at the reference period for some persons")
        levels = sorted(at_ref.get_column(f"_f{k}").unique().to_list())
        for lvl in levels[1:]:
            name = f"_d{k}_{len(dummies)}"
            at_ref = at_ref.with_columns((pl.col(f"_f{k}") == lvl).cast(pl.Float64).alias(name))
            dummies.append(name)
    design_cols = [f"_c{k}" for k in range(len(covariates))] + dummies
    z = z_value(alpha)
    rows = []
    for outcome in outcomes:
        base = None
        if baseline:
            base = df.filter(pl.col("_t") == pl.col("_ref") - 1).select(id_col, pl.col(outcome).cast(pl.Float64).alias("_base"))
        for k in years:
            sub = df.filter(pl.col("_t") == pl.col("_ref") + k).select(id_col, "_s", pl.col(outcome).cast(pl.Float64).alias("_y"))
            sub = sub.join(at_ref.select(id_col, *design_cols), on=id_col, how="inner")
            if base is not None:
                sub = sub.join(base, on=id_col, how="inner")
            sub = sub.drop_nulls().filter(pl.col("_y").is_not_nan())
            s = sub.get_column("_s").to_numpy()
            n1, n0 = int(s.sum()), int((1 - s).sum())
            if n1 < min_group_size or n0 < min_group_size:
                continue
            cols = [np.ones(sub.height), s] + [sub.get_column(c).to_numpy() for c in design_cols]
            if base is not None:
                cols.append(sub.get_column("_base").to_numpy())
            x = np.column_stack(cols)
            keep = [0, 1] + [j for j in range(2, x.shape[1]) if np.ptp(x[:, j]) > 0]
            x = x[:, keep]
            try:
                beta, _, v = ols_hc(x, sub.get_column("_y").to_numpy(), robust)
            except NotEstimable:
                continue
            est, se = float(beta[1]), float(np.sqrt(v[1, 1]))
            p = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan")
            t_val = None if ref_cols else int(reference) + k
            rows.append({"outcome": outcome, "estimand": "consequence", "group": None, "time": t_val, "event_time": k,
                         "estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se,
                         "n_treated": n1, "n_control": n0, "p_value": p, "significant_5pct": bool(p < 0.05)})
    return pl.DataFrame(rows, schema=CONSEQUENCE_SCHEMA)


@dataclass(frozen=True, eq=False, repr=False)
class ConsequenceEstimates(ResultDisplay):
    """SØM consequence profiles (``table``, schema ``CONSEQUENCE_SCHEMA``) with the settings that produced them.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` is ``table``; ``summary()`` prints every
    outcome × year with SE, interval, p-value and SØM's 5 % flag.
    """

    table: pl.DataFrame
    reference: int | str
    covariates: tuple[str, ...]
    factors: tuple[str, ...]
    baseline: bool
    robust: str
    alpha: float

    def _repr_fields(self) -> dict[str, Any]:
        outcomes = self.table.get_column("outcome").unique(maintain_order=True).to_list()
        return {"outcomes": len(outcomes), "rows": self.table.height,
                "significant_5pct": int(self.table.get_column("significant_5pct").sum()), "robust": self.robust}

    def to_polars(self) -> pl.DataFrame:
        """The consequence table: one ``consequence`` row per outcome and year since success."""
        return self.table

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Design, adjustment, each outcome × year's consequence with SE, interval and p-value."""
        adjust = [*self.covariates, *(f"{f} (dummies)" for f in self.factors)]
        if self.baseline:
            adjust.append("baseline outcome (reference − 1)")
        ref = f"column {self.reference!r}" if isinstance(self.reference, str) else str(self.reference)
        info = [("Design", "success vs non-success within the target group, regression-adjusted (descriptive)"),
                ("Reference period", ref), ("Adjusted for", ", ".join(adjust) or "nothing"),
                ("Standard errors", f"{self.robust} heteroskedasticity-robust"),
                ("Intervals", f"pointwise {ci_label(self.alpha)}")]
        table = self.table.with_columns(
            pl.Series("p", [fmt_p(x) for x in self.table.get_column("p_value").to_list()], dtype=pl.Utf8),
            pl.when(pl.col("significant_5pct")).then(pl.lit("*")).otherwise(pl.lit("")).alias("5 %"))
        body = tidy_lines(table, self.alpha, drop=("estimand", "group"), max_rows=max_rows, extra=("p", "5 %"))
        footer = ["e = years since success; n_treated = successes, n_control = non-successes.",
                  "SØM publishes only consequences significant at 5 % (*); here they are flagged, not filtered."]
        return render_summary("SØM consequence profiles", info, body, footer)


def consequence_estimates(data: pl.DataFrame, **kwargs: Any) -> ConsequenceEstimates:
    """:func:`som_consequences` (same arguments, same numbers) wrapped in a :class:`ConsequenceEstimates` result."""
    bound = inspect.signature(som_consequences).bind(data, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    return ConsequenceEstimates(table=som_consequences(data, **kwargs), reference=a["reference"],
                                covariates=tuple(a["covariates"]), factors=tuple(a["factors"]),
                                baseline=bool(a["baseline"]), robust=a["robust"], alpha=float(a["alpha"]))
