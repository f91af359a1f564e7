"""What the long-running commands (``train``, ``sweep``, ``lr-find``) share on a terminal.

One status line on stderr, redrawn in place, and Ctrl+C handling where the first press asks the work to
stop gracefully (what it did so far is kept and reported) and a second one aborts.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["StatusLine", "stop_on_first_interrupt"]


class StatusLine:
    """One line redrawn in place with ``\\r``; cleared before anything else is printed."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self._width = 0

    def write(self, text: str) -> None:
        if not self.enabled:
            return
        self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
        self.stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


@contextlib.contextmanager
def stop_on_first_interrupt(control: Any, message: str) -> Iterator[None]:
    """Within the block, the first Ctrl+C calls ``control.request_stop()`` and prints ``message``; a second aborts.

    Only on the main thread: elsewhere (a test calling a command from a thread) Python's default stays.
    """

    def on_sigint(signum: int, frame: Any) -> None:
        if control.stop_requested:
            raise KeyboardInterrupt
        control.request_stop()
        print("\n" + message, file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
