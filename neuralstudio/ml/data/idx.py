"""IDX files (the MNIST format), folders of them, and the bundled MNIST sample.

The sample ships as IDX files, and Keras's Fashion-MNIST cache is IDX files
too, so the one careful IDX reader (:func:`read_idx`: header first, its declared
size checked against the file and the memory budget, then exactly that many
bytes) lives here for all of them.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from neuralstudio.core.paths import sample_data_dir
from neuralstudio.ml.data.budget import _DEFLATE_MAX_RATIO, _check_memory, _read_exact, _size_text
from neuralstudio.ml.data.dataset import (
    SPLIT_SEED,
    DataError,
    Dataset,
    _encode_labels,
    _fmt,
    _holdout,
    _list_dir,
    _readonly,
    _to_unit,
    stratified_split,
)

SAMPLE_TEST_SIZE = 2_000  # of the 10,000 t10k images; the other 8,000 are for training
DIGIT_NAMES = [str(i) for i in range(10)]
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_DIMS = 16  # images are 3-D, labels 1-D; numpy allows no more than 32 or 64


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
