"""The plain-Keras side of the benchmarks: a model compiled as a learner would by hand for a design's settings.

One place for what the trainer's loss means in plain Keras (``ml/losses.py``: Nielsen's quadratic cost is
mean squared error weighted by units/2) and how its targets are encoded, so that every "plain ``fit``" the
benchmarks compare against trains on the same cost as NeuralStudio does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_by_hand(model: Any, settings: Any, **compile_kw: Any) -> Callable[[Any], Any]:
    """Compile ``model`` with ``settings``' optimizer and loss and Keras's accuracy; the targets' encoder."""
    import keras

    from neuralstudio.core.training_settings import one_hot_targets
    from neuralstudio.ml.data import one_hot
    from neuralstudio.ml.losses import compile_arguments
    from neuralstudio.ml.optimizers import make_optimizer

    units = int(model.output_shape[-1])
    hot = one_hot_targets(settings.loss, units)
    metric = (keras.metrics.CategoricalAccuracy(name="accuracy") if hot
              else keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
    model.compile(optimizer=make_optimizer(settings), **compile_arguments(settings.loss, units), metrics=[metric],
                  **compile_kw)
    return (lambda y: one_hot(y, units)) if hot else (lambda y: y)
