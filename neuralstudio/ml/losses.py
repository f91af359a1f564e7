"""A design's loss name as Keras trains on it.

Every loss but one is a Keras loss by that name. ``quadratic`` (Nielsen's cost, see
:data:`~neuralstudio.core.training_settings.QUADRATIC`) is Keras's mean squared error weighted by units/2:
``compile(loss="mean_squared_error", loss_weights=units / 2)``. A loss weight, not a custom loss function,
so that a saved or exported model stays plain Keras: it opens anywhere without NeuralStudio's code, and a
model file never has to name a function to be looked up on load.
"""

from __future__ import annotations

from typing import Any

from neuralstudio.core.training_settings import QUADRATIC


def keras_loss(loss: str) -> str:
    """The Keras loss that ``loss`` trains on."""
    return "mean_squared_error" if loss == QUADRATIC else loss


def loss_weight(loss: str, units: int) -> float | None:
    """The weight Keras gives ``loss`` for an output of ``units`` units (None: Keras's own, 1)."""
    return units / 2.0 if loss == QUADRATIC else None


def compile_arguments(loss: str, units: int) -> dict[str, Any]:
    """The ``loss`` (and ``loss_weights``) keyword arguments of ``model.compile`` for ``loss``."""
    weight = loss_weight(loss, units)
    return {"loss": keras_loss(loss), **({"loss_weights": weight} if weight is not None else {})}


def loss_function(loss: str, units: int) -> Any:
    """``loss`` as a callable ``(y_true, y_pred) -> per-example loss``, weighted as training weights it.

    What the per-layer gradients are taken of (``ml/gradients.py``): the same gradients training follows.
    """
    import keras

    base = keras.losses.get(keras_loss(loss))
    weight = loss_weight(loss, units)
    if weight is None:
        return base

    def weighted(y_true: Any, y_pred: Any) -> Any:
        return base(y_true, y_pred) * weight

    return weighted
