"""Turning realised estimates into a proposed new parameter document.

Policies (named in the evaluation spec):

* ``precision_weighted`` — normal–normal update of a prior ``(a, σ_a)`` with a realised estimate ``(r, σ_r)``::

      posterior = (a/σ_a² + r/σ_r²) / (1/σ_a² + 1/σ_r²),   σ_post = (1/σ_a² + 1/σ_r²)^(−1/2)

  A prior without an SE gets ``σ_a = prior_cv · |a|`` (the spec's ``prior_cv``).
* ``replace`` — the realised estimate replaces the prior where observed.

Success rate: realised = ATT on the success indicator in consequence year 1. Consequence profile of item
``i`` in consequence year ``j`` (event time ``e = course_years − 1 + j``): realised units per successful
person ``c_j = ATT_i(e) / r_s`` with the delta-method SE ``|c_j| · √((σ_ATT/ATT)² + (σ_s/r_s)²)``
(ignoring the covariance of the two estimates). This mapping is :mod:`som_models.assumptions`, shared with
the verdicts. Consequences are only re-estimated when the realised
success rate is significantly positive (``r_s / σ_s > z_{1−α/2}``).

**Years without data** (beyond the observed window, or with fewer than ``min_persons`` treated persons) of
an updated item do not keep the prior: they are extrapolated from the observed years — the assumed value
scaled by the realised/assumed ratio over the observed window, with an SE that widens with the distance
from the data (:mod:`som_models.extrapolation`, formulas there) — and the extrapolation enters the same
update rule as evidence. Those years are listed in ``consequences.<item>.unverified`` with the rule and
its figures in ``consequences.<item>.extrapolation``, and in the change record (``extrapolated``). An item
that is not updated keeps its values and marks.

**Two kinds of profile, never mixed** (``consequences.<item>.kind``, :mod:`som_models.parameters.schema`).
The ratio above is a *causal* quantity (effect per net success) and updates only ``causal`` profiles. A
``descriptive`` profile (SØM's success-vs-non-success contrast) is updated from the descriptive contrast
table ``descriptive`` (:func:`som_models.descriptive.estimate_descriptive`; ``event_time`` = consequence
year, years with fewer than ``min_persons`` persons in either group skipped), with the same update rule and
regardless of the realised success rate (the contrast is not divided by it). An updated item keeps and
states its kind; storing an estimate of one kind into a profile of the other is refused (a change of kind
is :func:`som_models.parameters.schema.convert_profile`, an explicit recorded step).

Which consequence profiles are re-estimated is the evaluation's choice (``items``: None = all, ``()`` =
none; the spec's ``reestimate_consequences``). Consequences estimated elsewhere can be passed as
``consequence_estimates`` (columns ``item, consequence_year, estimate, se``, optional ``kind``: units per
successful person, ``causal`` unless the column says otherwise); for those items they replace the
realised value above and enter the same update rule — only into a profile of the same kind.

**Course-year effects** (``consequences.<item>.course``, units per participant in course years ``1 … K``): a
*causal* course profile is updated from the realised event-time ATT at ``e = k − 1`` directly — it is per
participant, so it is not divided by the success rate and does not wait for a significant one — with the same
policy and the same root prior as the consequence years (:func:`_course_updates`). Course years are all observed
once a cohort has been seen for ``K`` years; a course year without data (or with fewer than ``min_persons``
treated persons) keeps its value and is not extrapolated (there is nothing to extrapolate from within the course).
A *descriptive* course profile is kept (no register counterpart is estimated), and so is the course profile of an
item the evaluation does not re-estimate. The change record is ``consequences.<item>.course`` with ``course_years``.

**Cumulative vintages (the root prior).** Register vintages are cumulative: a new delivery repeats the earlier
person-years. An update of a version that was itself fitted to overlapping person-years therefore takes its
prior from the *root prior* ``prior`` — the nearest ancestor not informed by overlapping evidence, chosen by
:func:`som_models.evidence.choose_root` — and combines it with the latest cumulative evidence: the posterior is
that of one analysis of the latest vintage with the root prior, and no person-year is counted twice. Evidence
of other evaluations that entered the lineage after the root is carried into ``prior`` first
(:func:`som_models.evidence.carry_evidence`, which re-derives it with this function). The
document is still built on ``params`` (the version under test, which the verdicts test): values the update
does not touch keep their current value; a value the root prior lacks (a profile added or converted later) is
kept, not updated. Without ``prior`` the update's prior is ``params`` itself (the first evidence, or evidence
that overlaps nothing before it). The store refuses an update whose evidence overlaps its prior's
(:meth:`pipeline.store.ParameterStore.propose_version`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from som_models.assumptions import EVENT, AssumptionMap, units_per_success
from som_models.descriptive import realised_contrast
from som_models.estimators.results import z_value
from som_models.extrapolation import extrapolate, year_span
from som_models.parameters.schema import CAUSAL, CONSEQUENCE_KINDS, DESCRIPTIVE, ParameterSet

POLICIES = ("precision_weighted", "replace")


@dataclass(frozen=True)
class Proposal:
    """A proposed parameter document and what changed, with the reason for each change."""

    document: Mapping[str, Any]
    changes: tuple[dict, ...]
    reason: str


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def combine(prior: float, prior_se: float | None, realised: float, realised_se: float, policy: str,
            prior_cv: float) -> tuple[float, float]:
    """Updated value and SE under ``policy`` (see module docstring)."""
    if policy == "replace":
        return realised, realised_se
    if policy != "precision_weighted":
        raise ValueError(f"unknown update policy {policy!r}; use one of {POLICIES}")
    sa = prior_se if prior_se else prior_cv * abs(prior)
    if not sa or sa <= 0:
        return realised, realised_se
    if realised_se <= 0:
        return realised, 0.0
    wa, wr = 1 / sa**2, 1 / realised_se**2
    return (wa * prior + wr * realised) / (wa + wr), math.sqrt(1 / (wa + wr))


def _external(consequence_estimates: pl.DataFrame | None) -> dict[tuple[str, int], dict]:
    """``(item, consequence_year) → row`` of external estimates; a row's kind is its ``kind`` column (default causal)."""
    if consequence_estimates is None:
        return {}
    need = {"item", "consequence_year", "estimate", "se"}
    missing = sorted(need - set(consequence_estimates.columns))
    if missing:
        raise ValueError(f"consequence_estimates: missing column(s) {', '.join(missing)}")
    out = {}
    for r in consequence_estimates.to_dicts():
        kind = r.get("kind") or CAUSAL
        if kind not in CONSEQUENCE_KINDS:
            raise ValueError(f"consequence_estimates: kind {kind!r} of item {r['item']!r} is not one of "
                             f"{', '.join(CONSEQUENCE_KINDS)}")
        out[(str(r["item"]), int(r["consequence_year"]))] = {**r, "kind": kind}
    return out


def _check_kinds(params: ParameterSet, external: Mapping[tuple[str, int], dict], descriptive: pl.DataFrame | None,
                 wanted: list) -> None:
    """Refuse to store an estimate of one kind into a profile of the other (module docstring)."""
    kinds = params.kinds()
    for (item, j), r in external.items():
        if item in kinds and r["kind"] != kinds[item]:
            raise ValueError(f"consequences.{item}: refusing to store a {r['kind']} estimate (consequence_estimates, "
                             f"consequence year {j}) into a {kinds[item]} profile; convert the profile explicitly "
                             "(convert_profile) or supply an estimate of its kind")
    if descriptive is not None and "outcome" in descriptive.columns:
        for cons in wanted:
            if cons.kind != DESCRIPTIVE and descriptive.filter(pl.col("outcome") == cons.item).height:
                raise ValueError(f"consequences.{cons.item}: refusing to store the descriptive success-vs-non-success "
                                 f"contrast into a {cons.kind} profile")


def _realised_cohorts(params: ParameterSet, doc: dict[str, Any], realised: Mapping[int, int] | None,
                      evidence_label: str) -> dict | None:
    """Put the realised participants of the observed cohort years into ``doc["cohorts"]`` (years inside the horizon;
    an observed year without participants drops its cohort) and keep the assumed cohorts of later years; the
    change record, or None when nothing changes."""
    if not realised:
        return None
    last, end = max(realised), params.start_year + params.horizon_years
    inside = {y: int(n) for y, n in realised.items() if params.start_year <= y < end}
    cohorts = [{"year": y, "participants": n} for y, n in sorted(inside.items()) if n > 0]
    cohorts += [{"year": y, "participants": n} for y, n in params.cohorts if y > last]
    before = [{"year": y, "participants": n} for y, n in params.cohorts]
    if cohorts == before or not cohorts:
        return None
    doc["cohorts"] = cohorts
    if isinstance(doc.get("sources"), dict):
        doc["sources"]["cohorts"] = {"status": "estimated", "note": f"realised participants of cohort years "
                                     f"{min(realised)}–{last} from {evidence_label}; later cohorts as assumed"}
    outside = sorted(y for y in realised if y not in inside and realised[y] > 0)
    return {"parameter": "cohorts", "from": before, "to": cohorts, "method": "realised participants per cohort year "
            f"(intervention register, cohort years {min(realised)}–{last}); later cohorts as assumed",
            **({"outside_horizon": outside} if outside else {})}


def _entry(doc: dict[str, Any], item: str) -> dict[str, Any]:
    """The document's mapping of consequence ``item`` (a list-form profile becomes ``{units: [...]}``)."""
    old = doc["consequences"][item]
    entry = dict(old) if isinstance(old, Mapping) else {"units": list(old)}
    doc["consequences"][item] = entry
    return entry


def _course_updates(params: ParameterSet, root: ParameterSet, doc: dict[str, Any],
                    events: Mapping[tuple[str, int], dict], wanted: list, *, policy: str, prior_cv: float,
                    min_persons: int, evidence_label: str, root_note: str, with_prior: bool) -> tuple[list[dict], int]:
    """Update the causal course-year profiles of the ``wanted`` items in ``doc`` from the realised ATTs at
    ``e = 0 … K − 1`` (module docstring); the change records and how many profiles changed."""
    amap = AssumptionMap.from_params(params)
    root_course = root.course_profiles()
    changes: list[dict] = []
    updated = 0
    for cons in wanted:
        course = cons.course
        if course is None:
            continue
        parameter = f"consequences.{cons.item}.course"
        if course.kind == DESCRIPTIVE:
            changes.append({"parameter": parameter, "kept": "a descriptive course-year profile has no register "
                                                            "counterpart (the causal ATT path is never stored into it)"})
            continue
        base = root_course.get(cons.item)
        if base is None or base.kind != course.kind:
            changes.append({"parameter": parameter, "kept": "not in the root prior (added later): not updated twice"})
            continue
        units = list(course.units)
        ses: list[float | None] = list(course.se) if course.se else [None] * len(units)
        base_ses: list[float | None] = list(base.se) if base.se else [None] * len(base.units)
        touched = []
        for k in range(1, params.course_years + 1):
            key = amap.course_estimand(cons.item, k)
            row = events.get((key.outcome, key.event_time))
            if (row is None or row["se"] is None or row["estimate"] is None or not row["se"] > 0
                    or int(row["n_treated"] or 0) < min_persons):
                continue
            c, se_c = float(row["estimate"]), float(row["se"])
            if not (math.isfinite(c) and math.isfinite(se_c)):
                continue
            new, new_se = combine(base.units[k - 1], base_ses[k - 1], c, se_c, policy, prior_cv)
            touched.append({"course_year": k, "event_time": key.event_time, "from": units[k - 1], "to": _round(new),
                            **({"prior": base.units[k - 1], "prior_se": base_ses[k - 1]} if with_prior else {}),
                            "realised": _round(c), "realised_se": _round(se_c),
                            "method": "event-time ATT per participant"})
            units[k - 1], ses[k - 1] = _round(new), _round(new_se)
        if not touched:
            changes.append({"parameter": parameter, "kept": "no realised course year"})
            continue
        seen = [t["course_year"] for t in touched]
        missing = [k for k in range(1, params.course_years + 1) if k not in seen]
        _entry(doc, cons.item)["course"] = {
            "kind": course.kind, "units": units,
            "se": [x if x is not None else _round(prior_cv * abs(u)) for x, u in zip(ses, course.units, strict=True)],
            "source": f"{policy} update{root_note} of course years {year_span(seen)} from {evidence_label}"
                      + (f"; course years {year_span(missing)} without data kept" if missing else "")
                      + (f" ({course.source})" if course.source else ""),
        }
        changes.append({"parameter": parameter, "kind": course.kind, "course_years": touched})
        updated += 1
    return changes, updated


def propose(params: ParameterSet, estimates: pl.DataFrame, *, policy: str = "precision_weighted",
            prior_cv: float = 0.5, alpha: float = 0.05, evidence_label: str = "evaluation",
            items: tuple[str, ...] | None = None, min_persons: int = 1,
            consequence_estimates: pl.DataFrame | None = None,
            descriptive: pl.DataFrame | None = None, prior: ParameterSet | None = None,
            prior_label: str = "", realised_cohorts: Mapping[int, int] | None = None,
            update_success: bool = True) -> Proposal:
    """A new parameter document updated with the realised estimates (the input is never modified).

    Causal profiles are updated from the causal ATT path (or causal ``consequence_estimates``), descriptive
    ones from the descriptive contrast table ``descriptive`` (or descriptive ``consequence_estimates``); an
    estimate of the other kind is refused, and every updated item keeps (and states) its kind.
    ``changes`` lists every changed value with its prior, realised and new value; items that were not
    re-estimated appear with ``"kept"`` and the reason. ``prior`` is the root prior each update combines with
    (default ``params``; module docstring), named ``prior_label`` in the sources and changes.
    ``realised_cohorts`` (participants per cohort year observed in the intervention register,
    :func:`som_models.volume_verdicts.observed_cohorts`) replaces the assumed cohorts of the years observed
    (:func:`_realised_cohorts`); later cohorts stay as assumed. ``update_success`` False (an evaluation whose
    ``assumptions:`` leave ``success_rate`` out): the success rate is kept, with the reason — the realised success
    estimate still decides, as always, whether the causal consequence profiles are updated.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown update policy {policy!r}; use one of {POLICIES}")
    known = {c.item for c in params.consequences}
    if items is not None and set(items) - known:
        raise ValueError(f"re-estimation asked for unknown consequence item(s) {sorted(set(items) - known)}; "
                         f"the parameter set has {sorted(known)}")
    external = _external(consequence_estimates)
    wanted = [c for c in params.consequences if items is None or c.item in items]
    _check_kinds(params, external, descriptive, wanted)
    contrasts = {c.item: realised_contrast(descriptive, c.item, min_persons=min_persons)
                 for c in wanted if c.kind == DESCRIPTIVE}
    doc = params.to_dict()
    changes: list[dict] = []
    cohort_change = _realised_cohorts(params, doc, realised_cohorts, evidence_label)
    if cohort_change:
        changes.append(cohort_change)
    amap = AssumptionMap.from_params(params)
    events = {
        (r["outcome"], int(r["event_time"])): r
        for r in estimates.filter(pl.col("estimand") == EVENT).to_dicts()
        if r["event_time"] is not None
    }
    root = params if prior is None else prior
    root_note = f" ({prior_label})" if prior_label else ""
    course_changes, course_updated = _course_updates(
        params, root, doc, events, wanted, policy=policy, prior_cv=prior_cv, min_persons=min_persons,
        evidence_label=evidence_label, root_note=root_note, with_prior=prior is not None)
    changes.extend(course_changes)
    course_note = (f"; course-year effects of {course_updated} item(s) updated from {evidence_label}"
                   if course_updated else "")
    key = amap.success_estimand
    found = events.get((key.outcome, key.event_time))
    sm: dict[str, Any] = found or {}
    sm_ok = not (found is None or not sm["se"] or sm["se"] <= 0 or sm["estimate"] is None or math.isnan(sm["estimate"]))
    # a descriptive profile is updated regardless of the success rate, from the contrast table or from descriptive
    # consequence_estimates (how som_models.evidence.carry_evidence re-derives a carried version's contrast)
    descriptive_external = any(r["kind"] == DESCRIPTIVE for r in external.values())
    if not sm_ok and not any(contrasts.values()) and not descriptive_external:
        return Proposal(doc, tuple(changes), "no realised success rate: " + (
            "realised cohorts recorded, effect parameters unchanged" if cohort_change else "parameters unchanged")
            + course_note)
    z = z_value(alpha)
    root_cons = {c.item: c for c in root.consequences}
    if sm_ok and not update_success:
        changes.append({"parameter": "success_rate", "kept": "the evaluation does not test it (assumptions:)"})
    elif sm_ok:
        sr = root.success_rate
        value, se = combine(sr.value, sr.se, sm["estimate"], sm["se"], policy, prior_cv)
        value = min(max(value, 0.0), 1.0)
        doc["success_rate"] = {
            "value": _round(value), "se": _round(se),
            "source": f"{policy} update of {sr.value:g} (se {sr.se if sr.se is not None else 'n/a'}){root_note} with "
                      f"the realised {sm['estimate']:.4g} (se {sm['se']:.3g}) from {evidence_label}",
        }
        changes.append({"parameter": "success_rate", "from": params.success_rate.value, "to": _round(value),
                        **({"prior": sr.value, "prior_se": sr.se} if prior is not None else {}),
                        "realised": sm["estimate"], "realised_se": sm["se"]})
    else:
        changes.append({"parameter": "success_rate", "kept": "no realised success rate"})
    significant = sm_ok and sm["estimate"] / sm["se"] > z

    for cons in params.consequences:
        if cons not in wanted:
            changes.append({"parameter": f"consequences.{cons.item}", "kept": "the evaluation does not ask to re-estimate it"})
    if (sm_ok and not significant and not external
            and not any(c.kind == DESCRIPTIVE for c in wanted)):
        for cons in wanted:
            changes.append({"parameter": f"consequences.{cons.item}", "kept": "realised success rate not significantly positive"})
        return Proposal(doc, tuple(changes),
                        ("success rate updated" if update_success else "success rate kept (not tested)")
                        + "; consequences kept (realised success rate not significantly positive)" + course_note)
    updated = 0
    for cons in wanted:
        has_external = any(k[0] == cons.item for k in external)
        if cons.kind != DESCRIPTIVE and not has_external and not significant:
            why = "realised success rate not significantly positive" if sm_ok else "no realised success rate"
            changes.append({"parameter": f"consequences.{cons.item}", "kept": why})
            continue
        units = list(cons.units)
        ses: list[float | None] = list(cons.se) if cons.se else [None] * len(cons.units)
        base = root_cons.get(cons.item)
        if base is not None and base.kind != cons.kind:
            base = None
        base_units = list(base.units) if base is not None else []
        base_ses: list[float | None] = (list(base.se) if base is not None and base.se else [None] * len(base_units))
        touched = []
        observed: dict[int, tuple[float, float]] = {}
        for j in range(1, len(units) + 1):
            if j > len(base_units):
                continue  # not in the root prior (added or converted later): kept, never updated twice
            ext = external.get((cons.item, j))
            if ext is not None:
                c, se_c, how = float(ext["estimate"]), float(ext["se"]), "external estimate"
            elif has_external:
                continue  # this item is estimated externally; years it lacks are extrapolated below
            elif cons.kind == DESCRIPTIVE:
                row = contrasts[cons.item].get(j)
                if row is None:
                    continue
                c, se_c, how = row["estimate"], row["se"], "descriptive contrast (success vs non-success, regression-adjusted)"
            else:
                key = amap.consequence_estimand(cons.item, j)
                row = events.get((key.outcome, key.event_time))
                if row is None or row["se"] is None or row["estimate"] is None or int(row["n_treated"] or 0) < min_persons:
                    continue
                c, se_c = units_per_success(row["estimate"], row["se"], sm["estimate"], sm["se"])
                how = "ATT / realised success rate"
            if not (math.isfinite(c) and math.isfinite(se_c)):
                continue
            new, new_se = combine(base_units[j - 1], base_ses[j - 1], c, se_c, policy, prior_cv)
            observed[j] = (c, se_c)
            touched.append({"consequence_year": j, "from": units[j - 1], "to": _round(new),
                            **({"prior": base_units[j - 1], "prior_se": base_ses[j - 1]} if prior is not None else {}),
                            "realised": _round(c), "realised_se": _round(se_c), "method": how})
            units[j - 1], ses[j - 1] = _round(new), _round(new_se)
        if not touched:
            changes.append({"parameter": f"consequences.{cons.item}", "kept": "no realised consequence year"})
            continue
        # The years without data: extrapolated from the observed ones and marked unverified (som_models.extrapolation).
        # the prior of the years without data is the update's prior too (the root prior when there is one)
        prior_units = base_units if len(base_units) == len(units) else list(cons.units)
        prior_ses = base_ses if len(base_units) == len(units) else list(cons.se or [None] * len(units))
        tail = extrapolate(prior_units, observed)
        extrapolated = []
        for y in tail.years:
            k = y.consequence_year - 1
            new, new_se = combine(prior_units[k], prior_ses[k], y.value, y.se, policy, prior_cv)
            extrapolated.append({"consequence_year": y.consequence_year, "from": y.assumed, "to": _round(new),
                                 "extrapolated": _round(y.value), "extrapolated_se": _round(y.se),
                                 "distance": y.distance})
            units[k], ses[k] = _round(new), _round(new_se)
        prior_se = [s if s is not None else _round(prior_cv * abs(u)) for s, u in zip(ses, cons.units, strict=False)]
        entry: dict[str, Any] = {
            "kind": cons.kind,
            "units": units,
            "se": [s if s is not None else prior_se[k] for k, s in enumerate(ses)],
            "source": f"{policy} update{root_note} of consequence years {year_span(tail.observed)} from {evidence_label}"
                      + (f"; years {year_span(tail.unobserved)} without data extrapolated (unverified): {tail.rule}"
                         if tail.unobserved else "") + f" ({cons.source})",
        }
        change: dict[str, Any] = {"parameter": f"consequences.{cons.item}", "kind": cons.kind, "years": touched}
        if tail.unobserved:
            entry["unverified"] = list(tail.unobserved)
            entry["extrapolation"] = tail.record()
            change.update(unverified=list(tail.unobserved), extrapolated=extrapolated, extrapolation=tail.record())
        course_entry = _entry(doc, cons.item).get("course")
        if course_entry is not None:
            entry["course"] = course_entry  # the course-year profile (updated above or kept)
        doc["consequences"][cons.item] = entry
        changes.append(change)
        updated += 1
    what = "the success rate and " if sm_ok and update_success else ""
    return Proposal(doc, tuple(changes), f"{policy} update of {what}{updated} consequence profile(s) from {evidence_label}"
                    + course_note)
