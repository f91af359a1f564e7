"""The Mistakes tab: the heat map and its gallery driven with real clicks, and the whole way from a run to Predict."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from support import image_mlp, mnist_slice
from window_helpers import close_workspace

pytest.importorskip("pytestqt")

from neuralstudio.core.runs import RunsStore  # noqa: E402
from neuralstudio.ml.confusion import report_from_values  # noqa: E402
from neuralstudio.ui.train.confusion_view import PAGE, ConfusionView, cell_colors  # noqa: E402

RUN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def data():
    return mnist_slice(600, 200)


def _report(data, *, examples_total=None):
    """A report of made-up outputs on the slice's test images: every 9 with an even index is called 4."""
    y = data.y_test
    n = len(y)
    pred = y.copy()
    nines = np.flatnonzero(y == 9)
    pred[nines[::2]] = 4
    conf = np.linspace(0.55, 0.95, n)
    v = np.full((n, 10), 0.0)
    v[np.arange(n), pred] = conf
    v[np.arange(n), (pred + 1) % 10] = 1 - conf
    return report_from_values(v, y, data.class_names, images=data.x_test, examples_total=examples_total)


def _click_cell(qtbot, view: ConfusionView, true: int, predicted: int) -> None:
    at = view.heatmap.mapFromScene(view.cell_center(true, predicted))
    qtbot.mouseClick(view.heatmap.viewport(), Qt.MouseButton.LeftButton, pos=at)


def _click_thumbnail(qtbot, view: ConfusionView, row: int) -> None:
    item = view.gallery.item(row)
    view.gallery.scrollToItem(item)
    qtbot.mouseClick(view.gallery.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.gallery.visualItemRect(item).center())


@pytest.fixture
def view(qtbot):
    v = ConfusionView()
    qtbot.addWidget(v)
    v.resize(1200, 520)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_clicking_a_cell_shows_its_images_surest_first_and_a_thumbnail_is_chosen(qtbot, view, data):
    report = _report(data)
    view.set_report(report)
    qtbot.waitUntil(lambda: not view.filling)
    # the worst pair is named, outlined and shown at once
    nines = int((data.y_test == 9).sum())
    called = (nines + 1) // 2
    assert view.sentence_label.text() == (f"The network confuses 4 with 9 most: {called} of the {nines} nines "
                                          "were called 4.")
    assert view.selected == view.shown == (9, 4)
    assert len(view.thumbnails()) == called
    # a click on the cell (3, 3): its images, the surest first, each with its top 3
    _click_cell(qtbot, view, 3, 3)
    assert view.shown == (3, 3)
    qtbot.waitUntil(lambda: not view.filling)
    expected = report.cell(3, 3)
    shown = [item.data(Qt.ItemDataRole.UserRole) for item in view.thumbnails()]
    assert shown == expected[:PAGE].tolist() and len(shown) == int((data.y_test == 3).sum())
    conf = report.confidence[shown]
    assert list(conf) == sorted(conf, reverse=True)
    first = view.gallery.item(0)
    assert len(first.text().splitlines()) == 3 and first.text().splitlines()[0].startswith("3 ")
    assert "true 3" in first.toolTip() and not first.icon().isNull()
    assert first.icon().availableSizes()[0].width() == 56
    # a click on a thumbnail: the image as the network saw it
    with qtbot.waitSignal(view.example_chosen, timeout=2000) as chosen:
        _click_thumbnail(qtbot, view, 1)
    image = chosen.args[0]
    assert image.shape == (28, 28) and image.dtype == np.float32
    np.testing.assert_array_equal(image, data.x_test[shown[1]])


def test_keyboard_tooltips_partial_reports_and_more(qtbot, view, data):
    view.set_report(_report(data, examples_total=500))  # a check still going
    assert "200 of 500 images so far" in view.status_label.text()
    assert "(so far: 200 of 500 checked)" in view.sentence_label.text()
    view.set_report(_report(data))
    assert "right" in view.status_label.text()
    view.heatmap.setFocus()
    qtbot.keyClick(view.heatmap, Qt.Key.Key_Up)  # from (9, 4) to (8, 4): outlined, not shown yet
    assert view.selected == (8, 4) and view.shown == (9, 4)
    assert view.heatmap.toolTip().startswith("True 8, called 4:")
    qtbot.keyClick(view.heatmap, Qt.Key.Key_Left)
    qtbot.keyClick(view.heatmap, Qt.Key.Key_Return)
    assert view.shown == (8, 3) and view.gallery_label.text().startswith("No image of 8 was called 3")
    # the learner's cell stays chosen when a new report of the same table comes
    view.set_report(_report(data))
    assert view.shown == (8, 3)
    # hovering names the cell; the diagonal and the mistakes have their own colours
    view._on_scene_moved(view.cell_center(2, 2))
    assert view.heatmap.toolTip().startswith("2 recognised as 2:")
    colors = cell_colors(_report(data).counts)
    assert colors[2, 2, 1] > colors[2, 2, 0] and colors[9, 4, 0] > colors[9, 4, 1]  # green, red
    # a big cell shows a page at a time
    many = np.zeros(PAGE + 10, dtype=np.int64)
    big = report_from_values(np.eye(10)[many], many, data.class_names,
                             images=np.zeros((len(many), 28, 28), np.float32))
    view.set_report(big)
    view.show_cell(0, 0)
    qtbot.waitUntil(lambda: not view.filling)
    assert len(view.thumbnails()) == PAGE and view.more_button.isVisible()
    qtbot.mouseClick(view.more_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.filling)
    assert len(view.thumbnails()) == PAGE + 10 and not view.more_button.isVisible()


def test_check_on_test_data_without_a_model_says_so(qtbot, tmp_path):
    from neuralstudio.ui.train.workspace import TrainWorkspace

    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    try:
        ws.bottom_tabs.setCurrentWidget(ws.mistakes)
        qtbot.mouseClick(ws.mistakes.check_button, Qt.MouseButton.LeftButton)
        assert "no model to check yet" in ws.mistakes.status_label.text()
    finally:
        close_workspace(ws)


def _count_predictions(monkeypatch) -> list[int]:
    """Count the images the Mistakes tab predicts itself (``BatchPredictor.raw``), whoever calls it."""
    from neuralstudio.ml.confusion import BatchPredictor

    predicted = [0]
    raw = BatchPredictor.raw

    def counting(self, x):
        predicted[0] += len(x)
        return raw(self, x)

    monkeypatch.setattr(BatchPredictor, "raw", counting)
    return predicted


def test_after_a_run_the_mistakes_tab_fills_and_an_image_opens_in_predict(ready_window, qtbot, data, monkeypatch):
    predicted = _count_predictions(monkeypatch)
    w = ready_window
    w.editor.set_design(image_mlp("mistakes", hidden=16, epochs=1), None)
    ws = w.train_page
    ws.set_dataset(data)
    w.tabs.setCurrentWidget(w._train_host)
    ws.bottom_tabs.setCurrentWidget(ws.mistakes)
    assert ws.start()
    qtbot.waitUntil(lambda: not ws.is_running(), timeout=RUN_TIMEOUT_MS)
    result = ws.last_result
    assert result is not None and result.status == "finished", ws.last_message
    view = ws.mistakes
    qtbot.waitUntil(lambda: view.report is not None and view.report.complete, timeout=60_000)
    report = view.report
    assert report.examples == 200 and report.counts.sum() == 200
    assert ws.bottom_tabs.tabText(ws.bottom_tabs.indexOf(view)) == f"Mistakes ({report.mistakes:,})"
    assert ws.mistakes_timing["complete_s"] > 0 and view.check_button.isEnabled()
    assert f"run {result.run_id}" in view.status_label.text()
    # made from the outputs of the run's own test pass: nothing predicted again, complete at once
    assert predicted[0] == 0 and ws.mistakes_timing["predict_s"] == 0
    assert ws.mistakes_timing["first_s"] == pytest.approx(ws.mistakes_timing["complete_s"], abs=0.01)  # one report
    np.testing.assert_array_equal(report.y_pred, result.test_outputs.argmax(axis=1))
    assert report.accuracy == pytest.approx(result.test_accuracy, abs=1e-6)
    # the counts are the model's own predictions
    from neuralstudio.ml.keras_threads import run_on_python_thread

    pred = run_on_python_thread(lambda: np.asarray(result.model(data.x_test, training=False)), "test-predict")
    pred = pred.argmax(axis=1)
    np.testing.assert_array_equal(report.y_pred, pred)
    assert report.mistakes > 0 and view.shown is not None
    qtbot.waitUntil(lambda: not view.filling and len(view.thumbnails()) > 0)

    predict = w.predict_page
    qtbot.waitUntil(lambda: predict.predictor is not None and predict.source_label.startswith("trained"),
                    timeout=60_000)
    index = view.thumbnails()[0].data(Qt.ItemDataRole.UserRole)
    before = predict.prediction_count
    _click_thumbnail(qtbot, view, 0)
    assert w.tabs.currentWidget() is w._predict_host
    qtbot.waitUntil(lambda: predict.prediction_count > before and predict.last_values is not None, timeout=10_000)
    np.testing.assert_array_equal(predict.last_input, data.x_test[index])  # the very image, not re-prepared
    assert predict.last_prediction.index == report.y_pred[index]
    assert predict.last_values[report.y_pred[index]] == pytest.approx(report.confidence[index], abs=1e-5)
    # drawing on it goes back to preparing the canvas
    canvas = predict.canvas
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(30, 30))
    assert predict._exact_input is None

    # Check on test data: the current model again, on demand
    w.tabs.setCurrentWidget(w._train_host)
    view.clear()
    qtbot.mouseClick(view.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.report is not None and view.report.complete, timeout=60_000)
    np.testing.assert_array_equal(view.report.counts, report.counts)
    assert predicted[0] == 200  # predicted this time, a slice at a time


def test_a_run_that_kept_no_outputs_has_its_test_images_predicted(qtbot, tmp_path, data, monkeypatch):
    """Outputs too large to keep (here: any): the run is scored by model.evaluate, and the Mistakes tab predicts
    the test split itself, as Check on test data does."""
    from neuralstudio.ml import trainer as trainer_mod
    from neuralstudio.ui.train.workspace import TrainWorkspace

    monkeypatch.setattr(trainer_mod, "KEEP_OUTPUTS_MAX_UNITS", 0)
    predicted = _count_predictions(monkeypatch)
    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    try:
        ws.set_design(image_mlp("no-outputs", hidden=16, epochs=1))
        ws.set_dataset(data)
        ws.bottom_tabs.setCurrentWidget(ws.mistakes)
        ws.show()
        assert ws.start()
        qtbot.waitUntil(lambda: not ws.is_running(), timeout=RUN_TIMEOUT_MS)
        result = ws.last_result
        assert result is not None and result.status == "finished", ws.last_message
        assert result.test_outputs is None and result.test_accuracy is not None
        view = ws.mistakes
        qtbot.waitUntil(lambda: view.report is not None and view.report.complete, timeout=60_000)
        assert predicted[0] == 200 and view.report.examples == 200 and ws.mistakes_timing["predict_s"] > 0
        assert view.report.accuracy == pytest.approx(result.test_accuracy, abs=1e-6)
        qtbot.waitUntil(lambda: view.check_button.isEnabled(), timeout=10_000)
    finally:
        close_workspace(ws)
