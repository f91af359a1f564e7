"""What a command prints: its own output only, unless ``--verbose`` asks for the libraries' chatter too.

TensorFlow and Keras talk on the console whatever a program wants: TensorFlow's C++ runtime writes
start-up lines straight to file descriptor 2 before any Python setting can reach it
(``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR``, the CUDA
probe's ``Could not find cuda drivers``; ``TF_CPP_MIN_LOG_LEVEL`` no longer silences them in TF 2.21),
absl and TensorFlow log through Python's ``logging``, and Keras raises ``UserWarning``s about
how a model was written (``Do not pass an input_shape...``). None of it is about what the user asked.

:func:`quiet_console` therefore points descriptor 2 at the null device for the length of a command
while Python's ``sys.stderr`` keeps writing to the terminal through a copy of the old descriptor, so
that the command's own ``error:`` lines still arrive; and it ignores warnings and the libraries' log
records below ERROR. The price: a native crash report of TensorFlow (rare) is lost too; ``--verbose``
shows everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

#: the Python loggers of the libraries that report on their own start-up and conversions
LIBRARY_LOGGERS = ("absl", "tensorflow", "tf2onnx", "keras", "h5py", "PIL")


@contextlib.contextmanager
def quiet_console(verbose: bool) -> Iterator[None]:
    """Silence the libraries' console output for the ``with`` block (nothing changes with ``verbose``)."""
    if verbose:
        yield
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        stack.enter_context(_quiet_loggers())
        stack.enter_context(_native_stderr_to_null())
        yield


@contextlib.contextmanager
def _quiet_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.ERROR))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _native_stderr_to_null() -> Iterator[None]:
    """Descriptor 2 to the null device; ``sys.stderr`` to the terminal it pointed to.

    Only when ``sys.stderr`` is the process's own stream on descriptor 2: a caller that replaced it (a
    test capturing output, an embedding program) keeps what it set up.
    """
    stream = sys.stderr
    try:
        own = stream is sys.__stderr__ and stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        own = False
    if not own:
        yield
        return
    stream.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    terminal = open(saved, "w", buffering=1, encoding=stream.encoding, errors="backslashreplace",  # noqa: SIM115
                    closefd=False)
    sys.stderr = terminal
    try:
        yield
    finally:
        terminal.flush()
        sys.stderr = stream
        os.dup2(saved, 2)
        os.close(saved)
        terminal.close()
