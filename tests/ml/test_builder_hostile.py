"""The builder against huge and deep designs: deep chains build, oversized layers are refused before allocation."""

from __future__ import annotations

import resource
import sys
import threading

import numpy as np
import pytest
from keras.src.backend.common import global_state

from neuralstudio.core.graph import Graph
from neuralstudio.ml import builder
from neuralstudio.ml.builder import analyze, build_model, keras_graph_recursion, probe_layer

pytestmark = pytest.mark.backend_neutral  # refused by the shape analysis before anything is built


def dense_chain(n: int) -> Graph:
    g = Graph()
    prev = g.add_node("InputLayer", {"batch_shape": [None, 4]}).id
    for _ in range(n - 1):
        nid = g.add_node("Dense", {"units": 4}).id
        g.connect(prev, nid)
        prev = nid
    return g


def single(class_name: str, config: dict, shape: list, n_inputs: int = 1) -> tuple[Graph, str]:
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, *shape]}).id
    n = g.add_node(class_name, config).id
    for slot in range(n_inputs):
        g.connect(i, n, slot)
    return g, n


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def test_a_1000_layer_chain_analyzes_and_builds_past_pythons_recursion_limit():
    limit = sys.getrecursionlimit()
    g = dense_chain(1000)
    live = analyze(g, build=False)
    assert not [p for p in live.errors if "output" not in p.message], live.errors[:3]
    model = build_model(g)  # Keras maps its graph recursively: one frame per layer
    assert len(model.layers) == 1000
    assert model(np.zeros((2, 4), "float32")).shape == (2, 4)
    assert sys.getrecursionlimit() == limit  # put back afterwards


def test_the_recursion_room_is_put_back_by_the_last_of_several_threads():
    limit = sys.getrecursionlimit()
    inside, release = threading.Barrier(3), threading.Event()
    seen = []

    def deep_build():
        with keras_graph_recursion(5000):
            inside.wait()
            release.wait()
            seen.append(sys.getrecursionlimit())

    threads = [threading.Thread(target=deep_build) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    with keras_graph_recursion(10):
        assert sys.getrecursionlimit() >= 10_000  # a small caller does not lower it
    assert sys.getrecursionlimit() >= 10_000  # while the threads still need it
    release.set()
    for t in threads:
        t.join()
    assert min(seen) >= 10_000 and sys.getrecursionlimit() == limit


@pytest.mark.parametrize("build", [False, True])
@pytest.mark.parametrize(("cls", "cfg", "shape", "n_inputs", "params"), [
    ("MultiHeadAttention", {"num_heads": 300, "key_dim": 1000}, [10, 256], 2, "308,100,256"),
    ("EinsumDense", {"equation": "ab,bc->ac", "output_shape": 2_000_000}, [1000], 1, "2,000,000,000"),
])
def test_layers_without_a_formula_are_refused_before_their_weights_exist(build, cls, cfg, shape, n_inputs, params):
    g, nid = single(cls, cfg, shape, n_inputs)
    before = max_rss_mib()
    result = analyze(g, build=build)
    grown = max_rss_mib() - before
    assert [p.node_id for p in result.errors] == [nid]
    assert f"would have {params} parameters" in result.errors[0].message
    assert "more than this computer can train" in result.errors[0].message
    assert grown < 200  # the weights alone would take 1.1 GiB and 7.5 GiB
    assert not global_state.get_global_attribute("uninitialized_variables")  # nothing left to allocate later


@pytest.mark.parametrize(("cls", "cfg", "shape", "n_inputs"), [
    ("BatchNormalization", {}, [8, 8, 3], 1),
    ("LSTM", {"units": 5}, [7, 3], 1),
    ("Bidirectional", {"layer": {"class_name": "LSTM", "config": {"units": 5}, "module": "keras.layers"}}, [7, 3], 1),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, [6, 8], 2),
    ("EinsumDense", {"equation": "abc,cd->abd", "output_shape": [None, 6], "bias_axes": "d"}, [5, 3], 1),
    ("Embedding", {"input_dim": 30, "output_dim": 4}, [7], 1),
    ("LayerNormalization", {}, [7, 3], 1),
    ("ConvLSTM2D", {"filters": 2, "kernel_size": 3}, [4, 8, 8, 1], 1),
])
def test_the_live_analysis_counts_what_keras_builds(cls, cfg, shape, n_inputs):
    g, nid = single(cls, cfg, shape, n_inputs)
    builder.clear_cache()
    live = analyze(g, build=False).infos[nid]
    built = analyze(g, build=True)
    assert built.model is not None
    real = built.infos[nid]
    assert (live.output_shape, live.params, live.trainable_params) == \
        (real.output_shape, real.params, real.trainable_params)
    assert live.params > 0


def test_a_failed_probe_leaves_keras_as_it_was_and_the_build_explains():
    g, nid = single("Dense", {"units": "many"}, [4])
    node, inputs = g.nodes[nid], [builder.make_input(g.nodes[g.inputs()[0]])]
    assert probe_layer(node, inputs) is None
    assert not global_state.get_global_attribute("uninitialized_variables")
    assert analyze(g, build=False).errors


def test_problem_messages_quoting_the_design_are_bounded():
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 4]}).id
    j = g.add_node("InputLayer", {"batch_shape": [None, 4]}).id
    c = g.add_node("Concatenate", {"axis": "x" * 100_000}).id
    g.connect(i, c)
    g.connect(j, c)
    result = analyze(g, build=False)
    assert result.errors and all(len(p.message) <= builder.MAX_MESSAGE for p in result.problems)
