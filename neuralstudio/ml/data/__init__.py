"""Data sources: the bundled MNIST sample, Keras's downloadable sets, and the user's own files.

Every source ends as a :class:`Dataset` of float32 images in [0, 1] and int64
labels 0..K-1, so the trainer and the prediction code never care where the data
came from.  Greyscale images keep their natural shape ``(n, h, w)``; the model's
Input decides whether it wants a channel axis or a flat vector, and
:func:`adapt_inputs` reshapes only where that is unambiguous.  Everything a
user can get wrong (a missing file, a ragged CSV, images of different sizes)
raises :class:`DataError` with a message that says what to do.

Sources with no test part of their own (an image folder, a CSV, an NPZ with
only ``x_train``) hold out :data:`HOLDOUT_FRACTION` of each class as the test
split, with a fixed seed, so that the same file gives the same split every time.

Files are untrusted: a small file can declare (or inflate to) gigabytes.  Every
loader works out what a file will cost from its header before allocating, and
refuses more than :func:`memory_budget_bytes` with a message, as it refuses a
damaged file; no loader decompresses or parses anything without a bound.

One module per source kind, so that each format's checks against hostile files
can be read and reviewed on their own: :mod:`~neuralstudio.ml.data.idx` (IDX
files and folders, the bundled MNIST sample), :mod:`~neuralstudio.ml.data.keras_sets`
(``keras.datasets``), :mod:`~neuralstudio.ml.data.image_folder`,
:mod:`~neuralstudio.ml.data.csv_source` and :mod:`~neuralstudio.ml.data.npz`; what
they share is in :mod:`~neuralstudio.ml.data.dataset` (the :class:`Dataset`, its
splits and shapes) and :mod:`~neuralstudio.ml.data.budget` (the memory budget and
bounded reading).  This module chooses the source (:func:`load_dataset`) and
re-exports the names the rest of NeuralStudio imports, so callers need only
``neuralstudio.ml.data``.  A test that replaces a function must patch it in the
submodule that calls it (``data.budget.memory_budget_bytes``), not here.
None of these modules imports Keras at import time: only a download of a
``keras.datasets`` set does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuralstudio.ml.data.budget import MAX_DATA_BYTES, memory_budget_bytes
from neuralstudio.ml.data.csv_source import MAX_CSV_COLUMNS, MAX_CSV_ROW_CHARS, MAX_LABEL_CHARS, _load_csv
from neuralstudio.ml.data.dataset import (
    HOLDOUT_FRACTION,
    SPLIT_SEED,
    DataError,
    Dataset,
    _holdout,
    _list_dir,
    adapt_inputs,
    describe_shape,
    one_hot,
    stratified_split,
)
from neuralstudio.ml.data.idx import (
    DIGIT_NAMES,
    SAMPLE_TEST_SIZE,
    _find_idx,
    _load_idx_folder,
    _mnist_sample,
    read_idx,
)
from neuralstudio.ml.data.idx import _mnist_sample_arrays as _mnist_sample_arrays  # tests clear its cache
from neuralstudio.ml.data.image_folder import IMAGE_SUFFIXES, MAX_IMAGES, _read_image_classes, _size
from neuralstudio.ml.data.keras_sets import FASHION_NAMES, _keras_fashion_mnist, _keras_mnist, keras_datasets_dir
from neuralstudio.ml.data.npz import _load_npz

__all__ = [
    "DATA_SOURCES", "DEFAULT_SOURCE", "DIGIT_NAMES", "FASHION_NAMES", "HOLDOUT_FRACTION", "IMAGE_SUFFIXES",
    "MAX_CSV_COLUMNS", "MAX_CSV_ROW_CHARS", "MAX_DATA_BYTES", "MAX_IMAGES", "MAX_LABEL_CHARS", "SAMPLE_TEST_SIZE",
    "SPLIT_SEED", "DataError", "Dataset", "adapt_inputs", "describe_shape", "keras_datasets_dir", "load_dataset",
    "memory_budget_bytes", "one_hot", "read_idx", "stratified_split",
]

DATA_SOURCES = ["mnist-sample", "mnist", "fashion-mnist"]
DEFAULT_SOURCE = "mnist-sample"


def load_dataset(spec: str = DEFAULT_SOURCE, *, label_column: str | None = None) -> Dataset:
    """Load a named data set or the user's file or folder.

    Args:
        spec: ``"mnist-sample"`` (bundled, offline), ``"mnist"``, ``"fashion-mnist"``
            (through ``keras.datasets``), or a path to a folder of IDX files, a folder
            with one sub-folder of images per class, a ``.csv`` or an ``.npz`` file.
        label_column: for a CSV, the column holding the labels (a name or a 0-based
            number); by default ``label``/``class``/``y``/``target`` or else the first.
    """
    spec = (spec or DEFAULT_SOURCE).strip()
    key = spec.lower()
    if key in ("mnist-sample", "mnist_sample", "sample"):
        return _mnist_sample()
    if key == "mnist":
        return _keras_mnist()
    if key in ("fashion-mnist", "fashion_mnist"):
        return _keras_fashion_mnist()
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"{spec!r} is neither a known data set ({', '.join(DATA_SOURCES)}) nor an existing file or "
            "folder: check the path, or choose one of the named data sets."
        )
    if path.is_dir():
        return _load_folder(path)
    if not path.is_file():
        raise DataError(f"{path} is not a regular file (a device or a pipe?): give a data file or folder.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _load_csv(path, label_column)
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".gz" or "idx" in path.name:
        raise DataError(
            f"{path.name} looks like one IDX file: choose the folder that holds the images and labels "
            "files (for example train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz) instead."
        )
    raise DataError(
        f"{path.name} is not a data format NeuralStudio reads: use a .csv (one row per image, a label "
        "column), an .npz (x_train, y_train), a folder of IDX files or a folder with one sub-folder of "
        "images per class."
    )


def _load_folder(folder: Path) -> Dataset:
    found = _find_idx(folder)
    if found:
        return _load_idx_folder(folder, found, str(folder))
    subdirs = [p for p in _list_dir(folder) if p.is_dir() and not p.name.startswith(".")]
    names = {p.name.lower() for p in subdirs}
    if names == {"train", "test"}:
        by = {p.name.lower(): p for p in subdirs}
        xtr, ytr, classes = _read_image_classes(by["train"])
        xte, yte, test_classes = _read_image_classes(by["test"])
        train_folders = {p.name for p in _list_dir(by["train"]) if p.is_dir()}
        test_folders = {p.name for p in _list_dir(by["test"]) if p.is_dir() and not p.name.startswith(".")}
        unknown = sorted(test_folders - train_folders)
        if unknown:
            raise DataError(f"{by['test']} has classes that {by['train']} lacks ({', '.join(unknown[:5])}): "
                            "give both the same class folders.")
        yte = np.array([classes.index(test_classes[i]) for i in yte], dtype=np.int64)
        if xte.shape[1:] != xtr.shape[1:]:
            raise DataError(f"The training images are {_size(xtr)} but the test images are {_size(xte)}: "
                            "resize them to the same size.")
        return Dataset(str(folder), xtr, ytr, xte, yte, classes, f"image folders in {folder}")
    if not subdirs:
        files = [p for p in _list_dir(folder) if p.is_file() and not p.name.startswith(".")]
        if not files:
            raise DataError(f"{folder} is empty: put one sub-folder of images per class in it (e.g. 0/, 1/, ...), "
                            "or IDX files.")
        raise DataError(
            f"{folder} has files but no IDX files and no class sub-folders: put the images into one sub-folder "
            "per class (the folder name is the class), or choose a .csv or .npz file."
        )
    x, y, classes = _read_image_classes(folder)
    return _holdout(str(folder), x, y, classes, f"image folders in {folder}")
