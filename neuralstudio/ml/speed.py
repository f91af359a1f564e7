"""Measure speed: how fast this machine trains a design, and on how many examples an epoch trains.

The Train page's Measure speed button times a few real training steps of the design on zeros of the
right shape (a second or two, no data needed) and divides the examples of one epoch of the chosen data
source by the speed. The examples are those of that data source, after the validation split: the
named data sets are counted without loading (full MNIST is not downloaded to be counted), a file or
folder is loaded as training would load it.
"""

from __future__ import annotations

import time
from typing import Any

from neuralstudio.core.design import Design
from neuralstudio.core.progress import fit_examples
from neuralstudio.core.training_settings import TrainingSettings

#: training examples of the named data sets (before the validation split), as ``ml.data`` loads them, under
#: every spelling ``load_dataset`` accepts (tests/ml/test_speed.py checks the sample's against the loaded one)
NAMED_TRAIN_EXAMPLES = {"mnist-sample": 8_000, "mnist_sample": 8_000, "sample": 8_000, "mnist": 60_000,
                        "fashion-mnist": 60_000, "fashion_mnist": 60_000}


def train_examples(data: Any) -> int:
    """The training examples (before the validation split) of a data source or an in-memory data set.

    Args:
        data: a ``Dataset`` (anything with ``x_train``), a named data set (``"mnist"``...) or the path
            of a data file or folder, which is loaded (raises ``DataError`` when it cannot be).
    """
    x_train = getattr(data, "x_train", None)
    if x_train is not None:
        return len(x_train)
    from neuralstudio.ml.data import DEFAULT_SOURCE, load_dataset

    spec = str(data or DEFAULT_SOURCE).strip()
    known = NAMED_TRAIN_EXAMPLES.get(spec.lower())
    return known if known is not None else len(load_dataset(spec).x_train)


def epoch_examples(data: Any, settings: TrainingSettings) -> int:
    """The examples one epoch of ``data`` trains on with ``settings`` (its validation part held out)."""
    return fit_examples(train_examples(data), settings.validation_split)


def measure_samples_per_second(design: Design, settings: TrainingSettings, steps: int = 5) -> float:
    """Samples per second of a few real training steps of ``design`` on zeros (after one warm-up step).

    The warm-up step traces and compiles the training function, which would otherwise count as training.
    """
    import numpy as np

    from neuralstudio.ml.builder import build_model
    from neuralstudio.ml.losses import compile_arguments

    model = build_model(design.graph)
    loss = settings.loss
    model.compile(optimizer="adam", **compile_arguments(loss, int(model.outputs[0].shape[-1] or 1)))
    shape = tuple(d if d is not None else settings.batch_size for d in model.inputs[0].shape)
    shape = (settings.batch_size, *shape[1:])
    x = np.zeros(shape, dtype="float32")
    out_shape = tuple(model.outputs[0].shape)
    if loss == "sparse_categorical_crossentropy":
        y = np.zeros((settings.batch_size,), dtype="int64")
    else:
        y = np.zeros((settings.batch_size, *out_shape[1:]), dtype="float32")
    model.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * settings.batch_size / (time.perf_counter() - t0)
