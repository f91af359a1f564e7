"""Python's garbage collector runs in the GUI thread only, and its full passes wait for quiet moments.

Left to itself, CPython collects in whichever thread allocates when a
generation fills up.  In this app that went wrong twice:

* **Deadlock.**  A collection in the training thread that finds a reference
  cycle holding a PySide object (a closed dialog and a slot that refers to it)
  destroys that Qt object from the wrong thread, which Qt forbids: the training
  thread then waited in ``QObject::~QObject`` for a lock the GUI thread held
  while the GUI thread waited for the GIL, and the CI run hung.
* **Stalls.**  After TensorFlow is imported the heap holds about 270,000
  objects that live as long as the process.  A full pass scans them all:
  70-85 ms with the GIL held, a frozen window whenever one fell inside a run.

So :class:`GuiGarbageCollector` switches automatic collection off and does
CPython's job from a timer in the GUI thread.  The young generations are
collected when their counts pass CPython's own thresholds, as often as before.
A full pass waits while a mouse button is held and, during a run, until
:data:`RUN_FULL_SPACING_S` has passed since the last one.  Once Keras has
loaded, :meth:`GuiGarbageCollector.settle` collects and then freezes the
survivors (``gc.freeze``), so that later full passes scan only what the session
made since.

There is one collector per process (:func:`gui_garbage_collector`): ``gc`` is
process-wide, and two timers would only collect twice.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication

#: how often the GUI thread looks at the generation counts
TICK_MS = 100
#: least time between two full passes while nothing trains
IDLE_FULL_SPACING_S = 5.0
#: least time between two full passes while a model trains. They still come, or memory would grow, but
#: rarely: a full pass costs 15-65 ms (what the session made since Keras loaded), a stall in the plots,
#: while training adds little cyclic garbage (measured on mnist-cnn: about 330 objects an epoch).
RUN_FULL_SPACING_S = 600.0
#: full passes never take more than about 1/this of the time
FULL_COST_FACTOR = 20


class GuiGarbageCollector(QObject):
    """Collects garbage from the GUI thread on a timer, with automatic collection switched off."""

    def __init__(self, parent: QObject | None = None, *, tick_ms: int = TICK_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._on_tick)
        self._busy: set[int] = set()
        self._last_full = time.monotonic()
        self._last_full_s = 0.0
        #: passes made per generation (0, 1, 2), for tests and the benchmark
        self.passes = [0, 0, 0]

    # ------------------------------------------------------------------ control
    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        """Switch CPython's automatic collection off and collect from the GUI thread instead."""
        if self.active:
            return
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Give collection back to CPython, with nothing left frozen."""
        if not self.active:
            return
        self._timer.stop()
        _give_back()

    def set_busy(self, owner: object, busy: bool) -> None:
        """Hold full passes back (to :data:`RUN_FULL_SPACING_S`) while any owner is busy, e.g. training."""
        if busy:
            self._busy.add(id(owner))
        else:
            self._busy.discard(id(owner))

    @property
    def busy(self) -> bool:
        return bool(self._busy)

    def settle(self) -> None:
        """Collect everything now and freeze what survives: call once the long-lived heap is built.

        What is frozen is never scanned again, so full passes get cheap; it is
        still freed by reference counting, and only a cycle among those objects
        that dies later is never reclaimed (they are modules and Keras' catalog).
        """
        self.collect(2)
        if self.active:
            gc.freeze()

    def collect(self, generation: int = 2) -> int:
        """Collect ``generation`` and its younger ones now; returns the number of objects freed."""
        start = time.monotonic()
        freed = gc.collect(generation)
        self.passes[generation] += 1
        if generation == 2:
            self._last_full = time.monotonic()
            self._last_full_s = self._last_full - start
        return freed

    # -------------------------------------------------------------------- timer
    def _full_pass_allowed(self) -> bool:
        spacing = RUN_FULL_SPACING_S if self._busy else IDLE_FULL_SPACING_S
        spacing = max(spacing, FULL_COST_FACTOR * self._last_full_s)
        if time.monotonic() - self._last_full < spacing:
            return False
        return QGuiApplication.mouseButtons() == Qt.MouseButton.NoButton  # not in the middle of a drag

    def _on_tick(self) -> None:
        """Collect the oldest generation whose count is past its threshold, as CPython does."""
        threshold0, threshold1, threshold2 = gc.get_threshold()
        if threshold0 == 0:  # someone switched collection off on purpose
            return
        count0, count1, count2 = gc.get_count()
        if count2 > threshold2 and self._full_pass_allowed():
            self.collect(2)
        elif count1 > threshold1:
            self.collect(1)
        elif count0 > threshold0:
            self.collect(0)


_collector: GuiGarbageCollector | None = None


def gui_garbage_collector() -> GuiGarbageCollector:
    """The process's collector, started (needs a QCoreApplication; lives as long as it does)."""
    global _collector
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("the GUI garbage collector needs a QApplication")
    if _collector is None:
        _collector = GuiGarbageCollector(app)
        _collector.destroyed.connect(_forget)
    _collector.start()
    return _collector


def _forget() -> None:
    global _collector
    _collector = None
    _give_back()


def _give_back() -> None:
    """Automatic collection as CPython has it by default: on, nothing frozen."""
    gc.unfreeze()
    gc.enable()
