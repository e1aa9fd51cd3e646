"""Confirm or refute: one verdict per assumption of a parameter set, from the realised estimates.

Assumptions of a parameter set (DESIGN §4; the mapping to estimates is :mod:`som_models.assumptions`):

* ``success_rate`` — the assumed net success rate ``s``, compared with the realised one: the ATT on the
  success indicator in consequence year 1 (event time ``e = K``, ``K`` = ``course_years``);
* ``effect_path:<item>`` — for each consequence item the implied effect path
  ``a_e = s · units[e − K + 1]`` (success rate × consequence profile; 0 beyond the profile), compared with
  the realised event-time ATTs ``r_e`` over the consequence years observed in the data (``e ≥ K``);
* ``course_path:<item>`` — for each consequence item with a *causal* course-year profile
  (``consequences.<item>.course``, units per participant) the assumed course path ``b_e = course[e + 1]``
  compared with the realised event-time ATTs over the course years observed (``0 ≤ e < K``). A separate
  assumption, not part of the effect path: the course values are per participant and do not scale with the
  success rate, so they are a separate claim of the business case — one hypothesis of the Holm family, with its
  own verdict, update and audit row — and an effect path judged on ``e ≥ K`` keeps meaning what it meant. The
  tests, labels and intervals are the effect path's (the same code, :func:`_event_path`); the level's SE never
  comes from the estimator's ``overall`` row (that is the mean over the consequence years). A *descriptive*
  course profile has no register counterpart here and is not tested.

**Level test** (the budget-relevant quantity: SØM's NPV is linear in the path). With the observed
consequence years ``E`` (event times with at least ``min_persons`` treated persons and a standard error),
``r̄ = mean_E r_e`` and ``ā = mean_E a_e``::

    z = (r̄ − ā) / se(r̄),   p = 2 · (1 − Φ(|z|))

``se(r̄) = √(1ᵀ V_E 1) / |E|`` from the covariance ``V`` of the event-time estimates when it is given
(:class:`PathCovariance`, from the influence functions); else the estimator's ``overall`` row when it is the
mean over exactly these event times; else the conservative bound ``mean_E se_e`` (Cauchy–Schwarz:
``Var(Σ x_e / k) ≤ (Σ se_e / k)²`` under any correlation).

**Path (shape) test**, over the same years, ``d_e = r_e − a_e``: with ``V`` the Wald statistic
``W = dᵀ V_E⁺ d ~ χ²(rank V_E)``; without ``V`` the Bonferroni bound ``p = min(1, |E| · min_e p_e)`` on the
per-year z-tests (valid under any dependence). ``path_test = "mean"`` (default) decides on the level test
and reports the path test as evidence; ``path_test = "joint"`` decides on the path test (direction from the
level). The default is the level test because it is directional and budget-relevant, while with adjacent
years correlated at ≈ 0.75 (the demo world) the Wald statistic is dominated by year-to-year contrasts
that do not move the NPV.

**Multiplicity.** The Holm family is exactly the assumptions tested (``judge(tested=…)``; an evaluation of
one effect is a family of one) that pass the data gates below. The refutation p-values are Holm (1979)-adjusted
across it, and so are the equivalence (TOST) p-values — ``consistent`` is shown at the same level as
``refuted``. Pre-trend tests are a gate, not a claim: each outcome's pre-trend test is judged at the
unadjusted ``alpha`` (adjusting it across outcomes would weaken the gate as more outcomes are evaluated).

**Equivalence.** With the margin ``δ = margin · |ā|``, the two one-sided tests (TOST, Schuirmann 1987) of
``H₀: d ≤ −δ`` and ``H₀: d ≥ δ`` give ``p_TOST = max(1 − Φ((d + δ)/se), Φ((d − δ)/se))``, i.e. the
``1 − 2α'`` interval of ``d`` lies inside ``(−δ, δ)`` when ``p_TOST < α'``. A zero assumption has no
relative margin and cannot be shown consistent.

**Intervals.** The interval printed beside a verdict (``ci_low``/``ci_high``) is the one the decision used:
for the level test at Holm's step level ``1 − α/h`` (:func:`holm_divisors`: ``h = m − k + 1`` for the
``k``-th smallest p-value when rejected, ``h = m − r`` at the step where the procedure stopped after ``r``
rejections), so it excludes the assumption exactly when the verdict is ``refuted``. A ``consistent``
verdict also reports the TOST interval (``1 − 2α/h``, within ``±δ``). Decisions taken by a test without such an
interval (the Wald path test, randomisation inference, the wild cluster bootstrap) print none; the normal
pointwise interval is then in ``evidence["pointwise_ci"]``, labelled as such. ``evidence["ci_level"]`` says
which level the printed interval has.

**Few clusters** (``judge(inference=…)``, :class:`AssignmentInfo` per assumption or outcome). When the
treatment was assigned by cluster (e.g. a roll-out by municipality) the evidence rests on the number ``k`` of
treated clusters, not of persons. With ``k ≤ 5`` the verdict is ``inconclusive`` unless an exact
randomisation-inference p-value (``exact_p``) is given; it then decides the refutation, and equivalence needs
its exact counterpart (``exact_tost_p``). With ``k < 20`` the sentence says that the evidence rests on ``k``
clusters and the decision uses a few-cluster p-value when given — ``exact_p``, else the wild cluster bootstrap's
``wild_p`` (:func:`som_models.estimators.bootstrap.wild_cluster_bootstrap`, Webb weights) —, else the
normal-theory test, with a warning. When a few-cluster p-value decides the refutation, ``consistent`` needs a
few-cluster equivalence p-value too (``exact_tost_p`` / ``wild_tost_p``): a normal-theory interval that is
not trusted to refute is not trusted to confirm either.

**Labels**, in order of precedence:

1. ``inconclusive`` — not estimable; fewer than ``min_persons`` treated persons; the outcome's pre-trend
   test rejects parallel trends at ``alpha``; or at most 5 treated clusters without an exact answer;
2. ``refuted-overestimated`` / ``refuted-underestimated`` — difference shown: Holm-adjusted refutation
   p < ``alpha``; *overestimated* when the realised effect is smaller in magnitude than assumed or of the
   opposite sign (over/under refer to the size of the effect in the assumed direction; an assumption of
   exactly zero that meets a significant effect is *underestimated*);
3. ``consistent`` — equivalence shown: Holm-adjusted ``p_TOST < alpha`` (``consistency = "tost"``, the only
   rule);
4. ``inconclusive`` otherwise — too little power to tell.

**Repeated looks** (``judge(looks=…)``, :mod:`som_models.sequential`). When an evaluation is rerun on cumulative
vintages, each assumption's tests form a sequence of looks at the same hypothesis; with ``looks`` given (the data
hash of this test and the stored earlier looks) every p-value above is replaced by its *repeated p-value* under
Lan–DeMets alpha spending (linear by default; Pocock- or O'Brien–Fleming-type on request: ``sequential``) over the
information fraction ``t = I/(I + I₀)`` (``I = 1/se²``),
before Holm; the printed intervals are the repeated confidence intervals ``± c_k(α/h)·se`` (TOST ``± c_k(2α/h)·se``).
A rerun on data already looked at is the same look again (same boundary, no α spent). The look number,
information, information fraction, α spent and the boundary and nominal level used are in
``evidence["sequential"]``. Without ``looks`` (a single analysis) the levels are the fixed-sample ones above;
``sequential = "none"`` switches the adjustment off.

The former default ``consistency = "precision"`` (``consistent`` when the interval was narrow and did not
contain both zero and the assumption) is refused: it is not a test — with the truth exactly on the ±50 %
margin it called effect paths consistent in 22–34 % of simulated evaluations, sometimes next to an interval
that excluded the assumption (benchmarks/verdict_calibration.py measures the TOST rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.assumptions import EVENT, AssumptionMap
from som_models.comparison import Comparison as _Comparison
from som_models.descriptive import descriptive_comparison
from som_models.estimators.results import cluster_df, critical_value, two_sided_p, upper_p, wald_p_value
from som_models.lazy_scipy import stats
from som_models.parameters.schema import DESCRIPTIVE, ParameterSet
from som_models.sequential import DEFAULT_RULE, LookHistory, LookPlan, hypothesis_key, plan_look
from som_models.sequential import RULES as SEQUENTIAL_RULES

LABELS = ("consistent", "refuted-overestimated", "refuted-underestimated", "inconclusive")
CONSISTENCY_RULES = ("tost",)
#: the prefix of a course-path assumption (``course_path:<item>``; module docstring)
COURSE_PATH = "course_path:"
PATH_TESTS = ("mean", "joint")
#: Fewer treated clusters than this: the sentence says so and a few-cluster p-value decides when given.
FEW_CLUSTERS = 20
#: At most this many treated clusters: no verdict without an exact randomisation-inference answer.
VERY_FEW_CLUSTERS = 5


def consistency_problem(rule: Any) -> str | None:
    """Why ``rule`` cannot be the ``consistency`` setting (None when it can): only ``tost`` is accepted."""
    if rule == "precision":
        return ("consistency: 'precision' is no longer accepted: a narrow interval is not a test of equivalence (with "
                "the truth exactly on the margin it called paths consistent in 22-34 % of simulations); use 'tost', "
                "the default, which shows the effect lies within the margin")
    if rule not in CONSISTENCY_RULES:
        return f"consistency: {rule!r} is not one of {', '.join(CONSISTENCY_RULES)}"
    return None


def check_decision_levels(alpha: float, margin: float, min_persons: int) -> None:
    """Refuse a significance level outside (0, 0.5), a margin that is not a positive number and a minimum number of
    persons that is not a positive integer (the settings every verdict family shares)."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    if not (margin > 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a positive number, got {margin}")
    if int(min_persons) != min_persons or min_persons < 1:
        raise ValueError(f"min_persons must be a positive integer, got {min_persons}")


@dataclass(frozen=True)
class VerdictSettings:
    """Decision settings: significance level, relative equivalence margin, minimum treated persons.

    ``consistency`` is the rule for ``consistent`` (only ``tost``: equivalence shown; ``precision`` is refused
    with the reason), ``path_test`` the test that can refute an effect path (``mean`` or ``joint``); see the
    module docstring.
    """

    alpha: float = 0.05
    margin: float = 0.5
    min_persons: int = 20
    consistency: str = "tost"
    path_test: str = "mean"
    #: the rule over repeated looks when ``judge`` is given ``looks`` (see :mod:`som_models.sequential`)
    sequential: str = DEFAULT_RULE

    def __post_init__(self) -> None:
        check_decision_levels(self.alpha, self.margin, self.min_persons)
        problem = consistency_problem(self.consistency)
        if problem:
            raise ValueError(problem)
        if self.path_test not in PATH_TESTS:
            raise ValueError(f"path_test must be one of {', '.join(PATH_TESTS)}, got {self.path_test!r}")
        if self.sequential not in SEQUENTIAL_RULES:
            raise ValueError(f"sequential must be one of {', '.join(SEQUENTIAL_RULES)}, got {self.sequential!r}")


@dataclass(frozen=True)
class AssignmentInfo:
    """How the treatment behind one assumption was assigned, for inference at the level of assignment.

    ``clusters`` / ``treated_clusters``: the number of clusters (persons when assigned person by person) and of
    clusters with a treated person; ``level``: what a cluster is (``person``, ``municipality``, …).
    Few-cluster p-values of the refutation test (realised = assumed) and of the equivalence test (TOST within
    the margin), each optional: ``exact_p`` / ``exact_tost_p`` from randomisation inference over the roll-out
    (:func:`som_models.estimators.bootstrap.rollout_randomisation_test`), ``wild_p`` / ``wild_tost_p`` from the
    wild cluster bootstrap (:func:`som_models.estimators.bootstrap.wild_cluster_bootstrap`).
    """

    clusters: int
    treated_clusters: int
    level: str
    exact_p: float | None = None
    exact_tost_p: float | None = None
    wild_p: float | None = None
    wild_tost_p: float | None = None
    #: per event time (as in the estimates table), the clusters' summed influence functions ``S_g`` (length G)
    #: and the number of units ``n`` (``θ̂ − θ ≈ Σ_g S_g / n``): with fewer than :data:`FEW_CLUSTERS` treated
    #: clusters and no ``wild_p`` given, :func:`judge` runs the wild cluster bootstrap on the combination it tests
    cluster_scores: Mapping[int, tuple[float, ...]] | None = None
    n_units: int | None = None
    #: how the randomisation inference was done (``exact_p`` given), or why it could not be (``exact_p`` None)
    ri_detail: str | None = None

    def __post_init__(self) -> None:
        for name in ("clusters", "treated_clusters"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 0:
                raise ValueError(f"AssignmentInfo.{name} must be a non-negative integer, got {v!r}")
        if self.treated_clusters > self.clusters:
            raise ValueError(f"AssignmentInfo: {self.treated_clusters} treated clusters of only {self.clusters}")
        if not self.level:
            raise ValueError("AssignmentInfo.level must name the level of assignment (e.g. 'municipality')")
        for name in ("exact_p", "exact_tost_p", "wild_p", "wild_tost_p"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"AssignmentInfo.{name} must be a p-value in [0, 1], got {v!r}")


@dataclass(frozen=True)
class PathCovariance:
    """Covariance matrix of one outcome's event-time estimates (rows/columns in ``event_times`` order)."""

    event_times: tuple[int, ...]
    matrix: tuple[tuple[float, ...], ...]

    @classmethod
    def from_array(cls, event_times: Sequence[int], matrix: Any) -> PathCovariance:
        m = np.asarray(matrix, dtype=float)
        k = len(event_times)
        if m.shape != (k, k):
            raise ValueError(f"covariance must be {k}×{k} for {k} event times, got shape {m.shape}")
        return cls(tuple(int(e) for e in event_times), tuple(tuple(float(x) for x in row) for row in m))

    def sub(self, times: Sequence[int]) -> np.ndarray | None:
        """The sub-matrix for ``times`` (None if any is missing or an entry is not finite)."""
        index = {e: k for k, e in enumerate(self.event_times)}
        if any(t not in index for t in times):
            return None
        rows = [index[t] for t in times]
        m = np.asarray(self.matrix, dtype=float)[np.ix_(rows, rows)]
        return m if np.all(np.isfinite(m)) else None


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


def holm(p_values: list[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values: p_(k) · (m − k + 1), made monotone, capped at 1."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[idx]))
        adjusted[idx] = running
    return adjusted.tolist()


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _p_two_sided(z: float, df: int | None = None) -> float:
    return two_sided_p(z, df)


def _df(info: AssignmentInfo | None) -> int | None:
    """Degrees of freedom of the level and equivalence tests: ``G − 1`` when the treatment was assigned by cluster
    (``info.level`` not the person), None (normal theory) otherwise (:func:`som_models.estimators.results.cluster_df`)."""
    if info is None or info.level in ("person", "unit"):
        return None
    return cluster_df(info.clusters)


def _rows(estimates: pl.DataFrame, outcome: str, estimand: str) -> list[dict]:
    return estimates.filter((pl.col("outcome") == outcome) & (pl.col("estimand") == estimand)).to_dicts()


def _success_comparison(amap: AssumptionMap, estimates: pl.DataFrame, pretrend_p: Mapping[str, float]) -> _Comparison:
    key, s = amap.success_estimand, amap.success_rate
    k0, sm = key.event_time, key.outcome
    row = next((r for r in _rows(estimates, sm, key.estimand) if r["event_time"] == k0), None)
    ok = row is not None and _finite(row["estimate"]) and _finite(row["se"]) and row["se"] > 0
    path: tuple[dict[str, Any], ...] = ()
    if row is not None:
        path = ({"event_time": k0, "consequence_year": amap.consequence_year(k0), "assumed": s, "realised": row["estimate"],
                 "se": row["se"], "n_treated": int(row["n_treated"] or 0), "used": ok},)
    realised = row["estimate"] if ok and row is not None else None
    se = row["se"] if ok and row is not None else None
    return _Comparison("success_rate", sm, s, realised, se,
                       f"event-time ATT at e = {k0}", 0 if row is None else int(row["n_treated"] or 0),
                       pretrend_p.get(sm), path, "share of participants", None, (1,) if ok else ())


@dataclass(frozen=True)
class _PathWindow:
    """Which event times a path assumption covers and what it assumes there (:func:`_event_path`).

    ``assumption`` names it; ``in_window(e)`` selects the event times; ``year(e)`` labels them in
    ``year_label`` units (consequence year ``e − K + 1`` or course year ``e + 1``); ``assumed(e)`` is the
    assumed event-time effect and ``beyond(e)`` marks event times past the stated profile; ``empty_assumed`` is
    the assumption shown when no year is observed.
    """

    assumption: str
    in_window: Callable[[int], bool]
    year: Callable[[int], int]
    assumed: Callable[[int], float]
    beyond: Callable[[int], bool]
    empty_assumed: float
    year_label: str = "consequence year"
    what: str | None = None


def _consequence_window(amap: AssumptionMap, item: str) -> _PathWindow:
    """The effect path of ``item``: ``a_i(e) = s · u_i[e − K + 1]`` over the consequence years ``e ≥ K``."""
    return _PathWindow(f"effect_path:{item}", amap.in_consequence_years, amap.consequence_year,
                       lambda e: amap.implied_effect(item, e), lambda e: amap.beyond_profile(item, e),
                       amap.first_year_effect(item))


def _course_window(amap: AssumptionMap, item: str) -> _PathWindow:
    """The course path of ``item``: ``b_i(e) = v_i[e + 1]`` (per participant) over the course years ``0 ≤ e < K``."""
    return _PathWindow(f"{COURSE_PATH}{item}", amap.in_course_years, amap.course_year,
                       lambda e: amap.course_effect(item, e), lambda e: False, amap.course_profiles[item][0],
                       "course year", f"effect on {item} during the course (per participant)")


def _path_comparison(amap: AssumptionMap, cons, estimates: pl.DataFrame, pretrend_p: Mapping[str, float],
                     settings: VerdictSettings, cov: PathCovariance | None, df: int | None = None) -> _Comparison:
    """The effect path of consequence item ``cons`` against its realised event-time ATTs (:func:`_event_path`)."""
    return _event_path(_consequence_window(amap, cons.item), cons.item, estimates, pretrend_p, settings, cov, df)


def _event_path(win: _PathWindow, item: str, estimates: pl.DataFrame, pretrend_p: Mapping[str, float],
                settings: VerdictSettings, cov: PathCovariance | None, df: int | None = None) -> _Comparison:
    """An assumed event-time path (``win``) against the realised event-time ATTs of ``item`` over the event times
    of its window: the per-year entries, the level (mean) and, with two or more years, the shape test (module
    docstring)."""
    z = critical_value(settings.alpha, df)
    events = sorted((r for r in _rows(estimates, item, EVENT)
                     if r["event_time"] is not None and win.in_window(int(r["event_time"]))),
                    key=lambda r: r["event_time"])
    key, label = win.year_label.replace(" ", "_"), win.year_label
    path = []
    for r in events:
        e = int(r["event_time"])
        j, a = win.year(e), win.assumed(e)
        n = int(r["n_treated"] or 0)
        ok = _finite(r["estimate"]) and _finite(r["se"]) and r["se"] > 0 and n >= settings.min_persons
        entry = {"event_time": e, key: j, "assumed": a, "realised": r["estimate"], "se": r["se"],
                 "n_treated": n, "used": ok, "beyond_profile": win.beyond(e)}
        if ok:
            zz = (r["estimate"] - a) / r["se"]
            entry.update(ci_low=r["estimate"] - z * r["se"], ci_high=r["estimate"] + z * r["se"], z=zz,
                         p_value=_p_two_sided(zz, df))
        path.append(entry)
    used = [p for p in path if p["used"]]
    n_max = max((p["n_treated"] for p in path), default=0)
    unit = ("units per treated person and year" if label == "consequence year"
            else "units per participant and course year")
    if not used:
        return _Comparison(win.assumption, item, win.empty_assumed, None, None, "", n_max,
                           pretrend_p.get(item), tuple(path), unit, None, (), what=win.what, year_label=label)
    times = [p["event_time"] for p in used]
    realised_v = np.array([p["realised"] for p in used])
    assumed_v = np.array([p["assumed"] for p in used])
    ses = np.array([p["se"] for p in used])
    k = len(used)
    v = cov.sub(times) if cov is not None else None
    realised, assumed = float(realised_v.mean()), float(assumed_v.mean())
    # the estimator's overall row is the mean over the consequence years (min_e = K): never a course path's level
    overall = _rows(estimates, item, "overall") if label == "consequence year" else []
    if v is not None:
        se = float(math.sqrt(max(v.sum(), 0.0)) / k)
        source = "mean of the event-time ATTs, covariance from the influence functions"
    elif (overall and len(used) == len(path) and _finite(overall[0]["estimate"]) and _finite(overall[0]["se"])
          and abs(overall[0]["estimate"] - realised) <= 1e-6 * max(1.0, abs(realised))):
        se, source = float(overall[0]["se"]), "the estimator's overall row (mean of the event-time ATTs)"
    else:
        se, source = float(ses.mean()), "mean of the event-time ATTs, conservative se (mean of the event-time se)"
    shape = None
    if k >= 2:
        d = realised_v - assumed_v
        if v is not None:
            w = float(d @ np.linalg.pinv(v) @ d)
            rank = int(np.linalg.matrix_rank(v))
            g = None if df is None else df + 1
            ref = f"Wald χ²({rank})" if g is None else f"Wald test, Hotelling F({rank}, {g - rank}) over {g} clusters,"
            shape = {"test": f"{ref} on {k} {label}s, influence-function covariance",
                     "statistic": w, "df": rank, "p_value": wald_p_value(w, rank, g) if rank else None}
        else:
            zs = d / ses
            shape = {"test": f"Bonferroni over {k} {label}s (max |z|; no covariance given)",
                     "statistic": float(np.abs(zs).max()), "df": None,
                     "p_value": float(min(1.0, k * _p_two_sided(float(np.abs(zs).max()), df)))}
    return _Comparison(win.assumption, item, assumed, realised, se, source, n_max, pretrend_p.get(item), tuple(path),
                       unit, shape, tuple(p[key] for p in used), what=win.what, year_label=label)


def _course_comparison(amap: AssumptionMap, cons, estimates: pl.DataFrame, pretrend_p: Mapping[str, float],
                       settings: VerdictSettings, cov: PathCovariance | None, df: int | None = None) -> _Comparison:
    """The course path of ``cons`` (a causal course profile) against the realised ATTs at ``e = 0 … K − 1``."""
    return _event_path(_course_window(amap, cons.item), cons.item, estimates, pretrend_p, settings, cov, df)


# ---- consequence-profile kind dispatch (issue 11 item 5) -------------------------------------------------
# The one place where the verdicts depend on a consequence item's kind: a causal profile is compared with the
# causal ATT path (_path_comparison); a descriptive one with SØM's success-vs-non-success contrast
# (som_models.descriptive), never with the causal path. Both return objects with the same fields.

def _consequence_comparison(params: ParameterSet, amap: AssumptionMap, cons, estimates: pl.DataFrame,
                            pretrend_p: Mapping[str, float], settings: VerdictSettings, cov: PathCovariance | None,
                            descriptive: pl.DataFrame | None, df: int | None = None):
    if cons.kind == DESCRIPTIVE:
        return descriptive_comparison(params, cons.item, descriptive, alpha=settings.alpha,
                                      min_persons=settings.min_persons)
    return _path_comparison(amap, cons, estimates, pretrend_p, settings, cov, df)
# ---- end of the kind dispatch ---------------------------------------------------------------------------


def comparisons(params: ParameterSet, estimates: pl.DataFrame, pretrend_p: Mapping[str, float],
                settings: VerdictSettings = VerdictSettings(), *,
                covariance: Mapping[str, PathCovariance] | None = None,
                descriptive: pl.DataFrame | None = None,
                inference: Mapping[str, AssignmentInfo] | None = None) -> list[_Comparison]:
    """Pair every assumption of ``params`` with its realised counterpart in the estimates table.

    ``inference`` (assumption or outcome → :class:`AssignmentInfo`) sets the reference distribution of the per-year
    tests: ``t(G − 1)`` when the treatment was assigned by cluster.

    ``descriptive`` is the success-vs-non-success contrast table (:func:`som_models.descriptive.estimate_descriptive`)
    that tests the descriptive consequence profiles; causal ones are tested against ``estimates``.
    """
    covariance, inference = covariance or {}, inference or {}
    amap = AssumptionMap.from_params(params)
    out = [_success_comparison(amap, estimates, pretrend_p)]
    for cons in params.consequences:
        info = inference.get(f"effect_path:{cons.item}", inference.get(cons.item))
        out.append(_consequence_comparison(params, amap, cons, estimates, pretrend_p, settings,
                                           covariance.get(cons.item), descriptive, _df(info)))
    for cons in params.consequences:  # the course paths (causal course profiles only; module docstring)
        if cons.course is not None and cons.course.kind != DESCRIPTIVE:
            info = inference.get(f"{COURSE_PATH}{cons.item}", inference.get(cons.item))
            out.append(_course_comparison(amap, cons, estimates, pretrend_p, settings, covariance.get(cons.item),
                                          _df(info)))
    return out


def _tost(d: float, se: float, delta: float, df: int | None = None) -> float:
    """p-value of the two one-sided tests of |d| ≥ delta (Schuirmann 1987), normal or ``t(df)``; 1 when there is
    no margin."""
    if delta <= 0:
        return 1.0
    return max(upper_p((d + delta) / se, df), upper_p((delta - d) / se, df))


def holm_divisors(p_values: Sequence[float], alpha: float) -> list[int]:
    """The divisor ``h`` of Holm's step each p-value was compared at: with the p-values sorted ascending and
    ``r`` of them rejected (adjusted p < alpha), ``h = m − k + 1`` for the rejected one at rank ``k`` and
    ``h = m − r`` (the step where the procedure stopped) for the others. The ``1 − alpha/h`` interval then
    excludes the null exactly when Holm rejects it."""
    m = len(p_values)
    if not m:
        return []
    adjusted = holm(list(p_values))
    r = sum(a < alpha for a in adjusted)
    order = np.argsort(p_values, kind="stable")
    out = [0] * m
    for rank, idx in enumerate(order, start=1):
        out[int(idx)] = m - min(rank, r + 1) + 1
    return out


@dataclass(frozen=True)
class _Decision:
    """How one assumption's refutation and equivalence were tested (before Holm)."""

    test: str
    statistic: float | None
    p_value: float
    method: str  # "normal", "wald", "randomisation inference", "wild cluster bootstrap"
    tost_p: float | None
    tost_method: str | None


def _info_for(inference: Mapping[str, AssignmentInfo], c: _Comparison) -> AssignmentInfo | None:
    return inference.get(c.assumption, inference.get(c.outcome))


#: draws and seed of the wild cluster bootstrap the verdicts run themselves (fixed: a rerun gives the same verdict)
WILD_DRAWS, WILD_SEED = 9999, 20_211


def _with_wild_bootstrap(c: _Comparison, info: AssignmentInfo, st: VerdictSettings) -> AssignmentInfo:
    """``info`` with the wild cluster bootstrap p-values of ``c``'s level test (the mean of the realised path over
    its consequence years: cluster scores ``s_g = mean_e S_ge``), when the clusters' scores are there and more
    than :data:`VERY_FEW_CLUSTERS` clusters are treated; ``info`` unchanged otherwise."""
    from dataclasses import replace

    from som_models.estimators.bootstrap import wild_cluster_bootstrap

    scores, n = info.cluster_scores, info.n_units
    if not scores or not n or info.treated_clusters <= VERY_FEW_CLUSTERS or c.realised is None:
        return info
    times = [int(p["event_time"]) for p in c.path
             if p.get(c.year_key) in c.years and p.get("event_time") is not None]
    if not times or len(times) != len(c.years) or any(t not in scores for t in times):
        return info
    s = np.array([scores[t] for t in times], dtype=float).mean(axis=0)
    wild = wild_cluster_bootstrap(s, float(c.realised), n=int(n), null=c.assumed, draws=WILD_DRAWS, seed=WILD_SEED,
                                  alpha=st.alpha, margin=st.margin * abs(c.assumed) if c.assumed else None)
    return replace(info, wild_p=float(wild.p_value), wild_tost_p=None if wild.tost_p is None else float(wild.tost_p))


def _decision(c: _Comparison, info: AssignmentInfo | None, st: VerdictSettings) -> _Decision:
    realised, se = c.estimate()
    z_level = (realised - c.assumed) / se
    what = ("two-sided z-test of realised = assumed" if len(c.years) <= 1 else
            f"two-sided z-test of realised = assumed, mean over {c.year_label}s {c.years[0]}–{c.years[-1]}")
    df = _df(info)
    normal_tost = _tost(realised - c.assumed, se, st.margin * abs(c.assumed), df)
    few = info is not None and info.treated_clusters < FEW_CLUSTERS
    if few and info is not None and info.wild_p is None and info.exact_p is None:
        info = _with_wild_bootstrap(c, info, st)
    if few and info is not None and info.exact_p is not None:
        tost, how = ((info.exact_tost_p, "randomisation inference") if info.exact_tost_p is not None else
                     (info.wild_tost_p, "wild cluster bootstrap")
                     if info.wild_tost_p is not None and info.treated_clusters > VERY_FEW_CLUSTERS else (None, None))
        return _Decision((info.ri_detail or f"randomisation inference over the {info.level} roll-out (exact)")
                         + ", realised = assumed",
                         None, float(info.exact_p), "randomisation inference", tost, how)
    if few and info is not None and info.wild_p is not None and info.treated_clusters > VERY_FEW_CLUSTERS:
        tost, how = ((info.wild_tost_p, "wild cluster bootstrap") if info.wild_tost_p is not None else (None, None))
        return _Decision(f"wild cluster bootstrap-t (Webb weights, by {info.level}), realised = assumed",
                         None, float(info.wild_p), "wild cluster bootstrap", tost, how)
    if st.path_test == "joint" and c.shape is not None and c.shape["p_value"] is not None:
        return _Decision(c.shape["test"], float(c.shape["statistic"]), float(c.shape["p_value"]), "wald",
                         normal_tost, "normal")
    if df is not None:
        what = what.replace("z-test", f"t-test (t({df}), {df + 1} {info.level if info else ''} clusters)")
    return _Decision(what, float(z_level), _p_two_sided(z_level, df), "normal", normal_tost, "normal")


def judge(params: ParameterSet, estimates: pl.DataFrame, pretrend_p: Mapping[str, float],
          settings: VerdictSettings = VerdictSettings(), *,
          covariance: Mapping[str, PathCovariance] | None = None,
          tested: Collection[str] | None = None,
          inference: Mapping[str, AssignmentInfo] | None = None,
          descriptive: pl.DataFrame | None = None,
          extra: Sequence[_Comparison] = (), looks: LookHistory | None = None) -> tuple[Verdict, ...]:
    """Verdicts on the tested assumptions of ``params`` (see the module docstring for the tests and labels).

    ``estimates`` is the tidy table of DESIGN §3.3 (``event`` and ``overall`` rows are used);
    ``pretrend_p`` maps outcomes to pre-trend p-values (NaN = no pre-periods; each judged at the unadjusted
    ``alpha``); ``covariance`` optionally maps outcomes to the covariance of their event-time estimates;
    ``tested`` names the assumptions to test (verdict ``assumption`` names, e.g. ``success_rate``,
    ``effect_path:shelter_nights``; None = all) — they, and only they, form the Holm family, and the others
    get no verdict; ``inference`` maps assumption names (or outcomes) to how the treatment was assigned
    (:class:`AssignmentInfo`: clusters, treated clusters, few-cluster p-values); ``descriptive`` is the contrast
    table that tests descriptive consequence profiles (:mod:`som_models.descriptive`); ``extra`` are comparisons
    of assumptions stated outside the parameter set (the spec's duration assumptions,
    :mod:`som_models.duration_assumptions`), judged the same way and in the same Holm family.
    ``looks`` the data hash of
    this test and the earlier looks of the evaluation (:class:`som_models.sequential.LookHistory`): the tests then
    control the error over repeated looks (module docstring, *Repeated looks*).
    """
    inference = inference or {}
    comps = comparisons(params, estimates, pretrend_p, settings, covariance=covariance, descriptive=descriptive,
                        inference=inference)
    comps = [*comps, *extra]
    if tested is not None:
        names = [c.assumption for c in comps]
        unknown = sorted(set(tested) - set(names))
        if unknown:
            raise ValueError(f"tested names unknown assumption(s) {', '.join(unknown)}; the parameter set "
                             f"{params.intervention!r} has {', '.join(names)}")
        comps = [c for c in comps if c.assumption in set(tested)]

    def gate(c: _Comparison) -> str | None:
        if c.realised is None or c.se is None:
            return "not-estimable"
        if c.n_treated < settings.min_persons:
            return "too-few-persons"
        # Before the pre-trend gate: with this few treated clusters the (clustered) pre-trend test cannot be
        # trusted either, so the reason given is the number of clusters.
        info = _info_for(inference, c)
        if info is not None and info.treated_clusters <= VERY_FEW_CLUSTERS and info.exact_p is None:
            return "too-few-clusters"
        if c.pretrend_p is not None and _finite(c.pretrend_p) and c.pretrend_p < settings.alpha:
            return "pretrend"
        return None

    gates = {c.assumption: gate(c) for c in comps}
    decisions = {c.assumption: _decision(c, _info_for(inference, c), settings)
                 for c in comps if gates[c.assumption] != "not-estimable"}
    family = [c.assumption for c in comps if gates[c.assumption] is None]
    plans = ({c.assumption: _plan(params, c, looks, settings) for c in comps if gates[c.assumption] is None}
             if looks is not None and settings.sequential != "none" else {})
    p_raw = [_sequential_p(plans.get(a), decisions[a].p_value) for a in family]
    adj = dict(zip(family, holm(p_raw), strict=True))
    div = dict(zip(family, holm_divisors(p_raw, settings.alpha), strict=True))
    # equivalence: the same family, the same Holm adjustment; an assumption without an equivalence test counts
    # as p = 1 (it keeps its place in the family, so the others are not adjusted less).
    t_raw = [_sequential_tost(plans.get(a), float(t)) if (t := decisions[a].tost_p) is not None else 1.0
             for a in family]
    tost_adj = dict(zip(family, holm(t_raw), strict=True))
    tost_div = dict(zip(family, holm_divisors(t_raw, settings.alpha), strict=True))
    out = []
    for c in comps:
        plan = plans.get(c.assumption)
        v = _label(c, gates[c.assumption], decisions.get(c.assumption), adj.get(c.assumption),
                   div.get(c.assumption), tost_adj.get(c.assumption), tost_div.get(c.assumption), len(family),
                   _info_for(inference, c), settings, crit=None if plan is None else plan.critical)
        out.append(v if plan is None else _with_look(v, plan, div[c.assumption], settings))
    return tuple(out)


# ---- repeated looks (issue 12 item 5): som_models.sequential ---------------------------------------------

def _hypothesis(params: ParameterSet, c: _Comparison) -> str:
    """The key of the hypothesis a comparison tests: its assumed values (for an effect path the whole profile, so
    the key does not change as more consequence years are observed)."""
    doc: dict[str, Any] = {"assumption": c.assumption, "course_years": params.course_years,
                           "success_rate": params.success_rate.value}
    cons = next((x for x in params.consequences if c.assumption == f"effect_path:{x.item}"), None)
    course = next((x.course for x in params.consequences
                   if c.assumption == f"{COURSE_PATH}{x.item}" and x.course is not None), None)
    if cons is not None:
        doc.update(units=list(cons.units), kind=cons.kind)
    elif course is not None:
        doc.update(course_units=list(course.units), kind=course.kind)
    elif c.assumption != "success_rate":
        doc["assumed"] = c.assumed
    return hypothesis_key(doc)


def _plan(params: ParameterSet, c: _Comparison, looks: LookHistory, st: VerdictSettings) -> LookPlan:
    realised, se = c.estimate()
    return plan_look(looks.prior, hypothesis=_hypothesis(params, c), data_hash=looks.data_hash,
                     vintage=looks.vintage, information=1 / se ** 2, alpha=st.alpha, delta=st.margin * abs(c.assumed),
                     rule=st.sequential)


def _sequential_p(plan: LookPlan | None, p: float) -> float:
    """The repeated p-value of a two-sided p-value (through its normal equivalent |z| = Φ⁻¹(1 − p/2))."""
    return p if plan is None else plan.repeated_p(float(stats.norm.isf(max(p, 1e-300) / 2)))


def _sequential_tost(plan: LookPlan | None, p: float) -> float:
    """The repeated p-value of the TOST (one-sided: half the two-sided repeated p of z = Φ⁻¹(1 − p))."""
    if plan is None or p >= 0.5:
        return p
    return plan.repeated_p(float(stats.norm.isf(max(p, 1e-300)))) / 2


def _with_look(v: Verdict, plan: LookPlan, h: int, st: VerdictSettings) -> Verdict:
    """``v`` with its look recorded (``evidence["sequential"]``) and stated in the test name and sentence."""
    from dataclasses import replace

    rec = plan.record(decision_level=st.alpha / h)
    evidence = {**v.evidence, "sequential": rec}
    if evidence.get("ci_level") and v.ci_low is not None:
        evidence["ci_level"] = f"{evidence['ci_level']}; a repeated confidence interval (look {plan.look})"
    where = f" on vintage {plan.looks[-1].vintage}" if plan.looks[-1].vintage else ""
    if not plan.adds_information:
        note = (f" Look {plan.look} of this assumption{where} has no more information than an earlier look, so it "
                "gets no α and cannot refute (alpha spending over repeated looks).")
    else:
        note = (f" Look {plan.look} of this assumption{where}: information fraction {rec['information_fraction']:.2f}, "
                f"{rec['alpha_spent']:.3g} of α = {st.alpha:g} spent so far (Lan–DeMets {_RULE_NAMES[plan.rule]} "
                f"alpha spending over repeated looks); the refutation boundary is |z| ≥ "
                f"{rec['decision_boundary']:.2f} (nominal level {rec['decision_nominal_level']:.2g}) and the "
                "p-values are repeated p-values.")
    if plan.reused:
        note += f" The data were looked at before (look {plan.look}): same boundary, no new α spent."
    looks_txt = f"{plan.look} look{'s' if plan.look != 1 else ''}"
    return replace(v, evidence=evidence, sentence=v.sentence + note,
                   test=f"{v.test}; repeated p-value over {looks_txt} (Lan–DeMets {_RULE_NAMES[plan.rule]} spending)")


_RULE_NAMES = {"lan-demets-linear": "linear", "lan-demets-pocock": "Pocock", "lan-demets-obf": "O'Brien–Fleming"}
# ---- end of repeated looks -------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _pct(x: float) -> str:
    return f"{100 * x:g} %"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):.4g} %"


def _clusters_text(info: AssignmentInfo) -> str:
    return (f"the evidence rests on {info.treated_clusters} treated cluster{'s' if info.treated_clusters != 1 else ''} "
            f"({info.level}; {info.clusters} in all)")


def _label(c: _Comparison, gate: str | None, dec: _Decision | None, p_adj: float | None, h: int | None,
           tost_adj: float | None, tost_h: int | None, m: int, info: AssignmentInfo | None,
           st: VerdictSettings, crit: Any = None) -> Verdict:
    delta = st.margin * abs(c.assumed)
    what = c.what or ("success rate" if c.assumption == "success_rate" else f"effect on {c.outcome}")
    span = ""
    if c.years:
        span = (f" in {c.year_label} {c.years[0]}" if len(c.years) == 1
                else f" averaged over {c.year_label}s {c.years[0]}–{c.years[-1]}")
    few = info is not None and info.treated_clusters < FEW_CLUSTERS
    evidence: dict[str, Any] = {
        "path": [dict(p) for p in c.path], "n_treated": c.n_treated, "pretrend_p": c.pretrend_p,
        "pretrend_alpha": st.alpha, "unit": c.unit, "level_source": c.level_source, "se": c.se,
        "consequence_years": list(c.years) if c.year_label == "consequence year" else [],
        **({"course_years": list(c.years)} if c.year_label == "course year" else {}), "margin_abs": delta, "alpha": st.alpha,
        "consistency_rule": st.consistency, "path_test": st.path_test, "family_size": m, "gate": gate,
        "shape_test": dict(c.shape) if c.shape else None,
        "assignment": None if info is None else {**asdict(info), "few_clusters": few},
        "decision_method": None if dec is None or gate is not None else dec.method,
        "ci_level": None,
        "profile_kind": c.kind or (None if c.assumption == "success_rate" else "causal"),
    }
    if c.details:
        evidence["details"] = dict(c.details)
    test_name = "not tested"
    if dec is not None and gate is None:
        test_name = f"{dec.test}, Holm-adjusted over {m} assumption{'s' if m != 1 else ''}"
    elif dec is not None:
        why = {"too-few-persons": "too few persons", "pretrend": "pre-trend test rejects",
               "too-few-clusters": "too few treated clusters"}[gate or ""]
        test_name = f"{dec.test} (reported only, not decided: {why})"
    base: dict[str, Any] = dict(assumption=c.assumption, outcome=c.outcome, test=test_name,
                statistic=None if dec is None else dec.statistic, p_value=None if dec is None else dec.p_value,
                p_adjusted=p_adj, margin=st.margin, assumed=c.assumed, realised=c.realised, evidence=evidence)
    if gate == "not-estimable":
        return Verdict(**base, label="inconclusive", ci_low=None, ci_high=None,
                       sentence=f"The {what} could not be estimated from the data: "
                                + (f"{c.level_source}." if c.kind == "duration" and c.level_source else
                                   f"no treated cohort with at least {st.min_persons} persons was observed in a "
                                   f"{c.year_label}."))
    assert dec is not None
    realised, se = c.estimate()
    d = realised - c.assumed
    df = _df(info)
    evidence["df"] = df
    z = critical_value(st.alpha, df)
    pointwise = (realised - z * se, realised + z * se)
    evidence["pointwise_ci"] = {"level": _level(st.alpha), "ci_low": pointwise[0], "ci_high": pointwise[1],
                                "note": ("normal theory" if df is None else f"t({df}) over {df + 1} clusters")
                                + ", not adjusted for multiplicity"}
    if gate is not None:
        if gate == "too-few-clusters":
            assert info is not None
            return Verdict(**base, label="inconclusive", ci_low=None, ci_high=None,
                           sentence=f"Inconclusive: {_clusters_text(info)}, too few to test the assumption without "
                                    "an exact randomisation-inference answer, which "
                                    + (f"could not be given ({info.ri_detail})" if info.ri_detail else "was not given")
                                    + "; the realised "
                                    f"{what}{span} was {_fmt(realised)} against an assumed {_fmt(c.assumed)} (no "
                                    "interval shown: with so few clusters a normal-theory interval is not reliable).")
        evidence["ci_level"] = f"{_level(st.alpha)} pointwise, not adjusted (no test decided this verdict)"
        fact = (f"the realised {what}{span} was {_fmt(realised)} ({_level(st.alpha)} CI {_fmt(pointwise[0])} to "
                f"{_fmt(pointwise[1])}, not adjusted) against an assumed {_fmt(c.assumed)}")
        base.update(ci_low=pointwise[0], ci_high=pointwise[1])
        if gate == "too-few-persons":
            return Verdict(**base, label="inconclusive",
                           sentence=f"Inconclusive: {fact}, but only {c.n_treated} treated persons were observed "
                                    f"(minimum {st.min_persons}).")
        if c.pretrend_p is None:
            raise ValueError(f"assumption {c.assumption!r}: gated on the pre-trend test but has no pre-trend p-value")
        return Verdict(**base, label="inconclusive",
                       sentence=f"Inconclusive: {fact}, but treated and comparison persons already diverged before "
                                f"the start (pre-trend test {_p(c.pretrend_p)} < {st.alpha:g}), so the comparison "
                                "is not credible.")
    assert p_adj is not None and h is not None and tost_adj is not None and tost_h is not None
    holm_txt = f"Holm-adjusted over {m} assumption{'s' if m != 1 else ''}"
    # The decision interval: Holm's step level 1 − α/h for a normal-theory level test; none when the decision
    # was taken by a test without a matching interval here (Wald path test, randomisation inference, bootstrap).
    if dec.method == "normal":
        zh = critical_value(st.alpha / h, df) if crit is None else crit(st.alpha / h)
        lo, hi = realised - zh * se, realised + zh * se
        base.update(ci_low=lo, ci_high=hi)
        evidence["ci_level"] = (f"{_level(st.alpha / h)} (Holm step 1 − α/{h}, {holm_txt}): the interval the "
                                "refutation test decided with")
        fact = (f"the realised {what}{span} was {_fmt(realised)} ({_level(st.alpha / h)} CI {_fmt(lo)} to {_fmt(hi)}, "
                f"{holm_txt}) against an assumed {_fmt(c.assumed)}")
    else:
        base.update(ci_low=None, ci_high=None)
        evidence["ci_level"] = f"no interval: the decision used the {dec.method} p-value"
        fact = f"the realised {what}{span} was {_fmt(realised)} against an assumed {_fmt(c.assumed)}"
    evidence["holm_divisor"] = h
    tost_ci = None
    if dec.tost_method == "normal":
        zt = critical_value(2 * st.alpha / tost_h, df) if crit is None else crit(2 * st.alpha / tost_h)
        tost_ci = (realised - zt * se, realised + zt * se)
    equivalent = tost_adj < st.alpha and dec.tost_p is not None and delta > 0
    evidence["tost"] = {"p_value": dec.tost_p, "p_adjusted": tost_adj, "method": dec.tost_method,
                        "margin_abs": delta, "difference": d, "holm_divisor": tost_h,
                        "ci_low": None if tost_ci is None else tost_ci[0],
                        "ci_high": None if tost_ci is None else tost_ci[1],
                        "level": _level(2 * st.alpha / tost_h) if tost_ci is not None else None,
                        "equivalent": equivalent}
    clusters = f" {_clusters_text(info)[0].upper()}{_clusters_text(info)[1:]}." if few and info is not None else ""
    if few and dec.method in ("normal", "wald"):
        clusters = clusters[:-1] + ("; no few-cluster p-value was given, so the "
                                    + ("normal-theory" if df is None else f"cluster-robust t({df})")
                                    + " test was used, which can overstate the precision with so few clusters.")
    stat_txt = {"wald": f"χ² = {dec.statistic:.2f}" if dec.statistic is not None else "",
                "normal": (f"{'z' if df is None else 't'} = {dec.statistic:.2f}" if dec.statistic is not None
                           else ""),
                "randomisation inference": "randomisation inference", "wild cluster bootstrap": "wild cluster bootstrap",
                }[dec.method]
    if dec.method == "wald" and dec.test.startswith("Bonferroni"):
        stat_txt = f"max |z| = {dec.statistic:.2f}"
    if p_adj < st.alpha:
        smaller = (c.assumed != 0 and (np.sign(realised) != np.sign(c.assumed) or abs(realised) < abs(c.assumed)))
        label = "refuted-overestimated" if smaller else "refuted-underestimated"
        word = "overestimated" if smaller else "underestimated"
        shape = " (test of the whole path)" if dec.method == "wald" else ""
        return Verdict(**base, label=label,
                       sentence=f"Refuted: {fact}, so the assumption {word} the effect{shape} "
                                f"({stat_txt}, Holm-adjusted {_p(p_adj)}).{clusters}")
    if dec.method == "wald":
        not_diff = (f"the path as a whole is not significantly different ({stat_txt}, Holm-adjusted {_p(p_adj)}; the "
                    "path test decides under path_test: joint)")
    else:
        not_diff = f"not significantly different ({stat_txt}, Holm-adjusted {_p(p_adj)})"
    if equivalent:
        shown = (f"its {_level(2 * st.alpha / tost_h)} interval {_fmt(tost_ci[0])} to {_fmt(tost_ci[1])} lies within "
                 if tost_ci is not None else "it lies within ")
        return Verdict(**base, label="consistent",
                       sentence=f"Consistent: {fact}; {not_diff}, and {shown}±{_pct(st.margin)} of the assumption "
                                f"({_fmt(c.assumed - delta)} to {_fmt(c.assumed + delta)}; TOST, Holm-adjusted "
                                f"{_p(tost_adj)}), so equivalence is shown.{clusters}")
    if c.assumed == 0:
        reason = "a zero assumption has no relative equivalence margin against which the data could confirm it"
    elif dec.tost_p is None:
        reason = (f"equivalence cannot be shown from {info.treated_clusters if info else 0} treated clusters "
                  f"without a {dec.method} equivalence test (TOST) of its own"
                  + (" (exact randomisation inference)" if info is not None and info.treated_clusters <= VERY_FEW_CLUSTERS
                     else ""))
    else:
        reason = (f"the data cannot show it lies within ±{_pct(st.margin)} of the assumption (TOST, Holm-adjusted "
                  f"{_p(tost_adj)}): the data are too imprecise to tell")
    return Verdict(**base, label="inconclusive", sentence=f"Inconclusive: {fact}; {not_diff}, but {reason}.{clusters}")
