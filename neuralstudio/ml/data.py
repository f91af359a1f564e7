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
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import itertools
import math
import os
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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
MAX_DATA_BYTES = 4 * 1024**3  # the most memory one data set may take, on any computer
MAX_CSV_COLUMNS = 1024 * 1024 + 1  # a 1024x1024 image and its label; csv.reader builds a row at ~50 bytes a cell
MAX_CSV_ROW_CHARS = 64 * 1024 * 1024  # one row of text; the parsers hold a whole row (4 bytes a character)
MAX_LABEL_CHARS = 200  # a class name; longer ones are a mistake (or a label array of gigabytes)

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_LABEL_COLUMNS = ("label", "class", "y", "target")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_DIMS = 16  # images are 3-D, labels 1-D; numpy allows no more than 32 or 64
_DEFLATE_MAX_RATIO = 1032  # deflate (gzip, zip) cannot inflate one byte into more than this
_READ_CHUNK = 16 * 1024 * 1024  # bounded reads go in pieces of this size
# Bytes of memory per byte of CSV file at worst: up to one number per two characters, held as float32 by the
# parser, as the pixel columns, as values in [0, 1] and as the train/test split, with room for the parser's growth.
_CSV_MEMORY_PER_BYTE = 10
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


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
def _to_unit(x: np.ndarray, what: str, *, reuse: bool = False) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integers and floats up to 255 are divided by 255.

    ``reuse=True`` scales a float32 ``x`` in place (one copy less of a large
    CSV); otherwise ``x`` is left as it was.
    """
    if x.dtype.kind not in "uif":
        raise DataError(f"The images in {what} are not numbers (type {x.dtype}): store pixel values 0-255.")
    if x.size == 0:
        return x.astype(np.float32)
    out = x if reuse and x.dtype == np.float32 and x.flags.writeable else x.astype(np.float32)
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
        if allv.size and float(np.abs(allv).max()) > 2**53:  # past this, floats are not exact whole numbers
            raise DataError(f"The labels in {what} go up to {float(np.abs(allv).max()):g}: use class numbers 0, 1, "
                            "2... or class names.")
        parts = [p.astype(np.int64) for p in parts]
        allv = allv.astype(np.int64)
    elif allv.dtype.kind not in "uiUSO":
        raise DataError(f"The labels in {what} are of type {allv.dtype}: use class numbers or names.")
    if allv.dtype.kind in "SO":
        try:
            parts = [p.astype(str) for p in parts]
        except UnicodeDecodeError:
            raise DataError(f"The labels in {what} are bytes that are not text: use class numbers or names.") from None
        allv = np.concatenate(parts)
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


# --------------------------------------------------------------------------- memory budget
def memory_budget_bytes() -> int:
    """The most memory one data set may take: 4 GiB, or half the RAM, or half an address-space limit if smaller.

    Every loader checks what a file will cost against this before allocating,
    so that a small hostile or damaged file gives a message instead of
    swapping the computer to a halt or dying of MemoryError.  Half, because
    training needs room besides the data (the model, batches, a copy of the
    arrays for the framework).
    """
    limits = [MAX_DATA_BYTES]
    for total in (_physical_memory_bytes(), _address_space_limit()):
        if total:
            limits.append(total // 2)
    return min(limits)


def _physical_memory_bytes() -> int | None:
    """The computer's RAM, or None where it cannot be found out."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    if sys.platform == "win32":
        try:
            import ctypes

            class MemoryStatus(ctypes.Structure):
                _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total_phys", ctypes.c_ulonglong),
                            ("avail_phys", ctypes.c_ulonglong), ("total_page", ctypes.c_ulonglong),
                            ("avail_page", ctypes.c_ulonglong), ("total_virtual", ctypes.c_ulonglong),
                            ("avail_virtual", ctypes.c_ulonglong), ("avail_extended", ctypes.c_ulonglong)]

            status = MemoryStatus()
            status.length = ctypes.sizeof(MemoryStatus)
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
                return int(status.total_phys)
        except (AttributeError, OSError, ValueError):
            pass
    return None


def _address_space_limit() -> int | None:
    """The process's address-space limit (``ulimit -v``), or None when there is none."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else int(soft)


def _size_text(nbytes: int) -> str:
    """``1_610_612_736`` -> ``"1.5 GB"`` (in the 1024-based units that computers report RAM in)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes} bytes"


def _check_memory(need: int, what: str, fix: str) -> None:
    """Refuse ``what`` when it would take more than :func:`memory_budget_bytes`; ``fix`` says what to do instead."""
    budget = memory_budget_bytes()
    if need > budget:
        raise DataError(f"{what} would take {_size_text(need)} of memory, more than the {_size_text(budget)} "
                        f"NeuralStudio allows for a data set on this computer: {fix}")


def _read_exact(fh: IO[bytes], nbytes: int) -> tuple[np.ndarray, int]:
    """Read at most ``nbytes`` into a new uint8 array, in pieces; returns the array and how many bytes came.

    Never more than asked, so a stream that inflates without end costs nothing
    beyond the size already checked.
    """
    out = np.empty(nbytes, dtype=np.uint8)
    view = memoryview(out)
    got = 0
    while got < nbytes:
        n = fh.readinto(view[got : got + _READ_CHUNK])
        if not n:
            break
        got += n
    return out, got


# --------------------------------------------------------------------------- IDX
def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not.

    The header is read first (through a streaming gzip reader when the file is
    gzipped: 1.5 MB of gzip can inflate to 1.5 GB) and the size it declares is
    checked against what the file can hold and against the memory budget;
    then exactly that many bytes are read, and a file with fewer or more is
    refused as damaged.
    """
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            file_size = os.fstat(raw.fileno()).st_size
            fh: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            dims, dtype, header_len = _read_idx_header(fh, path)
            data_len = math.prod(dims) * dtype.itemsize
            _check_idx_size(path, dims, dtype, header_len, file_size, gzipped)
            buf, got = _read_exact(fh, data_len)
            extra = bool(fh.read(1)) if got == data_len else False
    except DataError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise DataError(f"{path.name} is a damaged gzip file: download or copy it again.") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}.") from None
    if got != data_len or extra:
        raise DataError(
            f"{path.name} says it holds {_fmt(dims)} values ({data_len:,} bytes) but has "
            f"{'more' if extra else f'{got:,} bytes of'} data: the file is truncated or damaged. "
            "Download or copy it again."
        )
    arr = buf.view(dtype)
    if not dtype.isnative:
        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return arr.reshape(dims)


def _read_idx_header(fh: IO[bytes], path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """The dimensions, value type and header length of an IDX file, read from its first bytes only."""
    head = fh.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise DataError(f"{path.name} is not an IDX file (its header is wrong): is it really MNIST-format data?")
    ndim = head[3]
    if not 1 <= ndim <= _IDX_MAX_DIMS:
        raise DataError(f"{path.name} is not an IDX file (its header declares {ndim} dimensions): is it really "
                        "MNIST-format data?")
    raw_dims = fh.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path.name} is not an IDX file (its header is cut short).")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    return dims, np.dtype(_IDX_DTYPES[head[2]]), 4 + 4 * ndim


def _check_idx_size(path: Path, dims: tuple[int, ...], dtype: np.dtype, header_len: int, file_size: int,
                    gzipped: bool) -> None:
    """Refuse an IDX header whose declared size the file cannot hold, or which would not fit in memory."""
    data_len = math.prod(dims) * dtype.itemsize
    if not gzipped and header_len + data_len != file_size:
        raise DataError(
            f"{path.name} says it holds {_fmt(dims)} values ({data_len:,} bytes) but has "
            f"{max(file_size - header_len, 0):,} bytes of data: the file is truncated or damaged. "
            "Download or copy it again."
        )
    if gzipped and header_len + data_len > file_size * _DEFLATE_MAX_RATIO:
        raise DataError(
            f"{path.name} says it holds {_fmt(dims)} values ({_size_text(data_len)}), more than a gzip file of "
            f"{_size_text(file_size)} can hold: the file is damaged. Download or copy it again."
        )
    _check_memory(math.prod(dims) * (dtype.itemsize + 4),  # the values as stored, and as float32
                  f"{path.name} holds {_fmt(dims)} values, which", "use a smaller part of the data set.")


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
    for p in _list_dir(folder):
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


# --------------------------------------------------------------------------- folders
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


def _size(x: np.ndarray) -> str:
    return f"{x.shape[2]}x{x.shape[1]}"


def _read_image_classes(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from ``folder/<class>/*``, as greyscale float32 in [0, 1].

    Each image goes through :func:`neuralstudio.ml.preprocess.load_gray_image`
    (the reader ``predict`` uses), which checks its size before decoding it,
    turns it upright from its EXIF orientation and scales 16-bit and float
    images by their real range.  The whole set is checked against the memory
    budget from the first image's size and the number of files, before the
    rest are read.
    """
    classes = sorted(p.name for p in _list_dir(folder) if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"{folder} has {len(classes)} class sub-folder{'s' if len(classes) != 1 else ''}: a classifier needs "
            "at least two (one sub-folder of images per class)."
        )
    files = _image_files(folder, classes)
    labels = np.asarray([ci for ci, _f in files], dtype=np.int64)
    x: np.ndarray | None = None
    first: dict[tuple[int, int], Path] = {}
    for i, (_ci, f) in enumerate(files):
        arr = _read_training_image(f)
        if x is None:
            _check_memory(len(files) * arr.size * 4, f"The {len(files):,} images of {_size(arr[None])} in {folder}",
                          "use fewer or smaller images.")
            x = np.empty((len(files), *arr.shape), dtype=np.float32)
        first.setdefault(arr.shape, f)
        if arr.shape == x.shape[1:]:
            x[i] = arr
    if len(first) > 1:
        sizes = "; ".join(f"{w}x{h} (e.g. {p.relative_to(folder)})" for (h, w), p in list(first.items())[:4])
        raise DataError(
            f"The images in {folder} have different sizes: {sizes}. Resize them all to one size "
            "(28x28 for MNIST-like digits) before training."
        )
    assert x is not None  # every class folder holds at least one image
    return x, labels, classes


def _list_dir(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; an unreadable folder is a message, not a traceback."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder} cannot be read ({exc.strerror or exc}): check that it exists and that you may "
                        "open it.") from None


def _image_files(folder: Path, classes: list[str]) -> list[tuple[int, Path]]:
    """``(class index, file)`` for every image of every class folder, at most :data:`MAX_IMAGES` in all."""
    files: list[tuple[int, Path]] = []
    for ci, cls in enumerate(classes):
        found = []
        try:
            with os.scandir(folder / cls) as entries:
                for entry in entries:
                    if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                        found.append(folder / cls / entry.name)
                        if len(files) + len(found) > MAX_IMAGES:
                            raise DataError(f"{folder} holds more than {MAX_IMAGES:,} images: use a smaller folder.")
        except OSError as exc:
            raise DataError(f"{folder / cls} cannot be read ({exc.strerror or exc}): check that you may open "
                            "it.") from None
        if not found:
            raise DataError(
                f"The class folder {folder / cls} holds no images ({', '.join(IMAGE_SUFFIXES)}): add some or "
                "remove the folder."
            )
        files.extend((ci, f) for f in sorted(found))
    return files


def _read_training_image(path: Path) -> np.ndarray:
    """One training image as stored (grey levels in [0, 1]); an unreadable or oversized one is a DataError."""
    from neuralstudio.ml.preprocess import ImageFileError, load_gray_image

    try:
        return load_gray_image(path, as_stored=True)
    except ImageFileError as exc:
        raise DataError(f"{exc} Or remove it from the training images.") from None


# --------------------------------------------------------------------------- CSV
def _square_images(x: np.ndarray) -> np.ndarray:
    """Rows of h*w pixels become (h, w) images when the count is a perfect square."""
    d = x.shape[1]
    side = math.isqrt(d)
    if side * side == d and side > 1:
        return x.reshape(len(x), side, side)
    return x


def _load_csv(path: Path, label_column: str | None) -> Dataset:
    """One row per example: a label column and pixel columns (0-255 or 0-1).

    The file is streamed, never held whole as text, and each row is bounded
    (:data:`MAX_CSV_COLUMNS`, :data:`MAX_CSV_ROW_CHARS`) before a parser builds
    it; the file's size bounds what the numbers can take, checked first.
    """
    size = _file_size(path)
    _check_memory(size * _CSV_MEMORY_PER_BYTE, f"{path.name} ({_size_text(size)} of text)",
                  "save the data as an .npz file (numpy.savez; it loads in a fraction of the memory), or use fewer "
                  "rows.")
    with _open_csv(path) as fh:
        head = list(itertools.islice(_csv_rows(fh, path.name), 2))
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
    fast = _numeric_csv(path, int(has_header), ncols)
    if fast is not None:  # the common case (MNIST-style CSVs): parsed in C, no per-cell Python objects
        labels = fast[:, col].astype(np.float64)
        x = fast[:, 1:] if col == 0 else fast[:, feats]
        del fast
        return _csv_dataset(path, x, labels)
    x, text_labels = _parse_csv_rows(path, header if has_header else None, ncols, col)
    if all(_is_number(v) for v in text_labels):
        return _csv_dataset(path, x, np.array([float(v) for v in text_labels]))
    return _csv_dataset(path, x, np.array(text_labels))


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror or exc}.") from None


@contextlib.contextmanager
def _open_csv(path: Path) -> Iterator[IO[str]]:
    """A CSV file opened as UTF-8 text for streaming (BOM dropped); opening and decoding errors become messages."""
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    with fh:
        try:
            yield fh
        except UnicodeDecodeError:
            raise DataError(f"{path.name} is not a UTF-8 text file: save it as CSV text.") from None
        except OSError as exc:
            raise DataError(f"{path} cannot be read: {exc.strerror or exc}.") from None


class _CsvLines:
    """The lines of a CSV file for csv.reader or np.loadtxt, refusing a row too wide or too long before it is parsed.

    Both parsers build a whole row at once (csv.reader as a list of Python
    strings, ~50 bytes a cell), so one line of a few hundred megabytes would
    take gigabytes.  csv.reader tells where its rows end (:meth:`row_done`);
    for np.loadtxt a row ends at a line end outside quotes.
    """

    def __init__(self, fh: IO[str], name: str, *, rows_from_reader: bool) -> None:
        self._fh = fh
        self._name = name
        self._rows_from_reader = rows_from_reader
        self._chars = self._commas = self._quotes = 0

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        line = self._fh.readline(MAX_CSV_ROW_CHARS + 1)
        if not line:
            raise StopIteration
        self._chars += len(line)
        self._commas += line.count(",")
        self._quotes += line.count('"')
        if self._chars > MAX_CSV_ROW_CHARS or self._commas >= MAX_CSV_COLUMNS:
            raise DataError(
                f"{self._name} has a row of more than {MAX_CSV_COLUMNS - 1:,} pixel values or {MAX_CSV_ROW_CHARS:,} "
                "characters: NeuralStudio reads CSVs of up to 1024x1024-pixel images. Check the separators (one "
                "row per line), or save the data as an .npz file (numpy.savez)."
            )
        if not self._rows_from_reader and self._quotes % 2 == 0:
            self.row_done()
        return line

    def row_done(self) -> None:
        self._chars = self._commas = self._quotes = 0


def _csv_rows(fh: IO[str], name: str) -> Iterator[list[str]]:
    """The non-empty rows of a CSV file, each bounded (see :class:`_CsvLines`); csv's errors become messages."""
    lines = _CsvLines(fh, name, rows_from_reader=True)
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(_csv_error(name, reader.line_num, exc)) from None
        lines.row_done()
        if row and any(c.strip() for c in row):
            yield row


def _csv_error(name: str, line: int, exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (f"{name} has a value of more than {csv.field_size_limit():,} characters (by line {line:,}), "
                'usually a quote (") that is opened and never closed: close or remove it. Pixel values and labels '
                "are short.")
    return f"{name} cannot be read as CSV at line {line:,} ({_short(exc)}): check its quotes and commas."


def _parse_csv_rows(path: Path, header: list[str] | None, ncols: int, col: int) -> tuple[np.ndarray, list[str]]:
    """The careful parser, for CSVs np.loadtxt refuses (text labels, ragged or quoted rows): the pixel values and the
    label texts, one row at a time, so that memory stays near that of the numbers."""
    feats = [c for c in range(ncols) if c != col]
    labels: list[str] = []
    values: list[np.ndarray] = []
    with _open_csv(path) as fh:
        rows = _csv_rows(fh, path.name)
        if header is not None:
            next(rows)
        for i, r in enumerate(rows, start=1 + (header is not None)):  # row numbers count the header
            if len(r) != ncols:
                raise DataError(f"Row {i} of {path.name} has {len(r)} values but the first row has {ncols}: every "
                                "row needs the same columns.")
            label = r[col].strip()
            if len(label) > MAX_LABEL_CHARS:
                raise DataError(f"Row {i} of {path.name} has a label of {len(label):,} characters: class names are "
                                f"at most {MAX_LABEL_CHARS}. Is the label column right?")
            labels.append(label)
            try:
                values.append(np.array([float(r[c]) for c in feats], dtype=np.float32))
            except ValueError:
                c = next(c for c in feats if not _is_number(r[c]))
                where = f"column {header[c][:40]!r}" if header is not None else f"column {c + 1}"
                raise DataError(
                    f"Row {i}, {where} of {path.name} is {r[c].strip()[:40]!r}, not a number: pixel columns must "
                    "hold numbers (0-255 or 0-1). Is the label column right?"
                ) from None
    x = np.stack(values) if values else np.zeros((0, len(feats)), np.float32)
    return x, labels


def _numeric_csv(path: Path, skip: int, ncols: int) -> np.ndarray | None:
    """An all-numeric CSV as one float32 array, or None when it needs the careful (slow) parser."""
    try:
        with _open_csv(path) as fh:
            arr = np.loadtxt(_CsvLines(fh, path.name, rows_from_reader=False), delimiter=",", skiprows=skip,
                             dtype=np.float32, ndmin=2, comments=None, quotechar='"')
    except ValueError:  # the careful parser says what is wrong (a DataError is a ValueError too)
        return None
    if arr.shape[1] != ncols or len(arr) == 0:
        return None
    return arr


def _csv_dataset(path: Path, x: np.ndarray, labels: np.ndarray) -> Dataset:
    what = path.name
    (y,), names = _encode_labels([labels], what)
    x = _square_images(_to_unit(x, what, reuse=True))
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
        if header:
            cols = ", ".join(h[:40] for h in header[:8]) + ("..." if len(header) > 8 else "")
        else:
            cols = f"0-{ncols - 1}"
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
    data, held = _read_npz(path, _NPZ_KEYS)
    missing = [k for k in ("x_train", "y_train") if k not in data]
    if missing:
        listed = ", ".join(held[:10]) + (f" and {len(held) - 10} more" if len(held) > 10 else "")
        raise DataError(f"{path.name} has no {' and no '.join(missing)} array (it holds: {listed or 'nothing'}): "
                        "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...).")
    has_xt, has_yt = "x_test" in data, "y_test" in data
    if has_xt != has_yt:
        raise DataError(f"{path.name} has {'x_test' if has_xt else 'y_test'} without "
                        f"{'y_test' if has_xt else 'x_test'}: include both or neither.")
    what = path.name
    pairs = [("train", data["x_train"], data["y_train"])]
    if has_xt:
        pairs.append(("test", data["x_test"], data["y_test"]))
    for split, x, y in pairs:
        _check_npz_pair(what, split, x, y)
    ys, names = _encode_labels([p[2] for p in pairs], what)
    if "class_names" in data:
        given = [str(c) for c in np.asarray(data["class_names"]).reshape(-1)]
        ints = all(n.isascii() and n.isdigit() for n in names)
        if ints and len(given) > max(int(n) for n in names):
            names = [given[int(n)] for n in names]
    xs = [_to_unit(p[1], what) for p in pairs]
    if len(xs) == 2:
        if xs[0].shape[1:] != xs[1].shape[1:]:
            raise DataError(f"x_train in {what} has examples of shape {_fmt(xs[0].shape[1:])} but x_test has "
                            f"{_fmt(xs[1].shape[1:])}: both must have the same shape.")
        return Dataset(str(path), xs[0], ys[0], xs[1], ys[1], names, f"NPZ file {path}")
    return _holdout(str(path), xs[0], ys[0], names, f"NPZ file {path}")


def _check_npz_pair(what: str, split: str, x: np.ndarray, y: np.ndarray) -> None:
    """Inputs with one row (or image) per example, and as many labels."""
    if x.ndim < 2:
        raise DataError(f"x_{split} in {what} has shape {x.shape}: it needs one row (or image) per example.")
    if len(x) and x[0].size == 0:
        raise DataError(f"x_{split} in {what} has shape {x.shape}: each example is empty.")
    if y.ndim == 0:
        raise DataError(f"y_{split} in {what} is a single value, not an array: it needs one label per example.")
    if len(x) != len(y):
        raise DataError(f"x_{split} in {what} has {len(x)} examples but y_{split} has {len(y)} labels: "
                        "they must be as many.")


@dataclass(frozen=True)
class _NpyEntry:
    """A .npy member of an .npz archive, as its zip entry and header describe it (nothing read yet)."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def count(self) -> int:
        return math.prod(self.shape)


try:
    from lzma import LZMAError as _LZMAError
except ImportError:  # a Python built without lzma: zipfile cannot open such members at all
    _LZMAError = zipfile.BadZipFile  # type: ignore[misc,assignment]

# What zipfile and numpy raise on a damaged archive: bad headers and sizes (BadZipFile, ValueError, struct.error),
# damaged compressed data (zlib.error, EOFError, OSError from bz2, LZMAError), encryption (RuntimeError), an
# unknown compression method (NotImplementedError).
_NPZ_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, _LZMAError, EOFError, OSError, ValueError,
               struct.error, NotImplementedError, RuntimeError, KeyError, IndexError, OverflowError, TypeError)


def _read_npz(path: Path, keys: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays ``keys`` of an .npz file (those it has), and the names of everything it holds.

    Nothing is inflated before every wanted member's zip entry and .npy header
    are checked: a 2 MB archive can inflate to gigabytes, and np.load would
    allocate whatever a header declares.  Other members are never read.
    """
    try:
        archive_size = path.stat().st_size
        with zipfile.ZipFile(path) as zf:
            members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in zf.infolist()}
            entries = {k: _npy_entry(zf, members[k], path, k, archive_size) for k in keys if k in members}
            # Each array as stored, plus a float32 (or int64-label) working copy of it.
            need = sum(e.count * (e.dtype.itemsize + 4) for e in entries.values())
            _check_memory(need, f"The arrays in {path.name}", "save a smaller part of the data.")
            arrays = {k: _read_npy(zf, e) for k, e in entries.items()}
    except DataError:
        raise
    except _NPZ_DAMAGE as exc:
        raise DataError(f"{path.name} is not a valid .npz file ({_short(exc)}): save it again with "
                        "numpy.savez.") from None
    return arrays, sorted(members)


def _npy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, key: str, archive_size: int) -> _NpyEntry:
    """Check a member's zip entry and read its .npy header: the sizes they declare must be ones the file can hold."""
    damaged = f"{key} in {path.name} is damaged"
    if not info.filename.endswith(".npy"):
        raise DataError(f"{key} in {path.name} is not a numpy array (.npy): save the file with numpy.savez.")
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    stored = info.compress_type == zipfile.ZIP_STORED
    if (info.compress_size > archive_size or (stored and info.file_size != info.compress_size)
            or (deflated and info.file_size > (info.compress_size + 1) * _DEFLATE_MAX_RATIO)):
        raise DataError(f"{damaged}: its zip entry says {info.compress_size:,} bytes inflate to "
                        f"{info.file_size:,}, which cannot be. Save the file again with numpy.savez.")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise DataError(f"{key} in {path.name} is a .npy of version {version[0]}.{version[1]}, which NeuralStudio "
                            "does not read: save plain numeric arrays with numpy.savez.")
        header_len = fh.tell()
    if dtype.hasobject:
        raise DataError(f"{path.name} stores Python objects (pickles), which NeuralStudio does not load for "
                        "safety: save plain numeric arrays with numpy.savez.")
    entry = _NpyEntry(info, tuple(int(d) for d in shape), dtype)
    nbytes = entry.count * dtype.itemsize
    if any(d < 0 for d in entry.shape) or nbytes > info.file_size - header_len:
        raise DataError(f"{damaged}: its header declares an array of shape {_fmt(entry.shape)} ({nbytes:,} bytes) "
                        f"but it holds {max(info.file_size - header_len, 0):,} bytes. Save the file again with "
                        "numpy.savez.")
    return entry


def _read_npy(zf: zipfile.ZipFile, entry: _NpyEntry) -> np.ndarray:
    """A checked member: numpy reads it in pieces into one array of the declared (and checked) size."""
    with zf.open(entry.info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)
