"""``neuralstudio check``: tables, JSON, exit codes and plain errors on real files."""

import json

import keras
import pytest

from neuralstudio.cli import main
from neuralstudio.core.design import Design

pytestmark = pytest.mark.backend_neutral  # the shape analysis


def _design(tmp_path, name, layers, input_shape=(28, 28, 1)):
    d = Design()
    g = d.graph
    prev = g.add_node("InputLayer", {"batch_shape": [None, *input_shape]}).id
    for cls, cfg in layers:
        n = g.add_node(cls, cfg).id
        g.connect(prev, n)
        prev = n
    path = tmp_path / name
    d.save(path)
    return path, g


GOOD = [("Conv2D", {"filters": 8, "kernel_size": [3, 3], "activation": "relu"}), ("BatchNormalization", {}),
        ("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"})]


def test_check_prints_every_layer_and_the_totals(tmp_path, capsys):
    path, _ = _design(tmp_path, "good.nsd", GOOD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ["input_layer", "InputLayer", "(None, 28, 28, 1)", "conv2d", "(None, 26, 26, 8)", "80",
                 "batch_normalization", "flatten", "(None, 5408)", "dense", "54,090",
                 "Total params:         54,202", "Trainable params:     54,186", "Non-trainable params: 16",
                 "Weights memory:       211.7 KiB", "good.nsd is OK."]:
        assert text in out, text


def test_check_json(tmp_path, capsys):
    path, _ = _design(tmp_path, "good.nsd", GOOD)
    assert main(["check", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in data["layers"]] == ["input_layer", "conv2d", "batch_normalization",
                                                       "flatten", "dense"]
    assert data["layers"][1] == {"name": "conv2d", "class_name": "Conv2D", "output_shape": "(None, 26, 26, 8)",
                                 "params": 80}
    assert (data["total_params"], data["trainable_params"], data["non_trainable_params"]) == (54202, 54186, 16)
    assert data["weights_bytes"] == 54202 * 4
    assert data["problems"] == [] and data["ok"] is True


def test_invalid_design_exits_1_and_lists_every_problem(tmp_path, capsys):
    d = Design()
    g = d.graph
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    for cls, cfg in [("Conv2D", {"filters": 2, "kernel_size": 3}), ("Dense", {"units": 10**6})]:
        g.connect(i.id, g.add_node(cls, cfg).id)
    path = tmp_path / "bad.nsd"
    d.save(path)
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "conv2d (Conv2D) needs an image" in captured.out
    assert "dense (Dense) would have 785,000,000 parameters" in captured.out
    assert "[fix: Insert Reshape to (28, 28, 1) before it]" in captured.out
    assert "2 errors" in captured.out and "cannot be built" in captured.out
    assert main(["check", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert {(p["layer"], p["severity"]) for p in data["problems"]} == {("conv2d", "error"), ("dense", "error")}


def test_wrong_output_for_the_data_is_a_warning_naming_it(tmp_path, capsys):
    path, _ = _design(tmp_path, "out.nsd", [("Flatten", {}), ("Dense", {"units": 5, "activation": "softmax"})])
    assert main(["check", str(path)]) == 0  # the design builds: the mismatch is with its data set, a warning
    out = capsys.readouterr().out
    assert "warning: The output layer has 5 units but MNIST sample has 10 classes" in out
    assert "0 errors, 1 warning" in out and "out.nsd is OK" in out


def test_check_a_keras_model_file(tmp_path, capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
                              keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2, name="out")])
    path = tmp_path / "m.keras"
    model.save(path)
    assert main(["check", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["class_name"], r["output_shape"], r["params"]) for r in data["layers"]] == [
        ("hidden", "Dense", "(None, 3)", 15), ("bn", "BatchNormalization", "(None, 3)", 12),
        ("out", "Dense", "(None, 2)", 8)]
    assert data["total_params"] == model.count_params() == 35
    assert data["non_trainable_params"] == 6
    assert main(["check", str(path)]) == 0
    assert "Total params:         35" in capsys.readouterr().out


def test_lambda_model_and_broken_files_give_one_line_errors(tmp_path, capsys):
    inp = keras.Input((2,))
    model = keras.Model(inp, keras.layers.Lambda(lambda x: x * 2, name="double")(inp))
    lam = tmp_path / "lam.keras"
    model.save(lam)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    notjson = tmp_path / "x.nsd"
    notjson.write_text("{nope")
    for path, expected in [(lam, "Lambda"), (broken, "damaged"), (tmp_path / "missing.nsd", "does not exist"),
                           (notjson, "not valid JSON")]:
        assert main(["check", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["check"], ["check", "--bogus", "x.nsd"]])
def test_usage_errors(args):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2


def test_summary_helpers():
    from neuralstudio.ml.summary import classes_of, human_bytes

    assert classes_of({"source": "mnist-sample"}) == 10
    assert classes_of({"source": "folder:/x", "num_classes": 3}) == 3
    assert classes_of({"source": "csv:/data.csv"}) is None
    assert human_bytes(512) == "512 bytes" and human_bytes(1536) == "1.5 KiB" and human_bytes(3 * 2**30) == "3.0 GiB"
