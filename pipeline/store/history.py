"""How each assumption held over data vintages: one point per (evaluation, vintage, tested version).

The store keeps every run (:meth:`ParameterStore.audit_trail`: one row per run × verdict). Analysts rerun
evaluations monthly on cumulative deliveries, so most runs repeat an earlier one on the same data. For the history
— ``som audit`` and the report's "How each assumption held over time" — :func:`assumption_history` turns the runs
into points:

* one point per (evaluation, assumption, data vintage, tested version), ordered by vintage (then tested version);
* reruns on unchanged data (same data hash, same tested version, same spec) add nothing: the point keeps the
  first such run (its id and time), so the history reads the same after any number of reruns;
* when a vintage was evaluated again on *changed* data or with a changed spec (a corrected delivery, another
  design), the point shows the newest of them and ``replaces`` says what changed;
* a point whose verdict differs from the previous point of the same assumption carries a ``flag`` with why:
  the tested version changed, a data gate (pre-trend test, too few persons or clusters) applies or was lifted,
  the sequential boundary changed with the look (:mod:`som_models.sequential`), the assumed value over the
  observed consequence years moved, and how the estimate moved.

Numbers resting on fewer treated persons than the run's ``min_cell`` are withheld
(:func:`pipeline.disclosure.suppress_verdict`), in the points and in the flags' explanations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.disclosure import DEFAULT_MIN_CELL, is_small, suppress_verdict

#: the verdict fields of a point (besides the run's)
_VERDICT = ("assumption", "outcome", "label", "assumed", "realised", "ci_low", "ci_high", "p_adjusted", "test",
            "sentence")
_GATES = {"pretrend": "the pre-trend gate (treated and comparison diverged before the start)",
          "too-few-persons": "too few treated persons", "too-few-clusters": "too few treated clusters",
          "not-estimable": "not estimable from the data"}


def _vintage_key(row: Mapping[str, Any]) -> tuple:
    v = row.get("data_vintage")
    return (v is None, str(v or ""), row.get("tested_version") or 0, row["run_at"], row["run_id"])


def _num(x: Any) -> str:
    return "?" if x is None else f"{x:.3g}"


def _point(row: Mapping[str, Any]) -> dict[str, Any]:
    """One history point from a trail row (run × verdict), small cells withheld."""
    evidence = row.get("evidence") or {}
    seq = evidence.get("sequential") or {}
    min_cell = int(row.get("min_cell") or DEFAULT_MIN_CELL)
    point = {k: row.get(k) for k in ("evaluation_id", "data_vintage", "tested_version", "run_id", "run_at",
                                      "data_hash", "code_version", "proposed_version", "proposed_status")}
    point.update({k: row.get(k) for k in _VERDICT})
    point.update(n_treated=evidence.get("n_treated"), min_cell=min_cell, gate=evidence.get("gate"),
                 se=evidence.get("se"), look=seq.get("look"), information_fraction=seq.get("information_fraction"),
                 boundary=seq.get("decision_boundary"), nominal_level=seq.get("decision_nominal_level"),
                 pretrend_p=evidence.get("pretrend_p"), suppressed=False, replaces=None, flag=None)
    if row.get("assumption") is not None:
        shown = suppress_verdict({**point, "evidence": {"n_treated": point["n_treated"]}}, min_cell)
        shown.pop("evidence")
        shown["suppressed"] = is_small(point["n_treated"], min_cell)
        if shown["suppressed"]:
            shown.update(n_treated=None, se=None, boundary=None)
        point = shown
    return point


def _replaced(group: list[Mapping[str, Any]], shown: Mapping[str, Any]) -> list[str] | None:
    """What changed between the earlier distinct runs of one (vintage, tested version) and the one shown."""
    notes = []
    for r in group:
        if (r.get("data_hash"), r.get("spec_hash")) == (shown.get("data_hash"), shown.get("spec_hash")):
            continue
        what = []
        if r.get("data_hash") != shown.get("data_hash"):
            what.append(f"data sha256 {str(r.get('data_hash') or '?')[:12]} → {str(shown.get('data_hash') or '?')[:12]}")
        if r.get("spec_hash") != shown.get("spec_hash"):
            what.append("evaluation spec changed")
        notes.append(f"replaces run {r['run_id'][:8]} ({r['run_at']:%Y-%m-%d}): {', '.join(what)}")
    return list(dict.fromkeys(notes)) or None


def _why(prev: Mapping[str, Any], cur: Mapping[str, Any]) -> str:
    """Why the verdict changed from ``prev`` to ``cur`` (both points of one assumption)."""
    reasons = []
    if prev.get("tested_version") != cur.get("tested_version"):
        reasons.append(f"tested version changed from v{prev.get('tested_version')} to v{cur.get('tested_version')}")
    if cur.get("gate"):
        text = _GATES.get(cur["gate"], cur["gate"])
        if cur["gate"] == "pretrend" and cur.get("pretrend_p") is not None:
            text += f", p = {cur['pretrend_p']:.3g}"
        reasons.append(f"{text} now applies: not tested" if cur["gate"] != "not-estimable" else text)
    elif prev.get("gate"):
        reasons.append(f"{_GATES.get(prev['gate'], prev['gate'])} of vintage {prev.get('data_vintage')} no longer "
                       "applies")
    if prev.get("look") is not None and cur.get("look") is not None and prev.get("boundary") != cur.get("boundary"):
        reasons.append(f"boundary changed with look {cur['look']}: |z| ≥ {_num(prev.get('boundary'))} (nominal "
                       f"{_num(prev.get('nominal_level'))}) at look {prev['look']} → |z| ≥ {_num(cur.get('boundary'))} "
                       f"(nominal {_num(cur.get('nominal_level'))})")
    a0, a1 = prev.get("assumed"), cur.get("assumed")
    if a0 is not None and a1 is not None and not math.isclose(a0, a1, rel_tol=1e-9, abs_tol=1e-12):
        over = "" if prev.get("tested_version") != cur.get("tested_version") else " (mean over the observed years)"
        reasons.append(f"assumed value{over} moved from {_num(a0)} to {_num(a1)}")
    if prev.get("suppressed") or cur.get("suppressed"):
        reasons.append("estimate not shown (fewer treated persons than the minimum cell size)")
    elif prev.get("realised") is not None and cur.get("realised") is not None:
        def est(p: Mapping[str, Any]) -> str:
            ci = (f" (CI {_num(p['ci_low'])} to {_num(p['ci_high'])})"
                  if p.get("ci_low") is not None and p.get("ci_high") is not None else "")
            return f"{_num(p['realised'])}{ci}"
        reasons.append(f"estimate moved from {est(prev)} to {est(cur)}")
    return "; ".join(reasons) or "no stated reason (same estimate, boundary and gate)"


def assumption_history(trail: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points of :meth:`ParameterStore.audit_trail` rows (see the module docstring), grouped by evaluation
    and assumption (in order of first appearance), each group ordered by vintage. Rows need ``spec_hash``,
    ``min_cell`` and ``evidence`` besides the trail's columns. Runs without verdicts (``assumption`` None) are
    collapsed the same way."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in trail:
        key = (row.get("evaluation_id"), row.get("assumption"), row.get("data_vintage"), row.get("tested_version"))
        groups.setdefault(key, []).append(row)
    by_assumption: dict[tuple, list[dict[str, Any]]] = {}
    for key, rows in groups.items():
        rows = sorted(rows, key=lambda r: (r["run_at"], r["run_id"]))
        latest = rows[-1]
        first_of_latest = next(r for r in rows if (r.get("data_hash"), r.get("spec_hash"))
                               == (latest.get("data_hash"), latest.get("spec_hash")))
        point = _point(first_of_latest)
        point["replaces"] = _replaced(rows, first_of_latest)
        by_assumption.setdefault(key[:2], []).append(point)
    out: list[dict[str, Any]] = []
    for points in by_assumption.values():
        points.sort(key=_vintage_key)
        for prev, cur in zip(points, points[1:], strict=False):
            if cur.get("assumption") is not None and prev.get("label") != cur.get("label"):
                cur["flag"] = {"from": prev.get("label"), "to": cur.get("label"), "why": _why(prev, cur)}
        out.extend(points)
    return out
