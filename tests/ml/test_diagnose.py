"""The problem finder: plain messages naming the layer, and fixes that really repair the design."""

import pytest

from neuralstudio.core.fixes import apply_fix
from neuralstudio.core.graph import Graph
from neuralstudio.ml import diagnose
from neuralstudio.ml.builder import analyze

pytestmark = pytest.mark.backend_neutral  # the problem finder reads the shape analysis


def chain(input_shape, *layers):
    """Input -> layers in a line; returns the graph and the node ids (input first)."""
    g = Graph()
    ids = [g.add_node("InputLayer", {"batch_shape": [None, *input_shape]}).id]
    for cls, cfg in layers:
        n = g.add_node(cls, cfg)
        g.connect(ids[-1], n.id)
        ids.append(n.id)
    return g, ids


def only_error(result):
    errors = result.errors
    assert len(errors) == 1, [p.message for p in result.problems]
    return errors[0]


def fix_and_rebuild(g, problem):
    apply_fix(g, problem)
    result = analyze(g)
    assert result.ok, [p.message for p in result.problems]
    return result


def test_dense_on_an_image_keeps_its_wording_and_fix():
    g, ids = chain((28, 28, 1), ("Conv2D", {"filters": 4, "kernel_size": [3, 3]}),
                   ("Dense", {"units": 10, "activation": "softmax"}))
    p = only_error(analyze(g))
    assert p.message == ("dense (Dense) receives a 4-D tensor (None, 26, 26, 4): insert a Flatten or "
                         "GlobalAveragePooling2D before it.")
    assert p.node_id == ids[2] and p.fix.class_name == "Flatten"
    result = fix_and_rebuild(g, p)
    assert tuple(result.model.output.shape) == (None, 10)


def test_conv2d_on_flat_mnist_suggests_reshape_that_works():
    g, ids = chain((784,), ("Conv2D", {"filters": 8, "kernel_size": [3, 3]}), ("Flatten", {}),
                   ("Dense", {"units": 10, "activation": "softmax"}))
    p = only_error(analyze(g))
    assert p.message.startswith("conv2d (Conv2D) needs an image (batch, height, width, channels) but receives "
                                "a 2-D tensor (None, 784)")
    assert p.fix.kind == "insert_before" and p.fix.config == {"target_shape": [28, 28, 1]}
    result = fix_and_rebuild(g, p)
    assert result.infos[ids[1]].output_shape == (None, 26, 26, 8)


def test_maxpooling_on_flat_input_and_a_3_channel_guess():
    g, _ids = chain((784,), ("MaxPooling2D", {}))
    p = only_error(analyze(g))
    assert "max_pooling2d (MaxPooling2D)" in p.message and "(28, 28, 1)" in p.message
    g2, _ = chain((3072,), ("Conv2D", {"filters": 2, "kernel_size": 3}))
    assert only_error(analyze(g2)).fix.config == {"target_shape": [32, 32, 3]}


def test_lstm_on_an_image_reshapes_rows_into_steps():
    g, ids = chain((28, 28, 1), ("LSTM", {"units": 16}), ("Dense", {"units": 10, "activation": "softmax"}))
    p = only_error(analyze(g))
    assert "lstm (LSTM) needs a sequence (batch, steps, features)" in p.message
    assert "(None, 28, 28, 1)" in p.message and p.fix.config == {"target_shape": [28, 28]}
    result = fix_and_rebuild(g, p)
    assert result.infos[ids[1]].output_shape == (None, 16)


def test_too_many_poolings_is_explained_and_fixed_with_same_padding():
    g, ids = chain((4, 4, 1), ("MaxPooling2D", {}), ("MaxPooling2D", {}), ("MaxPooling2D", {}))
    p = only_error(analyze(g))
    assert p.node_id == ids[3]
    assert "max_pooling2d_2 (MaxPooling2D) receives (None, 1, 1, 1), smaller than its 2x2 pooling window" \
        in p.message
    result = fix_and_rebuild(g, p)
    assert result.infos[ids[3]].output_shape == (None, 1, 1, 1)


def _two_branches(a_cfg, b_cfg, merge, merge_cfg=None, shape=(784,)):
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, *shape]})
    a = g.add_node(a_cfg[0], a_cfg[1])
    b = g.add_node(b_cfg[0], b_cfg[1])
    m = g.add_node(merge, merge_cfg or {})
    g.connect(i.id, a.id)
    g.connect(i.id, b.id)
    g.connect(a.id, m.id)
    g.connect(b.id, m.id)
    return g, m


def test_add_with_different_shapes_names_both_layers_and_shapes():
    g, m = _two_branches(("Dense", {"units": 64}), ("Dense", {"units": 32}), "Add")
    p = only_error(analyze(g))
    assert p.node_id == m.id
    assert p.message.startswith("add (Add) adds its inputs element by element")
    assert "dense (Dense) gives (None, 64)" in p.message and "dense_1 (Dense) gives (None, 32)" in p.message


def test_concatenate_mismatches():
    g, _m = _two_branches(("Conv2D", {"filters": 4, "kernel_size": 3}),
                          ("Conv2D", {"filters": 4, "kernel_size": 5}), "Concatenate", shape=(28, 28, 1))
    p = only_error(analyze(g))
    assert "concatenate (Concatenate) joins its inputs along axis -1" in p.message
    assert "(None, 26, 26, 4)" in p.message and "(None, 24, 24, 4)" in p.message

    g2 = Graph()
    i = g2.add_node("InputLayer", {"batch_shape": [None, 28, 28, 1]})
    conv = g2.add_node("Conv2D", {"filters": 2, "kernel_size": 3})
    flat = g2.add_node("Flatten", {})
    dense = g2.add_node("Dense", {"units": 8})
    cat = g2.add_node("Concatenate", {})
    g2.connect(i.id, conv.id)
    g2.connect(i.id, flat.id)
    g2.connect(flat.id, dense.id)
    g2.connect(dense.id, cat.id)
    g2.connect(conv.id, cat.id)
    p2 = only_error(analyze(g2))
    assert "(None, 8) (2-D)" in p2.message and "(None, 26, 26, 2) (4-D)" in p2.message
    result = fix_and_rebuild(g2, p2)
    assert result.infos[cat.id].output_shape == (None, 8 + 26 * 26 * 2)

    g3, _ = _two_branches(("Dense", {"units": 4}), ("Dense", {"units": 4}), "Concatenate", {"axis": 3})
    p3 = only_error(analyze(g3))
    assert "axis 3" in p3.message and p3.fix.config == {"axis": -1}


def test_every_independent_problem_is_reported():
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    bad = [g.add_node("Conv2D", {"filters": 2, "kernel_size": 3}), g.add_node("LSTM", {"units": 3}),
           g.add_node("Dense", {"units": 10**6})]
    after = g.add_node("Dense", {"units": 3})  # downstream of a failure: not reported twice
    for n in bad:
        g.connect(i.id, n.id)
    g.connect(bad[0].id, after.id)
    orphan = g.add_node("Dense", {"units": 3})
    result = analyze(g)
    ids = [p.node_id for p in result.errors]
    assert set(ids) == {bad[0].id, bad[1].id, bad[2].id, orphan.id}
    assert all(p.message.startswith(tuple(f"{n.name} ({n.class_name})" for n in [*bad, orphan]))
               for p in result.errors)


def test_input_without_shape_has_a_fix():
    g = Graph()
    i = g.add_node("InputLayer", {})
    d = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    f = g.add_node("Flatten", {})
    g.connect(i.id, f.id)
    g.connect(f.id, d.id)
    p = only_error(analyze(g))
    assert p.node_id == i.id and "input_layer (InputLayer) needs a shape" in p.message
    fix_and_rebuild(g, p)


def test_no_input_layer_fix_adds_one():
    g = Graph()
    f = g.add_node("Flatten", {})
    d = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    g.connect(f.id, d.id)
    p = next(p for p in analyze(g).errors if p.fix is not None)
    fix_and_rebuild(g, p)


def test_output_checks_for_a_classifier():
    g, ids = chain((784,), ("Dense", {"units": 64, "activation": "relu"}))
    # A design is valid on its own: without a data set its output size is not checked, nor assumed to be 10
    # (only the relu output, which the loss cannot read as probabilities, is a warning).
    assert [p.message for p in analyze(g).problems if "classes" in p.message] == []
    p = analyze(g, num_classes=10, data_name="MNIST sample").problems
    assert len(p) == 1 and p[0].severity == "warning"
    assert p[0].message.startswith("The output layer has 64 units but MNIST sample has 10 classes: give dense (Dense) "
                                   "10 units (softmax)")
    other = analyze(g, num_classes=3).problems
    assert other[0].severity == "warning" and "but the data has 3 classes" in other[0].message
    assert analyze(g, loss="mse", num_classes=10).problems == []
    fix_and_rebuild(g, p[0])
    assert g.node(ids[1]).config["units"] == 10 and g.node(ids[1]).config["activation"] == "softmax"

    g2, _ = chain((784,), ("Dense", {"units": 10, "activation": "relu"}))
    w = analyze(g2, loss="sparse_categorical_crossentropy").problems
    assert len(w) == 1 and w[0].severity == "warning"
    assert "activation relu, but the loss sparse_categorical_crossentropy expects probabilities" in w[0].message
    fix_and_rebuild(g2, w[0])
    assert analyze(g2).problems == []

    g3, _ = chain((784,), ("Dense", {"units": 10}), ("Softmax", {}))
    assert analyze(g3).problems == []


def test_refused_settings_are_said_in_words_with_a_reset():
    g, ids = chain((10,), ("Dense", {"units": 4, "activation": "relux"}))
    p = only_error(analyze(g, loss="mse"))
    assert p.message.startswith("dense (Dense): Keras has no activation called 'relux': use one of linear, relu")
    assert only_error(analyze(g, build=False, loss="mse")).message == p.message
    assert "deserializing" not in p.message
    fix_and_rebuild(g, p)
    assert g.node(ids[1]).config["activation"] is None

    g2, ids2 = chain((10,), ("Dropout", {"rate": 1.5}))
    p2 = only_error(analyze(g2, loss="mse"))
    assert p2.message == "dropout (Dropout): rate must be below 1 (it is a fraction: 0.25 drops a quarter)."
    fix_and_rebuild(g2, p2)
    assert g2.node(ids2[1]).config["rate"] == 0.25

    g3, _ = chain((10,), ("Dense", {"units": 4, "bogus": 1}))
    assert only_error(analyze(g3, loss="mse")).message == \
        "dense (Dense) has a setting 'bogus' that Keras's Dense does not have: remove it."


def test_reshape_with_the_wrong_size_is_explained():
    g, _ = chain((784,), ("Reshape", {"target_shape": [27, 27, 1]}))
    p = only_error(analyze(g, loss="mse"))
    assert p.message.startswith("reshape (Reshape)") and "(None, 784)" in p.message
    assert "Traceback" not in p.message


def test_short_strips_keras_decoration():
    exc = ValueError("Exception encountered when calling X.call().\n\n\x1b[1mBad size.\x1b[0m\n\n"
                     "Arguments received by X.call():\n  • args=(...)")
    assert diagnose.short(exc) == "In X.call(). Bad size"


@pytest.mark.parametrize(("cls", "rank"), [("Conv1D", 3), ("Conv2D", 4), ("Conv3D", 5), ("MaxPooling2D", 4),
                                           ("GlobalAveragePooling2D", 4), ("LSTM", 3), ("ConvLSTM2D", 5),
                                           ("Dense", None), ("Conv2DTranspose", 4)])
def test_expected_rank(cls, rank):
    assert diagnose.expected_rank(cls) == rank
