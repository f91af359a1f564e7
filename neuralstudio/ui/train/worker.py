"""The training worker: a QObject moved to a QThread that calls the Qt-free trainer.

The trainer reports through :class:`BufferReporter`, whose callbacks only
append to a lock-protected :class:`ReportBuffer` — no Qt signal per batch, no
widget touched from the worker thread.  The workspace drains the buffer from a
GUI timer.  The only signals the worker emits are the two that end a run.

The worker's QThread only waits: the trainer does its Keras work on a plain Python
thread of its own (docs/ARCHITECTURE.md, "Threads"), and for the length of the run
every thread but the GUI's is batch work for the scheduler (``ui/responsiveness.py``),
undone before the run's end is signalled.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from neuralstudio.core import run_outcome
from neuralstudio.core.errors import UserError
from neuralstudio.ui.responsiveness import training_priority


@dataclass
class Drained:
    """What :meth:`ReportBuffer.drain` hands to the GUI since the previous drain."""

    batches: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    epochs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    result: Any = None
    failure: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: per-layer snapshots ``(epoch, stats)`` from ``on_layer_stats``, oldest first (a few per epoch at most)
    layer_stats: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.batches or self.epochs or self.messages or self.result is not None or self.failure
                    or self.meta or self.layer_stats)


class ReportBuffer:
    """Reports from the trainer thread, waiting for the GUI timer; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = Drained()

    def add_batch(self, epoch: int, batch: int, logs: dict[str, Any]) -> None:
        with self._lock:
            self._pending.batches.append((epoch, batch, logs))

    def add_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        with self._lock:
            self._pending.epochs.append((epoch, logs))

    def add_message(self, message: str) -> None:
        with self._lock:
            self._pending.messages.append(message)

    def add_layer_stats(self, epoch: int, stats: list[dict[str, Any]]) -> None:
        """One snapshot of the per-layer signals (gradient norms, histograms, dead units)."""
        with self._lock:
            self._pending.layer_stats.append((epoch, stats))

    def set_meta(self, **meta: Any) -> None:
        """Facts about the run known before the first batch (e.g. ``train_samples``)."""
        with self._lock:
            self._pending.meta.update(meta)

    def set_result(self, result: Any) -> None:
        with self._lock:
            self._pending.result = result

    def set_failure(self, message: str) -> None:
        with self._lock:
            self._pending.failure = message

    def drain(self) -> Drained:
        """Take everything reported so far (a swap under the lock: O(1) while the trainer waits)."""
        with self._lock:
            out, self._pending = self._pending, Drained()
        return out


class BufferReporter:
    """A ``TrainingReporter`` that only copies the reports into a :class:`ReportBuffer`.

    Args:
        buffer: where reports wait for the GUI.
    """

    def __init__(self, buffer: ReportBuffer) -> None:
        self.buffer = buffer

    def on_batch(self, epoch: int, batch: int, logs: dict[str, Any]) -> None:
        self.buffer.add_batch(epoch, batch, dict(logs))

    def on_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        self.buffer.add_epoch(epoch, dict(logs))

    def on_log(self, message: str) -> None:
        self.buffer.add_message(str(message))

    def on_layer_stats(self, epoch: int, stats: list[dict[str, Any]]) -> None:
        """Copied (the list and each layer's dict), so the trainer may reuse its own objects afterwards."""
        self.buffer.add_layer_stats(int(epoch), [dict(layer) for layer in stats])

    def on_finished(self, result: Any) -> None:
        self.buffer.set_result(result)

    def on_failed(self, message: str) -> None:
        self.buffer.set_failure(str(message))


@dataclass
class RunRequest:
    """Everything one run needs, fixed when Train is pressed (a snapshot: later edits do not leak in)."""

    design: Any
    dataset: Any
    settings: Any
    device: str = "auto"
    mixed_precision: bool = False
    runs_store: Any = None
    out_path: str | None = None
    initial_weights: Any = None  # start from these weights (continue training a loaded model)
    layer_stats: bool = False  # report per-layer signals (gradient norms, histograms) for the Inside tab


class TrainWorker(QObject):
    """Runs one training run when its thread starts; lives in that thread.

    Args:
        request: the snapshot to train.
        buffer: where the reporter writes.
        control: the trainer's thread-safe stop/pause flags.
    """

    #: the RunResult (also set in the buffer); emitted once, at the end of a run
    done = Signal(object)
    #: a readable message when the trainer itself raised (it should not: a bug or a broken install)
    crashed = Signal(str)

    def __init__(self, request: RunRequest, buffer: ReportBuffer, control: Any) -> None:
        super().__init__()
        self.request = request
        self.buffer = buffer
        self.control = control
        #: how the run went (:func:`diagnose_run`), worked out on this thread before :attr:`done`; read it
        #: once the thread has finished
        self.diagnosis: run_outcome.Diagnosis | None = None

    @Slot()
    def run(self) -> None:
        """Train; never raises (an exception becomes :attr:`crashed` with a readable message)."""
        try:
            from neuralstudio.ml.trainer import Trainer

            # The GUI thread comes first (see responsiveness); threads this one starts inherit the policy.
            with training_priority([threading.get_native_id()]):
                result = self._train(Trainer)
        except UserError as exc:
            self.crashed.emit(str(exc))
            return
        except BaseException as exc:  # noqa: BLE001 - the GUI must get a message, not a dead thread
            tb = traceback.format_exception_only(type(exc), exc)
            self.crashed.emit(
                "Training stopped because of an unexpected error: " + "".join(tb).strip()
                + ". This is a bug in NeuralStudio or a broken installation; the event log has details."
            )
            self.buffer.add_message(traceback.format_exc())
            return
        self.done.emit(result)

    def _train(self, trainer_class: Any) -> Any:
        """Load the data set (when named), say how many examples it has, and run the trainer."""
        r = self.request
        dataset = r.dataset
        if isinstance(dataset, str):
            from neuralstudio.ml.data import load_dataset
            from neuralstudio.ml.keras_threads import run_on_python_thread

            self.buffer.add_message(f"Loading the data set {dataset}…")
            spec = dataset
            dataset = run_on_python_thread(lambda: load_dataset(spec), "neuralstudio-load-data")  # may use Keras
        if getattr(dataset, "x_train", None) is not None:
            self.buffer.set_meta(train_samples=len(dataset.x_train))
        trainer = trainer_class(r.design, dataset=dataset, settings=r.settings, device=r.device,
                                mixed_precision=r.mixed_precision, runs_store=r.runs_store,
                                reporter=BufferReporter(self.buffer), control=self.control, out_path=r.out_path,
                                initial_weights=r.initial_weights, layer_stats=r.layer_stats,
                                free_memory=False)  # the workspace collects after the run, not during it
        result = trainer.run()
        self.diagnosis = diagnose_run(r, result)
        return result


def diagnose_run(request: RunRequest, result: Any) -> run_outcome.Diagnosis:
    """How the run went (core/run_outcome.py), from its result and its record in the request's runs store.

    The record adds what the result lacks: the per-batch losses (a blow-up inside the first epoch shows only
    there) and the data's number of classes (for the chance level). It is read through the store's reusing
    scan, which the runs table's rescan then finds parsed. The training thread calls this before it ends:
    on the GUI thread, parsing the record (it holds every batch's loss) and the rescan took 35-45 ms of the
    run's end (docs/ARCHITECTURE.md, "A run's edges").
    """
    record = None
    run_id = getattr(result, "run_id", None)
    store = request.runs_store
    if run_id and store is not None:
        with contextlib.suppress(UserError, OSError):
            record = next((rec for rec in store.scan(reuse=True).records if rec.id == str(run_id)), None)
    activation = run_outcome.output_layer(request.design.to_dict())[0]
    return run_outcome.diagnose_result(result, record, learning_rate=request.settings.learning_rate,
                                       loss=request.settings.loss, output_activation=activation)
