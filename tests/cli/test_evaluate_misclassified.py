"""`neuralstudio evaluate --misclassified DIR`: the wrongly predicted images as PNGs with their index, in process."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from neuralstudio.cli import main

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A softmax MLP trained for one short epoch (it still makes mistakes) and a 300-image slice of the sample."""
    from neuralstudio.ml.data import load_dataset
    from neuralstudio.ml.keras_threads import run_on_python_thread

    folder = tmp_path_factory.mktemp("misclassified")
    ds = load_dataset("mnist-sample")
    np.savez(folder / "slice.npz", x_train=ds.x_train[:400], y_train=ds.y_train[:400],
             x_test=ds.x_test[:300], y_test=ds.y_test[:300])

    def train() -> None:
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(ds.x_train[:400], ds.y_train[:400], epochs=1, batch_size=64, verbose=0)
        model.save(folder / "m.keras")

    run_on_python_thread(train, "test-train")  # Keras on a plain thread, as everywhere (ARCHITECTURE.md, Threads)
    return folder


def _evaluate(files, *extra: str) -> list[str]:
    return ["evaluate", str(files / "m.keras"), "--data", str(files / "slice.npz"), *extra]


def test_misclassified_writes_pngs_and_index(files, tmp_path, capsys):
    out_dir = tmp_path / "mistakes"
    assert main(_evaluate(files, "--misclassified", str(out_dir), "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    counts = np.array(out["confusion"])
    assert counts.shape == (10, 10) and counts.sum() == 300 == out["examples"]
    wrong = int(counts.sum() - np.trace(counts))
    assert wrong > 0 and out["misclassified"] == {"folder": str(out_dir), "images": wrong}
    pair = out["worst_pair"]
    assert counts[pair["true"], pair["predicted"]] == pair["count"] == counts[~np.eye(10, dtype=bool)].max()
    assert out["worst_pair_sentence"].startswith("The network confuses ")
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    assert len(pngs) == wrong
    index = json.loads((out_dir / "index.json").read_text(encoding="utf-8"))
    assert index["misclassified"] == wrong and index["confusion"] == out["confusion"]
    assert sorted(r["file"] for r in index["images"]) == pngs
    x_test = np.load(files / "slice.npz")["x_test"]
    for r in index["images"]:
        assert r["true"] != r["predicted"]
        name = f"true{r['true']}_pred{r['predicted']}_conf{r['confidence']:.2f}_idx{r['index']}.png"
        assert r["file"] == name
        top = r["top"]
        assert len(top) == 3 and top[0]["class"] == r["predicted"] and top[0]["value"] == r["confidence"]
        assert top[0]["value"] >= top[1]["value"] >= top[2]["value"]
    # an image is the example as the network saw it: 28x28 grey
    first = index["images"][0]
    with Image.open(out_dir / first["file"]) as im:
        assert im.size == (28, 28) and im.mode == "L"
        np.testing.assert_allclose(np.asarray(im) / 255.0, x_test[first["index"]], atol=1 / 255)
    with open(out_dir / "index.csv", newline="", encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == wrong and set(lines[0]) >= {"file", "true", "predicted", "confidence", "top3_value"}
    # within each cell, the surest mistake comes first
    cells: dict[tuple[int, int], list[float]] = {}
    for r in index["images"]:
        cells.setdefault((r["true"], r["predicted"]), []).append(r["confidence"])
    assert all(v == sorted(v, reverse=True) for v in cells.values())


def test_text_output_prints_the_table_and_the_sentence_and_replaces_its_own_export(files, tmp_path, capsys):
    out_dir = tmp_path / "mistakes"
    out_dir.mkdir()
    stale = out_dir / "true1_pred7_conf0.50_idx99999.png"  # what an earlier export wrote: replaced
    stale.write_bytes(b"old")
    assert main(_evaluate(files, "--misclassified", str(out_dir), "--scale", "3")) == 0
    text = capsys.readouterr().out
    assert "The network confuses " in text and "(rows: true class, columns: predicted class)" in text
    assert "misclassified image(s) to" in text
    assert not stale.exists()
    png = next(out_dir.glob("*.png"))
    with Image.open(png) as im:
        assert im.size == (84, 84)


def test_a_folder_with_other_files_is_left_alone(files, tmp_path, capsys):
    out_dir = tmp_path / "photos"
    out_dir.mkdir()
    (out_dir / "holiday.jpg").write_bytes(b"mine")
    (out_dir / "true3_pred5_conf0.90_idx1.png").write_bytes(b"looks like ours")
    assert main(_evaluate(files, "--misclassified", str(out_dir))) != 0
    err = capsys.readouterr().err
    assert "holiday.jpg" in err and "nothing was written" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["holiday.jpg", "true3_pred5_conf0.90_idx1.png"]
    assert (out_dir / "true3_pred5_conf0.90_idx1.png").read_bytes() == b"looks like ours"
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")
    assert main(_evaluate(files, "--misclassified", str(a_file))) != 0
    assert "not a folder" in capsys.readouterr().err
    assert main(_evaluate(files, "--misclassified", str(tmp_path / "new"), "--scale", "0")) != 0
    assert "--scale" in capsys.readouterr().err


def test_plain_json_has_the_confusion_and_the_worst_pair(files, capsys):
    assert main(_evaluate(files, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.array(out["confusion"]).sum() == 300 and "worst_pair" in out and "misclassified" not in out
