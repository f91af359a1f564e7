"""ml/traced_graphs.py: what it takes apart, and what it leaves alone."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from neuralstudio.ml import traced_graphs
from neuralstudio.ml.traced_graphs import release_traced

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="only TensorFlow traces FuncGraphs")


def _traced_step(model):
    import tensorflow as tf

    @tf.function
    def step(x):
        return model(x) * 2.0

    step(np.ones((2, 3), "float32"))
    return step


def _model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def test_the_graphs_behind_a_dropped_function_are_taken_apart_and_the_model_lives_on():
    model = _model()
    step = _traced_step(model)
    graph = step.get_concrete_function(np.ones((2, 3), "float32")).graph
    assert graph.get_operations()
    assert release_traced([step, None]) >= 1
    assert graph.get_operations() == []
    assert model.predict(np.ones((1, 3), "float32"), verbose=0).shape == (1, 2)  # never entered
    assert _traced_step(model)(np.ones((1, 3), "float32")).shape == (1, 2)


def test_a_root_that_leads_into_the_wider_heap_is_left_whole(monkeypatch):
    monkeypatch.setattr(traced_graphs, "MAX_OBJECTS", 50)
    step = _traced_step(_model())
    graph = step.get_concrete_function(np.ones((2, 3), "float32")).graph
    assert release_traced([step, [[i] for i in range(100)]]) == 0
    assert graph.get_operations()
    assert step(np.ones((2, 3), "float32")).shape == (2, 2)  # still callable


def test_nothing_to_release():
    assert release_traced([]) == 0
    assert release_traced([None, None]) == 0
