"""Each view shows the current state: nothing said about a design, a run or a format outlives it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("pytestqt")


def test_a_train_error_about_the_old_design_goes_when_the_design_changes(ready_window, qtbot):
    w = ready_window
    w.tabs.setCurrentIndex(1)
    train = w.train_page
    train._say("Cannot train: the network has no Input layer.", error=True)
    w.tabs.setCurrentIndex(0)
    dense = next(n for n in w.doc.graph if n.class_name == "Dropout")
    w.scene.select_nodes([dense.id])
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_Delete)  # the user changes the design
    w.tabs.setCurrentIndex(1)
    assert train.status_label.text() == f"Ready to train {w.doc.design.name}."
    assert f"({len(w.doc.graph)} layers)" in train.design_label.text()


def test_the_design_toolbar_is_shown_in_the_design_workspace_only(ready_window, qtbot):
    w = ready_window
    assert w.design_toolbar.isVisible()
    w.tabs.setCurrentIndex(1)
    assert not w.design_toolbar.isVisible()
    assert w.findChild(type(w.design_toolbar), "mainToolBar").isVisible()  # Open and Save stay
    w.tabs.setCurrentIndex(2)
    assert not w.design_toolbar.isVisible()
    w.tabs.setCurrentIndex(0)
    assert w.design_toolbar.isVisible()


def test_an_opened_network_is_shown_at_a_readable_size_and_ctrl0_fits_it_whole(ready_window, qtbot):
    """The default template came out at 46%: its node text too small to read."""
    from neuralstudio.ui.editor.view import READABLE_ZOOM_MIN

    w = ready_window
    w.resize(1600, 1000)
    w.new_from_template("mnist-cnn")
    qtbot.waitUntil(lambda: w.view.zoom >= READABLE_ZOOM_MIN - 1e-6, timeout=5000)
    w.act_fit.trigger()
    assert w.view.zoom < READABLE_ZOOM_MIN  # the whole column, on request


def test_the_toolbar_undo_keeps_its_width_and_tells_the_step_in_its_tip(ready_window, qtbot):
    w = ready_window
    drop = next(n for n in w.doc.graph if n.class_name == "Dropout")
    w.scene.select_nodes([drop.id])
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_Delete)
    assert w.tb_undo.text() == "Undo" and w.tb_undo.isEnabled()
    w.tb_undo.trigger()
    assert drop.id in w.doc.graph.nodes
    assert not w.tb_undo.isEnabled() and w.tb_redo.isEnabled()
