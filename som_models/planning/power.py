"""The evaluation plan: minimum detectable deviation by data vintage and the vintage at which each assumption
becomes decidable (issue 14 item 1).

**Design** (:class:`RolloutDesign`). Cohorts ``g`` (start years) of ``n_g`` participants (the parameter set's
``cohorts``), ``n_C`` never-treated comparison persons, course length ``K``; optionally clusters (the spec's
``assigned_by``): ``m_g`` treated persons per treated cluster of cohort ``g`` and ``m_C`` comparison persons per
comparison cluster. A *vintage* ``V`` is the last register year a delivery holds; each later vintage adds one
consequence year (and its persons) to every cohort that started by then.

**The estimator planned for** is the one the verdicts test (:mod:`som_models.verdicts`): the staggered DiD of
Callaway & Sant'Anna against the never-treated with the base year ``g − 1``::

    ATT_e  = Σ_{g: g+e ≤ V} w_{g,e} [(Ȳ^g_{g+e} − Ȳ^g_{g−1}) − (Ȳ^C_{g+e} − Ȳ^C_{g−1})],   w_{g,e} = n_g / Σ n_{g'}

* success rate ↔ ``ATT_K`` of the success indicator (consequence year 1);
* effect path of an item ↔ the level ``r̄ = mean_{e∈E} ATT_e`` over the observed consequence years
  ``E = {K, …, V − min g}`` against the implied ``ā = mean_E s·u[e − K + 1]``.

Both are linear in the persons' outcomes: treated person of cohort ``g`` with coefficients ``a_g`` over the
years, comparison person with ``c``, hence (variance components of :mod:`som_models.planning.variance`)::

    Var = Σ_g n_g a_gᵀ(Γ + (m_g − 1)Γ_b)a_g + n_C cᵀ(Γ + (m_C − 1)Γ_b)c

i.e. each part's person-level variance times its design effect ``1 + (m − 1)ρ`` with ``ρ = aᵀΓ_b a / aᵀΓ a``
(the ICC of that contrast). Without clusters ``m = 1``. Left out (stated in the plan): the estimation effect of
the cohort shares in the aggregation, attrition (deaths, emigration), and any change of the outcome variance
caused by the treatment itself.

**Tests planned for** (normal theory; with clusters see below), with ``se_V`` the standard error at vintage
``V``, ``δ = margin·|ā|`` (the equivalence margin) and ``c`` the critical value:

* refutation power against a miss of ``±δ`` (truth = ``ā ± δ``): ``P(|Z| ≥ c)``, ``Z ~ N(δ/se, 1)``, i.e.
  ``Φ(δ/se − c) + Φ(−δ/se − c)``;
* equivalence (TOST) power when the truth equals the assumption: ``max(0, 2Φ(δ/se − c_T) − 1)``;
* minimum detectable deviation (MDD) at 80 % power: the ``d`` solving ``Φ(d/se − c) + Φ(−d/se − c) = 0.8``
  (≈ ``(c + z_{0.8})·se``), also as a share of ``|ā|``.

**Multiplicity, stated as an approximation.** *Holm*: the plan uses the Bonferroni level ``α/m`` over the ``m``
tested assumptions — the first step of Holm's procedure, so the planned power is a lower bound (Holm rejects
at least what Bonferroni does). *Alpha spending*: one look per vintage from the first vintage with data, with the
boundaries of :mod:`som_models.sequential` (``t = I/(I + I₀)``, ``I₀ = ((z_{1−α/2} + z_{0.8})/δ)²``, the spec's
rule) at level ``α/m`` (refutation) and ``2α/m`` (TOST); the power at a vintage is the *marginal* power of that
look's test (the verdict at that vintage), exact for the boundary given the information, approximate in that the
planned information is the expected one. With ``sequential: none`` the fixed-sample critical value is used.

**Assigned by cluster** (``design.clusters`` = G, all clusters: treated over the cohorts plus comparison — as
``AssignmentInfo.clusters`` of the verdicts, filled from the estimator's cluster codes). The verdicts test against
``t(G − 1)`` (:func:`som_models.estimators.results.cluster_df`); so does the plan, with ``df = G − 1``:

* refutation power ``P(T ≥ c) + P(T ≤ −c)``, ``T ~`` noncentral ``t(df, δ/se)`` (exact when the estimate is normal
  and ``df·ŝ²/se² ~ χ²(df)`` independently — the model behind the t reference);
* TOST power exact under the same model, by quadrature over ``U = ŝ/se``:
  ``∫_0^{λ/c_T} (2Φ(λ − c_T u) − 1) f_U(u) du``, ``λ = δ/se`` (:func:`tost_power`; the shortcut
  ``2P(T' ≥ c_T) − 1`` is a lower bound, far off with few degrees of freedom);
* MDD solving the noncentral-t power equation;
* critical values: ``t_{df}⁻¹(1 − α/2m)`` without alpha spending; with it, the look's normal boundary ``c_k`` has
  nominal level ``2Φ(−c_k)`` and the t critical value is ``t_{df}⁻¹(1 − Φ(−c_k))`` (:func:`t_critical`) — what the
  verdicts' conversion of a t p-value to its normal equivalent implies.

**Few clusters** (treated clusters counted per vintage, over the cohorts started by then). With fewer than
:data:`~som_models.verdicts.FEW_CLUSTERS` (20) the verdicts use the wild cluster bootstrap; the plan approximates
it by ``t(G − 1)`` and says so. With at most :data:`~som_models.verdicts.VERY_FEW_CLUSTERS` (5) they give no verdict
without randomisation inference over the roll-out, whose smallest p-value is ``1/N`` for ``N`` distinct roll-outs
(``1/(1 + draws)`` when sampled; :func:`randomisation_min_p`). Rule: a test is decidable at a vintage only when
that bound is below the level the verdicts compare its p-value with (the look's nominal two-sided level for the
refutation, the one-sided ``Φ(−c_T)`` for the equivalence test); otherwise its power there is 0 and its MDD
infinite, and an assumption no planned vintage can decide is marked ``undecidable``. Where it is below, the t
figures stand as the approximation of the randomisation test, with a note.

**Volumes** (participants): a register count with no sampling error beyond Poisson variation of the intake; the
plan states the vintage that holds the last cohort year and the Poisson power of the band test of
:mod:`som_models.volume_verdicts` against a deviation of twice the volume margin. **Course length and cost per
participant**: no analytic variance applies; planned by simulating the verdicts' band test
(:mod:`som_models.planning.volumes`, seed and draws recorded). The volume assumptions are one Holm family, as in
the verdicts.

**Cohort sizes** (``design.cohorts``) are the caller's: :func:`pipeline.plan.build_design` takes the observed
participants of a baseline where it has them (``design.cohort_sources`` says which).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from som_models.estimators.results import cluster_df
from som_models.lazy_scipy import optimize, stats
from som_models.planning.variance import VarianceComponents
from som_models.results_base import ResultDisplay, fmt, render_summary, text_table
from som_models.sequential import DEFAULT_RULE, REFERENCE_POWER, boundaries
from som_models.verdicts import FEW_CLUSTERS, VERY_FEW_CLUSTERS

POWER = 0.8


@dataclass(frozen=True)
class RolloutDesign:
    """Cohorts (start year → participants), comparison persons and, when assigned by cluster, the cluster sizes."""

    cohorts: Mapping[int, int]
    controls: int
    course_years: int
    #: what a cluster is (``municipality``); None = persons assigned one by one
    cluster_level: str | None = None
    #: cohort → number of treated clusters (persons per treated cluster m_g = n_g / clusters)
    treated_clusters: Mapping[int, int] = field(default_factory=dict)
    control_clusters: int | None = None
    #: where the cohort sizes come from: cohort → "observed" (the baseline's treatments) or "parameter set"
    cohort_sources: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.cohorts or any(n <= 0 for n in self.cohorts.values()):
            raise ValueError(f"the design needs cohorts with participants, got {dict(self.cohorts)}")
        if self.controls < 2:
            raise ValueError(f"the design needs comparison (never-treated) persons, got {self.controls}")
        if self.cluster_level is not None:
            missing = sorted(set(self.cohorts) - set(self.treated_clusters))
            if missing or not self.control_clusters:
                raise ValueError(f"clustered by {self.cluster_level}: the number of treated clusters of cohort(s) "
                                 f"{missing} or of comparison clusters is not given")

    def m(self, cohort: int | None) -> float:
        """Persons per cluster of a cohort (None: the comparison group); 1 when not clustered."""
        if self.cluster_level is None:
            return 1.0
        if cohort is None:
            return self.controls / max(1, int(self.control_clusters or 1))
        return self.cohorts[cohort] / max(1, self.treated_clusters[cohort])

    @property
    def clusters(self) -> int | None:
        if self.cluster_level is None:
            return None
        return int(sum(self.treated_clusters.values()) + (self.control_clusters or 0))

    @property
    def treated_cluster_count(self) -> int | None:
        return None if self.cluster_level is None else int(sum(self.treated_clusters.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"cohorts": {str(k): v for k, v in self.cohorts.items()}, "controls": self.controls,
                "course_years": self.course_years, "cluster_level": self.cluster_level,
                "treated_clusters": {str(k): v for k, v in self.treated_clusters.items()},
                "control_clusters": self.control_clusters,
                "cohort_sources": {str(k): v for k, v in self.cohort_sources.items()}}


def event_weights(design: RolloutDesign, vintage: int, event_time: int) -> dict[int, float]:
    """``w_{g,e}`` of the cohorts observed at event time ``e`` by ``vintage`` (empty when none is)."""
    seen = {g: n for g, n in design.cohorts.items() if g + event_time <= vintage}
    total = sum(seen.values())
    return {g: n / total for g, n in seen.items()} if total else {}


def contrast_variance(design: RolloutDesign, comp: VarianceComponents, vintage: int,
                      event_times: Sequence[int]) -> tuple[float, float]:
    """Variance of ``mean_{e ∈ event_times} ATT_e`` at ``vintage`` and its design effect (module docstring).

    Returns ``(variance, design_effect)`` with the design effect the ratio to the same variance with ``m = 1``."""
    years = sorted({y for g in design.cohorts for e in event_times for y in (g - 1, g + e)})
    pos = {y: i for i, y in enumerate(years)}
    G, Gb = comp.matrices(years)
    k = len(event_times)
    ctrl = np.zeros(len(years))
    var = var1 = 0.0
    for g, n in design.cohorts.items():
        a = np.zeros(len(years))
        for e in event_times:
            w = event_weights(design, vintage, e).get(g, 0.0)
            if w:
                a[pos[g + e]] += w / k
                a[pos[g - 1]] -= w / k
        if not a.any():
            continue
        ctrl -= a
        base = float(a @ G @ a) / n
        var += base + (design.m(g) - 1) * float(a @ Gb @ a) / n
        var1 += base
    base_c = float(ctrl @ G @ ctrl) / design.controls
    var += base_c + (design.m(None) - 1) * float(ctrl @ Gb @ ctrl) / design.controls
    var1 += base_c
    return max(var, 0.0), (var / var1 if var1 > 0 else 1.0)


def refutation_power(shift: float, se: float, crit: float, df: int | None = None) -> float:
    """Power of the two-sided level test against a true deviation ``shift``: ``P(|T| ≥ c)``.

    Normal theory (``df`` None): ``T ~ N(shift/se, 1)``, ``Φ(x − c) + Φ(−x − c)`` with ``x = |shift|/se``. With
    ``df`` (clustered, :func:`som_models.estimators.results.cluster_df`): ``T = d̂/ŝ`` with ``d̂ ~ N(shift, se²)``
    and ``df·ŝ²/se² ~ χ²(df)`` independent, i.e. the noncentral ``t(df, x)``: ``P(T ≥ c) + P(T ≤ −c)``, the lower
    tail taken as ``P(T' ≥ c)`` for ``T' ~ t(df, −x)`` (scipy's ``nct.sf``, numerically stable where its ``cdf``
    of a far tail is not)."""
    if not (se > 0) or not math.isfinite(crit):
        return 0.0
    x = abs(shift) / se
    if df is None:
        return float(stats.norm.cdf(x - crit) + stats.norm.cdf(-x - crit))
    return float(stats.nct.sf(crit, df, x) + stats.nct.sf(crit, df, -x))


def tost_power(delta: float, se: float, crit: float, df: int | None = None) -> float:
    """Power of the equivalence test (TOST with one-sided critical value ``c``) when the truth equals the
    assumption.

    Normal theory (``df`` None): both one-sided tests reject iff ``|d̂| ≤ δ − c·se``, so the power is
    ``max(0, 2Φ(δ/se − c) − 1)`` exactly. With ``df``: the tests use ``ŝ`` (``df·ŝ²/se² ~ χ²(df)``, independent
    of ``d̂``) and reject iff ``|d̂| ≤ δ − c·ŝ``; conditional on ``U = ŝ/se`` this is ``2Φ(λ − cU) − 1``
    (``λ = δ/se``), so the power is computed exactly by integrating over the scaled chi distribution of ``U``::

        P = ∫_0^{λ/c} (2Φ(λ − c u) − 1) f_U(u) du,    f_U(u) = √df · f_χ(u√df; df)

    (Owen 1965's bivariate noncentral t, evaluated by quadrature). The common shortcut
    ``2·P(T' ≥ c) − 1`` with ``T' ~ t(df, λ)`` is only a lower bound here: when ``cŝ > δ`` neither one-sided
    test rejects, an event it counts twice."""
    if not (se > 0) or not math.isfinite(crit) or delta <= 0:
        return 0.0
    lam = delta / se
    if df is None:
        return float(max(0.0, 2 * stats.norm.cdf(lam - crit) - 1))
    if crit <= 0:
        return 1.0
    from scipy import integrate

    root = math.sqrt(df)

    def integrand(u: float) -> float:
        return float((2 * stats.norm.cdf(lam - crit * u) - 1) * root * stats.chi.pdf(u * root, df))

    upper = lam / crit
    points = [1.0] if upper > 1.0 else None
    value, _ = integrate.quad(integrand, 0.0, upper, points=points, limit=200, epsabs=1e-11, epsrel=1e-10)
    return float(min(1.0, max(0.0, value)))


def mdd(se: float, crit: float, power: float = POWER, df: int | None = None) -> float:
    """The deviation detected with ``power`` by the two-sided test with critical value ``crit`` (normal, or
    noncentral ``t(df)`` when ``df`` is given: :func:`refutation_power`)."""
    if not math.isfinite(crit) or not (se > 0):
        return math.inf

    def gap(x: float) -> float:
        return refutation_power(x, 1.0, crit, df) - power

    if gap(0.0) >= 0:
        return 0.0
    hi = crit + 10.0
    while gap(hi) < 0:
        hi *= 2
        if hi > 1e8:
            return math.inf
    x = optimize.brentq(gap, 0.0, hi, xtol=1e-12)
    return float(x * se)


def t_critical(normal_crit: float, df: int | None) -> float:
    """The critical value on ``T`` of a test whose normal-theory critical value is ``c``: the verdicts convert a
    ``t(df)`` p-value to its normal equivalent and compare it with the boundary (:func:`som_models.verdicts`,
    repeated p-values), so a look with normal boundary ``c_k`` (two-sided nominal level ``2Φ(−c_k)``) rejects when
    ``|T| ≥ t_{df}⁻¹(1 − Φ(−c_k))``; ``c`` itself when ``df`` is None."""
    if df is None or not math.isfinite(normal_crit):
        return float(normal_crit)
    return float(stats.t.isf(stats.norm.sf(normal_crit), df))


def randomisation_min_p(design: RolloutDesign, vintage: int, *, max_exact: int = 20_000,
                        draws: int = 9999) -> tuple[float, int] | None:
    """The smallest p-value randomisation inference over the roll-out can give at ``vintage`` (None when not
    clustered), with the number of distinct assignments.

    :func:`som_models.estimators.bootstrap.rollout_randomisation_test` permutes the clusters' adoption times:
    with the cohorts started by ``vintage`` (``k_g`` treated clusters each; clusters of later cohorts and the
    comparison clusters count as never treated at that vintage) there are ``N = G! / (Π_g k_g! · (G − Σ k_g)!)``
    distinct roll-outs (:func:`~som_models.estimators.bootstrap.assignment_count`). Exact (``N ≤ max_exact``):
    ``p = #{π : |T(π)| ≥ |T_obs|} / N ≥ 1/N``; sampled: ``p = (1 + #{b : …}) / (1 + draws) ≥ 1/(1 + draws)``.
    The same bound holds for the one-sided p-values of the equivalence test. It is a bound: ties and symmetric
    roll-outs (e.g. swapping equally many treated and comparison clusters) can make the smallest attainable
    p-value larger."""
    from som_models.estimators.bootstrap import assignment_count

    if design.cluster_level is None or design.clusters is None:
        return None
    started = [int(k) for g, k in sorted(design.treated_clusters.items()) if g <= vintage and k > 0]
    never = design.clusters - sum(started)
    adoption = np.repeat(np.arange(len(started) + 1), [*started, max(0, never)])
    if np.unique(adoption).size < 2:
        return 1.0, 1
    n = assignment_count(adoption)
    return (1.0 / n if n <= max_exact else 1.0 / (1 + draws)), n


@dataclass(frozen=True)
class VintagePlan:
    """One assumption at one vintage."""

    vintage: int
    consequence_years: tuple[int, ...]
    assumed: float
    se: float
    design_effect: float
    information: float
    look: int
    critical: float
    tost_critical: float
    margin_abs: float
    mdd: float
    mdd_relative: float | None
    power_refute: float
    power_confirm: float
    #: degrees of freedom of the t reference (``G − 1`` when assigned by cluster, as the verdicts); None = normal
    df: int | None = None
    #: treated clusters at this vintage (cohorts started by then) and, with at most
    #: :data:`~som_models.verdicts.VERY_FEW_CLUSTERS` of them, the smallest p-value randomisation inference can
    #: give (:func:`randomisation_min_p`)
    treated_clusters: int | None = None
    ri_min_p: float | None = None


@dataclass(frozen=True)
class AssumptionPlan:
    assumption: str
    outcome: str
    kind: str  # "effect" or "volume"
    rows: tuple[VintagePlan, ...]
    refutable_from: int | None
    confirmable_from: int | None
    note: str = ""
    #: "analytic" or "simulation" (then ``simulation`` holds the seed, draws and the source of the values)
    method: str = "analytic"
    simulation: Mapping[str, Any] = field(default_factory=dict)
    #: the tests ("refute", "confirm") the verdicts cannot decide at any planned vintage: at most five treated
    #: clusters and randomisation inference cannot reach the test's level (:func:`_few_cluster_rule`)
    undecidable: tuple[str, ...] = ()

    def at(self, vintage: int) -> VintagePlan | None:
        return next((r for r in self.rows if r.vintage == vintage), None)


@dataclass(frozen=True)
class PlanSettings:
    alpha: float = 0.05
    margin: float = 0.5
    power: float = POWER
    sequential: str = DEFAULT_RULE
    min_persons: int = 20
    volume_margin: float = 0.2
    #: simulated plans (course length, cost): draws per truth and vintage, seed, and the coefficient of variation
    #: of the individual values when none are observed (:mod:`som_models.planning.volumes`)
    sim_draws: int = 2000
    sim_seed: int = 20261
    volume_cv: float = 0.5
    #: randomisation inference of the verdicts with ≤ 5 treated clusters: exact up to this many roll-outs, else
    #: this many random draws (``rollout_path_inference``'s ``max_exact`` and the evaluation's ``RI_DRAWS``)
    ri_max_exact: int = 20_000
    ri_draws: int = 9999


def _normal_crit(level: float, infos: list[float], reference: float, st: PlanSettings) -> float:
    """The normal-theory critical value of the look at ``infos[-1]``: the alpha-spending boundary, or
    ``z_{1−level/2}`` with ``sequential: none``."""
    if st.sequential != "none":
        return float(boundaries(infos, reference, level, st.sequential)[-1])
    return float(stats.norm.isf(level / 2))


def _crit(level: float, df: int | None, infos: list[float], reference: float, st: PlanSettings) -> float:
    """The critical value on the test statistic: normal, or ``t(df)`` (:func:`t_critical` of the boundary; with
    ``sequential: none`` directly ``t_{df}⁻¹(1 − level/2)``)."""
    if st.sequential == "none" and df is not None:
        return float(stats.t.isf(level / 2, df))
    return t_critical(_normal_crit(level, infos, reference, st), df)


def _few_cluster_rule(design: RolloutDesign, vintage: int, nominal_refute: float, nominal_confirm: float,
                      st: PlanSettings) -> tuple[int | None, float | None, bool, bool]:
    """``(treated clusters, smallest RI p-value, refutation decidable, confirmation decidable)`` at ``vintage``.

    With at most :data:`~som_models.verdicts.VERY_FEW_CLUSTERS` treated clusters the verdicts give no verdict
    unless randomisation inference over the roll-out answers; a test is then decidable only when the smallest
    p-value it can give (:func:`randomisation_min_p`) is below the level it is compared with — the look's nominal
    two-sided level for the refutation (``2Φ(−c_k)``; ``α/m`` at a fixed-sample look) and the one-sided level
    ``Φ(−c_T)`` for the equivalence test (the verdicts reject at ``p < level``)."""
    if design.cluster_level is None:
        return None, None, True, True
    treated = sum(int(k) for g, k in design.treated_clusters.items() if g <= vintage)
    if treated > VERY_FEW_CLUSTERS:
        return treated, None, True, True
    found = randomisation_min_p(design, vintage, max_exact=st.ri_max_exact, draws=st.ri_draws)
    p_min = 1.0 if found is None else found[0]
    return treated, p_min, p_min < nominal_refute, p_min < nominal_confirm


def _cluster_note(design: RolloutDesign, rows: Sequence[VintagePlan], df: int | None,
                  blocked: Mapping[str, Sequence[int]]) -> str:
    """What the few-cluster rules of the verdicts mean for this plan (empty when not clustered or ≥ 20 treated
    clusters); ``blocked`` the vintages at which randomisation inference cannot reach the level, per test."""
    if df is None or not rows:
        return ""
    treated = sorted({r.treated_clusters for r in rows if r.treated_clusters is not None})
    if not treated or treated[0] >= FEW_CLUSTERS:
        return ""
    k = f"{treated[0]}" if len(treated) == 1 else f"{treated[0]}–{treated[-1]}"
    ref = f"t({df}) over {df + 1} clusters"
    ri = [r for r in rows if r.ri_min_p is not None]
    txt = ""
    if treated[-1] > VERY_FEW_CLUSTERS:
        txt = (f"{k} treated clusters: the verdicts use the wild cluster bootstrap-t; the plan approximates it by "
               f"{ref}. ")
    if not ri:
        return txt
    values = {f"{r.ri_min_p:.2g}" for r in ri}
    p_txt = values.pop() if len(values) == 1 else ", ".join(f"{r.vintage}: {r.ri_min_p:.2g}" for r in ri)
    where = "" if len(ri) == len(rows) else f" at vintage(s) {', '.join(str(r.vintage) for r in ri)}"
    txt += (f"At most {VERY_FEW_CLUSTERS} treated clusters{where}: the verdicts "
            "give no verdict without randomisation inference over the roll-out (which needs every cluster to adopt at "
            f"one time); the smallest p-value it can give is {p_txt}. ")
    for test in ("refute", "confirm"):
        years = list(blocked.get(test, ()))
        if not years:
            continue
        what = "refutation" if test == "refute" else "equivalence test"
        when = "any planned vintage" if len(years) == len(rows) else "vintage(s) " + ", ".join(map(str, years))
        txt += f"It is not below the {what}'s level at {when}: no verdict that way (power 0). "
    if any(r.vintage not in blocked.get(t, ()) for r in ri for t in ("refute", "confirm")):
        txt += f"Where it can reach the level, the plan approximates the randomisation test by {ref}. "
    return txt


def _effect_plan(name: str, outcome: str, design: RolloutDesign, comp: VarianceComponents, vintages: Sequence[int],
                 implied, family: int, st: PlanSettings, success: bool) -> AssumptionPlan:
    """``implied(e)`` is the assumed effect at event time ``e``."""
    K = design.course_years
    first = min(design.cohorts)
    rows: list[VintagePlan] = []
    infos: list[float] = []
    reference = None
    level = st.alpha / family
    tost_level = min(0.99, 2 * level)
    df = cluster_df(design.clusters)
    blocked: dict[str, list[int]] = {"refute": [], "confirm": []}
    for v in vintages:
        if success:
            times = [K] if first + K <= v else []
        else:
            times = [e for e in range(K, v - first + 1)
                     if sum(n for g, n in design.cohorts.items() if g + e <= v) >= st.min_persons]
        if not times:
            continue
        var, deff = contrast_variance(design, comp, v, times)
        if infos and 1 / var <= infos[-1] * (1 + 1e-9):
            continue  # no new information for this statistic: a later vintage repeats the last look
        se = math.sqrt(var)
        assumed = float(np.mean([implied(e) for e in times]))
        delta = st.margin * abs(assumed)
        if reference is None:
            z = stats.norm.isf(st.alpha / 2) + stats.norm.ppf(REFERENCE_POWER)
            reference = (z / delta) ** 2 if delta > 0 else 1 / var
        infos.append(1 / var)
        c = _crit(level, df, infos, reference, st)
        ct = _crit(tost_level, df, infos, reference, st)
        # the levels the verdicts compare a (randomisation) p-value with at this look
        nominal = (level if st.sequential == "none" else
                   2 * float(stats.norm.sf(_normal_crit(level, infos, reference, st))))
        nominal_t = (tost_level / 2 if st.sequential == "none" else
                     float(stats.norm.sf(_normal_crit(tost_level, infos, reference, st))))
        treated, p_min, can_refute, can_confirm = _few_cluster_rule(design, v, nominal, nominal_t, st)
        for test, can in (("refute", can_refute), ("confirm", can_confirm)):
            if not can:
                blocked[test].append(v)
        d = mdd(se, c, st.power, df) if can_refute else math.inf
        rows.append(VintagePlan(v, tuple(e - K + 1 for e in times), assumed, se, deff, 1 / var, len(infos), c, ct,
                                delta, d, d / abs(assumed) if assumed else None,
                                refutation_power(delta, se, c, df) if can_refute else 0.0,
                                tost_power(delta, se, ct, df) if can_confirm else 0.0, df, treated, p_min))
    refute = next((r.vintage for r in rows if r.power_refute >= st.power), None)
    confirm = next((r.vintage for r in rows if r.power_confirm >= st.power), None)
    undecidable = tuple(t for t in ("refute", "confirm") if rows and len(blocked[t]) == len(rows))
    note = ""
    if rows and rows[-1].vintage < vintages[-1]:
        note = (f"no information added after vintage {rows[-1].vintage} (all cohorts observed in the years tested); "
                "later vintages repeat that look. ")
    note += _cluster_note(design, rows, df, blocked)
    return AssumptionPlan(name, outcome, "effect", tuple(rows), refute, confirm, note.strip(),
                          undecidable=undecidable)


def _volume_plan(design: RolloutDesign, cohorts_assumed: Mapping[int, int], vintages: Sequence[int],
                 family_size: int, st: PlanSettings) -> AssumptionPlan:
    """Participants: observed in full at the vintage holding the last cohort year; Poisson power of the band test
    (:mod:`som_models.volume_verdicts`) against ``A(1 ± 2·margin)``, consistency power at ``A``."""
    A = float(sum(cohorts_assumed.values()))
    delta = st.volume_margin * A
    level = st.alpha / family_size
    last = max(cohorts_assumed)
    rows = []
    for v in [v for v in vintages if v >= last][:1]:  # a count: later vintages add nothing
        hi_edge, lo_edge = A + delta, A - delta
        # refute "over the band": P(X ≥ R | A+δ) < level/2 ⇔ R ≥ r_hi
        r_hi = int(stats.poisson.isf(level / 2, hi_edge)) + 1
        r_lo = int(stats.poisson.ppf(level / 2, lo_edge)) - 1
        p_up = float(stats.poisson.sf(r_hi - 1, A + 2 * delta))
        p_down = float(stats.poisson.cdf(r_lo, A - 2 * delta)) if A - 2 * delta > 0 else 1.0
        # consistent: P(X ≥ R | A−δ) < level and P(X ≤ R | A+δ) < level
        c_lo = int(stats.poisson.isf(level, lo_edge)) + 1
        c_hi = int(stats.poisson.ppf(level, hi_edge)) - 1
        confirm = float(stats.poisson.cdf(c_hi, A) - stats.poisson.cdf(c_lo - 1, A)) if c_hi >= c_lo else 0.0
        se = math.sqrt(A)
        rows.append(VintagePlan(v, (), A, se, 1.0, 1 / A, 1, float(stats.norm.isf(level / 2)),
                                float(stats.norm.isf(level)), delta, 2 * delta, 2 * st.volume_margin,
                                min(p_up, p_down), confirm))
    refute = next((r.vintage for r in rows if r.power_refute >= st.power), None)
    confirm_v = next((r.vintage for r in rows if r.power_confirm >= st.power), None)
    return AssumptionPlan("participants", "participants", "volume", tuple(rows), refute, confirm_v,
                          "a register count: exact once the last cohort year is delivered (Poisson band test, "
                          f"±{st.volume_margin:.0%}); the miss planned for is twice the band")


def _band_plan(name: str, assumed: float, delta: float, persons: Mapping[int, int], base: np.ndarray | None,
               family_size: int, st: PlanSettings, source: str, seed: int) -> AssumptionPlan:
    """Course length or cost per participant: the verdict's band test simulated at every vintage that adds persons
    (:mod:`som_models.planning.volumes`)."""
    from som_models.planning.volumes import simulate_band_power

    level = st.alpha / family_size
    c = float(stats.norm.isf(level / 2))
    rows: list[VintagePlan] = []
    last_n = 0
    for v, n in persons.items():
        if n < max(2, st.min_persons) or n == last_n:
            continue
        last_n = n
        sim = simulate_band_power(n, assumed, delta, level, base=base, cv=st.volume_cv, draws=st.sim_draws,
                                  seed=seed + v)
        z80 = float(stats.norm.ppf(st.power))
        d = delta + (c + z80) * sim.expected_se  # beyond the band edge: the normal approximation, for orientation
        rows.append(VintagePlan(v, (), assumed, sim.expected_se, 1.0, 1 / sim.expected_se**2 if sim.expected_se else
                                math.inf, len(rows) + 1, c, float(stats.norm.isf(level)), delta, d,
                                d / abs(assumed) if assumed else None, sim.refute, sim.confirm))
    refute = next((r.vintage for r in rows if r.power_refute >= st.power), None)
    confirm = next((r.vintage for r in rows if r.power_confirm >= st.power), None)
    note = (f"simulated band test (±{delta:,.4g} around the assumption; miss planned for: twice the band), "
            f"{st.sim_draws} draws per truth and vintage, seed {seed} + vintage; values: {source}")
    return AssumptionPlan(name, name, "volume", tuple(rows), refute, confirm, note, "simulation",
                          {"draws": st.sim_draws, "seed": seed, "seed_rule": "seed + vintage", "values": source,
                           "persons_by_vintage": {str(k): v for k, v in persons.items()}})


@dataclass(frozen=True, eq=False, repr=False)
class EvaluationPlan(ResultDisplay):
    """The plan of one parameter version: per assumption and vintage the planned precision (module docstring)."""

    intervention: str
    version: int | None
    settings: PlanSettings
    design: RolloutDesign
    assumptions: tuple[AssumptionPlan, ...]
    variance_source: str
    variances: Mapping[str, VarianceComponents]
    family_size: int
    method: str = "analytic"
    notes: tuple[str, ...] = ()
    #: EVPPI per assumption and payer (:mod:`som_models.planning.voi`), with the draws and seed
    value_of_information: Mapping[str, Any] = field(default_factory=dict)
    #: simulated check of the analytic power (seed, draws, rates), when run
    simulation: Mapping[str, Any] = field(default_factory=dict)

    def _repr_fields(self) -> dict[str, Any]:
        return {"intervention": self.intervention, "version": self.version, "assumptions": len(self.assumptions)}

    def by_name(self, name: str) -> AssumptionPlan:
        for a in self.assumptions:
            if a.assumption == name:
                return a
        raise KeyError(f"no plan for assumption {name!r}; planned: {', '.join(a.assumption for a in self.assumptions)}")

    def ranking(self, payer: str = "total") -> list[str]:
        """Assumptions by EVPPI (largest first) for ``payer``; those without EVPPI last, in plan order."""
        evppi = {k: v.get(payer, {}).get("evppi", -1.0) for k, v in self.value_of_information.get("by_assumption",
                                                                                                   {}).items()}
        names = [a.assumption for a in self.assumptions]
        return sorted(names, key=lambda n: -evppi.get(_voi_key(n), -1.0))

    def to_polars(self) -> pl.DataFrame:
        rows = [{"assumption": a.assumption, "outcome": a.outcome, "vintage": r.vintage,
                 "consequence_years": len(r.consequence_years), "assumed": r.assumed, "se": r.se,
                 "design_effect": r.design_effect, "look": r.look, "critical": r.critical, "margin_abs": r.margin_abs,
                 "mdd": r.mdd, "mdd_relative": r.mdd_relative, "power_refute": r.power_refute,
                 "power_confirm": r.power_confirm, "df": r.df} for a in self.assumptions for r in a.rows]
        schema = {"assumption": pl.Utf8, "outcome": pl.Utf8, "vintage": pl.Int64, "consequence_years": pl.Int64,
                  "assumed": pl.Float64, "se": pl.Float64, "design_effect": pl.Float64, "look": pl.Int64,
                  "critical": pl.Float64, "margin_abs": pl.Float64, "mdd": pl.Float64, "mdd_relative": pl.Float64,
                  "power_refute": pl.Float64, "power_confirm": pl.Float64, "df": pl.Int64}
        return pl.DataFrame(rows, schema=schema)

    def decidable(self) -> list[dict[str, Any]]:
        """Per assumption: the first vintage at which a miss of ±margin is refuted with the planned power, and the
        first at which the assumption, if true, is confirmed (TOST), with the EVPPI (total) when computed."""
        voi = self.value_of_information.get("by_assumption", {})
        out = []
        for name in self.ranking():
            a = self.by_name(name)
            e = voi.get(_voi_key(name), {}).get("total", {})
            out.append({"assumption": name, "refutable_from": a.refutable_from, "confirmable_from": a.confirmable_from,
                        "undecidable": list(a.undecidable),
                        "evppi_total": e.get("evppi"), "evppi_se": e.get("se"), "note": a.note,
                        "follow_up_cost": self.value_of_information.get("follow_up_cost", {}).get(name)})
        return out

    def summary(self) -> str:
        info = [("Intervention", self.intervention), ("Version", self.version), ("Method", self.method),
                ("Variances", self.variance_source), ("Design", _design_text(self.design)),
                ("Tests", f"α = {self.settings.alpha:g} Bonferroni over {self.family_size} (Holm lower bound); "
                          f"{self.settings.sequential} alpha spending, one look per vintage; margin ±"
                          f"{self.settings.margin:.0%}; power {self.settings.power:.0%}; {reference_text(self.design)}")]
        rows = [[d["assumption"], decidable_text(d["refutable_from"], "refute" in d["undecidable"],
                                                  "not in plan horizon"),
                 decidable_text(d["confirmable_from"], "confirm" in d["undecidable"], "not in plan horizon"),
                 fmt(d["evppi_total"]) if d["evppi_total"] is not None else ""] for d in self.decidable()]
        body = ["Decidable by vintage (80 % power):",
                *text_table(["assumption", "refute ±margin from", "confirm from", "EVPPI (total, kr)"], rows)]
        return render_summary(f"Evaluation plan — {self.intervention}", info, body, list(self.notes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervention": self.intervention, "version": self.version, "method": self.method,
            "settings": self.settings.__dict__, "design": self.design.to_dict(), "family_size": self.family_size,
            "variance_source": self.variance_source, "variances": {k: v.to_dict() for k, v in self.variances.items()},
            "assumptions": [{"assumption": a.assumption, "outcome": a.outcome, "kind": a.kind,
                             "refutable_from": a.refutable_from, "confirmable_from": a.confirmable_from,
                             "undecidable": list(a.undecidable), "note": a.note,
                             "method": a.method, "simulation": dict(a.simulation),
                             "vintages": [r.__dict__ | {"consequence_years": list(r.consequence_years)}
                                          for r in a.rows]} for a in self.assumptions],
            "decidable": self.decidable(), "value_of_information": dict(self.value_of_information),
            "simulation": dict(self.simulation), "notes": list(self.notes),
        }


def reference_text(d: RolloutDesign) -> str:
    """The reference distribution of the planned tests, in words: normal, or ``t(G − 1)`` when clustered."""
    df = cluster_df(d.clusters)
    if df is None:
        return "normal-theory tests"
    return f"t({df}) tests over {d.clusters} {d.cluster_level} clusters (as the verdicts)"


def decidable_text(vintage: int | None, undecidable: bool, otherwise: str) -> str:
    """A decidable-from vintage in words: the vintage, "not decidable" (the few-cluster rule), or ``otherwise``."""
    if vintage is not None:
        return str(vintage)
    return f"not decidable (≤ {VERY_FEW_CLUSTERS} treated clusters)" if undecidable else otherwise


def cohort_source_text(d: RolloutDesign) -> str:
    """Which cohort sizes were observed and which taken from the parameter set, in words."""
    groups: dict[str, list[str]] = {}
    for g in sorted(d.cohorts):
        groups.setdefault(d.cohort_sources.get(g, "parameter set"), []).append(f"{g}: {d.cohorts[g]}")
    return "; ".join(f"{src} ({', '.join(ys)})" for src, ys in groups.items())


def _voi_key(assumption: str) -> str:
    """The Monte Carlo input of an assumption: ``effect_path:x`` ↔ ``consequence:x``."""
    return "consequence:" + assumption.split(":", 1)[1] if assumption.startswith("effect_path:") else assumption


def _design_text(d: RolloutDesign) -> str:
    txt = (f"cohorts {', '.join(f'{g}: {n}' for g, n in sorted(d.cohorts.items()))}; {d.controls} comparison persons; "
           f"course {d.course_years} year(s)")
    if d.cohort_sources:
        txt += f"; cohort sizes: {cohort_source_text(d)}"
    if d.cluster_level:
        txt += (f"; assigned by {d.cluster_level}: {d.treated_cluster_count} treated and {d.control_clusters} "
                "comparison clusters")
    return txt


def plan_evaluation(params, design: RolloutDesign, variances: Mapping[str, VarianceComponents], *,
                    vintages: Sequence[int], settings: PlanSettings = PlanSettings(),
                    tested: Sequence[str] | None = None, version: int | None = None,
                    variance_source: str = "",
                    volume_values: Mapping[str, np.ndarray | None] | None = None) -> EvaluationPlan:
    """The plan of ``params`` (a :class:`~som_models.parameters.schema.ParameterSet`) for the given vintages.

    ``variances`` maps the success measure's *name* (the success indicator) and each consequence item to its
    components; ``tested`` names the assumptions (verdict names; default: success rate and every causal effect
    path, plus ``participants``, ``course_years`` and ``cost_per_participant``); ``volume_values`` the observed
    individual course lengths (years) and costs per participant (kroner) to resample in the simulated plans
    (absent or None: a gamma distribution with ``settings.volume_cv``)."""
    from som_models.assumptions import AssumptionMap
    from som_models.parameters.schema import DESCRIPTIVE
    from som_models.planning.volumes import course_band, persons_by_vintage
    from som_models.volume_verdicts import COST, COURSE_YEARS, VOLUME_ASSUMPTIONS, assumed_cost

    amap = AssumptionMap.from_params(params)
    causal = [c.item for c in params.consequences if c.kind != DESCRIPTIVE]
    names = ["success_rate", *(f"effect_path:{i}" for i in causal), *VOLUME_ASSUMPTIONS]
    if tested is not None:
        unknown = sorted(set(tested) - set(names))
        if unknown:
            raise ValueError(f"cannot plan {', '.join(unknown)}: the plan covers {', '.join(names)}")
        names = [n for n in names if n in tested]
    effects = [n for n in names if n not in VOLUME_ASSUMPTIONS]
    volume_family = max(1, sum(n in VOLUME_ASSUMPTIONS for n in names))  # Holm over the volume verdicts (≤ 3)
    values = dict(volume_values or {})
    family = max(1, len(effects))
    notes = ["Holm is planned at its first step (Bonferroni α/m): the planned power is a lower bound.",
             *([f"Assigned by {design.cluster_level}: the effect tests are planned as the verdicts make them, against "
                f"t({cluster_df(design.clusters)}) over G = {design.clusters} clusters (noncentral t power, exact TOST "
                "power over the chi-distributed standard error); with alpha spending the t critical value has the "
                "boundary's nominal level."] if design.clusters is not None else []),
             "Left out of the variance: the estimation effect of the cohort shares, attrition, and any change in the "
             "outcome variance caused by the treatment."]
    skipped = [c.item for c in params.consequences if c.kind == DESCRIPTIVE]
    if skipped:
        notes.append(f"Descriptive profiles ({', '.join(skipped)}) are tested against SØM's contrast, not the ATT; "
                     "not planned here.")
    plans = []
    for name in effects:
        if name == "success_rate":
            key = amap.success_outcome
            comp = variances.get(key)
            if comp is None:
                raise ValueError(f"no variance components for the success indicator {key!r}")
            plans.append(_effect_plan(name, key, design, comp, vintages, lambda e: amap.success_rate, family,
                                      settings, True))
        else:
            item = name.split(":", 1)[1]
            comp = variances.get(item)
            if comp is None:
                raise ValueError(f"no variance components for outcome {item!r}")
            plans.append(_effect_plan(name, item, design, comp, vintages,
                                      lambda e, item=item: amap.implied_effect(item, e), family, settings, False))
    if "participants" in names:
        plans.append(_volume_plan(design, dict(params.cohorts), vintages, volume_family, settings))
    K = params.course_years
    for name, assumed, delta, lag in ((COURSE_YEARS, float(K), course_band(K, settings.volume_margin), K),
                                      (COST, assumed_cost(params), settings.volume_margin * abs(assumed_cost(params)),
                                       K - 1)):
        if name not in names:
            continue
        base = values.get(name)
        source = (f"resampled from {len(base)} observed values" if base is not None and len(base) >= 2 else
                  f"gamma, coefficient of variation {settings.volume_cv:g} (assumed: none observed)")
        if assumed == 0:
            notes.append(f"{name}: the assumption is 0, so it has no band and cannot be confirmed; not planned.")
            continue
        persons = persons_by_vintage(design.cohorts, K, vintages, lag)
        plans.append(_band_plan(name, assumed, delta, persons, None if base is None or len(base) < 2 else base,
                                volume_family, settings, source, settings.sim_seed))
    sims = {a.assumption: dict(a.simulation) for a in plans if a.method == "simulation"}
    return EvaluationPlan(params.intervention, version, settings, design, tuple(plans), variance_source,
                          dict(variances), family, method="analytic" if not sims else "analytic and simulation",
                          notes=tuple(notes), simulation=sims)
