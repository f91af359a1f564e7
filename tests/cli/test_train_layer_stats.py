"""`neuralstudio train --layer-stats`: the per-layer table after each epoch, and `layer_stats` in the JSON result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralstudio.cli import main
from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings

KEYS = {"layer", "class_name", "activation", "grad_norm", "bias_grad_norm", "bias_grad_rms", "update_ratio",
        "weight_hist", "activation_hist", "dead_fraction", "saturated_fraction", "epoch", "batch"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from neuralstudio.ml.data import load_dataset

    folder = tmp_path_factory.mktemp("layer-stats")
    ds = load_dataset("mnist-sample")
    np.savez(folder / "slice.npz", x_train=ds.x_train[:384], y_train=ds.y_train[:384],
             x_test=ds.x_test[:100], y_test=ds.y_test[:100])
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}, name="image")
    f = g.add_node("Flatten", {}, name="flatten")
    h = g.add_node("Dense", {"units": 16, "activation": "tanh"}, name="hidden")
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="digit")
    for a, b in ((i, f), (f, h), (h, o)):
        g.connect(a.id, b.id)
    Design(graph=g, name="stats-net", training=TrainingSettings(epochs=2, batch_size=64, learning_rate=0.01,
                                                                validation_split=0.0)).save(folder / "net.nsd")
    return folder


def _args(files, *more):
    return ["train", str(files / "net.nsd"), "--data", str(files / "slice.npz"), "--runs", str(files / "runs"), *more]


def test_json_result_holds_the_layer_stats_of_every_epoch_and_the_tables_go_to_stderr(files, capsys):
    assert main(_args(files, "--json", "--layer-stats")) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    stats = result["layer_stats"]
    assert len(stats) == 2
    for epoch, snap in enumerate(stats):
        assert [s["layer"] for s in snap] == ["hidden", "digit"]  # the layers with trainable weights
        for s in snap:
            assert set(s) == KEYS and s["epoch"] == epoch
            assert isinstance(s["grad_norm"], float) and s["grad_norm"] > 0
            # Nielsen's ||delta||, and the same per unit (16 hidden units, 10 digits): what the sentence compares
            assert isinstance(s["bias_grad_norm"], float) and s["bias_grad_norm"] > 0
            units = 16 if s["layer"] == "hidden" else 10
            assert s["bias_grad_rms"] == pytest.approx(s["bias_grad_norm"] / units ** 0.5)
            assert set(s["weight_hist"]) == {"counts", "edges"}
        assert snap[0]["activation"] == "tanh" and 0 <= snap[0]["saturated_fraction"] <= 1
    # the tables, one per epoch, on stderr (stdout stays one JSON object)
    assert captured.err.count("Layer statistics after epoch") == 2
    assert "Layer statistics" not in captured.out


def test_the_table_is_printed_after_each_epoch_and_nothing_without_the_flag(files, capsys):
    assert main(_args(files, "--epochs", "1", "--layer-stats")) == 0
    out = capsys.readouterr().out
    table = out[out.index("Layer statistics after epoch 1:"):].splitlines()
    assert table[1].split()[:5] == ["layer", "type", "grad/unit", "grad", "norm"]
    assert table[2].split()[:3] == ["hidden", "Dense", "(tanh)"] and table[3].split()[0] == "digit"
    per_unit = [float(table[k].split()[3]) for k in (2, 3)]  # the per-unit column is filled for both layers
    assert all(v > 0 for v in per_unit)
    assert table[4].endswith(".")  # the sentence that reads the table
    assert "test        loss" in out

    assert main(_args(files, "--epochs", "1", "--json")) == 0
    captured = capsys.readouterr()
    assert "layer_stats" not in json.loads(captured.out.strip().splitlines()[-1])
    assert "Layer statistics" not in captured.out + captured.err


@pytest.mark.slow
def test_the_deep_sigmoid_template_says_its_first_layer_learns_two_orders_of_magnitude_slower(files, capsys):
    """The lesson as a learner runs it from the terminal: the bundled template, the table, the sentence, the JSON."""
    from neuralstudio.core.templates import template_path

    assert main(["train", str(template_path("nielsen-deep-sigmoid")), "--data", str(files / "slice.npz"),
                 "--runs", str(files / "runs"), "--epochs", "1", "--seed", "1", "--validation-split", "0",
                 "--layer-stats", "--json"]) == 0
    captured = capsys.readouterr()
    (snap,) = json.loads(captured.out.strip().splitlines()[-1])["layer_stats"]
    ratio = snap[-1]["bias_grad_rms"] / snap[0]["bias_grad_rms"]
    assert ratio >= 100, ratio
    assert f"The first layer's gradients are {ratio:,.0f}x smaller than the last's: it learns slowly" in captured.err
