"""ISO-week helpers for DREAM's ``y_YYWW`` columns (ISO 8601 weeks; YY = last two digits of the ISO year)."""

from __future__ import annotations

import datetime as dt
import re

_WEEK_COLUMN = re.compile(r"^y_(\d{2})(\d{2})$", re.IGNORECASE)


def iso_weeks_in_year(year: int) -> int:
    """Number of ISO weeks (52 or 53): the ISO week of 28 December is always the last week of its year."""
    return dt.date(year, 12, 28).isocalendar().week


def week_column(iso_year: int, week: int) -> str:
    """DREAM column name for an ISO year and week, e.g. (2017, 1) → ``y_1701``."""
    return f"y_{iso_year % 100:02d}{week:02d}"


def parse_week_column(name: str, pivot: int = 50) -> tuple[int, int] | None:
    """ISO year and week of a ``y_YYWW`` column (case-insensitive), or None if the name is not one.

    Two-digit years below ``pivot`` are 20YY, others 19YY (DREAM starts in 1991).
    """
    m = _WEEK_COLUMN.match(name)
    if not m:
        return None
    yy, ww = int(m.group(1)), int(m.group(2))
    year = 2000 + yy if yy < pivot else 1900 + yy
    if not 1 <= ww <= iso_weeks_in_year(year):
        return None
    return year, ww


def iso_week1_monday(iso_year: int) -> dt.date:
    """Monday of ISO week 1: the week containing 4 January."""
    jan4 = dt.date(iso_year, 1, 4)
    return jan4 - dt.timedelta(days=jan4.weekday())


def week_columns(iso_years) -> list[str]:
    """Every ``y_YYWW`` column of the given ISO years, in calendar order (ISO weeks are contiguous)."""
    return [week_column(int(y), w) for y in iso_years for w in range(1, iso_weeks_in_year(int(y)) + 1)]
