"""The pairing of one assumption with its realised counterpart, before any decision.

One type for every kind of assumption — the success rate, a causal effect path (the ATT path per net success)
and a descriptive consequence profile (SØM's success-vs-non-success contrast, :mod:`som_models.descriptive`) —
so the verdict engine (:mod:`som_models.verdicts`) judges them all the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Comparison:
    """One assumption paired with its realised counterpart.

    ``realised``/``se`` are None when the comparison is not estimable (``level_source`` says why);
    ``n_treated`` is the number of persons the realised value rests on; ``path`` has one entry per
    consequence year (course year for a course path, ``year_label``); ``what`` names the quantity in verdict
    sentences (default: from the assumption);
    ``kind`` is the profile kind of a consequence item (``causal`` / ``descriptive``; None for the success rate;
    ``duration`` for a duration assumption of the spec, :mod:`som_models.duration_assumptions`); ``details`` is
    further evidence carried into the verdict's ``evidence["details"]`` (e.g. why the pre-trend gate does not apply).
    """

    assumption: str
    outcome: str
    assumed: float
    realised: float | None
    se: float | None
    level_source: str
    n_treated: int
    pretrend_p: float | None
    path: tuple[dict, ...]
    unit: str
    shape: Mapping[str, Any] | None
    years: tuple[int, ...]
    what: str | None = None
    kind: str | None = None
    details: Mapping[str, Any] | None = None
    #: what ``years`` count, in words (``consequence year``; ``course year`` for a course path); the path entries
    #: carry the year under :attr:`year_key`
    year_label: str = "consequence year"

    @property
    def year_key(self) -> str:
        """The key of a path entry holding its year (``consequence_year`` / ``course_year``)."""
        return self.year_label.replace(" ", "_")

    def estimate(self) -> tuple[float, float]:
        """The realised value and its se; an error when the comparison is not estimable (either is None)."""
        if self.realised is None or self.se is None:
            raise ValueError(f"assumption {self.assumption!r}: no realised value/se, the comparison is not estimable")
        return self.realised, self.se
