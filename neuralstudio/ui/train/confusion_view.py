"""The Mistakes tab: the confusion matrix as a heat map, and the images behind each cell.

After a run (or on demand) the Train workspace hands over a Qt-free
:class:`~neuralstudio.ml.confusion.ConfusionReport`; this widget only shows it:

- a heat map (pyqtgraph ``ImageItem``) of the counts, true class down and predicted class across, each
  count written in its cell. Right answers (the diagonal) are green, mistakes red, each scaled to its own
  largest count, so that a few dozen confusions stand out beside a thousand right answers;
- the one sentence naming the pair the network confuses most;
- a gallery of the clicked cell's images as the network saw them (28x28, drawn 2x with square pixels),
  the surest prediction first, each with its three largest outputs. Clicking one emits
  :attr:`ConfusionView.example_chosen` (the window opens it in Predict).

The heat map takes the keyboard: arrow keys move the outlined cell, Enter shows its images.

Cheap to show (well under 50 ms for 10 classes, ``tests/benchmarks/bench_confusion.py``): the picture is one
RGBA array; the count labels and the gallery's buttons are made once and reused; the gallery shows
:data:`PAGE` images at a time (Show more adds the next ones). Reports that are not complete yet (a
:class:`~neuralstudio.ml.confusion.ConfusionJob` still predicting) refresh the heat map and the sentence;
the gallery follows when the report is complete or a cell is chosen.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QKeyEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.ui.pixmaps import thumbnail_pixmap

__all__ = ["PAGE", "THUMBNAIL_SCALE", "ConfusionView"]

#: images shown in the gallery at a time (Show more adds as many again)
PAGE = 120
#: images added to the gallery in one pass of the event loop
FILL_CHUNK = 40
#: a 28x28 image is drawn this many times larger
THUMBNAIL_SCALE = 2
#: above this many classes the counts are not written in the cells (they would not fit), only in the tooltips
MAX_WRITTEN_CLASSES = 20
#: class names on the axes and under the thumbnails are cut to this many characters (tooltips have them whole)
NAME_CHARS = 9
#: a gallery cell's width: the image, and under it "Pullov… 97%" three times
THUMB_WIDTH = 92
TOP_LINES = 3
NO_REPORT = "No report yet: train a run, or press Check on test data."
NO_CELL = "Click a cell of the matrix to see its images."
HEATMAP_TIP = ("Rows: the true class; columns: what the network said. Click a cell (or move with the arrow keys and "
               "press Enter) to see its images.")
_ZERO = np.array([247, 248, 250], dtype=np.float64)
_WHITE = np.array([255, 255, 255], dtype=np.float64)
_RIGHT = np.array([39, 118, 78], dtype=np.float64)  # the diagonal: green
_WRONG = np.array([200, 40, 40], dtype=np.float64)  # mistakes: red
_SELECTED = QColor("#1d4ed8")
_ERROR_STYLE = "color: #b00020;"
CHECK_TIP = ("Check the current model (the last one trained or opened) on the test part of the data chosen in the "
             "settings: the counts of every true and predicted class, and the images it gets wrong")


def _short(name: str, chars: int = NAME_CHARS) -> str:
    return name if len(name) <= chars else name[: chars - 1] + "…"


def _value_text(v: float, is_probability: bool) -> str:
    """A probability as a percentage ("97%", "3.2%", "<0.1%"); an activation as a number ("0.83")."""
    if not math.isfinite(v):
        return "?"
    if not is_probability:
        return f"{v:.2f}"
    if v >= 0.1:
        return f"{v:.0%}"
    return f"{v:.1%}" if v >= 0.001 else "<0.1%"


def _page_pixels(report: Any, indices: list[int]) -> list[np.ndarray | None]:
    """uint8 pixels of the examples ``indices`` (None for one that is no image), converted in one numpy pass."""
    pictures = [report.image(i) for i in indices]
    shapes = {p.shape for p in pictures if p is not None}
    if len(shapes) == 1 and all(p is not None for p in pictures):
        stack = np.nan_to_num(np.stack(pictures))
        return list(np.clip(stack * 255.0 + 0.5, 0, 255).astype(np.uint8))
    from neuralstudio.ml.data.preview import thumbnail_pixels

    return [thumbnail_pixels(p) if p is not None else None for p in pictures]


def cell_colors(counts: np.ndarray) -> np.ndarray:
    """``(K, K, 4)`` uint8 RGBA: the diagonal green by its share of the row (the class's recall), mistakes red
    by the square root of their count over the largest mistake (a 3 next to a 23 stays visible), empty cells
    pale grey."""
    k = counts.shape[0]
    c = counts.astype(np.float64)
    rows = c.sum(axis=1, keepdims=True)
    diag = np.eye(k, dtype=bool)
    off = np.where(diag, 0.0, c)
    worst = off.max() if off.size else 0.0
    t_wrong = np.sqrt(off / worst) if worst > 0 else np.zeros_like(c)
    t_right = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    t = np.where(diag, 0.25 + 0.75 * t_right, 0.15 + 0.85 * t_wrong)[..., None]
    target = np.where(diag[..., None], _RIGHT, _WRONG)
    rgb = _WHITE * (1.0 - t) + target * t
    rgb = np.where((c == 0)[..., None], _ZERO, rgb)
    out = np.empty((k, k, 4), dtype=np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out


class _CountsItem(pg.GraphicsObject):
    """Every cell's count, painted by one item in a font of fixed pixel size (a TextItem per cell cost 2 ms each
    to make and to move; this is one paint)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.dark = np.zeros((0, 0), dtype=bool)  # cells dark enough for white text
        self.font = QFont()

    def set_counts(self, counts: np.ndarray, colors: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.counts = counts
        self.dark = colors[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114]) < 140
        self.update()

    def boundingRect(self) -> QRectF:
        k = self.counts.shape[0]
        return QRectF(0, 0, k, k)

    def paint(self, painter: QPainter, *_args: Any) -> None:
        k = self.counts.shape[0]
        if not k or k > MAX_WRITTEN_CLASSES:
            return
        to_device = painter.transform()
        corner = to_device.map(QPointF(0, 0))
        step = to_device.map(QPointF(1, 1)) - corner
        side = min(abs(step.x()), abs(step.y()))
        if side < 9:
            return
        font = QFont(self.font)
        font.setPixelSize(int(max(8, min(15, side * 0.36))))
        painter.save()
        painter.resetTransform()  # text in device pixels: the view's scale would stretch it
        painter.setFont(font)
        light, dark = QColor(255, 255, 255), QColor(26, 32, 44)
        for r in range(k):
            for c in range(k):
                n = int(self.counts[r, c])
                if not n:
                    continue
                centre = to_device.map(QPointF(c + 0.5, r + 0.5))
                box = QRectF(centre.x() - side / 2, centre.y() - side / 2, side, side)
                painter.setPen(light if self.dark[r, c] else dark)
                painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), str(n))
        painter.restore()


class _Gallery(QListWidget):
    """The thumbnails as one icon view (one widget, cheap to fill); Enter opens the current one, as a click does."""

    item_chosen = Signal(object)  # QListWidgetItem

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if Qt.Key(event.key()) in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem() is not None:
            self.item_chosen.emit(self.currentItem())
            event.accept()
            return
        super().keyPressEvent(event)


class _HeatMapWidget(pg.PlotWidget):
    """The heat map's plot, which also takes the keyboard: arrows move the outlined cell, Enter shows it."""

    key_moved = Signal(int, int)  # rows, columns
    key_activated = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        moves = {Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0), Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1)}
        key = Qt.Key(event.key())
        if key in moves:
            self.key_moved.emit(*moves[key])
            event.accept()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.key_activated.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class ConfusionView(QWidget):
    """The confusion matrix of a report, its worst pair in words, and the gallery of the chosen cell.

    Signals:
        example_chosen(object): a thumbnail was clicked: the example as the network saw it, float32 (a
            ``(28, 28)`` array for MNIST-like data; ``(h, w)`` or ``(h, w, 3)`` for other images).
        check_requested(): Check on test data was pressed (the workspace checks the current model).
        cell_shown(int, int): the gallery now shows the cell (true, predicted).
    """

    example_chosen = Signal(object)
    check_requested = Signal()
    cell_shown = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionView")
        self.report: Any = None
        self.selected: tuple[int, int] | None = None  # the outlined cell
        self.shown: tuple[int, int] | None = None  # the cell whose images the gallery shows
        self._chosen_by_user = False  # a cell the learner picked is kept when the next report comes
        self._limit = PAGE
        self._fill_serial = 0  # which gallery fill is current: chunks of an older one stop
        self._indices: np.ndarray = np.zeros(0, dtype=np.int64)
        self.last_show_seconds = 0.0  # how long the last set_report took on the GUI thread (the benchmark reads it)

        self.sentence_label = QLabel(NO_REPORT, self)
        self.sentence_label.setObjectName("worstPairLabel")
        self.sentence_label.setAccessibleName("Worst confused pair")
        self.sentence_label.setTextFormat(Qt.TextFormat.PlainText)  # class names come from untrusted files
        self.sentence_label.setWordWrap(True)
        self.sentence_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bold = QFont(self.sentence_label.font())
        bold.setBold(True)
        self.sentence_label.setFont(bold)
        self.status_label = QLabel("", self)
        self.status_label.setObjectName("confusionStatus")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setWordWrap(True)
        self.check_button = QPushButton("Check on test data", self)
        self.check_button.setObjectName("checkTestDataButton")
        self.check_button.setAccessibleName("checkTestDataButton")
        self.check_button.setToolTip(CHECK_TIP)
        self.check_button.clicked.connect(self._on_check_clicked)

        self.heatmap = _HeatMapWidget(self, background="w")
        self.heatmap.setObjectName("confusionHeatMap")
        self.heatmap.setAccessibleName("Confusion matrix")
        self.heatmap.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.heatmap.setToolTip(HEATMAP_TIP)
        self.heatmap.setMinimumSize(240, 240)
        self.heatmap.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        plot = self.heatmap.getPlotItem()
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.invertY(True)  # the first class on top, as in a printed table
        plot.setAspectLocked(True)
        plot.setLabel("bottom", "predicted class")
        plot.setLabel("left", "true class")
        self.image_item = pg.ImageItem(axisOrder="row-major")  # image[row = true, column = predicted]
        plot.addItem(self.image_item)
        self.counts_item = _CountsItem()
        self.counts_item.setZValue(10)
        plot.addItem(self.counts_item, ignoreBounds=True)
        self._outline = QGraphicsRectItem(QRectF(0, 0, 1, 1))
        pen = QPen(_SELECTED, 3)
        pen.setCosmetic(True)
        self._outline.setPen(pen)
        self._outline.setZValue(20)
        self._outline.hide()
        plot.addItem(self._outline, ignoreBounds=True)
        scene = self.heatmap.scene()
        scene.sigMouseClicked.connect(self._on_scene_clicked)
        scene.sigMouseMoved.connect(self._on_scene_moved)
        self.heatmap.key_moved.connect(self._on_key_moved)
        self.heatmap.key_activated.connect(self._on_key_activated)

        self.gallery_label = QLabel(NO_CELL, self)
        self.gallery_label.setObjectName("galleryLabel")
        self.gallery_label.setTextFormat(Qt.TextFormat.PlainText)
        self.gallery_label.setWordWrap(True)
        self.gallery = _Gallery(self)
        self.gallery.setObjectName("mistakesGallery")
        self.gallery.setAccessibleName("Images of the chosen cell")
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setWrapping(True)
        self.gallery.setUniformItemSizes(True)
        self.gallery.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        side = 28 * THUMBNAIL_SCALE
        self.gallery.setIconSize(QSize(side, side))
        lines = self.gallery.fontMetrics().lineSpacing()
        self.gallery.setGridSize(QSize(THUMB_WIDTH, side + (TOP_LINES + 0) * lines + 14))
        self.gallery.setSpacing(2)
        self.gallery.itemClicked.connect(self._on_thumbnail_clicked)
        self.gallery.item_chosen.connect(self._on_thumbnail_clicked)
        self.more_button = QPushButton("Show more", self)
        self.more_button.setObjectName("galleryMoreButton")
        self.more_button.setToolTip(f"Show the next {PAGE} images of this cell")
        self.more_button.clicked.connect(self._on_more_clicked)
        self.more_button.hide()

        top = QHBoxLayout()
        top.addWidget(self.sentence_label, 1)
        top.addWidget(self.check_button, 0, Qt.AlignmentFlag.AlignTop)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.gallery_label)
        right.addWidget(self.gallery, 1)
        right.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignLeft)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.heatmap, 2)
        body.addLayout(right, 3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(top)
        lay.addWidget(self.status_label)
        lay.addLayout(body, 1)

    # ------------------------------------------------------------------ public API
    def set_report(self, report: Any, *, about: str = "") -> None:
        """Show ``report`` (a :class:`~neuralstudio.ml.confusion.ConfusionReport`, possibly partial).

        ``about`` says what was checked ("the model of run 12 on the test images of mnist-sample"), for the
        status line. The cell the learner chose is kept while the table has it; else the worst pair is
        outlined and shown.
        """
        t0 = time.perf_counter()
        first = self.report is None or self.report.num_classes != report.num_classes
        self.report = report
        self._draw_matrix(report, first)
        self.sentence_label.setText(report.worst_pair_sentence())
        self._say(self._status_text(report, about))
        k = report.num_classes
        if not self._chosen_by_user or self.selected is None or max(self.selected) >= k:
            self._chosen_by_user = False
            pair = report.worst_pair()
            self._select((pair.true, pair.predicted) if pair is not None else None)
        if self.selected is not None and (report.complete or self.shown != self.selected):
            self._show_cell(*self.selected, keep_limit=self.shown == self.selected)
        elif self.selected is None:
            self._show_cell(None)
        self.last_show_seconds = time.perf_counter() - t0

    def set_message(self, text: str, *, error: bool = False) -> None:
        """A line above the matrix: what is being checked, or why it could not be."""
        self._say(text, error=error)

    def set_checking(self, checking: bool) -> None:
        """Check on test data is unavailable while a check goes on."""
        self.check_button.setEnabled(not checking)

    def clear(self) -> None:
        """Show no report."""
        self.report = None
        self.selected = self.shown = None
        self._chosen_by_user = False
        self.image_item.clear()
        self.counts_item.set_counts(np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0, 4), dtype=np.uint8))
        self._outline.hide()
        self.sentence_label.setText(NO_REPORT)
        self._show_cell(None)

    def show_cell(self, true: int, predicted: int) -> None:
        """Outline cell (true, predicted) and show its images, as a click on it does."""
        k = self.report.num_classes if self.report is not None else 0
        if not (0 <= true < k and 0 <= predicted < k):
            return
        self._chosen_by_user = True
        self._select((true, predicted))
        self._show_cell(true, predicted)

    def cell_center(self, true: int, predicted: int) -> QPointF:
        """The scene position of the middle of a cell (tests click there)."""
        return self.image_item.mapToScene(QPointF(predicted + 0.5, true + 0.5))

    def thumbnails(self) -> list[QListWidgetItem]:
        """The gallery's items, in order (each holds its example's index as ``data(UserRole)``)."""
        return [self.gallery.item(i) for i in range(self.gallery.count())]

    # ----------------------------------------------------------------- the matrix
    def _draw_matrix(self, report: Any, first: bool) -> None:
        k = report.num_classes
        colors = cell_colors(report.counts)
        self.image_item.setImage(colors, autoLevels=False, levels=(0, 255))
        self.image_item.setRect(QRectF(0, 0, k, k))
        self.counts_item.set_counts(report.counts, colors)
        if first:
            plot = self.heatmap.getPlotItem()
            step = max(1, math.ceil(k / MAX_WRITTEN_CLASSES))
            ticks = [[(i + 0.5, _short(report.name(i))) for i in range(0, k, step)]]
            plot.getAxis("bottom").setTicks(ticks)
            plot.getAxis("left").setTicks(ticks)
            plot.setRange(xRange=(0, k), yRange=(0, k), padding=0.0)

    def _cell_at(self, scene_pos: Any) -> tuple[int, int] | None:
        if self.report is None:
            return None
        p = self.image_item.mapFromScene(scene_pos)
        col, row = math.floor(p.x()), math.floor(p.y())
        k = self.report.num_classes
        return (row, col) if 0 <= row < k and 0 <= col < k else None

    def _select(self, cell: tuple[int, int] | None) -> None:
        self.selected = cell
        if cell is None:
            self._outline.hide()
            return
        self._outline.setRect(QRectF(cell[1], cell[0], 1, 1))
        self._outline.show()

    def _cell_tip(self, true: int, predicted: int) -> str:
        r = self.report
        n = int(r.counts[true, predicted])
        total = r.class_total(true)
        share = f" ({n / total:.1%} of the {total:,} images of {r.name(true)})" if total else ""
        if true == predicted:
            return f"{r.name(true)} recognised as {r.name(true)}: {n:,} image(s){share}. Click to see them."
        return f"True {r.name(true)}, called {r.name(predicted)}: {n:,} image(s){share}. Click to see them."

    # ----------------------------------------------------------------- the gallery
    def _show_cell(self, true: int | None, predicted: int | None = None, *, keep_limit: bool = False) -> None:
        r = self.report
        if r is None or true is None or predicted is None:
            self.shown = None
            self._indices = np.zeros(0, dtype=np.int64)
            self.gallery_label.setText(NO_CELL if r is not None and r.examples else "")
            self._fill_gallery()
            return
        if not keep_limit:
            self._limit = PAGE
        self.shown = (true, predicted)
        self._indices = r.cell(true, predicted)
        n = len(self._indices)
        if n == 0:
            self.gallery_label.setText(f"No image of {r.name(true)} was called {r.name(predicted)}.")
        else:
            what = (f"{r.name(true)} recognised as {r.name(true)}" if true == predicted
                    else f"True {r.name(true)}, called {r.name(predicted)}")
            values = "probabilities" if r.is_probability else "output values"
            self.gallery_label.setText(f"{what}: {n:,} image(s), the surest first; under each, its three largest "
                                       f"{values}. Click one to open it in Predict.")
        self._fill_gallery()
        self.cell_shown.emit(true, predicted)

    def _fill_gallery(self) -> None:
        """The shown cell's first :attr:`_limit` images: the first :data:`FILL_CHUNK` now, the rest in later passes
        of the event loop, so that no stretch on the GUI thread is long (one image costs about 0.3 ms)."""
        self._fill_serial += 1
        g = self.gallery
        g.clear()
        g.scrollToTop()
        left = len(self._indices) - min(len(self._indices), self._limit)
        self.more_button.setVisible(left > 0)
        self.more_button.setText(f"Show more ({left:,} left)")
        self._add_thumbnails(self._fill_serial, 0)

    def _add_thumbnails(self, serial: int, start: int) -> None:
        r = self.report
        if serial != self._fill_serial or r is None:
            return  # another cell is shown since
        end = min(len(self._indices), self._limit, start + FILL_CHUNK)
        page = [int(i) for i in self._indices[start:end]]
        side = 28 * THUMBNAIL_SCALE
        g = self.gallery
        g.setUpdatesEnabled(False)  # one paint for the chunk
        try:
            for i, pixels in zip(page, _page_pixels(r, page)):
                top = r.top(i)
                text = "\n".join(f"{_short(name, 6)} {_value_text(v, r.is_probability)}" for name, v in top)
                item = QListWidgetItem(QIcon(thumbnail_pixmap(pixels, side)) if pixels is not None else QIcon(), text)
                whole = ", ".join(f"{name} {_value_text(v, r.is_probability)}" for name, v in top)
                truth, said = r.name(int(r.y_true[i])), r.name(int(r.y_pred[i]))
                item.setToolTip(f"Example {i:,} of the test data: true {truth}, called {said}. Largest values: "
                                f"{whole}. Click to open it in Predict.")
                item.setData(Qt.ItemDataRole.AccessibleTextRole, f"example {i}: true {truth}, called {said}")
                item.setData(Qt.ItemDataRole.UserRole, i)
                item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
                g.addItem(item)
        finally:
            g.setUpdatesEnabled(True)
        if end < min(len(self._indices), self._limit):
            QTimer.singleShot(0, lambda: self._add_thumbnails(serial, end))

    @property
    def filling(self) -> bool:
        """The gallery is still adding the shown page's images (in passes of the event loop)."""
        return self.gallery.count() < min(len(self._indices), self._limit)

    # ----------------------------------------------------------------- text
    @staticmethod
    def _status_text(report: Any, about: str) -> str:
        what = about[:1].upper() + about[1:] + ": " if about else ""
        if not report.complete:
            return f"{what}checking, {report.examples:,} of {report.examples_total:,} images so far…"
        acc = report.accuracy
        score = f"{acc:.1%} right, " if acc is not None else ""
        took = f" (predicted in {report.predict_seconds:.1f} s)" if report.predict_seconds else ""
        return f"{what}{score}{report.mistakes:,} mistake(s) in {report.examples:,} images{took}."

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(_ERROR_STYLE if error else "")

    # ------------------------------------------------------------------- slots
    def _on_check_clicked(self) -> None:
        self.check_requested.emit()

    def _on_scene_clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        cell = self._cell_at(event.scenePos())
        if cell is not None:
            self.heatmap.setFocus(Qt.FocusReason.MouseFocusReason)
            self.show_cell(*cell)

    def _on_scene_moved(self, pos: Any) -> None:
        cell = self._cell_at(pos)
        self.heatmap.setToolTip(self._cell_tip(*cell) if cell is not None else HEATMAP_TIP)

    def _on_key_moved(self, dr: int, dc: int) -> None:
        if self.report is None:
            return
        k = self.report.num_classes
        row, col = self.selected if self.selected is not None else (0, 0)
        self._chosen_by_user = True
        self._select((min(k - 1, max(0, row + dr)), min(k - 1, max(0, col + dc))))
        self.heatmap.setToolTip(self._cell_tip(*self.selected))

    def _on_key_activated(self) -> None:
        if self.selected is not None:
            self.show_cell(*self.selected)

    def _on_more_clicked(self) -> None:
        self._limit += PAGE
        self._fill_gallery()

    def _on_thumbnail_clicked(self, item: QListWidgetItem) -> None:
        index = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if self.report is None or index is None:
            return
        image = self.report.image(int(index))
        if image is not None:
            self.example_chosen.emit(image)
