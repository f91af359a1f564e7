"""The hyperparameters a design carries, validated so that bad values are refused early."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import shorten

OPTIMIZERS = ("sgd", "sgd-momentum", "rmsprop", "adam", "adamw")
LOSSES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "quadratic",
    "mean_squared_error",
    "binary_crossentropy",
)
#: Nielsen's quadratic cost, C = 1/2 ||y - a||^2 summed over the outputs (his chapter 1). Keras's mean squared
#: error averages over the outputs instead, so the same learning rate moves the weights units/2 times less
#: (5x less for ten digits): the book's rate 3.0 only means what the book says on this cost.
QUADRATIC = "quadratic"
#: the losses that compare the output with one-hot rows (else class numbers; binary_crossentropy with one unit
#: reads 0/1 labels, with several units one-hot rows)
ONE_HOT_LOSSES = frozenset({"categorical_crossentropy", "mean_squared_error", QUADRATIC})


def one_hot_targets(loss: str, units: int) -> bool:
    """Whether ``loss`` reads one-hot rows for an output of ``units`` units (else class numbers or 0/1 labels)."""
    return loss in ONE_HOT_LOSSES or (loss == "binary_crossentropy" and units > 1)


class SettingsError(UserError, ValueError):
    """A hyperparameter with a value that training cannot use."""


@dataclass
class TrainingSettings:
    """Hyperparameters stored in a design and overridable from the CLI and the Train workspace.

    ``quadratic`` is Nielsen's quadratic cost (see :data:`QUADRATIC`); ``mean_squared_error`` is Keras's,
    the same cost averaged over the outputs.
    """

    optimizer: str = "adam"
    learning_rate: float = 0.001
    momentum: float = 0.9
    batch_size: int = 128
    epochs: int = 5
    loss: str = "sparse_categorical_crossentropy"
    validation_split: float = 0.1
    early_stopping: int | None = None
    seed: int | None = 42

    def validate(self) -> None:
        """Raise :class:`SettingsError` naming the first bad value and the accepted range."""
        if self.optimizer not in OPTIMIZERS:
            raise SettingsError(f"Unknown optimizer {shorten(self.optimizer)}: choose one of {', '.join(OPTIMIZERS)}.")
        if self.loss not in LOSSES:
            raise SettingsError(f"Unknown loss {shorten(self.loss)}: choose one of {', '.join(LOSSES)}.")
        _number("learning_rate", self.learning_rate, 0.0, 100.0, low_open=True)
        _number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _integer("batch_size", self.batch_size, 1, 1_000_000)
        _integer("epochs", self.epochs, 1, 100_000)
        _number("validation_split", self.validation_split, 0.0, 1.0, high_open=True)
        if self.early_stopping is not None:
            _integer("early_stopping", self.early_stopping, 1, 100_000)
        if self.seed is not None:
            _integer("seed", self.seed, 0, 2**32 - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingSettings:
        if not isinstance(data, dict):
            raise SettingsError("'training' must be an object of hyperparameters.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"Unknown training setting(s): {shorten(', '.join(unknown), 200)}.")
        s = cls(**data)
        s.validate()
        return s

    def updated(self, **changes: Any) -> TrainingSettings:
        """A copy with the non-None ``changes`` applied and validated."""
        data = self.to_dict()
        data.update({k: v for k, v in changes.items() if v is not None})
        return TrainingSettings.from_dict(data)


def _number(name: str, v: Any, lo: float, hi: float, low_open: bool = False, high_open: bool = False) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SettingsError(f"{name} must be a number, not {shorten(v)}.")
    if v < lo or v > hi or (low_open and v == lo) or (high_open and v == hi):
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise SettingsError(f"{name} = {v} is out of range: it must be in {lb}{lo}, {hi}{hb}.")


def _integer(name: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SettingsError(f"{name} must be a whole number, not {shorten(v)}.")
    if not lo <= v <= hi:
        raise SettingsError(f"{name} = {v} is out of range: it must be between {lo} and {hi}.")
