"""Numbers read from reports and records that may hold anything: a missing key, ``None``, text, a bool.

The trainer's logs, run records read from disk and results of older versions all reach the Train page;
reading each value through :func:`as_number` keeps one bad value from raising in a GUI timer.
"""

from __future__ import annotations

import math
from typing import Any


def as_number(v: Any, default: float | None = None) -> float | None:
    """``v`` as a float, or ``default`` when it is missing or not a number (a bool is not a number here)."""
    if v is None or isinstance(v, bool):
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def finite_number(v: Any) -> float | None:
    """``v`` as a finite float, else None: NaN and infinities are no score (a diverged trial's loss)."""
    f = as_number(v)
    return f if f is not None and math.isfinite(f) else None
