"""Benchmark of the Mistakes tab: from a run's end to the confusion matrix and gallery on screen, 10,000 images.

Run (from the repository root, offscreen)::

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_confusion.py [--images N] [--models mnist-cnn,mlp,bundled]

For each model (the mnist-cnn and mlp templates with fresh weights, the bundled digit model: timing does not
depend on what the weights learned) on N images of the bundled MNIST sample (all 10,000 by default: its 8,000
training and 2,000 test images, as one test split), prints a markdown table of

- trace: building the traced prediction function (``ml/confusion.BatchPredictor``), once a model;
- predict: the forward pass over every image, wall and CPU seconds (the part bounded by the model's arithmetic);
- report: building the report from the outputs (counts, per-cell order, top 3), numpy only;
- show: ``ConfusionView.set_report`` on the GUI thread, and the paint after it;
- first / complete: in a Train workspace, from the moment a run's end asks for the check
  (``TrainWorkspace.check_mistakes``) until the first partial matrix and the complete report are on screen;
- longest stall: the longest gap of a 5 ms GUI timer during that check (goal: under 50 ms), and in brackets
  the same probe's longest gap over 2 s with nothing to do (what other programs on the machine cost);
- longest set_report: the longest time the GUI thread spent showing one (partial) report.

Goal of the issue: matrix and gallery within 1 s of a run's end. Not collected by pytest (``tests/benchmarks``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--models", default="mnist-cnn,bundled,mlp")
    args = ap.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.ml.data import Dataset, load_dataset
    from neuralstudio.ml.keras_threads import run_on_python_thread
    from neuralstudio.ui.train.workspace import TrainWorkspace

    sample = load_dataset("mnist-sample")
    x = np.concatenate([sample.x_test, sample.x_train])[: args.images]
    y = np.concatenate([sample.y_test, sample.y_train])[: args.images]
    ds = Dataset(f"mnist-sample ({len(y):,} test images)", sample.x_train[:10], sample.y_train[:10], x, y,
                 list(sample.class_names))
    import tempfile

    store = RunsStore(Path(tempfile.mkdtemp()) / "runs")
    rows = []
    for name in args.models.split(","):
        model = run_on_python_thread(lambda n=name: make_model(n), "bench-build")
        d = run_on_python_thread(lambda m=model: direct(m, ds), "bench-direct")

        ws = TrainWorkspace(runs_store=store)
        ws.resize(1600, 1000)
        ws.show()
        ws.bottom_tabs.setCurrentWidget(ws.mistakes)
        wait(app, lambda: False, 0.3)
        view = ws.mistakes
        t = time.perf_counter()
        view.set_report(d["_report"])
        show = time.perf_counter() - t
        t = time.perf_counter()
        app.processEvents()
        paint = time.perf_counter() - t
        view.clear()

        # the run's end, as TrainWorkspace._finish asks for it, with a stall probe on the GUI thread
        gaps, last = [], [time.perf_counter()]

        def tick(gaps=gaps, last=last) -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        probe = QTimer()
        probe.setInterval(5)
        probe.timeout.connect(tick)
        fresh = run_on_python_thread(lambda n=name: make_model(n), "bench-build")  # untraced, as after a run
        last[0] = time.perf_counter()
        probe.start()
        wait(app, lambda: False, 2.0)  # the same probe with nothing to do: what the machine's load alone costs
        idle = max(gaps) if gaps else 0.0
        gaps.clear()
        ws.check_mistakes(fresh, ds, f"{name} on {len(y):,} images")
        wait(app, lambda v=view: v.report is not None and v.report.complete)
        wait(app, lambda v=view: not v.filling, 5.0)
        probe.stop()
        timing = dict(ws.mistakes_timing)
        ws.close()
        ws.shutdown()
        ws.deleteLater()
        app.processEvents()
        rows.append((name, model.count_params(), d, show, paint, timing, max(gaps) if gaps else 0.0, idle))

    print(f"\n{len(y):,} images, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}\n")
    print("| model | params | trace s | predict s (CPU s) | report s | show s + paint s | first on screen s "
          "| complete s | longest GUI stall ms (idle) | longest set_report ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, params, d, show, paint, timing, stall, idle in rows:
        print(f"| {name} | {params:,} | {d['trace']:.2f} | {d['predict']:.2f} ({d['predict_cpu']:.2f}) "
              f"| {d['report']:.3f} | {show:.3f} + {paint:.3f} | {timing.get('first_s', float('nan')):.2f} "
              f"| {timing.get('complete_s', float('nan')):.2f} | {stall * 1000:.0f} ({idle * 1000:.0f}) "
              f"| {timing.get('show_s', float('nan')) * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
