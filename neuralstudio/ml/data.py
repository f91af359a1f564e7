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
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuralstudio.core.errors import UserError
from neuralstudio.core.paths import sample_data_dir

DATA_SOURCES = ["mnist-sample", "mnist", "fashion-mnist"]
DEFAULT_SOURCE = "mnist-sample"
SAMPLE_TEST_SIZE = 2_000  # of the 10,000 t10k images; the other 8,000 are for training
SPLIT_SEED = 20_240_601  # fixed: the same split on every machine, every time
HOLDOUT_FRACTION = 0.2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGES = 500_000  # a guard against pointing the image-folder loader at a whole disk

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_LABEL_COLUMNS = ("label", "class", "y", "target")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(UserError, ValueError):
    """A data source that cannot be loaded; the message says what is wrong and what to do."""


@dataclass
class Dataset:
    """Images (float32 in [0, 1]) and labels (int64 0..K-1), split into train and test.

    Args:
        name: what the user chose: ``"mnist-sample"``, ``"mnist"`` or a path.
        x_train: training inputs, ``(n, h, w)`` for greyscale images.
        y_train: training labels.
        x_test: held-out inputs, or None when the source has none.
        y_test: held-out labels, or None.
        class_names: the name of each class, indexed by label.
        source: a one-line human description of where the data came from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one example, without the batch axis."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def description(self) -> dict[str, Any]:
        """What a run record stores about the data, enough to tell two runs' data apart."""
        return {
            "name": self.name,
            "source": self.source,
            "train_size": int(len(self.x_train)),
            "test_size": int(len(self.x_test)) if self.x_test is not None else 0,
            "sample_shape": list(self.sample_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
        }


# --------------------------------------------------------------------------- public API
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


def stratified_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``(x, y)`` into a and b, with ``fraction`` of every class in b.

    The size of b is exactly ``round(fraction * len(y))``; per-class counts are
    allotted by largest remainder so every class keeps its share.  Both parts
    are shuffled, and the same ``seed`` gives the same split every time.

    Args:
        x: inputs, first axis is examples.
        y: integer labels, same length as ``x``.
        fraction: the share of the data that goes to b, in [0, 1].
        seed: random seed for the split.

    Returns:
        ``(x_a, y_a, x_b, y_b)``.
    """
    if len(x) != len(y):
        raise DataError(f"There are {len(x)} inputs but {len(y)} labels: they must be as many.")
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"A split fraction must be between 0 and 1, not {fraction}.")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    total_b = int(round(fraction * len(y)))
    exact = counts * fraction
    take = np.floor(exact).astype(np.int64)
    remainder = total_b - int(take.sum())
    if remainder > 0:
        order = np.lexsort((classes, -(exact - take)))  # largest remainder first, ties by class
        for i in order[:remainder]:
            take[i] += 1
    b_parts = []
    a_parts = []
    for cls, k in zip(classes, take):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        b_parts.append(idx[:k])
        a_parts.append(idx[k:])
    a = np.concatenate(a_parts) if a_parts else np.zeros(0, np.int64)
    b = np.concatenate(b_parts) if b_parts else np.zeros(0, np.int64)
    a = a[rng.permutation(len(a))]
    b = b[rng.permutation(len(b))]
    return x[a], y[a], x[b], y[b]


def adapt_inputs(x: np.ndarray, input_shape: tuple[int | None, ...]) -> np.ndarray:
    """Reshape a batch to what the model's Input wants, where the reshape is unambiguous.

    Allowed: adding or dropping a channel axis of size 1 (``(n, 28, 28)`` <->
    ``(n, 28, 28, 1)``) and flattening or unflattening (``(n, 28, 28)`` <->
    ``(n, 784)``).  Anything else raises :class:`DataError` naming both shapes and
    the Input shape that would fit.

    Args:
        x: a batch, first axis is examples.
        input_shape: the model Input's shape without the batch axis; None means any size.
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    target = tuple(None if d is None else int(d) for d in input_shape)
    have = tuple(int(d) for d in x.shape[1:])
    n = x.shape[0]
    if _matches(have, target):
        return x
    candidates = []
    squeezed = tuple(d for d in have if d != 1)
    if None in target:
        candidates += [have + (1,)]
        if have and have[-1] == 1:
            candidates.append(have[:-1])
    for cand in candidates:
        if _matches(cand, target):
            return x.reshape((n, *cand))
    if None not in target and math.prod(target) == math.prod(have):
        wanted_squeezed = tuple(d for d in target if d != 1)
        if len(target) == 1 or len(have) == 1 or wanted_squeezed == squeezed:
            return x.reshape((n, *target))
    raise DataError(_shape_mismatch(have, target))


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Labels 0..K-1 as float32 one-hot rows, for MSE (Nielsen's quadratic cost) and categorical losses."""
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataError(f"Labels must be between 0 and {num_classes - 1}, but {bad} was found: give the output "
                        f"layer as many units as there are classes.")
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def describe_shape(shape: tuple[int, ...]) -> str:
    """``(28, 28)`` -> ``"28x28 greyscale images"``: how the data look, in words."""
    if len(shape) == 2:
        return f"{shape[0]}x{shape[1]} greyscale images"
    if len(shape) == 3 and shape[-1] == 1:
        return f"{shape[0]}x{shape[1]} greyscale images"
    if len(shape) == 3 and shape[-1] == 3:
        return f"{shape[0]}x{shape[1]} colour (RGB) images"
    if len(shape) == 1:
        return f"vectors of {shape[0]} numbers"
    return "arrays of shape " + _fmt(shape)


# --------------------------------------------------------------------------- shapes
def _matches(have: tuple[int, ...], target: tuple[int | None, ...]) -> bool:
    return len(have) == len(target) and all(t is None or t == h for h, t in zip(have, target))


def _fmt(shape: tuple[Any, ...]) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _suggest(have: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """The Input shape of the model's rank that the data fit."""
    spatial = have if len(have) != 3 or have[-1] != 1 else have[:-1]
    if rank == 1:
        return (math.prod(have),)
    if len(spatial) == 2:
        return spatial if rank == 2 else (*spatial, 1)
    return have


def _shape_mismatch(have: tuple[int, ...], target: tuple[int | None, ...]) -> str:
    fit = _suggest(have, len(target))
    return (
        f"The model's Input expects {_fmt(target)} but the data are {describe_shape(have)} "
        f"(each example is {_fmt(have)}): set the Input shape to {_fmt(fit)}, or choose data of the "
        "shape the model expects."
    )


# --------------------------------------------------------------------------- value helpers
def _to_unit(x: np.ndarray, what: str) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integers and floats up to 255 are divided by 255."""
    if x.dtype.kind not in "uif":
        raise DataError(f"The images in {what} are not numbers (type {x.dtype}): store pixel values 0-255.")
    if x.size == 0:
        return x.astype(np.float32)
    out = x.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise DataError(f"The images in {what} contain NaN or infinite values: remove or fix those rows.")
    lo, hi = float(out.min()), float(out.max())
    if lo < 0:
        raise DataError(f"The images in {what} have negative pixel values (down to {lo:g}): use values 0-255 "
                        "or 0-1.")
    if hi > 255:
        raise DataError(f"The images in {what} have pixel values up to {hi:g}: use values 0-255 or 0-1.")
    if x.dtype.kind in "ui" or hi > 1.0:
        out /= 255.0
    return out


def _encode_labels(parts: list[np.ndarray], what: str) -> tuple[list[np.ndarray], list[str]]:
    """Map labels (class numbers or names) to 0..K-1 over all parts together."""
    parts = [np.asarray(p) for p in parts]
    parts = [p.reshape(-1) if p.ndim > 1 and math.prod(p.shape[1:]) == 1 else p for p in parts]
    for p in parts:
        if p.ndim != 1:
            raise DataError(
                f"The labels in {what} have shape {p.shape}: give one class number per example "
                "(not one-hot rows)."
            )
    allv = np.concatenate(parts) if parts else np.zeros(0)
    if allv.dtype.kind == "f":
        if not np.all(np.isfinite(allv)) or not np.all(allv == np.round(allv)):
            raise DataError(f"The labels in {what} are not whole class numbers: use 0, 1, 2... or class names.")
        parts = [p.astype(np.int64) for p in parts]
        allv = allv.astype(np.int64)
    elif allv.dtype.kind not in "uiUSO":
        raise DataError(f"The labels in {what} are of type {allv.dtype}: use class numbers or names.")
    if allv.dtype.kind in "SO":
        parts = [p.astype(str) for p in parts]
        allv = allv.astype(str)
    if allv.size == 0:
        raise DataError(f"{what} holds no examples.")
    classes = np.unique(allv)
    if len(classes) < 2:
        raise DataError(f"All labels in {what} are {classes[0]!r}: a classifier needs at least two classes.")
    encoded = [np.searchsorted(classes, p).astype(np.int64) for p in parts]
    return encoded, [str(c) for c in classes]


def _holdout(name: str, x: np.ndarray, y: np.ndarray, class_names: list[str], source: str) -> Dataset:
    """A Dataset from data with no test part: hold out a fixed stratified share for testing."""
    xa, ya, xb, yb = stratified_split(x, y, HOLDOUT_FRACTION, SPLIT_SEED)
    if len(xb) == 0:
        return Dataset(name, xa, ya, None, None, class_names, source)
    return Dataset(name, xa, ya, xb, yb, class_names,
                   f"{source}; {len(xb)} examples ({HOLDOUT_FRACTION:.0%} of each class) held out for testing")


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


# --------------------------------------------------------------------------- IDX
def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}.") from None
    except (EOFError, gzip.BadGzipFile, ValueError):
        raise DataError(f"{path.name} is a damaged gzip file: download or copy it again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path.name} is not an IDX file (its header is wrong): is it really MNIST-format data?")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path.name} is not an IDX file (its header is cut short).")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path.name} says it holds {_fmt(dims)} values ({expected:,} bytes) but has "
            f"{len(raw) - header:,} bytes of data: the file is truncated or damaged."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_role(name: str) -> tuple[str, str] | None:
    """``train-images-idx3-ubyte.gz`` -> ("train", "images"); None for other files."""
    low = name.lower()
    if "idx" not in low and "ubyte" not in low:
        return None
    if "images" in low or "idx3" in low:
        kind = "images"
    elif "labels" in low or "idx1" in low:
        kind = "labels"
    else:
        return None
    if "t10k" in low or "test" in low:
        return "test", kind
    if "train" in low:
        return "train", kind
    return "", kind


def _find_idx(folder: Path) -> dict[tuple[str, str], Path]:
    found: dict[tuple[str, str], Path] = {}
    for p in sorted(folder.iterdir()):
        role = _idx_role(p.name) if p.is_file() else None
        if role is None:
            continue
        if role in found:
            raise DataError(
                f"{folder} holds two {role[0] or 'unnamed'} {role[1]} files ({found[role].name} and {p.name}): "
                "keep only one of each."
            )
        found[role] = p
    return found


def _load_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images)
    y = read_idx(labels)
    if x.ndim < 2:
        raise DataError(f"{images.name} holds {x.ndim}-D data, not images: is it a labels file?")
    if y.ndim != 1:
        raise DataError(f"{labels.name} holds {y.ndim}-D data, not one label per image: is it an images file?")
    if len(x) != len(y):
        raise DataError(
            f"{images.name} holds {len(x)} images but {labels.name} holds {len(y)} labels: they must belong "
            "together (same set, same number)."
        )
    return x, y


def _load_idx_folder(folder: Path, found: dict[tuple[str, str], Path], name: str) -> Dataset:
    pairs = {}
    for split in ("train", "test", ""):
        img, lab = found.get((split, "images")), found.get((split, "labels"))
        if img is None and lab is None:
            continue
        if img is None or lab is None:
            have = (img or lab).name
            missing = "images" if img is None else "labels"
            raise DataError(f"{folder} has {have} but no matching {split + ' ' if split else ''}{missing} file: "
                            "copy it into the same folder.")
        pairs[split] = _load_idx_pair(img, lab)
    if "train" in pairs:
        xtr, ytr = pairs["train"]
        xte, yte = pairs.get("test", (None, None))
    else:
        xtr, ytr = pairs.get("test") or pairs[""]
        xte = yte = None
    what = str(folder)
    ys, names = _encode_labels([ytr] + ([yte] if yte is not None else []), what)
    x_train = _to_unit(xtr, what)
    if xte is not None:
        x_test = _to_unit(xte, what)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(f"The training images in {folder} are {_fmt(x_train.shape[1:])} but the test images "
                            f"are {_fmt(x_test.shape[1:])}: both must have the same size.")
        return Dataset(name, x_train, ys[0], x_test, ys[1], names, f"IDX files in {folder}")
    return _holdout(name, x_train, ys[0], names, f"IDX files in {folder}")


@functools.lru_cache(maxsize=1)
def _mnist_sample_arrays() -> tuple[np.ndarray, ...]:
    folder = sample_data_dir()
    images = folder / "t10k-images-idx3-ubyte.gz"
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        raise DataError(
            f"The bundled MNIST sample is missing from {folder}: reinstall NeuralStudio, or use another data set."
        )
    x, y = _load_idx_pair(images, labels)
    x = _to_unit(x, "the MNIST sample")
    y = y.astype(np.int64)
    frac = SAMPLE_TEST_SIZE / len(y)
    arrays = stratified_split(x, y, frac, SPLIT_SEED)
    _readonly(*arrays)
    return arrays


def _mnist_sample() -> Dataset:
    """The 10,000 MNIST t10k images shipped with the app: 8,000 to train on, 2,000 to test (fixed)."""
    x_train, y_train, x_test, y_test = _mnist_sample_arrays()
    return Dataset("mnist-sample", x_train, y_train, x_test, y_test, list(DIGIT_NAMES),
                   "MNIST sample (the 10,000 MNIST test images shipped with NeuralStudio, split 8,000/2,000; "
                   "MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0)")


# --------------------------------------------------------------------------- keras.datasets
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


def _short(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text[:200]


def _keras_mnist() -> Dataset:
    """Full MNIST (60,000 + 10,000) from the Keras cache, downloading it the first time."""
    cached = keras_datasets_dir() / "mnist.npz"
    if cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as f:
                arrays = (f["x_train"], f["y_train"], f["x_test"], f["y_test"])
        except (OSError, ValueError, KeyError) as exc:
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
    if xtr.ndim != 3 or len(xtr) != len(ytr) or xte.ndim != 3 or len(xte) != len(yte):
        raise DataError(f"The cached {name} files in {keras_datasets_dir()} have unexpected shapes: delete them "
                        "and download them again.")
    return Dataset(name, _to_unit(xtr, name), ytr.astype(np.int64).reshape(-1),
                   _to_unit(xte, name), yte.astype(np.int64).reshape(-1), list(names), source)


# --------------------------------------------------------------------------- folders
def _load_folder(folder: Path) -> Dataset:
    found = _find_idx(folder)
    if found:
        return _load_idx_folder(folder, found, str(folder))
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = {p.name.lower() for p in subdirs}
    if names == {"train", "test"}:
        by = {p.name.lower(): p for p in subdirs}
        xtr, ytr, classes = _read_image_classes(by["train"])
        xte, yte, test_classes = _read_image_classes(by["test"])
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise DataError(f"{by['test']} has classes that {by['train']} lacks ({', '.join(unknown[:5])}): "
                            "give both the same class folders.")
        yte = np.array([classes.index(test_classes[i]) for i in yte], dtype=np.int64)
        if xte.shape[1:] != xtr.shape[1:]:
            raise DataError(f"The training images are {_size(xtr)} but the test images are {_size(xte)}: "
                            "resize them to the same size.")
        return Dataset(str(folder), xtr, ytr, xte, yte, classes, f"image folders in {folder}")
    if not subdirs:
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        if not files:
            raise DataError(f"{folder} is empty: put one sub-folder of images per class in it (e.g. 0/, 1/, ...), "
                            "or IDX files.")
        raise DataError(
            f"{folder} has files but no IDX files and no class sub-folders: put the images into one sub-folder "
            "per class (the folder name is the class), or choose a .csv or .npz file."
        )
    x, y, classes = _read_image_classes(folder)
    return _holdout(str(folder), x, y, classes, f"image folders in {folder}")


def _size(x: np.ndarray) -> str:
    return f"{x.shape[2]}x{x.shape[1]}"


def _read_image_classes(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from ``folder/<class>/*``, as greyscale float32 in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"{folder} has {len(classes)} class sub-folder{'s' if len(classes) != 1 else ''}: a classifier needs "
            "at least two (one sub-folder of images per class)."
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    first: dict[tuple[int, int], Path] = {}
    for ci, cls in enumerate(classes):
        files = sorted(p for p in (folder / cls).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(
                f"The class folder {folder / cls} holds no images ({', '.join(IMAGE_SUFFIXES)}): add some or "
                "remove the folder."
            )
        for f in files:
            if len(images) >= MAX_IMAGES:
                raise DataError(f"{folder} holds more than {MAX_IMAGES:,} images: use a smaller folder.")
            try:
                with Image.open(f) as im:
                    arr = np.asarray(im.convert("L"), dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{f} cannot be read as an image ({_short(exc)}): remove or replace it.") from None
            first.setdefault(arr.shape, f)
            images.append(arr)
            labels.append(ci)
    if len(first) > 1:
        sizes = "; ".join(f"{w}x{h} (e.g. {p.relative_to(folder)})" for (h, w), p in list(first.items())[:4])
        raise DataError(
            f"The images in {folder} have different sizes: {sizes}. Resize them all to one size "
            "(28x28 for MNIST-like digits) before training."
        )
    x = np.stack(images).astype(np.float32) / 255.0
    return x, np.asarray(labels, dtype=np.int64), classes


# --------------------------------------------------------------------------- CSV
def _square_images(x: np.ndarray) -> np.ndarray:
    """Rows of h*w pixels become (h, w) images when the count is a perfect square."""
    d = x.shape[1]
    side = math.isqrt(d)
    if side * side == d and side > 1:
        return x.reshape(len(x), side, side)
    return x


def _load_csv(path: Path, label_column: str | None) -> Dataset:
    """One row per example: a label column and pixel columns (0-255 or 0-1)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not a UTF-8 text file: save it as CSV text.") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror}.") from None
    head = []
    for r in csv.reader(io.StringIO(text[:1_000_000])):
        if r and any(c.strip() for c in r):
            head.append(r)
            if len(head) == 2:
                break
    if not head:
        raise DataError(f"{path.name} is empty: it needs one row per example with a label column.")
    header = [c.strip() for c in head[0]]
    # A header has more text cells than the row after it (text labels stay text in every row).
    words = [sum(not _is_number(c) for c in r) for r in head]
    has_header = words[0] > 0 and (len(head) == 1 or words[0] > words[1])
    ncols = len(header)
    if ncols < 2:
        raise DataError(f"{path.name} has only one column: it needs a label column and at least one pixel column.")
    if has_header and len(head) == 1:
        raise DataError(f"{path.name} has a header but no data rows.")
    col = _label_index(header if has_header else None, ncols, label_column, path.name)
    feats = [c for c in range(ncols) if c != col]
    fast = _numeric_csv(text, int(has_header), ncols)
    if fast is not None:  # the common case (MNIST-style CSVs): parsed in C, no per-cell Python objects
        return _csv_dataset(path, fast[:, feats], fast[:, col].astype(np.float64))
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    body = rows[1:] if has_header else rows
    for i, r in enumerate(body):
        if len(r) != ncols:
            raise DataError(f"Row {i + 1 + has_header} of {path.name} has {len(r)} values but the first row has "
                            f"{ncols}: every row needs the same columns.")
    labels = np.array([r[col].strip() for r in body])
    try:
        x = np.array([[float(r[c]) for c in feats] for r in body], dtype=np.float32)
    except ValueError:
        for i, r in enumerate(body):
            for c in feats:
                if not _is_number(r[c]):
                    name = f"column {header[c]!r}" if has_header else f"column {c + 1}"
                    raise DataError(
                        f"Row {i + 1 + has_header}, {name} of {path.name} is {r[c].strip()!r}, not a number: "
                        "pixel columns must hold numbers (0-255 or 0-1). Is the label column right?"
                    ) from None
        raise
    if all(_is_number(v) for v in labels):
        return _csv_dataset(path, x, np.array([float(v) for v in labels]))
    return _csv_dataset(path, x, labels)


def _numeric_csv(text: str, skip: int, ncols: int) -> np.ndarray | None:
    """An all-numeric CSV as one float32 array, or None when it needs the careful (slow) parser."""
    try:
        arr = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=skip, dtype=np.float32, ndmin=2,
                         comments=None, quotechar='"')
    except ValueError:
        return None
    if arr.shape[1] != ncols or len(arr) == 0:
        return None
    return arr


def _csv_dataset(path: Path, x: np.ndarray, labels: np.ndarray) -> Dataset:
    what = path.name
    (y,), names = _encode_labels([labels], what)
    x = _square_images(_to_unit(x, what))
    return _holdout(str(path), x, y, names, f"CSV file {path}")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _label_index(header: list[str] | None, ncols: int, label_column: str | None, fname: str) -> int:
    if label_column is not None:
        lc = str(label_column).strip()
        if header is not None:
            lower = [h.lower() for h in header]
            if lc.lower() in lower:
                return lower.index(lc.lower())
        if lc.isdigit() and int(lc) < ncols:
            return int(lc)
        cols = ", ".join(header[:8]) + ("..." if header and len(header) > 8 else "") if header else f"0-{ncols - 1}"
        raise DataError(f"{fname} has no column {label_column!r}: its columns are {cols}.")
    if header is not None:
        lower = [h.lower() for h in header]
        for cand in _LABEL_COLUMNS:
            if cand in lower:
                return lower.index(cand)
    return 0


# --------------------------------------------------------------------------- NPZ
def _load_npz(path: Path) -> Dataset:
    """``x_train``, ``y_train`` and optionally ``x_test``, ``y_test`` (and ``class_names``)."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror}.") from None
    if magic != b"PK\x03\x04":
        raise DataError(f"{path.name} is not a valid .npz file (not a zip archive): save it with numpy.savez.")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"{path.name} stores Python objects (pickles), which NeuralStudio does not load for "
                            "safety: save plain numeric arrays with numpy.savez.") from None
        raise DataError(f"{path.name} is not a valid .npz file ({_short(exc)}).") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path.name} is not a valid .npz file ({_short(exc)}).") from None
    missing = [k for k in ("x_train", "y_train") if k not in data]
    if missing:
        raise DataError(f"{path.name} has no {' and no '.join(missing)} array (it holds: "
                        f"{', '.join(sorted(data)) or 'nothing'}): save it with "
                        "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...).")
    has_xt, has_yt = "x_test" in data, "y_test" in data
    if has_xt != has_yt:
        raise DataError(f"{path.name} has {'x_test' if has_xt else 'y_test'} without "
                        f"{'y_test' if has_xt else 'x_test'}: include both or neither.")
    what = path.name
    pairs = [("train", data["x_train"], data["y_train"])]
    if has_xt:
        pairs.append(("test", data["x_test"], data["y_test"]))
    for split, x, y in pairs:
        if x.ndim < 2:
            raise DataError(f"x_{split} in {what} has shape {x.shape}: it needs one row (or image) per example.")
        if len(x) != len(np.asarray(y).reshape(len(y), -1)):
            raise DataError(f"x_{split} in {what} has {len(x)} examples but y_{split} has {len(y)} labels: "
                            "they must be as many.")
    ys, names = _encode_labels([p[2] for p in pairs], what)
    if "class_names" in data:
        given = [str(c) for c in np.asarray(data["class_names"]).reshape(-1)]
        ints = all(n.isdigit() for n in names)
        if ints and len(given) > max(int(n) for n in names):
            names = [given[int(n)] for n in names]
    xs = [_to_unit(p[1], what) for p in pairs]
    if len(xs) == 2:
        if xs[0].shape[1:] != xs[1].shape[1:]:
            raise DataError(f"x_train in {what} has examples of shape {_fmt(xs[0].shape[1:])} but x_test has "
                            f"{_fmt(xs[1].shape[1:])}: both must have the same shape.")
        return Dataset(str(path), xs[0], ys[0], xs[1], ys[1], names, f"NPZ file {path}")
    return _holdout(str(path), xs[0], ys[0], names, f"NPZ file {path}")
