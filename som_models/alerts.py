"""Alerts: thresholds an evaluation spec sets on the case for the intervention, checked after every evaluation.

The spec's ``alerts:`` block (all keys optional)::

    alerts:
      npv_kommune_probability_below: 0.5     # P(NPV ≥ 0) for the payer below this → alert
      npv_total_probability_below: 0.5       # any of kommune, region, stat, total
      verdict_turns: refuted                 # refuted | inconclusive | a label; or a list of labels
      severity: warn                         # warn (default) or error

``P(NPV ≥ 0)`` is the projection Monte Carlo's break-even probability of the version the evaluation proposes
(``monte_carlo`` with :data:`DRAWS` draws and :data:`SEED`, the report's own draws). ``verdict_turns`` fires on a
**change**: for a tested assumption whose verdict now has an alerting label (``refuted`` stands for both
``refuted-…`` labels) *and* whose verdict at the previous evaluation (the assumption's previous point in the
history: the previous data vintage, or the previous tested version on the same vintage) had another label. The
first evaluation of an assumption counts as a change from "not evaluated". A verdict that keeps its label from
one evaluation to the next does not alert again (it alerted when it turned). :func:`evaluate_alerts` is the one
implementation: the Dagster check ``case_alerts``, the report and ``som audit`` call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PAYERS = ("kommune", "region", "stat", "total")
SEVERITIES = ("warn", "error")
LABELS = ("consistent", "refuted-overestimated", "refuted-underestimated", "inconclusive")
#: the Monte Carlo behind the break-even probability (the same as the audit report's)
DRAWS = 4000
SEED = 20260601


@dataclass(frozen=True)
class AlertRules:
    probability_below: Mapping[str, float]
    verdict_labels: tuple[str, ...]
    severity: str = "warn"

    @property
    def empty(self) -> bool:
        return not self.probability_below and not self.verdict_labels


@dataclass(frozen=True)
class Alert:
    kind: str  # "npv_probability" | "verdict"
    subject: str  # payer or assumption
    severity: str
    message: str
    value: Any = None
    threshold: Any = None
    new: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_alerts(obj: Any) -> AlertRules | None:
    """The spec's ``alerts:`` (None when absent); ``ValueError`` naming the key for a bad entry."""
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise ValueError("alerts: must be a mapping (e.g. {npv_kommune_probability_below: 0.5, verdict_turns: refuted})")
    probs, labels, severity = {}, [], "warn"
    for key, value in obj.items():
        if key == "severity":
            if value not in SEVERITIES:
                raise ValueError(f"alerts.severity: {value!r} is not one of {', '.join(SEVERITIES)}")
            severity = value
        elif key == "verdict_turns":
            items = [value] if isinstance(value, str) else list(value or [])
            for v in items:
                if v == "refuted":
                    labels += ["refuted-overestimated", "refuted-underestimated"]
                elif v in LABELS:
                    labels.append(v)
                else:
                    raise ValueError(f"alerts.verdict_turns: {v!r} is not refuted or one of {', '.join(LABELS)}")
        elif isinstance(key, str) and key.startswith("npv_") and key.endswith("_probability_below"):
            payer = key[len("npv_"):-len("_probability_below")]
            if payer not in PAYERS:
                raise ValueError(f"alerts.{key}: {payer!r} is not a payer ({', '.join(PAYERS)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"alerts.{key}: must be a probability in (0, 1], got {value!r}")
            probs[payer] = float(value)
        else:
            raise ValueError(f"alerts: unknown key {key!r} (npv_<payer>_probability_below, verdict_turns, severity)")
    return AlertRules(probs, tuple(dict.fromkeys(labels)), severity)


def evaluate_alerts(rules: AlertRules | None, *, verdicts: Iterable[Mapping[str, Any]],
                    prob_break_even: Mapping[str, float | None] | None,
                    previous: Mapping[str, str] | None = None) -> tuple[Alert, ...]:
    """The alerts that fire: ``verdicts`` are verdict records (``assumption``, ``label``), ``prob_break_even`` the
    break-even probability per payer of the proposed version, ``previous`` the label per assumption at the previous
    evaluation (absent: not evaluated before)."""
    if rules is None or rules.empty:
        return ()
    previous = previous or {}
    out = []
    for payer, limit in rules.probability_below.items():
        p = None if prob_break_even is None else prob_break_even.get(payer)
        if p is not None and p < limit:
            out.append(Alert("npv_probability", payer, rules.severity,
                             f"P(NPV ≥ 0) for {payer} is {p:.0%}, below the alert threshold {limit:.0%}", p, limit))
    for v in verdicts:
        label = v.get("label")
        before = previous.get(v["assumption"])
        if label not in rules.verdict_labels or before == label:
            continue  # no alerting label, or the same label as at the previous evaluation: no turn
        what = f"turned {before} → {label}" if before is not None else f"is {label} at its first evaluation"
        out.append(Alert("verdict", v["assumption"], rules.severity, f"verdict on {v['assumption']} {what}",
                         label, list(rules.verdict_labels), new=True))
    return tuple(out)


def break_even(params, *, draws: int = DRAWS, seed: int = SEED) -> dict[str, float | None]:
    """P(NPV ≥ 0) per payer from the projection Monte Carlo (:data:`DRAWS`, :data:`SEED`); None for a payer with
    no stake (no flow falls on it), which never fires a probability alert."""
    from som_models.projection import monte_carlo

    return dict(monte_carlo(params, draws=draws, seed=seed).prob_break_even)
