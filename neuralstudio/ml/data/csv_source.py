"""A CSV file with one row per example: a label column and pixel columns.

Apart because CSV is the format where a small mistake or a hostile file costs
the most: the file is streamed, never held whole as text; each row is bounded
(:data:`MAX_CSV_COLUMNS`, :data:`MAX_CSV_ROW_CHARS`) before a parser builds it;
an all-numeric file goes through np.loadtxt and anything else through a careful
parser that says which row and column is wrong.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from neuralstudio.ml.data.budget import _check_memory, _size_text
from neuralstudio.ml.data.dataset import DataError, Dataset, _encode_labels, _holdout, _short, _to_unit

MAX_CSV_COLUMNS = 1024 * 1024 + 1  # a 1024x1024 image and its label; csv.reader builds a row at ~50 bytes a cell
MAX_CSV_ROW_CHARS = 64 * 1024 * 1024  # one row of text; the parsers hold a whole row (4 bytes a character)
MAX_LABEL_CHARS = 200  # a class name; longer ones are a mistake (or a label array of gigabytes)
_LABEL_COLUMNS = ("label", "class", "y", "target")
# Bytes of memory per byte of CSV file at worst: up to one number per two characters, held as float32 by the
# parser, as the pixel columns, as values in [0, 1] and as the train/test split, with room for the parser's growth.
_CSV_MEMORY_PER_BYTE = 10


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
