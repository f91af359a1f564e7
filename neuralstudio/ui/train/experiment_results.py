"""What an experiment found, drawn: the trials' table, a heat map or parallel coordinates, importances, curves.

Everything here reads one ``ml.sweep_results.SweepResults`` (made on a background thread from the Optuna
study alone, so a study filled by other machines reads the same) and draws it with pyqtgraph on the GUI
thread. Which picture shows the search depends on how many things varied: with exactly two, a heat map
of the best score per pair of values answers "which combination?" at a glance; with three or more,
parallel coordinates (one line per trial across normalised axes, coloured by its score) show which
regions of every axis the good trials go through. One value varied needs neither: the table and the
top curves say it all.

The pictures are rebuilt at most once per finished trial (a few dozen items), never per batch, so they
cost the GUI thread nothing while trials train. The table is sortable by every column, numbers as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.formatting import format_duration
from neuralstudio.ui.train.plots import OVERLAY_COLORS

__all__ = ["ExperimentResultsView", "HeatMapView", "ImportanceView", "ParallelCoordinatesView", "TopCurvesView",
           "heat_grid", "normalised_axes", "value_text"]

#: a numeric hyperparameter with more distinct values than this is grouped into ranges on the heat map
MAX_CELLS = 8
TOP_N = 5
#: the results view puts the table beside the pictures from this width on, and into their tabs below it
WIDE_PX = 760
NARROW_PX = 700
_STATE_TEXT = {"complete": "complete", "pruned": "pruned", "failed": "failed", "running": "running",
               "waiting": "waiting"}
_STATE_COLOR = {"pruned": "#718096", "failed": "#b00020", "running": "#2b6cb0"}
NO_MAP_TEXT = ("The heat map appears when exactly two hyperparameters vary, parallel coordinates when three or "
               "more do.")


def value_text(v: Any) -> str:
    """A hyperparameter's value as the table and the axes write it: ``0.001``, ``relu``, ``3x3``."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "x".join(value_text(x) for x in v)
    return "none" if v is None else str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _key(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _order(v: Any) -> tuple[int, Any]:
    return (0, float(v)) if _is_number(v) else (1, value_text(v))


def _log_like(values: Sequence[float]) -> bool:
    """Positive values spanning 20x or more read best on a log axis (learning rates, L2 factors)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 20


def _score(row: Any) -> float | None:
    v = getattr(row, "value", None)
    return float(v) if _is_number(v) and row.state in ("complete", "pruned") else None


# ----------------------------------------------------------------------------- pure helpers (tested alone)
def _binned(values: list[Any]) -> tuple[list[str], Any]:
    """The categories of one heat-map axis: its distinct values, or ranges when a number took many values.

    Returns the labels and a function from a value to its category index (None: not placed).
    """
    distinct = sorted({_key(v) for v in values}, key=_order)
    numbers = [float(v) for v in distinct if _is_number(v)]
    if len(distinct) <= MAX_CELLS or len(numbers) != len(distinct):
        index = {v: i for i, v in enumerate(distinct)}
        return [value_text(v) for v in distinct], lambda v: index.get(_key(v))
    log = _log_like(numbers)
    lo, hi = (math.log10(min(numbers)), math.log10(max(numbers))) if log else (min(numbers), max(numbers))
    n = MAX_CELLS // 2 + 2
    edges = [lo + (hi - lo) * i / n for i in range(n + 1)]
    shown = [10 ** e if log else e for e in edges]
    labels = [f"{shown[i]:.3g}–{shown[i + 1]:.3g}" for i in range(n)]

    def place(v: Any) -> int | None:
        if not _is_number(v):
            return None
        x = math.log10(float(v)) if log else float(v)
        return min(n - 1, max(0, int((x - lo) / (hi - lo) * n))) if hi > lo else 0

    return labels, place


def heat_grid(rows: Sequence[Any], px: str,
              py: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The heat map of two varied hyperparameters: each axis's labels, and per cell the best score, the number
    of trials that ended there and whether one is running there.

    Cells that no finished trial reached hold NaN. ``matrix[i, j]`` is the cell of the ``i``-th value of
    ``px`` and the ``j``-th of ``py`` (pyqtgraph's column-major image order).
    """
    placed = [r for r in rows if px in r.values and py in r.values]
    xl, xi = _binned([r.values[px] for r in placed])
    yl, yi = _binned([r.values[py] for r in placed])
    best = np.full((len(xl), len(yl)), np.nan)
    count = np.zeros((len(xl), len(yl)), dtype=int)
    running = np.zeros((len(xl), len(yl)), dtype=bool)
    for r in placed:
        i, j = xi(r.values[px]), yi(r.values[py])
        s = _score(r)
        if i is None or j is None:
            continue
        if r.state in ("running", "waiting"):
            running[i, j] = True
        else:
            count[i, j] += 1
        if s is not None and (math.isnan(best[i, j]) or s > best[i, j]):
            best[i, j] = s
    return xl, yl, best, count, running


def normalised_axes(rows: Sequence[Any], params: Sequence[str]) -> list[dict[str, Any]]:
    """One parallel-coordinates axis per hyperparameter: how to place a value between 0 and 1, and the labels.

    Numbers go linearly between their smallest and largest value (logarithmically when they span 20x or
    more); other values (activations, optimizers) are spread evenly in sorted order.
    """
    axes = []
    for p in params:
        values = [r.values[p] for r in rows if p in r.values]
        numbers = [float(v) for v in values if _is_number(v)]
        if values and len(numbers) == len(values):
            log = _log_like(numbers)
            lo, hi = min(numbers), max(numbers)
            a, b = (math.log10(lo), math.log10(hi)) if log else (lo, hi)

            def place(v: Any, a: float = a, b: float = b, log: bool = log) -> float | None:
                if not _is_number(v):
                    return None
                x = math.log10(float(v)) if log and float(v) > 0 else float(v)
                return 0.5 if b <= a else (x - a) / (b - a)

            labels = [(0.0, value_text(lo)), (1.0, value_text(hi))] if hi > lo else [(0.5, value_text(lo))]
            axes.append({"name": p, "place": place, "labels": labels, "log": log})
        else:
            distinct = sorted({_key(v) for v in values}, key=_order)
            n = len(distinct)
            pos = {v: (i / (n - 1) if n > 1 else 0.5) for i, v in enumerate(distinct)}
            axes.append({"name": p, "place": lambda v, pos=pos: pos.get(_key(v)),
                         "labels": [(pos[v], value_text(v)) for v in distinct], "log": False})
    return axes


def _short(path: str) -> str:
    """An axis title: ``hidden.units`` stays, ``Dense[hidden].activation`` becomes ``hidden Dense activation``."""
    if "[" in path and "." in path:
        layer, key = path.rsplit(".", 1)
        cls, which = layer.split("[", 1)
        which = which.rstrip("]")
        return f"{'every' if which == '*' else 'hidden'} {cls} {key}"
    return path


# ----------------------------------------------------------------------------- the pictures
class HeatMapView(pg.PlotWidget):
    """Best score per pair of values of the two varied hyperparameters, with the score written in each cell."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("experimentHeatMap")
        self.setAccessibleName("experimentHeatMap")
        self.setToolTip("The best score of the trials with each pair of values; empty cells were not tried")
        self.setMenuEnabled(False)
        self.setMinimumSize(240, 180)
        item = self.getPlotItem()
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem()
        item.addItem(self.image)
        self.cmap = pg.colormap.get("viridis")
        self.image.setColorMap(self.cmap)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self.cmap, interactive=False, width=14)
        self.bar.setImageItem(self.image, insert_in=item)
        self.texts: list[pg.TextItem] = []  # the cells' texts (the first of the pool)
        self._pool: list[pg.TextItem] = []
        self.matrix = np.zeros((0, 0))
        self.x_labels: list[str] = []
        self.y_labels: list[str] = []

    def set_grid(self, x_name: str, y_name: str, x_labels: list[str], y_labels: list[str], matrix: np.ndarray,
                 count: np.ndarray | None = None, running: np.ndarray | None = None) -> None:
        """Show ``matrix`` (scores 0-1, NaN where no trial finished) with the values as tick labels."""
        item = self.getPlotItem()
        self.matrix, self.x_labels, self.y_labels = matrix, x_labels, y_labels
        finite = matrix[np.isfinite(matrix)] if matrix.size else np.array([])
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi - lo < 1e-6:  # one score, or all equal: a small range around it, so the colour bar reads
            lo, hi = lo - 0.05, hi + 0.05
        shown = np.where(np.isfinite(matrix), matrix, np.nan) if matrix.size else np.full((1, 1), np.nan)
        self.image.setImage(shown, levels=(lo, hi), autoLevels=False)
        self.image.setRect(0, 0, max(1, len(x_labels)), max(1, len(y_labels)))
        self.bar.setLevels((lo, hi))
        item.getAxis("bottom").setTicks([[(i + 0.5, t) for i, t in enumerate(x_labels)]])
        item.getAxis("left").setTicks([[(j + 0.5, t) for j, t in enumerate(y_labels)]])
        item.setLabel("bottom", _short(x_name))
        item.setLabel("left", _short(y_name))
        cells = [(i, j) for i in range(len(x_labels)) for j in range(len(y_labels))]
        # The cells' texts are kept and reused: making a TextItem costs about 1 ms, and the map is redrawn after
        # every trial while the next one trains.
        while len(self._pool) < len(cells):
            t = pg.TextItem("", anchor=(0.5, 0.5))
            item.addItem(t)
            self._pool.append(t)
        for t in self._pool[len(cells):]:
            t.hide()
        self.texts = self._pool[:len(cells)]
        for t, (i, j) in zip(self.texts, cells):
            v = matrix[i, j]
            if math.isfinite(v):
                # dark text on the light (high) end of viridis, white on the dark end
                light = (v - lo) / (hi - lo) > 0.6 if hi > lo else True
                text = f"{100 * v:.1f}%"
                color = (20, 20, 20) if light else (255, 255, 255)
            else:
                if running is not None and running[i, j]:
                    text = "running"
                else:
                    text = "no score" if count is not None and count[i, j] > 0 else "–"
                color = (110, 110, 110)
            t.setText(text, color=color)
            t.setPos(i + 0.5, j + 0.5)
            t.show()
        item.setXRange(0, max(1, len(x_labels)), padding=0)
        item.setYRange(0, max(1, len(y_labels)), padding=0)

    def cell_texts(self) -> list[str]:
        return [t.toPlainText() for t in self.texts]


class ParallelCoordinatesView(pg.PlotWidget):
    """One line per trial across one axis per hyperparameter and a last axis for its score."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("experimentParallel")
        self.setAccessibleName("experimentParallel")
        self.setToolTip("Each line is a trial through its values (axes scaled from the smallest to the largest "
                        "value tried); bright lines scored best, grey dashed ones were pruned or failed")
        self.setMenuEnabled(False)
        self.setMinimumSize(260, 180)
        item = self.getPlotItem()
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.hideAxis("left")
        self.cmap = pg.colormap.get("viridis")
        self.lines: list[pg.PlotDataItem] = []
        self._extra: list[Any] = []

    def set_trials(self, rows: Sequence[Any], params: Sequence[str], metric_words: str) -> None:
        item = self.getPlotItem()
        for it in [*self.lines, *self._extra]:
            item.removeItem(it)
        self.lines, self._extra = [], []
        axes = normalised_axes(rows, params)
        scores = [s for s in (_score(r) for r in rows) if s is not None]
        lo, hi = (min(scores), max(scores)) if scores else (0.0, 1.0)
        span = hi - lo if hi > lo else 1.0
        n = len(axes)
        for i in range(n + 1):
            line = pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen((160, 160, 160), width=1))
            item.addItem(line)
            self._extra.append(line)
        for i, ax in enumerate(axes):
            for pos, label in ax["labels"]:
                t = pg.TextItem(label, color=(40, 40, 40), anchor=(0.0, 0.5))
                t.setPos(i + 0.03, pos)
                item.addItem(t)
                self._extra.append(t)
        for pos, label in ((0.0, f"{100 * lo:.1f}%"), (1.0, f"{100 * hi:.1f}%")):
            t = pg.TextItem(label, color=(40, 40, 40), anchor=(1.0, 0.5))
            t.setPos(n - 0.03, pos)
            item.addItem(t)
            self._extra.append(t)
        # worst first, so that the best lines are drawn on top
        order = sorted(rows, key=lambda r: (_score(r) is not None and r.state == "complete", _score(r) or 0.0))
        for r in order:
            ys = [ax["place"](r.values.get(ax["name"])) for ax in axes]
            if any(y is None for y in ys):
                continue
            s = _score(r)
            ys.append((s - lo) / span if s is not None else 0.0)
            if r.state == "complete" and s is not None:
                color = self.cmap.map((s - lo) / span, mode="qcolor")
                pen = pg.mkPen(color, width=2)
            else:
                pen = pg.mkPen((170, 170, 170), width=1, style=Qt.PenStyle.DashLine)
            line = pg.PlotDataItem(list(range(n + 1)), ys, pen=pen, name=f"trial {r.number}")
            line.setToolTip(f"trial {r.number}: " + ", ".join(f"{p}={value_text(r.values.get(p))}" for p in params))
            item.addItem(line)
            self.lines.append(line)
        # the parameter's own name on its axis ("units", "activation") when that is unambiguous: the axes stand
        # closer together than a path is long; the tooltip and the table name the whole path
        keys = [a["name"].rsplit(".", 1)[-1] for a in axes]
        titles = keys if len(set(keys)) == len(keys) else [_short(a["name"]) for a in axes]
        item.getAxis("bottom").setTicks([[(i, t) for i, t in enumerate(titles)] + [(n, metric_words)]])
        item.setXRange(-0.4, n + 0.4, padding=0)  # room for the first and the last axis's titles
        item.setYRange(-0.08, 1.08, padding=0)


class ImportanceView(pg.PlotWidget):
    """How much each hyperparameter explains of the score: horizontal bars, largest on top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("experimentImportance")
        self.setAccessibleName("experimentImportance")
        self.setToolTip("The share of the score's variation each hyperparameter explains (Optuna's fANOVA; "
                        "with few trials, the spread of the best score per value)")
        self.setMenuEnabled(False)
        self.setMinimumSize(220, 140)
        item = self.getPlotItem()
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("bottom", "importance")
        item.getAxis("bottom").enableAutoSIPrefix(False)
        self.bars: pg.BarGraphItem | None = None
        self.names: list[str] = []
        self._texts: list[pg.TextItem] = []

    def set_importances(self, importances: dict[str, float]) -> None:
        item = self.getPlotItem()
        if self.bars is not None:
            item.removeItem(self.bars)
        for t in self._texts:
            item.removeItem(t)
        self._texts = []
        ranked = sorted(importances.items(), key=lambda kv: kv[1])  # smallest at the bottom
        self.names = [k for k, _v in ranked]
        widths = [max(0.0, float(v)) for _k, v in ranked]
        self.bars = pg.BarGraphItem(x0=[0.0] * len(widths), y=list(range(len(widths))), height=0.6, width=widths,
                                    brush=pg.mkBrush(66, 133, 244), pen=pg.mkPen(40, 90, 170))
        item.addItem(self.bars)
        for i, w in enumerate(widths):
            t = pg.TextItem(f"{100 * w:.0f}%", color=(30, 30, 30), anchor=(0.0, 0.5))
            t.setPos(w + 0.01, i)
            item.addItem(t)
            self._texts.append(t)
        item.getAxis("left").setTicks([[(i, _short(n)) for i, n in enumerate(self.names)]])
        item.setXRange(0, 1.15, padding=0)
        item.setYRange(-0.6, max(0.6, len(widths) - 0.4), padding=0)


class TopCurvesView(pg.PlotWidget):
    """The validation-accuracy curves of the best trials, overlaid, so one sees how they got there."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("experimentTopCurves")
        self.setAccessibleName("experimentTopCurves")
        self.setToolTip(f"Validation accuracy per epoch of the {TOP_N} best trials")
        self.setMenuEnabled(False)
        self.setMinimumSize(220, 160)
        item = self.getPlotItem()
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setLabel("bottom", "epoch")
        item.getAxis("left").enableAutoSIPrefix(False)  # accuracies as 0.2-0.9, not "x0.001" and 200-900
        self.legend = item.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.curves: list[pg.PlotDataItem] = []

    def set_rows(self, rows: Sequence[Any], params: Sequence[str], metric: str) -> None:
        item = self.getPlotItem()
        for c in self.curves:
            item.removeItem(c)
        self.legend.clear()
        self.curves = []
        item.setLabel("left", metric.replace("_", " ").replace("val ", "validation "))
        for i, r in enumerate(rows):
            ys = [v if _is_number(v) else math.nan for v in (r.history.get(metric) or r.history.get("accuracy") or [])]
            if not ys:
                continue
            color = OVERLAY_COLORS[i % len(OVERLAY_COLORS)]
            label = f"trial {r.number}: " + ", ".join(value_text(r.values.get(p)) for p in params)
            curve = pg.PlotDataItem(np.arange(1, len(ys) + 1, dtype=float), np.asarray(ys, float),
                                    pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                                    symbolBrush=pg.mkBrush(*color), name=label[:60])
            item.addItem(curve)
            self.curves.append(curve)
        item.enableAutoRange()


class _Item(QTableWidgetItem):
    """A table cell that sorts by its number (or its text), not by the text it shows."""

    def __init__(self, text: str, key: Any = None) -> None:
        super().__init__(text)
        self.key = key if key is not None else text
        self.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.key, getattr(other, "key", other.text())
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a < b
        if isinstance(a, (int, float)) != isinstance(b, (int, float)):
            return not isinstance(a, (int, float))  # a missing value is the smallest: last when sorted best first
        return str(a) < str(b)


# ----------------------------------------------------------------------------- the view
class ExperimentResultsView(QWidget):
    """The results half of the Experiment tab: sentence, buttons, table and pictures.

    Signals:
        apply_requested(dict): the best trial's values, to be written into the design (one undo step).
        use_run_requested(str): the run id of the trial whose model should become the current model.
        open_study_requested(): the user wants to open a stored experiment (by its storage URL).
    """

    apply_requested = Signal(object)
    use_run_requested = Signal(str)
    open_study_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("experimentResults")
        self.results: Any = None
        self.sentence = QLabel("Define an experiment on the left and press Start, or open a stored one.", self)
        self.sentence.setObjectName("experimentSentence")
        self.sentence.setAccessibleName("What the experiment shows")
        self.sentence.setWordWrap(True)
        self.sentence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sentence.setStyleSheet("font-weight: 600;")
        self.counts = QLabel("", self)
        self.counts.setObjectName("experimentCounts")
        self.counts.setToolTip("Trials of the experiment by state")
        self.apply_button = self._button("Apply to design", "applyExperimentButton",
                                         "Write the best trial's values into the design and its training settings "
                                         "(one step: Ctrl+Z in the Design tab undoes it) (Ctrl+Shift+Y)")
        self.use_button = self._button("Use trial's model", "useTrialModelButton",
                                       "Make the selected trial's trained model (the best one when none is "
                                       "selected) the one Predict shows and Export writes")
        self.open_button = self._button("Open experiment…", "openExperimentButton",
                                        "Open a stored experiment by its storage URL (a journal file, or a database "
                                        "such as postgresql://…) and follow it live (Ctrl+Shift+O)")
        self.apply_button.clicked.connect(self._on_apply_clicked)
        self.use_button.clicked.connect(self._on_use_clicked)
        self.open_button.clicked.connect(self.open_study_requested.emit)
        self.apply_button.setEnabled(False)
        self.use_button.setEnabled(False)
        for keys, slot in (("Ctrl+Shift+Y", self._on_apply_clicked), ("Ctrl+Shift+O", self.open_study_requested.emit)):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

        self.table = QTableWidget(0, 0, self)
        self.table.setObjectName("experimentTable")
        self.table.setAccessibleName("experimentTable")
        self.table.setToolTip("The trials: click a column's title to sort by it; hover a result for its message")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        # fitted once per fill (resizing to contents at every cell made a fill of 16 trials take 40-70 ms)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setMinimumWidth(200)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)

        self.heat_map = HeatMapView()
        self.parallel = ParallelCoordinatesView()
        self.no_map = QLabel(NO_MAP_TEXT)
        self.no_map.setWordWrap(True)
        self.no_map.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_map.setStyleSheet("color: #718096;")
        self.map_stack = QStackedWidget()
        self.map_stack.setObjectName("experimentMapStack")
        for w in (self.no_map, self.heat_map, self.parallel):
            self.map_stack.addWidget(w)
        self.importance = ImportanceView()
        self.top_curves = TopCurvesView()
        self.views = QTabWidget(self)
        self.views.setObjectName("experimentViews")
        self.views.setDocumentMode(True)
        self.views.addTab(self.map_stack, "Map")
        self.views.addTab(self.importance, "Importance")
        self.views.addTab(self.top_curves, f"Top {TOP_N} curves")
        self.views.setTabToolTip(0, "Heat map (two hyperparameters) or parallel coordinates (three or more)")
        self.views.setTabToolTip(1, "Which hyperparameter mattered")
        self.views.setTabToolTip(2, f"The learning curves of the {TOP_N} best trials")
        self._dirty: set[QWidget] = set()
        self.views.currentChanged.connect(self._on_view_changed)

        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.table)
        self.split.addWidget(self.views)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([500, 500])  # the table needs about half: trial, values, scores, time, result
        self._wide = True

        # Its own minimum, not the sum of the table's and the pictures': beside each other they need 500 px,
        # and below NARROW_PX the table moves into the pictures' tabs (resizeEvent), so 1024 px windows fit.
        self.setMinimumWidth(260)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.counts, 1)
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.open_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.sentence)
        lay.addLayout(buttons)
        lay.addWidget(self.split, 1)
        self._long_texts = {b: b.text() for b in (self.apply_button, self.use_button, self.open_button)}
        self._short_texts = {self.apply_button: "Apply", self.use_button: "Use model", self.open_button: "Open…"}

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        b = QPushButton(text, self)
        b.setObjectName(name)
        b.setAccessibleName(name)
        b.setToolTip(tip)
        b.setAccessibleDescription(tip)
        return b

    # ------------------------------------------------------------------ public API
    def clear(self, text: str = "") -> None:
        """Forget the shown results (a new experiment starts)."""
        self.results = None
        self.table.setRowCount(0)
        self.sentence.setText(text or "No trial has finished yet.")
        self.counts.setText("")
        self.apply_button.setEnabled(False)
        self.use_button.setEnabled(False)
        self.map_stack.setCurrentWidget(self.no_map)

    def set_results(self, results: Any) -> None:
        """Show ``results`` (a ``SweepResults``): table, sentence, picture, importances and top curves."""
        self.results = results
        params = list(results.params)
        self.sentence.setText(results.sentence or "No trial has finished yet.")
        counts = results.counts()
        self.counts.setText(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials yet")
        self._fill_table(results, params)
        title = "Heat map" if len(params) == 2 else ("Parallel coordinates" if len(params) >= 3 else "Map")
        self.views.setTabText(self.views.indexOf(self.map_stack), title)
        # The pictures are drawn when they are seen: the one shown now, the others when their tab is chosen
        # (each rebuild is 10-30 ms of pyqtgraph items, three of them in one go stalled the window).
        self._dirty = {self.map_stack, self.importance, self.top_curves}
        self._draw_shown()
        best = results.best
        self.apply_button.setEnabled(best is not None)
        if best is not None:
            values = ", ".join(f"{p}={value_text(best.values.get(p))}" for p in params)
            self.apply_button.setToolTip(f"Write trial {best.number}'s values ({values}) into the design and its "
                                         "training settings: one step, Ctrl+Z in the Design tab undoes it "
                                         "(Ctrl+Shift+Y)")
        self._on_selection_changed()

    def _draw_shown(self) -> None:
        """Draw the picture on the current tab if the results changed since it was last drawn."""
        w = self.views.currentWidget()
        if self.results is None or w not in self._dirty or not self.isVisible():
            return
        self._dirty.discard(w)
        results, params = self.results, list(self.results.params)
        if w is self.map_stack:
            if len(params) == 2:
                xl, yl, matrix, count, running = heat_grid(results.rows, params[0], params[1])
                self.heat_map.set_grid(params[0], params[1], xl, yl, matrix, count, running)
                self.map_stack.setCurrentWidget(self.heat_map)
            elif len(params) >= 3:
                self.parallel.set_trials(results.rows, params, self._metric_words(results.metric))
                self.map_stack.setCurrentWidget(self.parallel)
            else:
                self.map_stack.setCurrentWidget(self.no_map)
        elif w is self.importance:
            varied = [p for p in params if len({_key(r.values.get(p)) for r in results.rows if p in r.values}) > 1]
            self.importance.set_importances({p: results.importances.get(p, 0.0) for p in varied or params})
        elif w is self.top_curves:
            self.top_curves.set_rows(results.top(TOP_N), params, results.metric)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._draw_shown()

    def _on_view_changed(self, _index: int) -> None:
        self._draw_shown()

    def has_running_trials(self) -> bool:
        return self.results is not None and any(r.state in ("running", "waiting") for r in self.results.rows)

    # ------------------------------------------------------------------ table
    @staticmethod
    def _metric_words(metric: str) -> str:
        return "val. accuracy" if metric == "val_accuracy" else "accuracy"

    def _fill_table(self, results: Any, params: list[str]) -> None:
        metric = "Val. accuracy" if results.metric == "val_accuracy" else "Accuracy"
        headers = ["Trial", *[_short(p) for p in params], metric, "Val. loss", "Epochs", "Time", "Result"]
        selected = self._selected_number()
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        for c, p in enumerate(params, start=1):
            self.table.horizontalHeaderItem(c).setToolTip(p)
        self.table.setRowCount(len(results.rows))
        for row, r in enumerate(results.rows):
            cells = [_Item(str(r.number), r.number)]
            for p in params:
                v = r.values.get(p)
                cells.append(_Item(value_text(v), float(v) if _is_number(v) else value_text(v)))
            cells.append(_Item(f"{100 * r.value:.2f}%" if _is_number(r.value) else "–",
                               float(r.value) if _is_number(r.value) else None))
            cells.append(_Item(f"{r.val_loss:.4f}" if _is_number(r.val_loss) else "–",
                               float(r.val_loss) if _is_number(r.val_loss) else None))
            cells.append(_Item(str(r.epochs), r.epochs))
            cells.append(_Item(format_duration(r.seconds) if _is_number(r.seconds) else "–",
                               float(r.seconds) if _is_number(r.seconds) else None))
            status = _STATE_TEXT.get(r.state, r.state)
            if r.status not in (r.state, "finished", "running") and r.status:
                status += f" ({r.status.replace('_', ' ')})"
            result = _Item(status, r.state)
            result.setToolTip(r.message or status)
            cells.append(result)
            color = _STATE_COLOR.get(r.state)
            for col, item in enumerate(cells):
                item.setData(Qt.ItemDataRole.UserRole, r.number)
                if color:
                    item.setForeground(QBrush(QColor(color)))
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)  # sorts again by the column the user chose
        self.table.resizeColumnsToContents()
        if selected is not None:
            self._select_number(selected)

    def _selected_number(self) -> int | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _select_number(self, number: int) -> None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == number:
                self.table.selectRow(row)
                return

    def _chosen_row(self) -> Any:
        """The selected trial, else the best one."""
        if self.results is None:
            return None
        number = self._selected_number()
        if number is not None:
            return next((r for r in self.results.rows if r.number == number), None)
        return self.results.best

    # ------------------------------------------------------------------ layout
    def resizeEvent(self, event: Any) -> None:
        """Table beside the pictures when there is room (1600 px), as the pictures' first tab when not (1024 px)."""
        super().resizeEvent(event)
        width = event.size().width()
        if self._wide and width < NARROW_PX:
            self._wide = False
            self.views.insertTab(0, self.table, "Trials")
            self.views.setTabToolTip(0, "The trials, sortable by every column")
            self.views.setCurrentIndex(0)
            for b, text in self._short_texts.items():  # the tooltips keep saying what they do
                b.setText(text)
            self.counts.hide()  # the table's Result column says as much
        elif not self._wide and width >= WIDE_PX:
            self._wide = True
            self.views.removeTab(self.views.indexOf(self.table))
            self.split.insertWidget(0, self.table)
            self.table.show()
            for b, text in self._long_texts.items():
                b.setText(text)
            self.counts.show()

    # ------------------------------------------------------------------ slots
    def _on_selection_changed(self) -> None:
        row = self._chosen_row()
        self.use_button.setEnabled(row is not None and bool(row.run_id) and row.state == "complete")
        if row is not None and row.run_id:
            self.use_button.setToolTip(f"Make trial {row.number}'s model (run {row.run_id}) the one Predict shows "
                                       "and Export writes")

    def _on_apply_clicked(self) -> None:
        best = self.results.best if self.results is not None else None
        if best is not None and self.apply_button.isEnabled():
            self.apply_requested.emit(dict(best.values))

    def _on_use_clicked(self) -> None:
        row = self._chosen_row()
        if row is not None and row.run_id:
            self.use_run_requested.emit(str(row.run_id))
