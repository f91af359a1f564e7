"""The canvas view: zoom, pan, rubber-band selection, drops from the palette."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QWidget

from neuralstudio.ui.editor.interactions import ConnectInteraction, Interaction, PanInteraction
from neuralstudio.ui.editor.port_item import PortItem
from neuralstudio.ui.editor.scene import GraphScene

LAYER_MIME = "application/x-neuralstudio-layer"
#: a network opened is shown no smaller than this (its node text stays readable); Ctrl+0 fits it whole
READABLE_ZOOM_MIN = 0.8


class GraphView(QGraphicsView):
    """Shows a :class:`GraphScene`; gestures live in :mod:`interactions`."""

    zoom_changed = Signal(float)

    def __init__(self, scene: GraphScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setObjectName("graphView")
        self.setAccessibleName("graphView")
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontSavePainterState
                                  | QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        # A smaller window (or a dock opened beside the canvas) keeps the network where it was centred,
        # instead of cutting it off at the right edge.
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setAcceptDrops(True)
        self.setToolTip("Drag layers here from the palette. Drag from an output port (bottom) to an input port "
                        "(top) to connect. Wheel zooms; middle-drag or Space+drag pans.")
        self._interaction: Interaction | None = None
        self._space = False

    # ------------------------------------------------------------------ zoom
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float) -> None:
        factor = max(0.05, min(3.0, factor))
        self.scale(factor / self.zoom, factor / self.zoom)
        self.zoom_changed.emit(self.zoom)

    def zoom_to_fit(self) -> None:
        """Show the whole network (View > Zoom to Fit, Ctrl+0), however small that makes it."""
        self._fit(0.05)

    def show_network(self) -> None:
        """The view of a network just opened: all of it if it can be read so, else its top at a readable size.

        Fitted whole, the default template (10 layers in a column) came out at 46%, its text too small to
        read; a learner starts reading at the Input anyway.
        """
        self._fit(READABLE_ZOOM_MIN)

    def _fit(self, smallest: float) -> None:
        rect = self.scene().itemsBoundingRect()
        if rect.isEmpty():
            return
        rect = rect.adjusted(-30, -30, 30, 30)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom > 1.0:
            self.set_zoom(1.0)
            self.centerOn(rect.center())
        elif self.zoom < smallest and smallest > 0.05:
            self.set_zoom(smallest)
            half = self.viewport().height() / (2 * smallest)
            self.centerOn(rect.center().x(), rect.top() + half)
        elif self.zoom < 0.05:
            self.set_zoom(0.05)
            self.centerOn(rect.center().x(), rect.top())
        self.zoom_changed.emit(self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            super().wheelEvent(event)
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom * (1.15 ** steps))
        event.accept()

    # ------------------------------------------------------------- gestures
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
                self._space and event.button() == Qt.MouseButton.LeftButton):
            self._interaction = PanInteraction(self, event.position())
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            port = next((i for i in self.items(event.position().toPoint()) if isinstance(i, PortItem)), None)
            if port is not None:
                self._interaction = ConnectInteraction(self, port)
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._interaction is not None and self._interaction.mouse_move(event):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._interaction is not None:
            inter, self._interaction = self._interaction, None
            inter.mouse_release(event)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape and self._interaction is not None:
            self._interaction.cancel()
            self._interaction = None
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    # ------------------------------------------------------------ drag/drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        if not event.mimeData().hasFormat(LAYER_MIME):
            event.ignore()
            return
        class_name = bytes(event.mimeData().data(LAYER_MIME).data()).decode("utf-8")
        pos = self.mapToScene(event.position().toPoint())
        scene = self.scene()
        assert isinstance(scene, GraphScene)
        edge = scene.edge_at(pos)
        scene.drop_requested.emit(class_name, pos, edge)
        event.acceptProposedAction()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, QColor("#f7fafc"))
        if self.zoom < 0.4:
            return
        grid = 40
        painter.setPen(QPen(QColor("#e2e8f0"), 1))
        left = int(rect.left()) - int(rect.left()) % grid
        top = int(rect.top()) - int(rect.top()) % grid
        lines = []
        from PySide6.QtCore import QLineF

        x = left
        while x < rect.right():
            lines.append(QLineF(x, rect.top(), x, rect.bottom()))
            x += grid
        y = top
        while y < rect.bottom():
            lines.append(QLineF(rect.left(), y, rect.right(), y))
            y += grid
        painter.drawLines(lines)
