"""The code view: the Keras code generated from the design, live, copyable and savable."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.atomic import atomic_write_text


class CodeView(QWidget):
    """Read-only code with Copy and Save buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit()
        self.text.setObjectName("codeView")
        self.text.setAccessibleName("codeView")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(font)
        self.text.setPlainText("# The Keras code for this design appears here once Keras has loaded.")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the code to the clipboard")
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the code as a Python file")
        self.note = QLabel()
        self.note.setStyleSheet("color: #c53030")
        # Wrapped, and never asking for width: an unwrapped message widened the whole dock (and the
        # canvas shrank) and it stayed wide after the message went away.
        self.note.setWordWrap(True)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar = QHBoxLayout()
        bar.addWidget(self.note, 1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.save_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.text, 1)
        lay.addLayout(bar)
        self.copy_button.clicked.connect(self._on_copy)
        self.save_button.clicked.connect(self._on_save)

    def set_code(self, code: str) -> None:
        if code != self.text.toPlainText():
            bar = self.text.verticalScrollBar().value()
            self.text.setPlainText(code)
            self.text.verticalScrollBar().setValue(bar)
        self.note.setText("")

    def set_error(self, message: str) -> None:
        self.note.setText(message)

    def code(self) -> str:
        return self.text.toPlainText()

    def _on_copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code())

    def _on_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the Keras code", "model.py", "Python (*.py)")
        if path:
            self.save_to(path)

    def save_to(self, path: str) -> None:
        atomic_write_text(path, self.code())
