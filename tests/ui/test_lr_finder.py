"""Find… next to the learning rate: the range-test dialog, driven through the Train workspace's real widgets."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from support import image_mlp, mnist_slice
from window_helpers import close_workspace

from neuralstudio.core.runs import RunsStore

pytest.importorskip("pytestqt")

from neuralstudio.ui.train import lr_finder  # noqa: E402
from neuralstudio.ui.train.lr_finder import LrFinderDialog  # noqa: E402
from neuralstudio.ui.train.workspace import TrainWorkspace  # noqa: E402

SEARCH_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def tiny_data():
    return mnist_slice(600, 100)


@pytest.fixture
def workspace(qtbot, tmp_path, tiny_data, monkeypatch):
    monkeypatch.setattr(lr_finder, "DEFAULT_STEPS", 40)  # a short sweep: the test is about the wiring
    monkeypatch.setattr(lr_finder, "DEFAULT_MIN_LR", 1e-4)
    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    ws.set_dataset(tiny_data)
    ws.resize(1200, 800)
    yield ws
    close_workspace(ws)


def _dialog(ws: TrainWorkspace) -> LrFinderDialog | None:
    found = [d for d in ws.findChildren(LrFinderDialog) if d.isVisible()]
    return found[-1] if found else None


def test_find_searches_plots_live_and_use_puts_the_rate_into_the_form_and_the_design(qtbot, workspace):
    ws = workspace
    design = image_mlp("find-me", hidden=16, optimizer="sgd", learning_rate=0.01, batch_size=32)
    ws.training_settings_changed.connect(lambda s: setattr(design, "training", s))  # as the main window does
    ws.show()
    qtbot.waitExposed(ws)
    ws.set_design(design)
    button = ws.settings_panel.find_lr_button
    assert button.objectName() == "findLearningRateButton" and "Smith" in button.toolTip()
    assert button.isEnabled()

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _dialog(ws) is not None, timeout=5000)
    dlg = _dialog(ws)
    assert dlg.windowTitle() == "Find a learning rate" and dlg.running
    assert dlg.close_button.text() == "Stop" and not dlg.use_button.isEnabled()
    for w in (dlg.use_button, dlg.close_button, dlg.plot_widget, dlg.progress):
        assert w.toolTip()
    # the plot fills while the search runs (the timer drains what the worker buffered)
    qtbot.waitUntil(lambda: dlg.raw_curve.getData()[0] is not None and len(dlg.raw_curve.getData()[0]) >= 3,
                    timeout=SEARCH_TIMEOUT_MS)
    qtbot.waitUntil(lambda: dlg.use_button.isEnabled(), timeout=SEARCH_TIMEOUT_MS)
    result = dlg.result
    assert result is not None and result.ok and result.suggested_lr is not None, dlg.message_label.text()
    assert 1e-4 <= result.suggested_lr <= 10.0
    value = lr_finder.format_lr(result.suggested_lr)
    assert dlg.use_button.text() == f"Use {value}"
    assert dlg.message_label.text() == result.message and value in result.message
    assert dlg.marker.isVisible() and dlg.close_button.text() == "Close"
    assert len(dlg.smoothed_curve.getData()[1]) == result.steps_run
    assert design.training.learning_rate == 0.01  # nothing changed before Use

    qtbot.mouseClick(dlg.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _dialog(ws) is None, timeout=5000)
    assert ws.settings_panel.lr_box.value() == pytest.approx(result.suggested_lr)
    assert ws.settings_panel.settings().learning_rate == pytest.approx(result.suggested_lr)
    assert design.training.learning_rate == pytest.approx(result.suggested_lr)
    assert design.training.optimizer == "sgd" and design.training.batch_size == 32  # only the rate changed
    qtbot.waitUntil(lambda: not ws.background_busy, timeout=SEARCH_TIMEOUT_MS)


def test_escape_stops_the_search_and_a_run_locks_the_button(qtbot, workspace, monkeypatch):
    ws = workspace
    monkeypatch.setattr(lr_finder, "DEFAULT_STEPS", 2000)  # long enough to be still going when Esc comes
    ws.show()
    qtbot.waitExposed(ws)
    ws.set_design(image_mlp("esc", optimizer="adam"))
    qtbot.mouseClick(ws.settings_panel.find_lr_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _dialog(ws) is not None, timeout=5000)
    dlg = _dialog(ws)
    control = dlg.control
    qtbot.waitUntil(lambda: dlg.progress.value() >= 1, timeout=SEARCH_TIMEOUT_MS)
    qtbot.keyClick(dlg, Qt.Key.Key_Escape)
    assert control.stop_requested and not dlg.isVisible()
    qtbot.waitUntil(lambda: not ws.background_busy, timeout=SEARCH_TIMEOUT_MS)  # the sweep ended early
    assert dlg.result is not None and dlg.result.status == "stopped" and dlg.result.steps_run < 2000
    assert ws.settings_panel.lr_box.value() == pytest.approx(0.001)  # closing applies nothing

    ws.settings_panel.set_running(True)  # what a training run does to the form
    assert not ws.settings_panel.find_lr_button.isEnabled()
    ws.settings_panel.set_running(False)
    assert ws.settings_panel.find_lr_button.isEnabled()
