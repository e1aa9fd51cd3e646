"""Sequential monitoring of an assumption over repeated looks at cumulative register vintages (alpha spending).

An evaluation is rerun whenever a register vintage arrives (and monthly by schedule). Each rerun on cumulative data
tests the same hypothesis again — "the assumption holds" — on data that contain the earlier data. Tested at the
fixed level α every time, the chance of refuting a true assumption at *some* look grows with the number of looks
(with three looks at information 1 : 2 : 3 it is about 10.7 % at α = 5 %, Armitage, McPherson & Rowe 1969), and
a verdict can flip back and forth by chance. This module controls the error over the looks.

**What is a look.** A look is a test of one *hypothesis* on one *data set*. The hypothesis is identified by
:func:`hypothesis_key` of the assumed values it tests (for an effect path: the success rate, the course length and
the whole consequence profile, so the key does not change when more consequence years become observable; an
approved version that changes the assumption starts a new hypothesis with a fresh sequence). The data set is
identified by its data hash (sha256 of the delivery). A rerun on data already looked at is *not* a new look: it is
the same look again — same look number, same information, same boundary, hence the same verdict — and spends no
α. Only distinct data count, in the order in which they were first looked at (:func:`plan_look`).

**The rule: Lan–DeMets alpha spending** (Lan & DeMets 1983, Biometrika 70:659–663; DeMets & Lan 1994, Stat Med
13:1341–1352; the power family of Kim & DeMets 1987, Biometrics 43:857–864), linear by default
(``lan-demets-linear``), or Pocock type (``lan-demets-pocock``) or O'Brien–Fleming type (``lan-demets-obf``)::

    linear (power ρ = 1):   α*(t) = α · t
    Pocock type:            α*(t) = α · ln(1 + (e − 1) t)
    O'Brien–Fleming type:   α*(t) = 2 − 2 Φ(z_{1−α/2} / √t),      0 < t ≤ 1,   α*(0) = 0,  α*(1) = α

**Why linear by default.** On the open-ended axis below the first look sits near ``t = ½`` or above, and for most
evaluations the first vintage is the look a kommune acts on. O'Brien–Fleming-type spending gives it
α*(½) = 0.0056 (a boundary of |z| ≥ 2.77 at α = 5 %): it turned the demo's shelter-night path — realised within the
margin — from ``consistent`` into ``inconclusive`` on its only look. Linear spending gives the first look
α*(½) = 0.025 (|z| ≥ 2.24) and Pocock-type 0.031 (|z| ≥ 2.16). ``benchmarks/sequential_looks.py --rule`` (5,000
worlds, 12 monthly looks over 3 cumulative vintages, truth = assumption, seeds 1 and 2): false refutations at
any look 0.047–0.049 (success rate) and 0.042–0.046 (effect path) with linear spending; 0.052–0.056 and
0.041–0.046 with Pocock-type (the estimated standard errors make the realised error exceed the nominal spend
α*(t₃) = 0.046 a little, and Pocock spends most of it at the first look); 0.043 and 0.030 with O'Brien–Fleming
(2,000 worlds). Linear spending is the most first-look power that still stays within α.

gives the type-I error that may have been spent by information fraction ``t``. Look ``k`` (information ``I_k``,
fraction ``t_k``) rejects when ``|Z_k| ≥ c_k``, with ``c_k`` solving::

    P(|Z_1| < c_1, …, |Z_{k−1}| < c_{k−1}, |Z_k| ≥ c_k) = α*(t_k) − α*(t_{k−1})

under the canonical joint distribution of a statistic on cumulative data (Jennison & Turnbull 2000,
*Group Sequential Methods*, §3.1): ``Z_k`` standard normal, ``Cov(Z_j, Z_k) = √(I_j / I_k)`` for ``I_j ≤ I_k``
(the score ``Z_k √I_k`` is a Brownian motion in information time, with independent increments). Whatever the
number of looks, ``P(reject at some look | H₀) = α*(t_K) ≤ α``. O'Brien–Fleming shape: early looks on little
information get almost no α (boundaries ≈ 3.4–4), later looks close to the fixed-sample level; Pocock shape:
nearly equal boundaries at every look.

**Information and the open-ended horizon.** The information of a look is ``I = 1 / se²`` of the statistic the
verdict tests (the level test's standard error). Lan & DeMets use ``t = I / I_max`` with a planned maximum
information; a rerun evaluation has no planned last look (a register year arrives every year), and ``t = 1``
would leave no α for any later vintage. The information axis ``[0, ∞)`` is therefore mapped onto ``[0, 1)``::

    t = I / (I + I₀)

so every new vintage still has α left and the total over any number of looks stays below α. ``I₀``, the
reference information (``t = ½`` there, α*(½) = 0.0056 at α = 5 %), is fixed at the hypothesis's first look as
the information of a fixed-sample design with 80 % power against a deviation of one equivalence margin
``δ = margin · |assumed|``::

    I₀ = ((z_{1−α/2} + z_{0.8}) / δ)²

and, for an assumption of exactly zero (no relative margin), as the first look's own information (``t₁ = ½``).
It is stored with every look and read back from the first one, so it does not move with the data.

A look whose information does not exceed an earlier look's (a backfill of an older vintage, a correction with
fewer persons) adds no information fraction, gets no α (``c_k = ∞``: it cannot refute) and, never rejecting, is
left out of the joint probabilities of later looks (exact for a Brownian motion).

**Repeated p-values and confidence intervals** (Jennison & Turnbull 1989, JRSS B 51:305–361; 2000, ch. 9). The
repeated p-value of look ``k`` is the smallest level at which the sequential test would reject at this look::

    p̃_k = inf { α′ : |Z_k| ≥ c_k(α′) }

with ``c_k(α′)`` the boundary of the same design (same information fractions) at level α′. It is ≤ α exactly
when the level-α test rejects, and ``P(p̃_k ≤ α for some k | H₀) ≤ α``. Because it is a p-value valid at every
level, Holm's step-down procedure over several assumptions applies to the repeated p-values unchanged (each
Holm step compares ``p̃`` with ``α/h``, i.e. uses the boundary ``c_k(α/h)``), and the interval printed beside a
verdict is the repeated confidence interval ``estimate ± c_k(α/h) · se``, which excludes the assumption exactly
when the verdict refutes it. The equivalence test (TOST) uses the one-sided version: the interval
``± c_k(2α/h) · se`` lies within the margin. Decisions taken by a p-value without a normal statistic (Wald,
randomisation inference, wild bootstrap) enter through the normal equivalent ``|z| = Φ⁻¹(1 − p/2)``.

**Numerics.** The boundaries are computed by the recursive numerical integration of Armitage, McPherson & Rowe
(1969; Jennison & Turnbull 2000, ch. 19): the sub-density of ``Z_k`` on the continuation region is carried on a
Simpson grid (spacing ≤ min(0.05, s/6), ``s = √(1 − I_{k−1}/I_k)``), the crossing probability of a candidate
boundary is integrated in closed form against it, and the boundary is found by Brent's method. Deterministic:
the same information gives the same boundary bit for bit. Checked against the closed two-look formula and the
published Lan–DeMets O'Brien–Fleming bounds (gsDesign ``sfLDOF``, one-sided 2.5 %, three equally spaced looks:
3.710, 2.511, 1.993) in ``tests/test_sequential_spending.py``.

**Limits.** The joint distribution is exact for a statistic whose data grow by nesting (cumulative vintages)
and whose definition does not change. An effect path's level test averages over the consequence years observed,
which grow with the vintage; the correlation between looks then deviates from ``√(I_j/I_k)`` and the control is
approximate (``benchmarks/sequential_looks.py`` measures the error rate). Looks recorded before sequential
monitoring existed carry no look record and are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from som_models.hashing import content_hash
from som_models.lazy_scipy import optimize, stats

#: the monitoring rules: Lan–DeMets linear spending (the default), Pocock- or O'Brien–Fleming-type spending, or
#: none (every look at the fixed level α)
RULES = ("lan-demets-linear", "lan-demets-pocock", "lan-demets-obf", "none")
DEFAULT_RULE = "lan-demets-linear"
#: power of the fixed-sample design that defines the reference information I₀ (against one margin)
REFERENCE_POWER = 0.8
#: boundaries are searched below this |z| (beyond it the normal tail is below 1e-300)
_Z_MAX = 37.0
_MAX_GRID = 2001


def obf_spending(t: float, alpha: float) -> float:
    """Lan–DeMets O'Brien–Fleming-type spending ``α*(t) = 2 − 2Φ(z_{1−α/2}/√t)`` (0 at ``t = 0``)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 <= t <= 1:
        raise ValueError(f"information fraction must be in [0, 1], got {t}")
    if t == 0:
        return 0.0
    return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))


def pocock_spending(t: float, alpha: float) -> float:
    """Lan–DeMets Pocock-type spending ``α*(t) = α · ln(1 + (e − 1) t)`` (0 at ``t = 0``, α at ``t = 1``)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 <= t <= 1:
        raise ValueError(f"information fraction must be in [0, 1], got {t}")
    return float(alpha * math.log1p((math.e - 1) * t))


def spending(rule: str, t: float, alpha: float) -> float:
    """``α*(t)`` of a spending ``rule`` (:data:`RULES` except ``none``)."""
    if rule == "lan-demets-pocock":
        return pocock_spending(t, alpha)
    if rule == "lan-demets-obf":
        return obf_spending(t, alpha)
    if rule == "lan-demets-linear":
        if not (0 < alpha < 1 and 0 <= t <= 1):
            raise ValueError(f"alpha must be in (0, 1) and t in [0, 1], got {alpha}, {t}")
        return float(alpha * t)
    raise ValueError(f"no spending function for rule {rule!r} (one of {', '.join(RULES[:-1])})")


def information_fraction(information: float, reference: float) -> float:
    """``t = I / (I + I₀)``: the open-ended information axis mapped onto ``[0, 1)``."""
    if not (information >= 0 and reference > 0):
        raise ValueError(f"information must be ≥ 0 and the reference > 0, got {information}, {reference}")
    return float(information / (information + reference))


def reference_information(alpha: float, delta: float, first_information: float) -> float:
    """``I₀ = ((z_{1−α/2} + z_{power})/δ)²`` (80 % power against one margin δ); the first look's information
    when ``δ = 0`` (an assumption of zero has no relative margin)."""
    if delta > 0 and math.isfinite(delta):
        return float(((stats.norm.isf(alpha / 2) + stats.norm.ppf(REFERENCE_POWER)) / delta) ** 2)
    if not (first_information > 0 and math.isfinite(first_information)):
        raise ValueError(f"the first look's information must be positive, got {first_information}")
    return float(first_information)


def hypothesis_key(doc: Mapping[str, Any]) -> str:
    """A short stable key of a hypothesis: the first 16 hex digits of the content hash of its assumed values."""
    return content_hash(dict(doc))[:16]


def _simpson(c: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid and Simpson weights on ``[−c, c]`` with spacing at most ``step`` (odd number of points)."""
    n = int(math.ceil(2 * c / step))
    n = min(max(n + (n % 2), 50), _MAX_GRID - 1)
    z = np.linspace(-c, c, n + 1)
    w = np.ones(n + 1)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return z, w * (2 * c / n) / 3


def critical_values(informations: Sequence[float], spent: Sequence[float]) -> tuple[float, ...]:
    """Two-sided boundaries ``c_k`` for looks at strictly increasing ``informations`` with cumulative α
    ``spent[k]`` by look ``k`` (non-decreasing): ``P(no crossing before k, |Z_k| ≥ c_k) = spent[k] − spent[k−1]``.

    A look whose increment is not positive gets ``c_k = ∞`` and is left out of later looks' integrals.
    """
    if len(informations) != len(spent):
        raise ValueError("one cumulative spending value per look is needed")
    if any(b <= a for a, b in zip(informations, informations[1:], strict=False)):
        raise ValueError(f"informations must increase strictly, got {list(informations)}")
    out: list[float] = []
    grid: tuple[np.ndarray, np.ndarray, float] | None = None  # (z, weighted sub-density, information)
    before = 0.0
    for info, cum in zip(informations, spent, strict=True):
        target = float(cum) - before
        if not target > 1e-15:
            out.append(math.inf)
            continue
        if grid is None:
            c = float(stats.norm.isf(target / 2)) if target < 1 else 0.0
            z, w = _simpson(max(c, 1e-9), 0.05)
            grid = (z, w * stats.norm.pdf(z), info)
        else:
            z0, f0, info0 = grid
            r = math.sqrt(info0 / info)
            s = math.sqrt(1 - r * r)
            mean = r * z0

            def crossing(c: float, mean: np.ndarray = mean, s: float = s, f0: np.ndarray = f0) -> float:
                return float(f0 @ (stats.norm.cdf((-c - mean) / s) + stats.norm.sf((c - mean) / s)))

            if crossing(0.0) <= target:
                c = 0.0
            else:
                c = float(optimize.brentq(lambda x, t=target: crossing(x) - t, 0.0, _Z_MAX, xtol=1e-12, rtol=1e-12))
            z, w = _simpson(max(c, 1e-9), min(0.05, s / 6))
            kernel = stats.norm.pdf((z[:, None] - mean[None, :]) / s) / s
            grid = (z, w * (kernel @ f0), info)
        before = float(cum)
        out.append(c)
    return tuple(out)


@lru_cache(maxsize=4096)
def _boundaries(informations: tuple[float, ...], reference: float, alpha: float, rule: str) -> tuple[float, ...]:
    kept: list[int] = []
    for k, info in enumerate(informations):
        if not kept or info > informations[kept[-1]]:
            kept.append(k)
    sub = critical_values([informations[k] for k in kept],
                          [spending(rule, information_fraction(informations[k], reference), alpha) for k in kept])
    out = [math.inf] * len(informations)
    for k, c in zip(kept, sub, strict=True):
        out[k] = c
    return tuple(out)


def boundaries(informations: Sequence[float], reference: float, alpha: float,
               rule: str = DEFAULT_RULE) -> tuple[float, ...]:
    """The boundaries ``c_1 … c_K`` on ``|Z|`` of looks at ``informations`` (in the order taken) under the
    spending ``rule`` (Pocock- or O'Brien–Fleming-type) over ``t = I/(I + I₀)`` at level ``alpha``; ∞ for a look
    that adds no information."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    infos = tuple(float(i) for i in informations)
    if not infos or any(not (i > 0 and math.isfinite(i)) for i in infos):
        raise ValueError(f"informations must be positive and finite, got {list(informations)}")
    return _boundaries(infos, float(reference), float(alpha), rule)


def repeated_p(z: float, informations: Sequence[float], reference: float, rule: str = DEFAULT_RULE) -> float:
    """Two-sided repeated p-value of the last look: ``inf {α′ : |z| ≥ c_K(α′)}`` (1 when the look cannot refute
    at any level below 0.99, e.g. because it adds no information; floored at 1e-15)."""
    z = abs(float(z))
    infos = tuple(float(i) for i in informations)
    if not math.isfinite(z):
        raise ValueError(f"z must be finite, got {z}")

    def gap(log_a: float) -> float:
        c = boundaries(infos, reference, math.exp(log_a), rule)[-1]
        return (c if math.isfinite(c) else 2 * _Z_MAX) - z

    lo, hi = math.log(1e-15), math.log(0.99)
    if not math.isfinite(boundaries(infos, reference, 0.5, rule)[-1]) or gap(hi) > 0:
        return 1.0
    if gap(lo) <= 0:
        return 1e-15
    return float(math.exp(optimize.brentq(gap, lo, hi, xtol=1e-12, rtol=1e-10)))


@dataclass(frozen=True)
class Look:
    """One look at a hypothesis: its number, the data looked at (hash, vintage) and the information."""

    look: int
    data_hash: str
    vintage: str | None
    information: float


@dataclass(frozen=True)
class PriorLook:
    """A stored look, as read back from an earlier verdict's ``evidence["sequential"]`` (:meth:`from_record`)."""

    hypothesis: str
    data_hash: str
    vintage: str | None
    information: float
    reference_information: float

    @classmethod
    def from_record(cls, record: Mapping[str, Any], vintage: str | None = None) -> PriorLook | None:
        """The look of a stored sequential record; None when the record holds no look (not tested, no data hash)."""
        try:
            out = cls(str(record["hypothesis"]), str(record["data_hash"]), vintage,
                      float(record["information"]), float(record["reference_information"]))
        except (KeyError, TypeError, ValueError):
            return None
        ok = all(v > 0 and math.isfinite(v) for v in (out.information, out.reference_information))
        return out if ok and out.data_hash else None


@dataclass(frozen=True)
class LookHistory:
    """What a verdict needs to know about earlier looks: the data of this test (hash and vintage) and the stored
    looks of the same evaluation in the order taken (:class:`PriorLook`; repeats and other hypotheses allowed)."""

    data_hash: str
    vintage: str | None = None
    prior: tuple[PriorLook, ...] = ()

    def __post_init__(self) -> None:
        if not self.data_hash:
            raise ValueError("LookHistory needs the data hash of the data being judged")


@dataclass(frozen=True)
class LookPlan:
    """Where a test stands in its hypothesis's sequence: the looks so far (this one last), the reference
    information and the family level α. ``reused``: the data were looked at before (same look again)."""

    hypothesis: str
    looks: tuple[Look, ...]
    reference_information: float
    alpha: float
    reused: bool
    rule: str = DEFAULT_RULE

    @property
    def look(self) -> int:
        return self.looks[-1].look

    @property
    def informations(self) -> tuple[float, ...]:
        return tuple(x.information for x in self.looks)

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(information_fraction(i, self.reference_information) for i in self.informations)

    @property
    def adds_information(self) -> bool:
        """Whether this look has more information than every earlier one (else it gets no α)."""
        return all(self.informations[-1] > i for i in self.informations[:-1])

    def critical(self, level: float) -> float:
        """The boundary ``c_k(level)`` on ``|z|`` at this look (two-sided, family level ``level``)."""
        return boundaries(self.informations, self.reference_information, level, self.rule)[-1]

    def repeated_p(self, z: float) -> float:
        return repeated_p(z, self.informations, self.reference_information, self.rule)

    def alpha_spent(self, level: float | None = None) -> float:
        """α*(t) spent by this look (the largest fraction reached so far) at ``level`` (default the family α)."""
        return spending(self.rule, max(self.fractions), self.alpha if level is None else level)

    def record(self, *, decision_level: float | None = None) -> dict[str, Any]:
        """The look record stored in a verdict's evidence (``evidence["sequential"]``)."""
        c = self.critical(self.alpha)
        rec: dict[str, Any] = {
            "rule": self.rule, "hypothesis": self.hypothesis, "data_hash": self.looks[-1].data_hash,
            "vintage": self.looks[-1].vintage, "look": self.look, "reused": self.reused,
            "information": self.informations[-1], "reference_information": self.reference_information,
            "information_fraction": self.fractions[-1], "alpha": self.alpha, "alpha_spent": self.alpha_spent(),
            "boundary": c, "nominal_level": _nominal(c),
            "earlier_looks": [{"look": x.look, "vintage": x.vintage, "information": x.information,
                               "information_fraction": t}
                              for x, t in zip(self.looks[:-1], self.fractions[:-1], strict=True)],
        }
        if decision_level is not None:
            cd = self.critical(decision_level)
            rec.update(decision_level=decision_level, decision_boundary=cd, decision_nominal_level=_nominal(cd))
        return rec


def _nominal(c: float) -> float:
    """The fixed-sample two-sided level of a boundary ``c`` (0 when ``c = ∞``)."""
    return 0.0 if math.isinf(c) else float(2 * stats.norm.sf(c))


def plan_look(prior: Iterable[PriorLook], *, hypothesis: str, data_hash: str, vintage: str | None,
              information: float, alpha: float, delta: float, rule: str = DEFAULT_RULE) -> LookPlan:
    """This test's place in its hypothesis's sequence of looks.

    ``prior`` are the stored looks of the evaluation in the order taken (any hypothesis; repeats allowed). Looks
    at the same hypothesis on distinct data count, numbered in order of first appearance; if ``data_hash`` was
    looked at before, this is that look again (its number and stored information: the same boundary, no new α).
    ``delta`` is the equivalence margin in absolute units (for the reference information at a first look).
    """
    if not (information > 0 and math.isfinite(information)):
        raise ValueError(f"information must be positive and finite, got {information}")
    if not data_hash:
        raise ValueError("a look needs the data hash of the data it looks at")
    same = [p for p in prior if p.hypothesis == hypothesis]
    distinct: dict[str, PriorLook] = {}
    for p in same:
        distinct.setdefault(p.data_hash, p)
    earlier = list(distinct.values())
    reference = same[0].reference_information if same else reference_information(alpha, delta, information)
    looks = [Look(k, p.data_hash, p.vintage, p.information) for k, p in enumerate(earlier, start=1)]
    if data_hash in distinct:
        k = list(distinct).index(data_hash)
        return LookPlan(hypothesis, tuple(looks[:k + 1]), reference, alpha, True, rule)
    looks.append(Look(len(looks) + 1, data_hash, vintage, float(information)))
    return LookPlan(hypothesis, tuple(looks), reference, alpha, False, rule)
