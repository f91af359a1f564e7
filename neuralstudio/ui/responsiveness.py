"""Keeps the GUI thread first in line, for the interpreter and for the CPU, while training runs.

Three things made the window stall 50-130 ms while a model trained on a 2-core machine:

* **The GIL.**  CPython hands the GIL to a waiting thread only after the thread
  holding it has run for the *switch interval* (5 ms by default).  A repaint of
  the training plots re-enters Python dozens of times (every pyqtgraph item's
  ``paint`` and ``boundingRect``), and while the training thread is in Python
  (tracing a ``tf.function``, building the model, starting an epoch) each
  re-entry can wait that long.  :func:`favor_gui_thread` shortens the interval
  to 1 ms; the training thread pays only when the GUI actually asks for the GIL,
  which an idle event loop does not.
* **Garbage collection.**  A full collection walks every object the process
  holds (about 275,000 once Keras is imported) with the GIL held: 80-190 ms.
  Training allocates enough to start one early in a run, in whichever thread
  allocates, and a collection in the training thread may also destroy garbage Qt
  objects there (measured: a deadlock in Qt's object destructor).
  :class:`GuiOwnedGarbageCollection` switches automatic collection off for a run;
  the GUI thread collects the young generations itself when they fill up (a few
  ms), and everything once the run has ended.  A run leaves 4,000-11,000 objects
  in cycles (its traced functions), not more per batch, so nothing piles up.
* **The CPU.**  TensorFlow keeps one compute thread per core busy, so the GUI
  thread waited for a core behind them.  :func:`lower_training_threads` runs the
  training thread and TensorFlow's threads (named ``tf_*``) a few nice steps
  below the GUI thread (Linux only).  With the CPU otherwise idle they get all of
  it, so training speed is unchanged (measured in
  ``tests/benchmarks/bench_train_window.py``); when the GUI needs a core, the
  scheduler gives it one at once.  An unprivileged process cannot raise a
  thread's priority again, so the threads stay lowered for the session, which
  only ever makes them yield.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterable

#: the longest the GUI thread waits for the GIL at each re-entry into Python
GUI_SWITCH_INTERVAL_S = 0.001
#: nice value of training threads (the GUI thread keeps the process's, normally 0)
TRAINING_NICE = 5
_TASKS = "/proc/self/task"


def favor_gui_thread() -> None:
    """Shorten the interpreter's switch interval to :data:`GUI_SWITCH_INTERVAL_S` (never lengthen it)."""
    if sys.getswitchinterval() > GUI_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)


class GuiOwnedGarbageCollection:
    """While a run trains, only the GUI thread collects garbage, in small steps.

    ``start()`` when a run starts, ``step()`` from a GUI timer, ``finish()`` when
    it has ended (on the GUI thread).  Automatic collection is switched back on
    only if it was on to begin with.
    """

    #: net allocations that make :meth:`step` collect the young generations
    YOUNG_LIMIT = 50_000

    def __init__(self) -> None:
        self._was_enabled: bool | None = None

    @property
    def active(self) -> bool:
        return self._was_enabled is not None

    def start(self) -> None:
        if self._was_enabled is None:
            self._was_enabled = gc.isenabled()
            gc.disable()

    def step(self) -> None:
        """Collect generations 0 and 1 when enough has been allocated since the last time (cheap)."""
        if self._was_enabled is not None and gc.get_count()[0] > self.YOUNG_LIMIT:
            gc.collect(1)

    def finish(self) -> None:
        """Collect everything the run left (0.1-0.2 s) and give collection back to the interpreter."""
        if self._was_enabled is None:
            return
        was, self._was_enabled = self._was_enabled, None
        gc.collect()
        if was:
            gc.enable()


def lower_training_threads(thread_ids: Iterable[int] = ()) -> int:
    """Move TensorFlow's threads and ``thread_ids`` (native ids) to :data:`TRAINING_NICE`.

    Threads those threads start later inherit the lower priority.  Returns how
    many threads were changed; does nothing (returns 0) where threads have no
    nice value of their own (not Linux) and never touches the main (GUI) thread.
    """
    if not sys.platform.startswith("linux") or not os.path.isdir(_TASKS):
        return 0
    gui = threading.main_thread().native_id
    wanted = {int(t) for t in thread_ids}
    changed = 0
    for entry in os.listdir(_TASKS):
        tid = int(entry)
        if tid == gui or (tid not in wanted and not _thread_name(tid).startswith("tf_")):
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < TRAINING_NICE:
                os.setpriority(os.PRIO_PROCESS, tid, TRAINING_NICE)
                changed += 1
        except OSError:  # the thread has ended, or the system refuses: only responsiveness is at stake
            continue
    return changed


def _thread_name(tid: int) -> str:
    try:
        with open(f"{_TASKS}/{tid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""
