"""How numbers and tensor shapes are written for people, the same in the CLI, the GUI and the run records."""

from __future__ import annotations

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
