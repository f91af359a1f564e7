"""An input or output port on a node: where connections start and end."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

PORT_R = 6.0


class PortItem(QGraphicsItem):
    """A small circle; ``kind`` is "in" (``index`` = input slot) or "out" (``index`` = output port)."""

    def __init__(self, node_item: QGraphicsItem, kind: str, index: int) -> None:
        super().__init__(node_item)
        self.node_item = node_item
        self.kind = kind
        self.index = index
        self.connected = False
        self.highlight = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(2)

    @property
    def node_id(self) -> str:
        return self.node_item.node_id  # type: ignore[attr-defined]

    def boundingRect(self) -> QRectF:
        r = PORT_R + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        fill = QColor("#2f80ed") if self.highlight else (QColor("#4a5568") if self.connected else QColor("#ffffff"))
        painter.setBrush(QBrush(fill))
        painter.setPen(QPen(QColor("#4a5568"), 1.5))
        painter.drawEllipse(QRectF(-PORT_R, -PORT_R, 2 * PORT_R, 2 * PORT_R))

    def hoverEnterEvent(self, event) -> None:  # noqa: ANN001
        self.highlight = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:  # noqa: ANN001
        self.highlight = False
        self.update()
