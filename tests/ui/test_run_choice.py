"""Runs that went wrong, and choosing which run's model is current: real widgets, real tiny training runs.

A run with SGD at learning rate 100 ends at chance level; it must say so, say why, and leave the better model
of the run before it in Predict and Export until the learner chooses it in the runs table.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QAction, QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from support import image_mlp

pytest.importorskip("pytestqt")

from neuralstudio.ui.train import workspace as ws_mod  # noqa: E402
from neuralstudio.ui.train.workspace import TrainWorkspace  # noqa: E402

RUN_TIMEOUT_MS = 90_000
LOAD_TIMEOUT_MS = 60_000



def train(qtbot, ws: TrainWorkspace):
    qtbot.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ws.is_running() and not ws.ending, timeout=RUN_TIMEOUT_MS)  # the runs table too
    return ws.last_result


def cell_center(table, row: int) -> QPoint:
    """The middle of a row's "status" cell, in viewport coordinates."""
    return table.visualRect(table.model().index(row, 1)).center()


def double_click(qtbot, table, row: int) -> None:
    """A user's double-click: press and release, then the double-click (QTest's mouseDClick sends only that, and
    an item view acts on a double-click only on the item the press was on)."""
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell_center(table, row))
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell_center(table, row))


def choose_in_run_menu(panel, row: int, action_name: str, *, keyboard: bool = False) -> str:
    """Open a run's context menu as the user does and choose ``action_name``; the action's text.

    A right-click goes through the window, which turns it into a context-menu event as for a user; the Menu
    key is what the platform sends for it (a keyboard context-menu event at the pointer, wherever it is),
    since offscreen Qt does not make one from the key.
    """
    table = panel.table
    chosen: list[str] = []

    def pick() -> None:
        menu = QApplication.activePopupWidget()
        if menu is None:
            QTimer.singleShot(20, pick)
            return
        action = menu.findChild(QAction, action_name)
        chosen.append(action.text() if action is not None else "")
        menu.close()
        if action is not None:
            action.trigger()

    QTimer.singleShot(0, pick)
    if keyboard:
        table.setFocus()
        table.selectRow(row)
        event = QContextMenuEvent(QContextMenuEvent.Reason.Keyboard, QPoint(3, 3), table.viewport().mapToGlobal(
            QPoint(3, 3)))
        QApplication.sendEvent(table.viewport(), event)
    else:
        window = table.window()
        QTest.mouseClick(window.windowHandle(), Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier,
                         table.viewport().mapTo(window, cell_center(table, row)))
    assert chosen, "no run menu opened"
    return chosen[0]


def test_a_diverged_run_keeps_the_good_model_until_the_learner_chooses_it(ready_window, qtbot, tiny_data):
    w = ready_window
    ws = w.train_page
    ws.set_dataset(tiny_data)
    w.editor.set_design(image_mlp("tiny", epochs=2, learning_rate=0.01), None)  # Train shows the editor's design
    w.tabs.setCurrentWidget(w._train_host)
    panel, table = ws.runs_panel, ws.runs_panel.table

    good = train(qtbot, ws)
    assert good.status == "finished", ws.last_message
    assert w.current_model is good.model
    qtbot.waitUntil(lambda: good.run_id in w.predict_page.source_label, timeout=LOAD_TIMEOUT_MS)
    assert panel.current_run_id == good.run_id

    # the learner tries SGD at learning rate 100 in the form
    form = ws.settings_panel
    form.optimizer_box.setCurrentIndex(form.optimizer_box.findData("sgd"))
    form.lr_box.setValue(100.0)
    bad = train(qtbot, ws)
    assert bad.status in ("finished", "nan"), ws.last_message
    msg = ws.status_label.text()
    assert "10% is what guessing gets with 10 classes" in msg or bad.status == "nan", msg
    assert "learning rate 100 is too high" in msg or "learning rate is too high" in msg, msg
    good_score = f"{good.test_accuracy:.1%}"
    assert (f"This run's model does not replace the current one: the model of run {good.run_id} ({good_score}) "
            "stays in Predict and Export; to use this one anyway: right-click the run > Use in Predict.") in msg, msg
    assert "Next: draw digits" not in msg
    assert msg in ws.log_view.toPlainText()  # the same sentences in the event log
    assert w.current_model is good.model  # not silently replaced
    assert good.run_id in w.predict_page.source_label
    assert panel.current_run_id == good.run_id

    # double-click the bad run: its saved model (loaded in the background) becomes current
    double_click(qtbot, table, panel.row_of(bad.run_id))
    qtbot.waitUntil(lambda: panel.current_run_id == bad.run_id, timeout=LOAD_TIMEOUT_MS)
    assert w.current_model is not good.model and w.current_model is not bad.model  # a copy loaded from its file
    np.testing.assert_allclose(w.current_model.get_weights()[0], bad.model.get_weights()[0])
    assert f"The model of run {bad.run_id}" in ws.status_label.text()
    qtbot.waitUntil(lambda: bad.run_id in w.predict_page.source_label, timeout=LOAD_TIMEOUT_MS)
    assert w.current_design is not None and w.current_design.name == "tiny"  # Export writes the run's design
    assert table.item(panel.row_of(bad.run_id), 0).font().bold()

    # right-click the good run > Use in Predict and Export: back to it
    assert choose_in_run_menu(panel, panel.row_of(good.run_id), "useRunAction") == "Use in Predict and Export"
    qtbot.waitUntil(lambda: panel.current_run_id == good.run_id, timeout=LOAD_TIMEOUT_MS)
    np.testing.assert_allclose(w.current_model.get_weights()[0], good.model.get_weights()[0])
    qtbot.waitUntil(lambda: good.run_id in w.predict_page.source_label, timeout=LOAD_TIMEOUT_MS)
    assert w.act_export.isEnabled()


@pytest.fixture
def workspace(shown_workspace):
    return shown_workspace


def test_the_run_menu_enter_and_a_missing_model_file(qtbot, workspace, tmp_path, monkeypatch):
    ws = workspace
    ws.set_design(image_mlp("tiny", epochs=1, learning_rate=0.01))
    res = train(qtbot, ws)
    assert res.status == "finished", ws.last_message
    panel, table = ws.runs_panel, ws.runs_panel.table
    rec = panel.record(res.run_id)
    row = panel.row_of(res.run_id)
    offered = []
    ws.model_trained.connect(lambda model, label, design: offered.append((model, label, design)))
    loaded_in = []
    load = ws_mod._load_run_model_file
    monkeypatch.setattr(ws_mod, "_load_run_model_file",
                        lambda path: loaded_in.append(threading.current_thread()) or load(path))

    # Enter on the selected run uses it
    table.setFocus()
    table.selectRow(row)
    qtbot.keyClick(table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(offered) == 1, timeout=LOAD_TIMEOUT_MS)
    model, label, design = offered[0]
    assert label == f"tiny ({res.run_id})" and design.name == "tiny"
    np.testing.assert_allclose(model.get_weights()[0], res.model.get_weights()[0])
    assert loaded_in and threading.main_thread() not in loaded_in  # Keras loads off the GUI thread

    # the Menu key > Continue training from it: current, and the box ticked
    assert ws._start_model is not model  # no window here: the workspace makes it its start model itself
    choose_in_run_menu(panel, row, "continueRunAction", keyboard=True)
    qtbot.waitUntil(lambda: ws.continue_check.isChecked(), timeout=LOAD_TIMEOUT_MS)
    assert len(offered) == 2 and ws._start_model is offered[1][0]
    assert "Press Train to go on training the model of run" in ws.status_label.text()

    # Save model as…: a copy of the run's file, written in the background
    out = tmp_path / "chosen"
    monkeypatch.setattr(ws_mod.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    choose_in_run_menu(panel, row, "saveRunModelAction")
    qtbot.waitUntil(lambda: "Saved the model of run" in ws.status_label.text(), timeout=LOAD_TIMEOUT_MS)
    assert (tmp_path / "chosen.keras").read_bytes() == rec.model_path.read_bytes()

    # Export…: the Export dialog gets the run's model and design
    seen = {}

    class FakeDialog:
        def __init__(self, model, *, model_path, design, runner, parent):
            seen.update(model=model, model_path=model_path, design=design)
            self.exported = type("S", (), {"connect": lambda self, slot: None})()

        def exec(self):
            return 0

    import neuralstudio.ui.export.dialog as dialog_mod

    monkeypatch.setattr(dialog_mod, "ExportDialog", FakeDialog)
    choose_in_run_menu(panel, row, "exportRunAction")
    qtbot.waitUntil(lambda: "model" in seen, timeout=LOAD_TIMEOUT_MS)
    np.testing.assert_allclose(seen["model"].get_weights()[0], res.model.get_weights()[0])
    assert seen["design"].name == "tiny" and "runs" not in str(seen["model_path"])  # not beside the run's files

    # a run whose model file is gone says so in one sentence
    rec.model_path.unlink()
    double_click(qtbot, table, row)
    text = ws.status_label.text()
    assert text == (f"Run {res.run_id} has no saved model (its folder holds no model.keras), so there is nothing "
                    "to load: train it again to get one.")
    assert ws.status_label.palette().color(ws.status_label.foregroundRole()).name() == "#b00020"  # red
    assert len(offered) == 2
