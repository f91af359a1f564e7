"""The headless training engine shared by ``neuralstudio train`` and the Train window.

:class:`Trainer` turns a :class:`~neuralstudio.core.design.Design` into a trained
``keras.Model``: it loads and adapts the data, builds and compiles the model on
the chosen device, runs ``fit`` with one callback that reports progress through
a :class:`TrainingReporter`, polls a :class:`TrainControl` (stop/pause) at every
execution, stops on NaN keeping the last good weights, early-stops keeping the
best ones, records the run in a :class:`~neuralstudio.core.runs.RunsStore`, and
evaluates on the test split.  ``run`` never raises for anything the user can fix:
it reports ``on_failed`` and returns a ``failed`` result (Orange's
``concurrent.py`` pattern: the compute function owns its errors, the GUI only
shows them).

Speed: for tiny networks Keras's per-step Python overhead costs more than the
maths.  The first epoch runs with ``steps_per_execution=1`` while the step time is
measured; when steps are short, the model is recompiled with enough steps per
execution to fill about :data:`~neuralstudio.ml.callbacks.EXECUTION_TARGET_S`
seconds, so that stop requests still act within about a quarter of a second.

This module imports Keras only inside functions, so that the GUI can import
:class:`TrainControl` and :class:`RunResult` at start-up for free.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from neuralstudio.core.atomic import atomic_path
from neuralstudio.core.design import Design
from neuralstudio.core.errors import UserError
from neuralstudio.core.graph import INPUT_CLASS, Graph
from neuralstudio.core.runs import RunRecord, RunsStore
from neuralstudio.core.training_settings import TrainingSettings

STATUSES = ("finished", "stopped", "early_stopped", "nan", "failed")


class TrainingError(UserError, ValueError):
    """The design and the data cannot be trained together; the message says how to fix it."""


class TrainingReporter(Protocol):
    """What the trainer tells its owner; called on the training thread.

    ``on_batch`` is called once per execution (every ``steps_per_execution`` batches), with
    ``batch`` the 0-based index of the last batch run in ``epoch`` (0-based).  Its ``logs`` are
    Keras running averages over the epoch so far (``loss``, ``accuracy``) plus ``samples``
    (examples seen since the start), ``seconds``, ``samples_per_second`` and ``progress`` (0 to 1 of all
    the epochs asked for).  ``on_epoch`` gets
    the epoch's ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (with validation),
    ``seconds``, and ``partial`` = 1.0 when the epoch was cut short by a stop.
    """

    def on_batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None: ...
    def on_epoch(self, epoch: int, logs: dict[str, float]) -> None: ...
    def on_log(self, message: str) -> None: ...
    def on_finished(self, result: RunResult) -> None: ...
    def on_failed(self, message: str) -> None: ...


class TrainControl:
    """Stop and pause requests from any thread, polled by the trainer at every execution.

    An execution is sized to about 0.05 s of steps on an idle CPU, so requests act within a fraction
    of a second, except while Keras traces the training function (the first batch of the run, and the
    first batch after ``steps_per_execution`` is switched): a request then acts when tracing ends.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._holding = threading.Event()

    def request_stop(self) -> None:
        """Stop after the current execution; the weights trained so far are kept."""
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    def pause(self) -> None:
        """Hold the training thread at the next execution boundary."""
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def is_paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def is_holding(self) -> bool:
        """True while the training thread is actually held at a pause, not merely asked to pause
        (a pause asked for while Keras compiles takes effect when compiling ends)."""
        return self._holding.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused (until resume or stop); True when no longer paused."""
        self._holding.set()
        try:
            return self._running.wait(timeout)
        finally:
            self._holding.clear()


@dataclass
class RunResult:
    """The outcome of :meth:`Trainer.run`.

    ``status`` is ``finished``, ``stopped`` (by the user), ``early_stopped``, ``nan`` (the loss
    diverged; the last good weights are kept) or ``failed`` (nothing trained; see ``message``).
    ``seconds`` is the wall time of the whole run without pauses; ``samples_per_second`` counts
    training examples per second of ``fit``.
    """

    status: str
    message: str = ""
    epochs_run: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    test_loss: float | None = None
    test_accuracy: float | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    train_accuracy: float | None = None
    seconds: float = 0.0
    fit_seconds: float = 0.0
    samples_per_second: float = 0.0
    train_samples: int = 0
    validation_samples: int = 0
    batch_size: int = 0
    steps_per_execution: int = 1
    device: str = ""
    run_id: str | None = None
    model: Any = None
    model_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("finished", "stopped", "early_stopped")

    def summary(self) -> dict[str, Any]:
        """The JSON-able part (no model), as ``train --json`` prints it."""
        keys = ("status", "message", "epochs_run", "test_accuracy", "test_loss", "val_accuracy", "val_loss",
                "train_accuracy", "train_loss", "train_samples", "validation_samples", "batch_size",
                "steps_per_execution", "seconds", "fit_seconds", "samples_per_second", "device", "model_path",
                "run_id")
        out = {k: _json_safe(getattr(self, k)) for k in keys}
        out["history"] = {k: [_json_safe(v) for v in vs] for k, vs in self.history.items()}
        return out


def mixed_precision_graph(graph: Graph) -> Graph:
    """A copy of ``graph`` whose layers compute in float16, with the output layer(s) kept in float32.

    Keeping the softmax output in float32 is what the Keras mixed-precision guide asks for: it
    avoids float16 overflow in the loss.
    """
    g = graph.copy()
    outputs = set(g.outputs())
    for node in g.nodes.values():
        if node.class_name == INPUT_CLASS:
            continue
        node.config["dtype"] = "float32" if node.id in outputs else "mixed_float16"
    return g


class Trainer:
    """Train one design once.

    Args:
        design: what to train; its ``training`` settings are used unless ``settings`` is given.
        dataset: a ``Dataset``, a data spec such as ``"mnist-sample"`` or a path, or None for the
            design's own ``data.source``.
        settings: hyperparameters overriding the design's.
        device: ``auto``, ``cpu``, ``gpu``, ``gpu:N``, ``all-gpus`` (see :mod:`neuralstudio.ml.devices`).
        mixed_precision: compute in float16 on a GPU (ignored, with a log line, on the CPU).
        runs_store: where to record the run (None: not recorded).
        reporter: progress receiver (None: silent).
        control: stop/pause flags (a fresh one when None).
        out_path: also save the trained model here (``.keras``).
        initial_weights: start from these weights (``model.get_weights()`` of a model with this
            design's architecture, e.g. one opened from a file) instead of a fresh initialisation,
            to keep training it.
        free_memory: collect Python garbage when clearing the previous run's Keras state.  A GUI
            passes False and collects after the run instead: the full collection holds the GIL for
            ~0.1-0.2 s, which would freeze the window at the start of every run.
    """

    def __init__(self, design: Design, *, dataset: Any = None, settings: TrainingSettings | None = None,
                 device: str = "auto", mixed_precision: bool = False, runs_store: RunsStore | None = None,
                 reporter: TrainingReporter | None = None, control: TrainControl | None = None,
                 out_path: str | None = None, tune_steps_per_execution: bool = True,
                 initial_weights: list[Any] | None = None, free_memory: bool = True) -> None:
        self.design = design
        self.dataset = dataset
        self.settings = settings
        self.device = device
        self.mixed_precision = mixed_precision
        self.runs_store = runs_store
        self.reporter = reporter
        self.control = control or TrainControl()
        self.out_path = out_path
        self.tune_steps_per_execution = tune_steps_per_execution
        self.initial_weights = initial_weights
        self.free_memory = free_memory
        self.record: RunRecord | None = None

    # ------------------------------------------------------------------ public
    def run(self) -> RunResult:
        """Train; never raises for user errors (``on_failed`` + a ``failed`` result instead)."""
        from neuralstudio.ml.custom_gradients import released_custom_gradients

        t0 = time.perf_counter()
        try:
            with released_custom_gradients():  # else each run's traced graphs stay in memory
                result = self._run(t0)
        except UserError as exc:
            return self._failed(str(exc), t0)
        except MemoryError:
            return self._failed("Out of memory: use a smaller batch size or a smaller network.", t0)
        except Exception as exc:  # noqa: BLE001 - a worker thread must never die silently
            return self._failed(f"Training failed: {type(exc).__name__}: {_short(exc)}", t0)
        if self.reporter is not None:
            self.reporter.on_finished(result)
        return result

    # ------------------------------------------------------------------ internals
    def _log(self, message: str) -> None:
        if self.reporter is not None:
            self.reporter.on_log(message)

    def _failed(self, message: str, t0: float) -> RunResult:
        result = RunResult(status="failed", message=message, seconds=time.perf_counter() - t0,
                           run_id=self.record.id if self.record else None)
        if self.record is not None and self.runs_store is not None:
            self.record.status, self.record.message = "failed", message
            try:
                self.runs_store.save(self.record)
            except (OSError, UserError):
                pass
        if self.reporter is not None:
            self.reporter.on_failed(message)
        return result

    def _load_data(self) -> Any:
        from neuralstudio.ml import data as data_mod

        ds = self.dataset
        if ds is None:
            ds = str(self.design.data.get("source") or data_mod.DEFAULT_SOURCE)
        if isinstance(ds, str):
            self._log(f"Loading data {ds!r}...")
            ds = data_mod.load_dataset(ds)
        return ds

    def _run(self, t0: float) -> RunResult:
        import keras
        import numpy as np

        from neuralstudio.ml import data as data_mod
        from neuralstudio.ml import devices
        from neuralstudio.ml.builder import build_model
        from neuralstudio.ml.callbacks import EngineCallback
        from neuralstudio.ml.input_pipeline import batches, steps_per_epoch, to_tensors
        from neuralstudio.ml.optimizers import make_optimizer

        settings = self.settings or self.design.training
        settings.validate()
        ds = self._load_data()

        # Free the previous run's graphs and name counters: without it, memory grows run after run.
        keras.backend.clear_session(free_memory=self.free_memory)
        if settings.seed is not None:
            keras.utils.set_random_seed(int(settings.seed))

        placement = devices.resolve(self.device)
        mixed = bool(self.mixed_precision and placement.is_gpu)
        if self.mixed_precision and not mixed:
            self._log("Mixed precision needs a GPU; training on the CPU in float32.")
        graph = mixed_precision_graph(self.design.graph) if mixed else self.design.graph

        with placement.scope():
            model = build_model(graph)
            if self.initial_weights is not None:
                _set_initial_weights(model, self.initial_weights)
                self._log("Starting from the loaded model's weights.")
        if isinstance(model.input_shape, list) or isinstance(model.output_shape, list):
            raise TrainingError("The network has several inputs or outputs; training on an image data set "
                                "needs exactly one of each.")
        out_shape = tuple(model.output_shape)
        if len(out_shape) != 2 or out_shape[-1] is None:
            raise TrainingError(
                f"The network's output has shape {out_shape}, but classification needs one score per class "
                "(batch, classes): end with Flatten or GlobalAveragePooling and a Dense layer.")
        units = int(out_shape[-1])

        x_train = data_mod.adapt_inputs(ds.x_train, tuple(model.input_shape[1:]))
        y_train = np.asarray(ds.y_train).reshape(-1)
        x_test = y_test = None
        if ds.x_test is not None and ds.y_test is not None and len(ds.x_test):
            x_test = data_mod.adapt_inputs(ds.x_test, tuple(model.input_shape[1:]))
            y_test = np.asarray(ds.y_test).reshape(-1)
        if len(y_train) == 0:
            raise TrainingError("The data set has no training examples.")
        top = int(y_train.max())
        if settings.loss == "binary_crossentropy" and units == 1:
            if top > 1:
                raise TrainingError(f"binary_crossentropy with one output unit needs labels 0 and 1, but the data "
                                    f"has {ds.num_classes} classes: use sparse_categorical_crossentropy and "
                                    f"{ds.num_classes} output units.")
        elif top >= units:
            raise TrainingError(
                f"The output layer has {units} unit(s) but the data has {max(ds.num_classes, top + 1)} classes: "
                f"give the last Dense layer {max(ds.num_classes, top + 1)} units.")

        x_val = y_val = None
        if settings.validation_split > 0:
            split_seed = settings.seed if settings.seed is not None else 0
            x_train, y_train, x_val, y_val = data_mod.stratified_split(
                x_train, y_train, settings.validation_split, split_seed)
            if len(y_val) == 0:
                x_val = y_val = None
        if len(y_train) == 0:
            raise TrainingError("The validation split leaves no training examples: lower --validation-split.")

        one_hot = settings.loss in ("categorical_crossentropy", "mean_squared_error") or (
            settings.loss == "binary_crossentropy" and units > 1)

        def targets(y: Any) -> Any:
            if y is None:
                return None
            if one_hot:
                return data_mod.one_hot(y, units)
            if settings.loss == "binary_crossentropy":
                return y.astype("float32").reshape(-1, 1)
            return y

        batch_size = int(settings.batch_size)
        eval_batch = max(batch_size, 256)
        replicas = placement.replicas
        if replicas > 1:
            # Under MirroredStrategy a last batch that does not split evenly across replicas fails inside
            # TensorFlow (AddN shape mismatch): drop the few examples that make it uneven.
            if batch_size % replicas:
                raise TrainingError(f"With {replicas} devices the batch size must be a multiple of {replicas}; "
                                    f"{batch_size} is not.")
            x_train, y_train = _even(x_train, y_train, batch_size, replicas)
            if x_val is not None:
                x_val, y_val = _even(x_val, y_val, batch_size, replicas)
            if x_test is not None:
                eval_batch -= eval_batch % replicas
                x_test, y_test = _even(x_test, y_test, eval_batch, replicas)
        y_train_t, y_val_t, y_test_t = targets(y_train), targets(y_val), targets(y_test)
        hyper = {**settings.to_dict(), "device": self.device, "mixed_precision": mixed}
        data_desc = {**ds.description(), "train_samples": int(len(y_train)),
                     "validation_samples": int(len(y_val)) if y_val is not None else 0}
        if self.runs_store is not None:
            self.record = self.runs_store.create(design=self.design.to_dict(), hyperparameters=hyper,
                                                 data=data_desc, device=placement.description)
            self._log(f"Run {self.record.id} recorded in {self.runs_store.root}.")

        def metric() -> Any:
            if units == 1:
                return keras.metrics.BinaryAccuracy(name="accuracy")
            if one_hot:
                return keras.metrics.CategoricalAccuracy(name="accuracy")
            return keras.metrics.SparseCategoricalAccuracy(name="accuracy")

        with placement.scope():
            optimizer = make_optimizer(settings)
            if mixed:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)

        n_train = int(len(y_train))
        cb = EngineCallback(reporter=self.reporter, control=self.control, record=self.record,
                            save_record=self._save_record, train_samples=n_train, batch_size=batch_size,
                            epochs=settings.epochs, patience=settings.early_stopping,
                            tune=self.tune_steps_per_execution and replicas == 1)
        self._log(f"Training {model.count_params():,} parameters on {placement.description}: {n_train:,} examples"
                  + (f", {len(y_val):,} for validation" if y_val is not None else "")
                  + f", batch {batch_size}, {settings.epochs} epoch(s), {settings.optimizer} at "
                  f"learning rate {settings.learning_rate:g}.")

        spe = 1
        first_epoch = 0
        fit_t0 = time.perf_counter()  # the copy into tensors counts, as it does inside a plain fit
        x_train, y_train_t, x_val, y_val_t = to_tensors(x_train, y_train_t, x_val, y_val_t)
        val_batches = batches(x_val, y_val_t, batch_size, shuffle=False) if x_val is not None else None
        while not self.control.stop_requested:
            with placement.scope():
                model.compile(optimizer=optimizer, loss=settings.loss, metrics=[metric()],
                              steps_per_execution=spe, jit_compile="auto")
            cb.begin_fit(spe, first_epoch)
            with placement.scope():
                # one iterator for all the epochs of this call, each epoch shuffled anew (so fit's own shuffle is off)
                model.fit(batches(x_train, y_train_t, batch_size, shuffle=True, repeat=True, skip_epochs=first_epoch),
                          steps_per_epoch=steps_per_epoch(n_train, batch_size), epochs=settings.epochs,
                          initial_epoch=first_epoch, validation_data=val_batches, shuffle=False,
                          verbose=0, callbacks=[cb])
            st = cb.state
            if st.retune_to and not (st.nan_at or st.early_stopped or st.stopped_by_user):
                spe, first_epoch = st.retune_to, st.epochs_done
                self._log(f"Steps are short: running {spe} steps per execution from epoch {first_epoch + 1}.")
                continue
            break
        fit_seconds = time.perf_counter() - fit_t0 - cb.state.paused_seconds
        st = cb.state
        if self.control.stop_requested:
            st.stopped_by_user = True

        status, message = "finished", f"Trained {st.epochs_done} epoch(s)."
        if st.nan_at is not None:
            e, b = st.nan_at
            what = "NaN" if math.isnan(st.nan_value) else "infinite"
            lr = float(settings.learning_rate)
            message = (f"loss became {what} at epoch {e + 1}, batch {b + 1} with learning rate {lr:g}: "
                       f"try {_nicer(lr / 10)}.")
            status = "nan"
            if st.last_good is not None:
                weights, ge, gb = st.last_good
                model.set_weights(weights)
                where = f"the start of epoch {ge + 1}" if gb < 0 else f"epoch {ge + 1}, batch {gb + 1}"
                message += f" The last good weights (from {where}) were kept."
        elif st.early_stopped:
            status = "early_stopped"
            message = (f"Early stopping after epoch {st.epochs_done}: no improvement for {settings.early_stopping} "
                       f"epoch(s); the best weights (epoch {st.best_epoch + 1}) were restored.")
        elif st.stopped_by_user:
            status = "stopped"
            message = f"Stopped during epoch {min(st.epochs_done + 1, settings.epochs)}; the weights so far are kept."
        if status in ("early_stopped", "finished") and st.best_weights is not None:
            if status == "finished" and st.best_epoch + 1 != st.epochs_done:
                message += f" The best weights (epoch {st.best_epoch + 1}) were restored."
            model.set_weights(st.best_weights)

        result = RunResult(status=status, message=message, epochs_run=st.epochs_done,
                           history={k: list(v) for k, v in st.history.items()}, batch_size=batch_size,
                           train_samples=n_train, validation_samples=int(len(y_val)) if y_val is not None else 0,
                           steps_per_execution=spe, device=placement.description, model=model,
                           run_id=self.record.id if self.record else None)
        result.fit_seconds = fit_seconds
        result.samples_per_second = st.samples_seen / fit_seconds if fit_seconds > 0 else 0.0
        last = {k: v[-1] for k, v in st.history.items() if v}
        result.train_loss, result.train_accuracy = last.get("loss"), last.get("accuracy")
        if st.best_weights is not None and status != "nan" and st.best_epoch >= 0:
            result.val_loss = _at(st.history.get("val_loss"), st.best_epoch)
            result.val_accuracy = _at(st.history.get("val_accuracy"), st.best_epoch)
        else:
            result.val_loss, result.val_accuracy = last.get("val_loss"), last.get("val_accuracy")
        self._log(message)

        if x_test is not None:
            test_batches = batches(*to_tensors(x_test, y_test_t), eval_batch, shuffle=False)
            with placement.scope():
                scores = model.evaluate(test_batches, verbose=0, return_dict=True)
            result.test_loss = _finite_or_none(scores.get("loss"))
            result.test_accuracy = _finite_or_none(scores.get("accuracy"))
        self._save_model(model, result)
        result.seconds = time.perf_counter() - t0 - st.paused_seconds
        if self.record is not None:
            self.record.status, self.record.message = status, message
            self.record.timing = {"seconds": result.seconds, "fit_seconds": fit_seconds,
                                  "samples_per_second": result.samples_per_second, "epochs_run": st.epochs_done,
                                  "train_samples": n_train, "steps_per_execution": spe}
            self.record.final = {"test_loss": result.test_loss, "test_accuracy": result.test_accuracy,
                                 "val_loss": result.val_loss, "val_accuracy": result.val_accuracy,
                                 "train_loss": result.train_loss, "train_accuracy": result.train_accuracy}
            self._save_record()
        return result

    def _save_record(self) -> None:
        if self.record is not None and self.runs_store is not None:
            self.runs_store.save(self.record)

    def _save_model(self, model: Any, result: RunResult) -> None:
        first: str | None = None
        if self.record is not None and self.runs_store is not None:
            target = self.runs_store.model_file(self.record)
            with atomic_path(target) as tmp:
                model.save(tmp)
            first = str(target)
        if self.out_path:
            try:
                with atomic_path(self.out_path) as tmp:
                    if first:
                        shutil.copyfile(first, tmp)
                    else:
                        model.save(tmp)
            except OSError as exc:
                raise TrainingError(f"Cannot write the model to {self.out_path}: {exc.strerror}.") from None
            first = str(self.out_path)
        result.model_path = first


def preload() -> None:
    """Import what a run imports when it starts (Keras must be loaded first).

    An import holds the GIL in stretches, and PySide's import hook reads each new module's
    source: done by the first run's thread, this made the window wait 20-50 ms as Train was
    pressed. The app calls this in the background once Keras has loaded.
    """
    from neuralstudio.ml import builder, callbacks, custom_gradients, data, devices, input_pipeline, optimizers  # noqa: F401


def _set_initial_weights(model: Any, weights: list[Any]) -> None:
    """Load ``weights`` into the freshly built ``model``, refusing any that do not fit its variables."""
    wanted = [tuple(int(d) for d in v.shape) for v in model.weights]
    given = [tuple(getattr(w, "shape", ())) for w in weights]
    if wanted != given:
        detail = (f"{len(given)} arrays for {len(wanted)} variables" if len(given) != len(wanted) else
                  next(f"variable {i + 1} ({model.weights[i].path}) needs shape {a}, got {b}"
                       for i, (a, b) in enumerate(zip(wanted, given, strict=True)) if a != b))
        raise TrainingError(f"The loaded weights do not fit this design ({detail}): train from scratch, or open "
                            "the design that the model was saved from.")
    model.set_weights(weights)


def _json_safe(v: Any) -> Any:
    """NaN and infinity are not JSON: report them as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _even(x: Any, y: Any, batch: int, replicas: int) -> tuple[Any, Any]:
    """Drop the last few examples so that the final partial batch splits evenly across ``replicas``."""
    extra = (len(y) % batch) % replicas
    return (x[: len(y) - extra], y[: len(y) - extra]) if extra else (x, y)


def _nicer(x: float) -> str:
    """A learning rate suggestion rounded to one significant digit (0.3, not 0.30000000000000004)."""
    return f"{float(f'{x:.1g}'):g}"


def _at(values: list[float] | None, i: int) -> float | None:
    if not values or i >= len(values):
        return None
    return values[i]


def _finite_or_none(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
