"""Graph -> Keras model: shapes and parameters as Keras computes them, and a cache that never lies."""

import resource
import time

import keras
import numpy as np
import pytest

from neuralstudio.core.graph import Graph
from neuralstudio.ml import builder
from neuralstudio.ml.builder import BuildError, analyze, build_model


def mnist_convnet():
    g = Graph()
    ids = {}
    prev = None
    for key, cls, cfg in [
        ("in", "InputLayer", {"batch_shape": [None, 28, 28, 1]}),
        ("conv", "Conv2D", {"filters": 8, "kernel_size": [3, 3], "activation": "relu"}),
        ("pool", "MaxPooling2D", {"pool_size": [2, 2]}),
        ("bn", "BatchNormalization", {}),
        ("flat", "Flatten", {}),
        ("drop", "Dropout", {"rate": 0.25}),
        ("out", "Dense", {"units": 10, "activation": "softmax"}),
    ]:
        n = g.add_node(cls, cfg)
        ids[key] = n.id
        if prev:
            g.connect(prev, n.id)
        prev = n.id
    return g, ids


def test_analyze_matches_keras_shapes_and_parameter_counts():
    g, ids = mnist_convnet()
    result = analyze(g)
    assert result.ok and result.problems == []
    assert result.infos[ids["pool"]].output_shape == (None, 13, 13, 8)
    assert result.infos[ids["pool"]].shape_text == "(None, 13, 13, 8)"
    assert result.infos[ids["conv"]].params == 3 * 3 * 8 + 8
    assert result.infos[ids["bn"]].params == 32 and result.infos[ids["bn"]].trainable_params == 16
    model = result.model
    assert result.total_params == model.count_params()
    assert result.trainable_params == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    out = model(np.zeros((2, 28, 28, 1), "float32"))
    assert out.shape == (2, 10)


def test_cached_analysis_equals_a_fresh_one_after_edits():
    g, ids = mnist_convnet()
    analyze(g, build=False)
    g.set_param(ids["conv"], "filters", 5)
    g.set_param(ids["pool"], "pool_size", [3, 3])
    cached = analyze(g, build=False)
    assert cached.ok and cached.model is None
    builder.clear_cache()
    fresh = analyze(g)  # the strict build: every layer really built by Keras
    assert {k: (v.output_shape, v.params) for k, v in cached.infos.items()} == \
        {k: (v.output_shape, v.params) for k, v in fresh.infos.items()}
    assert cached.infos[ids["out"]].params == 8 * 8 * 5 * 10 + 10
    # a cached upstream still lets problems downstream be found
    g.set_param(ids["out"], "units", 4)
    assert any("has 4 units but MNIST sample has 10 classes" in p.message
               for p in analyze(g, build=False, num_classes=10, data_name="MNIST sample").problems)


def test_models_never_share_layers_or_weights():
    g, _ = mnist_convnet()
    analyze(g, build=False)
    m1 = build_model(g)
    m2 = build_model(g)
    assert not {id(w) for w in m1.weights} & {id(w) for w in m2.weights}
    assert not {id(layer) for layer in m1.layers} & {id(layer) for layer in m2.layers}


def test_build_model_raises_with_every_problem():
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    a = g.add_node("Conv2D", {"filters": 2, "kernel_size": 3})
    b = g.add_node("NotALayer", {})
    g.connect(i.id, a.id)
    g.connect(i.id, b.id)
    with pytest.raises(BuildError) as info:
        build_model(g)
    text = str(info.value)
    assert "conv2d (Conv2D) needs an image" in text and "unknown layer type 'NotALayer'" in text
    assert len(info.value.problems) == 2


def test_a_cycle_and_an_empty_graph_are_problems_not_crashes():
    assert analyze(Graph()).model is None
    g = Graph()
    g.add_node("InputLayer", {"batch_shape": [None, 3]})
    result = analyze(g)
    assert not result.ok and any("no output" in p.message for p in result.problems)


def test_huge_layer_is_refused_before_keras_allocates_it():
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    d = g.add_node("Dense", {"units": 10**6})
    g.connect(i.id, d.id)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    t0 = time.perf_counter()
    result = analyze(g)
    elapsed = time.perf_counter() - t0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    p = result.errors[0]
    assert p.node_id == d.id
    assert "dense (Dense) would have 785,000,000 parameters (2.9 GiB of weights)" in p.message
    assert elapsed < 3 and grown_mib < 500  # 785M float32 weights would be 3 GiB


def test_network_too_big_in_total_is_refused():
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g = Graph()
    prev = g.add_node("InputLayer", {"batch_shape": [None, 8192]}).id
    for _ in range(10):  # each 8192x8192 layer is 256 MiB: fine alone, not ten of them
        n = g.add_node("Dense", {"units": 8192}).id
        g.connect(prev, n)
        prev = n
    result = analyze(g, build=False)
    assert len(result.errors) == 1 and "brings the network to" in result.errors[0].message
    # the live analysis counted the 7 accepted layers (1.75 GiB) without allocating them
    assert result.total_params == 7 * (8192 * 8192 + 8192)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024 < 500


@pytest.mark.parametrize(("shape", "cls", "cfg"), [
    ((784,), "Dense", {"units": 30}),
    ((784,), "Dense", {"units": 30, "use_bias": False}),
    ((28, 28, 4), "Conv2D", {"filters": 6, "kernel_size": [3, 5], "strides": 2, "padding": "same"}),
    ((28, 28, 4), "Conv2D", {"filters": 6, "kernel_size": 3, "groups": 2, "use_bias": False}),
    ((28, 28, 4), "Conv2DTranspose", {"filters": 6, "kernel_size": 3, "strides": 2}),
    ((50, 3), "Conv1D", {"filters": 6, "kernel_size": 4, "dilation_rate": 2}),
    ((8, 8, 8, 2), "Conv3D", {"filters": 3, "kernel_size": 2}),
])
def test_shape_only_inference_agrees_with_keras(monkeypatch, shape, cls, cfg):
    def graph():
        g = Graph()
        i = g.add_node("InputLayer", {"batch_shape": [None, *shape]})
        n = g.add_node(cls, cfg)
        g.connect(i.id, n.id)
        return g, n.id

    g, nid = graph()
    real = analyze(g, loss="mse").infos[nid]
    builder.clear_cache()
    monkeypatch.setattr(builder, "SHAPE_ONLY_PARAMS", 1)
    calls = []
    monkeypatch.setattr(builder, "_count", lambda w: calls.append(w) or 0)  # building would call this
    quick = analyze(g, build=False, loss="mse").infos[nid]
    assert calls == []
    assert (quick.output_shape, quick.params, quick.trainable_params) == \
        (real.output_shape, real.params, real.trainable_params)


def test_shared_layer_counts_its_weights_once():
    g = Graph()
    a = g.add_node("InputLayer", {"batch_shape": [None, 4]})
    b = g.add_node("InputLayer", {"batch_shape": [None, 4]})
    d1 = g.add_node("Dense", {"units": 3})
    d2 = g.add_node("Dense", {}, shares=d1.id)
    add = g.add_node("Add", {})
    for s, t in [(a.id, d1.id), (b.id, d2.id), (d1.id, add.id), (d2.id, add.id)]:
        g.connect(s, t)
    result = analyze(g, loss="mse")
    assert result.ok and result.total_params == 15 == result.model.count_params()
    live = analyze(g, build=False, loss="mse")
    assert live.problems == [] and live.total_params == 15 and live.infos[add.id].output_shape == (None, 3)


def test_layer_class_and_format_shape():
    assert builder.layer_class("Dense") is keras.layers.Dense
    assert builder.layer_class("nope") is None
    assert builder.format_shape([(None, 2), (None, 3)]) == "(None, 2), (None, 3)"
    assert builder.format_shape(None) == "?"


@pytest.mark.parametrize("build", [False, True])
def test_a_connection_from_an_output_the_layer_does_not_have_is_a_problem(build):
    """It used to read output 0 silently: "no problems", while the generated code (hidden[3]) built another net."""
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 4]}, name="x")
    h = g.add_node("Dense", {"units": 3}, name="hidden")
    o = g.add_node("Dense", {"units": 2}, name="out")
    g.connect(i.id, h.id)
    g.connect(h.id, o.id, src_port=3)
    result = analyze(g, build=build)
    assert not result.ok
    assert any(p.node_id == o.id and "output 4 of hidden" in p.message for p in result.errors), result.problems
