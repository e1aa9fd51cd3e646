"""The unobserved years of a consequence profile: extrapolated from the evidence, with a wider uncertainty.

An evaluation observes only the first few consequence years of a profile (a register vintage covers a
few years after the course); a profile runs for ten or more. Keeping the assumed values in the years
without data keeps an assumption the observed years may just have refuted. This module extrapolates those
years from what the observed years say about the assumption, with one stated rule.

**Rule: scale the assumed profile by the observed realised/assumed ratio.** With assumed values ``a_j``
(the profile under test), observed consequence years ``O`` with realised values ``c_j`` and standard errors
``σ_j`` (``j ∈ O``; :func:`som_models.assumptions.units_per_success` for the causal path), the ratio over the
observed window is the ratio of sums — the quantity the effect-path verdict tests (realised over assumed,
averaged over the observed years)::

    ρ̂ = Σ_O c_j / Σ_O a_j

Delta method (``ρ̂`` is linear in the ``c_j``; the ``a_j`` are the fixed assumptions under test)::

    Var(ρ̂) = Σ_i Σ_j Cov(c_i, c_j) / (Σ_O a_j)²  ≤  (Σ_O σ_j)² / (Σ_O a_j)²   →   se_ρ = Σ_O σ_j / |Σ_O a_j|

The bound (Cauchy–Schwarz; equality when the years are perfectly correlated) is used because the yearly
estimates share the realised success rate and the same persons and their covariance is not carried here:
``se_ρ`` is never too small, whatever the correlation.

An unobserved year ``j`` at distance ``h_j = min_{o∈O} |j − o|`` from the nearest observed year gets::

    ĉ_j  = ρ̂ · a_j
    σ̂_j² = max(a_j² · v_0, σ_max²) + h_j · (τ · a_j)²
    v_0  = max(se_ρ², max_{o∈O} (σ_o / |a_o|)²),   σ_max = max_{o∈O} σ_o
    τ    = max(τ_min, τ̂)

The first term says an extrapolated year is never known better than the least precisely observed year —
neither relative to its assumed value (``σ_o/|a_o|`` is the SE of year ``o``'s own ratio ``c_o/a_o``; ``se_ρ``
that of the pooled ratio) nor in units (``σ_max``). The second is a random walk of the ratio away from the
data: the further a year lies from the observed window, the less the window says about it. ``τ̂`` is the
DerSimonian–Laird between-year SD of the yearly ratios ``r_o = c_o/a_o`` (weights ``w_o = (a_o/σ_o)²``,
``Q = Σ w_o (r_o − r̄_w)²``, ``τ̂² = max(0, (Q − (k − 1)) / (Σw − Σw²/Σw))``, ``k`` = observed years with ``a_o ≠ 0``; ``τ̂ = 0`` for
``k < 2``): the ratio drifts at least as much per year beyond the data as it varies between the observed
years. ``τ_min`` (:data:`DRIFT_FLOOR`, 0.1 = 10 % of the assumed value per year) is a convention, not an
estimate: with few observed years ``τ̂`` is poorly determined and an extrapolation must not claim to be
exact. Consequently every extrapolated year is *wider* than every observed year, in units and relative to
the assumption (``σ̂_j > σ_o`` and ``σ̂_j/|a_j| > σ_o/|a_o|`` for all ``o``, as ``τ · a_j ≠ 0``), and widens
with the distance from the data (for a given ``a_j``).

The extrapolation is *evidence* for the unobserved years: :func:`som_models.calibration.propose` combines it
with the prior by the evaluation's update policy (``precision_weighted``: the normal–normal update, so a
weak prior moves to the extrapolation and a strong one holds; ``replace``: the extrapolation is taken) and
marks the years ``unverified`` (:mod:`som_models.parameters.schema`). When the assumed values over the
observed window sum to zero the ratio is undefined: no extrapolation is made (the years keep the prior and
are still marked unverified); so does an unobserved year whose assumed value is zero (nothing to scale).

The rule keeps the assumed *shape* and rescales its level; it does not fit a decay to the observed years
(with the usual three or four observed years a fitted decay extrapolates noise, and its form would be a
second assumption). A different shape beyond the data is an analyst's statement in the parameter document.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: ``τ_min``: the least per-year drift of the realised/assumed ratio beyond the observed years (module docstring).
DRIFT_FLOOR = 0.1
RULE = "ratio"


@dataclass(frozen=True)
class ExtrapolatedYear:
    """One unobserved consequence year: the assumed value, the extrapolated value and its SE, the distance."""

    consequence_year: int
    assumed: float
    value: float
    se: float
    distance: int


@dataclass(frozen=True)
class Extrapolation:
    """The extrapolation of one profile's unobserved years (formulas in the module docstring).

    ``ratio``/``ratio_se`` are ``ρ̂``/``se_ρ``, ``drift`` is ``τ`` (``drift_estimate`` = ``τ̂``),
    ``base_variance`` is ``v_0`` and ``se_floor`` is ``σ_max``; ``years`` lists the extrapolated years (empty
    when all years are observed). ``ratio`` is None when it is undefined (assumed values summing to zero
    over the window): then ``years`` is empty. ``unobserved`` names every year without data, also those not
    in ``years`` (assumed 0).
    """

    observed: tuple[int, ...]
    unobserved: tuple[int, ...]
    ratio: float | None
    ratio_se: float | None
    drift: float
    drift_estimate: float
    base_variance: float | None
    years: tuple[ExtrapolatedYear, ...]
    se_floor: float | None = None

    @property
    def rule(self) -> str:
        """The rule in words, for the parameter document's ``source`` and ``som params show``."""
        if self.ratio is None:
            return ("not extrapolated: the assumed values over the observed years sum to zero, so the "
                    "realised/assumed ratio is undefined; the prior is kept")
        return (f"assumed value × realised/assumed ratio {self.ratio:.4g} (se {self.ratio_se:.3g}) over consequence "
                f"years {year_span(self.observed)}; se = √(max(assumed² · {self.base_variance:.3g}, "
                f"{self.se_floor:.3g}²) + distance · ({self.drift:.3g} · assumed)²)")

    def record(self) -> dict:
        """The document's ``consequences.<item>.extrapolation`` mapping."""
        return {"rule": RULE, "observed_years": list(self.observed),
                "ratio": _round(self.ratio), "ratio_se": _round(self.ratio_se),
                "drift": _round(self.drift), "drift_estimate": _round(self.drift_estimate),
                "base_variance": _round(self.base_variance), "se_floor": _round(self.se_floor)}


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


def year_span(years: Sequence[int]) -> str:
    """``1–4`` for consecutive years, else ``1, 3, 4``."""
    ys = sorted(years)
    if not ys:
        return "none"
    if ys == list(range(ys[0], ys[-1] + 1)):
        return f"{ys[0]}" if len(ys) == 1 else f"{ys[0]}–{ys[-1]}"
    return ", ".join(str(y) for y in ys)


def between_year_sd(ratios: Sequence[float], ses: Sequence[float]) -> float:
    """DerSimonian–Laird ``τ̂`` of yearly ratios with their SEs (0 for fewer than two usable years)."""
    pairs = [(r, s) for r, s in zip(ratios, ses, strict=True) if s > 0 and math.isfinite(r) and math.isfinite(s)]
    if len(pairs) < 2:
        return 0.0
    w = [1 / s**2 for _, s in pairs]
    sw = sum(w)
    mean = sum(wi * r for wi, (r, _) in zip(w, pairs, strict=True)) / sw
    q = sum(wi * (r - mean) ** 2 for wi, (r, _) in zip(w, pairs, strict=True))
    c = sw - sum(wi**2 for wi in w) / sw
    return math.sqrt(max(0.0, (q - (len(pairs) - 1)) / c)) if c > 0 else 0.0


def extrapolate(assumed: Sequence[float], observed: Mapping[int, tuple[float, float]], *,
                drift_floor: float = DRIFT_FLOOR) -> Extrapolation:
    """Extrapolate the unobserved years of a profile (module docstring).

    ``assumed`` is the profile under test, consequence years ``1 … len(assumed)``; ``observed`` maps a
    consequence year to its realised ``(value, se)``. Raises ``ValueError`` for an observed year outside the
    profile, a negative or non-finite SE, or a negative ``drift_floor``.
    """
    if drift_floor < 0 or not math.isfinite(drift_floor):
        raise ValueError(f"drift_floor must be a non-negative number, got {drift_floor!r}")
    n = len(assumed)
    for j, (c, s) in observed.items():
        if not 1 <= j <= n:
            raise ValueError(f"observed consequence year {j} is outside the profile (years 1–{n})")
        if not (math.isfinite(c) and math.isfinite(s)) or s < 0:
            raise ValueError(f"consequence year {j}: realised value {c!r} with se {s!r} is not usable")
    obs = tuple(sorted(observed))
    unobserved = tuple(j for j in range(1, n + 1) if j not in observed)
    if not obs:
        return Extrapolation(obs, unobserved, None, None, drift_floor, 0.0, None, ())
    total_a = sum(assumed[j - 1] for j in obs)
    if total_a == 0:
        return Extrapolation(obs, unobserved, None, None, drift_floor, 0.0, None, ())
    ratio = sum(observed[j][0] for j in obs) / total_a
    ratio_se = sum(observed[j][1] for j in obs) / abs(total_a)
    usable = [j for j in obs if assumed[j - 1] != 0]
    year_ratios = [observed[j][0] / assumed[j - 1] for j in usable]
    year_ses = [observed[j][1] / abs(assumed[j - 1]) for j in usable]
    tau_hat = between_year_sd(year_ratios, year_ses)
    tau = max(drift_floor, tau_hat)
    v0 = max([ratio_se**2, *(s**2 for s in year_ses)])
    floor = max(observed[j][1] for j in obs)
    years = []
    for j in unobserved:
        h = min(abs(j - o) for o in obs)
        a = assumed[j - 1]
        if a == 0:
            continue  # nothing to scale: the year keeps the prior (still unverified)
        se = math.sqrt(max(a**2 * v0, floor**2) + h * (tau * a) ** 2)
        years.append(ExtrapolatedYear(j, a, ratio * a, se, h))
    return Extrapolation(obs, unobserved, ratio, ratio_se, tau, tau_hat, v0, tuple(years), floor)
