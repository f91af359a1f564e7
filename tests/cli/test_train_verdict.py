"""`neuralstudio train` ends with the Train window's sentence on how the run went: one line."""

from __future__ import annotations

import numpy as np
import pytest
from support import image_mlp

from neuralstudio.cli import main

pytestmark = pytest.mark.backend_neutral  # the end-of-run sentence from the run's figures


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from neuralstudio.ml.data import load_dataset

    folder = tmp_path_factory.mktemp("verdict")
    ds = load_dataset("mnist-sample")
    np.savez(folder / "slice.npz", x_train=ds.x_train[:600], y_train=ds.y_train[:600],
             x_test=ds.x_test[:100], y_test=ds.y_test[:100])
    image_mlp("verdict-net", epochs=2).save(folder / "net.nsd")
    return folder


def test_a_run_at_learning_rate_100_ends_saying_why_it_failed(files, capsys):
    args = ["train", str(files / "net.nsd"), "--data", str(files / "slice.npz"), "--runs", str(files / "runs"),
            "--optimizer", "sgd", "--learning-rate", "100"]
    code = main(args)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    if code == 1:  # the loss became NaN on this machine
        assert last.startswith("A loss that becomes NaN or infinite means training diverged")
    else:
        assert "training diverged: the learning rate 100 is too high; try 10 (10x smaller)" in last
        assert "10% is what guessing gets with 10 classes" in last
    assert "Next: draw digits" not in last


def test_the_last_line_is_the_diagnosis_of_the_recorded_run(files, capsys):
    """The same sentences as the Train window's, read back from the run's record; the next step only when it
    went well (which of the outcomes a tiny run gets is for tests/core/test_run_diagnosis.py)."""
    from neuralstudio.core.run_outcome import diagnose_record
    from neuralstudio.core.runs import RunsStore

    args = ["train", str(files / "net.nsd"), "--data", str(files / "slice.npz"), "--runs", str(files / "runs"),
            "--learning-rate", "0.01", "--epochs", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2].startswith("run: ")
    diagnosis = diagnose_record(RunsStore(files / "runs").get(out[-2].split()[1]))
    assert not diagnosis.bad and out[-1] == diagnosis.line() != ""
    assert out[-1].endswith("train again to compare.") == diagnosis.went_well
