"""Every reference value states its status and its unit.

A *reference table* (unit prices, tax rates, the price index, refusion rules, consequence profiles of target
groups, effect studies) holds numbers the projections and verdicts rest on. Each entry must say

* ``status`` — how far the number can be trusted; the first word is one of :data:`STATUSES` (free text may
  follow, e.g. ``verified (one centre's 2016 rate, not a national average)``);
* ``unit`` — what the number counts (kroner per night, share of the expense, index points 2015 = 100, …).

Register code lists map codes to groups: their values are categories without a unit, so only the status is
required there (:func:`check_status`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["STATUSES", "ReferenceDataError", "check_status", "check_status_unit"]

#: verified = checked against the cited source; estimated = derived by a stated method from checked numbers;
#: placeholder / illustrative = an order of magnitude nobody checked; unverified = from a source not yet checked.
STATUSES = ("verified", "estimated", "placeholder", "illustrative", "unverified")

_FIRST_WORD = re.compile(r"[a-z]+")


class ReferenceDataError(ValueError):
    """A reference value lacks its status or unit, or states an unknown status; the message names file and entry."""


def check_status(status: Any, where: str) -> str:
    """The status text, checked: non-empty, first word one of :data:`STATUSES`."""
    text = " ".join(str(status).split()) if status is not None else ""
    if not text:
        raise ReferenceDataError(f"{where}: no status (every reference value says {' / '.join(STATUSES)})")
    first = _FIRST_WORD.match(text.lower())
    if first is None or first.group(0) not in STATUSES:
        raise ReferenceDataError(f"{where}: status {text[:40]!r} must start with one of {', '.join(STATUSES)}")
    return text


def check_status_unit(entry: Any, where: str) -> Mapping[str, Any]:
    """``entry`` (a mapping) with a checked ``status`` and a non-empty ``unit``; raises :class:`ReferenceDataError`."""
    if not isinstance(entry, Mapping):
        raise ReferenceDataError(f"{where}: expected a mapping with status and unit, got {type(entry).__name__}")
    missing = [k for k in ("status", "unit") if entry.get(k) in (None, "")]
    if missing:
        raise ReferenceDataError(f"{where}: no {' and no '.join(missing)} (every reference value states its status and unit)")
    check_status(entry["status"], where)
    return entry
