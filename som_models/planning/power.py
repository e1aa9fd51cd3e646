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

**Tests planned for**, with ``se_V`` the standard error at vintage ``V``, ``δ = margin·|ā|`` (the equivalence
margin) and ``c`` the critical value:

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
planned information is the expected one. With ``sequential: none`` the fixed-sample critical value is used
(``t(G − 1)`` when clustered, as the verdicts do). The verdicts switch to the wild cluster bootstrap with fewer
than 20 treated clusters and withhold a verdict at ≤ 5; the plan marks such designs and plans them with the
normal-theory test.

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

from som_models.lazy_scipy import optimize, stats
from som_models.planning.variance import VarianceComponents
from som_models.results_base import ResultDisplay, fmt, render_summary, text_table
from som_models.sequential import DEFAULT_RULE, REFERENCE_POWER, boundaries

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


def refutation_power(shift: float, se: float, crit: float) -> float:
    """``P(|Z| ≥ c)`` for ``Z ~ N(shift/se, 1)``."""
    if not (se > 0) or not math.isfinite(crit):
        return 0.0
    x = abs(shift) / se
    return float(stats.norm.cdf(x - crit) + stats.norm.cdf(-x - crit))


def tost_power(delta: float, se: float, crit: float) -> float:
    """Power of the equivalence test at truth = assumption: ``max(0, 2Φ(δ/se − c) − 1)``."""
    if not (se > 0) or not math.isfinite(crit) or delta <= 0:
        return 0.0
    return float(max(0.0, 2 * stats.norm.cdf(delta / se - crit) - 1))


def mdd(se: float, crit: float, power: float = POWER) -> float:
    """The deviation detected with ``power`` by the two-sided test with critical value ``crit``."""
    if not math.isfinite(crit) or not (se > 0):
        return math.inf
    x = optimize.brentq(lambda x: refutation_power(x, 1.0, crit) - power, 0.0, crit + 10.0)
    return float(x * se)


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


def _crit(level: float, design: RolloutDesign, infos: list[float], reference: float, st: PlanSettings) -> float:
    if st.sequential != "none":
        return float(boundaries(infos, reference, level, st.sequential)[-1])
    df = None if design.clusters is None else max(1, design.clusters - 1)
    return float(stats.norm.isf(level / 2) if df is None else stats.t.isf(level / 2, df))


def _effect_plan(name: str, outcome: str, design: RolloutDesign, comp: VarianceComponents, vintages: Sequence[int],
                 implied, family: int, st: PlanSettings, success: bool) -> AssumptionPlan:
    """``implied(e)`` is the assumed effect at event time ``e``."""
    K = design.course_years
    first = min(design.cohorts)
    rows: list[VintagePlan] = []
    infos: list[float] = []
    reference = None
    level = st.alpha / family
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
        c = _crit(level, design, infos, reference, st)
        ct = _crit(min(0.99, 2 * level), design, infos, reference, st)
        d = mdd(se, c, st.power)
        rows.append(VintagePlan(v, tuple(e - K + 1 for e in times), assumed, se, deff, 1 / var, len(infos), c, ct,
                                delta, d, d / abs(assumed) if assumed else None,
                                refutation_power(delta, se, c), tost_power(delta, se, ct)))
    refute = next((r.vintage for r in rows if r.power_refute >= st.power), None)
    confirm = next((r.vintage for r in rows if r.power_confirm >= st.power), None)
    note = ""
    if rows and rows[-1].vintage < vintages[-1]:
        note = (f"no information added after vintage {rows[-1].vintage} (all cohorts observed in the years tested); "
                "later vintages repeat that look. ")
    if design.treated_cluster_count is not None and design.treated_cluster_count < 20:
        note += (f"{design.treated_cluster_count} treated clusters: the verdicts use the wild cluster bootstrap "
                "(≤ 5: no verdict without randomisation inference); planned with the normal-theory test")
    return AssumptionPlan(name, outcome, "effect", tuple(rows), refute, confirm, note)


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
                 "power_confirm": r.power_confirm} for a in self.assumptions for r in a.rows]
        schema = {"assumption": pl.Utf8, "outcome": pl.Utf8, "vintage": pl.Int64, "consequence_years": pl.Int64,
                  "assumed": pl.Float64, "se": pl.Float64, "design_effect": pl.Float64, "look": pl.Int64,
                  "critical": pl.Float64, "margin_abs": pl.Float64, "mdd": pl.Float64, "mdd_relative": pl.Float64,
                  "power_refute": pl.Float64, "power_confirm": pl.Float64}
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
                        "evppi_total": e.get("evppi"), "evppi_se": e.get("se"), "note": a.note,
                        "follow_up_cost": self.value_of_information.get("follow_up_cost", {}).get(name)})
        return out

    def summary(self) -> str:
        info = [("Intervention", self.intervention), ("Version", self.version), ("Method", self.method),
                ("Variances", self.variance_source), ("Design", _design_text(self.design)),
                ("Tests", f"α = {self.settings.alpha:g} Bonferroni over {self.family_size} (Holm lower bound); "
                          f"{self.settings.sequential} alpha spending, one look per vintage; margin ±"
                          f"{self.settings.margin:.0%}; power {self.settings.power:.0%}")]
        rows = [[d["assumption"], d["refutable_from"] or "not in plan horizon",
                 d["confirmable_from"] or "not in plan horizon", fmt(d["evppi_total"]) if d["evppi_total"] is not None
                 else ""] for d in self.decidable()]
        body = ["Decidable by vintage (80 % power):",
                *text_table(["assumption", "refute ±margin from", "confirm from", "EVPPI (total, kr)"], rows)]
        return render_summary(f"Evaluation plan — {self.intervention}", info, body, list(self.notes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervention": self.intervention, "version": self.version, "method": self.method,
            "settings": self.settings.__dict__, "design": self.design.to_dict(), "family_size": self.family_size,
            "variance_source": self.variance_source, "variances": {k: v.to_dict() for k, v in self.variances.items()},
            "assumptions": [{"assumption": a.assumption, "outcome": a.outcome, "kind": a.kind,
                             "refutable_from": a.refutable_from, "confirmable_from": a.confirmable_from, "note": a.note,
                             "method": a.method, "simulation": dict(a.simulation),
                             "vintages": [r.__dict__ | {"consequence_years": list(r.consequence_years)}
                                          for r in a.rows]} for a in self.assumptions],
            "decidable": self.decidable(), "value_of_information": dict(self.value_of_information),
            "simulation": dict(self.simulation), "notes": list(self.notes),
        }


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
