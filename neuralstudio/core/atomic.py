"""Write files so that a crash or a full disk never leaves half a file behind.

A write goes to a hidden temporary file beside the target, renamed over it only
once complete.  A process killed mid-write (``kill -9``, a power cut) cannot
remove its temporary file, so every one is named with :data:`PARTIAL_PREFIX`:
:func:`is_partial_file` recognises them and the runs store sweeps stale ones
away on its next start.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Start of every temporary file name, recognisable by :func:`is_partial_file`.
PARTIAL_PREFIX = ".ns-partial-"
#: Characters of the target's stem kept in a temporary name (file names are limited to 255 bytes).
_STEM_CHARS = 80


def is_partial_file(name: str) -> bool:
    """True when ``name`` is the name of a temporary file of :func:`atomic_path`."""
    return name.startswith(PARTIAL_PREFIX)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    The temporary file lives in the same folder so that the final
    :func:`os.replace` is an atomic rename on the same file system.  Keras and
    h5py pick their format from the extension, so the temp name keeps it.

    An :class:`OSError` of the write (a full disk, a read-only folder) names
    ``path``, not the hidden temporary file, and carries
    ``neuralstudio_writing = True`` so that messages can say "cannot write".
    """
    target = Path(path)
    suffix = suffix if suffix is not None else "".join(target.suffixes) or ".tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f"{PARTIAL_PREFIX}{target.stem[:_STEM_CHARS]}.", suffix=suffix,
                                        dir=target.parent)
    except OSError as exc:
        _blame_target(exc, target)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as h5py and zipfile want to create it themselves
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and (exc.filename is None or str(exc.filename) == str(tmp)):
            _blame_target(exc, target)
        raise


def _blame_target(exc: OSError, target: Path) -> None:
    """Make a failed write name the file the user asked for (the temporary name means nothing to them)."""
    exc.filename = str(target)
    exc.neuralstudio_writing = True  # type: ignore[attr-defined]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
