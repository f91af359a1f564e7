"""The one Keras callback through which the trainer watches, steers and records a ``fit``.

A single callback (instead of Keras's TerminateOnNaN + EarlyStopping + a
progress callback) because the pieces share state: NaN handling needs the last
good weights, early stopping the best ones, the stop/pause flag is polled at
the same point the batch is reported, and the step-time measurement that picks
``steps_per_execution`` needs the same batch timestamps.  Its state also
survives the re-``fit`` that follows a change of ``steps_per_execution``.

Keras traps handled here (docs/ARCHITECTURE.md, "Traps"): ``fit`` resets ``model.stop_training`` at
its start, so stop requests are applied from inside the batch hook; batch logs
are running averages over the epoch, so a non-finite value means some batch of
this epoch went non-finite.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import keras

#: How long one execution of ``steps_per_execution`` steps should take at most: stop and pause
#: requests act at the end of an execution, and the issue allows about a quarter of a second.
EXECUTION_TARGET_S = 0.05
#: Below this measured time per step, Python overhead matters enough to batch steps together.
RETUNE_BELOW_S = 0.008
MAX_STEPS_PER_EXECUTION = 256
#: At most this often (seconds) the weights are copied as the "last good" ones for NaN recovery.
SNAPSHOT_EVERY_S = 1.0


@dataclass
class EngineState:
    """What the callback learned; read by the trainer after ``fit`` returns."""

    epochs_done: int = 0
    samples_seen: int = 0
    nan_at: tuple[int, int] | None = None
    nan_value: float = math.nan
    last_good: tuple[list[Any], int, int] | None = None  # weights, epoch, batch
    best_value: float = math.inf
    best_weights: list[Any] | None = None
    best_epoch: int = -1
    early_stopped: bool = False
    stopped_by_user: bool = False
    retune_to: int | None = None
    paused_seconds: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)
    last_batch_logs: dict[str, float] = field(default_factory=dict)


class EngineCallback(keras.callbacks.Callback):
    """Reports batches and epochs, polls stop/pause, catches NaN, early-stops, measures step time.

    Args:
        reporter: the :class:`~neuralstudio.ml.trainer.TrainingReporter` (or None).
        control: the :class:`~neuralstudio.ml.trainer.TrainControl`.
        record: the run record to append batches and epochs to (or None), saved through ``save_record``.
        train_samples: training examples per epoch.
        batch_size: examples per step (global batch).
        epochs: the total number of epochs asked for.
        patience: early-stopping patience in epochs, or None.
        steps_per_execution: the value the model is compiled with (updated by the trainer).
        tune: measure the step time during the first epoch and ask for a better ``steps_per_execution``.
    """

    def __init__(self, *, reporter: Any, control: Any, record: Any, save_record: Any, train_samples: int,
                 batch_size: int, epochs: int, patience: int | None, steps_per_execution: int = 1,
                 tune: bool = True) -> None:
        super().__init__()
        self.reporter = reporter
        self.control = control
        self.record = record
        self.save_record = save_record
        self.train_samples = train_samples
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.steps_per_execution = steps_per_execution
        self.tune = tune
        self.state = EngineState()
        self._clock0 = time.perf_counter()
        self._epoch = 0
        self._epoch_t0 = 0.0
        self._last_step = -1
        self._last_snapshot = -math.inf
        self._tune_epoch: int | None = None
        self._stamps: list[tuple[float, int]] = []

    # ------------------------------------------------------------------ timing
    def elapsed(self) -> float:
        """Seconds of training so far, pauses excluded."""
        return time.perf_counter() - self._clock0 - self.state.paused_seconds

    def begin_fit(self, steps_per_execution: int, first_epoch: int) -> None:
        """Called by the trainer before each ``fit`` call."""
        self.steps_per_execution = steps_per_execution
        self.state.retune_to = None
        self._tune_epoch = first_epoch if (self.tune and steps_per_execution == 1) else None

    # ------------------------------------------------------------------ hooks
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_t0 = time.perf_counter()
        self._last_step = -1
        self._stamps = []
        self._snapshot(epoch, -1)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        st = self.state
        now = time.perf_counter()
        logs = logs or {}
        # with steps_per_execution > 1 Keras reports the last step of a full execution, past the epoch's end
        batch = min(batch, max(0, math.ceil(self.train_samples / self.batch_size) - 1))
        self._last_step = batch
        in_epoch = min((batch + 1) * self.batch_size, self.train_samples)
        st.samples_seen = st.epochs_done * self.train_samples + in_epoch
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            st.nan_at = (self._epoch, batch)
            st.nan_value = loss
            self.model.stop_training = True
            return
        if self._tune_epoch == self._epoch:
            self._stamps.append((now, batch))
        if now - self._last_snapshot >= SNAPSHOT_EVERY_S:
            self._snapshot(self._epoch, batch)
        secs = self.elapsed()
        point = {"loss": loss, "accuracy": float(logs.get("accuracy", math.nan)),
                 "samples": float(st.samples_seen), "seconds": secs,
                 "samples_per_second": st.samples_seen / secs if secs > 0 else 0.0,
                 "progress": min(1.0, st.samples_seen / max(1, self.epochs * self.train_samples))}
        st.last_batch_logs = point
        if self.record is not None:
            self.record.add_batch({"epoch": self._epoch, "batch": batch, **point})
        if self.reporter is not None:
            self.reporter.on_batch(self._epoch, batch, point)
        self._poll()

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.control.stop_requested and hasattr(self.model, "stop_evaluating"):
            self.model.stop_evaluating = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        st = self.state
        if st.nan_at is not None:
            return
        complete = self._last_step >= 0 and min((self._last_step + 1) * self.batch_size,
                                                self.train_samples) >= self.train_samples
        metrics = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        metrics["seconds"] = time.perf_counter() - self._epoch_t0
        if complete:
            st.epochs_done = epoch + 1
        else:
            metrics["partial"] = 1.0
        for k, v in metrics.items():
            if k != "partial":
                st.history.setdefault(k, []).append(v)
        if self.record is not None:
            self.record.add_epoch({"epoch": epoch, **metrics})
            self.save_record()
        if self.reporter is not None:
            self.reporter.on_epoch(epoch, dict(metrics))
        if not complete:
            return
        self._early_stopping(epoch, metrics)
        if (self._tune_epoch == epoch and epoch + 1 < self.epochs and not self.model.stop_training
                and not self.control.stop_requested):
            spe = self._measured_steps_per_execution()
            if spe > 1:
                st.retune_to = spe
                self.model.stop_training = True

    # ------------------------------------------------------------------ pieces
    def _poll(self) -> None:
        c = self.control
        if c.is_paused and not c.stop_requested:
            t0 = time.perf_counter()
            if self.reporter is not None:
                self.reporter.on_log("Paused.")
            c.wait_while_paused()
            self.state.paused_seconds += time.perf_counter() - t0
            if self.reporter is not None and not c.stop_requested:
                self.reporter.on_log("Resumed.")
        if c.stop_requested:
            self.state.stopped_by_user = True
            self.model.stop_training = True

    def _snapshot(self, epoch: int, batch: int) -> None:
        from neuralstudio.ml.backends import sync_variables

        sync_variables(self.model)  # mid-epoch on JAX the variables lag fit's own state
        self.state.last_good = (self.model.get_weights(), epoch, batch)
        self._last_snapshot = time.perf_counter()

    def _early_stopping(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.patience is None:
            return
        st = self.state
        key = "val_loss" if "val_loss" in metrics else "loss"
        value = metrics.get(key, math.inf)
        if value < st.best_value - 1e-7:
            st.best_value, st.best_epoch = value, epoch
            st.best_weights = self.model.get_weights()
        elif epoch - st.best_epoch >= self.patience:
            st.early_stopped = True
            self.model.stop_training = True

    def _measured_steps_per_execution(self) -> int:
        """From the first epoch's batch timestamps (the first two are tracing), how many steps per execution."""
        stamps = self._stamps[2:]
        per_step = [(t1 - t0) / (b1 - b0) for (t0, b0), (t1, b1) in zip(stamps, stamps[1:]) if b1 > b0]
        if len(per_step) < 4:
            return 1
        step = statistics.median(per_step)
        if step >= RETUNE_BELOW_S:
            return 1
        steps_per_epoch = math.ceil(self.train_samples / self.batch_size)
        spe = int(EXECUTION_TARGET_S / max(step, 1e-5))
        spe = max(1, min(spe, MAX_STEPS_PER_EXECUTION, steps_per_epoch))
        return spe if spe >= 4 else 1


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True
