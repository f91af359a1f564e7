"""Benchmark of the Mistakes tab: from a run's end to the confusion matrix and gallery on screen, 10,000 images.

Run (from the repository root, offscreen)::

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_confusion.py [--images N] [--models mnist-cnn,mlp,bundled]

For each model (the mnist-cnn and mlp templates, the bundled digit model) on N images of the bundled MNIST sample
(all 10,000 by default: its 2,000 test and 8,000 training images, as one test split), two ways to the report:

- **run's end**: a real run from the Train window (Train pressed, one epoch on 64 training images: the templates
  from fresh weights, the bundled model continued from its own weights, "Continue from the current model"). The
  trainer's test pass keeps its outputs (``RunResult.test_outputs``) and the window builds the report from them
  (``ConfusionJob.from_outputs``): nothing is predicted again. Timed from the run's end as the window sees it
  (``TrainWorkspace._finish`` asks for the report) to the complete report on screen.
- **on demand**: Check on test data of a model not traced yet (``TrainWorkspace.check_mistakes``): the split is
  predicted a slice at a time (``ConfusionJob``); timed to the first partial matrix and to the complete report.

The first table has both, with

- predicted again: images the Mistakes tab predicted itself (``BatchPredictor.raw``);
- longest stall: the longest gap of a 5 ms GUI timer from the run's end (or the check's start) to the complete
  report, and in brackets the same probe's longest gap over 2 s with nothing to do (what other programs on the
  machine cost). After a run it holds the window's end-of-run work, mostly the full garbage-collection pass made
  at once (``ui/garbage_collection.py``; measured here 50 ms after the first model, up to 0.4 s after three, as
  each model traced leaves more to scan), which the report's task waits behind;
- longest set_report: the longest time the GUI thread spent showing one (partial) report.

The second table has the parts, measured apart on a plain thread: trace (``ml/confusion.BatchPredictor``, once a
model), predict (the forward pass over every image, wall and CPU seconds), report (numpy only), show
(``ConfusionView.set_report`` and the paint after it), and the run's test pass (outputs, loss and accuracy in one
pass, ``RunResult.test_seconds``) against plain Keras ``model.evaluate`` on the same model and images, which gives
the scores alone: the pass that keeps the outputs must not make the run's end slower.

Goal of the issue: matrix and gallery within 1 s of a run's end. Not collected by pytest (``tests/benchmarks``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

TRAIN_IMAGES = 64


def wait(app, condition, limit_s: float = 600.0) -> None:
    """Run the event loop until ``condition()`` (never QTest.qWait: it holds the GIL, ARCHITECTURE.md Traps)."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.perf_counter() + limit_s
    while not condition() and time.perf_counter() < end:
        loop = QEventLoop()
        QTimer.singleShot(5, loop.quit)
        loop.exec()


def make_model(name: str):
    if name == "bundled":
        from neuralstudio.ml.model_metadata import load_model
        from neuralstudio.ui.predict.workspace import bundled_model_path

        return load_model(str(bundled_model_path()))
    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.builder import build_model

    return build_model(load_template(name).graph)


def make_design(name: str, model):
    """The design a run of ``name`` trains: the template, or the bundled model's own architecture (imported)."""
    from neuralstudio.core.templates import load_template
    from neuralstudio.core.training_settings import TrainingSettings
    from neuralstudio.ml.importer import import_model

    design = import_model(model, name="bundled digits") if name == "bundled" else load_template(name)
    design.training = TrainingSettings(epochs=1, batch_size=32, validation_split=0.0, seed=1,
                                       learning_rate=1e-4 if name == "bundled" else 1e-3)
    return design


def direct(model, ds) -> dict[str, float]:
    """Trace, predict and report on a plain thread, timed apart (wall and CPU)."""
    from neuralstudio.ml.confusion import BatchPredictor, report_from_values

    t = time.perf_counter()
    predictor = BatchPredictor(model)
    x = predictor.adapt(ds.x_test)
    predictor.raw(x[:2])
    trace = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    raw = predictor.raw(x)
    predict, predict_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    report = report_from_values(predictor.values(raw), ds.y_test, ds.class_names, images=ds.x_test)
    build = time.perf_counter() - t
    return {"trace": trace, "predict": predict, "predict_cpu": predict_cpu, "report": build, "_report": report}


def keras_evaluate(model, ds, batch_size: int) -> float:
    """Seconds of a plain ``model.evaluate`` over the test split (scores only), on the calling plain thread."""
    from neuralstudio.ml.data import adapt_inputs

    x = adapt_inputs(ds.x_test, tuple(model.input_shape[1:]))
    t = time.perf_counter()
    model.evaluate(x, ds.y_test, batch_size=batch_size, verbose=0)
    return time.perf_counter() - t


class Probe:
    """A 5 ms GUI timer that notes how late it fires; ``longest(since)``: the longest gap that ended after ``since``."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.ticks: list[tuple[float, float]] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._on_tick)

    def start(self) -> None:
        self.ticks.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _on_tick(self) -> None:
        now = time.perf_counter()
        self.ticks.append((now, now - self._last))
        self._last = now

    def longest(self, since: float = 0.0) -> float:
        return max((gap for at, gap in self.ticks if at >= since), default=0.0)


def counting_predictions() -> list[int]:
    """Count the images the Mistakes tab predicts itself (``BatchPredictor.raw``)."""
    from neuralstudio.ml.confusion import BatchPredictor

    predicted = [0]
    raw = BatchPredictor.raw

    def counting(self, x):
        predicted[0] += len(x)
        return raw(self, x)

    BatchPredictor.raw = counting
    return predicted


def new_workspace(app, store):
    from neuralstudio.ui.train.workspace import TrainWorkspace

    ws = TrainWorkspace(runs_store=store)
    ws.resize(1600, 1000)
    ws.show()
    ws.bottom_tabs.setCurrentWidget(ws.mistakes)
    wait(app, lambda: False, 0.3)
    return ws


def close(app, ws) -> None:
    ws.close()
    ws.shutdown()
    ws.deleteLater()
    app.processEvents()


def run_end(app, ws, name: str, model, ds, probe: Probe, predicted: list[int]) -> dict[str, float]:
    """Train from the window, then time from the run's end to the complete report on screen."""
    design = run_on_plain_thread(lambda: make_design(name, model))
    ws.set_design(design)
    ws.set_dataset(ds)
    if name == "bundled":
        ws.set_start_model(model, "the bundled digit model")
        ws.continue_check.setChecked(True)
    ended: list[float] = []
    ws.running_changed.connect(lambda running: ended.append(time.perf_counter()) if not running else None)
    before = predicted[0]
    probe.start()
    if not ws.start():
        raise SystemExit(f"{name}: the run did not start: {ws.last_message}")
    wait(app, lambda: not ws.is_running())
    view = ws.mistakes
    wait(app, lambda: view.report is not None and view.report.complete and ws.mistakes_timing.get("complete_s"))
    wait(app, lambda: not view.filling, 5.0)
    probe.stop()
    result = ws.last_result
    if result is None or result.test_outputs is None:
        raise SystemExit(f"{name}: the run kept no test outputs: {ws.last_message}")
    timing = dict(ws.mistakes_timing)
    evaluate = run_on_plain_thread(lambda: keras_evaluate(result.model, ds, max(design.training.batch_size, 256)))
    # the gaps that ended after the run's end: the first holds the window's end-of-run work (running_changed is
    # emitted at the end of it), the others the report's task and its showing
    run_ended = ended[0] if ended else time.perf_counter()
    return {**timing, "predicted": predicted[0] - before, "stall": probe.longest(run_ended),
            "test_s": result.test_seconds, "evaluate_s": evaluate}


def on_demand(app, ws, name: str, ds, probe: Probe, predicted: list[int]) -> dict[str, float]:
    """Check on test data of a model not traced yet: first and complete report on screen."""
    fresh = run_on_plain_thread(lambda: make_model(name))  # untraced
    view = ws.mistakes
    view.clear()
    before = predicted[0]
    started = time.perf_counter()
    probe.start()
    ws.check_mistakes(fresh, ds, f"{name} on {len(ds.y_test):,} images")
    wait(app, lambda: view.report is not None and view.report.complete and ws.mistakes_timing.get("complete_s"))
    wait(app, lambda: not view.filling, 5.0)
    probe.stop()
    return {**ws.mistakes_timing, "predicted": predicted[0] - before, "stall": probe.longest(started)}


def load_keras_as_the_app_does(app) -> None:
    """Import Keras on a plain thread named as the app's loader (TensorFlow's compute pool takes its name), and what
    a run imports (``trainer.preload``), as the app does in the background."""
    import threading

    from neuralstudio.ui.keras_loader import load_keras

    def load() -> None:
        load_keras()
        from neuralstudio.ml.trainer import preload

        preload()

    t = threading.Thread(target=load, name="neuralstudio-import-keras")
    t.start()
    wait(app, lambda: not t.is_alive())
    t.join()


def run_on_plain_thread(fn):
    from neuralstudio.ml.keras_threads import run_on_python_thread

    return run_on_python_thread(fn, "bench")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--models", default="mnist-cnn,bundled,mlp")
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from neuralstudio.ui.responsiveness import favor_gui_thread, single_threaded_painting

    single_threaded_painting()  # Qt set up as the app sets it up (before the QApplication)
    app = QApplication.instance() or QApplication([])
    favor_gui_thread()  # as the app does at start-up
    load_keras_as_the_app_does(app)
    import keras

    from neuralstudio.core.runs import RunsStore
    from neuralstudio.ml.data import Dataset, load_dataset
    from neuralstudio.ui.garbage_collection import gui_garbage_collector

    # What the main window does once Keras has loaded: the long-lived heap is frozen, so that the full pass the
    # Train window makes at a run's end scans only what the session made since (without it, 0.3-0.8 s here).
    gui_garbage_collector().settle()

    sample = load_dataset("mnist-sample")
    x = np.concatenate([sample.x_test, sample.x_train])[: args.images]
    y = np.concatenate([sample.y_test, sample.y_train])[: args.images]
    ds = Dataset(f"mnist-sample ({len(y):,} test images)", sample.x_train[:TRAIN_IMAGES], sample.y_train[:TRAIN_IMAGES],
                 x, y, list(sample.class_names))
    store = RunsStore(Path(tempfile.mkdtemp()) / "runs")
    predicted = counting_predictions()
    probe = Probe()
    rows, parts = [], []
    loads = [os.getloadavg()[0]]
    for name in args.models.split(","):
        model = run_on_plain_thread(lambda n=name: make_model(n))
        d = run_on_plain_thread(lambda m=model: direct(m, ds))

        ws = new_workspace(app, store)
        view = ws.mistakes
        t = time.perf_counter()
        view.set_report(d["_report"])
        show = time.perf_counter() - t
        t = time.perf_counter()
        app.processEvents()
        paint = time.perf_counter() - t
        view.clear()

        probe.start()
        wait(app, lambda: False, 2.0)  # the probe with nothing to do: what the machine's load alone costs
        probe.stop()
        idle = probe.longest()

        after_run = run_end(app, ws, name, model, ds, probe, predicted)
        demand = on_demand(app, ws, name, ds, probe, predicted)
        close(app, ws)
        loads.append(os.getloadavg()[0])
        rows.append((name, "run's end", after_run, idle))
        rows.append((name, "on demand", demand, idle))
        parts.append((name, model.count_params(), d, show, paint, after_run))

    nan = float("nan")
    print(f"\n{len(y):,} images, {os.cpu_count()} CPU(s), Keras {keras.__version__} on {keras.backend.backend()}, "
          f"load average {min(loads):.1f}-{max(loads):.1f}\n")
    print("| model | path | predicted again | first on screen s | complete s | longest GUI stall ms (idle) "
          "| longest set_report ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, path, t, idle in rows:
        print(f"| {name} | {path} | {t['predicted']:,} | {t.get('first_s', nan):.2f} | {t.get('complete_s', nan):.2f} "
              f"| {t['stall'] * 1000:.0f} ({idle * 1000:.0f}) | {t.get('show_s', nan) * 1000:.0f} |")
    print("\n| model | params | trace s | predict s (CPU s) | report s | show s + paint s "
          "| run's test pass s (plain evaluate s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, params, d, show, paint, after_run in parts:
        print(f"| {name} | {params:,} | {d['trace']:.2f} | {d['predict']:.2f} ({d['predict_cpu']:.2f}) "
              f"| {d['report']:.3f} | {show:.3f} + {paint:.3f} "
              f"| {after_run['test_s']:.2f} ({after_run['evaluate_s']:.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
