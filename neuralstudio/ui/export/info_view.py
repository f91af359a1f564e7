"""The model information view: what a model file holds and how it was trained.

It shows a :class:`~neuralstudio.ml.model_info.ModelInfo` (computed by the
caller, off the GUI thread, with :func:`~neuralstudio.ml.model_info.model_info`
or :func:`~neuralstudio.ml.model_info.info_from_model`); it never loads a file
itself, so it cannot block the window or run a file's code.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.formatting import format_shape, format_value, human_size
from neuralstudio.ml.export_formats import FORMATS
from neuralstudio.ml.model_info import NO_HISTORY, ModelInfo


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return t


def _fill(table: QTableWidget, rows: list[list[str]], right_align: set[int] | None = None) -> None:
    from PySide6.QtCore import Qt

    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if right_align and c in right_align:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)


class ModelInfoView(QWidget):
    """Inputs and outputs, layers, parameters, file details and training history of a model.

    Args:
        info: the description to show now (``set_info`` shows another later).
        parent: the parent widget.
    """

    def __init__(self, info: ModelInfo | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model information")
        self.info: ModelInfo | None = None
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, label in (("name", "Model:"), ("file", "File:"), ("saved_by", "Saved by:"), ("inputs", "Inputs:"),
                           ("outputs", "Outputs:"), ("params", "Parameters:"), ("compiled", "Compiled with:")):
            value = QLabel()
            value.setWordWrap(True)
            value.setTextInteractionFlags(value.textInteractionFlags() | _selectable())
            self.fields[key] = value
            form.addRow(label, value)
        self.layers_table = _table(["Layer", "Type", "Output shape", "Parameters"])
        layers_box = QGroupBox("Layers")
        QVBoxLayout(layers_box).addWidget(self.layers_table)
        self.history_note = QLabel()
        self.history_note.setWordWrap(True)
        self.history_table = _table(["Epoch"])
        history_box = QGroupBox("Training history")
        hl = QVBoxLayout(history_box)
        hl.addWidget(self.history_note)
        hl.addWidget(self.history_table)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(layers_box, 3)
        layout.addWidget(history_box, 2)
        if info is not None:
            self.set_info(info)

    def set_info(self, info: ModelInfo) -> None:
        """Show ``info``."""
        self.info = info
        f = self.fields
        f["name"].setText(info.name)
        if info.path:
            f["file"].setText(f"{info.path}  ({_format_label(info.file_format)}, {human_size(info.file_size)})")
            saved = f"Keras {info.keras_version or '(version not recorded)'}"
            saved += f" on {info.saved}" if info.saved else ""
            saved += f", {info.backend} backend" if info.backend else ""
            f["saved_by"].setText(saved)
        else:
            f["file"].setText("not saved yet")
            f["saved_by"].setText("-")
        f["inputs"].setText("; ".join(f"{t.name} {format_shape(t.shape)} {t.dtype}" for t in info.inputs))
        f["outputs"].setText("; ".join(f"{t.name} {format_shape(t.shape)} {t.dtype}" for t in info.outputs))
        f["params"].setText(f"{info.total_params:,} ({info.trainable_params:,} trainable, "
                            f"{info.non_trainable_params:,} non-trainable)")
        f["compiled"].setText(", ".join(f"{k} {v}" for k, v in info.compiled.items()) or "not compiled")
        _fill(self.layers_table, [[ly.name, ly.class_name, ly.output_shape, f"{ly.params:,}"] for ly in info.layers],
              right_align={3})
        keys = list(info.history)
        epochs = max((len(v) for v in info.history.values()), default=0)
        self.history_table.setColumnCount(1 + len(keys))
        self.history_table.setHorizontalHeaderLabels(["Epoch", *keys])
        _fill(self.history_table, [[str(i + 1), *(format_value(info.history[k][i] if i < len(info.history[k]) else None)
                                                  for k in keys)] for i in range(epochs)],
              right_align=set(range(1 + len(keys))))
        if info.history:
            final = ", ".join(f"{k} {format_value(v)}" for k, v in (info.run.get("final") or {}).items())
            self.history_note.setText(f"Run {info.run.get('id', '?')} ({info.run.get('status', '?')}, "
                                      f"data: {info.run.get('data') or '?'})" + (f". Final: {final}" if final else ""))
        elif info.notes:  # a run record was there but could not be read: say so, not "never trained here"
            self.history_note.setText(" ".join(info.notes))
        else:
            self.history_note.setText(f"Training history: {NO_HISTORY}")
        self.history_table.setVisible(bool(info.history))


def _format_label(fmt: str) -> str:
    """The model file's kind (``keras`` or ``h5``) by the export registry's label, the same words File > Export uses."""
    known = FORMATS.get(fmt)
    return known.label if known is not None else fmt


def _selectable() -> Any:
    from PySide6.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse
