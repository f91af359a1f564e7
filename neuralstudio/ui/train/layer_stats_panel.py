"""The Inside tab of the Train workspace: what each trainable layer does while the network learns.

Per trainable layer it shows the gradient per unit (the root mean square of the bias gradient, Nielsen's delta;
the kernel gradient's norm where the first or last layer has no per-unit bias, as
:func:`neuralstudio.ml.layer_stats.gradient_measure` decides for the sentence too) and the ratio of update size to
weight size over the epochs (one curve per layer on two log plots, so that the layers are compared at a glance:
Nielsen's chapter 5 shows the vanishing gradient as exactly that comparison), a histogram strip of the weights
and of the activations over the epochs (one band per layer in one image, x = epoch, y = value, darker = more),
the share of dead ReLU or saturated sigmoid/tanh units, and one sentence from
:func:`neuralstudio.ml.layer_stats.interpret` on top.

The snapshots come from the trainer's optional ``on_layer_stats`` report, through the worker's buffer and the
workspace's drain timer (docs/ARCHITECTURE.md, "Train -> worker -> plots"); this widget is only ever called on
the GUI thread. They arrive at most a few times an epoch, so a refresh may redraw everything; still it is kept
cheap because it lands while training competes for the cores (GUI stalls must stay under 50 ms): the four plots
are drawn one per timer tick (:class:`LayerStatsPanel`), each strip plot is one ``ImageItem`` for all layers, a
histogram is resampled once (when it arrives, or when its layer's value range grows), and the pyqtgraph items
of new layers are made a few per event-loop turn. Measured on nielsen-deep-sigmoid: 15-20 ms of the GUI thread
an epoch in all, at most 17 ms in one tick. A hidden panel keeps the snapshots and draws when it is shown.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPen, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGraphicsLineItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.ml import layer_stats  # numpy only: its Keras imports are inside functions

__all__ = ["LayerStatsPanel", "LayerTrack", "resample_histogram"]

log = logging.getLogger(__name__)

#: bins of every resampled histogram column (the engine's histograms are resampled onto the layer's range)
STRIP_BINS = 32
#: empty rows between two layers' bands in a strip image, and the band's share of its unit of height
STRIP_GAP_ROWS = 3
#: when a layer's value range grows, it grows by this much more, so that it is not resampled every epoch
RANGE_MARGIN = 0.1
#: items of at most this many new layers are made per event-loop turn (see the module's docstring)
NEW_LAYERS_PER_TURN = 6
#: a live update draws one part per stage, this far apart (see LayerStatsPanel)
STAGE_INTERVAL_MS = 80
#: a live update starts this long after its snapshot arrived (see LayerStatsPanel)
SETTLE_MS = 400
#: a live update's stages wait while the panel's gate says the training thread is between batches, at most this long
GATE_WAIT_MS = 2000
#: Karpathy's rule of thumb for update / weight, and the faint band drawn around it (log10 units either side)
UPDATE_RATIO_TARGET = 1e-3
UPDATE_RATIO_BAND = 0.5
#: the band and its line reach this many epochs either side of 0: past any run's x range
RATIO_SPAN = 1e5
#: dead or saturated units above this share are shown in colour
UNITS_ALARM = 0.5
ALARM_COLOR = "#c0392b"
#: what the sentence says before the first snapshot, and when the run does not report per-layer signals
WAITING_TEXT = ("Per-layer signals appear here at the end of the first epoch: how strongly each layer learns, "
                "how its weights and outputs spread, and how many of its units are dead or saturated.")
OFF_TEXT = ("Per-layer signals are off for this run. Tick “Per-layer signals (gradients, dead units)” in the "
            "training settings to see inside the network during the next run.")

SENTENCE_TIP = "What the per-layer signals of the latest epoch say, in one sentence."
UNIT_GRAD_TIP = (
    "Gradient per unit: how strongly the loss pulls on each unit of a layer (the root mean square, over the layer's "
    "units, of the gradient of the loss with respect to each unit's bias, on a fixed batch of training examples), "
    "per epoch, on a log scale; one curve per layer, coloured as in the table. That gradient is the unit's error, "
    "what Nielsen calls delta and reads as the unit's speed of learning; per unit, so that a wide layer and a "
    "narrow one compare.\n"
    "In a deep network of sigmoid or tanh layers the gradient shrinks each time it is passed back through a "
    "layer, so the first layers get far smaller gradients than the last ones and learn far more slowly: the "
    "vanishing-gradient problem (Nielsen, Neural Networks and Deep Learning, chapter 5). In nielsen-deep-sigmoid "
    "the first layer's units get over 100 times less than the output layer's after the first epoch; in its ReLU "
    "twin about as much. A curve far below the others marks a layer that barely learns; a curve shooting up marks "
    "exploding gradients. A cell's tooltip also gives the kernel gradient's norm.")
GRAD_TIP = (
    "Gradient norm: how strongly the loss pulls on each layer's weights (the length of the gradient of the loss "
    "with respect to them, on a fixed batch of training examples), per epoch, on a log scale; one curve per "
    "layer, coloured as in the table.\n"
    "In a deep network of sigmoid or tanh layers the gradient shrinks each time it is passed back through a "
    "layer, so the first layers get far smaller gradients than the last ones and learn far more slowly: the "
    "vanishing-gradient problem (Nielsen, Neural Networks and Deep Learning, chapter 5). A curve far below the "
    "others marks a layer that barely learns; a curve shooting up marks exploding gradients.\n"
    "Shown when the first or the last layer has no bias of its own per unit (a convolution, a recurrent layer, "
    "use_bias off), where the gradient per unit cannot be compared. The norm grows with the number of weights, so "
    "a large layer reads higher than a small one that learns as fast.")
RATIO_TIP = (
    "Update / weight: how far the last epoch moved each layer's weights, relative to their size (the norm of "
    "the change over the epoch divided by the norm of the weights before it), on a log scale.\n"
    "The faint band marks 1e-3, Andrej Karpathy's rule of thumb for one training step: each update should "
    "change the weights by about a thousandth of their size. An epoch is many steps, so a layer that learns "
    "well sits above the band, higher early in training and lower as it settles. A layer far below the others "
    "hardly moves: its gradients vanish or the learning rate is too low for it. A ratio near 1 means one epoch "
    "replaced the weights: the learning rate may be too high.")
WEIGHTS_TIP = (
    "Weights: how each layer's weights (its kernel, not its biases) are spread at each epoch, one band per "
    "layer, the first layer on top. "
    "Left to right: epochs; bottom to top within a band: weight value, from the layer's smallest to its largest; "
    "darker: more weights with that value (square-root scale, so that thin tails show).\n"
    "A band whose pattern never changes belongs to a layer that is not learning; one that keeps spreading out "
    "belongs to a layer whose weights grow.")
ACTIVATIONS_TIP = (
    "Activations: how each layer's outputs are spread on a fixed batch of training examples at each epoch, one "
    "band per layer, the first layer on top; read like the weights.\n"
    "A sigmoid layer whose outputs pile up at 0 and 1, or a tanh layer at -1 and 1, is saturated: there the "
    "slope of the activation is almost zero, so almost no gradient passes back (Nielsen, chapter 5). A ReLU layer "
    "with a large pile at 0 has dead units.")
UNITS_TIP = (
    "Dead ReLU units: the share of a ReLU layer's units that output 0 for every example checked. They pass no "
    "gradient back, so they stop learning for good (a too-high learning rate often kills them).\n"
    "Saturated: the share of a sigmoid or tanh layer's outputs in the flat ends of its curve (a sigmoid below "
    "0.01 or above 0.99, a tanh beyond -0.99 or 0.99), where the slope, and so the gradient, is almost zero: "
    "the layers before it learn very slowly. An output layer is meant to saturate once it is sure. "
    "Red: more than half.")
LAYER_TIP = "A layer with trainable weights: its name, its kind and its activation, in the network's order."
TABLE_COLUMNS = (("Layer", LAYER_TIP), ("Gradient\nper unit", UNIT_GRAD_TIP), ("Update /\nweight", RATIO_TIP),
                 ("Dead /\nsaturated", UNITS_TIP))
#: the measure the panel starts with (the one the sentence leads with whenever every layer has it)
DEFAULT_MEASURE = "bias_grad_rms"
#: what the gradient plot and column are called, and explained, for each measure that may compare the layers
GRADIENT_MEASURES = {
    "bias_grad_rms": ("Gradient per unit", "Gradient\nper unit", UNIT_GRAD_TIP),
    "grad_norm": ("Gradient norm", "Gradient\nnorm", GRAD_TIP),
}
#: what the plots' titles say: a plot may be 90 px wide at a 1366 px window, which clipped "Gradient per unit" and
#: "Update / weight"; the full names are the plots' accessible names, tooltips and the table's column headers
PLOT_TITLES = {"Gradient per unit": "Gradient", "Gradient norm": "Gradient", "Update / weight": "Step size"}

#: the curves' colours by depth: the first layer blue, the last red
_DEPTH_COLORS = pg.ColorMap([0.0, 0.5, 1.0], [(31, 119, 180), (148, 103, 189), (214, 39, 40)])
#: histogram strips: white (nothing) to dark blue (most)
_STRIP_COLORS = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (20, 50, 140)])


# ----------------------------------------------------------------------------- Qt-free data
def resample_histogram(counts: Sequence[float], edges: Sequence[float], lo: float, hi: float,
                       bins: int = STRIP_BINS) -> np.ndarray:
    """``counts`` over ``edges`` redistributed onto ``bins`` equal bins from ``lo`` to ``hi``.

    Every snapshot comes with bins of its own (the range of the weights changes as they learn), while a strip
    needs one grid per layer. Interpolating the cumulative counts keeps the mass of each source bin and spreads
    it evenly within the bin, whatever the two grids are; counts outside ``lo..hi`` pile up in the end bins.
    """
    c = np.nan_to_num(np.asarray(counts, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    e = np.asarray(edges, dtype=np.float64)
    if c.size == 0 or e.size != c.size + 1 or not np.all(np.isfinite(e)):
        return np.zeros(bins)
    c = np.clip(c, 0.0, None)
    if e[-1] <= e[0]:  # all values equal: a spike in the bin that holds it
        out = np.zeros(bins)
        out[_bin_of(float(e[0]), lo, hi, bins)] = c.sum()
        return out
    cum = np.concatenate([[0.0], np.cumsum(c)])
    grid = np.linspace(lo, hi, bins + 1)
    out = np.diff(np.interp(grid, e, cum))
    out[0] += np.interp(lo, e, cum)  # what lies below lo
    out[-1] += cum[-1] - np.interp(hi, e, cum)  # and above hi
    return out


def _bin_of(v: float, lo: float, hi: float, bins: int) -> int:
    if hi <= lo:
        return 0
    return int(min(bins - 1, max(0, math.floor((v - lo) / (hi - lo) * bins))))


def _hist_range(hist: Any) -> tuple[float, float] | None:
    if not isinstance(hist, dict):
        return None
    edges = hist.get("edges")
    if edges is None or len(edges) < 2:
        return None
    lo, hi = float(edges[0]), float(edges[-1])
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _positive(v: Any) -> float:
    """A value for a log plot: NaN (a gap in the curve) unless finite and > 0."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) and f > 0 else math.nan


def _fraction(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass
class _Strip:
    """One layer's histograms over the epochs, resampled onto one value range."""

    hists: list[tuple[Sequence[float], Sequence[float]] | None] = field(default_factory=list)
    columns: list[np.ndarray] = field(default_factory=list)
    lo: float = math.nan
    hi: float = math.nan

    def put(self, i: int, hist: Any) -> None:
        """Set column ``i`` (a new one at the end, or the latest replaced) from an engine histogram."""
        h = (hist["counts"], hist["edges"]) if _hist_range(hist) is not None and "counts" in hist else None
        if i == len(self.hists):
            self.hists.append(h)
            self.columns.append(np.zeros(STRIP_BINS))
        else:
            self.hists[i] = h
        if h is not None and self._widen(float(h[1][0]), float(h[1][-1])):
            self.columns = [self._column(x) for x in self.hists]  # a wider range: every column again
        else:
            self.columns[i] = self._column(h)

    def _widen(self, lo: float, hi: float) -> bool:
        if math.isfinite(self.lo) and lo >= self.lo and hi <= self.hi:
            return False
        lo = min(lo, self.lo) if math.isfinite(self.lo) else lo
        hi = max(hi, self.hi) if math.isfinite(self.hi) else hi
        span = hi - lo if hi > lo else max(abs(lo), 1.0) * 0.1
        self.lo, self.hi = lo - RANGE_MARGIN * span, hi + RANGE_MARGIN * span
        return True

    def _column(self, h: tuple[Sequence[float], Sequence[float]] | None) -> np.ndarray:
        if h is None or not math.isfinite(self.lo):
            return np.zeros(STRIP_BINS)
        col = resample_histogram(h[0], h[1], self.lo, self.hi)
        top = col.max()
        return np.sqrt(col / top) if top > 0 else col  # per epoch: darkest = that epoch's most common value


@dataclass
class LayerTrack:
    """Everything the panel shows of one layer, one entry per epoch.

    A later snapshot of an epoch replaces the earlier one: a long epoch's mid-epoch snapshot shows at the
    epoch's end until the epoch's own snapshot arrives. The curves hold NaN (a gap on a log plot) for a missing,
    non-finite or zero value; the table shows the value itself (``last_grad_norm``, ``last_update_ratio``).
    """

    name: str
    class_name: str = ""
    activation: str | None = None
    epochs: list[float] = field(default_factory=list)  # x: epoch + 1, so the end of the first epoch is at 1
    grad_norm: list[float] = field(default_factory=list)
    bias_grad_rms: list[float] = field(default_factory=list)
    update_ratio: list[float] = field(default_factory=list)
    weights: _Strip = field(default_factory=_Strip)
    activations: _Strip = field(default_factory=_Strip)
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    last_grad_norm: float | None = None
    last_bias_grad_rms: float | None = None
    last_bias_grad_norm: float | None = None
    last_update_ratio: float | None = None

    def add(self, epoch: int, stats: dict[str, Any]) -> None:
        x = float(epoch + 1)
        self.class_name = str(stats.get("class_name") or self.class_name)
        act = stats.get("activation")
        self.activation = str(act) if act else self.activation
        i = len(self.epochs) - 1 if self.epochs and self.epochs[-1] == x else len(self.epochs)
        values = (x, _positive(stats.get("grad_norm")), _positive(stats.get("bias_grad_rms")),
                  _positive(stats.get("update_ratio")))
        for series, v in zip((self.epochs, self.grad_norm, self.bias_grad_rms, self.update_ratio), values):
            if i == len(series):
                series.append(v)
            else:
                series[i] = v
        self.weights.put(i, stats.get("weight_hist"))
        self.activations.put(i, stats.get("activation_hist"))
        self.dead_fraction = _fraction(stats.get("dead_fraction"))
        self.saturated_fraction = _fraction(stats.get("saturated_fraction"))
        self.last_grad_norm = _fraction(stats.get("grad_norm"))
        self.last_bias_grad_rms = _fraction(stats.get("bias_grad_rms"))
        self.last_bias_grad_norm = _fraction(stats.get("bias_grad_norm"))
        self.last_update_ratio = _fraction(stats.get("update_ratio"))

    def last(self, measure: str) -> float | None:
        """The latest value of ``measure`` (a key of :data:`GRADIENT_MEASURES`), as the table shows it."""
        return self.last_bias_grad_rms if measure == "bias_grad_rms" else self.last_grad_norm

    def gradient_text(self) -> str:
        """Every gradient figure of the latest snapshot, for the gradient cell's tooltip."""
        return (f"{self.name}: gradient per unit {_number(self.last_bias_grad_rms)}, over the biases "
                f"(Nielsen's ||delta||) {_number(self.last_bias_grad_norm)}, "
                f"kernel gradient norm {_number(self.last_grad_norm)}")

    def kind(self) -> str:
        """``Dense · relu``: the layer's class and its activation (a linear one goes without saying)."""
        return " · ".join(t for t in (self.class_name, self.activation) if t and t != "linear")

    def units_text(self) -> str:
        parts = []
        if self.dead_fraction is not None:
            parts.append(f"{100 * self.dead_fraction:.0f}% dead")
        if self.saturated_fraction is not None:
            parts.append(f"{100 * self.saturated_fraction:.0f}% saturated")
        return ", ".join(parts) or "–"

    def units_alarm(self) -> bool:
        return any(f is not None and f > UNITS_ALARM for f in (self.dead_fraction, self.saturated_fraction))


def strip_image(tracks: Sequence[LayerTrack], which: str) -> tuple[np.ndarray, float]:
    """All layers' strips of ``which`` (``weights`` or ``activations``) as one image, the first layer on top.

    Returns ``(image, first_x)``: ``image[column, row]`` as pyqtgraph's ImageItem takes it, one column per
    epoch from ``first_x`` on (epochs without a snapshot stay white), and for each layer ``STRIP_BINS`` rows
    (smallest value at the bottom) below ``STRIP_GAP_ROWS`` white ones, so layer ``k`` of ``n`` fills the unit
    band from ``n - 1 - k`` to ``n - k`` on the plot's y axis.
    """
    xs = [x for t in tracks for x in t.epochs]
    if not xs:
        return np.zeros((1, STRIP_BINS + STRIP_GAP_ROWS)), 1.0
    first, last = min(xs), max(xs)
    n_cols = int(round(last - first)) + 1
    band = STRIP_BINS + STRIP_GAP_ROWS
    img = np.zeros((n_cols, band * len(tracks)))
    for k, t in enumerate(tracks):
        row0 = band * (len(tracks) - 1 - k)
        strip: _Strip = getattr(t, which)
        for x, col in zip(t.epochs, strip.columns):
            img[int(round(x - first)), row0:row0 + STRIP_BINS] = col
    return img, first


def _number(v: float | None) -> str:
    """A gradient norm or ratio as the table shows it: ``0.017``, ``3.0e-05``, ``0``, ``–`` when unknown."""
    if v is None or not math.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    return f"{v:.3g}" if 1e-2 <= abs(v) < 1e3 else f"{v:.1e}"


# ----------------------------------------------------------------------------- the widget
def _plot_widget(parent: QWidget, name: str, title: str, tip: str) -> tuple[pg.PlotWidget, Any]:
    """A small fixed plot: no mouse, no menu, and no auto-range (see :meth:`LayerStatsPanel.refresh`)."""
    widget = pg.PlotWidget(parent, background="w")
    widget.setObjectName(name)
    widget.setAccessibleName(title)
    widget.setToolTip(tip)
    widget.setMenuEnabled(False)
    widget.setMinimumSize(120, 120)  # four side by side still fit a 1024 px window
    item = widget.getPlotItem()
    item.hideButtons()
    item.setMouseEnabled(x=False, y=False)
    item.disableAutoRange()
    item.setTitle(PLOT_TITLES.get(title, title), size="9pt")
    item.setLabel("bottom", "epoch")
    return widget, item


def epoch_ticks(tracks: Sequence[LayerTrack], most: int = 4) -> list[list[tuple[float, str]]]:
    """Whole epochs on the x axis, at most ``most`` labels: pyqtgraph's own ticks put halves between them, and in
    a strip plot 120 px wide their labels ran into each other ("1.01.52.0")."""
    epochs = sorted({int(round(x)) for t in tracks for x in t.epochs})
    if not epochs:
        return [[]]
    step = max(1, math.ceil((epochs[-1] - epochs[0] + 1) / most))
    return [[(float(e), str(e)) for e in range(epochs[0], epochs[-1] + 1, step)]]


def _x_range(tracks: Sequence[LayerTrack]) -> tuple[float, float]:
    """Whole strip columns, centred on their epochs: the same x range on all four plots."""
    xs = [x for t in tracks for x in t.epochs]
    return (min(xs) - 0.5, max(xs) + 0.5) if xs else (0.5, 1.5)


class _SignalPlot:
    """A small log-y plot with one line per layer and one scatter of all the epochs' points.

    The lines are bare ``PlotCurveItem``s fed with log10 values (the axis alone is in log mode): a
    ``PlotDataItem`` with symbols costs about four times as much per ``setData``, and one scatter for all
    layers shows the points of a run's first epoch, where a line has nothing to draw.
    """

    def __init__(self, parent: QWidget, name: str, title: str, tip: str, keep_in_view: float | None = None) -> None:
        self.widget, self.item = _plot_widget(parent, name, title, tip)
        self.item.setLogMode(x=False, y=True)  # the axis' ticks; this turns auto-range back on:
        self.item.disableAutoRange()
        self.item.showGrid(x=False, y=True, alpha=0.15)
        self.keep_in_view = keep_in_view  # a log10 value the y range always shows (a reference line)
        self.curves: dict[str, pg.PlotCurveItem] = {}
        self.colors: dict[str, QColor] = {}
        self.points = pg.ScatterPlotItem(size=5, pen=None)
        self.item.addItem(self.points)

    def add_curve(self, name: str) -> None:
        curve = pg.PlotCurveItem()
        self.item.addItem(curve)
        self.curves[name] = curve

    def set_color(self, name: str, color: QColor) -> None:
        self.colors[name] = color
        self.curves[name].setPen(pg.mkPen(color, width=2))

    def clear(self) -> None:
        for c in self.curves.values():
            self.item.removeItem(c)
        self.curves.clear()
        self.colors.clear()

    def show(self, tracks: Sequence[LayerTrack], key: str) -> None:
        all_x: list[float] = []
        all_y: list[float] = []
        brushes: list[Any] = []
        for t in tracks:
            ys = np.log10(np.asarray(getattr(t, key), dtype=np.float64))  # NaN stays NaN: a gap
            finite = np.isfinite(ys)
            # an all-gap curve gets no points: pyqtgraph's bounds of all-NaN data warn at every paint
            xs = np.asarray(t.epochs, dtype=np.float64)
            self.curves[t.name].setData(xs if finite.any() else [], ys if finite.any() else [], connect="finite")
            all_x.extend(xs[finite])
            all_y.extend(ys[finite])
            brushes.extend([pg.mkBrush(self.colors.get(t.name, QColor("gray")))] * int(finite.sum()))
        self.points.setData(x=all_x, y=all_y, brush=brushes)
        logs = list(all_y)
        if self.keep_in_view is not None:
            logs += [self.keep_in_view - UPDATE_RATIO_BAND, self.keep_in_view + UPDATE_RATIO_BAND]
        lo, hi = (min(logs), max(logs)) if logs else (-4.0, 0.0)
        if hi - lo < 1.0:  # at least a decade, so that a flat curve does not look like a wild one
            mid = (lo + hi) / 2
            lo, hi = mid - 0.5, mid + 0.5
        self.item.setRange(xRange=_x_range(tracks), yRange=(lo, hi), padding=0.05)
        self.item.getAxis("left").setTicks(log_ticks(lo, hi))
        self.item.getAxis("bottom").setTicks(epoch_ticks(tracks))

    def values(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The curve of layer ``name`` as values (not their log10): what a test or a reader checks."""
        x, y = self.curves[name].getData()
        if x is None:
            return np.zeros(0), np.zeros(0)
        return np.asarray(x), np.power(10.0, np.asarray(y))


class _StripPlot:
    """One plot of stacked histogram strips (one image for all layers), with the layers named on its y axis."""

    def __init__(self, parent: QWidget, name: str, title: str, tip: str, which: str) -> None:
        self.tip = tip
        self.which = which  # the LayerTrack strip drawn: "weights" or "activations"
        self.widget, self.item = _plot_widget(parent, name, title, tip)
        self.image = pg.ImageItem(np.zeros((1, 1)))
        self.image.setColorMap(_STRIP_COLORS)
        self.item.addItem(self.image)
        self.item.getAxis("left").setTicks([[]])

    def show(self, tracks: Sequence[LayerTrack]) -> None:
        img, first = strip_image(tracks, self.which)
        self.image.setImage(img, levels=(0.0, 1.0), autoLevels=False)
        n = max(1, len(tracks))
        # rows are evenly spaced: a layer's bins fill the lower part of its unit band, its gap rows the top
        self.image.setRect(QRectF(first - 0.5, 0.0, img.shape[0], n))
        middle = (STRIP_BINS / 2) / (STRIP_BINS + STRIP_GAP_ROWS)
        self.item.getAxis("left").setTicks([[(n - 1 - k + middle, _short_name(t.name))
                                             for k, t in enumerate(tracks)]])
        self.item.setRange(xRange=_x_range(tracks), yRange=(0.0, n), padding=0.02)
        self.item.getAxis("bottom").setTicks(epoch_ticks(tracks))
        ranges = [f"{t.name}: {s.lo:.3g} to {s.hi:.3g}" for t in tracks
                  if math.isfinite((s := getattr(t, self.which)).lo)]
        self.widget.setToolTip(self.tip + ("\n\nValues shown, bottom to top of each band:\n" + "\n".join(ranges)
                                           if ranges else ""))


def log_ticks(lo: float, hi: float) -> list[list[tuple[float, str]]]:
    """Ticks for a log10 axis from ``lo`` to ``hi``: the decades, and 2 and 5 times them over a short span.

    pyqtgraph's own log ticks label every minor tick when a plot spans about a decade, and the labels of a
    small plot then run into each other (0.009, 0.008, 0.007...).
    """
    first, last = math.floor(lo), math.ceil(hi)
    decades = [(float(k), _tick_text(10.0 ** k)) for k in range(first, last + 1) if lo <= k <= hi]
    steps = (2, 5) if hi - lo < 2.5 else ()
    minor = [(math.log10(m * 10.0 ** k), _tick_text(m * 10.0 ** k)) for k in range(first, last + 1) for m in steps
             if lo <= math.log10(m * 10.0 ** k) <= hi]
    return [decades, minor]


def _tick_text(v: float) -> str:
    return f"{v:g}".replace("e-0", "e-").replace("e+0", "e")


def _short_name(name: str, width: int = 14) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


class LayerStatsPanel(QWidget):
    """The live per-layer training signals of one run (the Train workspace's Inside tab).

    A live update is drawn in stages, the table first and then one plot per stage, :data:`STAGE_INTERVAL_MS`
    apart, starting :data:`SETTLE_MS` after the snapshot arrived. Four plots repainted in one event-loop turn
    while training competed for the cores held the GUI thread longer than the 50 ms a stall may last (each
    plot repaints in 5-20 ms, and with its range changed pyqtgraph paints it twice unless the range is set by
    hand, which is why no plot auto-ranges); stages 25 ms apart still ran into each other, because a paint
    that waits for the GIL outlasts the interval. The delay is there because a snapshot is taken at an
    epoch's end, just as the training thread is busiest in Python (validation, the snapshot itself, a new
    ``steps_per_execution`` traced): a pyqtgraph paint re-enters Python for every item, and each re-entry
    then waits for the GIL (``ui/responsiveness.py``), so the same paint took 2-4x its idle time. Measured
    on nielsen-784-30-10 with the tab shown: the worst stall 92-179 ms before, see the README for after.
    After an epoch's end the training thread may still be busy for a second (a recompile to more steps per
    execution traces a new step): the Train window gives the panel a gate (:meth:`set_gate`) that opens when
    the run's batches flow again, and the update's stages wait for it, :data:`GATE_WAIT_MS` at most (a
    paused run's, or the last epoch's before the run has ended). Without it a stage that met the trace
    stalled nielsen-784-30-10's window 53-67 ms, mostly waiting for the GIL.

    Args:
        parent: the owning widget.
        interpret: turns the latest snapshot into the sentence on top (default: the engine's
            :func:`neuralstudio.ml.layer_stats.interpret_history` of the run's epochs); tests pass their own.
    """

    def __init__(self, parent: QWidget | None = None, *,
                 interpret: Callable[[list[dict[str, Any]]], str] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerStatsPanel")
        self._interpret = interpret or self._interpret_history
        self.tracks: dict[str, LayerTrack] = {}  # by layer name, in the network's order
        self.latest: list[dict[str, Any]] = []  # the last snapshot, for the sentence
        self._by_epoch: dict[int, list[dict[str, Any]]] = {}  # the last snapshot of each epoch, for the sentence
        #: which gradient figure the plot and the table compare the layers by (a key of GRADIENT_MEASURES)
        self.measure = DEFAULT_MEASURE
        self.snapshots = 0  # snapshots taken in since the last reset
        self.refresh_count = 0
        self._dirty = False  # taken in but not drawn (hidden, or items of new layers still to make)
        self._stages: list[Callable[[], None]] = []  # what a staged refresh has still to draw
        self._stage_timer = QTimer(self)
        self._stage_timer.setSingleShot(True)
        self._stage_timer.setInterval(STAGE_INTERVAL_MS)
        self._stage_timer.timeout.connect(self._on_stage_timer)
        self._settle_timer = QTimer(self)
        self._settle_timer.setSingleShot(True)
        self._settle_timer.setInterval(SETTLE_MS)
        self._settle_timer.timeout.connect(self._on_settle_timer)
        self._gate: Callable[[], bool] | None = None
        self._gate_since: float | None = None  # when a stage first found the gate shut

        self.sentence_label = QLabel(WAITING_TEXT, self)
        self.sentence_label.setObjectName("layerStatsSentence")
        self.sentence_label.setAccessibleName("What the layers say")
        self.sentence_label.setWordWrap(True)
        self.sentence_label.setTextFormat(Qt.TextFormat.PlainText)
        self.sentence_label.setToolTip(SENTENCE_TIP)
        self.sentence_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = QFont(self.sentence_label.font())
        font.setBold(True)
        self.sentence_label.setFont(font)
        # two lines high from the start: a label that grew with its text would re-lay out the plots
        self.sentence_label.setMinimumHeight(2 * self.sentence_label.fontMetrics().lineSpacing() + 4)
        self.sentence_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        self.table = QTableWidget(0, len(TABLE_COLUMNS), self)
        self.table.setObjectName("layerStatsTable")
        self.table.setAccessibleName("Per-layer signals")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().setVisible(False)
        # two lines a row, the name over the kind: narrow enough to leave the plots their room
        lines = self.table.fontMetrics().lineSpacing()
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(2 * lines + 8)
        self.table.setWordWrap(False)
        for c, (title, tip) in enumerate(TABLE_COLUMNS):
            head = QTableWidgetItem(title)
            head.setToolTip(tip)
            self.table.setHorizontalHeaderItem(c, head)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(TABLE_COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)

        target = math.log10(UPDATE_RATIO_TARGET)
        title, _, tip = GRADIENT_MEASURES[self.measure]
        self.grad_plot = _SignalPlot(self, "gradientNormPlot", title, tip)
        self.ratio_plot = _SignalPlot(self, "updateRatioPlot", "Update / weight", RATIO_TIP, keep_in_view=target)
        # Karpathy's band and line, in the log plot's own coordinates (log10 of the value), wider than any run's
        # epochs. Plain Qt items, not pyqtgraph's LinearRegionItem and InfiniteLine: those paint in Python, and
        # every Python item of a plot re-enters the interpreter at each repaint (see the class's docstring)
        self.ratio_band = QGraphicsRectItem(QRectF(-RATIO_SPAN, target - UPDATE_RATIO_BAND, 2 * RATIO_SPAN,
                                                   2 * UPDATE_RATIO_BAND))
        self.ratio_band.setBrush(pg.mkBrush(60, 170, 90, 40))
        self.ratio_band.setPen(QPen(Qt.PenStyle.NoPen))
        self.ratio_band.setZValue(-10)
        self.ratio_plot.item.addItem(self.ratio_band, ignoreBounds=True)
        line_pen = pg.mkPen((60, 150, 80, 140), width=1)  # solid: a dashed line this long is dashed end to end
        line_pen.setCosmetic(True)
        self.ratio_line = QGraphicsLineItem(-RATIO_SPAN, target, RATIO_SPAN, target)
        self.ratio_line.setPen(line_pen)
        self.ratio_plot.item.addItem(self.ratio_line, ignoreBounds=True)
        self.weights_plot = _StripPlot(self, "weightStrips", "Weights", WEIGHTS_TIP, "weights")
        self.activations_plot = _StripPlot(self, "activationStrips", "Activations", ACTIVATIONS_TIP, "activations")

        plots = QWidget(self)
        pl = QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        for w in self.plot_widgets():
            pl.addWidget(w, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.table)
        split.addWidget(plots)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([380, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.sentence_label)
        lay.addWidget(split, 1)
        self._draw_all([])

    def plot_widgets(self) -> list[pg.PlotWidget]:
        return [self.grad_plot.widget, self.ratio_plot.widget, self.weights_plot.widget,
                self.activations_plot.widget]

    # ------------------------------------------------------------------ feeding
    def reset(self, enabled: bool = True) -> None:
        """Forget the previous run; ``enabled`` says whether the new run reports per-layer signals at all."""
        self.tracks.clear()
        self.latest = []
        self._by_epoch = {}
        self._set_measure(DEFAULT_MEASURE)
        self.snapshots = 0
        self._dirty = False
        self._stages = []
        self._stage_timer.stop()
        self._gate_since = None
        self._settle_timer.stop()
        self.table.setRowCount(0)
        self.grad_plot.clear()
        self.ratio_plot.clear()
        if self.isVisible():  # in stages, as a live update; the Train window starts the run's thread after them
            self.refresh(staged=True)
        else:
            self._dirty = True  # drawn when shown (showEvent)
        self.sentence_label.setText(WAITING_TEXT if enabled else OFF_TEXT)

    def add_snapshots(self, snapshots: Iterable[tuple[int, list[dict[str, Any]]]]) -> None:
        """Take in ``(epoch, stats)`` snapshots as the worker's buffer drains them; drawn in stages if shown."""
        for epoch, stats in snapshots:
            for s in stats:
                name = str(s.get("layer", ""))
                if not name:
                    continue
                track = self.tracks.get(name)
                if track is None:
                    track = self.tracks[name] = LayerTrack(name)
                track.add(int(epoch), s)
            self.latest = list(stats)
            self._by_epoch[int(epoch)] = self.latest
            self.snapshots += 1
            self._dirty = True
        if self._dirty and self.isVisible() and not self._settle_timer.isActive():
            self._gate_since = None
            self._settle_timer.start(SETTLE_MS)  # later snapshots until then are drawn with this one

    def set_gate(self, ready: Callable[[], bool] | None) -> None:
        """Draw a live update's stages only while ``ready()`` (or once they waited :data:`GATE_WAIT_MS`)."""
        self._gate = ready

    def layer_names(self) -> list[str]:
        return list(self.tracks)

    @property
    def drawing(self) -> bool:
        """A staged refresh has plots left to draw (or new layers' items to make, or snapshots waiting)."""
        return bool(self._stages) or self._dirty

    @property
    def staging(self) -> bool:
        """A staged refresh has plots left to draw now (not counting what waits for the tab to be shown)."""
        return bool(self._stages)

    # ------------------------------------------------------------------ drawing
    def refresh(self, staged: bool = False) -> None:
        """Draw what has been taken in: everything now, or (``staged``) the table now and the plots on a timer."""
        self._dirty = False
        tracks = list(self.tracks.values())
        made = self._make_items(tracks, NEW_LAYERS_PER_TURN if staged else None)
        if made < len(tracks):
            self._dirty = True  # the rest after these stages (see _on_stage_timer)
        shown = tracks[:made]
        if self.latest:
            self._set_measure(layer_stats.gradient_measure(self.latest))
        measure = self.measure
        stages: list[Callable[[], None]] = [
            lambda: self._draw_table(shown),  # and the sentence
            lambda: self.grad_plot.show(shown, measure),
            lambda: self.ratio_plot.show(shown, "update_ratio"),
            lambda: self.weights_plot.show(shown),
            lambda: self.activations_plot.show(shown),
        ]
        self.refresh_count += 1
        if not staged:
            self._stage_timer.stop()
            self._stages = []
            for draw in stages:
                draw()
            return
        stages[0]()  # the table and the sentence: Qt's own widgets, cheap
        self._stages = stages[1:]
        self._stage_timer.start()

    def _set_measure(self, measure: str) -> None:
        """Compare the layers by ``measure`` from now on: the plot's title and the column say which."""
        if measure not in GRADIENT_MEASURES:
            measure = DEFAULT_MEASURE
        title, column, tip = GRADIENT_MEASURES[measure]
        head = self.table.horizontalHeaderItem(1)
        if measure == self.measure and head is not None and head.text() == column:
            return
        self.measure = measure
        self.grad_plot.item.setTitle(PLOT_TITLES.get(title, title), size="9pt")
        self.grad_plot.widget.setAccessibleName(title)
        self.grad_plot.widget.setToolTip(tip)
        if head is not None:
            head.setText(column)
            head.setToolTip(tip)

    def _draw_all(self, tracks: Sequence[LayerTrack]) -> None:
        self.grad_plot.show(tracks, self.measure)
        self.ratio_plot.show(tracks, "update_ratio")
        self.weights_plot.show(tracks)
        self.activations_plot.show(tracks)

    def _draw_table(self, tracks: Sequence[LayerTrack]) -> None:
        for k, t in enumerate(tracks):
            self._fill_row(k, t)
        if self.latest:
            self.sentence_label.setText(self._sentence())

    def _make_items(self, tracks: list[LayerTrack], limit: int | None) -> int:
        """Make the table rows and curves of new layers (at most ``limit``); how many layers have them now."""
        have = len(self.grad_plot.curves)
        upto = len(tracks) if limit is None else min(len(tracks), have + limit)
        if upto == have:
            return have
        self.table.setRowCount(upto)
        for k in range(have, upto):
            t = tracks[k]
            self.grad_plot.add_curve(t.name)
            self.ratio_plot.add_curve(t.name)
            for c in range(len(TABLE_COLUMNS)):
                item = QTableWidgetItem()
                item.setToolTip(TABLE_COLUMNS[c][1])
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(k, c, item)
        # the colours go from the first layer to the last over however many there are now
        for k, t in enumerate(tracks[:upto]):
            color = _layer_color(k, len(tracks))
            for p in (self.grad_plot, self.ratio_plot):
                p.set_color(t.name, color)
            self.table.item(k, 0).setData(Qt.ItemDataRole.DecorationRole, color)
        return upto

    def _fill_row(self, k: int, t: LayerTrack) -> None:
        kind = t.kind()
        self.table.item(k, 0).setText(f"{t.name}\n{kind}" if kind else t.name)
        grad = self.table.item(k, 1)
        grad.setText(_number(t.last(self.measure)))
        grad.setToolTip(t.gradient_text() + "\n\n" + GRADIENT_MEASURES[self.measure][2])
        self.table.item(k, 2).setText(_number(t.last_update_ratio))
        units = self.table.item(k, 3)
        units.setText(t.units_text())
        alarm = t.units_alarm()
        units.setForeground(QColor(ALARM_COLOR) if alarm else self.palette().text().color())
        font = units.font()
        font.setBold(alarm)
        units.setFont(font)

    def _interpret_history(self, latest: list[dict[str, Any]]) -> str:
        """The default sentence: the latest snapshot, and vanishing gradients of an earlier epoch that have gone."""
        history = [self._by_epoch[e] for e in sorted(self._by_epoch)] or [latest]
        return layer_stats.interpret_history(history)

    def _sentence(self) -> str:
        try:
            return self._interpret(self.latest) or ""
        except Exception:  # noqa: BLE001 - a wrong sentence must not stop the plots of a run; the log has it
            log.exception("interpreting the per-layer signals failed")
            return ""

    def finish_drawing(self) -> None:
        """Draw the stages still waiting now (a run's end, a test)."""
        self._settle_timer.stop()
        if self._dirty:
            self.refresh()
        else:
            self._stage_timer.stop()
            stages, self._stages = self._stages, []
            for draw in stages:
                draw()

    # ------------------------------------------------------------------- slots
    def _gate_open(self) -> bool:
        """Whether a stage may draw now; False restarts its timer (see the class's docstring)."""
        if self._gate is None or self._gate():
            self._gate_since = None
            return True
        now = time.monotonic()
        if self._gate_since is None:
            self._gate_since = now
        return now - self._gate_since >= GATE_WAIT_MS / 1000  # then the update's later stages pass too

    def _on_settle_timer(self) -> None:
        if self._dirty and self.isVisible():
            if not self._gate_open():
                self._settle_timer.start(STAGE_INTERVAL_MS)
                return
            self.refresh(staged=True)

    def _on_stage_timer(self) -> None:
        if self._stages and not self._gate_open():
            self._stage_timer.start()
            return
        if self._stages:
            self._stages.pop(0)()
        if self._stages:
            self._stage_timer.start()
        elif self._dirty:  # new layers whose items were not made yet
            if self.isVisible():
                self.refresh(staged=True)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty or self._stages:
            self.refresh()  # everything paints now anyway


def _layer_color(k: int, n: int) -> QColor:
    return _DEPTH_COLORS.map(k / (n - 1) if n > 1 else 0.0, mode=pg.ColorMap.QCOLOR)
