"""Live loss and accuracy plots for the Train workspace.

The plots are fed from the GUI thread only (the workspace's drain timer), and
every curve is backed by a :class:`GrowingSeries`: a preallocated numpy buffer
that doubles when full, so a refresh is one ``setData`` on a view of existing
memory instead of a Python list turned into a new array at 20 Hz.

The x axis is in epochs: batch ``i`` (1-based) of epoch ``e`` (0-based) of
``steps`` batches sits at ``e + i / steps``, and the end of epoch ``e`` at
``e + 1``, so batch and epoch curves line up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import QCheckBox, QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from neuralstudio.core.numbers import as_number

#: colours of the live curves (train batch, train epoch, validation epoch)
BATCH_COLOR = (100, 149, 237, 150)
TRAIN_COLOR = (30, 90, 200)
VAL_COLOR = (220, 110, 20)
#: the overfitting explanation's colour, and what the line under the plots says until then
OVERFIT_TEXT_COLOR = "#b35900"
OVERFIT_HINT = ("Overfitting is marked here and on the plots when validation loss keeps rising "
                "while training loss keeps falling.")
#: the live batch curve's tail is folded into its settled part once it holds this many points or spans
#: this fraction of the visible epochs (see _MetricPlot.refresh)
TAIL_MAX_POINTS = 512
TAIL_MAX_SPAN = 0.05
#: the y range's margin around the curves, and the room it leaves ahead when the curves leave it
#: (fractions of the curves' span)
FOLLOW_PAD = 0.08
FOLLOW_AHEAD = 0.35
#: colours cycled for overlaid past runs
OVERLAY_LEGEND_RUNS = 3  # past runs with a legend entry; more are named by the hover text only
OVERLAY_COLORS = [(44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194),
                  (127, 127, 127), (188, 189, 34), (23, 190, 207)]


class GrowingSeries:
    """An (x, y) series in preallocated float64 arrays that grow by doubling.

    Args:
        capacity: initial number of points held without reallocating.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(max(1, capacity), dtype=np.float64)
        self._y = np.empty(max(1, capacity), dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return len(self._x)

    def _reserve(self, n: int) -> None:
        if n <= len(self._x):
            return
        cap = len(self._x)
        while cap < n:
            cap *= 2
        for name in ("_x", "_y"):
            old = getattr(self, name)
            new = np.empty(cap, dtype=np.float64)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def append(self, x: float, y: float) -> None:
        self._reserve(self._n + 1)
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    def extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        k = len(xs)
        if k == 0:
            return
        self._reserve(self._n + k)
        self._x[self._n:self._n + k] = xs
        self._y[self._n:self._n + k] = ys
        self._n += k

    def clear(self) -> None:
        self._n = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]


class GridAxis(pg.AxisItem):
    """An axis whose grid lines are opaque tints drawn beneath the curves.

    pyqtgraph draws grid lines as the axis's ticks in a translucent pen, without
    anti-aliasing.  Qt's raster engine draws translucent aliased lines about 40x
    slower than opaque ones (measured: 9 ms vs 0.24 ms for 60 lines), which made
    every axis repaint cost 6-10 ms and the first refresh of a run stall the GUI
    for 60-90 ms.  The same tint, pre-blended over the plot background, looks the
    same; stacked behind the data (z < 0) it no longer paints over the curves.
    """

    def __init__(self, orientation: str, **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self._opaque_pens: dict[tuple[int, float], QPen] = {}  # a handful: one per tick level

    def drawPicture(self, p, axis_spec, tick_specs, text_specs) -> None:  # noqa: N802 - pyqtgraph's name
        super().drawPicture(p, axis_spec, [(self._opaque(pen), p1, p2) for pen, p1, p2 in tick_specs], text_specs)

    def _opaque(self, pen: QPen) -> QPen:
        c = pen.color()
        if c.alpha() == 255:
            return pen
        key = (c.rgba(), pen.widthF())
        out = self._opaque_pens.get(key)
        if out is None:
            bg = pg.mkColor(pg.getConfigOption("background"))
            a = c.alphaF()
            out = QPen(pen)
            out.setColor(QColor(round(bg.red() + (c.red() - bg.red()) * a),
                                round(bg.green() + (c.green() - bg.green()) * a),
                                round(bg.blue() + (c.blue() - bg.blue()) * a)))
            self._opaque_pens[key] = out
        return out


def _finite_for_plot(x: np.ndarray, y: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Drop NaN/inf (and non-positive values on a log axis): pyqtgraph would draw garbage."""
    ok = np.isfinite(y)
    if log:
        ok &= y > 0
    if ok.all():
        return x, y
    return x[ok], y[ok]


class _MetricPlot:
    """One PlotWidget with live batch/epoch/validation curves and run overlays.

    The batch curve is drawn as two items: ``batch_curve`` holds the settled points and
    ``batch_tail`` the newest ones (from the last settled point on, so the line is unbroken).
    A refresh re-sets only the tail, so Qt repaints only the small rectangle around the newest
    points instead of the whole plot under a curve that spans it (measured: 1.65 -> 0.57 ms of
    GUI time per refresh, both plots).  Every so often the tail is folded into the settled part, which costs
    one full repaint.
    """

    def __init__(self, widget: pg.PlotWidget, label: str) -> None:
        self.widget = widget
        self.label = label
        self.item: pg.PlotItem = widget.getPlotItem()
        self.item.showGrid(x=True, y=True, alpha=0.25)
        self.item.setLabel("bottom", "epoch")
        self.item.setLabel("left", label)
        for side in ("left", "bottom"):
            self.item.getAxis(side).enableAutoSIPrefix(False)  # "loss (x0.001)" with 250 reads as nonsense
            self.item.getAxis(side).setZValue(self.item.vb.zValue() - 1)  # grid beneath the curves (GridAxis)
        for side in ("left", "bottom", "right", "top"):
            # With a grid an axis item spans the whole plot, so every curve update would repaint its
            # tick text (measured: most of the GUI's CPU during training). Cached as a pixmap, an axis
            # is re-rendered only when its own range changes.
            self.item.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # The y range follows the data with hysteresis (see _follow_y), not pyqtgraph's auto-range,
        # which would move it, and re-render the axis, at every refresh while the loss falls.
        self.item.enableAutoRange(y=False)
        # loss falls, accuracy rises: put each legend where its curves usually are not
        offset = (-10, 10) if label == "loss" else (-10, -10)
        self.legend = self.item.addLegend(offset=offset, brush=pg.mkBrush(255, 255, 255, 210),
                                          pen=pg.mkPen(200, 200, 200), labelTextSize="8pt", verSpacing=-4)
        self.batch = GrowingSeries(4096)
        self.train = GrowingSeries(64)
        self.val = GrowingSeries(64)
        self.batch_curve = self.item.plot(pen=pg.mkPen(BATCH_COLOR, width=1), name=f"train {label} (batches)")
        self.batch_tail = self.item.plot(pen=pg.mkPen(BATCH_COLOR, width=1))  # no name: not in the legend
        self._settled = 0  # points of self.batch drawn by batch_curve; the tail draws from the last of them
        self.train_curve = self.item.plot(pen=pg.mkPen(TRAIN_COLOR, width=2), symbol="o", symbolSize=6,
                                          symbolBrush=TRAIN_COLOR, name=f"train {label} (epochs)")
        self.val_curve = self.item.plot(pen=pg.mkPen(VAL_COLOR, width=2), symbol="s", symbolSize=6,
                                        symbolBrush=VAL_COLOR, name=f"validation {label}")
        for c in (self.batch_curve, self.train_curve, self.val_curve):
            c.setClipToView(True)
        for c in (self.train_curve, self.val_curve):
            # The epoch curves change once an epoch, but are repainted whenever a refresh's dirty
            # rectangle reaches them (each fold of the batch tail repaints the whole plot). As cached
            # pixmaps they are blitted instead of re-drawn in Python (measured before the batch tail:
            # 2.0 -> 1.6 ms per refresh). Qt re-renders a cache when the item changes or the view scales.
            c.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            c.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.batch_curve.setDownsampling(auto=True, method="peak")
        self.overlays: list[pg.PlotDataItem] = []
        self.markers: list[Any] = []
        self.log = False
        self.dirty = False
        #: whether the last refresh repainted the whole plot (moved its range, folded the tail, new epoch points)
        self.heavy = False

    def clear_live(self) -> None:
        for s in (self.batch, self.train, self.val):
            s.clear()
        self.redraw_all()
        for m in self.markers:
            self.item.removeItem(m)
        self.markers.clear()

    def redraw_all(self) -> None:
        """Make the next refresh re-set every live curve (after a clear, a log switch, for the soak test)."""
        for c in (self.batch_tail, self.train_curve, self.val_curve):
            c._ns_shown = -1  # type: ignore[attr-defined]
        self._settled = 0  # the batch curve is re-set in full at the next refresh
        self.dirty = True

    def refresh(self) -> bool:
        if not self.dirty:
            return False
        self.heavy = self._refresh_batches()
        for s, c in ((self.train, self.train_curve), (self.val, self.val_curve)):
            if len(s) == getattr(c, "_ns_shown", -1):
                continue  # the epoch curves change once an epoch: skip their (symbol) rebuild
            c.setData(*_finite_for_plot(s.x, s.y, self.log))
            c._ns_shown = len(s)  # type: ignore[attr-defined]
            self.heavy = True
        self.heavy |= self._follow_y()
        self.dirty = False
        return True

    def _refresh_batches(self) -> bool:
        """Show new batch points; True when that repaints the whole plot (the tail was folded in)."""
        s, n = self.batch, len(self.batch)
        if n == getattr(self.batch_tail, "_ns_shown", -1):
            return False
        settled, folded = self._settled, False
        x0, x1 = self.item.getViewBox().viewRange()[0]
        tail_span = float(s.x[n - 1] - s.x[settled - 1]) if 0 < settled < n else 0.0
        if settled == 0 or n < settled or n - settled > TAIL_MAX_POINTS or tail_span > TAIL_MAX_SPAN * (x1 - x0):
            settled = self._settled = n  # fold the tail in: one full repaint
            folded = True
            self.batch_curve.setData(*_finite_for_plot(s.x, s.y, self.log))
        # from the last settled point on, so that the two parts join
        self.batch_tail.setData(*_finite_for_plot(s.x[settled - 1:], s.y[settled - 1:], self.log))
        self.batch_tail._ns_shown = n  # type: ignore[attr-defined]
        return folded

    def drawn_batches(self) -> tuple[np.ndarray, np.ndarray]:
        """The batch points as drawn (settled part, then the tail without the point they share)."""
        hx, hy = self.batch_curve.getData()
        tx, ty = self.batch_tail.getData()
        if hx is None or not len(hx):
            return (np.asarray(tx if tx is not None else [], float), np.asarray(ty if ty is not None else [], float))
        if tx is None or len(tx) <= 1:
            return np.asarray(hx, float), np.asarray(hy, float)
        skip = 1 if tx[0] == hx[-1] else 0
        return np.concatenate([hx, tx[skip:]]), np.concatenate([hy, ty[skip:]])

    def _follow_y(self, force: bool = False) -> bool:
        """Keep every curve in view, moving the y range only when data leaves it or fills < 1/3 of it.

        Returns whether the range moved (which re-renders the y axis and repaints the whole plot).
        """
        lows, highs = [], []
        for c in (self.batch_curve, self.batch_tail, self.train_curve, self.val_curve, *self.overlays):
            lo, hi = c.dataBounds(1)
            if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
                lows.append(lo)
                highs.append(hi)
        if not lows:
            return False
        lo, hi = min(lows), max(highs)
        span = max(hi - lo, 1e-3)
        cur_lo, cur_hi = self.item.getViewBox().viewRange()[1]
        edge = 0.02 * (cur_hi - cur_lo)  # a point on the very edge would be drawn half outside
        below, above = lo < cur_lo + edge, hi > cur_hi - edge
        if force or below or above or (cur_hi - cur_lo) > 3 * span:
            # Room ahead on the side the curves left by: a falling loss (rising accuracy) then moves
            # the range, and so re-renders both axes and the whole plot, a few times a run, not at
            # every other refresh (measured on a simulated 8-epoch run: 32 -> 12 moves).
            new_lo = lo - (FOLLOW_AHEAD if below and not force else FOLLOW_PAD) * span
            new_hi = hi + (FOLLOW_AHEAD if above and not force else FOLLOW_PAD) * span
            if not self.log:  # no room for values a loss or an accuracy cannot take
                if lo >= 0:
                    new_lo = max(new_lo, min(lo - FOLLOW_PAD * span, 0.0))
                if self.label == "accuracy" and hi <= 1:
                    new_hi = min(new_hi, max(hi + FOLLOW_PAD * span, 1.0))
            self.item.setYRange(new_lo, new_hi, padding=0)
            return True
        return False

    def set_log(self, log: bool) -> None:
        self.log = log
        self.item.setLogMode(y=log)
        self.redraw_all()
        self.refresh()
        for ov in self.overlays:
            x, y = ov._ns_raw  # type: ignore[attr-defined]
            ov.setData(*_finite_for_plot(x, y, log))
        self._follow_y(force=True)

    def clear_overlays(self) -> None:
        for ov in self.overlays:
            self.item.removeItem(ov)
            self.legend.removeItem(ov)
        self.overlays.clear()
        self._follow_y(force=True)

    def add_overlay(self, name: str, x: np.ndarray, y: np.ndarray, color: tuple[int, int, int], dashed: bool,
                    legend: str | None = None) -> None:
        """A past run's curve; ``legend`` is its legend entry (None: none, the hover text still names it)."""
        pen = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
        fx, fy = _finite_for_plot(np.asarray(x, float), np.asarray(y, float), self.log)
        ov = self.item.plot(fx, fy, pen=pen, symbol="t" if dashed else "o", symbolSize=5, symbolBrush=color,
                            name=legend)
        ov._ns_name = name  # type: ignore[attr-defined]  # for the hover text
        ov._ns_raw = (np.asarray(x, float), np.asarray(y, float))  # type: ignore[attr-defined]
        self.overlays.append(ov)
        self._follow_y()

    def nearest(self, x: float) -> list[str]:
        """The values of every curve nearest to epoch position ``x``, as text lines."""
        out: list[str] = []
        for title, s in ((f"train {self.label} (batch)", self.batch), (f"train {self.label}", self.train),
                         (f"val {self.label}", self.val)):
            if len(s):
                i = int(np.argmin(np.abs(s.x - x)))
                out.append(f"{title}: {s.y[i]:.4g} @ {s.x[i]:.2f}")
        for ov in self.overlays:
            xs, ys = ov._ns_raw  # type: ignore[attr-defined]
            if len(xs):
                i = int(np.argmin(np.abs(xs - x)))
                out.append(f"{ov._ns_name}: {ys[i]:.4g} @ {xs[i]:.2f}")  # type: ignore[attr-defined]
        return out


def _grid_axes() -> dict[str, GridAxis]:
    return {side: GridAxis(side) for side in ("left", "bottom")}


class TrainingPlots(QWidget):
    """The loss plot (``lossPlot``) and the accuracy plot (``accuracyPlot``) side by side.

    The workspace appends points with :meth:`add_batch` / :meth:`add_epoch`
    (cheap, no drawing) and calls :meth:`refresh` from its timer.
    """

    hover_text_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=False, background="w", foreground="k")
        self.loss_widget = pg.PlotWidget(self, axisItems=_grid_axes())
        self.loss_widget.setObjectName("lossPlot")
        self.loss_widget.setAccessibleName("lossPlot")
        self.loss_widget.setAccessibleDescription("Training and validation loss per epoch")
        self.acc_widget = pg.PlotWidget(self, axisItems=_grid_axes())
        self.acc_widget.setObjectName("accuracyPlot")
        self.acc_widget.setAccessibleName("accuracyPlot")
        self.acc_widget.setAccessibleDescription("Training and validation accuracy per epoch")
        self.loss = _MetricPlot(self.loss_widget, "loss")
        self.acc = _MetricPlot(self.acc_widget, "accuracy")
        self.acc.item.setXLink(self.loss.item)
        self.log_box = QCheckBox("Log scale for loss", self)
        self.log_box.setObjectName("logScaleBox")
        self.log_box.setAccessibleName("Log scale for loss")
        self.log_box.toggled.connect(self._on_log_toggled)
        self.hover_label = QLabel(" ", self)
        self.hover_label.setObjectName("hoverLabel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_label.setWordWrap(True)
        # Always shown, at least two lines high: a label that appeared mid-run would shrink and so
        # re-render both plots (measured: 23 ms, twice that while training competes for the CPU).
        self.overfit_label = QLabel(self)
        self.overfit_label.setObjectName("overfitLabel")
        self.overfit_label.setAccessibleName("Overfitting")
        self.overfit_label.setWordWrap(True)
        self.overfit_label.setTextFormat(Qt.TextFormat.PlainText)
        self.overfit_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        fm = self.overfit_label.fontMetrics()
        self.overfit_label.setMinimumHeight(2 * fm.lineSpacing() + 4)
        self._show_overfit_hint()

        row = QHBoxLayout()
        row.addWidget(self.loss_widget, 1)
        row.addWidget(self.acc_widget, 1)
        top = QHBoxLayout()
        top.addWidget(self.log_box)
        top.addWidget(self.hover_label, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addLayout(row, 1)
        lay.addWidget(self.overfit_label)
        self.refresh_count = 0
        self._acc_first = False  # a spread refresh left the accuracy plot for the next one
        self.overfit_epoch: int | None = None
        for w, plot in ((self.loss_widget, self.loss), (self.acc_widget, self.acc)):
            w.scene().sigMouseMoved.connect(lambda pos, w=w, plot=plot: self._on_mouse_moved(w, plot, pos))

    # ------------------------------------------------------------------ feeding
    def reset(self, epochs: int | None = None) -> None:
        """Forget the live run (overlays of past runs stay); with ``epochs``, fix the x axis to the whole run.

        A fixed x range keeps the x axes from being re-laid out and re-rendered at every refresh
        (axis text is most of a refresh's cost), and shows at a glance how far the run has got.
        """
        self.loss.clear_live()
        self.acc.clear_live()
        for plot in (self.loss, self.acc):
            if epochs:
                plot.item.setXRange(0, epochs, padding=0.02)
                plot.item.enableAutoRange(x=False, y=False)
            else:
                plot.item.enableAutoRange(x=True, y=False)
        self.overfit_epoch = None
        self._show_overfit_hint()
        self.refresh()

    def add_batches(self, xs: Sequence[float], losses: Sequence[float], accs: Sequence[float]) -> None:
        """Append running-average batch values at epoch positions ``xs``."""
        self.loss.batch.extend(xs, losses)
        self.loss.dirty = True
        if accs is not None and len(accs) and not all(math.isnan(a) for a in accs):
            self.acc.batch.extend(xs, accs)
            self.acc.dirty = True

    def add_epoch(self, x: float, logs: dict[str, Any]) -> None:
        """Append end-of-epoch training and validation values at ``x`` (= epoch + 1)."""
        for plot, key in ((self.loss, "loss"), (self.acc, "accuracy")):
            v = as_number(logs.get(key))
            if v is not None:
                plot.train.append(x, v)
                plot.dirty = True
            vv = as_number(logs.get(f"val_{key}"))
            if vv is not None:
                plot.val.append(x, vv)
                plot.dirty = True

    def refresh(self, spread: bool = False) -> bool:
        """Push new points to the curves; True when something was redrawn.

        With ``spread`` (the live refreshes during a run), a refresh that repaints one plot in full
        (its range moved, its batch tail was folded in, an epoch's points arrived) leaves the other
        plot's new points for the next refresh, which starts with it. Both plots repainted in full in
        one tick were the window's longest stalls during a run (2 x 20 ms of painting, up to twice
        that while training competes for the CPU); spread, each tick paints at most one plot in full.
        """
        first, second = (self.acc, self.loss) if self._acc_first else (self.loss, self.acc)
        self._acc_first = False
        drawn = first.refresh()
        if spread and drawn and first.heavy and second.dirty:
            self._acc_first = second is self.acc
        elif second.refresh():
            drawn = True
        if drawn:
            self.refresh_count += 1
        return drawn

    def force_refresh(self) -> None:
        """Mark every live curve dirty and redraw (used by the soak test)."""
        self.loss.redraw_all()
        self.acc.redraw_all()
        self.refresh()

    # ---------------------------------------------------------------- overfitting
    def mark_overfitting(self, epoch: int, message: str) -> None:
        """Shade the epochs from ``epoch`` on (1-based end-of-epoch positions) and explain why."""
        if self.overfit_epoch is not None:
            return
        self.overfit_epoch = epoch
        for plot in (self.loss, self.acc):
            line = pg.InfiniteLine(pos=epoch, angle=90, movable=False,
                                   pen=pg.mkPen((200, 60, 0), width=1, style=Qt.PenStyle.DashLine),
                                   label="overfitting", labelOpts={"position": 0.9, "color": (200, 60, 0)})
            region = pg.LinearRegionItem(values=(epoch, epoch + 1e6), movable=False,
                                         brush=pg.mkBrush(255, 140, 0, 30), pen=pg.mkPen(None))
            region.setZValue(-10)
            plot.item.addItem(region, ignoreBounds=True)
            plot.item.addItem(line, ignoreBounds=True)
            plot.markers.extend([region, line])
        self.overfit_label.setText(message)
        self._set_overfit_color(OVERFIT_TEXT_COLOR)

    def _show_overfit_hint(self) -> None:
        self.overfit_label.setText(OVERFIT_HINT)
        self._set_overfit_color(None)

    def _set_overfit_color(self, color: str | None) -> None:
        """Recolour through the palette: a style sheet change would re-polish and re-lay out the label."""
        pal = self.overfit_label.palette()
        role = self.overfit_label.foregroundRole()
        pal.setColor(role, QColor(color) if color else self.palette().color(QPalette.ColorRole.PlaceholderText))
        self.overfit_label.setPalette(pal)

    # ------------------------------------------------------------------ overlays
    def clear_overlays(self) -> None:
        self.loss.clear_overlays()
        self.acc.clear_overlays()

    def set_overlays(self, runs: Iterable[tuple[str, dict[str, list[float]]]]) -> None:
        """Overlay past runs' per-epoch curves: ``(label, history)`` pairs, history as in RunResult."""
        self.clear_overlays()
        for i, (label, hist) in enumerate(runs):
            color = OVERLAY_COLORS[i % len(OVERLAY_COLORS)]
            for plot, key in ((self.loss, "loss"), (self.acc, "accuracy")):
                listed = False
                for prefix, dashed in (("", False), ("val_", True)):
                    ys = hist.get(prefix + key) or []
                    if not ys:
                        continue
                    xs = np.arange(1, len(ys) + 1, dtype=float)
                    name = f"{label} {'val ' if dashed else ''}{key}"
                    # One legend entry per run, and only for the first few: eight entries covered the data.
                    # Dashed is validation, as for the live curves; hovering names every curve.
                    legend = None
                    if not listed and i < OVERLAY_LEGEND_RUNS:
                        legend = f"{label}" + (" (dashed: validation)" if i == 0 and hist.get("val_" + key) else "")
                        listed = True
                    plot.add_overlay(name, xs, np.asarray([as_number(v, math.nan) for v in ys], float), color,
                                     dashed, legend)

    # -------------------------------------------------------------------- export
    def export_png(self, path: str) -> list[str]:
        """Write both plots as PNG images (``<stem>-loss.png`` and ``<stem>-accuracy.png``); return the paths."""
        import os

        from pyqtgraph.exporters import ImageExporter

        from neuralstudio.core.atomic import atomic_path

        stem, ext = os.path.splitext(path)
        ext = ext or ".png"
        out = []
        for plot, tag in ((self.loss, "loss"), (self.acc, "accuracy")):
            target = f"{stem}-{tag}{ext}"
            exporter = ImageExporter(plot.item)
            exporter.parameters()["width"] = max(600, int(plot.widget.width()) * 2)
            with atomic_path(target) as tmp:
                exporter.export(str(tmp))
            out.append(target)
        return out

    # ------------------------------------------------------------------- slots
    def _on_log_toggled(self, on: bool) -> None:
        self.loss.set_log(on)

    def _on_mouse_moved(self, widget: pg.PlotWidget, plot: _MetricPlot, pos: QPointF) -> None:
        vb = plot.item.vb
        if not vb.sceneBoundingRect().contains(pos):
            return
        x = vb.mapSceneToView(pos).x()
        lines = plot.nearest(x)
        text = f"epoch {x:.2f}   " + ("   ".join(lines) if lines else "no data yet")
        self.hover_label.setText(text)
        self.hover_text_changed.emit(text)
