"""The Input's shape is asked for as the shape of one example: "28, 28, 1" is an MNIST image, not batch 28."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit

pytest.importorskip("pytestqt")


def _input(window):
    return next(n for n in window.doc.graph if n.class_name == "InputLayer")


def _type_shape(window, qtbot, text: str) -> QLineEdit:
    window.scene.select_nodes([_input(window).id])
    edit = window.inspector.findChild(QLineEdit, "param_batch_shape")
    assert edit is not None
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    return edit


def test_the_field_shows_and_takes_the_shape_of_one_example(ready_window, qtbot):
    w = ready_window
    w.scene.select_nodes([_input(w).id])
    edit = w.inspector.findChild(QLineEdit, "param_batch_shape")
    assert edit.text() == "28, 28, 1"  # the template's batch_shape (None, 28, 28, 1), batch size left out
    labels = [lb.text() for lb in w.inspector.findChildren(QLabel)]
    assert "shape of one example" in labels

    _type_shape(w, qtbot, "28, 28, 1")  # what the Problems panel's advice says
    assert _input(w).config["batch_shape"] == [None, 28, 28, 1]
    _type_shape(w, qtbot, "784")  # a flattened image: accepted, not refused
    assert _input(w).config["batch_shape"] == [None, 784]
    assert w.inspector.error_text("batch_shape") == ""
    _type_shape(w, qtbot, "None, 28, 28")  # Keras's own way, batch size first: the None is the batch
    assert _input(w).config["batch_shape"] == [None, 28, 28]
    w.doc.undo_stack.undo()
    assert _input(w).config["batch_shape"] == [None, 784]
    assert w.inspector.findChild(QLineEdit, "param_batch_shape").text() == "784"


def test_a_batch_size_typed_first_is_kept_but_questioned(ready_window, qtbot):
    w = ready_window
    _type_shape(w, qtbot, "32, 28, 28")
    assert _input(w).config["batch_shape"] == [None, 32, 28, 28]  # a valid 3-D example: kept
    hint = w.inspector.error_text("batch_shape")
    assert hint.startswith("32 looks like a batch size: give the shape of one example only (28, 28?)")


def test_an_empty_or_wrong_shape_is_refused_with_a_sentence(ready_window, qtbot):
    w = ready_window
    before = _input(w).config["batch_shape"]
    _type_shape(w, qtbot, "28, x")
    assert _input(w).config["batch_shape"] == before
    assert w.inspector.error_text("batch_shape")
