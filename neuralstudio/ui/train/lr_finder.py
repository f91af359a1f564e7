"""The "Find a learning rate" dialog: Smith's learning-rate range test, live, with a one-click "Use".

The sweep itself is :func:`neuralstudio.ml.lr_find.find_learning_rate` (Qt-free), run on the task runner
the dialog is given, which runs it on a plain Python thread (docs/ARCHITECTURE.md, "Threads"). The worker
never touches a widget: every step it reports goes into a list under a lock, and a GUI timer drains that
list into the plot about ten times a second (one ``setData`` per curve), as the Train workspace's plots are
fed. The dialog is window-modal and non-blocking (``open``), so the window keeps painting and nothing else
(a training run, another search) can start while it searches. Closing it (Esc, the window's close box)
stops the search after the current step; the dialog deletes itself once the search has ended.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.design import Design
from neuralstudio.ml.lr_find import LrFindResult, find_learning_rate, format_lr
from neuralstudio.ml.trainer import TrainControl
from neuralstudio.ui.tasks import TaskRunner

#: the sweep the dialog runs: the range of the command line's defaults; 100 steps take a few seconds for a
#: small network, about 20 s for the mnist-cnn template on two CPU cores
DEFAULT_MIN_LR = 1e-6
DEFAULT_MAX_LR = 10.0
DEFAULT_STEPS = 100
#: how often the plot takes in the steps reported since the last time (milliseconds): ~10 Hz
DRAIN_INTERVAL_MS = 100
SMOOTHED_COLOR = (30, 90, 200)
RAW_COLOR = (100, 149, 237, 70)  # faint: the raw losses are noisy, the smoothed curve is what to read
MARKER_COLOR = (0, 140, 60)
DIVERGED_BRUSH = (220, 40, 40, 28)
ERROR_STYLE = "color: #b00020;"
#: the y range's margin around the curves (fraction of their span)
Y_PAD = 0.08

STOP_TIP = "Stop the search now; the suggestion is made from the steps run so far"
CLOSE_TIP = "Close without changing the learning rate (Esc)"
USE_TIP = "Put this learning rate into the training settings (saved with the design)"
PLOT_TIP = ("The loss after each training step, against the learning rate of that step (log scale). Dark: "
            "smoothed; faint: each batch's own loss. A good rate is where the loss falls fastest, well before "
            "its minimum; where it turns up, the rate is too high.")


class LrFinderDialog(QDialog):
    """Runs the range test for ``design`` on ``dataset`` and offers the suggested rate to ``on_use``.

    Args:
        design: a snapshot of the design with the settings to search for (its optimizer, loss and batch size).
        dataset: what a run would train on (a ``Dataset`` or a data spec).
        runner: the task runner the search is queued on.
        on_use: called on the GUI thread with the chosen rate when "Use …" is clicked.
        min_lr, max_lr, steps, device: passed to :func:`~neuralstudio.ml.lr_find.find_learning_rate`; None for
            :data:`DEFAULT_MIN_LR`, :data:`DEFAULT_MAX_LR` and :data:`DEFAULT_STEPS` (read when the dialog is made).
    """

    def __init__(self, design: Design, dataset: Any, runner: TaskRunner, on_use: Callable[[float], None],
                 parent: QWidget | None = None, *, min_lr: float | None = None, max_lr: float | None = None,
                 steps: int | None = None, device: str = "auto") -> None:
        super().__init__(parent)
        self.setObjectName("lrFinderDialog")
        self.setWindowTitle("Find a learning rate")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self._design, self._dataset, self._runner, self._on_use = design, dataset, runner, on_use
        self._min_lr = float(DEFAULT_MIN_LR if min_lr is None else min_lr)
        self._max_lr = float(DEFAULT_MAX_LR if max_lr is None else max_lr)
        self._steps = int(DEFAULT_STEPS if steps is None else steps)
        self._device = device
        self.control = TrainControl()
        self.result: LrFindResult | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[int, float, float, float]] = []
        self._started = False  # set by the worker when the search leaves the runner's queue
        self._running = False
        self._closed = False
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self._smoothed: list[float] = []
        control = self.control
        self.destroyed.connect(lambda *_: control.request_stop())  # a parent closed under it: stop the sweep

        optimizer = design.training.optimizer
        self.intro_label = QLabel(
            f"Trains the network for {self._steps} mini-batches of {design.training.batch_size} with {optimizer}, "
            f"the learning rate growing from {format_lr(self._min_lr)} to {format_lr(self._max_lr)}, and plots "
            "the loss. It falls fastest at a good learning rate and rises once the rate is too high. The design "
            "is not changed until you click Use.", self)
        self.intro_label.setObjectName("lrFinderIntro")
        self.intro_label.setWordWrap(True)

        self.plot_widget = pg.PlotWidget(self, background="w")
        self.plot_widget.setObjectName("lrFinderPlot")
        self.plot_widget.setToolTip(PLOT_TIP)
        self.plot_widget.setMinimumSize(520, 300)
        item = self.plot_widget.getPlotItem()
        item.setLogMode(x=True, y=False)
        item.showGrid(x=True, y=True, alpha=0.25)
        for side, text in (("bottom", "learning rate (log scale)"), ("left", "loss")):
            axis = item.getAxis(side)
            axis.setPen(pg.mkPen("k"))
            axis.setTextPen(pg.mkPen("k"))
            axis.setLabel(text, color="k")
            axis.enableAutoSIPrefix(False)  # "loss (x0.001)" would puzzle a learner
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        # bottom left: the curve starts high at small rates, so that corner stays empty
        self.legend = item.addLegend(offset=(10, -10), brush=pg.mkBrush(255, 255, 255, 210),
                                     pen=pg.mkPen(200, 200, 200), labelTextSize="8pt", labelTextColor="k")
        self.raw_curve = item.plot(pen=pg.mkPen(RAW_COLOR, width=1), name="loss of each batch")
        self.smoothed_curve = item.plot(pen=pg.mkPen(SMOOTHED_COLOR, width=2), name="smoothed loss")
        self.diverged_region = pg.LinearRegionItem(values=(0, 1), movable=False, brush=pg.mkBrush(*DIVERGED_BRUSH),
                                                   pen=pg.mkPen(None))
        self.diverged_region.setZValue(-10)
        self.diverged_region.setVisible(False)
        item.addItem(self.diverged_region)
        self.marker = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen(MARKER_COLOR, width=2, style=Qt.PenStyle.DashLine),
                                      label="", labelOpts={"position": 0.92, "color": MARKER_COLOR,
                                                           "fill": (255, 255, 255, 200), "movable": False})
        self.marker.setVisible(False)
        item.addItem(self.marker)
        item.setXRange(math.log10(self._min_lr), math.log10(self._max_lr), padding=0.04)  # room for the end ticks
        item.enableAutoRange(x=False, y=False)

        self.progress = QProgressBar(self)
        self.progress.setObjectName("lrFinderProgress")
        self.progress.setRange(0, self._steps)
        self.progress.setValue(0)
        self.progress.setFormat("step %v of %m")
        self.progress.setToolTip("Steps trained so far; the search ends early once the loss diverges")
        self.status_label = QLabel("Waiting for the background tasks before it…", self)
        self.status_label.setObjectName("lrFinderStatus")
        self.message_label = QLabel("", self)
        self.message_label.setObjectName("lrFinderMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.message_label.font()
        font.setBold(True)
        self.message_label.setFont(font)

        self.use_button = QPushButton("Use", self)
        self.use_button.setObjectName("useLearningRateButton")
        self.use_button.setToolTip(USE_TIP)
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._on_use_clicked)
        self.close_button = QPushButton("Stop", self)
        self.close_button.setObjectName("lrFinderStopButton")
        self.close_button.setToolTip(STOP_TIP)
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self._on_close_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.close_button)

        lay = QVBoxLayout(self)
        lay.addWidget(self.intro_label)
        lay.addWidget(self.plot_widget, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.status_label)
        lay.addWidget(self.message_label)
        lay.addLayout(buttons)
        self.resize(680, 560)

        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_INTERVAL_MS)
        self._timer.timeout.connect(self._drain)

    # ------------------------------------------------------------------ the search
    @property
    def running(self) -> bool:
        """The search is queued or going."""
        return self._running

    def start(self) -> None:
        """Queue the search on the runner; the plot follows it live."""
        if self._running:
            return
        self._running = True
        design, dataset, control = self._design, self._dataset, self.control
        kwargs = {"min_lr": self._min_lr, "max_lr": self._max_lr, "steps": self._steps, "device": self._device}

        def search() -> LrFindResult:  # on a plain Python thread: only the lock-guarded list is touched
            self._started = True
            return find_learning_rate(design, dataset, control=control, on_step=self._on_step, **kwargs)

        self._timer.start()
        self._runner.submit(search, self._guarded(self._on_done), self._guarded(self._on_failed),
                            thread_name="neuralstudio-lr-find-task")

    def _on_step(self, step: int, lr: float, loss: float, smoothed: float) -> None:
        """Called on the search's thread: buffer only (the timer draws)."""
        with self._lock:
            self._pending.append((step, lr, loss, smoothed))

    def _guarded(self, fn: Callable[..., None]) -> Callable[..., None]:
        """``fn`` unless the dialog is already deleted (its parent went while the search ran)."""

        def call(*args: Any) -> None:
            if shiboken6.isValid(self):
                fn(*args)

        return call

    # ------------------------------------------------------------------ GUI thread
    def _drain(self) -> None:
        with self._lock:
            steps, self._pending = self._pending, []
        if not steps:
            if self._started and not self._lrs and self._running:
                self.status_label.setText("Preparing the data and building the network…")
            return
        for _step, lr, loss, smoothed in steps:
            self._lrs.append(lr)
            self._losses.append(loss)
            self._smoothed.append(smoothed)
        step, lr, _loss, smoothed = steps[-1]
        self.progress.setValue(step + 1)
        self.status_label.setText(f"Learning rate {format_lr(lr)}: smoothed loss {smoothed:.4g}")
        self._show_curves()

    def _show_curves(self) -> None:
        """One ``setData`` per curve, and a y range that holds the smoothed curve (raw spikes may leave it)."""
        if not self._lrs:
            return
        self.raw_curve.setData(self._lrs, self._losses)
        self.smoothed_curve.setData(self._lrs, self._smoothed)
        finite = [v for v in self._smoothed + self._losses if math.isfinite(v)]
        smooth = [v for v in self._smoothed if math.isfinite(v)]
        if not smooth:
            return
        lo, hi = min(finite), max(smooth)
        pad = (hi - lo) * Y_PAD or abs(hi) * Y_PAD or 1.0
        self.plot_widget.getPlotItem().setYRange(lo - pad, hi + pad, padding=0)

    def _on_done(self, result: LrFindResult) -> None:
        self._finish()
        self.result = result
        self._lrs, self._losses, self._smoothed = list(result.lrs), list(result.losses), list(result.smoothed)
        with self._lock:
            self._pending.clear()
        self._show_curves()
        self.progress.setValue(min(result.steps_run, self._steps))
        if not result.ok:
            self._say(result.message, error=True)
            return
        self.status_label.setText(f"{result.steps_run} steps in {result.seconds:.1f} s.")
        if result.diverged_at is not None:
            self.diverged_region.setRegion((math.log10(result.diverged_at), math.log10(self._max_lr) + 1))
            self.diverged_region.setVisible(True)
        if result.suggested_lr is not None:
            text = format_lr(result.suggested_lr)
            self.marker.setVisible(True)  # first: a hidden label ignores new text
            self.marker.label.setFormat(f"suggested {text}")
            self.marker.setPos(math.log10(result.suggested_lr))
            self.marker.label.valueChanged()  # the new text even where the line did not move
            self.use_button.setText(f"Use {text}")
            self.use_button.setEnabled(True)
            self.use_button.setDefault(True)
            self.use_button.setFocus()
        self._say(result.message)

    def _on_failed(self, exc: BaseException, _tb: str) -> None:
        self._finish()
        self._say(f"The search failed: {type(exc).__name__}: {exc}", error=True)

    def _finish(self) -> None:
        self._running = False
        self._timer.stop()
        self._drain()
        self.close_button.setText("Close")
        self.close_button.setToolTip(CLOSE_TIP)
        self.close_button.setEnabled(True)
        if self._closed:  # closed while it searched: nothing will show it again
            self.deleteLater()

    def _say(self, text: str, error: bool = False) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet(ERROR_STYLE if error else "")

    # ------------------------------------------------------------------ buttons and closing
    def _on_use_clicked(self) -> None:
        if self.result is None or self.result.suggested_lr is None:
            return
        self._on_use(float(self.result.suggested_lr))
        self.accept()

    def _on_close_clicked(self) -> None:
        if self._running:
            self.control.request_stop()
            self.close_button.setEnabled(False)
            self.status_label.setText("Stopping after this step…")
            return
        self.reject()

    def done(self, code: int) -> None:
        """Every way of closing (Use, Close, Esc, the close box) ends here: stop a search that is still going."""
        self._closed = True
        if self._running:
            self.control.request_stop()
        super().done(code)
        if not self._running:
            self.deleteLater()
