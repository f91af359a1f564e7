"""The tiny designs, data and models that tests across core, ml, ui and cli share.

One place, so that a change to how a design or a data slice is made is made once.  Tests import it as
``from support import ...`` (pytest puts ``tests/`` on the import path because of ``tests/conftest.py``).
"""

from __future__ import annotations

from typing import Any

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings


def image_mlp(name: str = "tiny", *, hidden: int = 16, activation: str = "relu", output: str = "softmax",
              **training: Any) -> Design:
    """Input 28x28 -> Flatten -> Dense(hidden) -> Dense(10): the smallest network that learns MNIST digits.

    Layer names are ``image``, ``flat``, ``hidden`` and ``digit``; ``training`` overrides the settings
    (batch 32, 2 epochs, validation 0.2 by default).
    """
    g = Graph()
    ids = [g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}, name="image").id,
           g.add_node("Flatten", {}, name="flat").id,
           g.add_node("Dense", {"units": hidden, "activation": activation}, name="hidden").id,
           g.add_node("Dense", {"units": 10, "activation": output}, name="digit").id]
    for a, b in zip(ids, ids[1:]):
        g.connect(a, b)
    settings = TrainingSettings(**{"batch_size": 32, "epochs": 2, "validation_split": 0.2, **training})
    return Design(graph=g, training=settings, name=name)


def flat_mlp(name: str = "tiny-mlp", *, hidden: int = 30, activation: str = "sigmoid", units: int = 10,
             output: str = "softmax", **training: Any) -> Design:
    """Input 784 -> Dense(hidden) -> Dense(units): Nielsen's network, on flattened images."""
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    h = g.add_node("Dense", {"units": hidden, "activation": activation})
    o = g.add_node("Dense", {"units": units, "activation": output})
    g.connect(i.id, h.id)
    g.connect(h.id, o.id)
    return Design(graph=g, training=TrainingSettings(**training), name=name)


def mnist_slice(n_train: int = 600, n_test: int = 100) -> Any:
    """The first examples of the bundled MNIST sample, as a :class:`~neuralstudio.ml.data.Dataset`."""
    from neuralstudio.ml.data import Dataset, load_dataset

    ds = load_dataset("mnist-sample")
    return Dataset(name=f"mnist-sample ({n_train})", x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train],
                   x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test], class_names=list(ds.class_names),
                   source="first examples of the MNIST sample")


def dense_model(inputs: int = 4, units: int = 3, *, name: str = "out") -> Any:
    """A built one-layer Keras model (softmax), for file, export and inference tests."""
    import keras

    return keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units, activation="softmax", name=name)])


def skip_unless_exportable(fmt: str) -> None:
    """Skip a test of export format ``fmt`` on a Keras backend that cannot write it (savedmodel on PyTorch,
    litert and onnx on JAX...): the refusal itself is tested in tests/ml/test_backends.py."""
    import keras
    import pytest

    from neuralstudio.ml.export_formats import FORMATS

    f = FORMATS.get(fmt)
    why = f.refusal(keras.backend.backend()) if f is not None else None
    if why:
        pytest.skip(why)
