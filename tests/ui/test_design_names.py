"""A design has its own name and its own runs: File > New is empty, and a template's copy is not the template."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog

pytest.importorskip("pytestqt")

from neuralstudio.core.design import DEFAULT_NAME, load_design  # noqa: E402
from neuralstudio.core.runs import RunsStore  # noqa: E402


def test_file_new_gives_an_empty_untitled_design(ready_window, qtbot):
    w = ready_window
    w._confirm_discard = lambda: True
    old_id = w.doc.design.id
    assert w.act_new.shortcut() == QKeySequence(QKeySequence.StandardKey.New)
    w.act_new.trigger()
    assert len(w.doc.graph) == 0
    assert w.doc.design.name == DEFAULT_NAME
    assert w.doc.design.id and w.doc.design.id != old_id
    assert "untitled" in w.windowTitle()


def test_deleting_every_layer_of_a_template_starts_a_design_of_its_own(ready_window, qtbot, tmp_path, monkeypatch):
    w = ready_window
    design = w.doc.design
    template_id = design.id
    assert design.name == "MNIST convnet"
    w.view.setFocus()
    w.scene.select_nodes(list(w.doc.graph.nodes))
    qtbot.keyClick(w.view, Qt.Key.Key_Delete)
    assert len(w.doc.graph) == 0
    assert design.name == DEFAULT_NAME and design.id != template_id
    w.doc.undo_stack.undo()  # one step brings back the layers and the template's name and runs
    assert len(w.doc.graph) == 10 and design.name == "MNIST convnet" and design.id == template_id
    w.doc.undo_stack.redo()
    assert design.name == DEFAULT_NAME

    # Save As names it after the file, everywhere
    out = tmp_path / "my_mlp.nsd"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    assert w.save_as()
    assert design.name == "my_mlp"
    assert load_design(out).name == "my_mlp"
    assert "my_mlp.nsd" in w.windowTitle()


def test_rename_design_is_used_by_train_and_the_code(ready_window, qtbot):
    w = ready_window
    w._ask_design_name = lambda current: "  Nielsen   784-30-10  "
    w.act_rename_design.trigger()
    assert w.doc.design.name == "Nielsen 784-30-10"
    assert w.doc.modified
    w.tabs.setCurrentIndex(1)  # Train
    qtbot.waitUntil(lambda: "Nielsen 784-30-10" in w.train_page.design_label.text(), timeout=10_000)
    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=60_000)
    assert "nielsen_784_30_10" in w.editor.code_view.code()


def test_runs_belong_to_the_design_not_to_its_name(qtbot, tmp_path):
    """Two copies of one template share a name but not their runs."""
    from neuralstudio.core.templates import load_template
    from neuralstudio.ui.train.runs_panel import RunsPanel

    a, b = load_template("mlp"), load_template("mlp")
    assert a.name == b.name and a.id != b.id
    store = RunsStore(tmp_path / "runs")
    rec = store.create(design=a.to_dict(), hyperparameters={})
    rec.status = "finished"
    store.save(rec)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_store(store, a.name, a.id)
    assert [r.id for r in panel.records] == [rec.id]
    panel.set_store(store, b.name, b.id)
    assert panel.records == []


def test_a_loss_set_in_train_is_the_designs_and_the_checks_follow(ready_window, qtbot):
    """The Problems list kept warning about sparse cross-entropy after the loss was set to MSE in Train."""
    w = ready_window
    w.tabs.setCurrentIndex(1)
    panel = w.train_page.settings_panel
    qtbot.waitUntil(lambda: panel.loss_box.count() > 0, timeout=10_000)
    i = panel.loss_box.findData("mean_squared_error")
    panel.loss_box.setCurrentIndex(i)
    qtbot.waitUntil(lambda: w.doc.design.training.loss == "mean_squared_error", timeout=5000)
    assert w.doc.modified
    qtbot.waitUntil(lambda: w.editor.analysis_current, timeout=60_000)
    assert "mean_squared_error" in w.editor.code_view.code()
