"""An ``.npz`` file (numpy.savez) with ``x_train``, ``y_train`` and optionally the test part and class names.

Apart because np.load trusts the archive: a 2 MB file can inflate to gigabytes
and a header can declare any size.  Here every wanted member's zip entry and
.npy header are checked before anything is inflated, pickles are refused, and
other members are never read.  Keras's cached ``mnist.npz`` is read the same way.
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuralstudio.core.class_names import MAX_CLASS_NAMES, clean_class_names
from neuralstudio.ml.data.budget import _DEFLATE_MAX_RATIO, _check_memory
from neuralstudio.ml.data.dataset import DataError, Dataset, _encode_labels, _fmt, _holdout, _short, _to_unit

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


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
        names = _named_classes(what, data["class_names"], names)
    xs = [_to_unit(p[1], what) for p in pairs]
    if len(xs) == 2:
        if xs[0].shape[1:] != xs[1].shape[1:]:
            raise DataError(f"x_train in {what} has examples of shape {_fmt(xs[0].shape[1:])} but x_test has "
                            f"{_fmt(xs[1].shape[1:])}: both must have the same shape.")
        return Dataset(str(path), xs[0], ys[0], xs[1], ys[1], names, f"NPZ file {path}")
    return _holdout(str(path), xs[0], ys[0], names, f"NPZ file {path}")


def _named_classes(what: str, given_array: np.ndarray, names: list[str]) -> list[str]:
    """The classes named by the file's ``class_names``: name ``i`` is the name of label ``i``.

    ``names`` are what the labels gave (``"0".."K-1"`` for class numbers, else the sorted label values).  With
    class numbers, the file may name more classes than have examples (the last digit missing); with other labels
    the names are looked up by each label's value.  Too few names for the labels is a mistake in the file.
    """
    try:
        given = clean_class_names(str(c) for c in np.asarray(given_array).astype(str).reshape(-1))
    except UnicodeDecodeError:
        raise DataError(f"class_names in {what} are bytes that are not text: save them as strings.") from None
    if given is None:
        raise DataError(f"class_names in {what} holds more than {MAX_CLASS_NAMES:,} names: a model can name at most "
                        f"{MAX_CLASS_NAMES:,} classes.")
    if names == [str(i) for i in range(len(names))]:
        if len(given) < len(names):
            raise DataError(f"class_names in {what} has {len(given)} names but the labels go up to "
                            f"{len(names) - 1}: give one name per class, in label order.")
        return given
    if all(n.isascii() and n.isdigit() for n in names) and len(given) > max(int(n) for n in names):
        return [given[int(n)] for n in names]
    raise DataError(f"class_names in {what} has {len(given)} names, which do not cover the labels "
                    f"({', '.join(names[:5])}{'...' if len(names) > 5 else ''}): give one name per class number 0, "
                    "1, 2..., in order.")


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
        raise DataError(f"{path.name} contains Python objects ({key} is pickled data) that could run code on this "
                        "computer if they were read, so NeuralStudio will not open it (nothing in it was run): "
                        "ask for a copy saved as plain numeric arrays with numpy.savez.")
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
