"""`neuralstudio lr-find` end to end, in process, on a design and a data slice the test writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import image_mlp

from neuralstudio.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from neuralstudio.ml.data import load_dataset

    folder = tmp_path_factory.mktemp("lr-find")
    ds = load_dataset("mnist-sample")
    np.savez(folder / "slice.npz", x_train=ds.x_train[:512], y_train=ds.y_train[:512],
             x_test=ds.x_test[:100], y_test=ds.y_test[:100])
    image_mlp("lr-net", hidden=32, optimizer="sgd", learning_rate=0.01, batch_size=32).save(folder / "net.nsd")
    return folder


def test_json_is_the_last_line_and_holds_the_curve_and_the_suggestion(files, capsys):
    net = str(files / "net.nsd")
    assert main(["lr-find", net, "--data", str(files / "slice.npz"), "--steps", "40", "--min-lr", "1e-4",
                 "--max-lr", "100", "--json"]) == 0
    out = capsys.readouterr().out
    r = json.loads(out.strip().splitlines()[-1])
    assert r["status"] in ("finished", "diverged") and r["batch_size"] == 32
    assert 1e-4 <= r["suggested_lr"] <= 100 and r["message"].endswith(".")
    assert len(r["lrs"]) == len(r["losses"]) == len(r["smoothed"]) == r["steps_run"] <= 40
    assert r["lrs"][0] == pytest.approx(1e-4)
    # nothing in the design changed, nothing was recorded
    assert json.loads((files / "net.nsd").read_text())["training"]["learning_rate"] == 0.01


def test_the_text_form_shows_a_table_marks_the_suggestion_and_says_how_to_use_it(files, capsys):
    net = str(files / "net.nsd")
    assert main(["lr-find", net, "--data", str(files / "slice.npz"), "--steps", "30", "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Learning-rate range test:") and "batch 16" in lines[0]
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["step", "learning"])
    rows = [ln for ln in lines[header + 1:] if ln[:5].strip().isdigit()]
    assert 5 <= len(rows) <= 12 and any("#" in ln for ln in rows)
    assert sum("<- suggested" in ln for ln in rows) == 1
    at = next(i for i, ln in enumerate(lines) if ln.startswith("suggested learning rate: "))
    suggested = lines[at].split(": ")[1]
    assert lines[at - 1].endswith(f"{suggested}.")  # the sentence for the learner names the same rate
    assert lines[at + 1] == f"use it: neuralstudio train {net} --learning-rate {suggested}"


def test_user_errors_are_one_error_line(files, capsys):
    net = str(files / "net.nsd")
    assert main(["lr-find", net, "--data", str(files / "slice.npz"), "--min-lr", "1", "--max-lr", "0.1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "must be below" in err and "Traceback" not in err
    assert main(["lr-find", str(files / "missing.nsd")]) == 1
    assert capsys.readouterr().err.startswith("error: ")
