"""An experiment in the background: the trials of a study, trained one after another, shown live.

The same guarantees as a single run (docs/ARCHITECTURE.md, "Train -> worker -> plots" and "Threads"), by
the same means: a worker object on a QThread that only waits, while the Qt-free ``ml.sweep.run_sweep``
works on a plain Python thread of its own (creating the study imports Keras and Optuna; each trial's
``Trainer`` then trains on its own thread). Its reporter only appends to buffers under a lock: one
:class:`~neuralstudio.ui.train.worker.ReportBuffer` per trial, filled by the single run's own
:class:`~neuralstudio.ui.train.worker.BufferReporter`, and an ordered list of trial events. A GUI timer
drains them at 15 Hz into the Train page's plots, which are reset when a trial starts, so the running
trial's curves are drawn where a single run's are. No widget is touched off the GUI thread, and every
exception there becomes the ``finished`` signal's message.

Stopping acts on the running trial and on those to come (``SweepControl``): the trials already finished
stay in the study and in the runs store. Closing the window stops the experiment and waits for its thread,
as for a run (destroying a running QThread aborts the process).
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import format_duration
from neuralstudio.core.numbers import as_number
from neuralstudio.core.progress import RunProgress
from neuralstudio.core.runs import RunsStore
from neuralstudio.ui.garbage_collection import gui_garbage_collector
from neuralstudio.ui.responsiveness import favor_gui_thread, training_priority
from neuralstudio.ui.train.worker import BufferReporter, ReportBuffer

__all__ = ["ExperimentReporter", "ExperimentRequest", "ExperimentRunner", "ExperimentWorker", "progress_text"]

DRAIN_INTERVAL_MS = 66  # as the single run's: 15 Hz, one bounded piece of GUI work per tick
CLOSE_WAIT_S = 120.0


@dataclass
class ExperimentRequest:
    """Everything an experiment needs, fixed when Start is pressed (later edits of the design do not leak in).

    Args:
        spec: the ``ml.sweep.SweepSpec`` (design snapshot with the form's settings, search space, budget).
        dataset: an in-memory ``Dataset`` every trial trains on; None loads ``spec.data`` on the thread.
        runs_store: where each trial is recorded as an ordinary run (the Runs tab's store).
    """

    spec: Any
    dataset: Any = None
    runs_store: RunsStore | None = None


class ExperimentReporter:
    """The ``SweepReporter`` of a GUI experiment: called on the training thread, it only appends under a lock.

    A trial's batches, epochs and messages go to that trial's own :class:`ReportBuffer` (through the single
    run's :class:`BufferReporter`); its start and end go to one ordered event list, which tells the GUI
    which buffer the points belong to, so that a trial's last points are never drawn on the next one's plots.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[str, Any]] = []
        self.general = ReportBuffer()  # what is said before the first trial (creating the study, loading data)
        self._current = BufferReporter(self.general)

    # ---- SweepReporter, on the training thread
    def on_trial_started(self, number: int, values: dict[str, Any]) -> None:
        buffer = ReportBuffer()
        with self._lock:
            self._current = BufferReporter(buffer)
            self._events.append(("started", (number, dict(values), buffer)))

    def on_batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None:
        self._current.on_batch(epoch, batch, logs)

    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self._current.on_epoch(epoch, logs)

    def on_log(self, message: str) -> None:
        self._current.on_log(message)

    def on_trial_finished(self, outcome: Any) -> None:
        with self._lock:
            self._events.append(("finished", outcome))

    # ---- from the worker
    def note(self, kind: str, payload: Any) -> None:
        """An event of the experiment itself (``study``: the study was created; ``samples``: training examples)."""
        with self._lock:
            self._events.append((kind, payload))

    # ---- on the GUI thread
    def drain_events(self) -> list[tuple[str, Any]]:
        """The events since the last call, in order (a swap under the lock)."""
        with self._lock:
            out, self._events = self._events, []
        return out


class ExperimentWorker(QObject):
    """Runs the experiment when its thread starts; lives in that thread, which only waits.

    Args:
        request: what to run.
        reporter: where the trials report.
        control: the experiment's ``SweepControl`` (pause, resume, stop; thread-safe).
    """

    #: the list of TrialOutcome of this run of the study; emitted once, when it ends
    done = Signal(object)
    #: a readable message when the experiment could not run (bad storage, no data...) or raised
    crashed = Signal(str)

    def __init__(self, request: ExperimentRequest, reporter: ExperimentReporter, control: Any) -> None:
        super().__init__()
        self.request = request
        self.reporter = reporter
        self.control = control

    @Slot()
    def run(self) -> None:
        """Run the trials; never raises (an exception becomes :attr:`crashed`)."""
        try:
            from neuralstudio.ml.keras_threads import run_on_python_thread

            # The GUI thread comes first (ui/responsiveness.py); the threads started from here inherit it.
            with training_priority([threading.get_native_id()]):
                outcomes = run_on_python_thread(self._sweep, "neuralstudio-experiment")
        except UserError as exc:
            self.crashed.emit(str(exc))
            return
        except BaseException as exc:  # noqa: BLE001 - the GUI must get a message, not a dead thread
            tb = traceback.format_exception_only(type(exc), exc)
            self.reporter.general.add_message(traceback.format_exc())
            self.crashed.emit("The experiment stopped because of an unexpected error: " + "".join(tb).strip()
                              + ". This is a bug in NeuralStudio or a broken installation; the event log has details.")
            return
        self.done.emit(outcomes)

    def _sweep(self) -> Any:
        """On a plain Python thread: create the study, load the data once, and run the trials."""
        from neuralstudio.ml.sweep import new_study, run_sweep

        r = self.request
        self.reporter.on_log("Creating the experiment's study…")
        study = new_study(r.spec)
        self.reporter.note("study", study)
        dataset = r.dataset
        if dataset is None:
            from neuralstudio.ml.data import load_dataset

            source = r.spec.data or str(r.spec.design.data.get("source") or "mnist-sample")
            self.reporter.on_log(f"Loading the data set {source}…")
            dataset = load_dataset(source)
        x_train = getattr(dataset, "x_train", None)
        if x_train is not None:
            self.reporter.note("samples", len(x_train))
        if self.control.stop_requested:  # stopped while it was being prepared: no trial at all
            return []
        # no collection on this thread (it deadlocks when it frees a Qt object): the GUI's collector runs
        # between trials (ui/garbage_collection.py)
        return run_sweep(study, r.spec, reporter=self.reporter, control=self.control, runs_store=r.runs_store,
                         dataset=dataset, free_memory=False)


def progress_text(done: int, total: int | None, fraction: float, elapsed_s: float, timeout_s: float | None,
                  estimate_s: float | None = None) -> tuple[int, str]:
    """The experiment's progress bar: percent and ``2 of 16 trials done, about 2 min left``.

    Counted in trials done, not by the running trial's number: Optuna numbers trials from 0 (the table and
    the runs say "trial 0"), and "trial 3 of 16" would read as the third. The time left is the mean time of
    a trial so far (the running one counted by its ``fraction`` done) times the trials left, bounded by the
    time limit; before any trial has made progress, the estimate made before the start stands in.
    """
    head = f"{done} of {total} trials done" if total else f"{done} trial{'s' if done != 1 else ''} done"
    progress = done + max(0.0, min(1.0, fraction))
    left: float | None = None
    if total and progress > 0.02:
        left = elapsed_s / progress * max(0.0, total - progress)
    elif estimate_s is not None and estimate_s > 0:
        left = max(0.0, estimate_s - elapsed_s)
    if timeout_s:
        budget = max(0.0, timeout_s - elapsed_s)
        left = budget if left is None else min(left, budget)
    if total:
        percent = int(round(100 * min(1.0, progress / total)))
    elif timeout_s:
        percent = int(round(100 * min(1.0, elapsed_s / timeout_s)))
    else:
        percent = 0
    if left is not None and math.isfinite(left):
        head += f", about {format_duration(left)} left"
    return percent, head


class ExperimentRunner(QObject):
    """Starts, drives and ends an experiment's background thread; feeds the running trial into ``plots``.

    Args:
        plots: the Train page's ``TrainingPlots`` (reset at each trial's start).
        parent: the owning widget.

    Signals:
        running_changed(bool): the experiment started or ended (its thread is gone when False).
        study_ready(object): the Optuna study exists (its results can be read).
        trial_started(int, dict): trial number and values.
        trial_finished(object): a ``TrialOutcome``.
        message(str): a line for the event log.
        progress(int, str): the whole experiment's percent and text.
        trial_progress(int, str, int, str): the running trial's epoch percent and text, its run percent and text
            (for the Train page's own progress bars).
        finished(object, str): this run's outcomes, and "" or the message of why it could not go on.
    """

    running_changed = Signal(bool)
    study_ready = Signal(object)
    trial_started = Signal(int, object)
    trial_finished = Signal(object)
    message = Signal(str)
    progress = Signal(int, str)
    trial_progress = Signal(int, str, int, str)
    finished = Signal(object, str)

    def __init__(self, plots: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.plots = plots
        self.thread: QThread | None = None
        self._worker: ExperimentWorker | None = None
        self._reporter: ExperimentReporter | None = None
        self._trial_buffer: ReportBuffer | None = None
        self.control: Any = None
        self.request: ExperimentRequest | None = None
        self.study: Any = None
        self.outcomes: list[Any] = []
        self.trial_number: int | None = None
        self._trial_progress: RunProgress | None = None
        self._trial_moved = False  # batches arrived since the trial's bars were last set
        self._train_samples = 0
        self._done: Any = None
        self._crash: str | None = None
        self._started_at = 0.0
        self._paused_at: float | None = None
        self._paused_s = 0.0
        self.estimate_s: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_INTERVAL_MS)
        self._timer.timeout.connect(self._on_drain_timer)

    # ------------------------------------------------------------------ public API
    def is_running(self) -> bool:
        return self.thread is not None

    def is_paused(self) -> bool:
        return self.is_running() and self._paused_at is not None

    def start(self, request: ExperimentRequest, estimate_s: float | None = None) -> bool:
        """Start ``request``'s trials in the background; False when an experiment is already running."""
        if self.is_running():
            return False
        from neuralstudio.ml.sweep import SweepControl

        self.request = request
        self.estimate_s = estimate_s
        self.control = SweepControl()
        self._reporter = ExperimentReporter()
        self._trial_buffer = None
        self.study = None
        self.outcomes = []
        self.trial_number = None
        self._trial_progress = None
        self._train_samples = int(len(request.dataset.x_train)) if getattr(request.dataset, "x_train", None) \
            is not None else 0
        self._done, self._crash = None, None
        self._paused_at, self._paused_s = None, 0.0
        worker = ExperimentWorker(request, self._reporter, self.control)
        thread = QThread()
        thread.setObjectName("neuralstudio-experiment")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(self._on_worker_done)
        worker.crashed.connect(self._on_worker_crashed)
        worker.done.connect(thread.quit)
        worker.crashed.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._worker, self.thread = worker, thread
        self.running_changed.emit(True)
        favor_gui_thread()
        gui_garbage_collector().set_busy(self, True)  # no full collection in the middle of the plots
        # Started from the event loop, after the click's own work and repaint (as TrainWorkspace._start_thread).
        QTimer.singleShot(0, self._start_thread)
        return True

    def pause(self) -> None:
        if self.is_running() and self._paused_at is None:
            self.control.pause()
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self.is_running() and self._paused_at is not None:
            self.control.resume()
            self._paused_s += time.monotonic() - self._paused_at
            self._paused_at = None

    def stop(self) -> None:
        """Stop the running trial after its current batch and start no more; finished trials are kept."""
        if self.is_running() and self.control is not None:
            self.control.request_stop()
            if self._paused_at is not None:
                self.resume()

    def wait_finished(self, timeout_s: float = CLOSE_WAIT_S) -> bool:
        """Wait (processing events) until the thread has finished and the experiment is closed."""
        self._start_thread()
        deadline = time.monotonic() + timeout_s
        while self.is_running() and time.monotonic() < deadline:
            if self.thread is not None and self.thread.wait(20):
                QCoreApplication.processEvents()
                self._on_thread_finished()
            QCoreApplication.processEvents()
        return not self.is_running()

    def elapsed_s(self) -> float:
        """Seconds the experiment has run, pauses excluded."""
        if not self._started_at:
            return 0.0
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        return max(0.0, now - self._started_at - self._paused_s)

    # ------------------------------------------------------------------ internals
    def _start_thread(self) -> None:
        thread = self.thread
        if thread is None or thread.isRunning() or thread.isFinished():
            return
        self._started_at = time.monotonic()
        thread.start()
        self._timer.start()

    def _planned(self) -> int | None:
        spec = self.request.spec if self.request is not None else None
        return spec.planned_trials() if spec is not None else None

    def _on_drain_timer(self) -> None:
        reporter = self._reporter
        if reporter is None:
            return
        general = reporter.general.drain()
        for m in general.messages:
            self.message.emit(m)
        for kind, payload in reporter.drain_events():
            if kind == "started":
                self._flush_trial()
                number, values, buffer = payload
                self._begin_trial(number, values, buffer)
            elif kind == "finished":
                self._flush_trial()
                self.outcomes.append(payload)
                self.trial_finished.emit(payload)
            elif kind == "study":
                self.study = payload
                self.study_ready.emit(payload)
            elif kind == "samples":
                self._train_samples = int(payload)
                if self._trial_progress is not None:
                    self._trial_progress.set_train_samples(self._train_samples)
        self._flush_trial()
        if self.plots is not None and self.plots.isVisible():
            self.plots.refresh(spread=True)
        self._emit_progress()

    def _begin_trial(self, number: int, values: dict[str, Any], buffer: ReportBuffer) -> None:
        """A new trial: its own buffer, progress and clean plots over its own number of epochs."""
        self._trial_buffer = buffer
        self.trial_number = number
        base = self.request.spec.design.training if self.request is not None else None
        epochs = int(as_number(values.get("epochs"), getattr(base, "epochs", 1)) or 1)
        batch = int(as_number(values.get("batch_size"), getattr(base, "batch_size", 32)) or 32)
        split = float(as_number(values.get("validation_split"), getattr(base, "validation_split", 0.0)) or 0.0)
        self._trial_progress = RunProgress(epochs, batch, split)
        if self._train_samples:
            self._trial_progress.set_train_samples(self._train_samples)
        if self.plots is not None:
            self.plots.reset(epochs=epochs)
        self.trial_started.emit(number, values)

    def _flush_trial(self) -> None:
        """Draw what the running trial reported since the last tick (points only; painting is the refresh's)."""
        buffer, progress = self._trial_buffer, self._trial_progress
        if buffer is None or progress is None:
            return
        d = buffer.drain()
        for m in d.messages:
            self.message.emit(m)
        if d.batches and self.plots is not None:
            xs = [progress.add_batch(epoch, batch, logs) for epoch, batch, logs in d.batches]
            losses = [as_number(logs.get("loss"), math.nan) for _e, _b, logs in d.batches]
            accs = [as_number(logs.get("accuracy"), math.nan) for _e, _b, logs in d.batches]
            self.plots.add_batches(xs, losses, accs)
        if d.batches or d.epochs:
            self._trial_moved = True
        for epoch, logs in d.epochs:
            if logs.get("partial"):  # cut short by a stop or a pruning: plotted where it stopped
                if self.plots is not None:
                    self.plots.add_epoch(max(progress.position, epoch), logs)
                continue
            progress.end_epoch(epoch)
            if self.plots is not None:
                self.plots.add_epoch(epoch + 1, logs)

    def _emit_progress(self) -> None:
        p = self._trial_progress
        if p is not None and self._trial_moved:
            self._trial_moved = False
            self.trial_progress.emit(p.epoch_percent(), p.epoch_text(), p.run_percent(),
                                     f"trial {self.trial_number} · {p.run_text()}")
        fraction = self._trial_progress.run_percent() / 100 if self._trial_progress is not None else 0.0
        done = len(self.outcomes)
        if self._trial_progress is not None and self.trial_number is not None and self.outcomes and \
                self.outcomes[-1].number == self.trial_number:
            fraction = 0.0  # between trials: the last one is counted as done
        timeout = self.request.spec.timeout_s if self.request is not None else None
        percent, text = progress_text(done, self._planned(), fraction, self.elapsed_s(), timeout, self.estimate_s)
        if self.is_paused():
            text = "paused at " + text
        self.progress.emit(percent, text)

    def _on_worker_done(self, outcomes: Any) -> None:
        self._done = outcomes

    def _on_worker_crashed(self, message: str) -> None:
        self._crash = message

    def _on_thread_finished(self) -> None:
        thread = self.thread
        if thread is None:
            return
        thread.wait()
        self._timer.stop()
        self._on_drain_timer()  # the last points and events
        if self.plots is not None:
            self.plots.refresh()
        worker = self._worker
        self.thread, self._worker = None, None
        if worker is not None:
            worker.deleteLater()
        thread.deleteLater()
        self._paused_at = None
        crash = self._crash or ""
        if not crash and self._done is None:
            crash = "The experiment ended without a result. This is a bug in NeuralStudio: the event log has details."
        collector = gui_garbage_collector()
        collector.set_busy(self, False)
        QTimer.singleShot(0, collector.collect)  # what the trials left behind, now that nothing animates
        self.finished.emit(list(self.outcomes), crash)
        self.running_changed.emit(False)
