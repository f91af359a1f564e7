"""The optimizers a design can name, built from its :class:`TrainingSettings`."""

from __future__ import annotations

from typing import Any

from neuralstudio.core.training_settings import OPTIMIZERS, SettingsError, TrainingSettings


def make_optimizer(settings: TrainingSettings) -> Any:
    """A fresh ``keras.optimizers.Optimizer`` for ``settings.optimizer`` and its learning rate.

    ``sgd-momentum`` is plain SGD with ``settings.momentum`` (classical, not Nesterov), the
    variant Nielsen's book discusses; the others use Keras's defaults apart from the rate.
    """
    import keras

    lr = float(settings.learning_rate)
    name = settings.optimizer
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr)
    if name == "sgd-momentum":
        return keras.optimizers.SGD(learning_rate=lr, momentum=float(settings.momentum))
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr)
    raise SettingsError(f"Unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}.")
