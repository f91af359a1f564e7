"""Soak test of the Train window: 5,000 plot refreshes, then 10 short runs in a row in one window.

Reports the process's resident memory before, after the refreshes and after every run, and
checks that nothing crashed (docs/ARCHITECTURE.md, "Traps": PySide6 6.12.0 + pyqtgraph 0.14 aborted within a few
hundred repaints; this is the long-repaint check) and that no training thread is left running.

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/soak_train_window.py [--repaints 5000] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repaints", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--train-size", type=int, default=1000)
    args = ap.parse_args(argv)
    os.environ.setdefault("NEURALSTUDIO_HOME", tempfile.mkdtemp(prefix="ns-soak-"))

    import numpy as np
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from neuralstudio.core.design import Design
    from neuralstudio.core.graph import Graph
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.core.training_settings import TrainingSettings
    from neuralstudio.ml.data import Dataset, load_dataset
    from neuralstudio.ui.responsiveness import single_threaded_painting
    from neuralstudio.ui.train.workspace import TrainWorkspace, running_training_threads

    single_threaded_painting()  # Qt set up as the app sets it up
    app = QApplication.instance() or QApplication(sys.argv)
    ws = TrainWorkspace(runs_store=RunsStore(tempfile.mkdtemp(prefix="ns-soak-runs-")))
    ws.resize(1280, 800)
    ws.show()
    app.processEvents()
    rows = [("start", rss_mb(), 0.0)]

    # 1. refresh + repaint the plots many times
    rng = np.random.default_rng(0)
    plots = ws.plots
    plots.reset(epochs=max(1, args.repaints // 500))
    t0 = time.perf_counter()
    for i in range(args.repaints):
        plots.add_batches([i / 500], [float(rng.random())], [float(rng.random())])
        if i % 500 == 499:
            plots.add_epoch((i + 1) / 500, {"loss": 0.5, "val_loss": 0.6, "accuracy": 0.8, "val_accuracy": 0.7})
        plots.refresh()
        plots.loss_widget.repaint()
        plots.acc_widget.repaint()
        if i % 50 == 0:
            app.processEvents()
    rows.append((f"{args.repaints} refreshes", rss_mb(), time.perf_counter() - t0))

    # 2. short runs in a row
    full = load_dataset("mnist-sample")
    n = args.train_size
    data = Dataset(name=f"mnist-sample ({n})", x_train=full.x_train[:n], y_train=full.y_train[:n],
                   x_test=full.x_test[:200], y_test=full.y_test[:200], class_names=full.class_names)
    ws.set_dataset(data)
    g = Graph()
    a = g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}, name="image")
    b = g.add_node("Flatten", {}, name="flat")
    c = g.add_node("Dense", {"units": 32, "activation": "relu"}, name="hidden")
    d = g.add_node("Dense", {"units": 10, "activation": "softmax"}, name="digit")
    g.connect(a.id, b.id)
    g.connect(b.id, c.id)
    g.connect(c.id, d.id)
    design = Design(graph=g, training=TrainingSettings(epochs=2, batch_size=32), name="soak")
    ws.set_design(design)
    statuses = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        loop = QEventLoop()
        ws.running_changed.connect(lambda running, loop=loop: None if running else loop.quit())
        QTimer.singleShot(600_000, loop.quit)
        QTest.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
        if ws.is_running():
            loop.exec()
        ws.running_changed.disconnect()
        statuses.append(ws.last_result.status if ws.last_result else ws.last_message)
        rows.append((f"run {i + 1} ({statuses[-1]})", rss_mb(), time.perf_counter() - t0))
    left = running_training_threads()
    ws.request_close()
    print(f"{'step':<24} {'RSS MB':>8} {'growth MB':>10} {'seconds':>8}")
    base = rows[0][1]
    for name, mb, secs in rows:
        print(f"{name:<24} {mb:>8.1f} {mb - base:>+10.1f} {secs:>8.1f}")
    run_rows = [r for r in rows if r[0].startswith("run")]
    if len(run_rows) >= 2:
        per_run = (run_rows[-1][1] - run_rows[0][1]) / (len(run_rows) - 1)
        print(f"\nmemory growth per run after the first: {per_run:+.1f} MB")
    ok = all(s == "finished" for s in statuses) and left == 0
    print("soak:", "ok" if ok else f"FAILED (statuses {statuses}, threads left {left})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
