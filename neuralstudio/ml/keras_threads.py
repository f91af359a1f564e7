"""Which thread does what with Keras: the one thread policy of NeuralStudio, and its helpers.

The rules, and the measurements behind them, are in docs/ARCHITECTURE.md ("Threads"). In short:

1. **Keras runs on plain Python threads.** Importing TensorFlow, building, tracing, compiling,
   fitting, loading, saving and exporting happen on a ``threading.Thread`` started by
   :func:`run_on_python_thread`, never directly in a QThread's slot. PySide gives each slot call
   on a QThread a new Python thread state, so everything TensorFlow and Keras keep in
   ``threading.local`` vanishes between two calls on the same OS thread while TensorFlow's C++
   side keeps its per-thread state; importing TensorFlow first on a QThread, and tracing a second
   model there, crashed the process. The GUI thread only calls functions that are already traced
   (Predict's warmed-up predictor) and small eager ops.
2. **A fresh thread per job.** Keras keeps its "global" state (name counters, name scopes, the
   global seed, the symbolic-build scope) per thread. A job on its own thread starts with empty
   state and its state is freed when the thread ends. That is how a run releases its Keras state:
   ``keras.backend.clear_session()`` is never called, because it replaces that state for every
   thread at once (an analysis on another thread loses its scopes in the middle of a build) and
   collects garbage holding the GIL for 0.1-0.2 s.
3. **Jobs may overlap.** A training run, the editor's analyses, model loading, Predict's warm-up
   and exports may run at the same time, each on its own thread: TensorFlow traces different
   functions on different threads safely (stress-tested: two threads building, compiling, fitting
   and tracing models in a loop). What must not overlap is ordered by the caller (the task
   runner's queue runs its jobs one after another).
4. **Memory** is released by dropping references when a job ends (the trainer also empties the
   custom-gradient registry, :mod:`neuralstudio.ml.custom_gradients`). Cyclic garbage is collected
   where it cannot hurt: in the app by the GUI thread's collector between runs
   (``ui/garbage_collection.py``); elsewhere by :func:`collect_garbage`, which a caller uses only when
   nothing else in the process is running Keras (the command line, scripts).

This module imports neither Qt nor Keras.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_python_thread(fn: Callable[[], T], name: str) -> T:
    """``fn()`` on a fresh plain Python thread; waits for it and returns its result or raises its exception.

    The waiting thread may be a QThread (the task runner's, the training worker's) or the main thread:
    the Keras work itself then runs where it is safe and with Keras state of its own (rules 1 and 2).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the waiting thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)  # in slices: a Ctrl+C reaches a waiting main thread's signal handler promptly
    if "error" in box:
        error = box.pop("error")
        raise error
    return box["result"]


def collect_garbage() -> int:
    """Collect Python's cyclic garbage now (the graphs of models no longer referenced); the objects freed.

    A full pass holds the GIL for 0.1-0.2 s once TensorFlow is loaded: call it only where nothing waits
    for the interpreter (the GUI has its own collector, ``ui/garbage_collection.py``).
    """
    return gc.collect()
