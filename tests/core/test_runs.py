"""The runs store: pure Python, real files, no Keras."""

from __future__ import annotations

import json
import math
import sys

import pytest

from neuralstudio.core.runs import MAX_BATCH_POINTS, RunsError, RunsStore, default_runs_dir


def _make(store: RunsStore, lr: float, acc: float, optimizer: str = "adam"):
    rec = store.create(design={"name": "net", "graph": {"nodes": []}},
                       hyperparameters={"optimizer": optimizer, "learning_rate": lr, "batch_size": 32},
                       data={"name": "mnist-sample", "train_samples": 7200}, device="CPU")
    rec.add_epoch({"epoch": 0, "loss": 0.5, "accuracy": acc - 0.01, "val_loss": math.nan})
    rec.add_batch({"epoch": 0, "batch": 0, "loss": 0.9, "accuracy": 0.5})
    rec.status, rec.message = "finished", "Trained 1 epoch(s)."
    rec.final = {"test_accuracy": acc, "test_loss": 0.3}
    rec.timing = {"seconds": 1.5, "epochs_run": 1}
    store.save(rec)
    return rec


def test_round_trip_list_get_and_compare(tmp_path):
    store = RunsStore(tmp_path / "runs")
    assert store.list() == []
    a = _make(store, 0.001, 0.9)
    b = _make(store, 0.01, 0.95, optimizer="sgd")
    (a.folder / "model.keras").write_bytes(b"zip")
    runs = store.list()
    assert [r.id for r in runs] == [a.id, b.id]
    got = store.get(a.id)
    assert got.hyperparameters == a.hyperparameters and got.final == a.final and got.status == "finished"
    assert got.epochs[0]["val_loss"] is None  # NaN is stored as null: the file stays standard JSON
    assert got.history()["accuracy"] == [pytest.approx(0.89)]
    assert got.model_path == a.folder / "model.keras" and store.get(b.id).model_path is None
    json.loads((a.folder / "run.json").read_text())  # strict JSON
    assert store.get("latest").id == b.id
    cmp = store.compare(a.id, b.id)
    keys = {(d.section, d.key) for d in cmp.differences}
    assert ("hyperparameters", "learning_rate") in keys and ("hyperparameters", "optimizer") in keys
    assert ("hyperparameters", "batch_size") not in keys and "batch_size=32" in cmp.same_hyperparameters
    assert ("results", "test_accuracy") in keys
    text = cmp.format()
    assert "learning_rate" in text and "0.95" in text and "sgd" in text


def test_get_by_prefix_and_clear_errors(tmp_path):
    store = RunsStore(tmp_path)
    a = _make(store, 0.1, 0.5)
    assert store.get(a.id[:-2]).id == a.id
    with pytest.raises(RunsError, match="No run"):
        store.get("nothing")
    with pytest.raises(RunsError, match="No run"):
        store.get("../etc")
    _make(store, 0.2, 0.6)
    with pytest.raises(RunsError, match="matches 2 runs"):
        store.get(a.id[:8])


def test_a_damaged_run_is_skipped_by_list(tmp_path):
    store = RunsStore(tmp_path)
    good = _make(store, 0.1, 0.5)
    bad = tmp_path / "20990101-000000-dead"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    (tmp_path / "stray").mkdir()
    assert [r.id for r in store.list()] == [good.id]
    with pytest.raises(RunsError, match="damaged"):
        store.get("20990101-000000-dead")


def test_batch_points_are_thinned_evenly(tmp_path):
    store = RunsStore(tmp_path)
    rec = store.create()
    n = MAX_BATCH_POINTS * 3 + 7
    for i in range(n):
        rec.add_batch({"step": i})
    assert MAX_BATCH_POINTS // 2 <= len(rec.batches) <= MAX_BATCH_POINTS
    steps = [p["step"] for p in rec.batches]
    gaps = {b - a for a, b in zip(steps, steps[1:])}
    assert gaps == {rec.batch_stride} and steps[0] == 0 and steps[-1] > n - 2 * rec.batch_stride
    store.save(rec)
    again = store.get(rec.id)
    assert again.batch_stride == rec.batch_stride and len(again.batches) == len(rec.batches)


def test_writes_are_atomic_and_default_folder_is_in_user_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSTUDIO_HOME", str(tmp_path / "home"))
    assert default_runs_dir() == tmp_path / "home" / "runs"
    store = RunsStore()
    rec = store.create(hyperparameters={"epochs": 1})
    before = (rec.folder / "run.json").read_text()
    rec.final = {"bad": object()}  # not JSON: the save fails...
    with pytest.raises(TypeError):
        store.save(rec)
    assert (rec.folder / "run.json").read_text() == before  # ...and the previous file is intact
    assert [p.name for p in rec.folder.iterdir()] == ["run.json"]  # no temp file left behind


def test_the_store_imports_neither_keras_nor_qt():
    assert "neuralstudio.core.runs" in sys.modules
    import subprocess

    code = ("import sys, neuralstudio.core.runs; "
            "bad = [m for m in ('keras', 'tensorflow', 'PySide6') if m in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_a_reusing_scan_reads_again_only_the_runs_that_changed(tmp_path):
    """The Train window rescans after every run on the GUI thread: unchanged run files are not parsed again."""
    import shutil

    store = RunsStore(tmp_path / "runs")
    a, b = _make(store, 0.001, 0.9), _make(store, 0.01, 0.95)
    first = {r.id: r for r in store.scan(reuse=True).records}
    again = {r.id: r for r in store.scan(reuse=True).records}
    assert again[a.id] is first[a.id] and again[b.id] is first[b.id]  # nothing changed: nothing parsed
    a.message = "renamed"
    store.save(a)  # an atomic replacement: a new file
    c = _make(store, 0.1, 0.5)
    third = {r.id: r for r in store.scan(reuse=True).records}
    assert third[a.id] is not first[a.id] and third[a.id].message == "renamed"
    assert third[b.id] is first[b.id] and c.id in third
    shutil.rmtree(b.folder)
    (c.folder / "run.json").write_text("{ not json")
    fourth = store.scan(reuse=True)
    assert [r.id for r in fourth.records] == [a.id] and [d.folder for d in fourth.damaged] == [c.folder]
    assert store.scan().records[0] is not fourth.records[0]  # a plain scan always reads the files
