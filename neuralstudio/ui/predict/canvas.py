"""The drawing canvas of the Predict workspace: white ink on black, like MNIST.

The canvas keeps its strokes (for Undo) and an image at device resolution (so
strokes stay smooth on HiDPI screens).  While the pen moves, only the new
segment is painted onto the image (cheap, so the prediction that follows has
the whole frame budget); when a stroke ends, every stroke is repainted as one
smoothed :class:`QPainterPath`.  The pen is about 1/14 of the canvas wide, so
the digit reads well on screen.

What the network gets is not that image: :meth:`DigitCanvas.prepared_image`
hands the strokes' paths to :func:`neuralstudio.ml.preprocess.prepare_strokes`,
which draws them again scaled into MNIST's 20 px box with an MNIST-like pen.
Scaling the canvas's raster instead scaled its pen with the drawing: a digit
drawn small came out as blobs (docs/ARCHITECTURE.md, "Stroke -> prediction").
A loaded picture has no paths: it is prepared from the raster as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QTabletEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from neuralstudio.ml.preprocess import PenStroke, prepare_digit, prepare_strokes

DEFAULT_SIZE = 280


@dataclass
class Stroke:
    """One press-move-release of the pen, in logical (device-independent) canvas coordinates."""

    points: list[QPointF] = field(default_factory=list)
    width: float = 20.0
    erase: bool = False
    _xy: list[tuple[float, float]] = field(default_factory=list, repr=False, compare=False)

    def xy(self) -> np.ndarray:
        """The points as an ``(n, 2)`` float64 array of x, y.

        Converted once per point (the points only grow while the pen moves): the prediction that follows
        each move then costs no Python loop over the whole stroke.
        """
        done = len(self._xy)
        if done < len(self.points):
            self._xy.extend((p.x(), p.y()) for p in self.points[done:])
        return np.array(self._xy, dtype=np.float64).reshape(-1, 2)


def _smooth_path(points: list[QPointF]) -> QPainterPath:
    """A path through the stroke's points, with quadratic curves through the midpoints (no corners)."""
    path = QPainterPath(points[0])
    if len(points) == 1:
        path.lineTo(points[0] + QPointF(0.01, 0.0))  # a dot still gets its round cap painted
        return path
    for a, b in zip(points[1:-1], points[2:]):
        path.quadTo(a, (a + b) / 2.0)
    path.lineTo(points[-1])
    return path


class DigitCanvas(QWidget):
    """Draw a digit with the mouse or a pen; right button (or the eraser tool) erases.

    Signals:
        changed: the drawing changed (every pen move, release, clear, undo).
        stroke_finished: a stroke ended (the pen was released).
    """

    changed = Signal()
    stroke_finished = Signal()

    def __init__(self, parent: QWidget | None = None, size: int = DEFAULT_SIZE) -> None:
        super().__init__(parent)
        self.setObjectName("digitCanvas")
        self.setAccessibleName("digitCanvas")
        self.setAccessibleDescription("Draw a digit here with the mouse or a pen; right button erases.")
        self.setToolTip("Draw one digit 0-9. Right button erases; Undo removes the last stroke.")
        self.setFixedSize(size, size)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_StaticContents)
        self._strokes: list[Stroke] = []
        self._current: Stroke | None = None
        self._background: QImage | None = None  # a loaded picture, drawn under the strokes
        self.eraser = False  # the eraser tool: the left button erases too
        self.pen_width = size / 14.0
        self._image = QImage()
        self._make_image()

    # ----- public API -------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(self.width(), self.height())

    @property
    def strokes(self) -> list[Stroke]:
        return list(self._strokes)

    def is_empty(self) -> bool:
        """True when nothing is drawn (no strokes with ink and no loaded picture)."""
        strokes = self._strokes + ([self._current] if self._current is not None else [])
        return self._background is None and not any(not s.erase for s in strokes)

    def clear(self) -> None:
        """Remove every stroke and any loaded picture."""
        self._strokes.clear()
        self._current = None
        self._background = None
        self._redraw()
        self.changed.emit()

    def undo_stroke(self) -> bool:
        """Remove the last stroke; False when there is none."""
        if not self._strokes:
            return False
        self._strokes.pop()
        self._redraw()
        self.changed.emit()
        return True

    def set_background(self, gray: np.ndarray) -> None:
        """Show a picture (white-on-black float array in [0, 1]) fitted into the canvas; strokes are cleared."""
        arr = np.ascontiguousarray((np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8))
        h, w = arr.shape
        img = QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
        self._strokes.clear()
        self._current = None
        self._background = img
        self._redraw()
        self.changed.emit()

    def has_background(self) -> bool:
        """True while a loaded picture is shown (it has no paths: it is prepared from the raster)."""
        return self._background is not None

    def stroke_paths(self) -> list[PenStroke]:
        """Every stroke, the one being drawn included, as paths in logical canvas coordinates, in drawing order.

        Erasers carry the width they painted (twice the pen's), so that what they removed can be worked out
        from the paths alone.
        """
        strokes = self._strokes + ([self._current] if self._current is not None else [])
        return [
            PenStroke(
                points=s.xy(),
                width=s.width * (2.0 if s.erase else 1.0),
                erase=s.erase,
            )
            for s in strokes
        ]

    def prepared_image(self) -> np.ndarray:
        """The drawing prepared as the network's ``(28, 28)`` float32 input in [0, 1].

        Drawn strokes are prepared from their paths (:func:`prepare_strokes`: the same stroke thickness at
        any drawing size); a loaded picture, and strokes drawn over one, from the raster
        (:func:`prepare_digit`), since the picture has no paths.
        """
        if self._background is not None:
            return prepare_digit(self.image_array())
        return prepare_strokes(self.stroke_paths(), (float(self.width()), float(self.height())))

    def image_array(self) -> np.ndarray:
        """The drawing as a uint8 array (device pixels), white ink on black, as shown on screen.

        What :func:`prepare_digit` prepared for the network before strokes were prepared from their paths;
        still what a loaded picture is prepared from (see :meth:`prepared_image`).
        """
        img = self._image
        w, h, bpl = img.width(), img.height(), img.bytesPerLine()
        buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
        return buf[:, :w].copy()

    # ----- painting ---------------------------------------------------------------------------
    def _make_image(self) -> None:
        dpr = max(1.0, float(self.devicePixelRatioF()))
        self._dpr = dpr
        self._image = QImage(round(self.width() * dpr), round(self.height() * dpr), QImage.Format.Format_Grayscale8)
        self._image.setDevicePixelRatio(dpr)
        self._redraw()

    def _pen(self, stroke: Stroke) -> QPen:
        pen = QPen(QColor(0, 0, 0) if stroke.erase else QColor(255, 255, 255))
        pen.setWidthF(stroke.width * (2.0 if stroke.erase else 1.0))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        return pen

    def _painter(self) -> QPainter:
        p = QPainter(self._image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        return p

    def _redraw(self) -> None:
        """Repaint the whole image from the background picture and the strokes."""
        self._image.fill(0)
        p = self._painter()
        if self._background is not None:
            bg = self._background
            scale = min(self.width() / bg.width(), self.height() / bg.height())
            w, h = bg.width() * scale, bg.height() * scale
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h), bg)
        strokes = self._strokes + ([self._current] if self._current is not None else [])
        for stroke in strokes:
            if stroke.points:
                p.strokePath(_smooth_path(stroke.points), self._pen(stroke))
        p.end()
        self.update()

    def _segment(self, a: QPointF, b: QPointF, stroke: Stroke) -> None:
        """Paint only the newest segment of the current stroke (the rest is already on the image)."""
        p = self._painter()
        p.setPen(self._pen(stroke))
        if a == b:
            p.drawPoint(a)
        else:
            p.drawLine(a, b)
        p.end()
        r = stroke.width * (2.0 if stroke.erase else 1.0)
        self.update(QRectF(a, b).normalized().adjusted(-r, -r, r, r).toAlignedRect())

    def paintEvent(self, event: QPaintEvent) -> None:
        if abs(float(self.devicePixelRatioF()) - self._dpr) > 1e-6:  # moved to a screen with another scale
            self._make_image()  # re-rendered from the strokes (kept in logical coordinates): stays sharp
        p = QPainter(self)
        p.setClipRect(event.rect())
        p.drawImage(QPointF(0.0, 0.0), self._image)  # the image carries the device pixel ratio
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._make_image()


    # ----- input ------------------------------------------------------------------------------
    def _begin(self, pos: QPointF, erase: bool) -> None:
        self._current = Stroke(points=[QPointF(pos)], width=self.pen_width, erase=erase)
        self._segment(pos, pos, self._current)
        self.changed.emit()

    def _extend(self, pos: QPointF) -> None:
        stroke = self._current
        if stroke is None:
            return
        last = stroke.points[-1]
        if (pos - last).manhattanLength() < 0.5:
            return
        stroke.points.append(QPointF(pos))
        self._segment(last, pos, stroke)
        self.changed.emit()

    def _end(self) -> None:
        stroke = self._current
        if stroke is None:
            return
        self._current = None
        self._strokes.append(stroke)
        self._redraw()  # replace the segment-by-segment drawing with the smoothed path
        self.changed.emit()
        self.stroke_finished.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) and self._current is None:
            self._begin(event.position(), erase=self.eraser or event.button() == Qt.MouseButton.RightButton)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._current is not None:
            self._extend(event.position())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._current is not None:
            self._extend(event.position())
            self._end()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def tabletEvent(self, event: QTabletEvent) -> None:
        """A pen: its eraser end erases; otherwise the same as the mouse."""
        erase = self.eraser or event.pointerType() == event.pointerType().Eraser
        kind = event.type()
        if kind == QTabletEvent.Type.TabletPress and self._current is None:
            self._begin(event.position(), erase=erase)
        elif kind == QTabletEvent.Type.TabletMove:
            self._extend(event.position())
        elif kind == QTabletEvent.Type.TabletRelease:
            self._end()
        event.accept()
