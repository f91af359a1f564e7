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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from neuralstudio.core.atomic import atomic_path
from neuralstudio.core.design import Design
from neuralstudio.core.errors import UserError
from neuralstudio.core.graph import INPUT_CLASS, Graph
from neuralstudio.core.runs import RunRecord, RunsStore
from neuralstudio.core.training_settings import TrainingSettings, one_hot_targets
from neuralstudio.ml import backends
from neuralstudio.ml.losses import compile_arguments, loss_function
from neuralstudio.ml.traced_graphs import release_traced

STATUSES = ("finished", "stopped", "early_stopped", "nan", "failed")
#: the name of each run's own thread (docs/ARCHITECTURE.md, "Threads")
TRAINING_THREAD = "neuralstudio-train"
#: a run keeps its test outputs (``RunResult.test_outputs``) only for at most this many outputs per example (a
#: classifier of up to 1,000 classes: 10,000 test images are then at most 40 MB of float32) ...
KEEP_OUTPUTS_MAX_UNITS = 1000
#: ... and at most this many values in all (100 MB of float32): a larger test split is scored by ``model.evaluate``
#: and the Mistakes tab predicts it again, a slice at a time, as for any model (``ml/confusion.ConfusionJob``)
KEEP_OUTPUTS_MAX_VALUES = 25_000_000


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

    A reporter may also have ``on_layer_stats(epoch, stats)``, called only when it has one and the run was
    asked for ``layer_stats``: after each snapshot of the per-layer statistics (at the end of each epoch,
    and during long epochs), with one dict per trainable layer (keys in :mod:`neuralstudio.ml.layer_stats`).
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

    def wait_until_holding(self, timeout: float | None = None) -> bool:
        """Block until the training thread is held at a pause (:attr:`is_holding`); False after ``timeout``.

        For whoever must know that no training runs right now (a test, a benchmark), without polling.
        """
        return self._holding.wait(timeout)

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

    ``test_outputs`` are the model's outputs on the test split, ``(n, K)`` float32 in the split's order, from the
    very pass that gave ``test_loss`` and ``test_accuracy`` (``Trainer._evaluate``), with ``test_labels`` (the
    class numbers, ``(n,)`` int64) and ``test_images`` (the examples as the data set holds them: the data set's
    own array, not a copy) beside them: the Train window's Mistakes tab is built from them at the run's end
    instead of predicting the split a second time. They are None when the run was not scored on a test split,
    when the outputs are too large to keep (:data:`KEEP_OUTPUTS_MAX_UNITS`, :data:`KEEP_OUTPUTS_MAX_VALUES`) and
    on several devices; they are never serialised (:meth:`summary`, the run record), so runs stay small.
    ``test_seconds`` is the wall time of that pass.
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
    class_names: list[str] | None = None  # of the data trained on, stored with the model (ml/model_metadata.py)
    #: with ``Trainer(layer_stats=True)``: the end-of-epoch snapshot of each epoch (ml/layer_stats.py)
    layer_stats: list[list[dict[str, Any]]] = field(default_factory=list)
    test_outputs: Any = field(default=None, repr=False, compare=False)
    test_labels: Any = field(default=None, repr=False, compare=False)
    test_images: Any = field(default=None, repr=False, compare=False)
    test_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("finished", "stopped", "early_stopped")

    def summary(self) -> dict[str, Any]:
        """The JSON-able part (no model), as ``train --json`` prints it."""
        keys = ("status", "message", "epochs_run", "test_accuracy", "test_loss", "val_accuracy", "val_loss",
                "train_accuracy", "train_loss", "train_samples", "validation_samples", "batch_size",
                "steps_per_execution", "seconds", "fit_seconds", "samples_per_second", "device", "model_path",
                "run_id", "class_names")
        out = {k: _json_safe(getattr(self, k)) for k in keys}
        out["history"] = {k: [_json_safe(v) for v in vs] for k, vs in self.history.items()}
        if self.layer_stats:
            out["layer_stats"] = self.layer_stats
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


@dataclass
class _Data:
    """A run's examples as the model and the loss take them: split, evened across replicas, targets encoded."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    one_hot: bool
    batch_size: int
    eval_batch: int
    description: dict[str, Any] = field(default_factory=dict)
    #: the test split's class numbers and its examples as the data set holds them (for ``RunResult.test_images``)
    test_labels: Any = None
    test_images: Any = None

    @property
    def n_train(self) -> int:
        return int(len(self.y_train))

    @property
    def n_val(self) -> int:
        return int(len(self.y_val)) if self.y_val is not None else 0


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
        out_path: also save the trained model here (``.keras``, or ``.h5`` for Keras's legacy HDF5 format).
        initial_weights: start from these weights (``model.get_weights()`` of a model with this
            design's architecture, e.g. one opened from a file) instead of a fresh initialisation,
            to keep training it.
        free_memory: collect Python garbage (what earlier runs left) before the run starts.  A GUI
            passes False and collects on its own thread after the run instead: the full collection
            holds the GIL for ~0.1-0.2 s, which would freeze the window at the start of every run.
        test_stopped: score a run that was stopped on the test split too (an experiment passes False: a
            pruned trial's test score is never looked at, and on 10,000 images it cost as much as an epoch).
        layer_stats: measure per-layer gradient norms, update sizes, weight and activation histograms and
            dead or saturated units on a fixed probe batch at the end of each epoch (``ml/layer_stats.py``),
            reported through the reporter's optional ``on_layer_stats`` and kept in ``RunResult.layer_stats``.
    """

    def __init__(self, design: Design, *, dataset: Any = None, settings: TrainingSettings | None = None,
                 device: str = "auto", mixed_precision: bool = False, runs_store: RunsStore | None = None,
                 reporter: TrainingReporter | None = None, control: TrainControl | None = None,
                 out_path: str | None = None, tune_steps_per_execution: bool = True,
                 initial_weights: list[Any] | None = None, free_memory: bool = True,
                 layer_stats: bool = False, test_stopped: bool = True) -> None:
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
        self.layer_stats = layer_stats
        self.test_stopped = test_stopped
        self.record: RunRecord | None = None
        #: the traced functions and tf.data pipelines this run drops, taken apart at its end (ml/traced_graphs.py)
        self._leftovers: list[Any] = []

    # ------------------------------------------------------------------ public
    def run(self) -> RunResult:
        """Train; never raises for user errors (``on_failed`` + a ``failed`` result instead).

        The run does its Keras work on a fresh plain Python thread of its own, which this call waits
        for: the run starts with Keras state of its own, freed when it ends, so nothing has to reset
        Keras's state for every thread (docs/ARCHITECTURE.md, "Threads"). The reporter is called on
        that thread, and scopes the caller has entered (``tf.device``, a distribution strategy, a Keras
        dtype policy) do not reach it: the device is chosen with ``device``.
        """
        from neuralstudio.ml.keras_threads import collect_garbage, run_on_python_thread

        if self.free_memory:
            collect_garbage()  # what earlier runs left, before this one allocates
        return run_on_python_thread(self._run_reporting_errors, TRAINING_THREAD)

    # ------------------------------------------------------------------ the run, step by step
    def _run_reporting_errors(self) -> RunResult:
        """:meth:`_run` with every exception turned into a ``failed`` result: a worker thread must never die
        silently, and the GUI only shows what went wrong (Orange's ``concurrent.py`` pattern)."""
        from neuralstudio.ml.backends import release_memory
        from neuralstudio.ml.custom_gradients import released_custom_gradients

        t0 = time.perf_counter()
        try:
            with released_custom_gradients():  # else each run's traced graphs stay in memory
                result = self._run(t0)
            release_memory()  # what the backend caches for this run (PyTorch's CUDA cache)
        except UserError as exc:
            return self._failed(str(exc), t0)
        except MemoryError:
            return self._failed("Out of memory: use a smaller batch size or a smaller network.", t0)
        except Exception as exc:  # noqa: BLE001 - a worker thread must never die silently
            return self._failed(f"Training failed: {type(exc).__name__}: {_short(exc)}", t0)
        if self.reporter is not None:
            self.reporter.on_finished(result)
        return result

    def _run(self, t0: float) -> RunResult:
        """The steps of one run, in order (each step's docstring says why it is done that way)."""
        from neuralstudio.ml import devices

        settings = self.settings or self.design.training
        settings.validate()
        ds = self._load_data()
        if settings.seed is not None:
            backends.set_random_seed(int(settings.seed))  # this thread's Keras seed, NumPy's and the backend's
        placement = devices.resolve(self.device)
        mixed = self._uses_mixed_precision(placement)
        model = self._build_model(placement, mixed)
        units = _output_units(model)
        data = self._prepare_data(ds, model, settings, units, placement.replicas)
        self._start_record(settings, data, placement, mixed)
        cb = self._engine_callback(settings, data, placement.replicas)
        stats = self._layer_stats_recorder(settings, data, units)
        self._log(f"Training {model.count_params():,} parameters on {placement.description}: {data.n_train:,} "
                  "examples" + (f", {data.n_val:,} for validation" if data.n_val else "")
                  + f", batch {data.batch_size}, {settings.epochs} epoch(s), {settings.optimizer} at "
                  f"learning rate {settings.learning_rate:g}.")
        compile_model = self._compiler(model, settings, placement, units, data.one_hot, mixed)
        spe, fit_seconds = self._fit(model, data, settings, placement, cb, compile_model,
                                     [stats.callback] if stats is not None else [])
        if self.control.stop_requested:
            cb.state.stopped_by_user = True
        status, message = self._outcome(model, settings, cb.state)
        self._log(message)
        result = self._result(model, status, message, cb.state, data, spe, fit_seconds, placement.description)
        if stats is not None:
            result.layer_stats = stats.per_epoch
        self._evaluate(model, data, placement, result)
        self._keep_class_names(model, ds, result)
        self._save_model(model, result)
        release_traced([*_drop_compiled_steps(model), *self._leftovers])  # freed here, not by the GUI's collection
        self._leftovers.clear()
        result.seconds = time.perf_counter() - t0 - cb.state.paused_seconds
        self._finish_record(result, cb.state)
        return result

    def _log(self, message: str) -> None:
        if self.reporter is not None:
            self.reporter.on_log(message)

    def _failed(self, message: str, t0: float) -> RunResult:
        """A ``failed`` result, recorded (when a record was started) and reported."""
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
        """The data set: the one given, or loaded from its spec (the design's own source by default)."""
        from neuralstudio.ml import data as data_mod

        ds = self.dataset
        if ds is None:
            ds = str(self.design.data.get("source") or data_mod.DEFAULT_SOURCE)
        if isinstance(ds, str):
            self._log(f"Loading data {ds!r}...")
            ds = data_mod.load_dataset(ds)
        return ds

    def _uses_mixed_precision(self, placement: Any) -> bool:
        """Mixed precision only where it helps: float16 on the CPU is slower and less accurate."""
        mixed = bool(self.mixed_precision and placement.is_gpu)
        if self.mixed_precision and not mixed:
            self._log("Mixed precision needs a GPU; training on the CPU in float32.")
        return mixed

    def _build_model(self, placement: Any, mixed: bool) -> Any:
        """The design's model, built in the device's scope (its variables live there), from the given weights when
        continuing a loaded model; refused when it is not one classifier with one input and one output."""
        from neuralstudio.ml.builder import build_model

        graph = mixed_precision_graph(self.design.graph) if mixed else self.design.graph
        with placement.scope():
            model = build_model(graph)
            if self.initial_weights is not None:
                _set_initial_weights(model, self.initial_weights)
                self._log("Starting from the loaded model's weights.")
        if isinstance(model.input_shape, list) or isinstance(model.output_shape, list):
            raise TrainingError("The network has several inputs or outputs; training on an image data set "
                                "needs exactly one of each.")
        return model

    def _prepare_data(self, ds: Any, model: Any, settings: TrainingSettings, units: int, replicas: int) -> _Data:
        """The examples as the model and the loss take them, checked against the output layer, split for
        validation and evened out across replicas; refused with a message that says how to fix a mismatch."""
        import numpy as np

        from neuralstudio.ml import data as data_mod

        x_train = data_mod.adapt_inputs(ds.x_train, tuple(model.input_shape[1:]))
        y_train = np.asarray(ds.y_train).reshape(-1)
        x_test = y_test = None
        if ds.x_test is not None and ds.y_test is not None and len(ds.x_test):
            x_test = data_mod.adapt_inputs(ds.x_test, tuple(model.input_shape[1:]))
            y_test = np.asarray(ds.y_test).reshape(-1)
        _check_labels(y_train, settings.loss, units, ds.num_classes)
        x_val = y_val = None
        if settings.validation_split > 0:
            split_seed = settings.seed if settings.seed is not None else 0
            x_train, y_train, x_val, y_val = data_mod.stratified_split(
                x_train, y_train, settings.validation_split, split_seed)
            if len(y_val) == 0:
                x_val = y_val = None
        if len(y_train) == 0:
            raise TrainingError("The validation split leaves no training examples: lower --validation-split.")
        batch_size = int(settings.batch_size)
        eval_batch = max(batch_size, 256)
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
        one_hot = one_hot_targets(settings.loss, units)
        data = _Data(x_train, _targets(y_train, settings.loss, units, one_hot), x_val,
                     _targets(y_val, settings.loss, units, one_hot), x_test,
                     _targets(y_test, settings.loss, units, one_hot), one_hot, batch_size, eval_batch)
        data.description = {**ds.description(), "train_samples": data.n_train, "validation_samples": data.n_val}
        if y_test is not None:
            data.test_labels, data.test_images = y_test.astype(np.int64), ds.x_test[: len(y_test)]
        return data

    def _start_record(self, settings: TrainingSettings, data: _Data, placement: Any, mixed: bool) -> None:
        """Create the run's record before training, so that a run that fails or is killed is still listed."""
        if self.runs_store is None:
            return
        hyper = {**settings.to_dict(), "device": self.device, "mixed_precision": mixed}
        self.record = self.runs_store.create(design=self.design.to_dict(), hyperparameters=hyper,
                                             data=data.description, device=placement.description)
        self._log(f"Run {self.record.id} recorded in {self.runs_store.root}.")

    def _engine_callback(self, settings: TrainingSettings, data: _Data, replicas: int) -> Any:
        """The one callback that reports, polls stop/pause, catches NaN, early-stops and measures step time.

        Step-time tuning is off with several replicas (their executions are not the Python-bound kind it helps) and
        on PyTorch, whose Keras trainer runs one step per execution.
        """
        from neuralstudio.ml.backends import max_steps_per_execution
        from neuralstudio.ml.callbacks import EngineCallback

        tunable = max_steps_per_execution() != 1  # PyTorch: one step per execution, nothing to tune
        return EngineCallback(reporter=self.reporter, control=self.control, record=self.record,
                              save_record=self._save_record, train_samples=data.n_train,
                              batch_size=data.batch_size, epochs=settings.epochs, patience=settings.early_stopping,
                              tune=self.tune_steps_per_execution and replicas == 1 and tunable)

    def _layer_stats_recorder(self, settings: TrainingSettings, data: _Data, units: int) -> Any:
        """With ``layer_stats``: the recorder whose callback joins every ``fit`` (None without). Its probe
        batch comes from the training split, with the targets encoded as the loss reads them."""
        if not self.layer_stats:
            return None
        from neuralstudio.ml.layer_stats import LayerStatsRecorder

        return LayerStatsRecorder(data.x_train, data.y_train, loss_function(settings.loss, units),
                                  reporter=self.reporter, log=self._log, batch_size=data.batch_size,
                                  seed=settings.seed if settings.seed is not None else 0)

    def _compiler(self, model: Any, settings: TrainingSettings, placement: Any, units: int, one_hot: bool,
                  mixed: bool) -> Callable[[int], None]:
        """A function that compiles ``model`` for a given ``steps_per_execution``.

        One optimizer for the whole run, made once in the device's scope: a recompile (to change
        ``steps_per_execution``) keeps its state, so the run continues as one. ``jit_compile="auto"``:
        XLA made a small convnet 5.6x slower on the CPU.

        The optimizer is built as soon as the model is compiled. On TensorFlow without a distribution strategy
        Keras builds it inside the first traced train step, and a ``tf.function`` that creates variables traces
        an ``initialize_variables`` graph and a ``cond`` graph per slot besides: about 45 graphs of reference
        cycles that outlive the run and that nothing reachable leads to (``ml/traced_graphs.py``).
        """
        import keras

        from neuralstudio.ml.optimizers import make_optimizer

        with placement.scope():
            optimizer = make_optimizer(settings)
            if mixed:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)

        def compile_model(steps_per_execution: int) -> None:
            with placement.scope():
                model.compile(optimizer=optimizer, **compile_arguments(settings.loss, units),
                              metrics=[_accuracy_metric(units, one_hot)],
                              steps_per_execution=steps_per_execution, jit_compile="auto")
                if not optimizer.built:  # its slots made here, not inside the first traced step (see the docstring)
                    optimizer.build(model.trainable_variables)

        return compile_model

    def _fit(self, model: Any, data: _Data, settings: TrainingSettings, placement: Any, cb: Any,
             compile_model: Callable[[int], None], extra_callbacks: list[Any] | None = None) -> tuple[int, float]:
        """Train until the epochs are done or the run stops; the last ``steps_per_execution`` and the fit's seconds.

        The first ``fit`` runs one step per execution while the callback measures the step time; when steps
        are short, the model is recompiled with more steps per execution (:func:`_steps_per_execution_next`) and
        a new ``fit`` continues at the next epoch. The data is copied into tensors once for the whole run, and
        each ``fit`` reads one iterator that shuffles every epoch anew (see ``ml/input_pipeline.py``).
        """
        from neuralstudio.ml.backends import feeds_tf_data
        from neuralstudio.ml.input_pipeline import batches, steps_per_epoch, to_tensors

        spe, first_epoch = 1, 0
        leftovers = self._leftovers  # what this run traced and drops, for ml/traced_graphs.py to take apart
        fit_t0 = time.perf_counter()  # the copy into tensors counts, as it does inside a plain fit
        tf_data = feeds_tf_data()
        if tf_data:
            x_train, y_train, x_val, y_val = to_tensors(data.x_train, data.y_train, data.x_val, data.y_val)
            val_batches = batches(x_val, y_val, data.batch_size, shuffle=False) if x_val is not None else None
            leftovers.append(val_batches)
        else:  # JAX, PyTorch: fit slices the arrays itself and shuffles them every epoch (ml/backends.py)
            x_train, y_train = data.x_train, data.y_train
            val_batches = (data.x_val, data.y_val) if data.x_val is not None else None
        compile_model(spe)  # also when a stop came before the first batch: evaluating needs a compiled model
        while not self.control.stop_requested:
            cb.begin_fit(spe, first_epoch)
            callbacks = [cb, *(extra_callbacks or [])]
            with placement.scope(), backends.cpu_threads_for(model, data.batch_size, on_cpu=not placement.is_gpu):
                if tf_data:
                    # one iterator for all the epochs of this call, each epoch shuffled anew (fit's own shuffle off)
                    train = batches(x_train, y_train, data.batch_size, shuffle=True, repeat=True,
                                    skip_epochs=first_epoch)
                    model.fit(train, steps_per_epoch=steps_per_epoch(data.n_train, data.batch_size),
                              epochs=settings.epochs, initial_epoch=first_epoch, validation_data=val_batches,
                              shuffle=False, verbose=0, callbacks=callbacks)
                    leftovers.append(train)
                else:
                    model.fit(x_train, y_train, batch_size=data.batch_size, epochs=settings.epochs,
                              initial_epoch=first_epoch, validation_data=val_batches,
                              validation_batch_size=data.batch_size, shuffle=True, verbose=0, callbacks=callbacks)
            retuned = _steps_per_execution_next(cb.state)
            if retuned is None:
                break
            spe, first_epoch = retuned, cb.state.epochs_done
            self._log(f"Steps are short: running {spe} steps per execution from epoch {first_epoch + 1}.")
            if not self.control.stop_requested:  # a stop (or a pruned trial) needs no recompiled step
                leftovers.extend(_drop_compiled_steps(model))  # the steps the recompile replaces
                compile_model(spe)
        return spe, time.perf_counter() - fit_t0 - cb.state.paused_seconds

    def _outcome(self, model: Any, settings: TrainingSettings, st: Any) -> tuple[str, str]:
        """The run's status and the message that explains it, with the weights to keep put back into ``model``:
        the last good ones after a NaN, the best ones after early stopping (or a finished run that got worse)."""
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
        return status, message

    def _result(self, model: Any, status: str, message: str, st: Any, data: _Data, spe: int, fit_seconds: float,
                device: str) -> RunResult:
        """The result of a run that trained: its history, speed and the final losses of the weights kept
        (validation figures of the best epoch when the best weights were restored)."""
        result = RunResult(status=status, message=message, epochs_run=st.epochs_done,
                           history={k: list(v) for k, v in st.history.items()}, batch_size=data.batch_size,
                           train_samples=data.n_train, validation_samples=data.n_val, steps_per_execution=spe,
                           device=device, model=model, run_id=self.record.id if self.record else None)
        result.fit_seconds = fit_seconds
        result.samples_per_second = st.samples_seen / fit_seconds if fit_seconds > 0 else 0.0
        last = {k: v[-1] for k, v in st.history.items() if v}
        result.train_loss, result.train_accuracy = last.get("loss"), last.get("accuracy")
        if st.best_weights is not None and status != "nan" and st.best_epoch >= 0:
            result.val_loss = _at(st.history.get("val_loss"), st.best_epoch)
            result.val_accuracy = _at(st.history.get("val_accuracy"), st.best_epoch)
        else:
            result.val_loss, result.val_accuracy = last.get("val_loss"), last.get("val_accuracy")
        return result

    def _evaluate(self, model: Any, data: _Data, placement: Any, result: RunResult) -> None:
        """Score the weights kept on the test split (when there is one), in batches of at least 256 (no gradient
        is kept, so larger batches only cost memory and save per-step overhead), keeping the outputs.

        The Mistakes tab needs the outputs of every test example, and ``model.evaluate`` computes them and throws
        them away: a second pass to get them cost as much again (mnist-cnn, 10,000 images: 9-10 s). So the pass is
        Keras's test step done here, one compiled call per batch (:func:`_test_pass`) that returns the outputs with
        the batch's loss and correct count. Why not compute the loss from the outputs afterwards: on TensorFlow
        Keras's crossentropy takes the logits behind a softmax or sigmoid output from the symbolic tensor, so a
        loss recomputed from saved probabilities differs where one saturates, and activity regularisers add
        losses only inside the call; the loss here is the model's own ``compute_loss`` inside the call, as in
        ``test_step``, so the figures are ``model.evaluate``'s (``tests/ml/test_trainer.py`` checks them to 1e-5).
        Why not a metric or a custom ``test_step`` that records the outputs inside ``evaluate``: a metric must be
        compiled into the model (and is saved with it), and the test step differs by backend and, with several
        steps per execution, returns only the last step's logs.

        ``model.evaluate`` still scores where the outputs are not kept: several devices (its distribution handles
        the replicas; a plain call under ``MirroredStrategy`` gave twice the rows, docs/ARCHITECTURE.md, "Traps"),
        and outputs too large to keep (:data:`KEEP_OUTPUTS_MAX_UNITS`, :data:`KEEP_OUTPUTS_MAX_VALUES`).
        """
        if data.x_test is None or (result.status == "stopped" and not self.test_stopped):
            return
        t0 = time.perf_counter()
        units = _output_units(model)
        n = len(data.y_test)
        if placement.replicas == 1 and units <= KEEP_OUTPUTS_MAX_UNITS and n * units <= KEEP_OUTPUTS_MAX_VALUES:
            scores = _test_pass(model, data, placement, units, self._leftovers)
            result.test_outputs, result.test_labels, result.test_images = (
                scores.pop("outputs"), data.test_labels, data.test_images)
        else:
            scores = self._keras_evaluate(model, data, placement)
        result.test_loss = _finite_or_none(scores.get("loss"))
        result.test_accuracy = _finite_or_none(scores.get("accuracy"))
        result.test_seconds = time.perf_counter() - t0

    @staticmethod
    def _keras_evaluate(model: Any, data: _Data, placement: Any) -> dict[str, Any]:
        """``model.evaluate`` on the test split: the scores without the outputs."""
        from neuralstudio.ml.backends import feeds_tf_data
        from neuralstudio.ml.input_pipeline import batches, to_tensors

        with placement.scope():
            if feeds_tf_data():
                test_batches = batches(*to_tensors(data.x_test, data.y_test), data.eval_batch, shuffle=False)
                return model.evaluate(test_batches, verbose=0, return_dict=True)
            return model.evaluate(data.x_test, data.y_test, batch_size=data.eval_batch, verbose=0, return_dict=True)

    def _finish_record(self, result: RunResult, st: Any) -> None:
        """Write the run's outcome, timing and final figures into its record (the batches and epochs are there)."""
        if self.record is None:
            return
        self.record.status, self.record.message = result.status, result.message
        self.record.timing = {"seconds": result.seconds, "fit_seconds": result.fit_seconds,
                              "samples_per_second": result.samples_per_second, "epochs_run": st.epochs_done,
                              "train_samples": result.train_samples, "steps_per_execution": result.steps_per_execution}
        self.record.final = {"test_loss": result.test_loss, "test_accuracy": result.test_accuracy,
                             "val_loss": result.val_loss, "val_accuracy": result.val_accuracy,
                             "train_loss": result.train_loss, "train_accuracy": result.train_accuracy}
        self._save_record()

    def _save_record(self) -> None:
        if self.record is not None and self.runs_store is not None:
            self.runs_store.save(self.record)

    def _keep_class_names(self, model: Any, ds: Any, result: RunResult) -> None:
        """Keep the data's class names with the trained model: in memory for whoever takes the model (the Train
        window's "Save model", Predict) and, through :meth:`_save_model`, in every file saved of it."""
        from neuralstudio.ml.model_metadata import classes_of_dataset, remember_classes

        classes = classes_of_dataset(ds)
        remember_classes(model, classes)
        result.class_names = list(classes.names) if classes is not None else None

    def _save_model(self, model: Any, result: RunResult) -> None:
        """Save the model into the run's folder and to ``out_path``, each with the class names of its data
        (:func:`~neuralstudio.ml.model_metadata.write_model`); each file appears complete or not at all."""
        from neuralstudio.ml.model_metadata import write_model

        first: str | None = None
        if self.record is not None and self.runs_store is not None:
            target = self.runs_store.model_file(self.record)
            with atomic_path(target) as tmp:
                write_model(model, tmp)
            first = str(target)
        if self.out_path:
            try:
                with atomic_path(self.out_path) as tmp:
                    if first and first.lower().endswith(tmp.suffix.lower()):
                        shutil.copyfile(first, tmp)
                    else:  # a .h5 name needs Keras's legacy HDF5 format, not a copy of the run's .keras archive
                        write_model(model, tmp)
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
    from neuralstudio.ml import (  # noqa: F401
        builder,
        callbacks,
        custom_gradients,
        data,
        devices,
        input_pipeline,
        layer_stats,
        optimizers,
    )


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


def _output_units(model: Any) -> int:
    """Scores per example of a classifier's output; refused (with the fix) for any other output shape."""
    out_shape = tuple(model.output_shape)
    if len(out_shape) != 2 or out_shape[-1] is None:
        raise TrainingError(
            f"The network's output has shape {out_shape}, but classification needs one score per class "
            "(batch, classes): end with Flatten or GlobalAveragePooling and a Dense layer.")
    return int(out_shape[-1])


def _check_labels(y: Any, loss: str, units: int, num_classes: int) -> None:
    """Refuse labels the output layer cannot score, before any time is spent training."""
    if len(y) == 0:
        raise TrainingError("The data set has no training examples.")
    top = int(y.max())
    if loss == "binary_crossentropy" and units == 1:
        if top > 1:
            raise TrainingError(f"binary_crossentropy with one output unit needs labels 0 and 1, but the data "
                                f"has {num_classes} classes: use sparse_categorical_crossentropy and "
                                f"{num_classes} output units.")
    elif top >= units:
        classes = max(num_classes, top + 1)
        raise TrainingError(f"The output layer has {units} unit(s) but the data has {classes} classes: "
                            f"give the last Dense layer {classes} units.")


def _targets(y: Any, loss: str, units: int, one_hot: bool) -> Any:
    """Labels encoded as ``loss`` reads them (None stays None)."""
    if y is None:
        return None
    from neuralstudio.ml import data as data_mod

    if one_hot:
        return data_mod.one_hot(y, units)
    if loss == "binary_crossentropy":
        return y.astype("float32").reshape(-1, 1)
    return y


def _accuracy_metric(units: int, one_hot: bool) -> Any:
    """Keras's accuracy for how the targets are encoded, named ``accuracy`` whatever its kind (the plots read it)."""
    import keras

    if units == 1:
        return keras.metrics.BinaryAccuracy(name="accuracy")
    if one_hot:
        return keras.metrics.CategoricalAccuracy(name="accuracy")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def _accuracy_function(units: int, one_hot: bool) -> Callable[[Any, Any], Any]:
    """The function behind :func:`_accuracy_metric`'s metric (1 or 0 for each example), for the test pass to sum."""
    import keras

    if units == 1:
        return keras.metrics.binary_accuracy  # BinaryAccuracy's threshold, 0.5, is its default too
    if one_hot:
        return keras.metrics.categorical_accuracy
    return keras.metrics.sparse_categorical_accuracy


def _drop_compiled_steps(model: Any) -> list[Any]:
    """Let go of the model's compiled train, test and predict steps here, on the run's own thread.

    Left on the model they live as long as the model, and the model (in reference cycles, as every Keras model)
    is freed by the next full garbage collection, which the app runs on the GUI thread only
    (docs/ARCHITECTURE.md, "Traps"): freeing a traced TensorFlow function removes it from the eager context,
    and that cost the window 73-176 ms after an experiment's trials and up to 96 ms after a run. Dropped here
    they are freed by reference counting at once (the window's pass after a run: 8-96 ms -> 7-12 ms,
    nielsen-784-30-10 with per-layer signals). Keras makes them again when the model is next trained,
    evaluated or predicted with; the trainer recompiles it for every run anyway.

    Returns the steps dropped, for :func:`~neuralstudio.ml.traced_graphs.release_traced`: a traced step's graphs
    are reference cycles of their own, which only a collection frees unless they are taken apart.
    """
    dropped = []
    for name in ("train_function", "test_function", "predict_function"):
        if getattr(model, name, None) is not None:
            dropped.append(getattr(model, name))
            setattr(model, name, None)
    return dropped


def _test_pass(model: Any, data: _Data, placement: Any, units: int,
               leftovers: list[Any] | None = None) -> dict[str, Any]:
    """Keras's test step over the test split, one compiled call per batch, keeping the outputs.

    Returns ``outputs`` (``(n, units)`` float32, in the split's order), ``loss`` (the batches' losses weighted by
    their sizes, as ``evaluate``'s loss tracker takes them: the compiled loss plus every penalty, from the model's
    own ``compute_loss`` inside the call) and ``accuracy`` (the examples right over all, as the mean metric counts
    them).
    """
    import keras
    import numpy as np

    from neuralstudio.ml.backends import feeds_tf_data, scoring_function
    from neuralstudio.ml.input_pipeline import to_tensors

    right = _accuracy_function(units, data.one_hot)

    def step(x: Any, y: Any) -> tuple[Any, Any, Any]:
        y_pred = model(x, training=False)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        return y_pred, loss, keras.ops.sum(right(y, y_pred))

    score = scoring_function(model, step)
    if leftovers is not None:
        leftovers.append(score)  # its traced step, taken apart with the run's others (ml/traced_graphs.py)
    x, y = data.x_test, data.y_test
    if feeds_tf_data():  # copied into tensors in 1 MB slices, as for training (ml/input_pipeline.py)
        x, y = to_tensors(x, y)
    n, size = int(len(data.y_test)), data.eval_batch
    outputs = np.empty((n, units), dtype=np.float32)
    loss_sum = hits = 0.0
    with placement.scope():
        for i in range(0, n, size):
            out, loss, hit = score(x[i:i + size], y[i:i + size])
            m = min(size, n - i)
            outputs[i:i + m] = np.asarray(out).reshape(m, units)
            loss_sum += float(loss) * m
            hits += float(hit)
    return {"outputs": outputs, "loss": loss_sum / n, "accuracy": hits / n}


def _steps_per_execution_next(st: Any) -> int | None:
    """The ``steps_per_execution`` to recompile with, or None to stop fitting.

    The callback asks for one at the end of the first epoch when it measured short steps
    (``callbacks.EngineCallback``); a run that is ending anyway (NaN, early stopping, Stop) is not recompiled.
    """
    if st.retune_to and not (st.nan_at or st.early_stopped or st.stopped_by_user):
        return int(st.retune_to)
    return None


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
