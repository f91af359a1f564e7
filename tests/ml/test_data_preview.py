"""The Qt-free data preview (``ml/data/preview.py``) on real files of every kind, written to tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from data_files import write_csv, write_idx_folder, write_image_folder, write_npz

from neuralstudio.ml import data
from neuralstudio.ml.data import DataError, Dataset
from neuralstudio.ml.data.preview import PREVIEW_EXAMPLES, preview_dataset, preview_source, thumbnail_pixels

pytestmark = pytest.mark.backend_neutral  # data sources are NumPy


def brightness_class(example: np.ndarray) -> int:
    """The class a test image was written for (its brightness is 20 + 50 * class, see data_files)."""
    return int(round((float(np.mean(example)) * 255 - 20) / 50))


def test_npz_counts_shape_names_and_one_example_of_each_class_in_turn(tmp_path):
    path = write_npz(tmp_path / "d.npz", n=40, classes=3, test=11, names=["cat", "dog", "fox"])
    p = preview_source(str(path))
    assert (p.train_size, p.test_size, p.sample_shape) == (40, 11, (28, 28))
    assert p.class_names == ["cat", "dog", "fox"] and p.num_classes == 3
    assert p.examples.shape == (PREVIEW_EXAMPLES, 28, 28) and p.examples.dtype == np.float32
    # one of each class before a second of any, and every image keeps its label
    assert p.example_labels == ["cat", "dog", "fox"] * 2 + ["cat", "dog"]
    assert [p.class_names[brightness_class(e)] for e in p.examples] == p.example_labels
    assert p.source == str(path)
    assert p.summary_lines() == ["40 training and 11 test examples",
                                 "examples: 28x28 greyscale images, shape (28, 28)",
                                 "3 classes: cat, dog, fox"]


def test_the_examples_are_copies_so_the_loaded_data_set_can_be_freed(tmp_path):
    ds = data.load_dataset(str(write_npz(tmp_path / "d.npz")))
    p = preview_dataset(ds)
    assert not np.shares_memory(p.examples, ds.x_train)


def test_image_folder_classes_are_the_folder_names(tmp_path):
    folder = write_image_folder(tmp_path / "pets", {"cat": 5, "dog": 5}, size=(12, 10))
    p = preview_source(str(folder))
    assert (p.train_size, p.test_size) == (8, 2)  # 20% of each class held out for testing
    assert p.sample_shape == (10, 12) and p.class_names == ["cat", "dog"]
    assert p.example_labels[:2] == ["cat", "dog"] and len(p.examples) == PREVIEW_EXAMPLES
    assert thumbnail_pixels(p.examples[0]).shape == (10, 12)


def test_idx_folder_keeps_its_own_test_part(tmp_path):
    p = preview_source(str(write_idx_folder(tmp_path / "idx", train=30, test=9)))
    assert (p.train_size, p.test_size, p.sample_shape) == (30, 9, (28, 28))
    assert p.class_names == ["0", "1", "2"]
    assert [brightness_class(e) for e in p.examples] == [int(c) for c in p.example_labels]


def test_csv_square_rows_are_images_and_other_rows_are_vectors_without_pictures(tmp_path):
    square = preview_source(str(write_csv(tmp_path / "sq.csv", n=10, pixels=16, labels=["no", "yes"])))
    assert square.sample_shape == (4, 4) and square.class_names == ["no", "yes"]
    assert (square.train_size, square.test_size) == (8, 2)
    assert thumbnail_pixels(square.examples[0]).shape == (4, 4)
    flat = preview_source(str(write_csv(tmp_path / "v.csv", n=10, pixels=5)))
    assert flat.sample_shape == (5,) and "vectors of 5 numbers" in flat.summary_lines()[1]
    assert thumbnail_pixels(flat.examples[0]) is None


def test_a_damaged_file_raises_the_loaders_message(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataError, match="not a valid .npz file"):
        preview_source(str(bad))
    with pytest.raises(DataError, match="neither a known data set"):
        preview_source(str(tmp_path / "gone.csv"))


def test_class_names_fall_back_to_the_label_values():
    x = np.zeros((6, 2, 2), np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    p = preview_dataset(Dataset("given", x, y, None, None, []))
    assert p.class_names == ["0", "1", "2"] and p.test_size == 0
    assert p.summary_lines()[0] == "6 training and no test examples"
    short = preview_dataset(Dataset("given", x, y, None, None, ["a"]))  # fewer names than labels
    assert short.class_names == ["0", "1", "2"]


def test_many_classes_are_counted_not_all_written_out():
    x = np.zeros((40, 3), np.float32)
    y = np.arange(40)
    p = preview_dataset(Dataset("many", x, y, None, None, [f"c{i}" for i in range(40)]))
    assert p.summary_lines()[2] == "40 classes: " + ", ".join(f"c{i}" for i in range(12)) + " and 28 more"


def test_a_keras_set_not_downloaded_is_described_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def no_load(*_args, **_kwargs):
        raise AssertionError("a preview must not load (download) a Keras set that is not cached")

    monkeypatch.setattr(data, "load_dataset", no_load)
    for spec, first in (("mnist", "0"), ("fashion-mnist", "T-shirt/top")):
        p = preview_source(spec)
        assert (p.train_size, p.test_size, p.sample_shape) == (60_000, 10_000, (28, 28))
        assert p.class_names[0] == first and p.num_classes == 10
        assert len(p.examples) == 0 and "Not downloaded yet" in p.summary_lines()[-1]


def test_a_cached_keras_set_is_previewed_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    write_npz(tmp_path / "keras" / "datasets" / "mnist.npz", n=20, classes=10, test=5)
    p = preview_source("mnist")
    assert (p.train_size, p.test_size) == (20, 5) and len(p.examples) == PREVIEW_EXAMPLES


def test_thumbnail_pixels():
    grey = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(thumbnail_pixels(grey), [[0, 51, 102], [153, 204, 255]])
    assert thumbnail_pixels(grey[..., None]).shape == (2, 3)  # a channel axis of 1 is grey
    rgb = thumbnail_pixels(np.ones((2, 3, 3), np.float32))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert thumbnail_pixels(np.zeros((5,), np.float32)) is None
    assert thumbnail_pixels(np.zeros((2, 2, 4), np.float32)) is None
