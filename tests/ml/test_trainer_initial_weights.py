"""Trainer(initial_weights=...): keep training a model instead of starting from random weights."""

from __future__ import annotations

import numpy as np
import pytest

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings
from neuralstudio.ml.data import Dataset, load_dataset
from neuralstudio.ml.trainer import Trainer


def mlp_design(hidden: int = 32) -> Design:
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    h = g.add_node("Dense", {"units": hidden, "activation": "relu"})
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    g.connect(i.id, h.id)
    g.connect(h.id, o.id)
    return Design(graph=g, name="tiny-mlp")


@pytest.fixture(scope="module")
def data() -> Dataset:
    ds = load_dataset("mnist-sample")
    return Dataset("slice", ds.x_train[:1024], ds.y_train[:1024], ds.x_test[:256], ds.y_test[:256],
                   list(ds.class_names), "first examples of the MNIST sample")


@pytest.fixture(scope="module")
def trained(data):
    settings = TrainingSettings(epochs=3, batch_size=32, learning_rate=0.003, validation_split=0.0, seed=1)
    result = Trainer(mlp_design(), dataset=data, settings=settings).run()
    assert result.status == "finished", result.message
    assert result.test_accuracy > 0.6
    return result


def test_a_run_starts_from_the_given_weights(data, trained):
    frozen = TrainingSettings(epochs=1, batch_size=32, learning_rate=1e-9, validation_split=0.0, seed=7)
    weights = trained.model.get_weights()
    before = [w.copy() for w in weights]
    cont = Trainer(mlp_design(), dataset=data, settings=frozen, initial_weights=weights).run()
    assert cont.status == "finished", cont.message
    # with a learning rate of 1e-9 nothing moves: the run scores what the loaded model scores
    assert cont.test_accuracy == pytest.approx(trained.test_accuracy, abs=0.01)
    for a, b in zip(cont.model.get_weights(), before, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # the caller's arrays are not changed by the run
    for a, b in zip(weights, before, strict=True):
        np.testing.assert_array_equal(a, b)
    # and without them the same run starts from random weights (chance level, about 0.1)
    fresh = Trainer(mlp_design(), dataset=data, settings=frozen).run()
    assert fresh.status == "finished", fresh.message
    assert fresh.test_accuracy < trained.test_accuracy - 0.3


def test_weights_of_another_architecture_fail_with_a_message(data, trained):
    settings = TrainingSettings(epochs=1, batch_size=32, validation_split=0.0)
    result = Trainer(mlp_design(hidden=16), dataset=data, settings=settings,
                     initial_weights=trained.model.get_weights()).run()
    assert result.status == "failed"
    assert "the loaded weights do not fit this design" in result.message.lower()
    assert "(784, 32)" in result.message or "arrays" in result.message
    short = Trainer(mlp_design(), dataset=data, settings=settings,
                    initial_weights=trained.model.get_weights()[:2]).run()
    assert short.status == "failed" and "2 arrays for 4 variables" in short.message
