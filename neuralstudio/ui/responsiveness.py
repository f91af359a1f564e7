"""Keeps the GUI thread first in line, for the interpreter and for the CPU, while training runs.

Two things made the window stall 50-130 ms while a model trained on a 2-core machine:

* **The GIL.**  CPython hands the GIL to a waiting thread only after the thread
  holding it has run for the *switch interval* (5 ms by default).  A repaint of
  the training plots re-enters Python dozens of times (every pyqtgraph item's
  ``paint`` and ``boundingRect``), and while the training thread is in Python
  (tracing a ``tf.function``, building the model, starting an epoch) each
  re-entry can wait that long.  :func:`favor_gui_thread` shortens the interval
  to 1 ms; the training thread pays only when the GUI actually asks for the GIL,
  which an idle event loop does not.
* **The CPU.**  TensorFlow keeps one compute thread per core busy, so the GUI
  thread waited for a core behind them.  :func:`lower_training_threads` runs every
  thread but the GUI thread and Qt's own a few nice steps below the GUI thread
  (Linux only).  Not only TensorFlow's ``tf_*`` threads: its compute pool takes the
  name of whichever thread ran the first op (the Keras loader, in the app), and
  left at the GUI's priority it delayed the GUI's timers 50+ ms with no thread
  holding the GIL (py-spy dumps during the stall).  With the CPU otherwise idle they get all of
  it, so training speed is unchanged (measured in
  ``tests/benchmarks/bench_train_window.py``); when the GUI needs a core, the
  scheduler gives it one at once.  An unprivileged process cannot raise a
  thread's priority again, so the threads stay lowered for the session, which
  only ever makes them yield.
* **Qt's painting helpers.**  Qt's raster engine splits large fills into segments
  and hands them to a pool of helper threads, the GUI thread waiting until they
  are done.  While TensorFlow keeps every core busy, each paint woke two helper
  threads that preempted it and then waited for a core themselves (measured: a
  quarter of the GUI thread's time during a run went to the progress bars'
  pooled fills).  :func:`single_threaded_painting` turns the pool off, so paints
  run on the GUI thread alone; they are small, and cost less that way even on an
  idle machine (0.43 vs 0.69 ms for a progress-row update).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable

#: the longest the GUI thread waits for the GIL at each re-entry into Python
GUI_SWITCH_INTERVAL_S = 0.001
#: nice value of training threads (the GUI thread keeps the process's, normally 0)
TRAINING_NICE = 5
_TASKS = "/proc/self/task"


def single_threaded_painting() -> None:
    """Keep Qt from farming paint fills out to helper threads; call before the QApplication is created.

    Qt reads ``QT_NO_GUI_THREADPOOL`` once, when it first needs its GUI thread pool.  A value
    already set in the environment is kept.
    """
    os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")


def favor_gui_thread() -> None:
    """Shorten the interpreter's switch interval to :data:`GUI_SWITCH_INTERVAL_S` (never lengthen it)."""
    if sys.getswitchinterval() > GUI_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)


#: Qt's own threads, which serve the GUI (input events, D-Bus, paint helpers): kept at its priority
QT_THREAD_PREFIXES = ("QXcb", "QDBus", "Thread (pooled)", "QWayland")


def lower_training_threads(thread_ids: Iterable[int] = ()) -> int:
    """Move every thread but the GUI thread and Qt's own (``thread_ids`` included) to :data:`TRAINING_NICE`.

    Threads those threads start later inherit the lower priority; threads the GUI thread starts later
    do not.  Returns how many threads were changed; does nothing (returns 0) where threads have no
    nice value of their own (not Linux) and never touches the main (GUI) thread.
    """
    if not sys.platform.startswith("linux") or not os.path.isdir(_TASKS):
        return 0
    gui = threading.main_thread().native_id
    wanted = {int(t) for t in thread_ids}
    changed = 0
    for entry in os.listdir(_TASKS):
        tid = int(entry)
        if tid == gui or (tid not in wanted and _thread_name(tid).startswith(QT_THREAD_PREFIXES)):
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
