"""Two `neuralstudio sweep` worker processes share one experiment through a real PostgreSQL server.

The server is a private one the test starts from Debian's package (tests/postgres_server.py); without
PostgreSQL installed the test is skipped, except in CI (.ci/run requires it).
"""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from postgres_server import postgres_database_url, postgres_url  # noqa: F401 - pytest fixtures

from neuralstudio.cli import main
from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.runs import RunsStore
from neuralstudio.core.training_settings import TrainingSettings

pytestmark = pytest.mark.backend_neutral  # Optuna's storage shared by workers


@pytest.fixture
def net(tmp_path):
    from neuralstudio.ml.data import load_dataset

    ds = load_dataset("mnist-sample")
    np.savez(tmp_path / "slice.npz", x_train=ds.x_train[:300], y_train=ds.y_train[:300],
             x_test=ds.x_test[:60], y_test=ds.y_test[:60])
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]})
    f = g.add_node("Flatten", {})
    h = g.add_node("Dense", {"units": 8, "activation": "relu"}, name="hidden")
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="out")
    g.connect(i.id, f.id)
    g.connect(f.id, h.id)
    g.connect(h.id, o.id)
    Design(graph=g, name="pg-net", training=TrainingSettings(epochs=1, batch_size=50, optimizer="sgd")).save(
        tmp_path / "net.nsd")
    return tmp_path


def test_two_workers_record_every_trial_once_and_lose_none(net, postgres_database_url, capsys):  # noqa: F811
    runs = net / "runs"
    args = ["sweep", str(net / "net.nsd"), "--data", str(net / "slice.npz"), "--param",
            "learning_rate=0.01,0.03,0.1,0.3", "--param", "hidden.units=4,8", "--strategy", "grid",
            "--study", "shared", "--storage", postgres_database_url, "--workers", "2", "--runs", str(runs), "--json"]
    assert main(args) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    study = optuna.load_study(study_name="shared", storage=postgres_database_url)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # numbered once each, no gap
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 8 and len(trials) == 8  # the whole grid, each point once, nothing lost
    assert {(t.params["learning_rate"], t.params["hidden.units"]) for t in done} == {
        (lr, u) for lr in (0.01, 0.03, 0.1, 0.3) for u in (4, 8)}
    assert len({t.user_attrs["run_id"] for t in done}) == 8
    assert {r.id for r in RunsStore(runs).list()} == {t.user_attrs["run_id"] for t in done}
    assert len({t.user_attrs.get("worker") for t in done}) == 2  # both workers trained
    assert len(shown["trials"]) == 8 and shown["counts"] == {"complete": 8}  # the results show them all
