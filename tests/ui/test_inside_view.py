""""Show what the network sees": the inside view of the Predict workspace, driven with real mouse strokes."""

import numpy as np
import pytest
from digit_strokes import draw_on_canvas, make_drawing
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest

from neuralstudio.ui.predict.workspace import SHOW_INSIDE_KEY, PredictWorkspace

LOAD_MS = 90_000


def seven():
    return make_drawing(7, "plain", 280, rng=np.random.default_rng(0), height=0.7, aspect=0.65, cx=0.5, cy=0.5,
                        slant=0.0, width_factor=1.0, wobble=0.0)


def probe_ready(ws):
    return ws.inside.probe is not None and ws.inside.probe.model is getattr(ws.predictor, "model", None)


@pytest.fixture
def ws(qtbot):
    w = PredictWorkspace()
    qtbot.addWidget(w)
    w.resize(1600, 1000)
    w.show()
    qtbot.waitUntil(lambda: w.predictor is not None or bool(w.statusLabel.property("isError")), timeout=LOAD_MS)
    assert w.predictor is not None, w.statusLabel.text()
    yield w
    w.shutdown()


def test_off_by_default_and_toggled_by_its_button(ws, qtbot):
    assert not ws.insideButton.isChecked() and not ws.inside.isVisible()
    assert ws.insideButton.toolTip() and "Ctrl+Shift+I" in ws.insideButton.toolTip()
    QTest.mouseClick(ws.insideButton, Qt.MouseButton.LeftButton)
    assert ws.inside.isVisible() and QSettings().value(SHOW_INSIDE_KEY, type=bool)
    qtbot.waitUntil(lambda: probe_ready(ws), timeout=LOAD_MS)
    ws.activateWindow()  # a window shortcut reaches an active window only
    qtbot.waitUntil(ws.isActiveWindow, timeout=3000)
    qtbot.keyClick(ws, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: not ws.insideButton.isChecked(), timeout=3000)  # a button's shortcut clicks it animated
    assert not ws.inside.isVisible()
    assert not QSettings().value(SHOW_INSIDE_KEY, type=bool)


def test_bundled_model_feature_maps_and_saliency_follow_the_pen(ws, qtbot):
    ws.insideButton.click()
    qtbot.waitUntil(lambda: probe_ready(ws), timeout=LOAD_MS)
    view = ws.inside
    assert view.noteLabel.text() == ""  # every view applies to the bundled model
    assert view.mapsCaption.isVisibleTo(view) and view.saliencyBox.isVisibleTo(view)
    assert view.filtersBox.isVisibleTo(view) and view.denseBox.isVisibleTo(view)
    assert "conv_1a" in view.filtersCaption.text() and not view.filtersImage.pixmap().isNull()

    moves, during = [0], []

    def after_move():  # every 15th move, the pen pauses until the views of the stroke so far are shown
        moves[0] += 1
        if moves[0] % 15 == 0:
            before = view.update_count
            qtbot.waitUntil(lambda: view.update_count > before and view.up_to_date, timeout=10_000)
            during.append((view.maps_count, view.saliency_shown, not ws.canvas.strokes))  # one stroke: not ended

    draw_on_canvas(ws.canvas, seven(), after_move=after_move)
    qtbot.waitUntil(lambda: ws.predictionLabel.property("predictedClass") == 7, timeout=5000)
    qtbot.waitUntil(lambda: view.feature_maps_shown == 4 and view.saliency_shown and view.up_to_date, timeout=10_000)
    # The maps and the saliency were refreshed while the pen was down, not only at the end.
    assert len(during) >= 3 and all(shown and pen_down for _, shown, pen_down in during)
    assert len({count for count, _, _ in during}) == len(during)
    import keras

    # The maps and the saliency of every move came from one compiled call, traced once (by the warm-up), not per move
    assert view.probe.traces == (0 if keras.backend.backend() == "torch" else 1)

    assert "“7”" in view.saliencyCaption.text() and "gradient × input" in view.saliencyCaption.text()
    for title, image in view.map_rows:
        assert "of 32 maps" in title.text() or "of 64 maps" in title.text()
        assert "more" in title.text() and not image.pixmap().isNull()
    look = view.last_look
    x = ws.last_input
    assert look.saliency.shape == (28, 28) and look.saliency.max() == pytest.approx(1.0)
    assert not look.saliency[x == 0].any()  # only where there is ink
    # The overlay is the drawing: hot where the saliency is high, dark where there is no ink.
    img = view.saliencyImage.pixmap().toImage()
    k = img.width() / 28
    r, c = np.unravel_index(np.argmax(look.saliency), (28, 28))
    hot = img.pixelColor(int((c + 0.5) * k), int((r + 0.5) * k))
    cold = img.pixelColor(int(0.5 * k), int(0.5 * k))
    assert hot.red() > 200 and cold.red() < 10
    bars = view.dense_bars[0]
    assert "dense_128" in bars.title.text() and bars.values is not None and bars.values.shape == (128,)
    dense = [a for a in view.last_activations if a.name == "dense_128"][0]
    np.testing.assert_allclose(bars.values, dense.vector())

    QTest.mouseClick(ws.clearButton, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.saliency_shown and view.feature_maps_shown == 0, timeout=3000)
    assert bars.values is None and view.saliencyImage.text()


def test_a_dense_only_model_explains_why_there_are_no_feature_maps(ws, qtbot):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((784,))
    hidden = keras.layers.Dense(30, activation="sigmoid", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(10, activation="sigmoid", name="digit")(hidden))
    ws.insideButton.click()
    ws.set_model(model, "nielsen")
    qtbot.waitUntil(lambda: ws.source_label == "nielsen" and probe_ready(ws), timeout=LOAD_MS)
    view = ws.inside
    assert "no convolution layers, so there are no feature maps" in view.noteLabel.text()
    assert view.noteLabel.isVisibleTo(view)
    assert not view.mapsCaption.isVisibleTo(view) and not view.filtersBox.isVisibleTo(view)
    assert view.denseBox.isVisibleTo(view) and view.saliencyBox.isVisibleTo(view)
    draw_on_canvas(ws.canvas, seven())
    qtbot.waitUntil(lambda: view.saliency_shown and view.dense_bars[0].values is not None, timeout=10_000)
    assert view.dense_bars[0].values.shape == (30,) and view.feature_maps_shown == 0


def test_usable_at_1024x700(ws, qtbot):
    ws.resize(1024, 700)
    ws.insideButton.click()
    qtbot.waitUntil(lambda: probe_ready(ws), timeout=LOAD_MS)
    draw_on_canvas(ws.canvas, seven())
    qtbot.waitUntil(lambda: ws.inside.saliency_shown, timeout=10_000)
    qtbot.wait(50)
    view = ws.inside
    assert ws.width() == 1024 and ws.chart.width() >= 260 and view.width() >= 240
    # Nothing is cut off on the right: the panel's content fits the width it is given (it scrolls down only).
    assert view.scroll.widget().minimumSizeHint().width() <= view.scroll.viewport().width()
    for _title, image in view.map_rows:
        assert image.pixmap().width() / image.pixmap().devicePixelRatio() <= view.scroll.viewport().width()
