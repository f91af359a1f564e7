"""A layer on the canvas: type and key parameters, output shape, parameter count, error badge.

The item only displays what the scene tells it and reports where the user
dragged it; it never edits the graph.
"""

from __future__ import annotations

import hashlib

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from neuralstudio.core.arity import input_arity
from neuralstudio.ui.editor.layout import NODE_H, NODE_W
from neuralstudio.ui.editor.port_item import PortItem

CATEGORY_COLORS = {
    "input": "#38a169", "core": "#3182ce", "convolution": "#dd6b20", "pooling": "#d69e2e",
    "normalization": "#805ad5", "regularization": "#718096", "dropout": "#718096", "reshaping": "#319795",
    "merging": "#d53f8c", "merge": "#d53f8c", "recurrent": "#c05621", "attention": "#b83280",
    "activation": "#2b6cb0", "activations": "#2b6cb0", "preprocessing": "#4a5568", "embedding": "#2c7a7b",
}
_FALLBACK = ["#3182ce", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#c05621", "#2b6cb0"]


def category_color(category: str | None) -> QColor:
    if not category:
        return QColor("#a0aec0")
    key = category.lower()
    for name, col in CATEGORY_COLORS.items():
        if key.startswith(name):
            return QColor(col)
    return QColor(_FALLBACK[int(hashlib.md5(key.encode()).hexdigest(), 16) % len(_FALLBACK)])


_TITLE_FONT = QFont()
_TITLE_FONT.setPointSizeF(9.5)
_TITLE_FONT.setBold(True)
_SMALL_FONT = QFont()
_SMALL_FONT.setPointSizeF(8.0)


class NodeItem(QGraphicsItem):
    """Mirrors one node of the graph."""

    def __init__(self, node_id: str, class_name: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.class_name = class_name
        self.name = ""
        self.summary = class_name
        self.shape_text = ""
        self.params: int | None = None
        self.color = QColor("#a0aec0")
        self.problems: list[str] = []
        self.warning_only = False
        self.edges: list = []
        self.in_ports: list[PortItem] = []
        self.out_ports: list[PortItem] = []
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.set_port_counts(0 if input_arity(class_name)[1] == 0 else 1, 1)

    # ------------------------------------------------------------------ ports
    def set_port_counts(self, n_in: int, n_out: int) -> None:
        """Rebuild the ports when their number changes (a merge layer grows a free input)."""
        if n_in != len(self.in_ports):
            for p in self.in_ports:
                p.setParentItem(None)
                if p.scene() is not None:
                    p.scene().removeItem(p)
            self.in_ports = [PortItem(self, "in", i) for i in range(n_in)]
            for i, p in enumerate(self.in_ports):
                p.setPos(self._port_x(i, n_in), 0.0)
        if n_out != len(self.out_ports):
            for p in self.out_ports:
                p.setParentItem(None)
                if p.scene() is not None:
                    p.scene().removeItem(p)
            self.out_ports = [PortItem(self, "out", i) for i in range(n_out)]
            for i, p in enumerate(self.out_ports):
                p.setPos(self._port_x(i, n_out), NODE_H)

    @staticmethod
    def _port_x(i: int, n: int) -> float:
        return NODE_W * (i + 1) / (n + 1)

    def in_port_pos(self, slot: int) -> QPointF:
        n = max(len(self.in_ports), slot + 1)
        return self.mapToScene(QPointF(self._port_x(slot, n), 0.0))

    def out_port_pos(self, port: int) -> QPointF:
        n = max(len(self.out_ports), port + 1)
        return self.mapToScene(QPointF(self._port_x(port, n), NODE_H))

    # ---------------------------------------------------------------- display
    def set_display(self, *, name: str, summary: str, color: QColor) -> None:
        self.name, self.summary, self.color = name, summary, color
        self.setToolTip(f"{name} ({self.class_name})")
        self.update()

    def set_info(self, shape_text: str, params: int | None, problems: list[str], warning_only: bool) -> None:
        if (shape_text, params, problems, warning_only) == (self.shape_text, self.params, self.problems,
                                                            self.warning_only):
            return
        self.shape_text, self.params, self.problems, self.warning_only = shape_text, params, problems, warning_only
        tip = f"{self.name} ({self.class_name})"
        if problems:
            tip += "\n\n" + "\n".join("• " + p for p in problems)
        self.setToolTip(tip)
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_W + 4, NODE_H + 4)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        rect = QRectF(0, 0, NODE_W, NODE_H)
        selected = self.isSelected()
        painter.setPen(QPen(QColor("#2f80ed") if selected else QColor("#a0aec0"), 2.5 if selected else 1.0))
        painter.setBrush(QBrush(QColor("#ffffff")))
        if lod < 0.3:  # far away: a coloured box is all one can see
            painter.setBrush(QBrush(self.color))
            painter.drawRect(rect)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.drawRoundedRect(rect, 6, 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(self.color))
        painter.drawRoundedRect(QRectF(0, 0, 7, NODE_H), 3, 3)
        painter.setPen(QColor("#1a202c"))
        painter.setFont(_TITLE_FONT)
        fm = QFontMetricsF(_TITLE_FONT)
        text_w = NODE_W - 22 - (18 if self.problems else 0)
        painter.drawText(QRectF(14, 6, text_w, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(self.summary, Qt.TextElideMode.ElideRight, text_w))
        painter.setFont(_SMALL_FONT)
        sfm = QFontMetricsF(_SMALL_FONT)
        painter.setPen(QColor("#4a5568"))
        painter.drawText(QRectF(14, 25, NODE_W - 22, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         sfm.elidedText(self.name, Qt.TextElideMode.ElideMiddle, NODE_W - 22))
        shape = ("→ " + self.shape_text) if self.shape_text else "→ ?"
        params = "" if self.params is None else f"{self.params:,} params"
        painter.setPen(QColor("#2d3748"))
        painter.drawText(QRectF(14, 44, NODE_W - 22, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         sfm.elidedText(shape, Qt.TextElideMode.ElideRight, NODE_W - 22))
        painter.setPen(QColor("#718096"))
        painter.drawText(QRectF(14, 58, NODE_W - 22, 14), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         params)
        if self.problems:
            badge = QRectF(NODE_W - 24, 5, 18, 18)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(QColor("#d69e2e") if self.warning_only else QColor("#e53e3e")))
            painter.drawEllipse(badge)
            painter.setPen(QColor("#ffffff"))
            painter.setFont(_TITLE_FONT)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, "!")

    def itemChange(self, change, value):  # noqa: ANN001, ANN201
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for e in self.edges:
                e.update_path()
        return super().itemChange(change, value)
