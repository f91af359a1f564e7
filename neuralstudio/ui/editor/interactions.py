"""Mouse gestures on the canvas, kept out of the items (orange-canvas-core style).

The view hands mouse events to the active interaction until it ends.  An
interaction only draws feedback and emits a request through the scene.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsView

from neuralstudio.ui.editor.edge_item import curve
from neuralstudio.ui.editor.port_item import PortItem


class Interaction:
    """Base: return True from a handler when the event was consumed."""

    def __init__(self, view: QGraphicsView) -> None:
        self.view = view
        self.done = False

    def mouse_move(self, event: QMouseEvent) -> bool:
        return False

    def mouse_release(self, event: QMouseEvent) -> bool:
        return False

    def cancel(self) -> None:
        self.done = True


class ConnectInteraction(Interaction):
    """Drag from a port to a port of the opposite kind: request a connection."""

    def __init__(self, view: QGraphicsView, start: PortItem) -> None:
        super().__init__(view)
        self.start = start
        self.line = QGraphicsPathItem()
        pen = QPen(QColor("#2f80ed"), 2.0, Qt.PenStyle.DashLine)
        self.line.setPen(pen)
        self.line.setZValue(10)
        view.scene().addItem(self.line)
        self._target: PortItem | None = None

    def _port_under(self, pos: QPoint) -> PortItem | None:
        for item in self.view.items(pos):
            if isinstance(item, PortItem) and item.kind != self.start.kind and item.node_id != self.start.node_id:
                return item
        # dropping onto a node body picks its first free input (or its output)
        for item in self.view.items(pos):
            node = getattr(item, "node_item", None) or item
            ports = getattr(node, "in_ports" if self.start.kind == "out" else "out_ports", None)
            if ports and getattr(node, "node_id", None) != self.start.node_id:
                free = [p for p in ports if not p.connected] or ports
                return free[0]
        return None

    def mouse_move(self, event: QMouseEvent) -> bool:
        a = self.start.scenePos()
        b = self.view.mapToScene(event.position().toPoint())
        target = self._port_under(event.position().toPoint())
        if self._target is not None and self._target is not target:
            self._target.highlight = False
            self._target.update()
        self._target = target
        if target is not None:
            target.highlight = True
            target.update()
            b = target.scenePos()
        self.line.setPath(curve(a, b) if self.start.kind == "out" else curve(b, a))
        return True

    def mouse_release(self, event: QMouseEvent) -> bool:
        target = self._port_under(event.position().toPoint())
        self.cancel()
        if target is not None:
            out, inp = (self.start, target) if self.start.kind == "out" else (target, self.start)
            self.view.scene().connect_requested.emit(out.node_id, inp.node_id, inp.index)
        return True

    def cancel(self) -> None:
        if self._target is not None:
            self._target.highlight = False
            self._target.update()
        if self.line.scene() is not None:
            self.line.scene().removeItem(self.line)
        self.done = True


class PanInteraction(Interaction):
    """Middle-button drag, or space + left drag: move the view."""

    def __init__(self, view: QGraphicsView, at: QPointF) -> None:
        super().__init__(view)
        self.last = at
        view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouse_move(self, event: QMouseEvent) -> bool:
        d = event.position() - self.last
        self.last = event.position()
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - int(d.x()))
        v.setValue(v.value() - int(d.y()))
        return True

    def mouse_release(self, event: QMouseEvent) -> bool:
        self.cancel()
        return True

    def cancel(self) -> None:
        self.view.viewport().unsetCursor()
        self.done = True
