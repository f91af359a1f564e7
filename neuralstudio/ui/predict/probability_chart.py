"""The bar chart of what the network gives each class, with the top class highlighted.

What a bar is depends on the model's output layer (``ml/inference.py``
``OutputKind``): a probability for a softmax output, an activation for a sigmoid
output (not a probability: they need not sum to 1), the softmax of the outputs
for a linear one.  The left axis and the chart's title say which, so that a
learner never reads an activation as a probability.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

BAR = "#5b7db1"
TOP = "#f0a030"
TOP_UNSURE = "#b0b0b0"
#: Up to this many classes every class has its bar; beyond it, the :data:`TOP_SHOWN` largest are shown.
MAX_BARS = 12
TOP_SHOWN = 10
#: Longest class name written under a bar (the whole name is in the tooltip and the verdict).
TICK_CHARS = 8


def _tick(name: str) -> str:
    return name if len(name) <= TICK_CHARS else name[: TICK_CHARS - 1] + "…"


class ProbabilityChart(pg.PlotWidget):
    """One bar per class (digits 0-9 until told otherwise); :meth:`set_values` updates them in place.

    The bar item is created once and only its heights, brushes (and, past :data:`MAX_BARS` classes, its
    ticks) change, so an update costs one repaint of this widget (well under a millisecond of Python).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.setObjectName("probabilityChart")
        self.setAccessibleName("probabilityChart")
        self.setMinimumSize(260, 180)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.showGrid(x=False, y=True, alpha=0.25)
        self.values = np.zeros(10)
        self.class_names: tuple[str, ...] = ()
        self.value_label = ""
        self.is_probability = True
        self._range: tuple[float, float] | None = (0.0, 1.0)
        self._shown = np.arange(10)
        self._empty = True
        self._bars = pg.BarGraphItem(x=np.arange(10), height=np.zeros(10), width=0.7, brush=BAR, pen=None)
        item.addItem(self._bars)
        self.set_classes([str(i) for i in range(10)])

    # ----- what the bars are ----------------------------------------------------------------------
    def set_classes(self, names: Sequence[str], value_label: str = "probability", *,
                    value_range: tuple[float, float] | None = (0.0, 1.0), is_probability: bool = True) -> None:
        """Name the classes and say what a bar's height is; the bars are emptied.

        Args:
            names: one name per class.
            value_label: what a value is ("probability", "output activation (sigmoid)"): the axis label.
            value_range: the range values always lie in (the y axis is fixed to it), or None to follow them.
            is_probability: the values are probabilities (shown as percentages).
        """
        self.class_names = tuple(str(n) for n in names) or ("0",)
        self.value_label = value_label
        self.is_probability = is_probability
        self._range = value_range
        k = len(self.class_names)
        self._shown = np.arange(min(k, MAX_BARS if k <= MAX_BARS else TOP_SHOWN))
        item = self.getPlotItem()
        digits = self.class_names == tuple(str(i) for i in range(k))
        edge = 0.6 if max(len(_tick(n)) for n in self.class_names) <= 3 else 0.8  # room for the outer names
        item.setXRange(-edge, len(self._shown) - 1 + edge, padding=0)
        item.setLabel("left", value_label)
        item.setLabel("bottom", "digit" if digits and k == 10 else
                      "class" if k <= MAX_BARS else f"the {TOP_SHOWN} highest of {k} classes")
        item.setTitle(value_label if not is_probability or value_label != "probability" else None, size="9pt")
        self.setToolTip("\n".join(self.class_names[:MAX_BARS * 4]) if not digits else "")
        self.setAccessibleDescription(f"The network's {value_label} for each class: "
                                      + ", ".join(self.class_names[:20]))
        self._set_y_axis(None)
        self.set_values(None)

    def _set_y_axis(self, values: np.ndarray | None) -> None:
        item = self.getPlotItem()
        axis = item.getAxis("left")
        if self._range is not None:
            lo, hi = self._range
        else:
            lo = min(0.0, float(values.min())) if values is not None and values.size else 0.0
            hi = max(1.0, float(values.max())) if values is not None and values.size else 1.0
        span = hi - lo
        item.setYRange(lo - 0.04 * span, hi + 0.06 * span, padding=0)  # headroom so the end labels are drawn
        steps = [lo + span * f for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
        if self.is_probability:
            axis.setTicks([[(v, f"{v:.0%}") for v in steps], []])
        else:
            axis.setTicks([[(v, f"{v:.2g}") for v in steps], []])

    # ----- the values ----------------------------------------------------------------------------
    def set_values(self, values: np.ndarray | None, sure: bool = True) -> None:
        """Show ``values`` (one per class) or empty bars for None; the top bar is highlighted."""
        k = len(self.class_names)
        if values is None:
            self._empty = True
            self.values = np.zeros(k)
            self._shown = np.arange(len(self._shown))
            self._bars.setOpts(x=np.arange(len(self._shown)), height=np.zeros(len(self._shown)),
                               brushes=[BAR] * len(self._shown))
            self._set_ticks()
            return
        self._empty = False
        self.values = np.asarray(values, dtype=float).reshape(-1)
        top = int(np.argmax(self.values))
        if k > MAX_BARS:  # the largest ones, largest first
            self._shown = np.argsort(-self.values, kind="stable")[:TOP_SHOWN]
            self._set_ticks()
        if self._range is None:
            self._set_y_axis(self.values)
        heights = self.values[self._shown]
        brushes = [BAR] * len(self._shown)
        brushes[int(np.flatnonzero(self._shown == top)[0])] = TOP if sure else TOP_UNSURE
        self._bars.setOpts(x=np.arange(len(self._shown)), height=heights, brushes=brushes)

    def _set_ticks(self) -> None:
        names = self.class_names
        ticks = [(i, _tick(names[c]) if c < len(names) else str(c)) for i, c in enumerate(self._shown)]
        self.getPlotItem().getAxis("bottom").setTicks([ticks, []])

    def set_probabilities(self, probabilities: np.ndarray | None, sure: bool = True) -> None:
        """The first name of :meth:`set_values`."""
        self.set_values(probabilities, sure)

    @property
    def probabilities(self) -> np.ndarray:
        """The values shown (probabilities when :attr:`is_probability`)."""
        return self.values

    @property
    def highlighted(self) -> int:
        """The highlighted (top) class, -1 when the bars are empty."""
        return -1 if self._empty else int(np.argmax(self.values))

    @property
    def shown_classes(self) -> list[int]:
        """The classes that have a bar, left to right."""
        return [int(c) for c in self._shown]

    @property
    def y_label(self) -> str:
        """The left axis's text: what a bar's height is."""
        return str(self.getPlotItem().getAxis("left").labelText)
