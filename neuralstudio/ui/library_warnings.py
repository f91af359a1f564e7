"""Warnings that Keras, TensorFlow and the other libraries raise go to the app's event log, not the terminal.

A warning such as Keras's ``Do not pass an input_shape...`` says something about a model the user
opened or built, so it belongs where the app reports on models (the Train workspace's event log),
once, in plain view; on the terminal that launched the app nobody reads it. Warnings are raised on
whichever thread does the work: :class:`WarningsRelay` re-emits them as a Qt signal, which Qt queues
to the GUI thread for receivers living there.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Signal

#: warnings kept for an event log created later (the Train workspace is built when first shown)
BACKLOG = 50
#: packages named in the log line when a warning comes from their files (Keras warns with a stacklevel
#: that often points at the caller, so any warning is reported, named by where it came from)
KNOWN_PACKAGES = {"tf_keras": "Keras 2", "keras": "Keras", "tensorflow": "TensorFlow", "h5py": "h5py",
                  "numpy": "numpy", "tf2onnx": "tf2onnx", "onnx": "ONNX", "PIL": "Pillow", "absl": "absl"}


class WarningsRelay(QObject):
    """Receives the libraries' warnings from any thread; each distinct one is emitted once as ``warned``."""

    warned = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backlog: deque[str] = deque(maxlen=BACKLOG)
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def install(self) -> None:
        """Take over ``warnings.showwarning``, and show each distinct warning (the CLI ignores them all)."""
        warnings.showwarning = self._show
        warnings.simplefilter("default")  # inside the CLI's quiet block (cli/console.py): it restores its own

    def _show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
              file: Any = None, line: str | None = None) -> None:
        text = f"{_package_of(filename)} warns ({category.__name__}): {' '.join(str(message).split())}"
        with self._lock:
            if text in self._seen:
                return
            self._seen.add(text)
            self.backlog.append(text)
        self.warned.emit(text)


def _package_of(filename: str) -> str:
    """Who warned, from the file the warning points at (``.../keras/src/...``)."""
    parts = filename.replace("\\", "/").split("/")
    for package, name in KNOWN_PACKAGES.items():
        if package in parts:
            return name
    return "A library"


_relay: WarningsRelay | None = None


def library_warnings() -> WarningsRelay:
    """The process's relay, installed at the first call (needs a QCoreApplication: it lives as long as it)."""
    global _relay
    if _relay is None:
        app = QCoreApplication.instance()
        if app is None:
            raise RuntimeError("the warnings relay needs a QApplication")
        _relay = WarningsRelay(app)
        _relay.install()
    return _relay
