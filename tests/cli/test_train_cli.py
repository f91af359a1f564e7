"""`neuralstudio train`, `evaluate`, `runs` and `devices` end to end, in process, on files the test writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralstudio.cli import main
from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from neuralstudio.ml.data import load_dataset

    folder = tmp_path_factory.mktemp("cli")
    ds = load_dataset("mnist-sample")
    np.savez(folder / "slice.npz", x_train=ds.x_train[:512], y_train=ds.y_train[:512],
             x_test=ds.x_test[:200], y_test=ds.y_test[:200])
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]})
    f = g.add_node("Flatten", {})
    h = g.add_node("Dense", {"units": 30, "activation": "sigmoid"})
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    g.connect(i.id, f.id)
    g.connect(f.id, h.id)
    g.connect(h.id, o.id)
    Design(graph=g, name="cli-net", training=TrainingSettings(epochs=3, batch_size=64, learning_rate=0.01)).save(
        folder / "net.nsd")
    return folder


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_train_evaluate_runs_and_compare(files, capsys):
    runs = str(files / "runs")
    common = [str(files / "net.nsd"), "--data", str(files / "slice.npz"), "--runs", runs, "--epochs", "1"]
    assert main(["train", *common, "--json", "--out", str(files / "m.keras"),
                 "--history", str(files / "h.json"), "--validation-split", "0.25", "--seed", "1"]) == 0
    a = _last_json(capsys.readouterr().out)
    for key in ("test_accuracy", "test_loss", "val_accuracy", "epochs_run", "train_samples", "batch_size",
                "seconds", "samples_per_second", "model_path", "run_id"):
        assert key in a, key
    assert a["epochs_run"] == 1 and a["train_samples"] == 384 and a["batch_size"] == 64
    assert a["model_path"] == str(files / "m.keras") and a["test_accuracy"] > 0.2 and a["samples_per_second"] > 0
    history = json.loads((files / "h.json").read_text())
    assert len(history["history"]["loss"]) == 1 and history["settings"]["learning_rate"] == 0.01

    # the human-readable form, with overrides
    assert main(["train", *common, "--optimizer", "sgd", "--learning-rate", "0.5", "--batch-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "test        loss" in out and "run: " in out
    b_id = out.split("run: ")[1].split()[0]

    assert main(["evaluate", str(files / "m.keras"), "--data", str(files / "slice.npz"), "--json"]) == 0
    ev = _last_json(capsys.readouterr().out)
    assert ev["accuracy"] == pytest.approx(a["test_accuracy"], abs=1e-6)
    assert ev["loss"] == pytest.approx(a["test_loss"], rel=1e-4)
    assert np.array(ev["confusion"]).shape == (10, 10) and np.array(ev["confusion"]).sum() == 200
    assert main(["evaluate", str(files / "m.keras"), "--data", str(files / "slice.npz")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "rows: true class" in out

    assert main(["runs", "--runs", runs]) == 0
    out = capsys.readouterr().out
    assert a["run_id"] in out and b_id in out and "2 run(s)" in out
    assert main(["runs", "--runs", runs, "compare", a["run_id"], b_id]) == 0
    out = capsys.readouterr().out
    assert "optimizer" in out and "adam" in out and "sgd" in out and "learning_rate" in out
    assert "test_accuracy" in out
    assert main(["runs", "--runs", runs, "show", "latest"]) == 0
    assert b_id in capsys.readouterr().out


def test_train_errors_are_one_line_messages(files, capsys):
    assert main(["train", str(files / "missing.nsd")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", str(files / "net.nsd"), "--learning-rate", "-1", "--runs", str(files / "r2")]) == 1
    assert "learning_rate" in capsys.readouterr().err
    assert main(["train", str(files / "net.nsd"), "--data", str(files / "slice.npz"), "--device", "gpu:7",
                 "--runs", str(files / "r2")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "GPU" in err and "Traceback" not in err
    assert main(["runs", "--runs", str(files / "r2"), "compare", "nope", "nada"]) == 1
    assert "No run 'nope'" in capsys.readouterr().err


def test_devices_lists_the_cpu_and_explains_the_gpu(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "CPU:0" in out
    assert "GPU" in out
