"""Keras model -> design -> rebuilt model: same layers, shapes, parameters and outputs."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from neuralstudio.core.design import loads_design  # noqa: E402
from neuralstudio.core.errors import UserError  # noqa: E402
from neuralstudio.core.graph import INPUT_CLASS  # noqa: E402
from neuralstudio.ml.builder import build_model  # noqa: E402
from neuralstudio.ml.importer import ModelImportError, graph_from_model, import_model  # noqa: E402
from neuralstudio.ml.model_files import load_keras_model, save_keras_model  # noqa: E402


def _plain(value):
    """Tuples as lists: a config read back from JSON has lists where Keras had tuples."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _no_name(cfg: dict) -> dict:
    return _plain({k: v for k, v in cfg.items() if k != "name"})


def _layers(model) -> list:
    """The layers that compute something (a Sequential model does not list its InputLayer)."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def assert_same_model(original, rebuilt, *, rng_seed: int = 0, scale: float = 1.0) -> None:
    """Same layers, configs, shapes and parameters; same outputs once the weights are copied by name."""
    assert [type(x).__name__ for x in _layers(rebuilt)] == [type(x).__name__ for x in _layers(original)]
    assert [x.name for x in _layers(rebuilt)] == [x.name for x in _layers(original)]
    for a, b in zip(_layers(original), _layers(rebuilt)):
        assert _no_name(b.get_config()) == _no_name(a.get_config()), a.name
    assert rebuilt.count_params() == original.count_params()
    assert [tuple(t.shape) for t in rebuilt.outputs] == [tuple(t.shape) for t in original.outputs]
    for layer in rebuilt.layers:
        if layer.weights:
            layer.set_weights(original.get_layer(layer.name).get_weights())
    rng = np.random.default_rng(rng_seed)
    xs = [rng.random((2, *t.shape[1:]), dtype=np.float32) * scale for t in original.inputs]
    xs = xs[0] if len(xs) == 1 else xs
    want, got = original(xs, training=False), rebuilt(xs, training=False)
    want = want if isinstance(want, (list, tuple)) else [want]
    got = got if isinstance(got, (list, tuple)) else [got]
    assert len(want) == len(got)
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


def round_trip(model):
    """Import, save as a design file, read it back and rebuild: the whole path the app takes."""
    design = import_model(model)
    text = design.dumps()
    rebuilt = build_model(loads_design(text).graph)
    assert_same_model(model, rebuilt)
    return design


def test_sequential_round_trip():
    model = keras.Sequential([
        keras.Input((28, 28, 1), name="image"),
        keras.layers.Conv2D(4, 3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(10, activation="softmax", kernel_regularizer=keras.regularizers.L2(1e-3)),
    ])
    design = round_trip(model)
    g = design.graph
    order = g.topological_order()
    assert [g.nodes[n].class_name for n in order] == [
        "InputLayer", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    assert g.nodes[order[0]].name == "image"
    assert g.outputs() == [order[-1]]
    # laid out top to bottom, one row per layer
    ys = [g.position(n)[1] for n in order]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)


def test_sequential_without_input_shape_is_refused():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(UserError, match="no input shape"):
        graph_from_model(model)


def test_branch_and_merge_round_trip_and_layout():
    inp = keras.Input((8, 8, 3), name="img")
    a = keras.layers.Conv2D(4, 1, name="left")(inp)
    b = keras.layers.Conv2D(4, 3, padding="same", name="right")(inp)
    b = keras.layers.BatchNormalization(name="right_bn")(b)
    x = keras.layers.Add(name="join")([a, b])
    c = keras.layers.Concatenate(name="cat")([x, a])
    out = keras.layers.Dense(2, name="out")(keras.layers.GlobalAveragePooling2D(name="gap")(c))
    model = keras.Model(inp, out)
    design = round_trip(model)
    g = design.graph
    join = g.node_by_name("join")
    assert [g.nodes[s].name for s in g.predecessors(join.id)] == ["left", "right_bn"]
    cat = g.node_by_name("cat")
    assert [g.nodes[s].name for s in g.predecessors(cat.id)] == ["join", "left"]
    # longest-path layers: join sits below right_bn, which sits below right; left and right share a row
    y = {n.name: g.position(n.id)[1] for n in g}
    assert y["img"] < y["left"] == y["right"] < y["right_bn"] < y["join"] < y["cat"]
    assert g.position(g.node_by_name("left").id)[0] != g.position(g.node_by_name("right").id)[0]


def test_multi_input_multi_output_keeps_order():
    a = keras.Input((5,), name="a")
    b = keras.Input((3,), name="b")
    h = keras.layers.Concatenate(name="cat")([b, a])
    o2 = keras.layers.Dense(1, name="second")(h)
    o1 = keras.layers.Dense(4, name="first")(h)
    model = keras.Model([a, b], [o1, o2])
    design = round_trip(model)
    g = design.graph
    assert [g.nodes[i].name for i in g.inputs()] == ["a", "b"]
    assert [g.nodes[o].name for o in g.outputs()] == ["first", "second"]


def test_shared_layer_becomes_sharing_nodes():
    left = keras.Input((6,), name="left")
    right = keras.Input((6,), name="right")
    enc = keras.layers.Dense(4, activation="tanh", name="encoder")
    d = keras.layers.Subtract(name="diff")([enc(left), enc(right)])
    model = keras.Model([left, right], keras.layers.Dense(1, name="score")(d))
    design = round_trip(model)
    g = design.graph
    first = g.node_by_name("encoder")
    sharers = [n for n in g if n.shares]
    assert len(sharers) == 1 and sharers[0].shares == first.id and sharers[0].class_name == "Dense"
    assert [g.nodes[p].name for p in g.predecessors(g.node_by_name("diff").id)] == ["encoder", sharers[0].name]


def test_nested_models_stay_one_node_each():
    inner_in = keras.Input((6,))
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="inner_dense")(inner_in), name="block")
    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="seq_dense")], name="head")
    inp = keras.Input((6,), name="x")
    model = keras.Model(inp, seq(inner(inp)))
    design = round_trip(model)
    classes = {n.name: n.class_name for n in design.graph}
    assert classes == {"x": INPUT_CLASS, "block": "Functional", "head": "Sequential"}


def test_nested_model_called_twice_is_shared():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(4, name="d")(inner_in), name="tower")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model([a, b], keras.layers.Add(name="sum")([inner(a), inner(b)]))
    design = round_trip(model)
    assert sum(1 for n in design.graph if n.shares) == 1


def test_multi_output_layer_uses_src_port():
    inp = keras.Input((5, 4), name="seq")
    whole, h, c = keras.layers.LSTM(3, return_state=True, name="lstm")(inp)
    out = keras.layers.Concatenate(name="cat")([h, c, whole])
    model = keras.Model(inp, out)
    design = round_trip(model)
    g = design.graph
    cat = g.node_by_name("cat")
    assert [e.src_port for e in g.in_edges(cat.id)] == [1, 2, 0]


def test_from_saved_file_and_design_file(tmp_path):
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, name="y")(keras.layers.Dense(3, name="h")(inp)))
    save_keras_model(model, tmp_path / "m.keras")
    loaded = load_keras_model(tmp_path / "m.keras")
    design = import_model(loaded)
    design.save(tmp_path / "m.nsd")
    from neuralstudio.core.design import load_design

    rebuilt = build_model(load_design(tmp_path / "m.nsd").graph)
    assert_same_model(model, rebuilt)


def test_keras_ops_on_tensors_are_refused_naming_the_layer():
    inp = keras.Input((4,))
    x = keras.layers.Dense(4, name="pre")(inp)
    model = keras.Model(inp, keras.layers.Dense(1)(x + 3.0))
    with pytest.raises(ModelImportError, match="keras.ops operation") as info:
        graph_from_model(model)
    assert isinstance(info.value, UserError)


def test_lambda_and_custom_layers_are_refused():
    inp = keras.Input((4,))
    lam = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2, name="twice")(inp))
    with pytest.raises(ModelImportError, match="twice is a Lambda layer"):
        graph_from_model(lam)

    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 2

    custom = keras.Model(inp, Scale(name="scale")(inp))
    with pytest.raises(ModelImportError, match="scale is a custom layer"):
        graph_from_model(custom)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(2)

        def call(self, x):
            return self.d(x)

    net = Net()
    net(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(UserError, match="subclassed"):
        graph_from_model(net)


@pytest.mark.backend_neutral  # the same import on more layers; the round trips above run on every backend
def test_mobilenet_v2_application_round_trip():
    """A real keras.applications architecture: 150+ layers, residual merges, ReLU6, depthwise convs."""
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=7)
    graph = graph_from_model(model)
    assert len(graph) == len(model.layers)
    assert_same_model(model, build_model(graph))


@pytest.mark.backend_neutral  # the same import on more layers; the round trips above run on every backend
def test_efficientnet_b0_application_round_trip():
    """Rescaling, Normalization, squeeze-excitation Multiply, Dropout called with training=False."""
    model = keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None, classes=5)
    assert_same_model(model, build_model(graph_from_model(model)), scale=255.0)


def test_output_that_is_a_second_output_is_refused():
    inp = keras.Input((5, 4))
    _whole, h, _c = keras.layers.LSTM(3, return_state=True, name="lstm")(inp)
    model = keras.Model(inp, h)
    with pytest.raises(ModelImportError, match="output 2 of lstm"):
        graph_from_model(model)


def test_shared_layer_whose_first_call_is_deeper_than_the_second():
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = keras.layers.Dense(4, name="shared")
    deep = keras.layers.Dense(4, name="d2")(keras.layers.Dense(4, name="d1")(a))
    model = keras.Model([a, b], keras.layers.Add(name="sum")([shared(deep), shared(b)]))
    round_trip(model)


def test_first_output_of_a_multi_output_layer_as_model_output():
    inp = keras.Input((5, 4), name="seq")
    whole, h, c = keras.layers.LSTM(3, return_state=True, name="lstm")(inp)
    model = keras.Model(inp, [keras.layers.Concatenate(name="cat")([h, c]), whole])
    round_trip(model)


def test_attention_with_query_and_value_slots():
    q = keras.Input((6, 8), name="q")
    v = keras.Input((5, 8), name="v")
    att = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="att")(q, v)
    model = keras.Model([q, v], keras.layers.GlobalAveragePooling1D(name="pool")(att))
    design = round_trip(model)
    g = design.graph
    assert [g.nodes[p].name for p in g.predecessors(g.node_by_name("att").id)] == ["q", "v"]


def test_augmentation_layers_import_although_keras_records_training_true():
    """Keras records an augmentation layer's signature default (training=True) on every plain call."""
    inp = keras.Input((12, 12, 1), name="image")
    x = keras.layers.RandomRotation(0.1, name="rotate")(inp)
    x = keras.layers.RandomFlip("horizontal", name="flip")(x)
    x = keras.layers.GaussianNoise(0.1, name="noise")(keras.layers.Flatten(name="flat")(x))
    model = keras.Model(inp, keras.layers.Dense(3, name="out")(x))
    rotate = next(e for e in model.get_config()["layers"] if e["name"] == "rotate")
    assert rotate["inbound_nodes"][0]["kwargs"] == {"training": True}  # what the bundled model holds
    design = round_trip(model)
    rebuilt = build_model(design.graph)
    again = next(e for e in rebuilt.get_config()["layers"] if e["name"] == "rotate")
    assert again["inbound_nodes"][0]["kwargs"] == {"training": True}  # the design's model records the same


def test_training_true_on_a_call_is_refused():
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dropout(0.5, name="mc_dropout")(inp, training=True))
    with pytest.raises(ModelImportError, match="mc_dropout is called with extra arguments"):
        graph_from_model(model)


def test_layout_graph_places_rows_by_longest_path():
    from neuralstudio.core.graph import Graph
    from neuralstudio.ml.importer import layout_graph

    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 4]})
    a = g.add_node("Dense", {"units": 2})
    b = g.add_node("Dense", {"units": 2})
    c = g.add_node("Dense", {"units": 2})
    s = g.add_node("Add")
    g.connect(i.id, a.id)
    g.connect(a.id, b.id)
    g.connect(i.id, c.id)
    g.connect(b.id, s.id)
    g.connect(c.id, s.id)
    layout_graph(g)
    y = {n: g.position(n)[1] for n in g.nodes}
    assert y[i.id] < y[a.id] == y[c.id] < y[b.id] < y[s.id]
    assert g.position(a.id)[0] != g.position(c.id)[0]


def test_a_keras_layer_name_longer_than_a_design_allows_is_shortened():
    from neuralstudio.core.graph import MAX_NAME_LENGTH

    long = "dense_" + "x" * 150
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name=long),
                              keras.layers.Dense(2, name=long + "y")])
    design = import_model(model)
    names = [n.name for n in design.graph]
    assert all(len(n) <= MAX_NAME_LENGTH for n in names) and len(set(names)) == len(names)
