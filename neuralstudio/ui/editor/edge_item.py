"""A connection drawn as a vertical cubic curve from an output port to an input port."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from neuralstudio.core.graph import Edge


def curve(a: QPointF, b: QPointF) -> QPainterPath:
    path = QPainterPath(a)
    dy = max(abs(b.y() - a.y()) * 0.5, 30.0)
    path.cubicTo(QPointF(a.x(), a.y() + dy), QPointF(b.x(), b.y() - dy), b)
    return path


class EdgeItem(QGraphicsPathItem):
    """Mirrors one :class:`Edge`; selectable so it can be deleted."""

    def __init__(self, edge: Edge, src_item: QGraphicsItem, dst_item: QGraphicsItem) -> None:
        super().__init__()
        self.edge = edge
        self.src_item = src_item
        self.dst_item = dst_item
        self.setZValue(-1)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self._pen = QPen(QColor("#718096"), 2.0)
        self._pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.setPen(self._pen)
        self.update_path()

    def update_path(self) -> None:
        a = self.src_item.out_port_pos(self.edge.src_port)  # type: ignore[attr-defined]
        b = self.dst_item.in_port_pos(self.edge.slot)  # type: ignore[attr-defined]
        self.setPath(curve(a, b))

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(14)
        return stroker.createStroke(self.path())

    def itemChange(self, change, value):  # noqa: ANN001, ANN201
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            pen = QPen(self._pen)
            if value:
                pen.setColor(QColor("#2f80ed"))
                pen.setWidthF(3.0)
            self.setPen(pen)
        return super().itemChange(change, value)
