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
  thread shares a core with them.  Not only TensorFlow's ``tf_*`` threads: its
  compute pool takes the name of whichever thread ran the first op (the Keras
  loader, in the app).  :func:`training_priority` makes every thread but the GUI
  thread and Qt's own *batch* work (``SCHED_BATCH``) for the length of a run, and
  gives them their normal policy back when it ends.  A batch thread keeps its
  share of the CPU, as much as any other program's, and the scheduler disfavours
  it a little at wake-ups (sched(7)).  Their nice value is left alone, although
  niced threads made the GUI's waits for a core shorter: a niced thread loses to
  every other program on the machine (beside one busy loop, training from the
  window ran at 0.52x a terminal's ``fit`` with nice 5, 1.0-1.17x as batch work),
  and an unprivileged process cannot raise a thread's priority again, so
  TensorFlow's pool stayed niced, and Predict slow, for the rest of the session.
  Measured on Linux 6.18 (EEVDF), a GUI-like thread doing 10 ms of work every
  66 ms beside training and a busy loop waited a median 13 ms extra with batch
  threads, 14.5 ms with normal ones and 6-8 ms with nice 5 (which halved training).
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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: the longest the GUI thread waits for the GIL at each re-entry into Python
GUI_SWITCH_INTERVAL_S = 0.001
#: the scheduling policy of training threads during a run (Linux): CPU-bound work that never preempts on wake-up
TRAINING_POLICY = getattr(os, "SCHED_BATCH", None)
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


#: Qt's own threads, which serve the GUI (input events, D-Bus, paint helpers): kept as they are
QT_THREAD_PREFIXES = ("QXcb", "QDBus", "Thread (pooled)", "QWayland")


@dataclass
class LoweredThreads:
    """What :func:`lower_training_threads` changed, so that :func:`restore_threads` can undo exactly that.

    ``changed`` maps each thread moved to :data:`TRAINING_POLICY` to its policy before; ``seen`` holds every
    thread that existed then (a thread not in it was started during the run and inherited the policy).
    """

    changed: dict[int, int] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)


def lower_training_threads(thread_ids: Iterable[int] = ()) -> LoweredThreads:
    """Move every thread but the GUI thread and Qt's own (``thread_ids`` included) to :data:`TRAINING_POLICY`.

    Threads those threads start later inherit the policy; threads the GUI thread starts later do not.  Does
    nothing where threads have no policy of their own (not Linux), and never touches the main (GUI) thread.
    """
    lowered = LoweredThreads()
    if TRAINING_POLICY is None or not sys.platform.startswith("linux") or not os.path.isdir(_TASKS):
        return lowered
    gui = threading.main_thread().native_id
    wanted = {int(t) for t in thread_ids}
    for tid in _thread_ids():
        lowered.seen.add(tid)
        if tid == gui or (tid not in wanted and _thread_name(tid).startswith(QT_THREAD_PREFIXES)):
            continue
        before = _policy(tid)
        if before == os.SCHED_OTHER and _set_policy(tid, TRAINING_POLICY):
            lowered.changed[tid] = before
    return lowered


def restore_threads(lowered: LoweredThreads) -> int:
    """Give every thread :func:`lower_training_threads` changed, and every thread started since that inherited
    :data:`TRAINING_POLICY`, the normal policy back; returns how many threads were restored.

    TensorFlow's compute threads outlive the run: left as batch work, they would make Predict and the next
    analyses wait behind every other program on the machine.
    """
    if TRAINING_POLICY is None or not os.path.isdir(_TASKS):
        return 0
    restored = 0
    for tid in _thread_ids():
        if tid not in lowered.changed and tid in lowered.seen:
            continue  # not ours: as it was
        if _policy(tid) == TRAINING_POLICY and _set_policy(tid, lowered.changed.get(tid, os.SCHED_OTHER)):
            restored += 1
    return restored


@contextmanager
def training_priority(thread_ids: Iterable[int] = ()) -> Iterator[LoweredThreads]:
    """:func:`lower_training_threads` for the duration of the ``with`` block, then :func:`restore_threads`."""
    lowered = lower_training_threads(thread_ids)
    try:
        yield lowered
    finally:
        restore_threads(lowered)


def _thread_ids() -> list[int]:
    try:
        return [int(entry) for entry in os.listdir(_TASKS)]
    except OSError:
        return []


def _policy(tid: int) -> int | None:
    try:
        return os.sched_getscheduler(tid)
    except OSError:  # the thread has ended
        return None


def _set_policy(tid: int, policy: int) -> bool:
    try:
        os.sched_setscheduler(tid, policy, os.sched_param(0))
    except OSError:  # the thread has ended, or the system refuses: only responsiveness is at stake
        return False
    return True


def _thread_name(tid: int) -> str:
    try:
        with open(f"{_TASKS}/{tid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""
