"""`neuralstudio sweep` end to end, in process, on a slice of the MNIST sample: define, run, show, list, join."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralstudio.cli import main
from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.training_settings import TrainingSettings

#: the sweep's options and output (a trial is a Trainer run, tested on every backend)
pytestmark = pytest.mark.backend_neutral


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from neuralstudio.ml.data import load_dataset

    folder = tmp_path_factory.mktemp("sweep")
    ds = load_dataset("mnist-sample")
    np.savez(folder / "slice.npz", x_train=ds.x_train[:400], y_train=ds.y_train[:400],
             x_test=ds.x_test[:100], y_test=ds.y_test[:100])
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]})
    f = g.add_node("Flatten", {})
    h = g.add_node("Dense", {"units": 16, "activation": "sigmoid"}, name="hidden")
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="out")
    g.connect(i.id, f.id)
    g.connect(f.id, h.id)
    g.connect(h.id, o.id)
    Design(graph=g, name="sweep-net", training=TrainingSettings(epochs=1, batch_size=32, optimizer="sgd",
                                                                learning_rate=0.1)).save(folder / "net.nsd")
    return folder


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_a_grid_sweep_prints_its_table_and_sentence_and_can_be_shown_and_listed(files, tmp_path, capsys):
    storage = str(tmp_path / "s.journal")
    args = ["sweep", str(files / "net.nsd"), "--data", str(files / "slice.npz"), "--param", "learning_rate=0.01,1",
            "--param", "Dense[hidden].activation=relu,sigmoid", "--strategy", "grid", "--study", "cli",
            "--storage", storage, "--runs", str(tmp_path / "runs")]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "4 trial(s)" in err and "memory per trial" in err  # the plan before the first trial
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["trial", "learning_rate", "Dense[hidden].activation"]
    assert sum(line.endswith("finished") for line in lines) == 4
    assert any(line.startswith("best: trial") for line in lines)
    assert "mattered" in lines[-1]
    assert main(["sweep", "show", "cli", "--storage", storage, "--json"]) == 0
    shown = _last_json(capsys.readouterr().out)
    assert shown["counts"] == {"complete": 4} and shown["best"]["values"]["learning_rate"] == 1
    assert main(["sweep", "list", "--storage", storage, "--json"]) == 0
    assert [s["name"] for s in _last_json(capsys.readouterr().out)] == ["cli"]
    assert main(["runs", "--runs", str(tmp_path / "runs"), "--json"]) == 0
    assert len(_last_json(capsys.readouterr().out)) == 4  # each trial is an ordinary run


def test_a_worker_joins_an_experiment_by_name_and_runs_what_is_left(files, tmp_path, capsys):
    storage = str(tmp_path / "s.journal")
    base = ["sweep", str(files / "net.nsd"), "--data", str(files / "slice.npz"), "--param",
            "learning_rate=log:0.01:1", "--strategy", "random", "--trials", "2", "--study", "join", "--storage",
            storage, "--json"]
    assert main([*base]) == 0
    assert len(_last_json(capsys.readouterr().out)["trials"]) == 2
    # the budget is the study's: a joining worker finds it spent and runs nothing more
    assert main(["sweep", "--study", "join", "--storage", storage, "--json"]) == 0
    assert len(_last_json(capsys.readouterr().out)["trials"]) == 2


@pytest.mark.parametrize(("args", "says"), [
    (["--param", "learning_rate"], "NAME=VALUES"),
    (["--param", "dense_9.units=1,2"], "no layer of that name"),
    ([], "Nothing varies"),
    (["--param", "learning_rate=1,2", "--timeout", "soon"], "90s, 20m or 1h"),
    (["--param", "learning_rate=1,2", "--workers", "0"], "worker processes"),
])
def test_bad_definitions_end_in_one_error_line(files, tmp_path, capsys, args, says):
    assert main(["sweep", str(files / "net.nsd"), "--storage", str(tmp_path / "s.journal"), *args]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_show_of_an_unknown_experiment_lists_the_known_ones(tmp_path, capsys):
    assert main(["sweep", "show", "nope", "--storage", str(tmp_path / "s.journal")]) == 1
    assert "No experiment called 'nope'" in capsys.readouterr().err
    assert main(["sweep", "show"]) == 1
    assert "needs the experiment's name" in capsys.readouterr().err
