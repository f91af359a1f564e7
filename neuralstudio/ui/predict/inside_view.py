"""Inside the network: what each layer of the model makes of the drawing, beside the probabilities.

Four views, each under one line saying what it is (``ml/activations.py`` computes them):

- **Saliency**: the 28x28 input in grey with gradient x input as a hot overlay: the pixels that drove the answer.
- **First-layer filters**: the kernels of the first convolution layer (red positive weights, blue negative).
- **Feature maps**: per convolution layer, a grid of its first :data:`~neuralstudio.ml.activations.MAX_CHANNELS`
  maps for the drawing ("+k more" says how many are not shown), one colour scale per layer.
- **Dense activations**: one bar chart per hidden Dense (or recurrent) layer.

A view that does not apply to the model (no convolution layers, a sequence model, no hidden Dense layer...) is
hidden and the sentence of :func:`~neuralstudio.ml.activations.explain_unavailable` says why.

Live while drawing without stalling the pen: the Predict workspace hands every drawing it predicts (its own
coalescing 0-ms timer, docs/ARCHITECTURE.md "Stroke -> prediction") to :meth:`InsideView.show_drawing`, which
only stores it for the view's worker: one plain Python thread per probe (docs/ARCHITECTURE.md "Threads") that
takes the newest drawing, runs :meth:`ActivationProbe.look` (one compiled call: the forward pass with every layer's
output and the backward pass of the saliency together) and makes the images in NumPy. Everything of a drawing is
sent as one frame, one queued signal: the layer outputs come from the same call as the gradient, so sending the maps
first would show them no earlier, and a second frame cost the GUI thread a second wake and repaint. Drawings that
arrive while it computes replace each other, so the worker never falls behind the pen; the GUI thread only wraps the
arrays in pixmaps and sets the bars' heights. The probe's call costs 5-10 ms of CPU for the bundled model: too long
for the GUI thread between two pen moves, and Keras work stays off it (docs/ARCHITECTURE.md, "Threads").
"""

from __future__ import annotations

import atexit
import functools
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont, QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from neuralstudio.ml.activations import DENSE, FEATURE_MAPS, FILTERS, MAX_CHANNELS, SALIENCY

__all__ = ["InsideView"]

MAP_COLUMNS = 8
#: Narrow enough that the Predict workspace, with this panel open, still fits 1024 px beside a long verdict
#: ("not sure: output activation 0.54, next 0.54"); the saliency (170 px) and 8 filters of 27 px still fit.
MIN_WIDTH = 240
MIN_CELL, MAX_CELL = 18, 64
GAP = 2
SALIENCY_SCALE = 6  # 28 * 6 = 168 px
FILTER_CELL = 24
FILTER_GAP = 3
FILTER_BACKGROUND = (90, 90, 90)  # dark, between filters whose weights near zero are white
BAR_HEIGHT = 96
BACKGROUND = (236, 236, 236)

SALIENCY_CAPTION = "Saliency (gradient × input): the hottest pixels drove the answer “{label}” most."
SALIENCY_EMPTY = "Saliency (gradient × input): the pixels that drive the network's answer."
FILTERS_CAPTION = "Filters of {layer}: the {size} patterns it looks for (red +, blue − weights)."
MAPS_CAPTION = "Feature maps: how each convolution layer's filters respond to your drawing (bright = strong)."
DENSE_CAPTION = "Dense activations: the value of each unit of the hidden layers for this drawing."
NO_MODEL = "No model yet: open a model or use the bundled one to see inside it."
DRAW_FIRST = "Draw a digit to see which pixels drive the answer."


def _lut(name: str) -> np.ndarray:
    return np.asarray(pg.colormap.get(name).getLookupTable(0.0, 1.0, 256), dtype=np.uint8)[:, :3]


def _diverging_lut() -> np.ndarray:
    """Blue (negative) - white (zero) - red (positive), for weights."""
    t = np.linspace(-1.0, 1.0, 256)
    neg, pos = np.clip(-t, 0, 1), np.clip(t, 0, 1)
    r = 1.0 - 0.75 * neg
    g = 1.0 - 0.8 * neg - 0.85 * pos
    b = 1.0 - 0.75 * pos
    return np.round(np.stack([r, g, b], axis=1) * 255).astype(np.uint8)


MAPS_LUT = _lut("inferno")
FILTERS_LUT = _diverging_lut()


# ----------------------------------------------------------------------------- images, in NumPy (worker thread)
@functools.lru_cache(maxsize=64)
def _mosaic_index(n: int, h: int, w: int, columns: int, cell: int, gap: int) -> np.ndarray:
    """For each pixel of a grid of ``n`` ``h x w`` maps, the index of the map pixel it shows (``n*h*w``: a gap).

    Made once per layout, so that a grid costs two NumPy lookups per drawing (well under a millisecond), not a
    resize and a copy per map.
    """
    ch, cw = (cell, max(1, round(cell * w / h))) if h >= w else (max(1, round(cell * h / w)), cell)
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    index = np.full((rows * (ch + gap) - gap, cols * (cw + gap) - gap), n * h * w, dtype=np.intp)
    tile = ((np.arange(ch) * h) // ch)[:, None] * w + ((np.arange(cw) * w) // cw)[None, :]
    for i in range(n):
        r, c = divmod(i, cols)
        index[r * (ch + gap):r * (ch + gap) + ch, c * (cw + gap):c * (cw + gap) + cw] = i * h * w + tile
    index.setflags(write=False)
    return index


def _rgb32(colours: np.ndarray) -> np.ndarray:
    """``(k, 3)`` uint8 colours as ``0xFFRRGGBB`` words, the pixels of a ``QImage.Format_RGB32``."""
    c = np.asarray(colours, dtype=np.uint32)
    return (0xFF000000 | (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).astype(np.uint32)


def mosaic(images: np.ndarray, lut: np.ndarray, *, columns: int, cell: int, gap: int = GAP,
           background: tuple[int, int, int] = BACKGROUND) -> np.ndarray:
    """``(n, h, w)`` images in 0..1 as one grid of ``0xFFRRGGBB`` pixels, each magnified to ``cell`` px on its longer
    side.

    Nearest neighbour, so every pixel of a map stays a sharp square, as in the 28x28 preview; every layer's maps
    get the same cell size whatever their resolution (28x28, 14x14, 7x7), so the grids line up. Each map pixel is
    coloured once, then one lookup places them (0.1 ms for 16 maps of 56 px, against 1-3 ms for a resize per map).
    """
    n, h, w = images.shape
    index = _mosaic_index(n, h, w, columns, cell, gap)
    palette = _rgb32(lut)
    levels = (np.asarray(images, dtype=np.float32).reshape(-1) * 255.0 + 0.5).astype(np.intp).clip(0, 255)
    pixels = np.empty(n * h * w + 1, dtype=np.uint32)
    np.take(palette, levels, out=pixels[:-1])
    pixels[-1] = _rgb32(np.asarray([background]))[0]  # the gaps
    return np.take(pixels, index)


def saliency_overlay(x: np.ndarray, s: np.ndarray, scale: int) -> np.ndarray:
    """The drawing ``x`` in grey with the saliency ``s`` (both ``(28, 28)`` in 0..1) as a "hot" overlay, RGB uint8.

    The grey is dimmed so that the hot colours (black-red-yellow-white, more opaque where the saliency is higher)
    stand out on the ink they belong to.
    """
    grey = (0.55 * np.asarray(x, dtype=np.float32))[..., None] * np.ones(3, dtype=np.float32)
    s = np.asarray(s, dtype=np.float32)
    hot = np.stack([np.clip(3 * s, 0, 1), np.clip(3 * s - 1, 0, 1), np.clip(3 * s - 2, 0, 1)], axis=-1)
    alpha = np.clip(1.6 * s, 0.0, 1.0)[..., None]
    rgb = np.rint((grey * (1 - alpha) + hot * alpha) * 255).astype(np.uint8)
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def _pixmap(pixels: np.ndarray, dpr: float) -> QPixmap:
    """A pixmap of ``(h, w)`` ``0xFFRRGGBB`` words or ``(h, w, 3)`` RGB bytes. The array is held in a local name and
    the image copied at once: a QImage does not keep Python bytes alive (docs/ARCHITECTURE.md, "Traps")."""
    data = np.ascontiguousarray(pixels)
    h, w = data.shape[:2]
    if data.ndim == 2:
        img = QImage(data.data, w, h, 4 * w, QImage.Format.Format_RGB32).copy()
    else:
        img = QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pix = QPixmap.fromImage(img)
    pix.setDevicePixelRatio(dpr)
    return pix


@dataclass(frozen=True)
class _Request:
    serial: int
    x: np.ndarray
    class_index: int
    cell: int
    dpr: float


@dataclass(frozen=True)
class _Frame:
    """What the worker made of one drawing: the layers' outputs (feature maps and bars) and the saliency, all from
    one call of the probe, or the error that stopped it."""

    serial: int
    probe_id: int
    activations: tuple[Any, ...] = ()
    maps: tuple[np.ndarray, ...] = ()  # per convolution layer: its RGB grid
    look: Any = None
    saliency: np.ndarray | None = None
    error: str = ""
    seconds: float = 0.0  # from the worker taking the drawing to this frame


class _Bridge(QObject):
    """Carries the worker's frames to the GUI thread (a queued signal: the worker never touches a widget)."""

    frame = Signal(object)


#: the workers not stopped yet, stopped at exit: the main window shares its task runner with Predict and does not
#: shut the workspace down, and a thread still inside TensorFlow while the interpreter ends may crash it.
_WORKERS: weakref.WeakSet[_Worker] = weakref.WeakSet()


@atexit.register
def _stop_workers() -> None:
    for worker in list(_WORKERS):
        worker.stop(wait_s=2.0)


class _Worker:
    """One plain Python thread for one probe, computing only the newest drawing it was given."""

    def __init__(self, probe: Any, bridge: _Bridge) -> None:
        self.probe = probe
        self._bridge = bridge
        self._cond = threading.Condition()
        self._request: _Request | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="neuralstudio-inside", daemon=True)
        self._thread.start()
        _WORKERS.add(self)

    def submit(self, request: _Request) -> None:
        with self._cond:
            self._request = request  # an older drawing not started yet is dropped: only the latest matters
            self._cond.notify()

    def stop(self, wait_s: float = 0.0) -> None:
        with self._cond:
            self._stopped = True
            self._request = None
            self._cond.notify()
        if wait_s > 0:
            self._thread.join(wait_s)

    def _next(self) -> _Request | None:
        """The newest drawing, waiting for one; None once stopped."""
        with self._cond:
            while self._request is None and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            request, self._request = self._request, None
            return request

    def _emit(self, frame: _Frame) -> bool:
        """Send ``frame`` to the GUI thread; False when the view is gone or the worker stopped."""
        with self._cond:
            if self._stopped:
                return False
        try:
            if shiboken6.isValid(self._bridge):
                self._bridge.frame.emit(frame)
                return True
        except RuntimeError:  # the view was deleted meanwhile
            pass
        return False

    def _run(self) -> None:
        while (request := self._next()) is not None:
            if not self._emit(self._compute(request)):
                return

    def _compute(self, request: _Request) -> _Frame:
        """The drawing's views, from one call of the probe: its feature-map grids, its bars' values and its saliency
        overlay."""
        start = time.perf_counter()
        probe_id = id(self.probe)
        try:
            look = self.probe.look(request.x, request.class_index)
            maps = []
            for activation in look.activations:
                if activation.layer.kind == "maps":
                    shown, _more = activation.display_maps(MAX_CHANNELS)
                    maps.append(mosaic(shown, MAPS_LUT, columns=MAP_COLUMNS, cell=request.cell))
            sal = None
            if look.saliency is not None:
                sal = saliency_overlay(request.x, look.saliency, max(1, round(SALIENCY_SCALE * request.dpr)))
        except Exception as exc:  # noqa: BLE001 - shown in the view, never raised on this thread
            return _Frame(request.serial, probe_id, error=f"{type(exc).__name__}: {exc}")
        return _Frame(request.serial, probe_id, tuple(look.activations), tuple(maps), look=look, saliency=sal,
                      seconds=time.perf_counter() - start)


def _caption(text: str, parent: QWidget, name: str) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    font = QFont(label.font())
    font.setBold(True)
    label.setFont(font)
    return label


class _DenseBars(QWidget):
    """One hidden Dense layer's activations as bars; the y range only grows while the same model is shown, so that
    the bars do not jump with every pen move."""

    def __init__(self, title: str, units: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(title, self)
        self.title.setWordWrap(True)
        self.plot = pg.PlotWidget(parent=self, background="w")
        self.plot.setFixedHeight(BAR_HEIGHT)
        self.plot.setMinimumWidth(160)
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.showGrid(x=False, y=True, alpha=0.25)
        item.getAxis("bottom").setHeight(18)
        item.setXRange(-0.5, units - 0.5, padding=0)
        self.units = units
        self.bars = pg.BarGraphItem(x=np.arange(units), height=np.zeros(units), width=0.8, brush="#5b7db1", pen=None)
        item.addItem(self.bars)
        self._range = (0.0, 1.0)
        item.setYRange(*self._range, padding=0)
        self.values: np.ndarray | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.plot)

    def set_values(self, values: np.ndarray | None) -> None:
        self.values = None if values is None else np.asarray(values, dtype=np.float64)
        heights = np.zeros(self.units) if values is None else self.values[: self.units]
        self.bars.setOpts(height=heights)
        if values is not None and len(heights):
            lo, hi = min(self._range[0], float(heights.min())), max(self._range[1], float(heights.max()))
            if (lo, hi) != self._range:
                self._range = (lo, hi)
                self.plot.getPlotItem().setYRange(lo, hi, padding=0.02)


class InsideView(QWidget):
    """The panel "Inside the network" of the Predict workspace.

    The workspace gives it a probe when a model is ready (:meth:`set_probe`, built in the background), and every
    drawing it predicts (:meth:`show_drawing`); :meth:`shutdown` stops the worker thread.

    Signals:
        updated: all the views of the newest drawing (or of an empty canvas) are shown.
        maps_updated: the feature maps and bars of the newest drawing are shown (together with its saliency: they
            come from one call of the probe, so this comes just before ``updated``).

    Attributes:
        update_count: how many times ``updated`` was emitted (benchmarks and tests wait on it).
        maps_count: how many times ``maps_updated`` was emitted.
        last_look: the :class:`~neuralstudio.ml.activations.Look` of the saliency shown, or None.
        last_activations: the layer outputs of the maps shown.
        last_seconds: what the worker took for the newest drawing's views (the probe's call and the images).
    """

    updated = Signal()
    maps_updated = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("insideView")
        self.setAccessibleName("insideView")
        self.setMinimumWidth(MIN_WIDTH)
        self.probe: Any = None
        self.update_count = 0
        self.maps_count = 0
        self.last_look: Any = None
        self.last_activations: list[Any] = []
        self.last_seconds = 0.0
        self._worker: _Worker | None = None
        self._serial = 0  # the newest drawing asked for
        self._cleared = 0  # frames of drawings up to this one are dropped (cleared since, or another probe's)
        self._shown_serial = 0  # the drawing whose views are shown
        self._class_label = ""
        self._last_drawing: tuple[np.ndarray, int, str] | None = None
        self._cell_shown = 0
        self._bridge = _Bridge(self)
        self._bridge.frame.connect(self._on_frame_ready)
        self._map_rows: list[tuple[QLabel, QLabel]] = []
        self._bars: list[_DenseBars] = []
        self._build()
        self.set_probe(None)

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.noteLabel = QLabel("", self)
        self.noteLabel.setObjectName("insideNote")
        self.noteLabel.setWordWrap(True)
        self.noteLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.noteLabel.setStyleSheet("color: #555;")

        content = QWidget()
        content.setObjectName("insideContent")
        self._content = content

        self.saliencyCaption = _caption("", content, "saliencyCaption")
        self.saliencyImage = QLabel(DRAW_FIRST, content)
        self.saliencyImage.setObjectName("saliencyImage")
        self.saliencyImage.setAccessibleName("saliencyImage")
        self.saliencyImage.setToolTip("The 28x28 input in grey; hot colours: |gradient x input| for the predicted "
                                      "class, scaled to the strongest pixel")
        self.saliencyImage.setFixedSize(28 * SALIENCY_SCALE + 2, 28 * SALIENCY_SCALE + 2)
        self.saliencyImage.setFrameShape(QFrame.Shape.Box)
        self.saliencyImage.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.saliencyImage.setWordWrap(True)
        self.saliencyBox = QWidget(content)
        sal = QVBoxLayout(self.saliencyBox)
        sal.setContentsMargins(0, 0, 0, 0)
        sal.addWidget(self.saliencyCaption)
        sal.addWidget(self.saliencyImage, 0, Qt.AlignmentFlag.AlignLeft)
        sal.addStretch(1)

        self.filtersCaption = _caption("", content, "filtersCaption")
        self.filtersImage = QLabel(content)
        self.filtersImage.setObjectName("filtersImage")
        self.filtersImage.setAccessibleName("filtersImage")
        self.filtersImage.setToolTip("Each square is one filter's weights, one scale for all of them: "
                                     "white is zero, red positive, blue negative")
        self.filtersBox = QWidget(content)
        fil = QVBoxLayout(self.filtersBox)
        fil.setContentsMargins(0, 0, 0, 0)
        fil.addWidget(self.filtersCaption)
        fil.addWidget(self.filtersImage, 0, Qt.AlignmentFlag.AlignLeft)
        fil.addStretch(1)

        self._top = top = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        top.addWidget(self.saliencyBox, 1)
        top.addWidget(self.filtersBox, 1)

        self.mapsCaption = _caption(MAPS_CAPTION, content, "mapsCaption")
        self.mapsBox = QWidget(content)
        self._maps_layout = QVBoxLayout(self.mapsBox)
        self._maps_layout.setContentsMargins(0, 0, 0, 0)
        self._maps_layout.setSpacing(2)

        self.denseCaption = _caption(DENSE_CAPTION, content, "denseCaption")
        self.denseBox = QWidget(content)
        self._dense_layout = QVBoxLayout(self.denseBox)
        self._dense_layout.setContentsMargins(0, 0, 0, 0)

        body = QVBoxLayout(content)
        body.addLayout(top)
        body.addWidget(self.mapsCaption)
        body.addWidget(self.mapsBox)
        body.addWidget(self.denseCaption)
        body.addWidget(self.denseBox)
        body.addStretch(1)

        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("insideScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.noteLabel)
        outer.addWidget(self.scroll, 1)

    # ----- the model --------------------------------------------------------------------------
    def set_loading(self, label: str) -> None:
        """Say that the views of the model ``label`` are being prepared (the probe is built in the background)."""
        self.set_probe(None, note=f"Preparing the views inside {label}…")

    def set_probe(self, probe: Any, note: str = "") -> None:
        """Show the views of ``probe`` (an :class:`~neuralstudio.ml.activations.ActivationProbe`), or none.

        Args:
            probe: the probe, or None while there is none (no model, or one being prepared).
            note: the text to show instead of the probe's own explanation (why there is no probe).
        """
        if self._worker is not None:
            self._worker.stop()  # it finishes its drawing, if any, and ends; that frame is dropped
            self._worker = None
        self.probe = probe
        self.last_look = None
        self._serial += 1
        self._cleared = self._serial
        self._shown_serial = 0
        for title, image in self._map_rows:
            title.deleteLater()
            image.deleteLater()
        for bars in self._bars:
            bars.deleteLater()
        self._map_rows, self._bars = [], []
        if probe is None:
            self.noteLabel.setText(note or NO_MODEL)
            self.noteLabel.show()
            self._content.hide()
            return
        self._worker = _Worker(probe, self._bridge)
        reasons = probe.reasons
        text = note or probe.explanation
        self.noteLabel.setText(text)
        self.noteLabel.setVisible(bool(text))
        self._content.show()
        self.saliencyBox.setVisible(SALIENCY not in reasons)
        filters = probe.filters
        self.filtersBox.setVisible(FILTERS not in reasons and filters.available)
        if filters.available:
            n, h, w = filters.images.shape
            note = f" ({filters.note})" if filters.note else ""
            self.filtersCaption.setText(FILTERS_CAPTION.format(layer=filters.layer, size=f"{h}x{w}") + note)
            dpr = self._dpr()
            rgb = mosaic(filters.images, FILTERS_LUT, columns=MAP_COLUMNS, cell=round(FILTER_CELL * dpr),
                         gap=round(FILTER_GAP * dpr), background=FILTER_BACKGROUND)
            self.filtersImage.setPixmap(_pixmap(rgb, dpr))
            self.filtersImage.setFixedSize(round(rgb.shape[1] / dpr), round(rgb.shape[0] / dpr))
        self._arrange_top()
        maps = [layer for layer in probe.layers if layer.kind == "maps"]
        self.mapsCaption.setVisible(FEATURE_MAPS not in reasons and bool(maps))
        self.mapsBox.setVisible(FEATURE_MAPS not in reasons and bool(maps))
        for layer in maps:
            title = QLabel(self._map_title(layer), self.mapsBox)
            title.setWordWrap(True)
            image = QLabel(self.mapsBox)
            image.setObjectName(f"featureMaps_{layer.name}")
            image.setToolTip(f"The first {MAX_CHANNELS} feature maps of {layer.name}, one colour scale for the layer: "
                             "black is no response")
            self._maps_layout.addWidget(title)
            self._maps_layout.addWidget(image, 0, Qt.AlignmentFlag.AlignLeft)
            self._map_rows.append((title, image))
        vectors = [layer for layer in probe.layers if layer.kind == "vector" and not layer.is_output]
        show_dense = DENSE not in reasons and bool(vectors)
        self.denseCaption.setVisible(show_dense)
        self.denseBox.setVisible(show_dense)
        for layer in vectors:
            bars = _DenseBars(f"{layer.title}: {layer.shape[0]} units", int(layer.shape[0]), self.denseBox)
            bars.setToolTip(f"The activations of {layer.name}'s units for the drawing, unit 0 on the left")
            self._dense_layout.addWidget(bars)
            self._bars.append(bars)
        self.clear_drawing()

    @staticmethod
    def _map_title(layer: Any) -> str:
        channels = int(layer.shape[0] if layer.channels_first else layer.shape[-1])
        spatial = "×".join(str(d) for d in (layer.shape[1:] if layer.channels_first else layer.shape[:-1]))
        shown = min(channels, MAX_CHANNELS)
        extra = f" (+{channels - shown} more)" if channels > shown else ""
        return f"{layer.title} · {spatial} · {shown} of {channels} maps{extra}"

    # ----- drawings ---------------------------------------------------------------------------
    def _dpr(self) -> float:
        return max(1.0, float(self.devicePixelRatioF()))

    def _cell(self) -> int:
        """The size of one feature map in device pixels, from the width the panel has.

        Counted as if the vertical scroll bar were shown (it appears once the maps are taller than the panel, and its
        arrival resizes the viewport, not this widget), minus the content's margins.
        """
        width = self.scroll.width() - self.scroll.verticalScrollBar().sizeHint().width() - 24
        cell = width // MAP_COLUMNS - GAP
        return round(min(MAX_CELL, max(MIN_CELL, cell)) * self._dpr())

    def show_drawing(self, x: np.ndarray, class_index: int, class_label: str = "") -> None:
        """Compute the views of the prepared ``(28, 28)`` drawing ``x`` in the background and show them when ready.

        Only the newest drawing matters: one given while the worker is busy replaces the one waiting.
        """
        self._class_label = class_label or str(class_index)
        self._last_drawing = (x, int(class_index), self._class_label)
        if self._worker is None:
            return
        self._serial += 1
        self._cell_shown = self._cell()
        self._worker.submit(_Request(self._serial, np.array(x, dtype=np.float32), int(class_index), self._cell_shown,
                                     self._dpr()))

    def clear_drawing(self) -> None:
        """Show the empty views (nothing drawn)."""
        self._serial += 1
        self._cleared = self._serial  # a frame still being computed is dropped when it arrives
        self.last_look = None
        self.last_activations = []
        self._last_drawing = None
        self.saliencyCaption.setText(SALIENCY_EMPTY)
        self.saliencyImage.setPixmap(QPixmap())
        self.saliencyImage.setText(DRAW_FIRST)
        self._show_empty_maps()
        for bars in self._bars:
            bars.set_values(None)
        self.update_count += 1
        self.updated.emit()

    def _show_empty_maps(self) -> None:
        """Black grids of the size the maps of a drawing will have, so that the layout does not jump."""
        if self.probe is None:
            return
        cell, dpr = self._cell(), self._dpr()
        self._cell_shown = cell
        for (_, image), layer in zip(self._map_rows, [p for p in self.probe.layers if p.kind == "maps"]):
            shape = (min(MAX_CHANNELS, int(layer.shape[0] if layer.channels_first else layer.shape[-1])),
                     *self._map_hw(layer))
            image.setPixmap(_pixmap(mosaic(np.zeros(shape, np.float32), MAPS_LUT, columns=MAP_COLUMNS, cell=cell), dpr))

    @staticmethod
    def _map_hw(layer: Any) -> tuple[int, int]:
        shape = [d or 1 for d in layer.shape]
        if len(shape) == 2:  # Conv1D: one (channels, steps) map
            return (shape[0], shape[1]) if layer.channels_first else (shape[1], shape[0])
        return (shape[1], shape[2]) if layer.channels_first else (shape[0], shape[1])

    def _on_frame_ready(self, frame: _Frame) -> None:
        """Show a frame of the worker: a drawing's feature maps, bars and saliency.

        Frames of another probe, of a drawing before the last clear, or older than what is shown are dropped; a frame
        one drawing behind the newest is still shown (better than none while the pen moves fast).
        """
        if self.probe is None or frame.probe_id != id(self.probe) or frame.serial <= self._cleared:
            return
        if frame.error:
            self.noteLabel.setText(f"The views inside the network could not be computed: {frame.error}")
            self.noteLabel.show()
            return
        if frame.serial < self._shown_serial:
            return
        self._shown_serial = frame.serial
        dpr = self._dpr()
        self.last_activations = list(frame.activations)
        for (_, image), rgb in zip(self._map_rows, frame.maps):
            image.setPixmap(_pixmap(rgb, dpr))
        vectors = {a.name: a for a in frame.activations if a.layer.kind == "vector"}
        for bars, layer in zip(self._bars, self._vector_layers()):
            activation = vectors.get(layer.name)
            bars.set_values(None if activation is None else activation.vector())
        self.last_look = frame.look
        if frame.saliency is not None:
            self.saliencyImage.setText("")
            self.saliencyImage.setPixmap(_pixmap(frame.saliency, dpr))
            self.saliencyCaption.setText(SALIENCY_CAPTION.format(label=self._class_label))
        if frame.serial == self._serial:
            self.last_seconds = frame.seconds
            self.maps_count += 1
            self.maps_updated.emit()
            self.update_count += 1
            self.updated.emit()

    def _vector_layers(self) -> list[Any]:
        return [p for p in self.probe.layers if p.kind == "vector" and not p.is_output] if self.probe else []

    @property
    def up_to_date(self) -> bool:
        """Every view shows the newest drawing given (or the views are empty after a clear)."""
        return self._shown_serial == self._serial or self._cleared == self._serial

    @property
    def map_rows(self) -> list[tuple[QLabel, QLabel]]:
        """Per convolution layer shown: its title and its grid of maps."""
        return list(self._map_rows)

    @property
    def dense_bars(self) -> list[_DenseBars]:
        """The bar charts of the hidden Dense (and recurrent) layers."""
        return list(self._bars)

    @property
    def feature_maps_shown(self) -> int:
        """How many convolution layers' maps of a drawing are shown (0 while the views are empty)."""
        return len(self._map_rows) if self._shown_serial > self._cleared else 0

    @property
    def saliency_shown(self) -> bool:
        """A drawing's saliency overlay is on screen."""
        pix = self.saliencyImage.pixmap()
        return self._shown_serial > self._cleared and pix is not None and not pix.isNull()

    def _arrange_top(self) -> None:
        """Saliency and filters side by side where the panel is wide enough for both images, else one above the
        other: nothing is cut off at 1024 px."""
        need = self.saliencyImage.width() + 24
        if self.filtersBox.isVisibleTo(self):
            need += self.filtersImage.width() + 24
        wide = self.scroll.viewport().width() >= need
        self._top.setDirection(QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """The maps follow the panel's width: the empty grids at once, a drawing's views computed again."""
        super().resizeEvent(event)
        self._arrange_top()
        if self.probe is None or not self._map_rows or self._cell() == self._cell_shown:
            return
        if self._last_drawing is not None:
            self.show_drawing(*self._last_drawing)
        else:
            self._show_empty_maps()

    def shutdown(self) -> None:
        """Stop the worker thread (waits up to 2 s for a drawing it is computing)."""
        if self._worker is not None:
            self._worker.stop(wait_s=2.0)
            self._worker = None
