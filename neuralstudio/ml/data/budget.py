"""The memory budget of one data set, the check against it, and bounded reading.

On its own because every loader of an untrusted file (IDX, CSV, NPZ, an image
folder) checks what the file will cost against the same budget before it
allocates, and the bounds on decompression (:data:`_DEFLATE_MAX_RATIO`) and on
reads apply to more than one format.
"""

from __future__ import annotations

from typing import IO

import numpy as np

from neuralstudio.core.memory import MAX_DATA_BYTES, memory_budget_bytes
from neuralstudio.ml.data.dataset import DataError

__all__ = ["MAX_DATA_BYTES", "memory_budget_bytes"]  # re-exported: the data package's public names

_DEFLATE_MAX_RATIO = 1032  # deflate (gzip, zip) cannot inflate one byte into more than this
_READ_CHUNK = 16 * 1024 * 1024  # bounded reads go in pieces of this size


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
