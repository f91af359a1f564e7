"""Data sources on real files written to tmp_path: IDX (gz and raw), image folders, CSV, NPZ, Keras's cache."""

from __future__ import annotations

import gzip
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from neuralstudio.ml import data
from neuralstudio.ml.data import DataError, adapt_inputs, load_dataset, one_hot, stratified_split

pytestmark = pytest.mark.backend_neutral  # data sources are NumPy


# --------------------------------------------------------------------------- helpers
def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    arr = np.asarray(arr, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    raw += arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def digits(n: int, k: int = 3, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images whose brightness encodes the label, so tests can check images stay with labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = np.zeros((n, size, size), np.uint8)
    x[:] = (y * 50 + 20)[:, None, None]
    x[:, 0, 0] = rng.integers(0, 255, n)
    return x, y.astype(np.uint8)


def write_idx_folder(folder: Path, gz: bool, test: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    x, y = digits(30)
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", y, gz)
    if test:
        xt, yt = digits(9, seed=1)
        write_idx(folder / f"t10k-images-idx3-ubyte{ext}", xt, gz)
        write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", yt, gz)


def assert_labels_match_pixels(x: np.ndarray, y: np.ndarray) -> None:
    expected = (y * 50 + 20) / 255.0
    np.testing.assert_allclose(x[:, 5, 5], expected, rtol=1e-6)


# --------------------------------------------------------------------------- mnist-sample
def test_mnist_sample_is_a_fixed_stratified_8000_2000_split():
    ds = load_dataset()
    assert ds.name == "mnist-sample"
    assert ds.x_train.shape == (8000, 28, 28) and ds.x_test.shape == (2000, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    assert ds.num_classes == 10 and ds.class_names == [str(i) for i in range(10)]
    # stratified: every digit keeps its share (20% of each class in the test part, +-1)
    all_y = np.concatenate([ds.y_train, ds.y_test])
    per_class = np.bincount(all_y, minlength=10)
    assert per_class.sum() == 10_000
    assert np.all(np.abs(np.bincount(ds.y_test, minlength=10) - per_class * 0.2) <= 1)
    # the same split when recomputed from the files (not just the in-memory cache)
    first = ds.y_test.copy(), ds.x_test[:5].copy()
    data._mnist_sample_arrays.cache_clear()
    again = load_dataset("mnist-sample")
    np.testing.assert_array_equal(again.y_test, first[0])
    np.testing.assert_array_equal(again.x_test[:5], first[1])
    # the cached arrays are shared, so they are read-only
    with pytest.raises(ValueError):
        again.x_train[0, 0, 0] = 1.0
    desc = again.description()
    assert desc["train_size"] == 8000 and desc["test_size"] == 2000 and desc["sample_shape"] == [28, 28]


# --------------------------------------------------------------------------- stratified_split
def test_stratified_split_keeps_class_balance_and_is_deterministic():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    x = np.arange(100)
    xa, ya, xb, yb = stratified_split(x, y, 0.2, seed=7)
    assert len(xb) == 20 and len(xa) == 80
    assert list(np.bincount(yb)) == [10, 6, 4]
    assert sorted(np.concatenate([xa, xb])) == list(range(100))  # a partition
    np.testing.assert_array_equal(y[xa], ya)  # rows stay with their labels
    again = stratified_split(x, y, 0.2, seed=7)
    np.testing.assert_array_equal(again[2], xb)
    other = stratified_split(x, y, 0.2, seed=8)
    assert not np.array_equal(other[2], xb)


def test_stratified_split_gives_exact_total_with_uneven_classes():
    y = np.array([0] * 7 + [1] * 7 + [2] * 7)
    _xa, _ya, xb, yb = stratified_split(np.arange(21), y, 0.5, seed=0)
    assert len(xb) == round(0.5 * 21)
    assert np.all(np.abs(np.bincount(yb) - 3.5) <= 0.5)


def test_stratified_split_rejects_mismatched_lengths():
    with pytest.raises(DataError, match="3 inputs but 2 labels"):
        stratified_split(np.zeros(3), np.zeros(2), 0.5, 0)


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_with_train_and_test(tmp_path, gz):
    write_idx_folder(tmp_path / "idx", gz)
    ds = load_dataset(str(tmp_path / "idx"))
    assert ds.x_train.shape == (30, 28, 28) and ds.x_test.shape == (9, 28, 28)
    assert ds.class_names == ["0", "1", "2"]
    assert_labels_match_pixels(ds.x_train, ds.y_train)
    assert_labels_match_pixels(ds.x_test, ds.y_test)


def test_idx_folder_with_one_pair_holds_out_a_test_split(tmp_path):
    write_idx_folder(tmp_path / "idx", gz=True, test=False)
    ds = load_dataset(str(tmp_path / "idx"))
    assert len(ds.x_train) == 24 and len(ds.x_test) == 6
    assert list(np.bincount(ds.y_test)) == [2, 2, 2]
    assert_labels_match_pixels(ds.x_train, ds.y_train)


def test_idx_bad_cases(tmp_path):
    folder = tmp_path / "idx"
    write_idx_folder(folder, gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no matching test labels"):
        load_dataset(str(folder))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(4))
    with pytest.raises(DataError, match="9 images but .* 4 labels"):
        load_dataset(str(folder))
    raw = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DataError, match="truncated"):
        load_dataset(str(folder))
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"hello, not idx")
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset(str(folder))


def test_a_single_idx_file_is_refused_with_a_hint(tmp_path):
    f = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 4, 4)))
    with pytest.raises(DataError, match="choose the folder"):
        load_dataset(str(f))


# --------------------------------------------------------------------------- image folders
def write_pngs(folder: Path, classes: dict[str, int], size: tuple[int, int] = (28, 28), colour: bool = False) -> None:
    from PIL import Image

    for i, (cls, n) in enumerate(classes.items()):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            value = i * 50 + 20
            img = Image.new("RGB" if colour else "L", size, (value,) * 3 if colour else value)
            img.save(folder / cls / f"{j}.png")


def test_image_folder_one_subfolder_per_class(tmp_path):
    write_pngs(tmp_path / "imgs", {"cat": 5, "dog": 5, "fox": 5}, colour=True)
    ds = load_dataset(str(tmp_path / "imgs"))
    assert ds.class_names == ["cat", "dog", "fox"]
    assert ds.x_train.shape == (12, 28, 28) and ds.x_test.shape == (3, 28, 28)
    assert list(np.bincount(ds.y_test)) == [1, 1, 1]
    assert_labels_match_pixels(ds.x_train, ds.y_train)  # RGB greys become the same grey


def test_image_folder_with_train_and_test(tmp_path):
    write_pngs(tmp_path / "imgs" / "train", {"a": 3, "b": 3}, size=(8, 8))
    write_pngs(tmp_path / "imgs" / "test", {"a": 1, "b": 2}, size=(8, 8))
    ds = load_dataset(str(tmp_path / "imgs"))
    assert ds.x_train.shape == (6, 8, 8) and ds.x_test.shape == (3, 8, 8)
    assert sorted(ds.y_test.tolist()) == [0, 1, 1]


def test_image_folder_bad_cases(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_dataset(str(empty))
    flat = tmp_path / "flat"
    write_pngs(flat, {"x": 1})
    (flat / "x" / "0.png").rename(flat / "loose.png")
    (flat / "x").rmdir()
    with pytest.raises(DataError, match="one sub-folder\\s+per class"):
        load_dataset(str(flat))
    sizes = tmp_path / "sizes"
    write_pngs(sizes, {"a": 2})
    write_pngs(sizes, {"b": 2}, size=(32, 32))
    with pytest.raises(DataError, match="different sizes: 28x28 .*32x32"):
        load_dataset(str(sizes))
    no_images = tmp_path / "noimg"
    write_pngs(no_images, {"a": 2})
    (no_images / "b").mkdir()
    (no_images / "b" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="holds no images"):
        load_dataset(str(no_images))
    broken = tmp_path / "broken"
    write_pngs(broken, {"a": 1, "b": 1})
    (broken / "b" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot be read as an image"):
        load_dataset(str(broken))


# --------------------------------------------------------------------------- CSV
def write_csv(path: Path, header: str | None, rows: list[list]) -> Path:
    lines = ([header] if header else []) + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_with_label_column_and_square_pixels(tmp_path):
    rows = [[i % 2] + [255 * (i % 2)] * 16 for i in range(10)]
    header = "label," + ",".join(f"pixel{i}" for i in range(16))
    ds = load_dataset(str(write_csv(tmp_path / "d.csv", header, rows)))
    assert ds.x_train.shape == (8, 4, 4) and ds.x_test.shape == (2, 4, 4)
    assert ds.x_train.max() == 1.0
    np.testing.assert_array_equal(ds.x_train[:, 0, 0], ds.y_train.astype(np.float32))


def test_csv_label_column_detection_and_choice(tmp_path):
    rows = [[0.5, 0.5, 0.5, ["cat", "dog"][i % 2]] for i in range(10)]
    ds = load_dataset(str(write_csv(tmp_path / "c.csv", "a,b,c,class", rows)))
    assert ds.class_names == ["cat", "dog"] and ds.x_train.shape == (8, 3)
    assert np.allclose(ds.x_train, 0.5)  # values already in [0, 1] are kept
    rows = [[1, 2, i % 3, 4] for i in range(12)]
    ds = load_dataset(str(write_csv(tmp_path / "n.csv", "p,q,kind,r", rows)), label_column="kind")
    assert ds.num_classes == 3 and ds.x_train.shape == (10, 3)
    ds = load_dataset(str(write_csv(tmp_path / "h.csv", None, [[i % 2, 1, 2, 3] for i in range(10)])))
    assert ds.num_classes == 2 and ds.x_train.shape == (8, 3)  # headerless: first column is the label
    ds = load_dataset(str(write_csv(tmp_path / "s.csv", None, [["ab"[i % 2], 1, 2] for i in range(10)])))
    assert ds.class_names == ["a", "b"] and len(ds.x_train) + len(ds.x_test) == 10


def test_csv_bad_cases(tmp_path):
    with pytest.raises(DataError, match="non-numeric|'x', not a number"):
        load_dataset(str(write_csv(tmp_path / "a.csv", "label,p1,p2", [[0, 1, 2], [1, "x", 3]])))
    with pytest.raises(DataError, match="Row 3 .* has 2 values"):
        load_dataset(str(write_csv(tmp_path / "b.csv", "label,p1,p2", [[0, 1, 2], [1, 3]])))
    with pytest.raises(DataError, match="no column 'digit'"):
        load_dataset(str(write_csv(tmp_path / "c.csv", "label,p1", [[0, 1], [1, 2]])), label_column="digit")
    with pytest.raises(DataError, match="empty"):
        load_dataset(str(write_csv(tmp_path / "d.csv", None, [])))
    with pytest.raises(DataError, match="at least two classes"):
        load_dataset(str(write_csv(tmp_path / "e.csv", "label,p", [[1, 1], [1, 2]])))
    with pytest.raises(DataError, match="pixel values up to 300"):
        load_dataset(str(write_csv(tmp_path / "f.csv", "label,p", [[0, 300], [1, 2]])))


# --------------------------------------------------------------------------- NPZ
def test_npz_with_and_without_test_part(tmp_path):
    x, y = digits(20, k=2, size=6)
    np.savez(tmp_path / "full.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    ds = load_dataset(str(tmp_path / "full.npz"))
    assert ds.x_train.shape == (20, 6, 6) and ds.x_test.shape == (4, 6, 6)
    assert_labels_match_pixels(ds.x_train, ds.y_train)
    np.savez(tmp_path / "train.npz", x_train=x, y_train=y.reshape(-1, 1),
             class_names=np.array(["zero", "one"]))
    ds = load_dataset(str(tmp_path / "train.npz"))
    assert len(ds.x_train) == 16 and len(ds.x_test) == 4
    assert ds.class_names == ["zero", "one"]


def test_npz_bad_cases(tmp_path):
    x, y = digits(6, k=2, size=4)
    np.savez(tmp_path / "a.npz", x_train=x)
    with pytest.raises(DataError, match="no y_train"):
        load_dataset(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", x_train=x, y_train=y[:5])
    with pytest.raises(DataError, match="6 examples but y_train has 5"):
        load_dataset(str(tmp_path / "b.npz"))
    np.savez(tmp_path / "c.npz", x_train=x, y_train=y, x_test=x)
    with pytest.raises(DataError, match="x_test without y_test"):
        load_dataset(str(tmp_path / "c.npz"))
    np.savez(tmp_path / "d.npz", x_train=np.array([{"a": 1}] * 6, dtype=object), y_train=y)
    with pytest.raises(DataError, match="Python objects .* that could run code"):
        load_dataset(str(tmp_path / "d.npz"))
    np.savez(tmp_path / "e.npz", x_train=x, y_train=np.full(6, 0.5))
    with pytest.raises(DataError, match="not whole class numbers"):
        load_dataset(str(tmp_path / "e.npz"))
    (tmp_path / "f.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a valid .npz"):
        load_dataset(str(tmp_path / "f.npz"))


def test_unknown_spec_and_format(tmp_path):
    with pytest.raises(DataError, match="neither a known data set .*mnist-sample"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(DataError, match="not a data format"):
        load_dataset(str(tmp_path / "x.txt"))


# --------------------------------------------------------------------------- keras.datasets
@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """A private Keras cache: both our lookup (KERAS_HOME) and Keras's own (read at import) point there."""
    from keras.src.backend import config

    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    return home


@pytest.fixture
def offline(monkeypatch):
    """Downloads fail as they do on a machine with no network (no connection is attempted)."""
    from keras.src.utils import file_utils

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)


def test_keras_mnist_offline_gives_clear_error(keras_home, offline):
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    msg = str(err.value)
    assert "could not be downloaded" in msg and "mnist.npz" in msg and "mnist-sample" in msg
    assert str(keras_home / "datasets") in msg


def test_keras_fashion_mnist_offline_gives_clear_error(keras_home, offline):
    with pytest.raises(DataError, match="Fashion-MNIST could not be downloaded.*mnist-sample"):
        load_dataset("fashion-mnist")


def test_keras_mnist_from_local_cache(keras_home, offline):
    x, y = digits(12, k=10)
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    ds = load_dataset("mnist")
    assert ds.name == "mnist" and ds.x_train.shape == (12, 28, 28) and ds.x_test.shape == (5, 28, 28)
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.y_train.dtype == np.int64 and ds.x_train.max() <= 1.0


def test_keras_fashion_mnist_from_local_cache(keras_home, offline):
    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir()
    x, y = digits(10, k=10)
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", y)
    ds = load_dataset("fashion-mnist")
    assert ds.class_names[0] == "T-shirt/top" and ds.num_classes == 10
    assert ds.x_test.shape == (10, 28, 28)


# --------------------------------------------------------------------------- adapt_inputs / one_hot
@pytest.mark.parametrize("have, want, out", [
    ((28, 28), (28, 28, 1), (28, 28, 1)),
    ((28, 28, 1), (28, 28), (28, 28)),
    ((28, 28), (784,), (784,)),
    ((784,), (28, 28, 1), (28, 28, 1)),
    ((28, 28), (None, 28), (28, 28)),
    ((28, 28), (None, None, 1), (28, 28, 1)),
    ((28, 28), (28, 28), (28, 28)),
])
def test_adapt_inputs_reshapes_unambiguous_cases(have, want, out):
    x = np.random.default_rng(0).random((3, *have)).astype(np.float64)
    got = adapt_inputs(x, want)
    assert got.shape == (3, *out) and got.dtype == np.float32
    np.testing.assert_allclose(got.reshape(3, -1), x.reshape(3, -1), rtol=1e-6)


def test_adapt_inputs_explains_a_mismatch():
    x = np.zeros((2, 28, 28), np.float32)
    with pytest.raises(DataError) as err:
        adapt_inputs(x, (32, 32, 3))
    msg = str(err.value)
    assert "(32, 32, 3)" in msg and "28x28 greyscale images" in msg and "set the Input shape to (28, 28, 1)" in msg
    with pytest.raises(DataError, match=r"set the Input shape to \(784,\)"):
        adapt_inputs(x, (100,))
    with pytest.raises(DataError, match="expects \\(14, 56\\)"):
        adapt_inputs(x, (14, 56))  # same size, but not an unambiguous reshape


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(DataError):
        one_hot(np.array([3]), 3)
