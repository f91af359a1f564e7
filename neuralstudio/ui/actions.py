"""One way to make a menu/toolbar action, so that every action shows its shortcut in its tooltip alike."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


def make_action(owner: QWidget, text: str, slot: Any, shortcut: Any = None, tip: str = "", *,
                name: str = "") -> QAction:
    """An action of ``owner`` that calls ``slot()``; its tooltip is ``tip`` (or the text) plus the keys.

    The caller decides where its shortcut works (``owner.addAction`` for the window, a widget for a
    canvas-only shortcut).
    """
    a = QAction(text, owner)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    if name:
        a.setObjectName(name)
    keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    a.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f" ({keys})" if keys else ""))
    a.setStatusTip(tip or text.replace("&", ""))
    a.triggered.connect(lambda _checked=False: slot())
    return a
