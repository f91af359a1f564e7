"""The Predict workspace driven like a user: real mouse strokes, buttons, files, drops."""

import numpy as np
import pytest
from digit_strokes import draw_on_canvas, make_drawing
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from neuralstudio.ui.predict.workspace import BUNDLED_LABEL, PredictWorkspace, bundled_model_path

LOAD_MS = 90_000


def drawing(digit, style, **kw):
    opts = {"height": 0.7, "aspect": 0.65, "cx": 0.5, "cy": 0.5, "slant": 0.0, "width_factor": 1.0, "wobble": 0.0}
    opts.update(kw)
    return make_drawing(digit, style, 280, rng=np.random.default_rng(0), **opts)


@pytest.fixture
def ws(qtbot):
    w = PredictWorkspace()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.predictor is not None or bool(w.statusLabel.property("isError")), timeout=LOAD_MS)
    assert w.predictor is not None, w.statusLabel.text()
    yield w
    w.shutdown()


def predicted(w):
    return w.predictionLabel.property("predictedClass")


def test_bundled_model_loads_lazily_with_a_message(qtbot):
    assert bundled_model_path().exists(), "models/digits.keras is missing: run python tools/train_bundled_model.py"
    w = PredictWorkspace()
    qtbot.addWidget(w)
    assert w.predictor is None and predicted(w) == -1  # nothing loaded before it is shown
    w.show()
    qtbot.waitUntil(lambda: "loading model" in w.statusLabel.text(), timeout=2000)
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=LOAD_MS)
    assert w.modelLabel.text() == f"Model: {BUNDLED_LABEL}" and w.statusLabel.text() == ""
    w.shutdown()


@pytest.mark.parametrize(("digit", "style", "place"), [
    (7, "plain", {}),
    (1, "flag", {"height": 0.35, "cx": 0.2, "cy": 0.25}),  # small, in the top-left corner
    (3, "round", {"height": 0.45, "cx": 0.7, "cy": 0.72, "width_factor": 1.5}),  # bottom-right, thick pen
    (4, "open", {"slant": 0.25}),
    (0, "oval", {"width_factor": 0.7}),
])
def test_drawn_digit_is_predicted_with_preview_and_chart(ws, qtbot, digit, style, place):
    draw_on_canvas(ws.canvas, drawing(digit, style, **place))
    qtbot.waitUntil(lambda: predicted(ws) == digit, timeout=3000)
    assert ws.chart.highlighted == digit
    assert ws.predictionLabel.text().startswith(str(digit))
    assert "sure" in ws.confidenceLabel.text()
    x = ws.last_input
    assert x.shape == (28, 28) and x.max() == pytest.approx(1.0)
    rows = np.flatnonzero(x.max(axis=1) > 0.05)
    # prepared like MNIST whatever the size drawn: the ink in the 20 px box (its anti-aliased edge may
    # reach one more row: the strokes are drawn again at 28x28, not scaled from a raster)
    assert 20 <= rows[-1] - rows[0] + 1 <= 21
    preview = ws.preview.pixmap().toImage()
    k = preview.width() / 28  # 5 device-independent px per input pixel, times the screen's pixel ratio
    assert preview.width() == round(140 * ws.preview.devicePixelRatioF()) and k >= 5
    shown = np.array([[preview.pixelColor(int((c + 0.5) * k), int((r + 0.5) * k)).red() for c in range(28)]
                      for r in range(28)])
    np.testing.assert_allclose(shown / 255.0, x, atol=0.01)  # the preview is the network's input


def test_live_updates_while_drawing(ws, qapp):
    counts, classes = [], []
    d = drawing(7, "plain")  # one stroke: everything below happens before the pen is released

    def after_move():
        qapp.processEvents()
        counts.append(ws.prediction_count)
        classes.append(predicted(ws))

    draw_on_canvas(ws.canvas, d, after_move=after_move)
    assert len(set(counts)) > len(counts) // 2  # probabilities were updated during the stroke, not only at the end
    assert classes[0] != -1 and classes[-1] == 7  # and they are real predictions of the stroke so far


def test_undo_and_clear(ws, qtbot):
    draw_on_canvas(ws.canvas, drawing(7, "bar"))  # two strokes
    qtbot.waitUntil(lambda: predicted(ws) == 7, timeout=3000)
    with_bar = ws.last_input.copy()
    QTest.mouseClick(ws.undoButton, Qt.MouseButton.LeftButton)
    assert len(ws.canvas.strokes) == 1
    qtbot.waitUntil(lambda: not np.array_equal(ws.last_input, with_bar), timeout=3000)
    assert predicted(ws) == 7  # a 7 without its bar is still a 7
    QTest.mouseClick(ws.clearButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: predicted(ws) == -1, timeout=3000)
    assert ws.canvas.is_empty() and not ws.last_input.any() and ws.chart.highlighted == -1
    assert ws.predictionLabel.text() == "–" and ws.canvas.image_array().max() == 0
    assert not ws.canvas.undo_stroke()  # nothing left to undo


def test_right_button_and_eraser_tool_erase(ws, qtbot):
    c = ws.canvas
    draw_on_canvas(c, drawing(1, "plain"))
    ink = int(c.image_array().sum())
    assert ink > 0
    # Right-drag along the same line erases it.
    QTest.mousePress(c, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, QPoint(140, 30))
    for y in range(30, 260, 5):
        QTest.mouseMove(c, QPoint(140, y))
    QTest.mouseRelease(c, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, QPoint(140, 260))
    assert c.image_array().sum() < ink * 0.05
    qtbot.waitUntil(lambda: predicted(ws) == -1, timeout=3000)
    # The eraser tool makes the left button erase.
    QTest.mouseClick(ws.clearButton, Qt.MouseButton.LeftButton)
    draw_on_canvas(c, drawing(1, "plain"))
    ws.eraserButton.click()
    assert c.eraser
    draw_on_canvas(c, drawing(1, "plain"))
    assert c.image_array().sum() < ink * 0.05


def test_canvas_matches_device_pixels_and_pen(ws):
    c = ws.canvas
    img = c.image_array()
    dpr = c.devicePixelRatioF()
    assert img.shape == (round(c.height() * dpr), round(c.width() * dpr))
    assert c.pen_width == pytest.approx(c.width() / 14)
    # Anti-aliased strokes: grey levels at the edges, not just black and white.
    draw_on_canvas(c, drawing(0, "oval"))
    assert len(np.unique(c.image_array())) > 20


def test_open_image_file_and_drop(ws, qtbot, tmp_path):
    draw_on_canvas(ws.canvas, drawing(2, "round"))
    qtbot.waitUntil(lambda: predicted(ws) == 2, timeout=3000)
    paper = 255 - ws.canvas.image_array()  # dark ink on white paper, like a scan
    Image.fromarray(paper).save(tmp_path / "two.png")
    QTest.mouseClick(ws.clearButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: predicted(ws) == -1, timeout=3000)
    assert ws.open_image(tmp_path / "two.png")
    qtbot.waitUntil(lambda: predicted(ws) == 2, timeout=3000)
    assert "two.png" in ws.statusLabel.text()

    QTest.mouseClick(ws.clearButton, Qt.MouseButton.LeftButton)  # the clear removes the picture too
    assert ws.canvas.is_empty()
    draw_on_canvas(ws.canvas, drawing(5, "one-stroke"))
    Image.fromarray(ws.canvas.image_array()).save(tmp_path / "five.jpg")
    QTest.mouseClick(ws.clearButton, Qt.MouseButton.LeftButton)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "five.jpg"))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    ws.dropEvent(drop)
    qtbot.waitUntil(lambda: predicted(ws) == 5, timeout=3000)

    (tmp_path / "broken.png").write_bytes(b"garbage")
    assert not ws.open_image(tmp_path / "broken.png")
    assert ws.statusLabel.property("isError") and "PNG or JPEG" in ws.statusLabel.text()
    assert predicted(ws) == 5  # the previous picture stays


def test_bad_model_file_gives_a_message_and_keeps_the_model(ws, qtbot, tmp_path):
    before = ws.predictor
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"this is not a keras file")
    ws.load_model_file(bad)
    qtbot.waitUntil(lambda: not ws.is_loading, timeout=LOAD_MS)
    text = ws.statusLabel.text()
    assert ws.statusLabel.property("isError") and "broken.keras" in text and "Traceback" not in text
    assert ws.predictor is before and f"Still using: {BUNDLED_LABEL}" in text
    draw_on_canvas(ws.canvas, drawing(7, "plain"))
    qtbot.waitUntil(lambda: predicted(ws) == 7, timeout=3000)  # still works


def test_incompatible_model_is_explained(ws, qtbot, tmp_path):
    import keras

    inp = keras.Input((32, 32, 3))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp)))
    model.save(tmp_path / "colour.keras")
    errors = []
    ws.model_failed.connect(errors.append)
    ws.load_model_file(tmp_path / "colour.keras")
    qtbot.waitUntil(lambda: bool(errors), timeout=LOAD_MS)
    assert "28x28" in errors[0] and "(32, 32, 3)" in errors[0]
    assert "colour.keras" in ws.statusLabel.text() and ws.statusLabel.property("isError")


def test_set_model_uses_a_copy(ws, qtbot):
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((784,))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(inp))
    model.set_weights([np.zeros((784, 10), np.float32), np.eye(10, dtype=np.float32)[4] * 5])  # always "4"
    ws.set_model(model, "trained: run 1")
    qtbot.waitUntil(lambda: ws.source_label == "trained: run 1", timeout=LOAD_MS)
    assert ws.predictor.model is not model
    draw_on_canvas(ws.canvas, drawing(7, "plain"))
    qtbot.waitUntil(lambda: predicted(ws) == 4, timeout=3000)
    model.set_weights([np.zeros((784, 10), np.float32), np.eye(10, dtype=np.float32)[9] * 5])  # training goes on
    ws.canvas.undo_stroke()
    draw_on_canvas(ws.canvas, drawing(7, "plain"))
    qtbot.wait(50)
    assert predicted(ws) == 4  # the copy did not change


def test_hidpi_canvas_draws_at_device_resolution(tmp_path):
    """At a 2x screen scale the canvas paints 560x560 device pixels and the network input is the same digit."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys, numpy as np\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from digit_strokes import draw_on_canvas, make_drawing\n"
        "from neuralstudio.ml.preprocess import prepare_digit\n"
        "from neuralstudio.ui.predict.canvas import DigitCanvas\n"
        "app = QApplication([])\n"
        "c = DigitCanvas(); c.show(); app.processEvents()\n"
        "d = make_drawing(7, 'plain', 280, height=0.7, aspect=0.65, cx=0.5, cy=0.5, slant=0.0, width_factor=1.0,"
        " wobble=0.0, rng=np.random.default_rng(0))\n"
        "draw_on_canvas(c, d)\n"
        "img = c.image_array()\n"
        "np.save(sys.argv[1], prepare_digit(img))\n"
        "print(c.devicePixelRatioF(), img.shape)\n"
    )
    here = Path(__file__).parent
    results = {}
    for scale in ("1", "2"):
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR=scale,
                   PYTHONPATH=os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"x{scale}.npy")], env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout.split()
        results[scale] = (out, np.load(tmp_path / f"x{scale}.npy"))
    assert results["2"][0][0] == "2.0" and results["2"][0][1:] == ["(560,", "560)"]
    assert results["1"][0][1:] == ["(280,", "280)"]
    x1, x2 = results["1"][1], results["2"][1]
    assert np.corrcoef(x1.ravel(), x2.ravel())[0, 1] > 0.95


def test_not_sure_when_the_top_probability_is_low(ws, qtbot):
    import keras

    inp = keras.Input((28, 28))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp)))
    bias = np.full(10, 0.0, np.float32)
    bias[3] = 0.5  # digit 3 on top with about 15%
    model.set_weights([np.zeros((784, 10), np.float32), bias])
    ws.set_model(model, "undecided")
    qtbot.waitUntil(lambda: ws.source_label == "undecided", timeout=LOAD_MS)
    draw_on_canvas(ws.canvas, drawing(7, "plain"))
    qtbot.waitUntil(lambda: predicted(ws) == 3, timeout=3000)
    assert ws.predictionLabel.text() == "3?" and ws.confidenceLabel.text().startswith("not sure")
    assert ws.chart.highlighted == 3
