"""File > Export...: choose a format and a place, export in the background, show the verification.

The export itself (:func:`neuralstudio.ml.export.export_model`) writes to a
temporary file, checks the artifact with its own runtime and only then moves it
into place; this dialog only collects the choices, runs that function on a
background :class:`~neuralstudio.ui.tasks.TaskRunner` (the window stays live
while TensorFlow converts) and shows the verification report, or why the
export failed.  The model must not be training while it is exported: pass an
inference copy when a run is going.

The formats offered, their labels, default names and options all come from the
export-format registry (:mod:`neuralstudio.ml.export_formats`), as the CLI's do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.errors import UserError
from neuralstudio.ml.export_formats import DEFAULT_FORMAT, FORMATS, ExportFormat
from neuralstudio.ui.tasks import TaskRunner


class ExportDialog(QDialog):
    """Export a trained model to one of :data:`~neuralstudio.ml.export_formats.FORMATS`, verified.

    Args:
        model: the trained ``keras.Model`` (not one that is training right now).
        model_path: the file it was opened from, if any (the default output goes beside it).
        design: the design it was built from (used by the ``python`` format).
        runner: a task runner to export on; the dialog makes (and stops) its own when None.
        parent: the parent widget.

    Signals:
        exported(object): the :class:`~neuralstudio.ml.export.ExportResult` of a verified export.
        failed(str): the message of an export that failed or did not verify.
    """

    exported = Signal(object)
    failed = Signal(str)

    def __init__(self, model: Any, *, model_path: str | os.PathLike[str] | None = None, design: Any = None,
                 runner: TaskRunner | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export model")
        self.setMinimumWidth(560)
        self.model = model
        self.design = design
        self._base = Path(model_path) if model_path else Path.home() / f"{_file_stem(design, model)}.keras"
        self._own_runner = runner is None
        self._runner = runner
        self._path_edited = False
        self.running = False
        self.result: Any = None

        self.format_combo = QComboBox()
        for fmt in FORMATS.values():
            self.format_combo.addItem(fmt.label, fmt.name)
        self.format_combo.setCurrentIndex(self.format_combo.findData(DEFAULT_FORMAT))
        self.use_label = QLabel()
        self.use_label.setWordWrap(True)
        self.use_label.setStyleSheet("color: #4a5568")
        self.quantize_check = QCheckBox("Dynamic-range quantization (int8 weights, about 4x smaller)")
        self.path_edit = QLineEdit()
        self.browse_button = QPushButton("Browse...")
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)

        form = QFormLayout()
        form.addRow("Format:", self.format_combo)
        form.addRow("", self.use_label)
        form.addRow("", self.quantize_check)
        form.addRow("Save to:", path_row)

        self.status_label = QLabel("The export is checked against the Keras model on real MNIST images "
                                   "before it is saved.")
        self.status_label.setWordWrap(True)
        self.report_view = QPlainTextEdit()
        self.report_view.setReadOnly(True)
        self.report_view.setMaximumHeight(110)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setDefault(True)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status_label)
        layout.addWidget(self.report_view)
        layout.addWidget(self.buttons)

        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.quantize_check.toggled.connect(self._on_quantize_toggled)
        self.path_edit.textEdited.connect(self._on_path_edited)
        self.browse_button.clicked.connect(self._on_browse)
        self.export_button.clicked.connect(self._on_export)
        self.buttons.rejected.connect(self.reject)
        self._on_format_changed()

    # ----------------------------------------------------------------- state
    @property
    def format_name(self) -> str:
        return str(self.format_combo.currentData())

    @property
    def selected_format(self) -> ExportFormat:
        """The registry entry of the selected format."""
        return FORMATS[self.format_name]

    def set_format(self, name: str) -> None:
        """Select the format called ``name`` (as the combo box does)."""
        index = self.format_combo.findData(name)
        if index < 0:
            raise ValueError(f"unknown format {name!r}")
        self.format_combo.setCurrentIndex(index)

    def _quantize(self) -> str | None:
        """The format's (dynamic-range) quantisation mode when the box is ticked, else None."""
        modes = self.selected_format.quantize
        return modes[0] if modes and self.quantize_check.isChecked() else None

    def _suggested_path(self) -> str:
        return str(self.selected_format.default_output(self._base, self._quantize()))

    def _missing_packages(self) -> list[str]:
        from neuralstudio.ml.backends import current

        return self.selected_format.missing_packages(backend=current())

    def _refusal(self) -> str | None:
        """Why the backend the app runs on cannot write the selected format (None when it can)."""
        from neuralstudio.ml.backends import current

        return self.selected_format.refusal(current())

    def _on_format_changed(self, *_: Any) -> None:
        fmt, previous = self.selected_format, getattr(self, "_shown_format", None)
        self._shown_format = fmt
        if previous is not None and previous is not fmt:  # a result or failure of another format is stale
            self.status_label.setText("")
            self.status_label.setStyleSheet("")
            self.report_view.clear()
        from neuralstudio.ml.backends import current

        text = fmt.use
        missing = self._missing_packages()
        refusal = self._refusal()
        if refusal:
            text += f"\n{refusal.removesuffix(' Nothing was written.')}"
        elif missing:
            text += f"\nNeeds {' and '.join(missing)}, which is not installed: {fmt.install_hint(current())}."
        self.use_label.setText(text)
        if not fmt.quantize:
            self.quantize_check.setChecked(False)
        self._update_enabled()
        if not self._path_edited:
            self.path_edit.setText(self._suggested_path())
        elif previous is not None and previous is not fmt:
            self.path_edit.setText(_retarget(self.path_edit.text(), previous, fmt))

    def _on_quantize_toggled(self, _checked: bool) -> None:
        if not self._path_edited:
            self.path_edit.setText(self._suggested_path())

    def _on_path_edited(self, _text: str) -> None:
        self._path_edited = True

    def _on_browse(self) -> None:
        fmt = self.selected_format
        current = self.path_edit.text() or self._suggested_path()
        if fmt.folder:
            path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.label} as folder", current)
        else:
            patterns = " ".join(f"*{s}" for s in fmt.suffixes)
            path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.label}", current, f"{fmt.label} ({patterns})")
        if path:
            self.path_edit.setText(path)
            self._path_edited = True

    # ----------------------------------------------------------------- export
    def _update_enabled(self) -> None:
        """Enable what the selected format supports: quantisation, and Export when its packages are installed."""
        idle = not self.running
        for w in (self.format_combo, self.path_edit, self.browse_button):
            w.setEnabled(idle)
        self.quantize_check.setEnabled(idle and bool(self.selected_format.quantize))
        self.export_button.setEnabled(idle and not self._missing_packages() and not self._refusal())
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(idle)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self._update_enabled()

    def _on_export(self) -> None:
        if self.running:
            return
        path = self.path_edit.text().strip()
        if not path:
            self._show_failure("Choose where to save the export.")
            return
        if self._runner is None:
            self._runner = TaskRunner(self, name="neuralstudio-export")
        fmt, quantize, model, design = self.format_name, self._quantize(), self.model, self.design

        def job() -> Any:
            from neuralstudio.ml.export import export_model

            return export_model(model, path, fmt, quantize=quantize, design=design)

        self._set_running(True)
        self.status_label.setStyleSheet("")
        self.status_label.setText(f"Exporting to {path} and checking the result...")
        self.report_view.clear()
        self._runner.submit(job, self._on_done, self._on_error)

    def _on_done(self, result: Any) -> None:
        self._set_running(False)
        self.result = result
        self.status_label.setStyleSheet("color: #2f855a")
        self.status_label.setText(f"Exported to {result.path}")
        lines = [f"Verification {result.report.summary()}" if result.report is not None else "Not verified."]
        lines += [f"  {f}" for f in result.files]
        self.report_view.setPlainText("\n".join(lines))
        self.exported.emit(result)

    def _on_error(self, exc: BaseException, tb: str) -> None:
        self._set_running(False)
        if isinstance(exc, UserError):
            self._show_failure(str(exc))
        else:  # a bug: say so plainly, keep the details for a report
            self._show_failure(f"The export failed unexpectedly ({type(exc).__name__}: {exc}).", details=tb)

    def _show_failure(self, message: str, details: str = "") -> None:
        self.status_label.setStyleSheet("color: #c53030")
        self.status_label.setText("Export FAILED: nothing was saved (a previous file there is unchanged).")
        self.report_view.setPlainText(message + (f"\n\n{details}" if details else ""))
        self.failed.emit(message)

    def done(self, r: int) -> None:
        """Close only when no export is running; stop the dialog's own worker thread."""
        if self.running:
            return
        if self._own_runner and self._runner is not None:
            self._runner.shutdown()
            self._runner = None
        super().done(r)

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape and self.running:
            return
        super().keyPressEvent(event)


def _retarget(path: str, old: ExportFormat, new: ExportFormat) -> str:
    """A path the user chose for ``old``, for ``new``: same folder and name, the new format's suffix.

    Without it, choosing ONNX after typing a path kept ``model.keras`` and wrote ONNX under that name.
    """
    text = path.strip()
    if not text:
        return text
    p = Path(text)
    name, low = p.name, p.name.lower()
    if any(low.endswith(s.lower()) and low != s.lower() for s in new.suffixes):
        return text  # already named for the new format
    known = {s for f in (old, *FORMATS.values()) for s in f.suffixes if s}
    for suffix in sorted(known, key=len, reverse=True):  # ".weights.h5" before ".h5"
        if low.endswith(suffix.lower()) and low != suffix.lower():
            name = name[: -len(suffix)]
            break
    return str(p.with_name(name + (new.suffixes[0] if new.suffixes else "")))


def _file_stem(design: Any, model: Any) -> str:
    """A file name for an export with no model file behind it: the design's name, else the model's."""
    import re

    for name in (getattr(design, "name", None), getattr(model, "name", None)):
        if isinstance(name, str):
            stem = re.sub(r"[^\w.-]+", "_", name).strip("._")[:80]
            if stem:
                return stem
    return "model"
