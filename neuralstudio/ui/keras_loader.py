"""Loads Keras, TensorFlow and the layer catalog in the background at start-up.

Importing TensorFlow takes seconds; the window must appear in well under a
second.  The loader is the first task of the window's :class:`TaskRunner`, so
every later task that needs Keras (analysis, opening a model) queues behind it.

TensorFlow is imported on a plain Python thread, as every Keras job runs (docs/ARCHITECTURE.md,
"Threads"): imported first inside a QThread, it crashed later loads (building NASNetMobile: a
segfault in a TF random op, measured). The thread's name matters: TensorFlow's compute pool, started
by the first op, takes it (``neuralstudio-im`` in thread listings).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal

from neuralstudio.ui.tasks import TaskRunner

#: the thread that imports Keras (and names TensorFlow's compute pool)
IMPORT_THREAD = "neuralstudio-import-keras"


def load_keras() -> dict[str, Any]:
    """Import Keras and start TensorFlow's runtime; the layer catalog and the Keras version."""
    import keras

    from neuralstudio.ml import catalog as catalog_mod

    # TensorFlow starts its runtime at the first op, 20-45 ms holding the GIL: start it here, where the
    # window copes with the import anyway, not at the first analysis or when the Train page first shows.
    keras.ops.zeros(())
    return {"catalog": catalog_mod.catalog(), "keras_version": keras.__version__}


class KerasLoader(QObject):
    """Starts the background import and says when it is done."""

    loaded = Signal()
    failed = Signal(str)

    def __init__(self, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.is_loaded = False
        self.error: str | None = None
        self.catalog: dict[str, Any] = {}
        self.keras_version = ""

    def start(self) -> None:
        self.runner.submit(load_keras, self._on_done, self._on_error, thread_name=IMPORT_THREAD)

    def wait(self, timeout_ms: int = 120_000) -> bool:
        """Wait (with a live event loop) until loading ends; True when Keras is ready."""
        if self.is_loaded or self.error:
            return self.is_loaded
        loop = QEventLoop()
        self.loaded.connect(loop.quit)
        self.failed.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        return self.is_loaded

    def _on_done(self, result: dict[str, Any]) -> None:
        self.catalog = result["catalog"]
        self.keras_version = result["keras_version"]
        self.is_loaded = True
        self.loaded.emit()

    def _on_error(self, exc: BaseException, _tb: str) -> None:
        self.error = f"Keras could not be loaded: {exc}"
        self.failed.emit(self.error)
