"""Small real data files of every kind the loaders read, written into a test's tmp_path.

Shared by the data-preview tests (``tests/ml``) and the data-picker tests (``tests/ui``), which import
it as ``from data_files import ...`` (``tests/`` is on the import path because of ``tests/conftest.py``).
Every image's brightness encodes its class, so a test can check that images stay with their labels.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def class_images(n: int, classes: int = 3, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 ``size`` x ``size`` images of ``classes`` classes in turn; class c has brightness 20 + 50c."""
    y = np.arange(n) % classes
    x = np.zeros((n, size, size), np.uint8)
    x[:] = (y * 50 + 20)[:, None, None].astype(np.uint8)
    return x, y.astype(np.uint8)


def write_npz(path: Path, n: int = 40, classes: int = 3, test: int = 0, size: int = 28,
              names: list[str] | None = None) -> Path:
    """An ``.npz`` with ``x_train``/``y_train`` (and ``test`` test examples, and ``class_names``, if asked)."""
    x, y = class_images(n + test, classes, size)
    arrays = {"x_train": x[:n], "y_train": y[:n]}
    if test:
        arrays.update(x_test=x[n:], y_test=y[n:])
    if names is not None:
        arrays["class_names"] = np.array(names)
    np.savez(path, **arrays)
    return path


def write_csv(path: Path, n: int = 10, pixels: int = 16, labels: list[str] | None = None) -> Path:
    """A CSV with a ``label`` column (``labels`` in turn, or 0/1) and ``pixels`` pixel columns."""
    labels = labels or ["0", "1"]
    rows = ["label," + ",".join(f"p{i}" for i in range(pixels))]
    for i in range(n):
        k = i % len(labels)
        rows.append(",".join([labels[k]] + [str(20 + 50 * k)] * pixels))
    path.write_text("\n".join(rows) + "\n")
    return path


def write_image_folder(folder: Path, classes: dict[str, int], size: tuple[int, int] = (28, 28)) -> Path:
    """One sub-folder of PNGs per class (``{class: how many}``), written with Pillow."""
    from PIL import Image

    for i, (name, n) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            Image.new("L", size, i * 50 + 20).save(folder / name / f"{j}.png")
    return folder


def write_idx(path: Path, arr: np.ndarray) -> Path:
    """One gzipped IDX file (the MNIST format) of uint8 values."""
    arr = np.asarray(arr, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    path.write_bytes(gzip.compress(raw + arr.tobytes()))
    return path


def write_idx_folder(folder: Path, train: int = 30, test: int = 9, classes: int = 3) -> Path:
    """A folder with the four MNIST-named IDX files: ``train`` training and ``test`` test images."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = class_images(train + test, classes)
    write_idx(folder / "train-images-idx3-ubyte.gz", x[:train])
    write_idx(folder / "train-labels-idx1-ubyte.gz", y[:train])
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x[train:])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y[train:])
    return folder
