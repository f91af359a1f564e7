"""The lines a training run writes to the Train page's event log: what was started, and each epoch's metrics.

Plain text, the same whatever shows it, so that a student can copy the log of a run into a report or a
question; the formatting is here, without Qt, and tested without a display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from neuralstudio.core.numbers import as_number
from neuralstudio.core.training_settings import TrainingSettings

#: the metrics an epoch line shows, in this order (others, like ``seconds``, stay in the run record)
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def run_start_line(design_name: str, settings: TrainingSettings, data_name: str) -> str:
    """``Training tiny: adam, learning rate 0.001, batch size 32, 2 epochs on mnist-sample.``"""
    return (f"Training {design_name}: {settings.optimizer}, learning rate {settings.learning_rate:g}, "
            f"batch size {settings.batch_size}, {settings.epochs} epochs on {data_name}.")


def epoch_line(epoch: int, logs: Mapping[str, Any]) -> str:
    """``epoch 3: loss 0.2134 accuracy 0.9381 val_loss 0.2510 val_accuracy 0.9290`` (0-based ``epoch``).

    A metric the epoch does not have (no validation split, a NaN run's missing accuracy) is left out.
    """
    parts = [f"epoch {epoch + 1}:"]
    for key in EPOCH_METRICS:
        v = as_number(logs.get(key))
        if v is not None:
            parts.append(f"{key} {v:.4f}")
    return " ".join(parts)


def stopped_epoch_line(epoch: int, logs: Mapping[str, Any]) -> str:
    """``epoch 3 stopped early: loss 0.2134``: an epoch cut short by Stop (0-based ``epoch``)."""
    return f"epoch {epoch + 1} stopped early: loss {as_number(logs.get('loss'), math.nan):.4f}"
