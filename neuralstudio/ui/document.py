"""The open design: the Design, its undo stack, its file path and its modified state.

The document turns the graph's plain-Python events into a Qt signal so that
widgets (analysis, code view, title bar) can react without subscribing to the
core graph themselves.  The modified state follows the undo stack: saving marks
the stack clean, and undoing back to that point makes the design unmodified again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from neuralstudio.core.design import Design
from neuralstudio.core.events import GraphEvent
from neuralstudio.core.graph import Graph


class Document(QObject):
    """Holds the design being edited."""

    graph_event = Signal(object)  # GraphEvent
    design_replaced = Signal()
    path_changed = Signal()
    modified_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.design = Design()
        self.path: Path | None = None
        self.design.graph.subscribe(self._on_graph_event)
        self._forced_dirty = False

    @property
    def graph(self) -> Graph:
        return self.design.graph

    @property
    def modified(self) -> bool:
        return self._forced_dirty or not self.undo_stack.isClean()

    def set_design(self, design: Design, path: Path | None, *, modified: bool = False) -> None:
        """Replace the design (open, new); the undo history starts again."""
        self.design.graph.events.disconnect(self._on_graph_event)
        self.design = design
        design.graph.subscribe(self._on_graph_event)
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self._forced_dirty = modified
        self.path = Path(path) if path is not None else None
        self.design_replaced.emit()
        self.path_changed.emit()
        self.modified_changed.emit(self.modified)

    def save(self, path: Path) -> None:
        """Write the design atomically and mark it saved."""
        self.design.save(path)
        self.path = Path(path)
        self._forced_dirty = False
        self.undo_stack.setClean()
        self.path_changed.emit()
        self.modified_changed.emit(False)

    def mark_modified(self) -> None:
        """A change outside the undo history (the design's name) that still needs saving."""
        self._forced_dirty = True
        self.modified_changed.emit(True)

    def display_name(self) -> str:
        return self.path.name if self.path else f"{self.design.name} (unsaved)"

    def _on_graph_event(self, event: GraphEvent) -> None:
        self.graph_event.emit(event)

    def _on_clean_changed(self, _clean: bool) -> None:
        self.modified_changed.emit(self.modified)
