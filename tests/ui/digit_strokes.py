"""Synthetic hand-drawn digits: pen strokes for 0-9 in several styles, drawn with real mouse events.

Each digit has a few styles people really use (1 with and without a flag and
base, 7 with and without a bar, 4 open and closed, 9 with a straight or a curved
tail, 8 as two loops or one continuous stroke...).  :func:`drawings` varies
them deterministically in size, position, slant, stroke width and a little hand
wobble; :func:`draw_on_canvas` sends the strokes to a :class:`DigitCanvas` as
mouse press / move / release events, so the whole path a user's drawing takes
(Qt events, the canvas painter, preparation, the network) is exercised.

Used by the UI tests, the benchmark (``tests/benchmarks/bench_predict.py``) and
``tools/train_bundled_model.py`` (accuracy for the model card).  Not a test
module itself (no ``test_`` prefix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Point = tuple[float, float]
Polyline = list[Point]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, step: float = 12.0) -> Polyline:
    """Points on an ellipse from angle ``a0`` to ``a1`` degrees (y down: 90 is the bottom, -90 the top)."""
    n = max(2, int(abs(a1 - a0) / step) + 1)
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, n)]


def _eight_single() -> Polyline:
    pts = []
    for t in np.linspace(0, 2 * math.pi, 48):
        pts.append((0.5 + 0.26 * math.sin(2 * t) * (1.0 if t < math.pi else 1.12), 0.5 - 0.46 * math.cos(t)))
    return pts


# Strokes in a unit box (x right, y down), each digit a list of styles, each style a list of strokes.
STYLES: dict[int, dict[str, list[Polyline]]] = {
    0: {
        "oval": [_arc(0.5, 0.5, 0.3, 0.45, -90, 275)],
        "narrow": [_arc(0.5, 0.5, 0.22, 0.46, -100, 265)],
    },
    1: {
        "plain": [[(0.5, 0.05), (0.5, 0.95)]],
        "flag": [[(0.3, 0.25), (0.52, 0.05), (0.52, 0.95)]],
        "flag-base": [[(0.3, 0.25), (0.5, 0.05), (0.5, 0.95)], [(0.3, 0.95), (0.7, 0.95)]],
    },
    2: {
        "round": [_arc(0.5, 0.3, 0.28, 0.25, 200, 380) + [(0.2, 0.95), (0.82, 0.95)]],
        "swan": [_arc(0.5, 0.32, 0.3, 0.27, 190, 400) + [(0.35, 0.75), (0.18, 0.95), (0.85, 0.93)]],
    },
    3: {
        "round": [_arc(0.5, 0.27, 0.27, 0.22, 200, 450) + _arc(0.5, 0.72, 0.3, 0.23, 270, 520)],
        "flat-top": [[(0.2, 0.05), (0.8, 0.05), (0.45, 0.42)] + _arc(0.5, 0.7, 0.3, 0.25, 260, 520)],
    },
    4: {
        "open": [[(0.25, 0.05), (0.18, 0.6), (0.85, 0.6)], [(0.68, 0.12), (0.68, 0.95)]],
        "closed": [[(0.65, 0.05), (0.15, 0.65), (0.85, 0.65)], [(0.65, 0.05), (0.65, 0.95)]],
    },
    5: {
        "one-stroke": [[(0.78, 0.05), (0.3, 0.05), (0.26, 0.45)] + _arc(0.5, 0.68, 0.3, 0.27, 220, 515)],
        "two-strokes": [[(0.3, 0.06), (0.26, 0.45)] + _arc(0.5, 0.68, 0.3, 0.27, 220, 515),
                        [(0.3, 0.06), (0.8, 0.05)]],
    },
    6: {
        "curve": [[(0.72, 0.05), (0.5, 0.15), (0.33, 0.35), (0.23, 0.62)] + _arc(0.5, 0.72, 0.27, 0.23, 180, -180)],
        "straight": [[(0.62, 0.05), (0.26, 0.66)] + _arc(0.5, 0.74, 0.26, 0.21, 200, -160)],
    },
    7: {
        "plain": [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
        "bar": [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)], [(0.42, 0.5), (0.82, 0.5)]],
    },
    8: {
        "two-loops": [_arc(0.5, 0.27, 0.22, 0.22, -90, 270), _arc(0.5, 0.72, 0.28, 0.24, -90, 270)],
        "one-stroke": [_eight_single()],
    },
    9: {
        "straight-tail": [_arc(0.48, 0.3, 0.27, 0.24, 0, -360) + [(0.74, 0.95)]],
        "curved-tail": [_arc(0.48, 0.3, 0.27, 0.24, 0, -360) + [(0.74, 0.6), (0.65, 0.85), (0.45, 0.95), (0.3, 0.9)]],
    },
}


@dataclass(frozen=True)
class Drawing:
    """One digit drawn at a given place: strokes in canvas coordinates, plus how they were made."""

    digit: int
    style: str
    strokes: list[list[tuple[float, float]]]
    width_factor: float  # pen width as a multiple of the canvas's default
    description: str


def _densify(line: Polyline, spacing: float) -> Polyline:
    """Mouse-like samples every ``spacing`` px along the polyline (a mouse reports a point every few px)."""
    out = [line[0]]
    for (x0, y0), (x1, y1) in zip(line, line[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / spacing))
        out.extend((x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1))
    return out


def make_drawing(digit: int, style: str, canvas: int, *, height: float, aspect: float, cx: float, cy: float,
                 slant: float, width_factor: float, wobble: float, rng: np.random.Generator) -> Drawing:
    """Place a style's strokes on a ``canvas``-px square canvas.

    Args:
        height: digit height as a share of the canvas.
        aspect: width / height of the digit's box.
        cx, cy: centre of the digit, as shares of the canvas.
        slant: horizontal shear (positive leans right).
        width_factor: pen width relative to the canvas default (canvas/14).
        wobble: hand tremor in px (standard deviation, smoothed).
    """
    h = height * canvas
    w = h * aspect
    strokes = []
    for line in STYLES[digit][style]:
        pts = []
        for x, y in line:
            px = cx * canvas + (x - 0.5) * w + slant * (0.5 - y) * h
            py = cy * canvas + (y - 0.5) * h
            pts.append((px, py))
        pts = _densify(pts, 4.0)
        noise = rng.normal(0.0, wobble, size=(len(pts), 2))
        kernel = np.ones(5) / 5.0
        noise = np.stack([np.convolve(noise[:, k], kernel, mode="same") for k in range(2)], axis=1)
        margin = 2.0
        lo, hi = margin, canvas - margin
        strokes.append([(float(np.clip(px + nx, lo, hi)), float(np.clip(py + ny, lo, hi)))
                        for (px, py), (nx, ny) in zip(pts, noise)])
    desc = f"{digit}/{style} h={height:.2f} at=({cx:.2f},{cy:.2f}) slant={slant:+.2f} pen={width_factor:.1f}x"
    return Drawing(digit=digit, style=style, strokes=strokes, width_factor=width_factor, description=desc)


def drawings(per_digit: int = 24, canvas: int = 280, seed: int = 0,
             digits: tuple[int, ...] = tuple(range(10))) -> list[Drawing]:
    """A deterministic set of varied drawings: ``per_digit`` of each digit, styles in turn.

    Sizes range from a small digit (35% of the canvas) to one filling it, placed
    anywhere it fits (corners included), slanted up to about 17 degrees either
    way, with pens from 0.7x to 1.5x the default width.
    """
    rng = np.random.default_rng(seed)
    out = []
    for digit in digits:
        styles = list(STYLES[digit])
        for i in range(per_digit):
            style = styles[i % len(styles)]
            height = float(rng.uniform(0.35, 0.85))
            aspect = float(rng.uniform(0.55, 0.8)) if digit != 1 else float(rng.uniform(0.4, 0.6))
            slant = float(rng.uniform(-0.3, 0.3))
            half_w = height * aspect / 2 + abs(slant) * height / 2 + 0.04
            half_h = height / 2 + 0.04
            cx = float(rng.uniform(half_w, 1 - half_w)) if half_w < 0.5 else 0.5
            cy = float(rng.uniform(half_h, 1 - half_h)) if half_h < 0.5 else 0.5
            width_factor = float(rng.choice([0.7, 1.0, 1.0, 1.5]))
            out.append(make_drawing(digit, style, canvas, height=height, aspect=aspect, cx=cx, cy=cy, slant=slant,
                                    width_factor=width_factor, wobble=float(rng.uniform(0.0, 2.5)), rng=rng))
    return out


def draw_on_canvas(canvas: Any, drawing: Drawing, after_move: Any = None) -> None:
    """Draw ``drawing`` on a DigitCanvas with real mouse events (press, moves, release), left button.

    Args:
        canvas: the DigitCanvas (cleared first by the caller if wanted).
        drawing: what to draw.
        after_move: optional callable run after each move event (for latency measurement).
    """
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    default = canvas.pen_width
    canvas.pen_width = default * drawing.width_factor
    try:
        for stroke in drawing.strokes:
            pts = [QPoint(round(x), round(y)) for x, y in stroke]
            QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
            for p in pts[1:]:
                QTest.mouseMove(canvas, p)
                if after_move is not None:
                    after_move()
            QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])
    finally:
        canvas.pen_width = default


def evaluate_on_canvas(model: Any, per_digit: int = 24, seed: int = 0) -> dict[str, Any]:
    """Draw every synthetic digit on a fresh offscreen canvas and classify it with ``model``.

    Returns:
        ``{"accuracy", "total", "per_digit": {digit: accuracy}, "mistakes": [descriptions]}``.
    """
    from PySide6.QtWidgets import QApplication

    from neuralstudio.ml.inference import Predictor
    from neuralstudio.ui.predict.canvas import DigitCanvas

    app = QApplication.instance() or QApplication([])
    canvas = DigitCanvas()
    canvas.show()
    app.processEvents()
    items = drawings(per_digit=per_digit, canvas=canvas.width(), seed=seed)
    images = []
    for d in items:
        canvas.clear()
        draw_on_canvas(canvas, d)
        images.append(canvas.prepared_image())
    canvas.close()
    canvas.deleteLater()
    probs = Predictor(model).predict_batch(np.stack(images))
    predicted = probs.argmax(axis=1)
    truth = np.array([d.digit for d in items])
    per_digit_acc = {str(k): float((predicted[truth == k] == k).mean()) for k in range(10)}
    mistakes = [f"{d.description} -> {int(p)}" for d, p in zip(items, predicted) if p != d.digit]
    return {"accuracy": float((predicted == truth).mean()), "total": len(items), "per_digit": per_digit_acc,
            "mistakes": mistakes, "images": np.stack(images), "labels": truth}
