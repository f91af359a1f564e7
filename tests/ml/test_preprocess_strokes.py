"""Drawn digits prepared from their strokes' paths (``prepare_strokes``): MNIST's stroke thickness at any size.

The canvas's raster of a digit drawn small, scaled up to MNIST's 20 px box, scaled the canvas's pen with it
(6-16 px blobs); the paths drawn again with a fixed pen give the same 2-3 px strokes as MNIST's at any size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from neuralstudio.ml.preprocess import (
    STROKE_WIDTH,
    PenStroke,
    prepare_digit,
    prepare_strokes,
    stroke_thickness,
)

pytestmark = pytest.mark.backend_neutral  # image preparation is NumPy and Pillow


CANVAS = 280
PEN = CANVAS / 14  # the canvas's default pen


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> list[tuple[float, float]]:
    """Points on an ellipse from ``a0`` to ``a1`` degrees (unit box, y down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, max(2, int(abs(a1 - a0) / 10) + 1))]


# A few digits as strokes in a unit box (x right, y down).
DIGITS = {
    2: [arc(0.5, 0.3, 0.28, 0.25, 200, 380) + [(0.2, 0.95), (0.82, 0.95)]],
    3: [arc(0.5, 0.27, 0.27, 0.22, 200, 450) + arc(0.5, 0.72, 0.3, 0.23, 270, 520)],
    4: [[(0.25, 0.05), (0.18, 0.6), (0.85, 0.6)], [(0.68, 0.12), (0.68, 0.95)]],
    7: [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
    8: [arc(0.5, 0.27, 0.22, 0.22, -90, 270), arc(0.5, 0.72, 0.28, 0.24, -90, 270)],
}


def mouse(strokes: list[list[tuple[float, float]]], size: float, left: float, top: float) -> list[np.ndarray]:
    """The strokes placed ``size`` x the canvas tall at (left, top), as a mouse reports them: every px, rounded."""
    out = []
    for line in strokes:
        pts = np.array(line) * size * CANVAS + (left, top)
        dense = [pts[0]]
        for a, b in zip(pts[:-1], pts[1:]):
            n = max(1, math.ceil(float(np.hypot(*(b - a)))))
            dense.extend(a + (b - a) * k / n for k in range(1, n + 1))
        out.append(np.round(np.array(dense)))
    return out


def raster(strokes: list[np.ndarray], pen: float = PEN) -> np.ndarray:
    """The canvas's raster of the strokes (round pen, white on black): what the old preparation scaled."""
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    for pts in strokes:
        draw.line([tuple(p) for p in pts], fill=255, width=round(pen))
        for x, y in pts:
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    return np.asarray(img)


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(x.shape)
    return float((ys * x).sum() / x.sum()), float((xs * x).sum() / x.sum())


def ink_extent(x: np.ndarray, level: float = 0.05) -> tuple[int, int]:
    rows = np.flatnonzero(x.max(axis=1) > level)
    cols = np.flatnonzero(x.max(axis=0) > level)
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


@pytest.mark.parametrize("digit", sorted(DIGITS))
def test_stroke_thickness_is_the_same_at_15_and_90_percent_of_the_canvas(digit):
    small = mouse(DIGITS[digit], 0.15, 200, 30)  # small, towards a corner
    large = mouse(DIGITS[digit], 0.90, 14, 14)
    t_small = stroke_thickness(prepare_strokes(small, CANVAS))
    t_large = stroke_thickness(prepare_strokes(large, CANVAS))
    assert abs(t_small - t_large) < 1.0 and abs(t_small - t_large) < 0.4, (t_small, t_large)
    assert 2.0 <= t_small <= 3.0 and 2.0 <= t_large <= 3.0  # MNIST's 2-3 px
    # The raster of the small drawing, scaled up with the canvas's pen, is what made blobs.
    t_raster = stroke_thickness(prepare_digit(raster(small)))
    assert t_raster > t_small + 2.0, (t_raster, t_small)
    # Same digit at both sizes: nearly the same image.
    a, b = prepare_strokes(small, CANVAS), prepare_strokes(large, CANVAS)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_the_pen_of_the_prepared_image_is_what_sets_the_thickness():
    strokes = mouse(DIGITS[2], 0.5, 70, 70)
    thin = stroke_thickness(prepare_strokes(strokes, CANVAS, stroke_width=1.5))
    default = stroke_thickness(prepare_strokes(strokes, CANVAS))
    thick = stroke_thickness(prepare_strokes(strokes, CANVAS, stroke_width=3.5))
    assert thin < default < thick
    assert STROKE_WIDTH == pytest.approx(2.3)
    # The canvas's pen width does not matter (only for how far a dot-sized drawing is enlarged).
    wide = [PenStroke(points=s, width=40.0) for s in strokes]
    np.testing.assert_allclose(prepare_strokes(wide, CANVAS), prepare_strokes(strokes, CANVAS))


@pytest.mark.parametrize(("size", "left", "top"), [(0.15, 2, 2), (0.15, 230, 230), (0.3, 100, 10), (0.9, 14, 14)])
def test_centred_by_mass_in_the_frame_with_20_px_of_ink(size, left, top):
    for digit, strokes in DIGITS.items():
        out = prepare_strokes(mouse(strokes, size, left, top), CANVAS)
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
        cy, cx = centre_of_mass(out)
        assert abs(cy - 13.5) <= 0.2 and abs(cx - 13.5) <= 0.2, (digit, cy, cx)
        assert max(ink_extent(out)) in (20, 21), (digit, ink_extent(out))  # the longer side, like prepare_digit
        assert len(np.unique(out)) > 10  # anti-aliased, not binary


def test_a_top_heavy_digit_is_shifted_towards_the_centre_but_kept_whole_inside_the_frame():
    # A T with a heavy bar: centring its mass would push its foot past the bottom of the frame.
    strokes = [np.array([(20.0, 20.0 + 12 * i), (220.0, 20.0 + 12 * i)]) for i in range(4)]
    strokes.append(np.array([(120.0, 20.0), (120.0, 220.0)]))
    out = prepare_strokes(strokes, CANVAS)
    assert max(ink_extent(out)) == 20  # nothing cut off
    assert out[-1, :].max() > 0.5 and out[0, :].max() == 0.0  # pressed against the bottom edge
    cy, cx = centre_of_mass(out)
    assert 12.5 < cy < 13.4 and abs(cx - 13.5) <= 0.2  # as near the centre as the frame allows


@pytest.mark.parametrize("strokes", [[], [np.zeros((0, 2))], [PenStroke(np.array([(10.0, 10.0), (90.0, 90.0)]),
                                                                         width=40.0, erase=True)]])
def test_empty_canvas_gives_zeros(strokes):
    out = prepare_strokes(strokes, CANVAS)
    assert out.shape == (28, 28) and out.dtype == np.float32 and not out.any()


def test_a_single_dot_is_a_small_round_dot_in_the_middle():
    out = prepare_strokes([[(57.0, 201.0)]], CANVAS)
    assert out.max() == pytest.approx(1.0)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.2 and abs(cx - 13.5) <= 0.2
    h, w = ink_extent(out, 0.5)
    assert h == w and 2 <= h <= 3  # the prepared image's pen, not a 20 px disc
    assert (out > 0.5).sum() <= 9
    # A dot with the canvas's pen stays a dot, and so does a tiny scribble: not enlarged to 20 px.
    scribble = prepare_strokes([PenStroke(np.array([(50.0, 50.0), (53.0, 51.0), (51.0, 53.0)]), width=PEN)], CANVAS)
    assert max(ink_extent(scribble)) <= 8
    # The raster of that dot was enlarged to a 20 px disc.
    assert max(ink_extent(prepare_digit(raster([np.array([(57.0, 201.0)])])))) == 20


def test_a_stroke_outside_the_canvas_is_clipped_at_its_edge():
    seven = [np.array([(60.0, 40.0), (220.0, 40.0), (120.0, 280.0)])]
    beyond = [np.array([(60.0, 40.0), (220.0, 40.0), (100.0, 328.0)])]  # the same stem, on past the canvas's edge
    np.testing.assert_allclose(prepare_strokes(beyond, CANVAS), prepare_strokes(seven, CANVAS), atol=0.02)
    # Out and back in: the two parts inside, never a line across the outside.
    dip = [np.array([(40.0, 100.0), (40.0, 260.0), (140.0, 330.0), (240.0, 260.0), (240.0, 100.0)])]
    parts = [np.array([(40.0, 100.0), (40.0, 260.0), (40.0 + 100.0 * 20 / 70, 280.0)]),  # where it crosses y=280
             np.array([(240.0 - 100.0 * 20 / 70, 280.0), (240.0, 260.0), (240.0, 100.0)])]
    np.testing.assert_allclose(prepare_strokes(dip, CANVAS), prepare_strokes(parts, CANVAS), atol=0.02)
    # Only outside: nothing; a non-square canvas clips at its own width and height.
    assert not prepare_strokes([np.array([(-50.0, 10.0), (-5.0, 200.0)])], CANVAS).any()
    wide = prepare_strokes([np.array([(300.0, 50.0), (300.0, 150.0)])], (400.0, 200.0))
    assert wide.any() and not prepare_strokes([np.array([(300.0, 50.0), (300.0, 150.0)])], (250.0, 200.0)).any()
    # Points that are not numbers are dropped, not drawn.
    nan = [np.array([(60.0, 40.0), (np.nan, 10.0), (220.0, 40.0), (120.0, 279.0)])]
    assert prepare_strokes(nan, CANVAS).any()


def test_an_eraser_removes_the_ink_it_passed_over_but_not_ink_drawn_after_it():
    bar = np.array([(40.0, 140.0), (240.0, 140.0)])
    stem = np.array([(140.0, 40.0), (140.0, 240.0)])
    cross = prepare_strokes([bar, stem], CANVAS)
    # Erasing the right half of the bar leaves a stem with half a bar (an upside-down 4, roughly).
    eraser = PenStroke(np.array([(200.0, 140.0), (260.0, 140.0)]), width=100.0, erase=True)  # 50 px round it
    erased = prepare_strokes([bar, stem, eraser], CANVAS)
    kept = prepare_strokes([np.array([(40.0, 140.0), (150.0, 140.0)]), stem], CANVAS)
    assert np.corrcoef(erased.ravel(), kept.ravel())[0, 1] > 0.95
    assert not np.allclose(erased, cross)
    # An eraser before the ink erases nothing of it.
    np.testing.assert_allclose(prepare_strokes([eraser, bar, stem], CANVAS), cross)
    # Erasing everything leaves nothing.
    everything = PenStroke(np.array([(0.0, 0.0), (280.0, 280.0), (0.0, 280.0), (280.0, 0.0)]), width=400.0,
                           erase=True)
    assert not prepare_strokes([bar, stem, everything], CANVAS).any()


def test_bare_polylines_lists_and_pen_strokes_mean_the_same():
    pts = mouse(DIGITS[3], 0.5, 60, 60)
    as_lists = [[(float(x), float(y)) for x, y in p] for p in pts]
    as_pen = [PenStroke(points=p, width=PEN) for p in pts]
    ref = prepare_strokes(pts, CANVAS)
    np.testing.assert_allclose(prepare_strokes(as_lists, CANVAS), ref)
    np.testing.assert_allclose(prepare_strokes(as_pen, (CANVAS, CANVAS)), ref)
