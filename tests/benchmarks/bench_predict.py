"""Benchmark of the Predict workspace: model time, mouse-move -> probabilities latency, drawn-digit accuracy.

Run (from the repository root, offscreen)::

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_predict.py

Compares in the same run: the workspace's :class:`Predictor` (one traced graph
function) against plain Keras ``model.predict``, ``model.predict_on_batch`` and
a direct ``model(x)`` call, for one image with the bundled model.  Then draws
synthetic digits with real mouse events on a shown PredictWorkspace and times
each mouse move until the new probabilities are painted (goal: p95 <= 16 ms),
and prints the bundled model's accuracy on the synthetic drawn digits per digit
(goal: >= 95% overall).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ui"))

import numpy as np  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


def time_calls(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def wait_for_prediction(app, ws, before: int, limit: float = 5.0) -> None:
    """Run the event loop until the workspace has shown a new prediction (or ``limit`` seconds pass)."""
    end = time.perf_counter() + limit
    while ws.prediction_count == before and time.perf_counter() < end:  # the 0-ms timer fires in the loop
        app.processEvents()


def moves(stroke: list[tuple[float, float]], limit: int | None = None) -> list:
    """The stroke's points as integer mouse positions, without repeats (a mouse reports only real moves)."""
    from PySide6.QtCore import QPoint

    pts: list = []
    for a, b in stroke:
        p = QPoint(round(a), round(b))
        if not pts or p != pts[-1]:
            pts.append(p)
    return pts[:limit] if limit else pts


def main() -> int:
    from digit_strokes import drawings, evaluate_on_canvas
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from neuralstudio.ml.inference import Predictor
    from neuralstudio.ml.model_files import load_keras_model
    from neuralstudio.ui.predict.workspace import bundled_model_path
    from neuralstudio.ui.responsiveness import single_threaded_painting

    single_threaded_painting()  # Qt set up as the app sets it up
    app = QApplication.instance() or QApplication([])
    model = load_keras_model(bundled_model_path())
    predictor = Predictor(model)
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    x4 = x[..., None]
    model.predict(x4, verbose=0)
    model.predict_on_batch(x4)
    model(x4, training=False)

    rows = [
        ("Predictor.predict_batch (ours)", time_calls(lambda: predictor.predict_batch(x), 300)),
        ("model.predict_on_batch", time_calls(lambda: model.predict_on_batch(x4), 300)),
        ("model(x, training=False)", time_calls(lambda: model(x4, training=False), 300)),
        ("model.predict (plain Keras)", time_calls(lambda: model.predict(x4, verbose=0), 40)),
    ]
    print(f"\nModel time for one 28x28 image, bundled model ({model.count_params():,} params), CPU")
    print(f"{'method':<34}{'p50 ms':>9}{'p95 ms':>9}{'vs ours (p50)':>15}")
    ours = pct(rows[0][1], 50)
    for name, samples in rows:
        print(f"{name:<34}{pct(samples, 50):>9.3f}{pct(samples, 95):>9.3f}{pct(samples, 50) / ours:>14.1f}x")

    # Mouse move -> probabilities on screen, through a shown workspace.
    from neuralstudio.ui.predict.workspace import PredictWorkspace

    ws = PredictWorkspace(load_bundled=False)
    ws.resize(900, 520)
    ws.show()
    ws.set_model(model, "bundled", copy=True)
    end = time.perf_counter() + 120
    while ws.predictor is None and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)
    canvas = ws.canvas
    latencies: list[float] = []
    prep_times: list[float] = []
    for d in drawings(per_digit=3, seed=5):
        canvas.clear()
        app.processEvents()
        for stroke in d.strokes:
            pts = moves(stroke)
            QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
            app.processEvents()
            for p in pts[1:]:
                before = ws.prediction_count
                t0 = time.perf_counter()
                QTest.mouseMove(canvas, p)
                wait_for_prediction(app, ws, before)
                app.processEvents()  # the chart, label and preview repaint
                latencies.append(time.perf_counter() - t0)
            QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])
            app.processEvents()
        from neuralstudio.ml.preprocess import prepare_digit

        img = canvas.image_array()
        prep_times += time_calls(lambda img=img: prepare_digit(img), 5)
    # Same path with plain Keras model.predict instead of the fast path, for comparison.
    slow: list[float] = []
    from neuralstudio.ml.inference import Prediction

    class KerasPredict:
        """What the workspace would do with plain ``model.predict`` per move (docs/ARCHITECTURE.md, "Traps": never)."""

        def predict(self, im: np.ndarray) -> Prediction:
            probs = model.predict(im[None, ..., None], verbose=0)[0]
            return Prediction(values=probs, index=int(probs.argmax()), score=float(probs.max()))

    keras_predict = KerasPredict()
    fast = ws.predictor
    ws.predictor = keras_predict
    for d in drawings(per_digit=1, seed=6)[:3]:
        canvas.clear()
        stroke = d.strokes[0]
        pts = moves(stroke, 30)
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
        for p in pts[1:]:
            before = ws.prediction_count
            t0 = time.perf_counter()
            QTest.mouseMove(canvas, p)
            wait_for_prediction(app, ws, before)
            app.processEvents()
            slow.append(time.perf_counter() - t0)
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])
    ws.predictor = fast
    print(f"\nMouse move -> probabilities on screen ({len(latencies)} moves, goal p95 <= 16 ms)")
    print(f"{'path':<34}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, samples in (("workspace (Predictor)", latencies), ("same, with model.predict", slow)):
        print(f"{name:<34}{pct(samples, 50):>9.2f}{pct(samples, 95):>9.2f}{pct(samples, 100):>9.2f}")
    print(f"{'  of which prepare_digit':<34}{pct(prep_times, 50):>9.2f}{pct(prep_times, 95):>9.2f}")
    ws.shutdown()
    ws.close()

    result = evaluate_on_canvas(model, per_digit=24)
    print(f"\nSynthetic hand-drawn digits (real mouse events on the canvas), bundled model: "
          f"{result['accuracy']:.1%} of {result['total']} (goal >= 95%)")
    print("digit  " + "  ".join(f"{k:>4}" for k in result["per_digit"]))
    print("acc    " + "  ".join(f"{v:>4.0%}" for v in result["per_digit"].values()))
    if result["mistakes"]:
        print("mistakes:\n  " + "\n  ".join(result["mistakes"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
