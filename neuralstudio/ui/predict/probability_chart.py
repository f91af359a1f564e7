"""The bar chart of the ten class probabilities, with the top class highlighted."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

BAR = "#5b7db1"
TOP = "#f0a030"
TOP_UNSURE = "#b0b0b0"


class ProbabilityChart(pg.PlotWidget):
    """Ten bars (digits 0-9), y fixed to [0, 1]; :meth:`set_probabilities` updates them in place.

    The bar item is created once and only its heights and brushes change, so an
    update costs one repaint of this widget (well under a millisecond of Python).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.setObjectName("probabilityChart")
        self.setAccessibleName("probabilityChart")
        self.setAccessibleDescription("Probability the network gives to each digit 0 to 9")
        self.setMinimumSize(260, 180)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setXRange(-0.6, 9.6, padding=0)
        item.setYRange(-0.04, 1.06, padding=0)  # headroom so the 0% and 100% labels are drawn
        item.showGrid(x=False, y=True, alpha=0.25)
        item.getAxis("bottom").setTicks([[(i, str(i)) for i in range(10)], []])
        item.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)], []])
        item.setLabel("bottom", "digit")
        item.setLabel("left", "probability")
        self.probabilities = np.zeros(10)
        self._bars = pg.BarGraphItem(x=np.arange(10), height=np.zeros(10), width=0.7, brush=BAR, pen=None)
        item.addItem(self._bars)

    def set_probabilities(self, probabilities: np.ndarray | None, sure: bool = True) -> None:
        """Show ``probabilities`` (10 values) or empty bars for None; the top bar is highlighted."""
        if probabilities is None:
            self.probabilities = np.zeros(10)
            self._bars.setOpts(height=self.probabilities, brushes=[BAR] * 10)
            return
        self.probabilities = np.asarray(probabilities, dtype=float)
        top = int(np.argmax(self.probabilities))
        brushes = [BAR] * 10
        brushes[top] = TOP if sure else TOP_UNSURE
        self._bars.setOpts(height=self.probabilities, brushes=brushes)

    @property
    def highlighted(self) -> int:
        """The highlighted (top) class, -1 when the bars are empty."""
        return int(np.argmax(self.probabilities)) if self.probabilities.any() else -1
