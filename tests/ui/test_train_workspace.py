"""The Train workspace, driven through its real widgets with real (tiny) training runs."""

from __future__ import annotations

import gc
import math
import os
import sys
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from support import image_mlp, mnist_slice
from window_helpers import close_workspace

from neuralstudio.core.design import Design
from neuralstudio.core.runs import RunsStore

pytest.importorskip("pytestqt")

from neuralstudio.ui import responsiveness  # noqa: E402
from neuralstudio.ui.garbage_collection import gui_garbage_collector  # noqa: E402
from neuralstudio.ui.train import workspace as ws_mod  # noqa: E402
from neuralstudio.ui.train.workspace import TrainWorkspace  # noqa: E402

RUN_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def tiny_data():
    """600 training and 100 test images of the bundled MNIST sample."""
    return mnist_slice(600, 100)


def tiny_design(name: str = "tiny", activation: str = "softmax", hidden: int = 16, **training) -> Design:
    """The shared image MLP with this file's defaults (``activation`` is the output layer's)."""
    return image_mlp(name, hidden=hidden, output=activation, **training)


@pytest.fixture
def workspace(qtbot, tmp_path, tiny_data):
    # Not qtbot.addWidget: pytest-qt would close the widget before this fixture's teardown, and closing
    # a workspace whose run is still going (after a failed assertion) asks the user and waits forever.
    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    ws.set_dataset(tiny_data)
    ws.resize(1200, 800)
    yield ws
    # every test must leave no running QThread
    close_workspace(ws)


def run_to_end(qtbot, ws: TrainWorkspace) -> None:
    qtbot.waitUntil(lambda: not ws.is_running() and not ws.ending, timeout=RUN_TIMEOUT_MS)


def wait_for_batches(qtbot, ws: TrainWorkspace, n: int = 1) -> None:
    qtbot.waitUntil(lambda: len(ws.plots.loss.batch) >= n, timeout=RUN_TIMEOUT_MS)


def test_train_button_runs_and_plots_hold_reported_values(qtbot, workspace, tmp_path):
    ws = workspace
    ws.show()
    qtbot.waitExposed(ws)
    ws.set_design(tiny_design(epochs=2))
    trained = []
    ws.model_trained.connect(lambda model, label, _design: trained.append((model, label)))
    states = []
    ws.running_changed.connect(states.append)
    collected_in = set()

    def record_collection(phase: str, _info: dict) -> None:
        if phase == "start":
            collected_in.add(threading.get_ident())

    gc.callbacks.append(record_collection)
    try:
        with qtbot.waitSignal(ws.running_changed, timeout=5000):
            qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
        assert ws.is_running() and not ws.train_button.isEnabled() and ws.stop_button.isEnabled()
        assert gui_garbage_collector().busy  # full passes wait
        run_to_end(qtbot, ws)
    finally:
        gc.callbacks.remove(record_collection)
    # garbage was collected, and only by the GUI thread (see ui/garbage_collection.py)
    assert collected_in == {threading.main_thread().ident}
    assert not gui_garbage_collector().busy
    assert states == [True, False]
    res = ws.last_result
    assert res is not None and res.status == "finished", ws.last_message
    assert "finished" in ws.last_message.lower() or "trained" in ws.last_message.lower()
    # per-epoch curves hold exactly what the trainer reported, at x = 1, 2
    np.testing.assert_allclose(ws.plots.loss.train.y, res.history["loss"])
    np.testing.assert_allclose(ws.plots.loss.val.y, res.history["val_loss"])
    np.testing.assert_allclose(ws.plots.acc.val.y, res.history["val_accuracy"])
    np.testing.assert_allclose(ws.plots.loss.train.x, [1.0, 2.0])
    x, y = ws.plots.loss.val_curve.getData()
    np.testing.assert_allclose(y, res.history["val_loss"])
    # per-batch curve: the recorded batch points, in epochs on the x axis, ending at each epoch's end
    rec = ws.runs_store.get(res.run_id)
    np.testing.assert_allclose(ws.plots.loss.batch.y, [p["loss"] for p in rec.batches])
    bx = ws.plots.loss.batch.x
    assert np.all(np.diff(bx) > 0) and bx[-1] == pytest.approx(2.0)
    assert any(v == pytest.approx(1.0) for v in bx)
    assert ws.plots.refresh_count >= 2  # live refreshes while the run went on
    # the model is handed over, the run is in the table, and progress is full
    assert trained and trained[0][0] is res.model
    assert ws.run_bar.value() == 100
    assert ws.runs_panel.table.rowCount() == 1
    assert ws.save_button.isEnabled()
    # the GUI thread came first while it trained (see ui/responsiveness.py): TensorFlow's threads were batch
    # work for the run only, so Predict does not wait behind them now
    assert sys.getswitchinterval() <= responsiveness.GUI_SWITCH_INTERVAL_S
    if sys.platform.startswith("linux") and responsiveness.TRAINING_POLICY is not None:
        tf_threads = [int(t) for t in os.listdir("/proc/self/task")
                      if responsiveness._thread_name(int(t)).startswith("tf_")]
        assert tf_threads
        assert all(responsiveness._policy(t) in (os.SCHED_OTHER, None) for t in tf_threads)  # None: ended since


def test_pause_resume_stop_keeps_the_model(qtbot, workspace, tmp_path, monkeypatch):
    ws = workspace
    ws.set_design(tiny_design(epochs=200, batch_size=8))
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    wait_for_batches(qtbot, ws, 3)
    qtbot.mouseClick(ws.pause_button, Qt.MouseButton.LeftButton)
    assert ws.is_paused() and ws.pause_button.text() == "Resume"
    # a pause asked for while Keras compiles acts when compiling ends: wait until the worker holds,
    # then let the timer drain what came before the pause point
    qtbot.waitUntil(lambda: ws._control.is_holding, timeout=30_000)
    qtbot.wait(200)
    n = len(ws.plots.loss.batch)
    qtbot.wait(600)
    assert len(ws.plots.loss.batch) == n, "batches arrived while paused"
    assert ws.log_view.toPlainText().count("Paused.") == 1  # said once, by the trainer when it holds
    qtbot.mouseClick(ws.pause_button, Qt.MouseButton.LeftButton)
    assert not ws.is_paused()
    wait_for_batches(qtbot, ws, n + 1)
    qtbot.mouseClick(ws.stop_button, Qt.MouseButton.LeftButton)
    run_to_end(qtbot, ws)
    res = ws.last_result
    assert res.status == "stopped"
    assert "keeps what it learned" in ws.last_message
    assert ws.save_button.isEnabled()
    out = tmp_path / "kept"  # the dialog's answer without the extension: .keras is added
    monkeypatch.setattr(ws_mod.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    qtbot.mouseClick(ws.save_button, Qt.MouseButton.LeftButton)
    assert not ws.save_button.isEnabled()  # saving in the background: the window stays live
    qtbot.waitUntil(lambda: ws.save_button.isEnabled(), timeout=60_000)
    out = tmp_path / "kept.keras"
    assert ws.status_label.text() == f"Saved the model to {out}."
    import keras

    model = keras.saving.load_model(out)
    np.testing.assert_allclose(model.get_weights()[0], res.model.get_weights()[0])


def test_close_during_training_stops_cleanly(qtbot, workspace, monkeypatch):
    ws = workspace
    ws.set_design(tiny_design(epochs=500, batch_size=8))
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    wait_for_batches(qtbot, ws, 2)
    asked = []
    monkeypatch.setattr(TrainWorkspace, "confirm_close", staticmethod(lambda parent: asked.append(parent) or False))
    assert ws.request_close() is False and ws.is_running()  # "No": keep training
    monkeypatch.setattr(TrainWorkspace, "confirm_close", staticmethod(lambda parent: asked.append(parent) or True))
    assert ws.request_close() is True
    assert len(asked) == 2
    assert not ws.is_running()
    assert ws_mod.running_training_threads() == 0
    assert ws.last_result.status == "stopped"


def test_nan_run_says_what_to_try(qtbot, workspace):
    ws = workspace
    ws.set_design(tiny_design(epochs=3, optimizer="sgd", learning_rate=100.0, activation="linear", hidden=64,
                              loss="mean_squared_error"))
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    run_to_end(qtbot, ws)
    assert ws.last_result.status == "nan", ws.last_message
    msg = ws.status_label.text()
    assert "NaN" in msg or "infinite" in msg
    assert "learning rate 100" in msg and "try 10" in msg
    assert ws.status_label.palette().color(ws.status_label.foregroundRole()).name() == "#b00020"  # red


def test_compare_two_runs_overlays_and_diff(qtbot, workspace, tmp_path):
    ws = workspace
    for lr in (0.01, 0.001):
        ws.set_design(tiny_design(name="cmp", epochs=1, learning_rate=lr))
        qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
        run_to_end(qtbot, ws)
        assert ws.last_result.status == "finished", ws.last_message
    table = ws.runs_panel.table
    assert table.rowCount() == 2
    for row in range(2):
        table.item(row, 0).setCheckState(Qt.CheckState.Checked)
    assert len(ws.plots.loss.overlays) == 4  # two runs x (loss, val loss)
    assert len(ws.plots.acc.overlays) == 4
    names = [ov._ns_name for ov in ws.plots.loss.overlays]  # the hover text names every curve
    assert any("lr=0.01 loss" in n for n in names) and any("lr=0.001 val loss" in n for n in names)
    legend_names = [label.text for _sample, label in ws.plots.loss.legend.items]
    assert any("lr=0.01" in n for n in legend_names)
    _x, y = ws.plots.loss.overlays[0].getData()
    assert len(y) == 1 and math.isfinite(y[0])
    assert ws.runs_panel.compare_button.isEnabled()
    qtbot.mouseClick(ws.runs_panel.compare_button, Qt.MouseButton.LeftButton)
    text = ws.runs_panel.diff_label.text()
    assert "<b>learning rate</b>" in text and "0.01" in text and "0.001" in text
    assert "validation accuracy</b>" in text and "%" in text
    # unticking removes the overlays, and the comparison of runs no longer ticked
    table.item(0, 0).setCheckState(Qt.CheckState.Unchecked)
    assert len(ws.plots.loss.overlays) == 2
    assert ws.runs_panel.diff_label.text() == ""
    # export the curves of a run and the plots
    rec = ws.runs_panel.ticked()[0]
    csv_path = tmp_path / "curves.csv"
    ws.runs_panel.write_csv(rec, str(csv_path))
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("kind,epoch,batch,x_epochs,loss,accuracy,val_loss,val_accuracy")
    assert lines[1].startswith("epoch,1,,1,")
    assert any(line.startswith("batch,1,") for line in lines)
    written = ws.plots.export_png(str(tmp_path / "plots.png"))
    from PIL import Image

    for p in written:
        with Image.open(p) as im:
            assert im.size[0] >= 600


def test_editing_the_design_does_not_change_the_run(qtbot, workspace):
    ws = workspace
    design = tiny_design(epochs=1)
    ws.set_design(design)
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    design.graph.set_param(design.graph.node_by_name("hidden").id, "units", 3)
    # the Design workspace hands over an edited design while the run goes on
    ws.set_design(tiny_design(name="edited", epochs=7))
    assert ws.settings_panel.epochs_box.value() == 1  # the form still shows the run's settings
    run_to_end(qtbot, ws)
    assert ws.last_result.status == "finished"
    assert ws.last_result.model.get_layer("hidden").units == 16
    assert ws.settings_panel.epochs_box.value() == 7  # the new design is shown once the run ended
    assert "edited" in ws.design_label.text()


def test_missing_data_source_is_reported_readably(qtbot, workspace, tmp_path):
    """A design naming a path that does not exist: the data preview says so and Train waits for other data.

    A file that vanishes after its preview is only found by the run, which says so readably too.
    """
    ws = workspace
    ws.set_dataset(None)
    design = tiny_design(epochs=1)
    design.data = {"source": "/nonexistent/folder"}
    ws.set_design(design)
    picker = ws.settings_panel.data_picker
    qtbot.waitUntil(lambda: picker.state == "failed", timeout=30_000)
    text = picker.preview_label.text()
    assert "/nonexistent/folder" in text and "Traceback" not in text
    assert "color: #b00020" in picker.preview_label.styleSheet()
    assert not ws.train_button.isEnabled() and text in ws.train_button.toolTip()

    path = tmp_path / "soon-gone.npz"
    np.savez(path, x_train=np.zeros((64, 28, 28), np.uint8), y_train=np.arange(64) % 10)
    picker.choose_path(path)
    qtbot.waitUntil(lambda: picker.state == "ok", timeout=30_000)
    assert ws.train_button.isEnabled()
    path.unlink()
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    run_to_end(qtbot, ws)
    assert ws.last_result is None
    text = ws.status_label.text()
    assert str(path) in text and "Traceback" not in text
    assert ws.status_label.palette().color(ws.status_label.foregroundRole()).name() == "#b00020"  # red
    assert ws.train_button.isEnabled()


def test_model_size_and_measured_time_per_epoch(qtbot, workspace):
    import keras  # noqa: F401 - in the app, the KerasLoader has loaded it in the background by now

    ws = workspace
    ws.show()
    qtbot.waitExposed(ws)
    ws.set_design(tiny_design(hidden=16))
    # 28*28*16+16 + 16*10+10 parameters
    qtbot.waitUntil(lambda: "12,730 parameters" in ws.settings_panel.estimate_label.text(), timeout=30_000)
    qtbot.mouseClick(ws.measure_button, Qt.MouseButton.LeftButton)
    # timed in the background: the buttons wait, the window does not
    assert not ws.measure_button.isEnabled() and not ws.train_button.isEnabled()
    assert "Measuring" in ws.status_label.text()
    qtbot.waitUntil(ws.measure_button.isEnabled, timeout=60_000)
    assert ws.train_button.isEnabled()
    text = ws.settings_panel.estimate_label.text()
    assert "per epoch (measured" in text and "samples/s" in text, text
    assert "12,730 parameters" in text


def test_model_size_is_counted_off_the_gui_thread_and_follows_the_latest_design(qtbot, workspace, monkeypatch):
    """Counting the parameters builds layers (90-160 ms the first time): the window must not wait for it."""
    import keras  # noqa: F401 - loaded in the background by the app by now

    ws = workspace
    threads = []
    count = ws_mod.model_size_text

    def counted(design):
        threads.append(threading.current_thread())
        return count(design)

    monkeypatch.setattr(ws_mod, "model_size_text", counted)
    ws.show()
    qtbot.waitExposed(ws)
    ws.set_design(tiny_design(hidden=16))
    ws.set_design(tiny_design(name="wider", hidden=32))  # before the first count is back: it must not win
    qtbot.waitUntil(lambda: "25,450 parameters" in ws.settings_panel.estimate_label.text(), timeout=30_000)
    qtbot.wait(200)  # any late answer for the first design would land now
    assert "25,450 parameters" in ws.settings_panel.estimate_label.text()  # 28*28*32+32 + 32*10+10
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_progress_updates_are_painted_with_the_window_not_on_their_own(qtbot, workspace):
    """QProgressBar.setValue repaints at once; the row is painted in the window's batched paint instead.

    Before, each plot refresh painted both bars twice on its own, and every new
    speed text re-laid out the whole window (the label could change size).
    """
    from PySide6.QtCore import QEvent, QObject

    ws = workspace
    ws.show()
    qtbot.waitExposed(ws)
    ws.set_design(tiny_design(epochs=2))
    painted_in_tick, painted = [], []

    class PaintSpy(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                frame, in_tick = sys._getframe(), False
                while frame is not None and not in_tick:
                    in_tick = frame.f_code.co_name == "_on_drain_timer"
                    frame = frame.f_back
                (painted_in_tick if in_tick else painted).append(obj.objectName())
            return False

    spy = PaintSpy()
    for bar in (ws.epoch_bar, ws.run_bar, ws.speed_label):
        bar.installEventFilter(spy)
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    run_to_end(qtbot, ws)
    assert ws.last_result is not None and ws.last_result.status == "finished"
    assert painted and not painted_in_tick
    label = ws.speed_label
    assert label.minimumSize() == label.maximumSize()  # a fixed size: new text never re-lays out the window
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()


def test_measured_time_per_epoch_counts_the_data_sources_own_examples(qtbot, workspace, monkeypatch):
    """Measure speed assumed 8,000 training examples for every data source: 7.5x too short for full MNIST.

    At the same 900 samples/s, MNIST's 60,000 examples less a 10% validation split (54,000) take 60 s an
    epoch, 7.5 times the 8.0 s of the bundled sample's 8,000 less 10% (7,200). Nothing is downloaded.
    """
    ws = workspace
    monkeypatch.setattr(ws_mod, "measure_samples_per_second", lambda design, settings, steps=5: 900.0)
    ws.set_dataset(None)
    ws.set_design(tiny_design(validation_split=0.1))
    box = ws.settings_panel.data_box
    estimates = {}
    for source in ("mnist-sample", "mnist"):
        box.setCurrentIndex(box.findData(source))
        qtbot.mouseClick(ws.measure_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(ws.measure_button.isEnabled, timeout=30_000)
        estimates[source] = ws.settings_panel.estimate_label.text()
    assert "About 8.0 s per epoch (measured 900 samples/s" in estimates["mnist-sample"], estimates
    assert "About 60 s per epoch (measured 900 samples/s" in estimates["mnist"], estimates


def test_a_run_paused_before_its_first_batch_shows_no_speed_until_it_is_measured(qtbot, workspace):
    """A pause asked for while Keras traces acts after the first batch, whose time includes the tracing.

    The label used to show that first report's speed for the whole pause ("7 samples/s · 52.0 min left");
    the speed now comes from the time between reports, which the trainer counts without pauses.
    """
    ws = workspace
    ws.set_design(tiny_design(epochs=200, batch_size=8))
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(ws.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ws._control.is_holding, timeout=30_000)
    qtbot.wait(300)  # the drain timer shows what came before the pause point
    assert len(ws.plots.loss.batch) == 1
    assert ws.speed_label.text() == ""
    qtbot.mouseClick(ws.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "samples/s" in ws.speed_label.text(), timeout=30_000)
    assert " left" in ws.speed_label.text()
    ws.stop()
    run_to_end(qtbot, ws)
