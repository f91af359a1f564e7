"""How numbers and tensor shapes are written for people, the same in the CLI, the GUI and the run records."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def format_value(v: Any) -> str:
    """A metric or hyperparameter: ``-`` when missing, 4 significant digits for floats."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_shape(shape: Iterable[int | None]) -> str:
    """``(None, 28, 28, 1)``: the batch dimension and other unknown sizes as ``None``."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def format_duration(seconds: Any) -> str:
    """``0.4 s``, ``12 s``, ``3.5 min``, ``1.2 h``: tenths below 10 s, so a fast epoch does not read "0 s"."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "-"
    s = float(seconds)
    if not math.isfinite(s) or s < 0:
        return "-"
    if s < 10:
        return f"{s:.1f} s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def shorten(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages quote values from untrusted files, which can be huge."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def human_size(n: int) -> str:
    """``48.8 kB`` for 48,800 bytes (decimal units, as file managers show them)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
