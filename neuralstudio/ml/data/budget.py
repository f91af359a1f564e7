"""The memory budget of one data set, the check against it, and bounded reading.

On its own because every loader of an untrusted file (IDX, CSV, NPZ, an image
folder) checks what the file will cost against the same budget before it
allocates, and the bounds on decompression (:data:`_DEFLATE_MAX_RATIO`) and on
reads apply to more than one format.
"""

from __future__ import annotations

import os
import sys
from typing import IO

import numpy as np

from neuralstudio.ml.data.dataset import DataError

MAX_DATA_BYTES = 4 * 1024**3  # the most memory one data set may take, on any computer
_DEFLATE_MAX_RATIO = 1032  # deflate (gzip, zip) cannot inflate one byte into more than this
_READ_CHUNK = 16 * 1024 * 1024  # bounded reads go in pieces of this size


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
