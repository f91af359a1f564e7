"""The problems list: every problem of the last analysis, with a one-click fix where one exists."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)


class ProblemsList(QListWidget):
    """Click a problem to select its layer; click its button to apply the fix."""

    node_requested = Signal(str)
    fix_requested = Signal(object)  # Problem

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("problemsList")
        self.setAccessibleName("problemsList")
        self.setWordWrap(True)
        self.problems: list[Any] = []
        self.fix_buttons: list[QPushButton] = []
        self.itemClicked.connect(self._on_item_clicked)
        self.set_status("Checking the network starts once Keras has loaded…")

    def set_status(self, text: str) -> None:
        self.clear()
        self.problems, self.fix_buttons = [], []
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        item.setForeground(QColor("#718096"))
        self.addItem(item)

    def set_problems(self, problems: list[Any], names: dict[str, str]) -> None:
        """Show ``problems``; ``names`` maps node ids to layer names for the messages."""
        if not problems:
            self.set_status("No problems: the network builds.")
            return
        self.clear()
        self.problems = list(problems)
        self.fix_buttons = []
        for p in self.problems:
            where = names.get(p.node_id, "") if p.node_id else ""
            icon = "⚠" if p.severity != "error" else "✖"
            text = f"{icon} {where + ': ' if where else ''}{p.message}"
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, p.node_id)
            item.setToolTip(p.message)
            self.addItem(item)
            row = QWidget()
            lay = QHBoxLayout(row)
            lay.setContentsMargins(6, 3, 6, 3)
            label = QLabel(text)
            label.setWordWrap(True)
            label.setStyleSheet("color: #c53030" if p.severity == "error" else "color: #975a16")
            lay.addWidget(label, 1)
            if p.fix is not None:
                btn = QPushButton(p.fix.label)
                btn.setObjectName("fixButton")
                btn.setToolTip(f"Apply this fix (one undo step): {p.fix.label}")
                btn.clicked.connect(lambda _c=False, prob=p: self.fix_requested.emit(prob))
                lay.addWidget(btn)
                self.fix_buttons.append(btn)
            item.setSizeHint(QSize(100, max(row.sizeHint().height(), 30)))
            self.setItemWidget(item, row)

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        nid = item.data(Qt.ItemDataRole.UserRole)
        if nid:
            self.node_requested.emit(nid)
