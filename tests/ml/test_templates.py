"""Every built-in template loads, builds with no errors, lays out readably and trains for a step."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from neuralstudio.core.design import load_design
from neuralstudio.core.graph import INPUT_CLASS
from neuralstudio.core.paths import templates_dir
from neuralstudio.core.templates import (
    DEFAULT_TEMPLATE,
    TemplateError,
    list_templates,
    load_template,
    template_names,
)
from neuralstudio.core.training_settings import one_hot_targets
from neuralstudio.ml.builder import analyze
from neuralstudio.ml.data import adapt_inputs, load_dataset, one_hot
from neuralstudio.ml.losses import compile_arguments

EXPECTED = ["mnist-cnn", "nielsen-784-30-10", "nielsen-deep-sigmoid", "nielsen-deep-relu", "mlp", "lenet5",
            "cnn-augmented", "lstm-rows", "transformer-patches", "resnet-mini"]
ROOT = Path(__file__).resolve().parents[2]


def test_all_templates_are_installed_default_first():
    assert template_names() == EXPECTED
    infos = list_templates()
    assert [i.name for i in infos] == EXPECTED
    assert infos[0].is_default and DEFAULT_TEMPLATE == "mnist-cnn"
    for info in infos:
        assert info.path == templates_dir() / f"{info.name}.nsd" and info.path.is_file()
        assert info.title and len(info.description) > 200 and "\n" not in info.description
        assert info.summary.endswith(".") and len(info.summary) < len(info.description)


def test_unknown_template_lists_valid_names():
    with pytest.raises(TemplateError) as err:
        load_template("alexnet")
    assert "'alexnet'" in str(err.value) and "mnist-cnn" in str(err.value) and "resnet-mini" in str(err.value)


def test_load_template_returns_independent_copies():
    a = load_template("mlp")
    a.graph.rename(a.graph.inputs()[0], "changed")
    b = load_template("mlp")
    assert b.graph.nodes[b.graph.inputs()[0]].name == "image"


def test_files_are_what_the_generator_writes():
    """The .nsd files are regenerable from tools/make_templates.py (and it checks every one builds)."""
    spec = importlib.util.spec_from_file_location("make_templates", ROOT / "tools" / "make_templates.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--check"]) == 0


SLOW = {"cnn-augmented", "resnet-mini", "transformer-patches"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in EXPECTED])
def test_template_builds_lays_out_and_trains_a_step(name):
    import keras

    design = load_template(name)
    assert design.data == {"source": "mnist-sample"}
    design.training.validate()
    g = design.graph
    # a position for every node; every connection runs downwards; nothing overlaps
    assert set(g.positions) == set(g.nodes)
    for e in g.edges:
        assert g.position(e.dst)[1] > g.position(e.src)[1], f"{g.nodes[e.src].name} -> {g.nodes[e.dst].name}"
    spots = list(g.positions.values())
    assert len(set(spots)) == len(spots)

    result = analyze(g)
    assert [p.message for p in result.problems if p.severity == "error"] == []
    model = result.model
    assert model is not None and len(model.outputs) == 1 and model.outputs[0].shape[-1] == 10

    keras.utils.set_random_seed(0)
    ds = load_dataset("mnist-sample")
    x = adapt_inputs(ds.x_train[:32], tuple(model.inputs[0].shape[1:]))
    y = ds.y_train[:32]
    t = design.training
    if one_hot_targets(t.loss, 10):  # as the trainer does
        y = one_hot(y, ds.num_classes)
    optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[t.optimizer](t.learning_rate)
    model.compile(optimizer=optimizer, **compile_arguments(t.loss, 10))
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = float(model.train_on_batch(x, y))
    assert math.isfinite(loss)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    probs = np.asarray(model.predict_on_batch(x[:4]))
    assert probs.shape == (4, 10) and np.all(np.isfinite(probs))


def test_nielsen_has_nielsens_hyperparameters():
    t = load_template("nielsen-784-30-10").training
    assert (t.optimizer, t.learning_rate, t.batch_size, t.epochs, t.loss) == (
        "sgd", 3.0, 10, 30, "quadratic")


def test_transformer_attention_takes_query_and_value_from_the_norm():
    g = load_template("transformer-patches").graph
    att = g.node_by_name("attention")
    assert att.class_name == "MultiHeadAttention"
    assert att.config["num_heads"] == 4 and att.config["key_dim"] == 16
    slots = [(e.slot, g.nodes[e.src].name) for e in g.in_edges(att.id)]
    assert slots == [(0, "norm_1"), (1, "norm_1")]
    shapes = analyze(g, build=False).infos
    assert shapes[g.node_by_name("tokens").id].output_shape == (None, 49, 64)


def test_resnet_blocks_add_a_projected_skip_where_channels_change():
    g = load_template("resnet-mini").graph
    adds = [n for n in g if n.class_name == "Add"]
    assert len(adds) == 3
    for add in adds:
        srcs = [g.nodes[s] for s in g.predecessors(add.id)]
        assert len(srcs) == 2
    assert g.node_by_name("block1_project") is None  # 32 -> 32: identity skip
    for tag, filters in (("block2", 64), ("block3", 128)):
        proj = g.node_by_name(f"{tag}_project")
        assert proj.config["kernel_size"] == [1, 1] and proj.config["filters"] == filters


def test_augmentation_is_off_at_inference():
    design = load_template("cnn-augmented")
    names = [n.class_name for n in design.graph]
    assert {"RandomRotation", "RandomTranslation", "RandomZoom", "BatchNormalization"} <= set(names)
    model = analyze(design.graph).model
    x = adapt_inputs(load_dataset().x_test[:8], tuple(model.inputs[0].shape[1:]))
    a = np.asarray(model(x, training=False))
    b = np.asarray(model(x, training=False))
    np.testing.assert_array_equal(a, b)
    aug = model.get_layer("rotate")
    assert not np.array_equal(np.asarray(aug(x, training=True)), x)


def test_template_file_is_canonical_design_json():
    path = templates_dir() / "mnist-cnn.nsd"
    design = load_design(path)
    design.id = ""  # a template file has no id: each copy gets one of its own (load_design derives one)
    assert path.read_text(encoding="utf-8") == design.dumps()
    inputs = [n for n in design.graph if n.class_name == INPUT_CLASS]
    assert [n.config["batch_shape"] for n in inputs] == [[None, 28, 28, 1]]
