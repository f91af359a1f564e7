"""A design's size in words, from the shape-only analysis."""

from __future__ import annotations

import pytest

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings
from neuralstudio.ml.model_size import model_size_text

pytestmark = pytest.mark.backend_neutral  # shape-only analysis


def design(units: int = 16, input_shape=(None, 28, 28)) -> Design:
    g = Graph()
    a = g.add_node("InputLayer", {"batch_shape": list(input_shape)}, name="image")
    b = g.add_node("Flatten", {}, name="flat")
    c = g.add_node("Dense", {"units": units, "activation": "relu"}, name="hidden")
    d = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="digit")
    g.connect(a.id, b.id)
    g.connect(b.id, c.id)
    g.connect(c.id, d.id)
    return Design(graph=g, training=TrainingSettings(), name="mlp")


def test_parameters_and_megabytes():
    # 28*28*16+16 + 16*10+10
    assert model_size_text(design()) == "Model: 12,730 parameters (0.05 MB as float32)."


def test_a_network_that_cannot_be_built_says_why():
    g = Graph()
    a = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}, name="image")
    b = g.add_node("Conv1D", {"filters": 4, "kernel_size": 50}, name="conv")  # longer than the rows
    g.connect(a.id, b.id)
    text = model_size_text(Design(graph=g, training=TrainingSettings(), name="bad"))
    assert text.startswith("The network cannot be built yet: ")
