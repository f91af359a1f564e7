"""How much memory one untrusted file (a data set, a model) may make NeuralStudio allocate.

Every loader of a file someone else made checks what the file declares it will cost against
:func:`memory_budget_bytes` before it allocates anything, so that a small hostile or damaged file
gives a message instead of swapping the computer to a halt or dying of MemoryError
(docs/ARCHITECTURE.md, "Untrusted files").  Pure Python, so that data loaders and the model-file
checker share it without importing each other.
"""

from __future__ import annotations

import os
import sys

MAX_DATA_BYTES = 4 * 1024**3  # the most memory one file may take, on any computer


def memory_budget_bytes() -> int:
    """The most memory one file may take: 4 GiB, or half the RAM, or half an address-space limit if smaller.

    Half, because training needs room besides the data or the model (batches, a copy of the arrays for
    the framework, the optimizer's state).
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
