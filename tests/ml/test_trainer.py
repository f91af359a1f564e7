"""The training engine on tiny slices of the MNIST sample: results, control, NaN, early stopping, seeds."""

from __future__ import annotations

import json
import math
import resource
import statistics
import threading
import time

import numpy as np
import pytest
from support import flat_mlp

from neuralstudio.core.design import Design
from neuralstudio.core.graph import Graph
from neuralstudio.core.runs import RunsStore
from neuralstudio.core.training_settings import TrainingSettings
from neuralstudio.ml.data import Dataset, load_dataset, stratified_split
from neuralstudio.ml.trainer import TRAINING_THREAD, TrainControl, Trainer, mixed_precision_graph


def mlp_design(hidden: int = 30, activation: str = "sigmoid", units: int = 10, output: str = "softmax") -> Design:
    return flat_mlp(hidden=hidden, activation=activation, units=units, output=output)


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return load_dataset("mnist-sample")


def slice_of(ds: Dataset, n_train: int = 512, n_test: int = 256) -> Dataset:
    return Dataset("slice", ds.x_train[:n_train], ds.y_train[:n_train], ds.x_test[:n_test], ds.y_test[:n_test],
                   list(ds.class_names), "first examples of the MNIST sample")


class Recorder:
    """A reporter that keeps everything it is told, with the time, and lets a test wait for what it wants."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, int, int, dict]] = []
        self.epochs: list[tuple[float, int, dict]] = []
        self.logs: list[str] = []
        self.finished = None
        self.failed: str | None = None
        self.threads: set[str] = set()  # the names of the threads that reported
        self._changed = threading.Condition()

    def wait_until(self, ready, timeout: float = 120.0) -> bool:
        """Block until ``ready(self)`` is true (checked at every report); False after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: ready(self), timeout)

    def _note(self, kind: list, item: tuple) -> None:
        self.threads.add(threading.current_thread().name)
        with self._changed:
            kind.append(item)
            self._changed.notify_all()

    def on_batch(self, epoch, batch, logs):
        self._note(self.batches, (time.perf_counter(), epoch, batch, dict(logs)))

    def on_epoch(self, epoch, logs):
        self._note(self.epochs, (time.perf_counter(), epoch, dict(logs)))

    def on_log(self, message):
        self._note(self.logs, (message,))

    def on_finished(self, result):
        self.finished = result

    def on_failed(self, message):
        self.failed = message

    @property
    def messages(self) -> list[str]:
        return [m for (m,) in self.logs]


def test_one_epoch_trains_records_the_run_and_saves_a_loadable_model(sample, tmp_path):
    import keras

    store = RunsStore(tmp_path / "runs")
    rec = Recorder()
    settings = TrainingSettings(epochs=1, batch_size=32, learning_rate=0.01, validation_split=0.25)
    started = time.perf_counter()
    result = Trainer(mlp_design(), dataset=slice_of(sample), settings=settings, runs_store=store,
                     reporter=rec, out_path=str(tmp_path / "out" / "m.keras")).run()
    wall = time.perf_counter() - started
    assert result.status == "finished", result.message
    assert 0 < result.fit_seconds < result.seconds <= wall  # fit is part of the run, the run part of the call
    assert rec.threads == {TRAINING_THREAD}  # the run's own thread (docs/ARCHITECTURE.md, "Threads")
    assert rec.finished is result and rec.failed is None
    assert result.epochs_run == 1 and result.train_samples == 384 and result.validation_samples == 128
    assert result.test_accuracy > 0.3  # chance is 0.1
    assert 0 < result.samples_per_second and result.fit_seconds > 0
    assert rec.batches[-1][3]["samples"] == 384
    assert set(rec.epochs[-1][2]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    # the run record holds everything and the model file predicts what the trained model predicts
    run = store.get(result.run_id)
    assert run.status == "finished" and run.final["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert run.hyperparameters["batch_size"] == 32 and run.data["train_samples"] == 384
    assert run.design["name"] == "tiny-mlp" and len(run.epochs) == 1 and run.batches
    assert json.loads((run.folder / "run.json").read_text())["id"] == result.run_id
    x = sample.x_test[:5].reshape(5, 784)
    for path in (run.model_path, tmp_path / "out" / "m.keras"):
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(loaded.predict_on_batch(x), result.model.predict_on_batch(x), atol=1e-6)


def test_a_user_error_is_reported_not_raised(sample):
    rec = Recorder()
    result = Trainer(mlp_design(units=5), dataset=slice_of(sample), reporter=rec,
                     settings=TrainingSettings(epochs=1)).run()
    assert result.status == "failed"
    assert "10 units" in result.message and rec.failed == result.message and rec.finished is None


def _train_in_thread(design, data, settings, rec, control) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def work() -> None:
        out["started"] = time.perf_counter()
        out["result"] = Trainer(design, dataset=data, settings=settings, reporter=rec, control=control).run()
        out["ended"] = time.perf_counter()

    worker = threading.Thread(target=work)
    worker.start()
    return worker, out


def test_stop_from_another_thread_acts_within_an_execution_and_keeps_the_weights(sample):
    rec, control = Recorder(), TrainControl()
    settings = TrainingSettings(epochs=200, batch_size=16, learning_rate=0.01, validation_split=0.1)
    worker, out = _train_in_thread(mlp_design(), slice_of(sample), settings, rec, control)
    # past the first epoch, after which steps_per_execution may be retuned (a recompile that a stop request
    # cannot interrupt), and a few executions into steady training
    assert rec.wait_until(lambda r: len(r.epochs) >= 2 and r.batches[-1][1] >= 2 and r.batches[-1][2] >= 3)
    control.request_stop()
    asked = time.perf_counter()
    worker.join(120)
    assert not worker.is_alive(), "the run did not stop"
    result = out["result"]
    assert result.status == "stopped" and 2 <= result.epochs_run < 200
    # the execution in flight when Stop was asked may still report; no other one may start
    after = [b for b in rec.batches if b[0] > asked]
    assert len(after) <= 1, f"{len(after)} executions ran after the stop request"
    stamps = [b[0] for b in rec.batches if b[1] >= 1 and b[0] <= asked]  # after the retune
    execution_s = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
    to_end = out["ended"] - asked
    print(f"stop took {to_end * 1000:.0f} ms to the end of the run; one execution {execution_s * 1000:.1f} ms "
          f"(steps_per_execution {result.steps_per_execution})")
    # what follows a stop (the epoch's end, the test split's 256 examples) is a few executions' worth of work:
    # a bound that scales with the machine's speed at the time, plus time for tracing the test step
    assert to_end < 20 * execution_s + 2.0
    assert result.test_accuracy > 0.3  # the weights trained so far were kept


def test_pause_holds_the_thread_and_resume_continues_without_counting_the_pause(sample):
    rec, control = Recorder(), TrainControl()
    settings = TrainingSettings(epochs=3, batch_size=32, learning_rate=0.01, validation_split=0.0)
    control.pause()  # paused before the first batch: holds at the first execution boundary
    called = time.perf_counter()
    worker, out = _train_in_thread(mlp_design(), slice_of(sample), settings, rec, control)
    assert control.wait_until_holding(120)
    held_from = time.perf_counter()
    assert len(rec.batches) == 1 and "Paused." in rec.messages  # the first execution, then nothing
    time.sleep(0.5)  # the pause itself, not a wait for something: its length only has to be measured
    assert len(rec.batches) == 1 and worker.is_alive() and control.is_holding
    control.resume()
    held = time.perf_counter() - held_from
    worker.join(120)
    wall = time.perf_counter() - called
    result = out["result"]
    assert result.status == "finished" and result.epochs_run == 3 and "Resumed." in rec.messages
    assert len(rec.batches) > 1
    # the pause is not counted as training time: the run's own seconds fit in the call's wall time without it
    assert 0 < result.fit_seconds < result.seconds <= wall - held
    assert result.test_accuracy > 0.3


def test_nan_loss_stops_names_epoch_and_batch_and_keeps_good_weights(sample):
    rec = Recorder()
    # a linear output with the quadratic cost has no bound to save it: a huge rate blows the weights up
    settings = TrainingSettings(optimizer="sgd", learning_rate=100.0, epochs=3, batch_size=16, validation_split=0,
                                loss="mean_squared_error")
    design = mlp_design(hidden=64, activation="relu", output="linear")
    result = Trainer(design, dataset=slice_of(sample), settings=settings, reporter=rec).run()
    assert result.status == "nan", result.message
    assert "at epoch 1, batch" in result.message and "learning rate 100: try 10" in result.message
    assert "last good weights" in result.message
    for w in result.model.get_weights():
        assert np.isfinite(w).all()
    assert rec.finished is result


def test_early_stopping_restores_the_best_weights(sample):
    data = slice_of(sample, 256)
    settings = TrainingSettings(optimizer="adam", learning_rate=0.05, epochs=40, batch_size=32,
                                validation_split=0.25, early_stopping=2, seed=3)
    result = Trainer(mlp_design(hidden=128, activation="relu"), dataset=data, settings=settings).run()
    assert result.status == "early_stopped", result.message
    val = result.history["val_loss"]
    assert result.epochs_run < 40 and len(val) == result.epochs_run
    best = int(np.argmin(val))
    assert best < len(val) - 1 and result.val_loss == pytest.approx(val[best])
    # the model holds the best epoch's weights: its validation loss is the best one, not the last
    _, _, x_val, y_val = stratified_split(data.x_train.reshape(-1, 784), data.y_train, 0.25, 3)
    got = result.model.evaluate(x_val, y_val, verbose=0, return_dict=True)["loss"]
    assert got == pytest.approx(val[best], rel=1e-3)


def test_a_seed_makes_a_run_repeatable(sample):
    settings = TrainingSettings(epochs=1, batch_size=32, learning_rate=0.01, seed=7)
    a = Trainer(mlp_design(), dataset=slice_of(sample), settings=settings).run()
    wa = [w.copy() for w in a.model.get_weights()]
    b = Trainer(mlp_design(), dataset=slice_of(sample), settings=settings).run()
    a.history.pop("seconds"), b.history.pop("seconds")
    assert a.history == b.history
    for x, y in zip(wa, b.model.get_weights()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("optimizer,loss", [("sgd", "mean_squared_error"),
                                            ("sgd-momentum", "categorical_crossentropy"),
                                            ("rmsprop", "sparse_categorical_crossentropy"),
                                            ("adamw", "sparse_categorical_crossentropy")])
def test_each_optimizer_and_loss_trains(sample, optimizer, loss):
    lr = 3.0 if loss == "mean_squared_error" else 0.01  # Nielsen's quadratic cost wants a large rate
    settings = TrainingSettings(optimizer=optimizer, loss=loss, learning_rate=lr, epochs=2, batch_size=16,
                                validation_split=0)
    result = Trainer(mlp_design(), dataset=slice_of(sample), settings=settings).run()
    assert result.status == "finished", result.message
    assert result.test_accuracy > 0.3, (optimizer, loss, result.test_accuracy)


def test_the_data_is_adapted_to_a_convolutional_input(sample):
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 28, 28, 1]})
    c = g.add_node("Conv2D", {"filters": 4, "kernel_size": [3, 3], "activation": "relu"})
    f = g.add_node("GlobalAveragePooling2D", {})
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    g.connect(i.id, c.id)
    g.connect(c.id, f.id)
    g.connect(f.id, o.id)
    result = Trainer(Design(graph=g), dataset=slice_of(sample, 128, 64),
                     settings=TrainingSettings(epochs=1, batch_size=32)).run()
    assert result.status == "finished", result.message


def test_mixed_precision_keeps_the_output_layer_in_float32():
    from neuralstudio.ml.builder import build_model

    model = build_model(mixed_precision_graph(mlp_design().graph))
    hidden, output = model.layers[1], model.layers[-1]
    assert hidden.compute_dtype == "float16" and output.compute_dtype == "float32"
    assert model.output.dtype == "float32"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_runs_in_a_row_do_not_grow_memory_without_bound(sample):
    data = slice_of(sample, 128, 32)
    settings = TrainingSettings(epochs=1, batch_size=32, validation_split=0)
    sizes = []
    for _ in range(4):
        result = Trainer(mlp_design(hidden=512), dataset=data, settings=settings).run()
        assert result.status == "finished"
        del result
        sizes.append(_rss_mb())
    print("RSS after each run (MB):", [round(s) for s in sizes])
    # after the first (warm-up) runs, more runs may not add more than a few MB each
    assert sizes[-1] - sizes[1] < 40


def test_a_run_leaves_no_custom_gradient_holding_its_graphs(sample):
    """tensorflow#97697: each traced train step left its graph in TF's gradient registry (6 MB a run)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the registry and its leak are TensorFlow's")
    from neuralstudio.ml.custom_gradients import _registry, custom_gradient_count

    assert _registry() is not None, "TensorFlow's gradient registry moved: revisit ml/custom_gradients.py"
    data = slice_of(sample, 128, 32)
    settings = TrainingSettings(epochs=2, batch_size=32, validation_split=0.25)
    before = custom_gradient_count()
    for _ in range(2):
        assert Trainer(mlp_design(), dataset=data, settings=settings, free_memory=False).run().status == "finished"
        assert custom_gradient_count() == before


def test_steps_per_execution_is_chosen_from_the_measured_step_time():
    from neuralstudio.ml.callbacks import EXECUTION_TARGET_S, EngineCallback

    def choose(step_s: float, n: int = 100) -> int:
        cb = EngineCallback(reporter=None, control=TrainControl(), record=None, save_record=None,
                            train_samples=100_000, batch_size=32, epochs=5, patience=None)
        cb._stamps = [(i * step_s, i) for i in range(n)]
        return cb._measured_steps_per_execution()

    fast = choose(0.001)
    assert fast > 4 and fast * 0.001 <= EXECUTION_TARGET_S + 1e-9
    assert choose(0.05) == 1  # long steps: Python overhead does not matter
    assert choose(0.001, n=4) == 1  # too few measurements to decide


def test_nan_suggestion_is_a_round_number():
    from neuralstudio.ml.trainer import _nicer

    assert _nicer(0.3) == "0.3" and _nicer(3.0 / 10) == "0.3" and _nicer(10.0) == "10"
    assert not math.isnan(float(_nicer(1e-5)))


def test_a_run_leaves_the_keras_state_of_other_threads_alone(sample):
    """Keras keeps its "global" state per thread; a run must neither reset another thread's nor break its analyses.

    ``keras.backend.clear_session()`` replaced that state for every thread at once: an analysis running on the
    editor's thread lost its name scopes and counters in the middle of its work (docs/ARCHITECTURE.md, "Threads").
    """
    import keras

    from neuralstudio.ml.builder import analyze

    design = mlp_design()
    seen: dict = {"problems": [], "analyses": 0}
    started, run_over = threading.Event(), threading.Event()

    def editor_thread() -> None:
        with keras.name_scope("editor"):
            seen["uids"] = [keras.backend.get_uid("ns-probe"), keras.backend.get_uid("ns-probe")]
            started.set()
            while not run_over.is_set() or seen["analyses"] < 2:
                result = analyze(design.graph, build=True)
                seen["problems"] += [p.message for p in result.problems]
                seen["analyses"] += 1
            seen["uids"].append(keras.backend.get_uid("ns-probe"))
            seen["path"] = keras.Variable(1.0, name="probe").path

    editor = threading.Thread(target=editor_thread)
    editor.start()
    assert started.wait(30)
    try:
        settings = TrainingSettings(epochs=1, batch_size=64, validation_split=0)
        result = Trainer(design, dataset=slice_of(sample, 256, 64), settings=settings).run()
    finally:
        run_over.set()
        editor.join(60)
    assert result.status == "finished", result.message
    assert seen["problems"] == [] and seen["analyses"] >= 2
    assert seen["uids"] == [1, 2, 3], "the run reset the editor thread's Keras counters"
    assert seen["path"] == "editor/probe", "the run reset the editor thread's name scope"


# ---------------------------------------------------------------- the end-of-run test pass keeps the outputs
def _regularised(kind: str, amount: float = 0.01) -> Design:
    """The flat MLP with an L2 ``kernel`` or L1 ``activity`` regulariser on its hidden layer (a penalty in the loss)."""
    design = mlp_design()
    hidden = next(n for n in design.graph.nodes.values() if n.config.get("units") == 30)
    name, cls, arg = (("kernel_regularizer", "L2", "l2") if kind == "kernel" else ("activity_regularizer", "L1", "l1"))
    hidden.config[name] = {"module": "keras.regularizers", "class_name": cls, "config": {arg: amount},
                           "registered_name": None}
    return design


def _saturated_weights(design: Design) -> list[np.ndarray]:
    """The design's fresh weights, scaled up until the softmax saturates: most probabilities are 0 in float32."""
    from neuralstudio.ml.builder import build_model
    from neuralstudio.ml.keras_threads import run_on_python_thread

    def weights() -> list[np.ndarray]:
        import keras

        keras.utils.set_random_seed(3)
        return [w * 60.0 for w in build_model(design.graph).get_weights()]

    return run_on_python_thread(weights, "test-build")


def _keras_scores(model, x, y_encoded) -> tuple[dict, np.ndarray]:
    """What ``model.evaluate`` reports on the test split (its default batch), and a plain call's outputs."""
    import keras

    from neuralstudio.ml.keras_threads import run_on_python_thread

    def score():
        scores = model.evaluate(x, y_encoded, verbose=0, return_dict=True)
        return scores, keras.ops.convert_to_numpy(model(x, training=False))

    return run_on_python_thread(score, "test-evaluate")


CASES = {
    # a softmax classifier with sparse labels
    "softmax-sparse": lambda: (mlp_design(), TrainingSettings(epochs=1, batch_size=32, learning_rate=0.01), None),
    # Nielsen's network: sigmoid outputs, the quadratic cost on one-hot labels, categorical accuracy
    "nielsen-quadratic-one-hot": lambda: (_nielsen(), None, None),
    "l2-kernel-regulariser": lambda: (_regularised("kernel"), TrainingSettings(epochs=1, batch_size=32), None),
    # a penalty that exists only inside the call (the layer adds it as it is called)
    "l1-activity-regulariser": lambda: (_regularised("activity"), TrainingSettings(epochs=1, batch_size=32), None),
    # one sigmoid unit: binary labels (0 and 1), binary accuracy
    "sigmoid-binary": lambda: (mlp_design(units=1, output="sigmoid"),
                               TrainingSettings(epochs=1, batch_size=32, loss="binary_crossentropy"), None),
    # probabilities that saturate: on TensorFlow Keras scores them from the logits behind the softmax
    "saturated-softmax": lambda: (mlp_design(), TrainingSettings(epochs=1, batch_size=32, optimizer="sgd",
                                                                 learning_rate=1e-9), "saturate"),
}


def _nielsen() -> Design:
    from neuralstudio.core.templates import load_template

    design = load_template("nielsen-784-30-10")
    design.training.epochs = 1
    return design


@pytest.mark.parametrize("case", list(CASES))
def test_the_test_pass_scores_as_evaluate_does_and_keeps_the_outputs(sample, case, tmp_path):
    """test_loss and test_accuracy are model.evaluate's to 1e-5 (the loss with its penalties, the accuracy Keras
    computes for the labels' encoding), and the outputs of that same pass are kept for the Mistakes tab."""
    import keras

    from neuralstudio.core.training_settings import one_hot_targets
    from neuralstudio.ml.data import one_hot

    design, settings, weights = CASES[case]()
    data = slice_of(sample, 512, 300)
    if case == "sigmoid-binary":  # two classes: even and odd digits
        data = Dataset("parity", data.x_train, data.y_train % 2, data.x_test, data.y_test % 2, ["even", "odd"])
    initial = _saturated_weights(design) if weights == "saturate" else None
    store = RunsStore(tmp_path / "runs")
    result = Trainer(design, dataset=data, settings=settings, runs_store=store, initial_weights=initial).run()
    assert result.status == "finished", result.message
    loss = (settings or design.training).loss
    units = result.model.output_shape[-1]
    x = data.x_test.reshape(len(data.x_test), -1)
    y = (one_hot(data.y_test, units) if one_hot_targets(loss, units)
         else data.y_test.astype("float32").reshape(-1, 1) if units == 1 else data.y_test)
    scores, outputs = _keras_scores(result.model, x, y)
    assert result.test_loss == pytest.approx(scores["loss"], rel=1e-5, abs=1e-5), case
    assert result.test_accuracy == pytest.approx(scores["accuracy"], abs=1e-5), case
    # the outputs of that pass: every test example's, in order, with its label and image
    assert result.test_outputs.shape == (300, units) and result.test_outputs.dtype == np.float32
    np.testing.assert_allclose(result.test_outputs, outputs, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result.test_labels, data.y_test)
    assert result.test_labels.dtype == np.int64 and np.shares_memory(result.test_images, data.x_test)
    assert result.test_images.shape == data.x_test.shape and 0 < result.test_seconds < result.seconds
    # never serialised: neither in the summary (train --json) nor in the run record
    summary = result.summary()
    assert not {"test_outputs", "test_labels", "test_images"} & set(summary) and json.dumps(summary)
    assert "test_outputs" not in (store.get(result.run_id).folder / "run.json").read_text()
    assert "test_outputs" not in repr(result)
    if case == "saturated-softmax" and keras.backend.backend() == "tensorflow":
        # Why the loss is computed inside the pass: TensorFlow's Keras scores a softmax from its logits, far beyond
        # what clipped probabilities give (-log 1e-7 = 16.1); recomputed from the kept outputs, it is not Keras's.
        # (JAX and PyTorch clip the probabilities inside the pass too.)
        clipped = float(keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(y, outputs)).mean())
        assert scores["loss"] > 20 and clipped < scores["loss"] - 1


def test_outputs_are_kept_only_within_the_cap_and_for_scored_runs(sample, monkeypatch):
    """Too many outputs to keep: model.evaluate scores the split and nothing is kept; so for a stopped run that is
    not scored (an experiment's pruned trial) and for data without a test split."""
    from neuralstudio.ml import trainer as trainer_mod

    settings = TrainingSettings(epochs=1, batch_size=64, validation_split=0)
    data = slice_of(sample, 256, 128)
    monkeypatch.setattr(trainer_mod, "KEEP_OUTPUTS_MAX_UNITS", 9)  # 10 classes are too many now
    wide = Trainer(mlp_design(), dataset=data, settings=settings).run()
    assert wide.status == "finished" and wide.test_accuracy is not None and wide.test_loss is not None
    assert wide.test_outputs is None and wide.test_labels is None and wide.test_images is None
    monkeypatch.undo()

    control = TrainControl()
    control.request_stop()
    stopped = Trainer(mlp_design(), dataset=data, settings=settings, control=control, test_stopped=False).run()
    assert stopped.status == "stopped" and stopped.test_accuracy is None and stopped.test_outputs is None
    no_test = Dataset("no test", data.x_train, data.y_train, None, None, list(data.class_names))
    untested = Trainer(mlp_design(), dataset=no_test, settings=settings).run()
    assert untested.status == "finished" and untested.test_outputs is None and untested.test_accuracy is None


def test_the_compiled_steps_are_let_go_on_the_runs_thread_and_made_again_when_needed(sample):
    """The GUI's garbage collector would free them with the model, 73-176 ms on the GUI thread after an
    experiment (TensorFlow removes each traced function from its context): dropped by the run, they go at once."""
    settings = TrainingSettings(epochs=1, batch_size=32, learning_rate=0.01, validation_split=0.25)
    result = Trainer(mlp_design(), dataset=slice_of(sample), settings=settings).run()
    assert result.status == "finished", result.message
    model = result.model
    assert (model.train_function, model.test_function, model.predict_function) == (None, None, None)
    x = np.zeros((4, *model.input_shape[1:]), "float32")
    assert model.predict(x, verbose=0).shape == (4, 10)  # made again when asked
    assert model.predict_function is not None


def test_a_run_takes_its_traced_graphs_apart_and_its_model_still_works(sample):
    """A traced TensorFlow graph is a knot of reference cycles: left to the GUI thread's garbage collection, a
    run of mnist-cnn held 20,000 cyclic objects, a 25-70 ms pass (ml/traced_graphs.py). The run takes apart
    what it traced (train and validation steps, the step replaced when steps per execution are retuned, the
    test pass, the tf.data pipeline), and the model it hands on still predicts and trains."""
    import gc

    import keras
    from tensorflow.python.framework.func_graph import FuncGraph

    if keras.backend.backend() != "tensorflow":
        pytest.skip("only TensorFlow traces FuncGraphs")
    from neuralstudio.core.templates import load_template

    settings = TrainingSettings(epochs=2, batch_size=32, learning_rate=0.01, validation_split=0.25)
    gc.collect()  # only this run's garbage below
    result = Trainer(load_template("mnist-cnn"), dataset=slice_of(sample), settings=settings).run()
    assert result.status == "finished", result.message
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        garbage = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    whole = [g.name for g in garbage if isinstance(g, FuncGraph) and g.get_operations()]
    assert whole == [], f"traced graphs left to the collector whole: {whole}"
    assert len(garbage) < 8_000, f"{len(garbage)} cyclic objects left by one run"
    del garbage
    model = result.model
    x = sample.x_test[:8].reshape(-1, *model.input_shape[1:]).astype("float32")
    before = model.predict(x, verbose=0)
    assert np.isfinite(before).all()
    model.fit(x, sample.y_test[:8], epochs=1, verbose=0)
    assert not np.allclose(model.predict(x, verbose=0), before)  # trained on: the optimizer and variables live
