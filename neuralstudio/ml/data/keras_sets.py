"""MNIST and Fashion-MNIST through ``keras.datasets``: read from Keras's cache, downloaded the first time.

Apart because these are the only sources that may need the network and Keras:
Keras is imported only to download a set that is not cached yet, and a cached
file is read with this package's own bounded readers (:mod:`.npz`, :mod:`.idx`),
never with ``np.load``, since anything can be put in that folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neuralstudio.ml.data.dataset import DataError, Dataset, _short, _to_unit
from neuralstudio.ml.data.idx import DIGIT_NAMES, _load_idx_pair
from neuralstudio.ml.data.npz import _read_npz

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def keras_datasets_dir() -> Path:
    """Where ``keras.datasets`` caches its downloads (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``)."""
    home = os.environ.get("KERAS_HOME")
    if home:
        return Path(home).expanduser() / "datasets"
    base = Path.home()
    if not os.access(base, os.W_OK):
        base = Path("/tmp")
    return base / ".keras" / "datasets"


def _download_failed(name: str, files: str, exc: BaseException) -> DataError:
    return DataError(
        f"{name} could not be downloaded ({_short(exc)}). Connect to the internet once so Keras can fetch and "
        f"cache it, or copy {files} into {keras_datasets_dir()}; or use the offline data set 'mnist-sample'."
    )


def _keras_mnist() -> Dataset:
    """Full MNIST (60,000 + 10,000) from the Keras cache, downloading it the first time."""
    cached = keras_datasets_dir() / "mnist.npz"
    if cached.exists():
        keys = ("x_train", "y_train", "x_test", "y_test")
        try:
            found, _held = _read_npz(cached, keys)
            arrays = tuple(found[k] for k in keys)
        except (DataError, KeyError) as exc:
            raise DataError(
                f"{cached} is damaged or not the Keras MNIST file ({_short(exc)}): delete it and download it "
                "again, or use 'mnist-sample'."
            ) from None
    else:
        try:
            import keras

            (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
        except Exception as exc:  # noqa: BLE001 - urllib, hash and OS errors all mean "not available"
            raise _download_failed("MNIST", "mnist.npz", exc) from None
        arrays = (xtr, ytr, xte, yte)
    return _named_keras_set("mnist", arrays, DIGIT_NAMES, "MNIST (keras.datasets: 60,000 training and 10,000 "
                            "test images; LeCun, Cortes and Burges, CC BY-SA 3.0)")


_FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _keras_fashion_mnist() -> Dataset:
    """Fashion-MNIST from the Keras cache, downloading it the first time."""
    folder = keras_datasets_dir() / "fashion-mnist"
    if all((folder / f).exists() for f in _FASHION_FILES):
        xtr, ytr = _load_idx_pair(folder / _FASHION_FILES[0], folder / _FASHION_FILES[1])
        xte, yte = _load_idx_pair(folder / _FASHION_FILES[2], folder / _FASHION_FILES[3])
    else:
        try:
            import keras

            (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
        except Exception as exc:  # noqa: BLE001
            raise _download_failed("Fashion-MNIST", "the four files " + ", ".join(_FASHION_FILES) +
                                   " (into a fashion-mnist sub-folder)", exc) from None
    return _named_keras_set("fashion-mnist", (xtr, ytr, xte, yte), FASHION_NAMES,
                            "Fashion-MNIST (keras.datasets: 60,000 training and 10,000 test images; "
                            "Zalando Research, MIT licence)")


def _named_keras_set(name: str, arrays: tuple[np.ndarray, ...], names: list[str], source: str) -> Dataset:
    xtr, ytr, xte, yte = arrays
    if xtr.ndim != 3 or ytr.ndim != 1 or len(xtr) != len(ytr) or xte.ndim != 3 or yte.ndim != 1 or \
            len(xte) != len(yte):
        raise DataError(f"The cached {name} files in {keras_datasets_dir()} have unexpected shapes: delete them "
                        "and download them again.")
    return Dataset(name, _to_unit(xtr, name), ytr.astype(np.int64).reshape(-1),
                   _to_unit(xte, name), yte.astype(np.int64).reshape(-1), list(names), source)
