"""The Train workspace: hyperparameters, a Train button, live plots, and past runs to compare.

Threading (docs/ARCHITECTURE.md, "Train -> worker -> plots"): pressing Train snapshots the design and
the form into a :class:`RunRequest`, moves a :class:`TrainWorker` to a fresh QThread and starts it. The
worker calls the Qt-free trainer, whose reporter only appends to a lock-protected buffer. A 15 Hz GUI
timer drains the buffer into the plots' preallocated arrays and the progress widgets, so the number of Qt
calls does not grow with the number of batches. The run ends with one queued signal; the thread's
``finished`` signal closes the run in the GUI, after which no thread of this workspace is left running.

Only widgets and wiring live here. The logic is Qt-free and tested without a display: progress, speed
and time left (``core/progress.py``), overfitting detection (``core/overfitting.py``), end-of-run
messages and what went wrong in a run (``core/run_outcome.py``), event-log lines (``core/run_log.py``),
time-per-epoch estimates (``core/epoch_estimate.py``), speed measurement (``ml/speed.py``) and the
model's size (``ml/model_size.py``).
"""

from __future__ import annotations

import html
import math
import os
import re
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core import run_outcome
from neuralstudio.core.design import Design, design_from_dict
from neuralstudio.core.epoch_estimate import NO_ESTIMATE, estimate_from_runs, measured_estimate
from neuralstudio.core.errors import UserError
from neuralstudio.core.numbers import as_number
from neuralstudio.core.overfitting import OverfittingWatch, overfitting_message, overfitting_start
from neuralstudio.core.progress import RunProgress, final_speed_text
from neuralstudio.core.run_log import epoch_line, run_start_line, stopped_epoch_line
from neuralstudio.core.runs import RunRecord, RunsStore
from neuralstudio.core.training_settings import TrainingSettings
from neuralstudio.ml.model_size import model_size_text
from neuralstudio.ml.speed import epoch_examples, measure_samples_per_second
from neuralstudio.ui.garbage_collection import gui_garbage_collector
from neuralstudio.ui.library_warnings import library_warnings
from neuralstudio.ui.responsiveness import favor_gui_thread
from neuralstudio.ui.tasks import TaskRunner
from neuralstudio.ui.train.confusion_view import ConfusionView
from neuralstudio.ui.train.experiment_panel import ExperimentTab
from neuralstudio.ui.train.layer_stats_panel import LayerStatsPanel
from neuralstudio.ui.train.plots import TrainingPlots
from neuralstudio.ui.train.runs_panel import RunsPanel, run_label
from neuralstudio.ui.train.settings_panel import SettingsPanel
from neuralstudio.ui.train.worker import ReportBuffer, RunRequest, TrainWorker, diagnose_run

# overfitting_start is also imported from here; model_size_text and measure_samples_per_second are called
# through this module's names, which the tests replace
__all__ = ["TrainWorkspace", "default_confirm_close", "measure_samples_per_second", "model_size_text",
           "overfitting_start", "running_training_threads"]

#: every training QThread started by a workspace (tests check none is left running)
LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def running_training_threads() -> int:
    """How many training threads are still running (deleted ones count as stopped)."""
    import shiboken6

    return sum(1 for t in list(LIVE_THREADS) if shiboken6.isValid(t) and t.isRunning())


#: the widest text the speed label shows (it has a fixed width)
SPEED_TEXT_WIDEST = "888,888 samples/s · 88.8 min left"
#: the progress bars' look: flat, so that an update costs a rectangle fill and the text
PROGRESS_STYLE = ("QProgressBar { border: 1px solid #b8c2cc; border-radius: 3px; background: #f7f9fb;"
                  " text-align: center; color: #1a202c; }"
                  " QProgressBar::chunk { background: #90cdf4; border-radius: 2px; }")
TRAIN_TIP = "Start training with these settings"
ERROR_COLOR = "#b00020"  # the status line's colour for what went wrong
DRAIN_INTERVAL_MS = 66  # 15 Hz: the plots and progress refresh at most this often (goal: >= 10/s)
#: from the Train click to the training thread's start: the cleared plots paint meanwhile, with nothing
#: competing for the GIL. pyqtgraph paints a cleared plot twice (the second paint after its new range is
#: applied, 15-35 ms after the click); started at once, the new thread made that paint wait for the GIL:
#: 25 ms of plot paints became 50+ ms stalls (tests/benchmarks/bench_train_window.py, BENCH_VERBOSE=1).
START_DELAY_MS = 60
#: the longest the thread's start waits for the Inside tab's cleared plots, drawn one a stage
START_WAIT_S = 1.0
#: the steps of a run's end that can wait (the runs table, the garbage collection) run this long apart, each
#: in its own event-loop turn: in one turn with the end message and the last plots they froze the window
#: 140-160 ms (docs/ARCHITECTURE.md, "A run's edges")
AFTER_RUN_STEP_MS = 30
CLOSE_WAIT_S = 120.0
#: the Mistakes tab's check predicts about this long per background task (then shows what it has)
MISTAKES_STEP_S = 0.25
#: the height the lower pane grows to when the Mistakes tab is shown
MISTAKES_HEIGHT = 440


def default_confirm_close(parent: QWidget) -> bool:
    """Ask whether to stop the run in progress and close."""
    answer = QMessageBox.question(
        parent, "Training is running",
        "A training run is in progress. Stop it and close? What it has learned so far is kept in its run record.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class TrainWorkspace(QWidget):
    """The Train tab; stands alone (``TrainWorkspace()``) so the main window only hosts it.

    Args:
        parent: the hosting widget.
        runs_store: where runs are recorded and read back; defaults to the user data folder.
        runner: the background runner that counts the model's parameters and lists the devices (the
            main window lends its own, which also analyses the design); the workspace makes its own
            when None, and stops it in :meth:`shutdown`.

    Signals:
        model_trained(keras_model, label, design): a run ended with a usable model (for Predict and export),
            or the learner chose a past run's model in the runs table, with the design snapshot it was built
            from (what a Python export must write). A run that went wrong (diverged, chance level) is not
            offered while a better model is current: its end-of-run message says so.
        running_changed(bool): a run started or ended.
        open_in_predict(image): an image of the Mistakes tab was clicked: show it in Predict.
    """

    model_trained = Signal(object, str, object)
    running_changed = Signal(bool)
    training_settings_changed = Signal(object)  # TrainingSettings the user set for the shown design
    #: a Design holding an experiment's best values (Apply to design), for the editor to make one undo step
    apply_design_requested = Signal(object)
    #: an image of the data as the network saw it (float32, 28x28 for MNIST), chosen in the Mistakes tab, for Predict
    open_in_predict = Signal(object)

    #: called by :meth:`request_close` while a run is going; returns True to stop it and close
    confirm_close: Callable[[QWidget], bool] = staticmethod(default_confirm_close)

    def __init__(self, parent: QWidget | None = None, *, runs_store: RunsStore | None = None,
                 runner: TaskRunner | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainWorkspace")
        self.runs_store = runs_store if runs_store is not None else RunsStore()
        self._design: Design | None = None
        self._dataset: Any = None  # an in-memory Dataset that overrides the form's data source
        self._thread: QThread | None = None
        self._worker: TrainWorker | None = None
        self._buffer: ReportBuffer | None = None
        self._control: Any = None
        self._request: RunRequest | None = None
        self._result: Any = None
        self._diagnosis: run_outcome.Diagnosis | None = None  # the training thread's, for the run's end
        self._after_run_steps: list[Callable[[], None]] = []  # what the run's end has still to do, in turns
        self._after_run_timer = QTimer(self)
        self._after_run_timer.setSingleShot(True)
        self._after_run_timer.setInterval(AFTER_RUN_STEP_MS)
        self._after_run_timer.timeout.connect(self._on_after_run_timer)
        self._start_by = 0.0  # when the run's thread starts at the latest (see _start_thread)
        self._crash: str | None = None
        self._info_dirty = True
        self._pending_design: Design | None = None
        self._devices_known = False
        self._devices_found: Any = None  # a device report that arrived during a run, offered when it ends
        self._size_for: Design | None = None
        self._size_text = ""
        self._measured_text = ""  # the time per epoch from Measure speed, until the design or settings change
        self._measuring = False  # Measure speed is timing steps in the background (Train waits for it)
        self._saving = False  # Save model is writing the file in the background
        self._runner = runner
        self._own_runner = False  # made on first use when no runner was lent
        self._start_model: Any = None  # the model "Continue from the current model" starts from
        self._start_label = ""
        self.last_result: Any = None
        self.last_message = ""

        # ---- left: settings, estimate and buttons
        self.settings_panel = SettingsPanel(self)
        self.design_label = QLabel("No design yet: open or build one in the Design workspace.", self)
        self.design_label.setObjectName("designLabel")
        self.design_label.setWordWrap(True)
        self.train_button = self._button("Train", "trainButton", TRAIN_TIP)
        self.pause_button = self._button("Pause", "pauseButton", "Pause or resume the run")
        self.stop_button = self._button("Stop", "stopButton", "Stop the run, keeping what was learned")
        self.save_button = self._button("Save model…", "saveModelButton", "Save the trained model as .keras")
        self.measure_button = self._button("Measure speed", "measureButton",
                                           "Time a few training steps to estimate the time per epoch")
        self.continue_check = QCheckBox("Continue from the current model", self)
        self.continue_check.setObjectName("continueCheck")
        self.continue_check.setAccessibleName("continueCheck")
        self.continue_check.setToolTip("Start from the weights of the model last trained or opened instead of "
                                       "fresh random ones (it must have this design's layers)")
        self.continue_check.setEnabled(False)
        self.pause_button.setCheckable(True)
        for b in (self.pause_button, self.stop_button, self.save_button):
            b.setEnabled(False)
        self.train_button.clicked.connect(self._on_train_clicked)
        self.pause_button.toggled.connect(self._on_pause_toggled)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.measure_button.clicked.connect(self._on_measure_clicked)
        self.settings_panel.changed.connect(self._on_settings_changed)
        self.settings_panel.find_learning_rate_requested.connect(self._on_find_learning_rate)
        # Previews load on a runner of the workspace's own, shut down with it: reading a large CSV or image
        # folder takes seconds, and the model size and device list should not queue behind it.
        self._preview_runner: TaskRunner | None = None
        self.settings_panel.data_picker.set_runner(self._own_preview_runner)
        self.settings_panel.data_picker.status_changed.connect(self._on_data_checked)
        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.design_label)
        # The form scrolls on a small screen (1024x700) instead of squeezing the data preview to slivers;
        # the buttons below stay in view.
        self.settings_scroll = QScrollArea(self)
        self.settings_scroll.setObjectName("settingsScroll")
        self.settings_scroll.setWidgetResizable(True)
        self.settings_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.settings_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_scroll.setWidget(self.settings_panel)
        self.settings_scroll.setMinimumWidth(self.settings_panel.sizeHint().width() + 16)
        ll.addWidget(self.settings_scroll, 1)
        ll.addWidget(self.measure_button)
        ll.addWidget(self.continue_check)
        bl = QGridLayout()
        bl.addWidget(self.train_button, 0, 0, 1, 2)
        bl.addWidget(self.pause_button, 1, 0)
        bl.addWidget(self.stop_button, 1, 1)
        bl.addWidget(self.save_button, 2, 0, 1, 2)
        ll.addLayout(bl)
        self.train_button.setMinimumHeight(36)
        self.train_button.setStyleSheet("font-weight: bold;")

        # ---- right: status, progress, plots, log / runs
        self.status_label = QLabel("Ready.", self)
        self.status_label.setObjectName("statusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Two lines high from the start, and it never shrinks back while the window keeps its width (_say): the
        # long end-of-run message and the one-line "Preparing…" of the next run resized the label, re-laid
        # out the window and repainted every plot at both edges of a run.
        self._status_lines_height = 2 * self.status_label.fontMetrics().lineSpacing() + 2
        self.status_label.setMinimumHeight(self._status_lines_height)
        self._status_palette = self.status_label.palette()
        self.epoch_bar = QProgressBar(self)
        self.epoch_bar.setObjectName("epochProgress")
        self.epoch_bar.setAccessibleName("Epoch progress")
        self.epoch_bar.setFormat("epoch %p%")
        self.run_bar = QProgressBar(self)
        self.run_bar.setObjectName("runProgress")
        self.run_bar.setAccessibleName("Run progress")
        self.run_bar.setFormat("run %p%")
        self.speed_label = QLabel("", self)
        self.speed_label.setObjectName("speedLabel")
        # A fixed size: a label whose size may change re-lays out the whole window at every new text.
        widest = self.speed_label.fontMetrics().horizontalAdvance(SPEED_TEXT_WIDEST)
        self.speed_label.setFixedSize(max(240, widest + 12), self.speed_label.sizeHint().height())
        self.plots = TrainingPlots(self)
        self.log_view = QPlainTextEdit(self)
        self.log_view.setObjectName("eventLog")
        self.log_view.setAccessibleName("Event log")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        relay = library_warnings()  # what Keras warns about goes here, not to the terminal
        for text in relay.backlog:
            self._log(text)
        relay.warned.connect(self._on_library_warning)
        self.runs_panel = RunsPanel(self)
        self.runs_panel.overlay_changed.connect(self._on_overlay_changed)
        self.runs_panel.compare_requested.connect(self._on_compare_requested)
        self.runs_panel.export_csv_requested.connect(self._on_export_csv)
        self.runs_panel.export_png_requested.connect(self._on_export_png)
        self._wire_run_choice()
        self.bottom_tabs = QTabWidget(self)
        self.bottom_tabs.addTab(self.runs_panel, "Runs")
        self.bottom_tabs.addTab(self.log_view, "Event log")
        self._wire_experiment()
        self._wire_layer_stats()
        self._wire_mistakes()
        self._progress_row = QWidget(self)
        self._progress_row.setObjectName("progressRow")
        self._progress_row.setAutoFillBackground(True)  # opaque: its updates do not repaint what lies beneath
        # Flat bars: Fusion draws a bar's chunk with a gradient and translucent diagonal stripes, Qt's
        # slow path for lines (measured: 0.43 -> 0.17 ms per progress update, 15 times a second).
        self._progress_row.setStyleSheet(PROGRESS_STYLE)
        progress = QHBoxLayout(self._progress_row)
        progress.setContentsMargins(0, 0, 0, 0)
        progress.addWidget(self.epoch_bar, 1)
        progress.addWidget(self.run_bar, 1)
        progress.addWidget(self.speed_label)
        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.status_label)
        tl.addWidget(self._progress_row)
        tl.addWidget(self.plots, 1)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(top)
        right.addWidget(self.bottom_tabs)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([600, 260])
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 900])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_INTERVAL_MS)
        self._timer.timeout.connect(self._on_drain_timer)
        self._reset_run_state()
        self.runs_panel.set_store(self.runs_store, None)
        self._update_buttons()

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        b = QPushButton(text, self)
        b.setObjectName(name)
        b.setAccessibleName(name)
        b.setAccessibleDescription(tip)
        b.setToolTip(tip)
        return b

    # ------------------------------------------------------------------ public API
    def set_design(self, design: Design) -> None:
        """Show ``design``'s settings; Train trains a snapshot copy taken when it is pressed.

        While a run is going the form keeps showing the run's settings; the new design is
        shown when the run ends.
        """
        if self.is_running():
            self._pending_design = design
            return
        self._pending_design = None
        self._design = design
        self.experiment.set_design(design)
        self.settings_panel.set_settings(design.training, design.data.get("source") if design.data else None)
        self.design_label.setText(f"Design: <b>{html.escape(design.name)}</b> ({len(design.graph)} layers)")
        self.runs_panel.set_store(self.runs_store, design.name, design.id)
        if getattr(self, "_status_is_error", False):  # about the design as it was: stale once it changed
            self._say(f"Ready to train {design.name}.")
        self._info_dirty = True
        if self.isVisible():
            QTimer.singleShot(0, self._update_info)
        self._update_buttons()

    def set_start_model(self, model: Any, label: str = "") -> None:
        """The model that "Continue from the current model" starts from (None: none, the box is disabled).

        Its weights are copied when Train is pressed, so later changes to it do not leak into the run.
        The main window calls this whenever its current model changes, so this is also how the workspace
        knows which model a run that went wrong must not replace.
        """
        self._note_current_model(model, label)
        self._start_model = model
        self._start_label = label if model is not None else ""
        if model is None:
            self.continue_check.setChecked(False)
            self.continue_check.setToolTip("Open a model or train one first to continue from it")
        else:
            self.continue_check.setToolTip(f"Start from the weights of {label or 'the current model'} instead of "
                                           "fresh random ones (it must have this design's layers)")
        self._update_buttons()

    def set_dataset(self, dataset: Any) -> None:
        """Train on this in-memory ``Dataset`` instead of the form's data source (None: back to the form)."""
        self._dataset = dataset
        self.settings_panel.data_picker.set_override(dataset)
        self._info_dirty = True
        self._update_buttons()

    def is_running(self) -> bool:
        return self._thread is not None

    @property
    def background_busy(self) -> bool:
        """The model's size, the devices or a speed measurement are still being worked out."""
        return self._runner is not None and self._runner.busy

    def is_paused(self) -> bool:
        return self.is_running() and self.pause_button.isChecked()

    def start(self) -> bool:
        """Start a run (what the Train button does); False with a message in the status line when it cannot."""
        if self.is_running():
            return False
        if self.experiment.is_running():  # one training at a time
            self._say("An experiment is running (Experiment tab): stop it to train a single run.")
            return False
        if self._measuring:
            self._say("Measuring the speed: Train is ready again in a moment.")
            return False
        if self._design is None:
            self._say("There is no design to train: build or open one in the Design workspace first.")
            return False
        try:
            settings = self.settings_panel.settings()
        except UserError as exc:
            self._say(f"Cannot train: {exc}")
            return False
        from neuralstudio.ml.trainer import TrainControl

        snapshot = design_from_dict(self._design.to_dict(), self._design.name)
        snapshot.training = settings
        data = self._training_data()
        if self._dataset is None:
            snapshot.data = {**snapshot.data, "source": data}
        initial = None
        if self.continue_check.isChecked() and self._start_model is not None:
            initial = [w.copy() for w in self._start_model.get_weights()]  # a copy, taken here on the GUI thread
        self._request = RunRequest(design=snapshot, dataset=data, settings=settings,
                                   device=self.settings_panel.device(),
                                   mixed_precision=self.settings_panel.mixed_precision(),
                                   runs_store=self.runs_store, initial_weights=initial,
                                   layer_stats=self.settings_panel.layer_stats())
        self._buffer = ReportBuffer()
        self._control = TrainControl()
        self._result = None
        self._diagnosis = None
        self._crash = None
        self._reset_run_state(settings)
        self.plots.reset(epochs=settings.epochs)
        self.layer_stats_panel.reset(enabled=self._request.layer_stats)
        self._snapshot_waits = False
        self.log_view.clear()
        self._log(run_start_line(snapshot.name, settings, self._data_name()))
        if initial is not None:
            self._log(f"Continuing from {self._start_label or 'the current model'}.")
        self._say("Preparing the data and building the network…")
        worker = TrainWorker(self._request, self._buffer, self._control)
        thread = QThread()
        thread.setObjectName("neuralstudio-training")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(self._on_worker_done)
        worker.crashed.connect(self._on_worker_crashed)
        worker.done.connect(thread.quit)
        worker.crashed.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._worker, self._thread = worker, thread
        LIVE_THREADS.add(thread)
        self.settings_panel.set_running(True)
        self._update_buttons()
        self.running_changed.emit(True)
        # Paint the cleared plots and the new button states now, while no training thread competes for
        # the CPU and the GIL: painted after thread.start(), the same repaint stalled the window 50+ ms.
        if self.isVisible():
            self.repaint()
        favor_gui_thread()
        gui_garbage_collector().set_busy(self, True)  # no full pass in the middle of the plots
        # Started from the event loop a little later, not from the click's handler: see START_DELAY_MS.
        self._start_by = time.monotonic() + START_WAIT_S
        QTimer.singleShot(START_DELAY_MS, self._start_thread)
        return True

    def _start_thread(self, now: bool = False) -> None:
        """Start the run's thread once the Inside tab has drawn its cleared plots (at once with ``now``)."""
        thread = self._thread
        if thread is None or thread.isRunning() or thread.isFinished():
            return
        if not now and self.layer_stats_panel.staging and time.monotonic() < self._start_by:
            QTimer.singleShot(START_DELAY_MS, self._start_thread)
            return
        thread.start()
        self._timer.start()

    def pause(self) -> None:
        if self.is_running() and not self.pause_button.isChecked():
            self.pause_button.setChecked(True)

    def resume(self) -> None:
        if self.pause_button.isChecked():
            self.pause_button.setChecked(False)

    def stop(self) -> None:
        """Ask the run to stop after the current batch; it keeps what it learned."""
        if self._control is not None and self.is_running():
            self._control.request_stop()
            if self.pause_button.isChecked():
                self._control.resume()
            self.stop_button.setEnabled(False)
            self._say("Stopping after the current batch…")
            self._log("Stop requested.")

    def wait_finished(self, timeout_s: float = CLOSE_WAIT_S) -> bool:
        """Wait (processing events) until the run's thread has finished and the run is closed."""
        self._start_thread(now=True)  # a run asked for in this event-loop pass has not started yet
        deadline = time.monotonic() + timeout_s
        while self.is_running() and time.monotonic() < deadline:
            if self._thread is not None and self._thread.wait(20):
                QCoreApplication.processEvents()
                self._on_thread_finished()
            QCoreApplication.processEvents()
        return not self.is_running()

    def request_close(self) -> bool:
        """For the main window's closeEvent: True when closing is fine (no run left running).

        While a run is going, asks (:attr:`confirm_close`), stops it cleanly and
        waits for its thread: destroying a running QThread aborts the process.
        """
        if not self._close_experiment():
            return False
        if not self.is_running():
            self._timer.stop()
            return True
        if not type(self).confirm_close(self):
            return False
        self.stop()
        if not self.wait_finished():
            self._say("The run does not stop (it is still preparing or saving): wait a moment and close again.")
            return False
        self._timer.stop()
        return True

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.request_close():
            self.shutdown()
            event.accept()
        else:
            event.ignore()

    def save_model(self, path: str) -> None:
        """Save the last run's model as ``.keras`` (atomically), on the calling thread."""
        _save_keras_model(self._model_to_save(), path)

    def _model_to_save(self) -> Any:
        model = getattr(self.last_result, "model", None)
        if model is None:
            raise UserError("There is no trained model to save: train a run first.")
        return model

    # --------------------------------------------------------------- run display
    def _reset_run_state(self, settings: TrainingSettings | None = None) -> None:
        """A fresh progress and overfitting watch for a run with ``settings`` (defaults before any run)."""
        self._progress = RunProgress.for_settings(settings or TrainingSettings())
        self._overfitting = OverfittingWatch()
        self._training_said = False
        self.epoch_bar.setFormat("epoch %p%")
        self.run_bar.setFormat("run %p%")
        self.epoch_bar.setValue(0)
        self.run_bar.setValue(0)
        self.speed_label.setText("")

    @property
    def _epochs_done(self) -> int:
        """Epochs completed in the current run (the window benchmark prints it)."""
        return self._progress.epochs_done

    def _on_drain_timer(self, draw: bool = True) -> None:
        if self._buffer is None:
            return
        d = self._buffer.drain()
        if d.result is not None and self._result is None:
            self._result = d.result
        if d.failure and self._crash is None:
            self._crash = d.failure
        n = d.meta.get("train_samples")
        if isinstance(n, int):
            self._progress.set_train_samples(n)
        for m in d.messages:
            self._log(m)
        if d.batches:
            self._add_batches(d.batches)
            self._snapshot_waits = False
        for epoch, logs in d.epochs:
            self._on_epoch(epoch, logs)
        if d.layer_stats:  # a few a run: the panel draws them in stages (ui/train/layer_stats_panel.py)
            self._snapshot_waits = True  # drained after this drain's batches: they came before it
            self.layer_stats_panel.add_snapshots(d.layer_stats)
        # On another tab: keep the points, draw them when the tab is shown. Once Stop is pressed, the plots
        # wait for the run's end: the trainer's last steps (the partial epoch's validation, the test, the
        # model's file) hold the GIL most of the time, and a plot repainted then took 30-65 ms.
        stopping = self._control is not None and self._control.stop_requested
        if draw and self.plots.isVisible() and not stopping:
            self.plots.refresh(spread=True)

    def _add_batches(self, batches: list[tuple[int, int, dict[str, Any]]]) -> None:
        xs = [self._progress.add_batch(epoch, batch, logs) for epoch, batch, logs in batches]
        losses = [as_number(logs.get("loss"), math.nan) for _e, _b, logs in batches]
        accs = [as_number(logs.get("accuracy"), math.nan) for _e, _b, logs in batches]
        self.plots.add_batches(xs, losses, accs)
        self._update_progress()

    def _update_progress(self) -> None:
        if self._request is None:
            return
        # QProgressBar.setValue repaints at once, outside the batched paint: twice per tick, for
        # nothing. With updates off, the whole row is painted once, with the rest of the window.
        self._progress_row.setUpdatesEnabled(False)
        try:
            self._set_progress()
        finally:
            self._progress_row.setUpdatesEnabled(True)

    def _set_progress(self) -> None:
        assert self._request is not None
        p = self._progress
        self.epoch_bar.setValue(p.epoch_percent())
        self.run_bar.setValue(p.run_percent())
        speed = p.speed_text()
        if speed:
            self.speed_label.setText(speed)
        # progress-bar formats, not a word-wrapped label: a label's new text re-lays out the window
        self.epoch_bar.setFormat(p.epoch_text())
        self.run_bar.setFormat(f"run %p% · {p.run_text()}")
        if not self.is_paused() and not self._training_said:
            self._training_said = True
            self._say(f"Training {self._request.design.name}…")

    def _on_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        if logs.get("partial"):  # cut short by a stop: plotted where it stopped, not used for overfitting
            self.plots.add_epoch(max(self._progress.position, epoch), logs)
            self._log(stopped_epoch_line(epoch, logs))
            return
        self._progress.end_epoch(epoch)
        self.plots.add_epoch(epoch + 1, logs)
        self._log(epoch_line(epoch, logs))
        start = self._overfitting.add_epoch(logs)
        if start is not None and self.plots.overfit_epoch is None:
            msg = overfitting_message(start)
            self.plots.mark_overfitting(start, msg)
            self._log(msg)

    # ---------------------------------------------------------------- run end
    def _on_worker_done(self, result: Any) -> None:
        self._result = result

    def _on_worker_crashed(self, message: str) -> None:
        self._crash = message

    def _on_thread_finished(self) -> None:
        """The run's end, first step: the run's state, buttons and end message; the rest follows in steps.

        Every later step runs in its own event-loop turn, :data:`AFTER_RUN_STEP_MS` apart (see there): the
        last points of each plot, the Mistakes tab and Predict's model, the runs table, the garbage collection.
        """
        thread = self._thread
        if thread is None:
            return
        thread.wait()
        self._timer.stop()
        self._on_drain_timer(draw=False)  # the last batches and epochs, drawn in the steps below
        result = self._result
        worker = self._worker
        self._thread = None
        self._worker = None
        if worker is not None:
            self._diagnosis = worker.diagnosis
            worker.deleteLater()
        thread.deleteLater()
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(False)
        self.pause_button.setText("Pause")
        self.pause_button.blockSignals(False)
        self.settings_panel.set_running(False)
        steps: list[Callable[[], None]] = [self._draw_plots_step, self._draw_plots_step]
        if self._crash is not None and result is None:
            self._finish_failed(self._crash)
        elif result is None:
            self._finish_failed("The run ended without a result. This is a bug in NeuralStudio: the event log has "
                                "details.")
        else:
            kept = self._finish(result)
            steps.append(lambda: self._pass_on_model(result, kept))
        self._update_buttons()
        if self._pending_design is not None:
            self.set_design(self._pending_design)
        if self._devices_found is not None:
            self._on_devices_found(self._devices_found)
        self._info_dirty = True
        gui_garbage_collector().set_busy(self, False)
        self._after_run_steps = [*steps, self.runs_panel.reload, self._collect_after_run]
        self._after_run_timer.start()
        self.running_changed.emit(False)

    @property
    def ending(self) -> bool:
        """A run has ended and its later steps (plots, Mistakes, Predict, runs table) are still due."""
        return bool(self._after_run_steps)

    def _on_after_run_timer(self) -> None:
        if self._after_run_steps:
            self._after_run_steps.pop(0)()
        if self._after_run_steps:
            self._after_run_timer.start()

    def _draw_plots_step(self) -> None:
        """One plot's last points (a refresh spread over two steps paints one plot in full each)."""
        if self.plots.isVisible():
            self.plots.refresh(spread=True)

    def _collect_after_run(self) -> None:
        """The model's size line, and the garbage collection the trainer skipped.

        The trainer does not collect so as not to freeze the plots; done now that nothing is animating,
        memory does not grow run after run. (Later, as a timer, it fell in whatever the user did next: the
        next run's start in the benchmark, 90-110 ms.)
        """
        if self.isVisible():
            self._update_info()  # (nothing while a new run, started meanwhile, goes on)
        gui_garbage_collector().collect()  # even then: a run started at once after each end kept all garbage

    def _finish_failed(self, message: str) -> None:
        self.last_result = None
        self.last_message = message
        self._say(message, error=True)
        self._log(message)

    def _finish(self, result: Any) -> str:
        """The end message, progress and speed of a run that returned ``result``; the kept-model sentence."""
        self.last_result = result
        diagnosis = self._diagnose(result)
        kept = self._kept_model_sentence(diagnosis, result)
        msg = self.end_message(result, diagnosis) + kept
        self.last_message = msg
        self._say(msg, error=run_outcome.is_error(result))
        self._log(msg)
        if run_outcome.is_complete(result):
            self.epoch_bar.setValue(100)
            self.run_bar.setValue(100)
        speed = final_speed_text(as_number(getattr(result, "samples_per_second", None)))
        if speed:  # nothing is "left" any more: keep only the speed of the whole run
            self.speed_label.setText(speed)
        return kept

    def _pass_on_model(self, result: Any, kept: str) -> None:
        """The run's model to the Mistakes tab and, unless ``kept`` says why not, to Predict and Export."""
        self._check_run_mistakes(result)  # queued before Predict's copy of the model: the Mistakes tab fills first
        model = getattr(result, "model", None)
        if model is not None and run_outcome.run_status(result) != "nan" and not kept:
            label = f"{self._request.design.name if self._request else 'model'} ({getattr(result, 'run_id', '')})"
            self._hand_over(model, getattr(result, "run_id", None), self._diagnose(result).accuracy, label.strip(),
                            self._request.design if self._request else None)

    def end_message(self, result: Any, diagnosis: run_outcome.Diagnosis | None = None) -> str:
        """The end-of-run message in plain words: what went wrong if anything, and the next step."""
        return run_outcome.end_message(
            result, epochs_done=self._progress.epochs_done, last_batch=self._progress.last_batch,
            learning_rate=self._request.settings.learning_rate if self._request else None,
            diagnosis=diagnosis if diagnosis is not None else self._diagnose(result))

    def _diagnose(self, result: Any) -> run_outcome.Diagnosis:
        """How the run went: the training thread's diagnosis (worker.py), or worked out here without one."""
        if self._diagnosis is not None:
            return self._diagnosis
        if self._request is None:
            return run_outcome.diagnose_result(result)
        return diagnose_run(self._request, result)

    def _kept_model_sentence(self, diagnosis: run_outcome.Diagnosis, result: Any) -> str:
        """The sentence saying why a run that went wrong does not become the current model, or "" when it does.

        It does not when it diverged or ended at chance level while a better model is current: a model
        whose accuracy is unknown (an opened file) counts as better than one that learned nothing. The
        learner can still choose it from the runs table.
        """
        if not diagnosis.bad or self._current_model is None or getattr(result, "model", None) is None:
            return ""
        current = self._current_run
        score = current[1] if current is not None else None
        if score is not None and diagnosis.accuracy is not None and score <= diagnosis.accuracy:
            return ""
        if current is not None:
            who = f"the model of run {current[0]}" + (f" ({score:.1%})" if score is not None else "")
        else:
            who = f"the current model ({self._current_label})" if self._current_label else "the current model"
        return (f" This run's model does not replace the current one: {who} stays in Predict and Export; to use "
                "this one anyway: right-click the run > Use in Predict.")

    # ---------------------------------------------------------------- run choice
    def _wire_run_choice(self) -> None:
        """The runs table's requests for a run's model, and what the workspace knows of the current model."""
        self._current_model: Any = None  # the window's current model, as set_start_model last said
        self._current_label = ""
        self._current_run: tuple[str, float | None] | None = None  # its run and accuracy, if it came from one
        self._offered: tuple[Any, str | None, float | None] | None = None  # the model last handed over from a run
        self.runs_panel.use_requested.connect(self._on_run_use_requested)
        self.runs_panel.save_model_requested.connect(self._on_run_save_requested)
        self.runs_panel.export_requested.connect(self._on_run_export_requested)
        self.runs_panel.continue_requested.connect(self._on_run_continue_requested)

    def _note_current_model(self, model: Any, label: str) -> None:
        """Remember the window's current model, and the run it came from when it is one this workspace offered."""
        self._current_model = model
        self._current_label = label if model is not None else ""
        offered = self._offered
        self._current_run = (offered[1], offered[2]) if (
            model is not None and offered is not None and offered[0] is model and offered[1]) else None
        if self._current_run is None:
            self._offered = None  # another model is current: do not keep the offered one alive
        self.runs_panel.set_current_run(self._current_run[0] if self._current_run else None)

    def _hand_over(self, model: Any, run_id: str | None, accuracy: float | None, label: str,
                   design: Design | None) -> None:
        """Offer a run's model as the current model: the window takes it (model_trained) and calls set_start_model."""
        self._offered = (model, run_id, accuracy)
        self.model_trained.emit(model, label, design)

    def _load_run_model(self, rec: RunRecord, then: Callable[[RunRecord, Any], None]) -> None:
        """Load run ``rec``'s saved model on the background runner (loading runs Keras: never on the GUI thread)."""
        path = rec.model_path
        if path is None:
            self._say(f"Run {rec.id} has no saved model (its folder holds no model.keras), so there is nothing to "
                      "load: train it again to get one.", error=True)
            return

        def failed(exc: BaseException, _tb: str) -> None:
            reason = str(exc) if isinstance(exc, (UserError, OSError)) else f"{type(exc).__name__}: {exc}"
            self._say(f"Could not load the model of run {rec.id}: {reason}", error=True)

        self._say(f"Loading the model of run {rec.id}…")
        self._info_runner().submit(lambda: _load_run_model_file(str(path)), lambda model: then(rec, model), failed,
                                   thread_name="neuralstudio-load-run")

    @staticmethod
    def _run_design(rec: RunRecord) -> Design | None:
        """The design snapshot a run trained (for the Python export), or None when its record's copy is unusable."""
        try:
            return design_from_dict(rec.design, f"the design of run {rec.id}")
        except (UserError, ValueError, TypeError):
            return None

    def _use_run_model(self, rec: RunRecord, model: Any) -> None:
        accuracy = run_outcome.record_accuracy(rec)
        self._hand_over(model, rec.id, accuracy, f"{rec.name} ({rec.id})", self._run_design(rec))
        self._check_run_choice(rec, model)
        score = f" ({accuracy:.1%})" if accuracy is not None else ""
        msg = f"The model of run {rec.id}{score} is now the one Predict shows and Export writes."
        self._say(msg)
        self._log(msg)

    def _on_run_use_requested(self, rec: RunRecord) -> None:
        self._load_run_model(rec, self._use_run_model)

    def _on_run_continue_requested(self, rec: RunRecord) -> None:
        self._load_run_model(rec, self._continue_from_run_model)

    def _continue_from_run_model(self, rec: RunRecord, model: Any) -> None:
        """Make the run's model current and tick "Continue from the current model": Train then goes on from it."""
        self._use_run_model(rec, model)
        if self._start_model is not model:  # no window took it (a workspace on its own)
            self.set_start_model(model, f"{rec.name} ({rec.id})")
        self.continue_check.setChecked(True)
        other = "" if self._design is None or rec.name == self._design.name else (
            f" It was trained from the design {rec.name}, so its weights fit only a design with the same layers.")
        msg = (f"Press Train to go on training the model of run {rec.id} (Continue from the current model is "
               f"ticked).{other}")
        self._say(msg)
        self._log(msg)

    def _on_run_save_requested(self, rec: RunRecord) -> None:
        """Save a copy of the run's model file (the file itself: nothing to load, nothing lost)."""
        src = rec.model_path
        if src is None:
            self._say(f"Run {rec.id} has no saved model (its folder holds no model.keras), so there is nothing to "
                      "save: train it again to get one.", error=True)
            return
        path, _ = QFileDialog.getSaveFileName(self, f"Save the model of run {rec.id}", f"{_file_stem(rec)}.keras",
                                              "Keras model (*.keras)")
        if not path:
            return
        if not path.endswith(".keras"):
            path += ".keras"

        def done(_result: object) -> None:
            self._say(f"Saved the model of run {rec.id} to {path}.")
            self._log(f"Saved the model of run {rec.id} to {path}.")

        def failed(exc: BaseException, _tb: str) -> None:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._say(f"Could not save the model of run {rec.id} to {path}: {reason}.", error=True)

        self._say(f"Saving the model of run {rec.id} to {path}…")
        self._info_runner().submit(lambda: _copy_file(str(src), path), done, failed, thread_name="neuralstudio-save")

    def _on_run_export_requested(self, rec: RunRecord) -> None:
        self._load_run_model(rec, self._export_run_model)

    def _export_run_model(self, rec: RunRecord, model: Any) -> None:
        """The Export dialog for a run's model: every format, verified, as File > Export does for the current one."""
        from neuralstudio.ui.export.dialog import ExportDialog

        self._say(f"Export the model of run {rec.id}: choose a format in the dialog.")
        # the default output is named after the run's design, in the home folder (not inside the runs store)
        dialog = ExportDialog(model, model_path=Path.home() / f"{_file_stem(rec)}.keras", design=self._run_design(rec),
                              runner=self._info_runner(), parent=self)
        dialog.exported.connect(lambda r: self._say(f"Exported and verified the model of run {rec.id}: "
                                                    f"{getattr(r, 'path', '')}"))
        dialog.exec()

    # ---------------------------------------------------------------- helpers
    def _training_data(self) -> Any:
        """What a run trains on: the in-memory data set when one was given, else the form's data source."""
        return self._dataset if self._dataset is not None else self.settings_panel.data_source()

    def _data_name(self) -> str:
        if self._dataset is not None:
            return str(getattr(self._dataset, "name", "the given data"))
        return self.settings_panel.data_name()

    def _say(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        needed = self.status_label.heightForWidth(self.status_label.width())
        if needed > self.status_label.minimumHeight():
            self.status_label.setMinimumHeight(needed)
        # by palette: a new style sheet re-polishes the label and re-lays out the window around it
        pal = QPalette(self._status_palette)
        if error:
            pal.setColor(self.status_label.foregroundRole(), QColor(ERROR_COLOR))
        self.status_label.setPalette(pal)
        self._status_is_error = error

    def _on_library_warning(self, text: str) -> None:
        self._log(text)

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {text}")

    def _update_buttons(self) -> None:
        running = self.is_running()
        idle = not running and not self._measuring and self._design is not None
        # a source whose preview failed (or is still loading) is not trained on; the tooltip says why
        data_problem = "" if self._dataset is not None else self.settings_panel.data_picker.problem()
        self.train_button.setEnabled(idle and not data_problem)
        self.train_button.setToolTip(data_problem or TRAIN_TIP)
        self.measure_button.setEnabled(idle)
        self.continue_check.setEnabled(not running and self._start_model is not None)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(not running and not self._saving
                                    and getattr(self.last_result, "model", None) is not None)
        experiment = getattr(self, "experiment", None)
        if experiment is not None and experiment.is_running():  # one training at a time
            self.train_button.setEnabled(False)
            self.measure_button.setEnabled(False)
            self.train_button.setToolTip("An experiment is running (Experiment tab): stop it to train a single run")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():  # the status line's height fits the new width
            self.status_label.setMinimumHeight(self._status_lines_height)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.plots.refresh()
        if self._info_dirty and self._design is not None:
            QTimer.singleShot(0, self._update_info)

    def _update_info(self) -> None:
        """Model size and the estimated time per epoch (from the last run of this design).

        The size and the devices are worked out on the background runner: building the model
        here froze the window 90-160 ms when the Train page was first shown. Not while a run is
        going: the form shows the run's settings then.
        """
        if self._design is None or not self._info_dirty or self.is_running():
            return
        if "keras" not in sys.modules:  # the editor loads Keras in the background: importing it here would freeze
            self.settings_panel.estimate_label.setText("Model size: waiting for Keras to load…")
            QTimer.singleShot(1000, self._update_info)
            return
        self._info_dirty = False
        self._measured_text = ""
        if self._size_for is not self._design:
            self._size_text = "Model: counting the parameters…"
            self._ask_size(self._design)
        self._show_info()
        self._detect_devices()

    def _show_info(self) -> None:
        estimate = self._measured_text or estimate_from_runs(self.runs_panel.records) or NO_ESTIMATE
        self.settings_panel.estimate_label.setText(" ".join(t for t in (self._size_text, estimate) if t))

    def _info_runner(self) -> TaskRunner:
        if self._runner is None:
            self._runner = TaskRunner(self, name="neuralstudio-train-info")
            self._own_runner = True
        return self._runner

    def _ask_size(self, design: Design) -> None:
        """Count ``design``'s parameters in the background; shown if it is still the design when done."""

        def done(text: str) -> None:
            if design is self._design:
                self._size_for, self._size_text = design, text
                self._show_info()

        self._info_runner().submit(lambda: model_size_text(design), done,
                                   lambda exc, _tb: done(f"Model size unknown ({exc})."))

    def _detect_devices(self) -> None:
        """Offer the GPUs the Keras backend sees; only once Keras is loaded (importing it would take seconds;
        the editor or the first run loads it in the background), and in the background (the device listing
        and the driver check are slow enough to be felt). Keras, not TensorFlow: on JAX and PyTorch
        TensorFlow need not be imported at all."""
        if self._devices_known or "keras" not in sys.modules:
            return
        self._devices_known = True
        self._info_runner().submit(_device_report, self._on_devices_found)  # no devices: nothing to offer
        self._info_runner().submit(_preload_training)  # so that pressing Train imports nothing

    def _on_devices_found(self, rep: Any) -> None:
        if self.is_running():  # the form shows the run's settings: offer the devices when the run ends
            self._devices_found = rep
            return
        self._devices_found = None
        devs = [(f"gpu:{i}", f"GPU {i}" + (f": {g.description}" if g.description else ""))
                for i, g in enumerate(rep.gpus)]
        if len(devs) > 1:
            devs.append(("all-gpus", "all GPUs"))
        self.settings_panel.set_devices(devs)
        if not devs and rep.gpu_reason:
            self.settings_panel.device_box.setToolTip("No GPU: " + rep.gpu_reason)
        self.settings_panel.set_backend(*backend_text(rep))

    def shutdown(self) -> None:
        """Stop the workspace's own background threads, if it made them (the main window lends its own)."""
        self.experiment.shutdown()
        if self._own_runner and self._runner is not None:
            self._runner.shutdown()
        if self._preview_runner is not None:
            self._preview_runner.shutdown()
            self._preview_runner = None

    def _own_preview_runner(self) -> TaskRunner:
        if self._preview_runner is None:
            self._preview_runner = TaskRunner(self, name="neuralstudio-data-preview")
        return self._preview_runner

    # ------------------------------------------------------------------- slots
    def _on_train_clicked(self) -> None:
        self.start()

    def _on_pause_toggled(self, on: bool) -> None:
        if self._control is None or not self.is_running():
            return
        if on:
            self._control.pause()
            self.pause_button.setText("Resume")
            self._say("Paused: press Resume to continue, or Stop.")  # the trainer logs "Paused." when it holds
        else:
            self._control.resume()
            self.pause_button.setText("Pause")
            self._say("Training resumed.")

    def _on_stop_clicked(self) -> None:
        self.stop()

    def _on_save_clicked(self) -> None:
        name = (self._request.design.name if self._request else "model") + ".keras"
        path, _ = QFileDialog.getSaveFileName(self, "Save trained model", name, "Keras model (*.keras)")
        if not path:
            return
        if not path.endswith(".keras"):
            path += ".keras"
        try:
            model = self._model_to_save()  # taken now: a run started meanwhile replaces last_result
        except UserError as exc:
            self._say(str(exc), error=True)
            return

        def done(_result: object) -> None:
            self._saving = False
            self._update_buttons()
            self._say(f"Saved the model to {path}.")
            self._log(f"Saved the model to {path}.")

        def failed(exc: BaseException, _tb: str) -> None:
            self._saving = False
            self._update_buttons()
            reason = str(exc) if isinstance(exc, (UserError, OSError)) else f"{type(exc).__name__}: {exc}"
            self._say(f"Could not save the model to {path}: {reason}", error=True)

        # Saving writes every weight (a second or more for a large model): in the background, so the
        # window stays live; the file appears only once complete (save_keras_model writes atomically).
        self._saving = True
        self._update_buttons()
        self._say(f"Saving the model to {path}…")
        self._info_runner().submit(lambda: _save_keras_model(model, path), done, failed,
                                   thread_name="neuralstudio-save")

    def _on_settings_changed(self) -> None:
        self._info_dirty = True
        if self.is_running() or self._design is None:
            return
        try:
            settings = self.settings_panel.settings()
        except UserError:
            return  # half-typed: the panel shows why; the design keeps its last valid settings
        if settings != self._design.training:
            # The design holds its hyperparameters: the editor's checks (a loss that does not fit the output
            # layer) and the saved file follow what is set here, not what the design was opened with.
            self.training_settings_changed.emit(settings)

    def _on_data_checked(self) -> None:
        self._update_buttons()

    def _on_measure_clicked(self) -> None:
        """Time a few real training steps on zeros of the right shape, in the background (a second or two).

        The time per epoch is for the examples of the chosen data source, after the validation split (a data
        file is loaded to be counted, in the same background job; the named data sets are known).
        """
        if self._design is None or self.is_running() or self._measuring:
            return
        try:
            settings = self.settings_panel.settings()
        except UserError as exc:
            self._say(f"Cannot measure: {exc}")
            return
        design, data, before = self._design, self._training_data(), self.status_label.text()

        def measure() -> tuple[float, int]:
            examples = epoch_examples(data, settings)  # of the chosen data, after the validation split
            return measure_samples_per_second(design, settings), examples

        def finished() -> None:
            self._measuring = False
            self._update_buttons()

        def done(measured: tuple[float, int]) -> None:
            finished()
            self._say(before)
            if design is self._design:  # else the estimate belongs to a design no longer shown
                self._measured_text = measured_estimate(*measured)
                self._show_info()

        def failed(exc: BaseException, _tb: str) -> None:
            finished()
            self._say(f"Cannot measure the speed: {exc}", error=True)

        self._measuring = True
        self._update_buttons()
        self._say("Measuring the speed: timing a few training steps…")
        # queued behind any analysis; the runner runs it on a fresh plain Python thread (ARCHITECTURE.md, Threads)
        self._info_runner().submit(measure, done, failed, thread_name="neuralstudio-measure")

    def _on_find_learning_rate(self) -> None:
        """Find… beside the learning rate: Smith's range test (ui/train/lr_finder.py) on the design with the form's
        settings and the data a run would use, on the workspace's runner; the rate chosen goes into the form, and
        through its ``changed`` into the design. The form is locked while a run goes, so no run is searched beside."""
        if self._design is None:
            self._say("There is no design yet: build or open one in the Design workspace first.")
            return
        if self.is_running():
            return
        problem = "" if self._dataset is not None else self.settings_panel.data_picker.problem()
        try:
            settings = self.settings_panel.settings()
        except UserError as exc:
            problem = str(exc)
        if problem:
            self._say(f"Cannot search for a learning rate: {problem}", error=True)
            return
        from neuralstudio.ui.train.lr_finder import LrFinderDialog

        snapshot = design_from_dict(self._design.to_dict(), self._design.name)
        snapshot.training = settings
        self._lr_finder = LrFinderDialog(snapshot, self._training_data(), self._info_runner(),
                                         self.settings_panel.set_learning_rate, self,
                                         device=self.settings_panel.device())
        self._lr_finder.open()
        self._lr_finder.start()

    def _on_overlay_changed(self, records: list[RunRecord]) -> None:
        self.plots.set_overlays([(run_label(r), r.history()) for r in records])

    def _on_compare_requested(self) -> None:
        self.runs_panel.show_comparison()

    def _on_export_csv(self) -> None:
        rec = self.runs_panel.selected_or_ticked()
        if rec is None:
            self._say("There is no run to export yet.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export curves", f"{rec.id}.csv", "CSV (*.csv)")
        if path:
            self.runs_panel.write_csv(rec, path)
            self._say(f"Wrote the curves of run {rec.id} to {path}.")

    def _on_export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "training.png", "PNG image (*.png)")
        if path:
            written = self.plots.export_png(path)
            self._say("Wrote " + " and ".join(os.path.basename(p) for p in written) + ".")

    # ---------------------------------------------------------------- inside (ui/train/layer_stats_panel.py)
    def _past_the_snapshot(self) -> bool:
        """The Inside tab's gate: batches came after its latest snapshot, so the training thread is past the
        epoch's end (validation, a recompile's trace) and back in compiled steps that leave the GIL free."""
        return not self._snapshot_waits or not self.is_running()

    def _wire_layer_stats(self) -> None:
        """The Inside tab: each layer's gradients, updates, weights and activations during a run (when the
        settings' per-layer signals box is ticked), fed by the drain timer."""
        self.layer_stats_panel = LayerStatsPanel(self)
        self.layer_stats_panel.set_gate(self._past_the_snapshot)
        self._snapshot_waits = False  # a snapshot came and no batch yet after it
        i = self.bottom_tabs.addTab(self.layer_stats_panel, "Inside")
        self.bottom_tabs.setTabToolTip(i, "Inside the network: each layer's gradients, updates, weights, "
                                          "activations and dead or saturated units, epoch by epoch")

    # ---------------------------------------------------------------- experiment (ui/train/experiment_panel.py)
    def _wire_experiment(self) -> None:
        """The Experiment tab beside Runs and Event log: its trials train like runs, one training at a time."""
        self.experiment = ExperimentTab(self)
        i = self.bottom_tabs.addTab(self.experiment, "Experiment")
        self.bottom_tabs.setTabToolTip(i, "Vary hyperparameters over many trials and compare them (Ctrl+Shift+E)")
        self.experiment.running_changed.connect(self._on_experiment_running)
        self.experiment.say.connect(self._say)
        self.experiment.log.connect(self._log)
        self.experiment.runner.trial_progress.connect(self._on_experiment_trial_progress)
        self.running_changed.connect(self.experiment.set_single_run)

    def show_experiment(self) -> None:
        """Bring the Experiment tab forward (Run > Experiment…, Ctrl+Shift+E)."""
        self.bottom_tabs.setCurrentWidget(self.experiment)
        self.experiment.panel.table.setFocus()

    def vary(self, path: str, values: str | None = None) -> None:
        """Vary ``path`` in the experiment ("Vary this" in the Inspector), with values around the design's."""
        self.show_experiment()
        self.experiment.add_param(path, values)

    def _on_experiment_running(self, running: bool) -> None:
        if running and self.experiment.runner.thread is not None:
            LIVE_THREADS.add(self.experiment.runner.thread)
        if running:
            self._reset_run_state()
        self.settings_panel.set_running(running)  # the trials train the form's settings as they were at Start
        self._update_buttons()

    def _on_experiment_trial_progress(self, epoch_percent: int, epoch_text: str, run_percent: int,
                                      run_text: str) -> None:
        """The running trial in the page's own bars (the Experiment tab's bar counts the trials)."""
        self._progress_row.setUpdatesEnabled(False)  # one paint of the row, as _update_progress does
        try:
            self.epoch_bar.setValue(epoch_percent)
            self.epoch_bar.setFormat(epoch_text)
            self.run_bar.setValue(run_percent)
            self.run_bar.setFormat(f"%p% · {run_text}")
        finally:
            self._progress_row.setUpdatesEnabled(True)

    def _close_experiment(self) -> bool:
        """For request_close: stop a running experiment (asking first) and wait for its thread; False to stay open."""
        if not self.experiment.is_running():
            return True
        if not type(self).confirm_close(self):
            return False
        self.experiment.stop()
        if not self.experiment.wait_finished(CLOSE_WAIT_S):
            self._say("The experiment does not stop (it is still preparing or saving): wait a moment and close again.")
            return False
        return True
    # ---------------------------------------------------------------- mistakes (ui/train/confusion_view.py)
    def _wire_mistakes(self) -> None:
        """The Mistakes tab: the confusion matrix of the last run's model (or of the current model, on demand) on
        the test split, and the images behind each cell; a chosen image goes to Predict (open_in_predict)."""
        self.mistakes = ConfusionView(self)
        i = self.bottom_tabs.addTab(self.mistakes, "Mistakes")
        self.bottom_tabs.setTabToolTip(i, "Which classes the network mixes up on the test images, and the images "
                                          "it gets wrong (filled after every run, or with Check on test data)")
        self.mistakes.example_chosen.connect(self._on_mistake_chosen)
        self.mistakes.check_requested.connect(self._on_check_mistakes_requested)
        self.bottom_tabs.currentChanged.connect(self._on_bottom_tab_changed)
        self._mistakes_serial = 0  # which check is current: the steps of an older one stop
        #: seconds from the start of the last check to its first and its complete report on screen (bench_confusion)
        self.mistakes_timing: dict[str, float] = {}

    @property
    def checking_mistakes(self) -> bool:
        """A check of the test images is under way (its slices are queued on the runner one after another)."""
        return not self.mistakes.check_button.isEnabled()

    def check_mistakes(self, model: Any, data: Any, about: str, *, outputs: tuple[Any, ...] | None = None) -> None:
        """Fill the Mistakes tab with ``model``'s confusion report on the test split of ``data`` (a Dataset, or a
        source ``load_dataset`` reads), in the background.

        The images are predicted a slice at a time (``ml/confusion.ConfusionJob``, about
        :data:`MISTAKES_STEP_S` each), each slice one task on the workspace's runner: the matrix appears after
        the first slice and fills in, and work queued behind (Predict's copy of the new model) waits one slice,
        not the whole split. A newer check, or a run that starts, ends this one.

        ``outputs``, the split's outputs already computed with its images, labels and class names (a run's own
        test pass, :func:`_run_outputs`), make it one short task that predicts nothing: the complete report at once.
        """
        import shiboken6

        self._mistakes_serial += 1
        serial = self._mistakes_serial
        runner = self._info_runner()
        started = time.perf_counter()
        self.mistakes_timing = {}
        self.mistakes.set_checking(True)
        self.mistakes.set_message(f"Checking {about}…")

        def first() -> tuple[Any, Any]:
            from neuralstudio.ml.confusion import ConfusionJob

            if outputs is not None:
                job = ConfusionJob.from_outputs(model, *outputs)
            else:
                ds = _load_test_split(data)
                job = ConfusionJob(model, ds.x_test, ds.y_test, ds.class_names)
            return job, job.step(MISTAKES_STEP_S)

        def shown(answer: tuple[Any, Any]) -> None:
            if serial != self._mistakes_serial or not shiboken6.isValid(self):
                return
            job, report = answer
            self.mistakes.set_report(report, about=about)
            self.mistakes_timing.setdefault("first_s", time.perf_counter() - started)
            self.mistakes_timing["show_s"] = max(self.mistakes_timing.get("show_s", 0.0),
                                                 self.mistakes.last_show_seconds)
            if report.complete:
                self.mistakes_timing.update(complete_s=time.perf_counter() - started,
                                            predict_s=report.predict_seconds, report_s=report.build_seconds)
                self.mistakes.set_checking(False)
                self._name_mistakes_tab(report.mistakes)
            elif self.is_running() or self.experiment.is_running():  # training needs the cores now
                self.mistakes.set_checking(False)
                self.mistakes.set_message(f"Stopped checking {about} after {report.examples:,} of "
                                          f"{report.examples_total:,} images: a run started.")
            else:
                runner.submit(lambda: (job, job.step(MISTAKES_STEP_S)), shown, failed,
                              thread_name="neuralstudio-mistakes")

        def failed(exc: BaseException, _tb: str) -> None:
            if serial != self._mistakes_serial or not shiboken6.isValid(self):
                return
            self.mistakes.set_checking(False)
            reason = str(exc) if isinstance(exc, (UserError, OSError)) else f"{type(exc).__name__}: {exc}"
            self.mistakes.set_message(f"Could not check {about}: {reason}",
                                      error=not isinstance(exc, _NoTestSplitError))

        runner.submit(first, shown, failed, thread_name="neuralstudio-mistakes")

    def _name_mistakes_tab(self, mistakes: int | None) -> None:
        i = self.bottom_tabs.indexOf(self.mistakes)
        self.bottom_tabs.setTabText(i, "Mistakes" if mistakes is None else f"Mistakes ({mistakes:,})")

    def _check_run_mistakes(self, result: Any) -> None:
        """After a run that produced a model: its report on the run's own test split. Built from the outputs of the
        run's test pass when it kept them (``RunResult.test_outputs``: no second pass over the split, so matrix and
        gallery are there within a second of the run's end), else predicted a slice at a time. Submitted before
        the model is handed over, so it runs before Predict's copy of the model."""
        model = getattr(result, "model", None)
        if model is None or self._request is None:
            return
        run = getattr(result, "run_id", None)
        who = f"the model of run {run}" if run else "the run's model"
        self._name_mistakes_tab(None)
        self.check_mistakes(model, self._request.dataset, f"{who} on the test images of {self._data_name()}",
                            outputs=_run_outputs(result, self._request.dataset))

    def _check_run_choice(self, rec: RunRecord, model: Any) -> None:
        """A past run's model chosen in the runs table: checked on its own data when that can still be read (the
        data set it trained on is the one given to the workspace, a named set, or a file or folder still there)."""
        from neuralstudio.core.class_names import known_data

        name = rec.data.get("name") if isinstance(rec.data, dict) else None
        if not isinstance(name, str) or not name:
            return
        data: Any = None
        if self._dataset is not None and getattr(self._dataset, "name", None) == name:
            data = self._dataset
        elif known_data(name) is not None or Path(name).exists():
            data = name
        if data is None:
            self.mistakes.set_message(f"The data run {rec.id} trained on ({name}) is not at hand: choose it in the "
                                      "settings and press Check on test data.")
            return
        self.check_mistakes(model, data, f"the model of run {rec.id} on the test images of {name}")

    def _on_check_mistakes_requested(self) -> None:
        """Check on test data: the current model (as Predict shows it) on the data chosen in the settings."""
        model = self._current_model if self._current_model is not None else getattr(self.last_result, "model", None)
        if model is None:
            self.mistakes.set_message("There is no model to check yet: train a run, or open a model file.", error=True)
            return
        if self.is_running() or self.experiment.is_running():
            self.mistakes.set_message("A run is going: check the model when it ends.", error=True)
            return
        problem = "" if self._dataset is not None else self.settings_panel.data_picker.problem()
        if problem:
            self.mistakes.set_message(problem, error=True)
            return
        who = self._current_label or "the current model"
        self.check_mistakes(model, self._training_data(), f"{who} on the test images of {self._data_name()}")

    def _on_mistake_chosen(self, image: Any) -> None:
        self.open_in_predict.emit(image)

    def _on_bottom_tab_changed(self, index: int) -> None:
        """The Mistakes tab needs room for its matrix and gallery: the lower pane grows to :data:`MISTAKES_HEIGHT`
        (the plots keep the rest); the learner's own splitter position is kept when it is larger."""
        split = self.bottom_tabs.parentWidget()
        if self.bottom_tabs.widget(index) is not self.mistakes or not isinstance(split, QSplitter):
            return
        sizes = split.sizes()
        total = sum(sizes)
        want = min(MISTAKES_HEIGHT, total - 220)
        if len(sizes) == 2 and sizes[1] < want:
            split.setSizes([total - want, want])


class _NoTestSplitError(UserError):
    """The data has no test split to check on: said in the Mistakes tab, not as an error."""


def _run_outputs(result: Any, data: Any) -> tuple[Any, Any, Any, Any] | None:
    """A run's test outputs with the images, labels and class names they belong to (those of ``data`` when it is
    a loaded Dataset, as a check of it would read them, else those the run kept), or None when the run kept none
    (a stopped run not scored, no test split, outputs too large to keep: ``ml/trainer.KEEP_OUTPUTS_MAX_UNITS``)."""
    values = getattr(result, "test_outputs", None)
    images, labels = getattr(result, "test_images", None), getattr(result, "test_labels", None)
    if values is None or images is None or labels is None or not len(labels):
        return None
    if getattr(values, "ndim", 0) != 2 or len(values) != len(labels) or len(images) != len(labels):
        return None
    names = getattr(data, "class_names", None) if not isinstance(data, str) else None
    return values, images, labels, names or getattr(result, "class_names", None)


def _load_test_split(data: Any) -> Any:
    """Runs on a runner's plain thread: the data set (loaded when given as a source) with its test split checked."""
    ds = data
    if isinstance(data, str):
        from neuralstudio.ml.data import load_dataset

        ds = load_dataset(data)
    if getattr(ds, "x_test", None) is None or getattr(ds, "y_test", None) is None or not len(ds.x_test):
        raise _NoTestSplitError(f"{getattr(ds, 'name', 'the data')} has no test images.")
    return ds


def _file_stem(rec: RunRecord) -> str:
    """A file name for a run's model: its design's name (from a record, an untrusted file) made safe for a path."""
    stem = re.sub(r"[^\w.-]+", "_", rec.name).strip("._")[:80]
    return stem or "model"


def _load_run_model_file(path: str) -> Any:
    """Runs on a runner's plain thread: a run's saved model, loaded with Keras's safe mode."""
    from neuralstudio.ml.model_metadata import load_model as load_keras_model  # with its class names

    return load_keras_model(path)


def _copy_file(src: str, dst: str) -> None:
    """Copy ``src`` to ``dst`` atomically: the copy appears complete or not at all."""
    import shutil

    from neuralstudio.core.atomic import atomic_path

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _preload_training() -> None:
    from neuralstudio.ml.trainer import preload

    preload()


_CHOSEN = {"--backend": "chosen with --backend", "KERAS_BACKEND": "set by KERAS_BACKEND",
           "settings": "chosen in Settings > Keras Backend", "default": "the default"}


def backend_text(rep: Any) -> tuple[str, str]:
    """The backend label under the device choice and its tooltip, from a device report (``ml.devices``):
    ("Backend: JAX 0.10.2 — CPU", "Keras trains with JAX 0.10.2 (CPU-only build; the default). No GPU: ..."); the
    GPU's name only in the tip (the device box names it too), so that the label stays one short line."""
    from neuralstudio.ml.backends import label

    gpus = rep.gpus
    where = "CPU" if not gpus else ("GPU" if len(gpus) == 1 else f"{len(gpus)} GPUs")
    name = f"{label(rep.backend)} {rep.backend_version}".strip()
    tip = f"Keras trains with {name} ({rep.build}; {_CHOSEN.get(rep.choice_source, rep.choice_source)})."
    if gpus:
        tip += " GPUs: " + ", ".join(g.description or g.name for g in gpus) + "."
    elif rep.gpu_reason:
        tip += f" No GPU: {rep.gpu_reason}"
    tip += " Change the backend in Settings > Keras Backend (applies at the next start)."
    return f"Backend: {name} \u2014 {where}", tip


def _device_report() -> Any:
    from neuralstudio.ml.devices import device_report  # imported here too: 50 ms of module loading

    return device_report()


def _save_keras_model(model: Any, path: str) -> None:
    """Save the run's model atomically, with the class names of the data it was trained on (the trainer kept them
    with the model), so that Predict and the command line can name its outputs wherever the file goes."""
    from neuralstudio.ml.model_metadata import save_model  # Keras-side: imported when first needed

    save_model(model, path)
