"""Plausibility of a proposed parameter document against its parent — checked before anything is written.

A proposal (:func:`som_models.calibration.propose`) is a pure value; these checks look at that value and
its list of changes, and a proposal with any problem is refused (the Dagster check ``proposal_plausible``
blocks the write asset; :func:`refuse_implausible` raises for any other caller). With parent values
``p_j`` and proposed values ``v_j`` of a consequence item (consequence years ``j``), ``O`` the years the
evaluation observed (the ``years`` of the item's change record) and ``m = max O``:

* **success rate** — the proposed value lies in ``[0, 1]``.
* **magnitude** — ``|v_j| ≤ max_factor · |p_j|`` wherever ``p_j ≠ 0`` (default :data:`MAX_FACTOR` = 10).
* **sign flip** — ``v_j · p_j < 0`` is refused, except in an observed year whose own realised estimate has
  the new sign significantly (``|c_j| > z_{1−α/2} · σ_j``): there the data say so. A flip in a year without
  data (extrapolated or kept) is always refused.
* **jump at the data boundary** — the update factor of the first year after the observed window,
  ``F_b = v_{m+1} / p_{m+1}``, must follow the factor over the window, ``F_O = Σ_O v_j / Σ_O p_j``: with
  ``F_b · F_O > 0``, the gap on the log scale must satisfy

      |ln F_b − ln F_O| ≤ max(ln max_jump, (1 − min_follow) · |ln F_O|)

  (defaults :data:`MAX_JUMP` = 1.5, :data:`MIN_FOLLOW` = 1/3): the year after the data may differ from the
  window by a factor up to ``max_jump`` in any case, and by more only while it still moves at least a third
  of the way (in logs) the window moved — an extrapolated year rests on weaker evidence than the observed
  ones (:mod:`som_models.extrapolation`), so under a precision-weighted update it follows them only part of
  the way. A proposal that moves the observed years by a factor 0.4 and leaves the next year at its old value
  (``F_b = 1``: it follows none of the way) is refused — the unobserved tail kept the refuted assumption.
  The window's factor (not year ``m``'s alone) keeps one noisy boundary year from deciding.
* **unverified tail** — every year of an updated item without data is listed in its ``unverified`` mark.
* **course years** (``consequences.<item>.course``, updated from the realised ATTs at ``e = 0 … K − 1``; change
  record ``consequences.<item>.course`` with ``course_years``) — the magnitude and sign-flip rules above, per
  course year, against the parent's course value; a course year is always observed when it is updated, so a
  flip is accepted exactly when its realised estimate shows the new sign significantly. There is no boundary or
  tail rule: course years are not extrapolated.

``MAX_JUMP``, ``MIN_FOLLOW`` and ``MAX_FACTOR`` are conventions (a human looks at anything beyond them), not estimates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from som_models.extrapolation import year_span

MAX_JUMP = 1.5
MIN_FOLLOW = 1 / 3
MAX_FACTOR = 10.0
#: What to do about a refused proposal (part of every refusal message).
ADVICE = ("review the evidence, or leave the item out of the re-estimation (reestimate_consequences in the "
          "evaluation spec)")


@dataclass(frozen=True)
class Problem:
    """One reason a proposal is implausible: which check, which parameter (and consequence year), why."""

    check: str
    parameter: str
    consequence_year: int | None
    message: str


class ImplausibleProposal(ValueError):
    """A proposal refused by the plausibility checks; nothing was written. ``problems`` lists why."""

    def __init__(self, problems: Sequence[Problem], *, intervention: str = ""):
        self.problems = tuple(problems)
        head = f"proposal for {intervention} refused" if intervention else "proposal refused"
        super().__init__(f"{head} (nothing written): {describe(self.problems)} — {ADVICE}")


def describe(problems: Sequence[Problem], limit: int = 10) -> str:
    """The problems in one line (the first ``limit``)."""
    text = "; ".join(p.message for p in problems[:limit])
    return text + (f"; … and {len(problems) - limit} more" if len(problems) > limit else "")


def _units(entry: Any) -> list[float]:
    if isinstance(entry, Mapping):
        return list(entry.get("units") or [])
    return list(entry or [])


def _records(changes: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """``item → change record`` for the consequence items a proposal updated (records with ``years``)."""
    out = {}
    for ch in changes:
        param = str(ch.get("parameter", ""))
        if param.startswith("consequences.") and ch.get("years"):
            out[param.split(".", 1)[1]] = ch
    return out


def _course_records(changes: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """``item → change record`` for the course-year profiles a proposal updated (records with ``course_years``)."""
    out = {}
    for ch in changes:
        param = str(ch.get("parameter", ""))
        if param.startswith("consequences.") and param.endswith(".course") and ch.get("course_years"):
            out[param[len("consequences."):-len(".course")]] = ch
    return out


def _course_units(entry: Any) -> list[float]:
    course = entry.get("course") if isinstance(entry, Mapping) else None
    return list(course.get("units") or []) if isinstance(course, Mapping) else []


def _course_problems(parent_cons: Mapping[str, Any], proposed_cons: Mapping[str, Any],
                     changes: Iterable[Mapping[str, Any]], z: float, max_factor: float) -> list[Problem]:
    """Magnitude and sign flips of the course-year values (module docstring, *course years*)."""
    problems = []
    records = _course_records(changes)
    for item, entry in proposed_cons.items():
        new, old = _course_units(entry), _course_units(parent_cons.get(item))
        by_year = {int(y["course_year"]): y for y in (records.get(item) or {}).get("course_years", ())}
        problems += _year_problems(f"consequences.{item}.course", f"{item} course year", old, new, by_year, z,
                                   max_factor, "a course year without data")
    return problems


def _year_problems(parameter: str, label: str, old: Sequence[float], new: Sequence[float],
                   by_year: Mapping[int, Mapping[str, Any]], z: float, max_factor: float, no_data: str) -> list[Problem]:
    """Sign flips not shown significantly by the year's own estimate, and changes beyond ``max_factor``× the parent
    value, year by year (years numbered from 1)."""
    problems = []
    for k, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if not a:
            continue
        if b * a < 0 and not _significant(by_year.get(k), b, z):
            why = "its realised estimate does not show the new sign significantly" if k in by_year else no_data
            problems.append(Problem("sign_flip", parameter, k, f"{label} {k}: sign flips {a:g} → {b:g} ({why})"))
        if abs(b) > max_factor * abs(a):
            problems.append(Problem("magnitude", parameter, k,
                                    f"{label} {k}: {a:g} → {b:g} is more than {max_factor:g}× the parent value"))
    return problems


def observed_years(changes: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, ...]]:
    """``item → the consequence years the evaluation observed`` (from the change records of a proposal)."""
    return {item: tuple(sorted(int(y["consequence_year"]) for y in ch["years"]))
            for item, ch in _records(changes).items()}


def _significant(year: Mapping[str, Any] | None, sign: float, z: float) -> bool:
    if year is None:
        return False
    c, s = year.get("realised"), year.get("realised_se")
    if c is None or s is None or not (math.isfinite(c) and math.isfinite(s)):
        return False
    return c * sign > 0 and abs(c) > z * s


def plausibility_problems(parent: Mapping[str, Any], proposed: Mapping[str, Any],
                          changes: Iterable[Mapping[str, Any]] = (), *, max_jump: float = MAX_JUMP,
                          min_follow: float = MIN_FOLLOW, max_factor: float = MAX_FACTOR,
                          alpha: float = 0.05) -> tuple[Problem, ...]:
    """Every problem of ``proposed`` against ``parent`` (documents as mappings; module docstring)."""
    problems: list[Problem] = []
    changes = list(changes)
    rate = (proposed.get("success_rate") or {}).get("value")
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        problems.append(Problem("success_rate", "success_rate", None, f"success rate {rate!r} outside [0, 1]"))
    z = NormalDist().inv_cdf(1 - alpha / 2)
    records = _records(changes)
    parent_cons = parent.get("consequences") or {}
    problems += _course_problems(parent_cons, proposed.get("consequences") or {}, list(changes), z, max_factor)
    for item, entry in (proposed.get("consequences") or {}).items():
        new, old = _units(entry), _units(parent_cons.get(item))
        record = records.get(item) or {}
        by_year = {int(y["consequence_year"]): y for y in record.get("years", ())}
        problems += _year_problems(f"consequences.{item}", f"{item} year", old, new, by_year, z, max_factor,
                                   "a year without data")
        if not by_year:
            continue
        obs = sorted(by_year)
        unobserved = [j for j in range(1, len(new) + 1) if j not in by_year]
        marked = set(entry.get("unverified") or ()) if isinstance(entry, Mapping) else set()
        unmarked = [j for j in unobserved if j not in marked]
        if unmarked:
            problems.append(Problem("unverified_tail", f"consequences.{item}", unmarked[0],
                                    f"{item}: year(s) {', '.join(map(str, unmarked))} have no data but are not marked "
                                    "unverified"))
        m = obs[-1]
        if m >= len(new) or m >= len(old) or (m + 1) in by_year:
            continue
        window = sum(old[j - 1] for j in obs)
        if window == 0 or old[m] == 0:
            continue
        f_obs = sum(new[j - 1] for j in obs) / window
        f_b = new[m] / old[m]
        if f_obs * f_b <= 0:
            jump = True
        else:
            allowed = max(math.log(max_jump), (1 - min_follow) * abs(math.log(f_obs)))
            jump = abs(math.log(f_b) - math.log(f_obs)) > allowed + 1e-12
        if jump:
            problems.append(Problem(
                "boundary_jump", f"consequences.{item}", m + 1,
                f"{item}: jump at the data boundary — year {m + 1} (no data) is updated by a factor {f_b:.3g} "
                f"({old[m]:g} → {new[m]:g}) while the observed years {year_span(obs)} moved by a factor {f_obs:.3g} "
                f"(it must stay within ×{max_jump:g} of that or follow at least {min_follow:.2g} of the way, "
                "log scale)"))
    return tuple(problems)


def refuse_implausible(parent: Mapping[str, Any], proposed: Mapping[str, Any],
                       changes: Iterable[Mapping[str, Any]] = (), *, intervention: str = "", **limits: Any) -> None:
    """Raise :class:`ImplausibleProposal` if :func:`plausibility_problems` finds anything."""
    problems = plausibility_problems(parent, proposed, changes, **limits)
    if problems:
        raise ImplausibleProposal(problems, intervention=intervention)
