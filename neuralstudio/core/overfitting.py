"""Overfitting detection: validation loss rising while training loss keeps falling.

The Train page marks the epoch where that began on its plots and explains it in words, so that a student
sees the moment the network starts memorising its training examples. The rule needs only the per-epoch
losses, so it lives here, without Qt, and is tested without a display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from neuralstudio.core.numbers import as_number

#: consecutive epochs of rising validation loss with falling training loss that count as overfitting
OVERFIT_EPOCHS = 2


def overfitting_start(train_loss: Sequence[float | None], val_loss: Sequence[float | None],
                      n: int = OVERFIT_EPOCHS) -> int | None:
    """The 1-based epoch after which validation loss rose ``n`` epochs in a row while training loss fell.

    Only the last ``n`` + 1 epochs are looked at, so the answer appears the epoch the pattern completes.
    Returns None when they do not show that pattern, or when one of their losses is missing or not finite
    (a NaN would compare false and hide or fake a rise).
    """
    if len(val_loss) < n + 1 or len(train_loss) < n + 1:
        return None
    vl, tl = _finite(val_loss[-(n + 1):]), _finite(train_loss[-(n + 1):])
    if vl is None or tl is None:
        return None
    if all(vl[i + 1] > vl[i] for i in range(n)) and all(tl[i + 1] < tl[i] for i in range(n)):
        return len(val_loss) - n
    return None


def _finite(values: Sequence[float | None]) -> list[float] | None:
    """``values`` as floats, or None when one is missing or not finite."""
    if any(v is None or not math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values if v is not None]


def overfitting_message(start: int, n: int = OVERFIT_EPOCHS) -> str:
    """What overfitting since epoch ``start`` means, and what to do about it, in plain words."""
    return (f"Overfitting since epoch {start}: validation loss has risen for {n} epochs while training loss kept "
            "falling, so the network is memorising the training examples instead of learning what generalises; "
            "stop earlier (early stopping), add Dropout or use more data.")


class OverfittingWatch:
    """Watches a run's completed epochs and tells, once, the epoch where overfitting began.

    Once is enough: the mark stays on the plots, and a message every epoch would bury the event log.
    A run without validation loss (no validation split) never overfits by this rule.
    """

    def __init__(self, n: int = OVERFIT_EPOCHS) -> None:
        self.n = n
        self.start: int | None = None  # the epoch already reported, if any
        self._train: list[float | None] = []
        self._val: list[float | None] = []

    def add_epoch(self, logs: Mapping[str, Any]) -> int | None:
        """Take one completed epoch's logs; the overfitting start epoch the first time it shows, else None."""
        self._train.append(as_number(logs.get("loss")))
        self._val.append(as_number(logs.get("val_loss")))
        if self.start is not None or any(v is None for v in self._train + self._val):
            return None
        self.start = overfitting_start(self._train, self._val, self.n)
        return self.start
