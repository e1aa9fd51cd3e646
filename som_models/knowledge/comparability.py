"""When studies may be pooled, and when a pooled contrast may be offered as a success rate (``som kb pool``).

**Comparable outcomes.** Two studies of one outcome name can still measure different things. Each study states
its ``measure`` — ``point`` (status at the follow-up, e.g. "in stable housing at 12 months"), ``share_of_time``
(share of the follow-up period, e.g. "share of days stably housed over 24 months"), ``ever`` (at any time during
the follow-up) or ``score`` (a scale) — and its ``follow_up_months``. The rule applied before pooling:

* different known measures → **refused** (a 12-month point share and a 24-month share of time are different
  quantities: their difference is not one effect measured with noise);
* known horizons whose ratio longest / shortest exceeds :data:`HORIZON_RATIO` (1.5; e.g. 12 vs 24 months) →
  **refused**; a smaller spread (18 vs 24 months) → pooled with a **warning**;
* an unknown measure or horizon → pooled with a warning naming the studies.

``allow_incomparable`` turns every refusal into a warning (recorded in the result and its JSON); ``measure``
selects the studies of one measure instead.

**Transferability of a success rate** (:func:`transfer_rule`). A calculation document's success rate is a Danish
net success rate: the share who succeed *because of* the intervention, net of what Danish practice achieves
anyway (Socialstyrelsen's FAQ, shared/research/domain.md §1.2). A trial contrast is net of *its* comparison
condition in *its* country. The rule applied when a pool yields a success-rate prior:

1. Danish evidence first: if the pool holds Danish studies (``country: Denmark``) or the agency's own register
   evaluations, the success-rate prior is pooled from those alone; the foreign studies are shown in the pool but
   not used for the prior, and the result says so;
2. otherwise the foreign contrast is transferred unchanged in its mean with the **predictive** standard deviation
   ``√(τ² + se²)`` (the spread expected in a new setting), whatever ``basis`` was asked for, and a warning names
   the countries and comparisons — with one study ``τ²`` cannot be estimated and the warning says that the
   between-setting spread is then not in the SD.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MEASURES = ("point", "share_of_time", "ever", "score")
HORIZON_RATIO = 1.5
DANISH = "Denmark"


class IncomparableStudies(ValueError):
    """The studies measure different things; the message names them and the ways out."""


def _label(s: Any) -> str:
    return f"{s.id} ({s.measure or 'measure unknown'}, {_months(s.follow_up_months)})"


def _months(m: float | None) -> str:
    return "horizon unknown" if m is None else f"{m:g} months"


def check_comparable(studies: Sequence[Any], *, allow: bool = False) -> list[str]:
    """Warnings for ``studies`` (objects with ``id``, ``measure``, ``follow_up_months``); raises
    :class:`IncomparableStudies` on a refusal unless ``allow`` (then the refusal is a warning)."""
    warnings: list[str] = []
    problems: list[str] = []
    measures = {s.measure for s in studies if s.measure}
    if len(measures) > 1:
        groups = "; ".join(f"{m}: {', '.join(s.id for s in studies if s.measure == m)}" for m in sorted(measures))
        problems.append(f"the studies measure the outcome differently ({groups})")
    unknown_measure = [s.id for s in studies if not s.measure]
    if unknown_measure and len(studies) > 1:
        warnings.append(f"measure not stated for {', '.join(unknown_measure)}: comparability with the others unchecked")
    horizons = [s.follow_up_months for s in studies if s.follow_up_months is not None]
    if horizons and min(horizons) > 0 and len(set(horizons)) > 1:
        spread = f"follow-up from {min(horizons):g} to {max(horizons):g} months"
        if max(horizons) / min(horizons) > HORIZON_RATIO:
            problems.append(f"{spread} (more than {HORIZON_RATIO:g}× apart: "
                            + ", ".join(_label(s) for s in studies) + ")")
        else:
            warnings.append(f"{spread}: pooled as one horizon (within {HORIZON_RATIO:g}×)")
    unknown_h = [s.id for s in studies if s.follow_up_months is None]
    if unknown_h and len(studies) > 1:
        warnings.append(f"follow-up not stated for {', '.join(unknown_h)}: horizon comparability unchecked")
    if problems:
        text = "incomparable outcomes: " + "; ".join(problems)
        if not allow:
            raise IncomparableStudies(text + " — pool one measure (--measure point|share_of_time|ever|score), choose "
                                      "studies with --ids, or pass --allow-incomparable to pool anyway with a warning")
        warnings.insert(0, text + " — pooled anyway (allow_incomparable)")
    return warnings


def is_danish(s: Any) -> bool:
    """Danish evidence: a study from Denmark or one of the agency's own register evaluations."""
    return s.country == DANISH or bool(getattr(s, "own", False))


def transfer_rule(studies: Sequence[Any]) -> tuple[list[Any], str]:
    """The studies the success-rate prior uses and the rule applied, in words (module docstring)."""
    danish = [s for s in studies if is_danish(s)]
    foreign = [s for s in studies if not is_danish(s)]
    if danish and foreign:
        return danish, (f"transferability rule 1 (Danish evidence first): the success-rate prior is pooled from "
                        f"{', '.join(s.id for s in danish)} only; {', '.join(s.id for s in foreign)} "
                        f"({', '.join(sorted({s.country for s in foreign}))}) shown in the pool, not used for it")
    if foreign:
        where = ", ".join(sorted({f"{s.country} vs {s.comparison}" for s in foreign}))
        one = (" With one study the between-setting variance τ² cannot be estimated, so the SD holds only its "
               "sampling error." if len(foreign) == 1 else "")
        return foreign, (f"transferability rule 2: a foreign contrast ({where}) offered as a Danish net success "
                         "rate — mean transferred unchanged, SD the predictive √(τ² + se²) for a new setting; check "
                         f"that Danish practice resembles the comparison condition.{one}")
    return danish, "Danish evidence: no transfer"
