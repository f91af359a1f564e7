"""Runs Qt-free functions one after another, off the GUI thread, each on a plain Python thread of its own.

Keras loading, model import and graph analysis all go through one
:class:`TaskRunner`, so they run in the order they were asked for: anything
submitted after the Keras loader naturally waits for Keras without the window
freezing.  Results come back as queued signals on the GUI thread; the worker
never touches a widget, and every exception is caught there and sent back.

The runner's QThread only orders the tasks and waits: each task itself runs on a
fresh ``threading.Thread`` (:func:`neuralstudio.ml.keras_threads.run_on_python_thread`),
because Keras work directly on a QThread crashed the process, and a thread per task
gives each task Keras state of its own (docs/ARCHITECTURE.md, "Threads").
"""

from __future__ import annotations

import atexit
import itertools
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QEventLoop, QObject, QThread, QTimer, Signal, Slot

from neuralstudio.ml.keras_threads import run_on_python_thread

__all__ = ["TaskRunner"]

_Done = Callable[[Any], None]
_Failed = Callable[[BaseException, str], None]


class _Worker(QObject):
    finished = Signal(int, object, object)  # task id, result, (exception, traceback text) or None

    @Slot(int, object, str)
    def run(self, task_id: int, fn: Callable[[], Any], thread_name: str) -> None:
        try:
            result = run_on_python_thread(fn, thread_name)
        except BaseException as exc:  # noqa: BLE001 - sent to the GUI thread, never raised here
            self.finished.emit(task_id, None, (exc, traceback.format_exc()))
            return
        self.finished.emit(task_id, result, None)


#: the thread and worker of every runner not shut down yet, held here so that they outlive a runner
#: deleted with its parent widget: destroying a running QThread aborts the process. Keyed by a serial
#: number, not ``id(thread)``: an id is reused once its object is freed, and a second ``shutdown`` of an
#: old runner would then drop a newer runner's entry.
_RUNNING: dict[int, tuple[QThread, QObject]] = {}
_RUNNER_KEYS = itertools.count(1)


@atexit.register
def _stop_running_threads() -> None:
    """Stop the threads of runners nobody shut down (a script that ends without closing its window)."""
    for thread, _worker in list(_RUNNING.values()):
        _stop(thread)
    _RUNNING.clear()


def _stop(thread: QThread) -> None:
    if shiboken6.isValid(thread) and thread.isRunning():
        thread.quit()
        thread.wait()


class TaskRunner(QObject):
    """Runs submitted callables in order on one background QThread."""

    _submit = Signal(int, object, str)

    def __init__(self, parent: QObject | None = None, name: str = "neuralstudio-tasks") -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._submit.connect(self._worker.run)
        self._worker.finished.connect(self._on_finished)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[_Done | None, _Failed | None]] = {}
        self._thread.start()
        self._key = next(_RUNNER_KEYS)
        self._name = name
        _RUNNING[self._key] = (self._thread, self._worker)

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException, str], None] | None = None, *, thread_name: str = "") -> int:
        """Queue ``fn``; ``on_done(result)`` or ``on_error(exc, tb)`` is called on the GUI thread.

        ``fn`` runs on a plain Python thread named ``thread_name`` (the runner's name when empty).
        """
        task_id = next(self._ids)
        self._callbacks[task_id] = (on_done, on_error)
        self._submit.emit(task_id, fn, thread_name or self._name)
        return task_id

    def call(self, fn: Callable[[], Any], timeout_ms: int = 600_000) -> Any:
        """Run ``fn`` in the background and wait for it with a local event loop (the window stays live)."""
        box: dict[str, Any] = {}
        loop = QEventLoop()

        def done(result: Any) -> None:
            box["result"] = result
            loop.quit()

        def error(exc: BaseException, _tb: str) -> None:
            box["error"] = exc
            loop.quit()

        self.submit(fn, done, error)
        if "result" not in box and "error" not in box:
            QTimer.singleShot(timeout_ms, loop.quit)
            loop.exec()
        if "error" in box:
            raise box["error"]
        if "result" not in box:
            raise TimeoutError("The background task did not finish in time.")
        return box["result"]

    def shutdown(self) -> None:
        """Let the current task finish, then stop the thread (destroying a running QThread aborts)."""
        _stop(self._thread)
        _RUNNING.pop(self._key, None)
        self._callbacks.clear()

    @Slot(int, object, object)
    def _on_finished(self, task_id: int, result: Any, error: Any) -> None:
        on_done, on_error = self._callbacks.pop(task_id, (None, None))
        if error is not None:
            if on_error is not None:
                on_error(error[0], error[1])
            return
        if on_done is not None:
            on_done(result)
