"""Randomised designs: effects by year since randomisation, difference in means and ANCOVA.

For each period ``t`` with ``e = t − start`` (years since randomisation), using the units with an outcome in
``t``:

* ``dim`` — difference in means, the OLS coefficient of ``Y_t = α + τ A + u`` (``A`` = 1 for the
  intervention arm);
* ``ancova`` — ``Y_t = α + τ A + β Y_base + γ'X + u`` with ``Y_base`` the outcome in the last pre-period
  (``e = −1``) and optional baseline covariates ``X`` (Frison & Pocock 1992; McKenzie 2012). Units without
  a baseline outcome are left out of the ANCOVA for that year (counted in ``notes``).

Standard errors: the classical OLS variance ``s²(X'X)⁻¹`` (for ``dim`` the pooled two-sample t-test) and a
heteroskedasticity-robust one, **HC2 by default** (``robust="HC2"``; HC0, HC1, HC3 available): for the
difference in means HC2 equals the Neyman (Welch) variance ``s₁²/n₁ + s₀²/n₀`` exactly (Imbens & Kolesár
2016, *REStat* 98(4)). The tidy table's ``se`` is the robust one; intervals are ``τ̂ ± z_{1−α/2} se``.
Pre-randomisation years (``e < 0``) are reported as difference-in-means balance checks.

``overall`` is the mean of the effects over ``e ≥ 0``; its SE uses the per-person influence functions of
the yearly coefficients (``ψ_i = n (X'X)⁻¹ x_i û_i``, HC0-type), summed across years within person, so it
clusters by person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.estimators._numerics import NotEstimable, inv_spd, ols_hc
from som_models.estimators.panel import check_columns
from som_models.estimators.results import ESTIMATES_SCHEMA, ci_label, notes_lines, tidy_lines, z_value
from som_models.lazy_scipy import stats
from som_models.results_base import MAX_ROWS, ResultDisplay, fmt, fmt_ci, fmt_p, render_summary

RCT_DETAIL_SCHEMA = {
    "outcome": pl.Utf8, "method": pl.Utf8, "event_time": pl.Int64, "time": pl.Int64, "estimate": pl.Float64,
    "se_classical": pl.Float64, "se_robust": pl.Float64, "p_robust": pl.Float64, "n_treated": pl.Int64,
    "n_control": pl.Int64, "mean_treated": pl.Float64, "mean_control": pl.Float64,
}


@dataclass(frozen=True, eq=False, repr=False)
class RctResult(ResultDisplay):
    """Tidy estimates (DESIGN §3.3 schema), per-year details (both SEs) and notes on the data handling.

    Result protocol (:mod:`som_models.results_base`): ``to_polars()`` is ``table``; ``summary()`` prints it with
    the robust p-values of ``details``.
    """

    table: pl.DataFrame
    details: pl.DataFrame
    overall: float
    overall_se: float
    robust: str
    method: str
    notes: Mapping[str, object] = field(default_factory=dict)
    #: significance level of the table's intervals
    alpha: float = 0.05

    def _repr_fields(self) -> dict[str, Any]:
        outcomes = self.table.get_column("outcome").unique(maintain_order=True).to_list()
        return {"outcome": outcomes[0] if len(outcomes) == 1 else tuple(outcomes), "method": self.method,
                "robust": self.robust, "years": int((self.table.get_column("estimand") == "event").sum()),
                "overall": self.overall, "se": self.overall_se}

    def to_polars(self) -> pl.DataFrame:
        """The tidy table: one ``event`` row per year since randomisation and the ``overall`` row."""
        return self.table

    def summary(self, *, max_rows: int | None = MAX_ROWS) -> str:
        """Method, standard errors, effects by year since randomisation with p-values, the overall effect."""
        how = {"dim": "difference in means (OLS of Y_t on the arm)",
               "ancova": "ANCOVA (Y_t on the arm, the baseline outcome and covariates)"}
        p = {(r["outcome"], r["event_time"]): r["p_robust"] for r in self.details.iter_rows(named=True)}
        table = self.table.with_columns(pl.Series("p", [fmt_p(p.get((r["outcome"], r["event_time"])))
                                                        for r in self.table.iter_rows(named=True)], dtype=pl.Utf8))
        n_t = self.details.get_column("n_treated").max() if self.details.height else None
        n_c = self.details.get_column("n_control").max() if self.details.height else None
        info = [("Design", "randomised (arm 1 = intervention, 0 = control)"),
                ("Method", how.get(self.method, self.method)),
                ("Standard errors", f"{self.robust} heteroskedasticity-robust; overall clustered by person"),
                ("Persons (largest year)", f"{fmt(n_t)} intervention, {fmt(n_c)} control"),
                ("Intervals", f"pointwise {ci_label(self.alpha)}")]
        body = tidy_lines(table, self.alpha, drop=("group",), max_rows=max_rows, extra=("p",))
        z = z_value(self.alpha)
        footer = [f"Overall (mean over e ≥ 0): {fmt(self.overall)} (se {fmt(self.overall_se)}), {ci_label(self.alpha)} "
                  f"{fmt_ci(self.overall - z * self.overall_se, self.overall + z * self.overall_se)}",
                  "Rows with e < 0 are balance checks before randomisation (difference in means)."]
        footer += notes_lines(self.notes)
        return render_summary("Randomised comparison by year since randomisation", info, body, footer)


def _arm_and_start(data: pl.DataFrame, id_col: str, arm_col: str, start: int | str) -> pl.DataFrame:
    cols = [pl.col(id_col), pl.col(arm_col).cast(pl.Float64).alias("_arm")]
    if isinstance(start, str):
        cols.append(pl.col(start).cast(pl.Int64).alias("_start"))
    units = data.select(cols)
    per_unit = units.group_by(id_col).agg(pl.col("_arm").n_unique().alias("_k"), pl.col("_arm").first(),
                                          *([pl.col("_start").n_unique().alias("_ks"), pl.col("_start").first()]
                                            if isinstance(start, str) else []))
    if per_unit.filter(pl.col("_k") > 1).height:
        raise ValueError(f"column {arm_col!r} must be constant within each unit (randomised arm)")
    if isinstance(start, str) and per_unit.filter(pl.col("_ks") > 1).height:
        raise ValueError(f"column {start!r} must be constant within each unit (randomisation period)")
    arms = set(per_unit.get_column("_arm").drop_nulls().to_list())
    if per_unit.get_column("_arm").null_count():
        raise ValueError(f"column {arm_col!r} has missing values")
    if not arms <= {0.0, 1.0} or len(arms) < 2:
        raise ValueError(f"column {arm_col!r} must be 0 (control) / 1 (intervention) with both arms present "
                         f"(found {sorted(arms)})")
    if isinstance(start, str) and per_unit.get_column("_start").null_count():
        raise ValueError(f"column {start!r} has missing values")
    out = per_unit.select(id_col, "_arm", *(["_start"] if isinstance(start, str) else []))
    if not isinstance(start, str):
        out = out.with_columns(pl.lit(int(start), dtype=pl.Int64).alias("_start"))
    return out


def rct_effects(
    data: pl.DataFrame,
    *,
    outcome: str,
    id_col: str,
    time_col: str,
    arm_col: str,
    start: int | str,
    method: str = "dim",
    covariates: list[str] | tuple[str, ...] = (),
    robust: str = "HC2",
    alpha: float = 0.05,
) -> RctResult:
    """Effects by year since randomisation (see module docstring). ``start`` is a period or a column name."""
    if method not in ("dim", "ancova"):
        raise ValueError(f"method must be 'dim' (difference in means) or 'ancova' (got {method!r})")
    if robust not in ("HC0", "HC1", "HC2", "HC3"):
        raise ValueError(f"robust must be HC0, HC1, HC2 or HC3 (got {robust!r})")
    if method == "dim" and covariates:
        raise ValueError("covariates need method='ancova'")
    start_cols = [start] if isinstance(start, str) else []
    check_columns(data, [outcome, id_col, time_col, arm_col, *covariates, *start_cols],
                  numeric=[outcome, time_col, arm_col, *covariates, *start_cols])
    dup = data.select(id_col, time_col).is_duplicated().sum()
    if dup:
        raise ValueError(f"{dup} rows repeat an ({id_col}, {time_col}) pair; the panel must have one row per unit and period")
    units = _arm_and_start(data, id_col, arm_col, start)
    df = (data.select(id_col, pl.col(time_col).cast(pl.Int64).alias("_t"), pl.col(outcome).cast(pl.Float64).alias("_y"),
                      *[pl.col(c).cast(pl.Float64).alias(f"_x{k}") for k, c in enumerate(covariates)])
          .join(units, on=id_col, how="left")
          .with_columns((pl.col("_t") - pl.col("_start")).alias("_e")))
    notes: dict[str, object] = {}
    missing = df.filter(pl.col("_y").is_null() | pl.col("_y").is_nan()).height
    if missing:
        notes["rows_missing_outcome_dropped"] = missing
    df = df.filter(pl.col("_y").is_not_null() & pl.col("_y").is_not_nan())
    if method == "ancova":
        base = df.filter(pl.col("_e") == -1).select(id_col, pl.col("_y").alias("_base"),
                                                    *[pl.col(f"_x{k}").alias(f"_bx{k}") for k in range(len(covariates))])
        if base.height == 0:
            raise ValueError(f"ANCOVA needs the outcome in the period before randomisation (e = -1); column {outcome!r} "
                             "has no such rows")
        df = df.join(base, on=id_col, how="left")
    z = z_value(alpha)
    rows, details = [], []
    influences: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    id_codes: dict[Any, int] = {}
    common = not isinstance(start, str)
    for e in sorted(df.get_column("_e").unique().to_list()):
        sub = df.filter(pl.col("_e") == e)
        use_ancova = method == "ancova" and e >= 0
        if use_ancova:
            need = ["_base", *[f"_bx{k}" for k in range(len(covariates))]]
            lacking = sub.filter(pl.any_horizontal([pl.col(c).is_null() for c in need])).height
            if lacking:
                notes[f"e={e}: units without baseline dropped from ANCOVA"] = lacking
                sub = sub.drop_nulls(need)
        arm = sub.get_column("_arm").to_numpy()
        y = sub.get_column("_y").to_numpy()
        n1, n0 = int(arm.sum()), int((1 - arm).sum())
        if n1 < 2 or n0 < 2:
            notes[f"e={e}: skipped"] = f"{n1} intervention and {n0} control units with an outcome"
            continue
        cols = [np.ones_like(y), arm]
        if use_ancova:
            cols.append(sub.get_column("_base").to_numpy())
            cols += [sub.get_column(f"_bx{k}").to_numpy() for k in range(len(covariates))]
        x = np.column_stack(cols)
        try:
            beta, v_cl, v_rob = ols_hc(x, y, robust)
        except NotEstimable as exc:
            notes[f"e={e}: skipped"] = str(exc)
            continue
        tau, se_cl, se_rob = float(beta[1]), float(np.sqrt(v_cl[1, 1])), float(np.sqrt(v_rob[1, 1]))
        p_rob = float(2 * stats.norm.sf(abs(tau / se_rob))) if se_rob > 0 else float("nan")
        label = "ancova" if use_ancova else "dim"
        details.append({"outcome": outcome, "method": label, "event_time": e, "time": (int(start) + e) if common else None,
                        "estimate": tau, "se_classical": se_cl, "se_robust": se_rob, "p_robust": p_rob,
                        "n_treated": n1, "n_control": n0, "mean_treated": float(y[arm == 1].mean()),
                        "mean_control": float(y[arm == 0].mean())})
        rows.append({"outcome": outcome, "estimand": "event", "group": None, "time": (int(start) + e) if common else None,
                     "event_time": e, "estimate": tau, "se": se_rob, "ci_low": tau - z * se_rob, "ci_high": tau + z * se_rob,
                     "n_treated": n1, "n_control": n0})
        if e >= 0:
            xtx_inv = inv_spd(x.T @ x)
            resid = y - x @ beta
            psi = (x @ xtx_inv[:, 1]) * resid  # (1/n) scaling folded in: θ̂ − θ ≈ Σ_i psi_i
            ids = sub.get_column(id_col).to_list()
            codes = np.array([id_codes.setdefault(u, len(id_codes)) for u in ids], dtype=np.int64)
            influences[e] = (codes, psi)
    post = [e for e in influences]
    overall, overall_se = float("nan"), float("nan")
    if post:
        phi = np.zeros(len(id_codes))
        for e in post:
            codes, psi = influences[e]
            np.add.at(phi, codes, psi / len(post))
        est_post = [r["estimate"] for r in rows if r["event_time"] is not None and r["event_time"] >= 0]
        overall = float(np.mean(est_post))
        overall_se = float(np.sqrt(phi @ phi))
        last = [d for d in details if d["event_time"] >= 0]
        rows.append({"outcome": outcome, "estimand": "overall", "group": None, "time": None, "event_time": None,
                     "estimate": overall, "se": overall_se, "ci_low": overall - z * overall_se,
                     "ci_high": overall + z * overall_se, "n_treated": max(d["n_treated"] for d in last),
                     "n_control": max(d["n_control"] for d in last)})
    else:
        notes["overall"] = "no post-randomisation period with both arms observed"
    return RctResult(table=pl.DataFrame(rows, schema=ESTIMATES_SCHEMA), details=pl.DataFrame(details, schema=RCT_DETAIL_SCHEMA),
                     overall=overall, overall_se=overall_se, robust=robust, method=method, notes=notes,
                     alpha=alpha)
