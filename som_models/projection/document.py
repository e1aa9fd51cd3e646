"""The projection document: the JSON ``som project --json`` writes and the report reads, built in one place.

``projection_document`` = the projection's ``to_dict()`` (NPV, payback, rows, the udvalg ledger …) with
``source``, ``discounting`` (the schedule in words), ``break_even`` (per payer and per udvalg), the decision aids
when given (scenarios, discount sensitivity, cash view, optimism bias) and ``monte_carlo`` when draws were made.
"""

from __future__ import annotations

from typing import Any


def projection_document(result: Any, break_even: Any, mc: Any | None = None, aids: Any | None = None, *,
                        source: str = "") -> dict[str, Any]:
    """The document of a projection ``result`` (:func:`som_models.projection.project`), its ``break_even``
    (:func:`som_models.projection.break_even`), optionally the decision ``aids``
    (:func:`som_models.projection.decision_aids`) and a Monte Carlo ``mc`` (:func:`som_models.projection.monte_carlo`)."""
    out = result.to_dict()
    out["source"] = source
    out["discounting"] = result.discounting
    out["break_even"] = break_even.to_dict()
    if aids is not None:
        out.update(aids.to_dict())
    if mc is not None:
        out["monte_carlo"] = mc.to_dict()
    return out
