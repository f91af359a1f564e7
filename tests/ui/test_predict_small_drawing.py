"""A digit drawn small on the Predict canvas gets the same stroke thickness as one drawn large.

Drawn with real mouse events (a move every pixel) on a shown :class:`DigitCanvas`.  The canvas's raster of a
small digit, scaled up to MNIST's 20 px box, scaled the canvas's pen with it (blobs); the canvas now hands its
strokes' paths to ``prepare_strokes``, which draws them with one MNIST-like pen at any size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from digit_strokes import STYLES
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from neuralstudio.ml.preprocess import prepare_digit, prepare_strokes, stroke_thickness
from neuralstudio.ui.predict.canvas import DigitCanvas

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


@pytest.fixture
def canvas(qtbot):
    c = DigitCanvas()
    qtbot.addWidget(c)
    c.show()
    qtbot.waitExposed(c)
    return c


def mouse_points(line: list[tuple[float, float]], size: float, left: float, top: float, side: int) -> list[QPoint]:
    """A template line placed ``size`` x the canvas side tall at (left, top), one mouse report per pixel."""
    pts = [(left + x * size * side * 0.7, top + y * size * side) for x, y in line]
    out: list[QPoint] = []
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0)))
        for k in range(n + 1):
            p = QPoint(round(x0 + (x1 - x0) * k / n), round(y0 + (y1 - y0) * k / n))
            if not out or p != out[-1]:
                out.append(p)
    return out


def draw(canvas: DigitCanvas, strokes: list[list[tuple[float, float]]], size: float, left: float, top: float,
         button: Qt.MouseButton = LEFT) -> None:
    """Press, move pixel by pixel, release: each stroke of a template, with real mouse events."""
    for line in strokes:
        pts = mouse_points(line, size, left, top, canvas.width())
        QTest.mousePress(canvas, button, NONE, pts[0])
        for p in pts[1:]:
            QTest.mouseMove(canvas, p)
        QTest.mouseRelease(canvas, button, NONE, pts[-1])


@pytest.mark.parametrize(("digit", "style"), [(2, "round"), (4, "closed"), (8, "two-loops")])
def test_a_small_drawing_gets_the_stroke_thickness_of_a_large_one(canvas, qtbot, digit, style):
    strokes = STYLES[digit][style]
    side = canvas.width()
    draw(canvas, strokes, 0.15, side * 0.65, side * 0.1)  # 15% of the canvas, near the top-right corner
    small = canvas.prepared_image()
    small_raster = prepare_digit(canvas.image_array())  # what the Predict workspace prepared before
    canvas.clear()
    draw(canvas, strokes, 0.9, side * 0.2, side * 0.04)  # 90% of the canvas
    large = canvas.prepared_image()

    t_small, t_large = stroke_thickness(small), stroke_thickness(large)
    assert abs(t_small - t_large) < 0.5, (t_small, t_large)  # the same within a pixel (well within)
    assert 2.0 <= t_small <= 3.5, (t_small, t_large)  # MNIST: 2.1-3.1 px (quartiles), 1s up to 3.6
    assert stroke_thickness(small_raster) > t_small + 2.0  # the raster of the small drawing was blobs
    assert np.corrcoef(small.ravel(), large.ravel())[0, 1] > 0.85  # and the same digit at both sizes
    assert small.shape == (28, 28) and small.dtype == np.float32 and small.max() == pytest.approx(1.0)


def test_the_prepared_image_follows_the_pen_while_it_moves(canvas):
    pts = mouse_points(STYLES[7]["plain"][0], 0.2, 40, 40, canvas.width())
    QTest.mousePress(canvas, LEFT, NONE, pts[0])
    for p in pts[1 : len(pts) // 2]:
        QTest.mouseMove(canvas, p)
    half = canvas.prepared_image()  # the workspace predicts on every move, before the release
    assert half.any() and len(canvas.stroke_paths()) == 1 and not canvas.strokes
    np.testing.assert_array_equal(half, prepare_strokes(canvas.stroke_paths(), canvas.width()))
    for p in pts[len(pts) // 2 :]:
        QTest.mouseMove(canvas, p)
    QTest.mouseRelease(canvas, LEFT, NONE, pts[-1])
    assert not np.array_equal(canvas.prepared_image(), half)
    paths = canvas.stroke_paths()
    assert len(paths) == 1 and not paths[0].erase and paths[0].width == canvas.pen_width
    assert (paths[0].points.min(axis=0) >= 0).all() and (paths[0].points.max(axis=0) <= canvas.width()).all()


def test_erasing_a_small_drawing_leaves_nothing_to_predict(canvas):
    draw(canvas, STYLES[1]["plain"], 0.15, 100, 100)
    assert canvas.prepared_image().any()
    draw(canvas, STYLES[1]["plain"], 0.15, 100, 100, button=Qt.MouseButton.RightButton)  # right button erases
    paths = canvas.stroke_paths()
    assert [p.erase for p in paths] == [False, True] and paths[1].width == 2 * canvas.pen_width
    assert not canvas.is_empty() and not canvas.prepared_image().any()


def test_a_loaded_picture_is_prepared_from_the_raster(canvas):
    picture = np.zeros((100, 100), np.float32)
    picture[20:80, 45:55] = 1.0  # a "1"
    canvas.set_background(picture)
    assert canvas.has_background()
    np.testing.assert_array_equal(canvas.prepared_image(), prepare_digit(canvas.image_array()))
    # Strokes drawn over the picture are prepared with it, from the raster too.
    draw(canvas, STYLES[7]["plain"], 0.3, 30, 30)
    np.testing.assert_array_equal(canvas.prepared_image(), prepare_digit(canvas.image_array()))
    canvas.clear()  # the picture is gone: strokes are prepared from their paths again
    draw(canvas, STYLES[7]["plain"], 0.3, 30, 30)
    assert not canvas.has_background()
    np.testing.assert_array_equal(canvas.prepared_image(), prepare_strokes(canvas.stroke_paths(), canvas.width()))
