"""Turn a drawn or photographed digit into the 28x28 image an MNIST network expects.

MNIST was made in a particular way (LeCun et al.): each digit was cropped to its
ink, scaled so that its longer side is 20 px (anti-aliased, aspect ratio kept),
and placed in a 28x28 frame so that its centre of mass sits in the middle.  A
network trained on MNIST only recognises digits prepared the same way: a digit
drawn small in a corner of a large canvas, scaled naively to 28x28, is a few
grey pixels the network has never seen.  So image files go through
:func:`prepare_digit`.

A digit drawn on the canvas goes through :func:`prepare_strokes` instead: the
canvas keeps its strokes as paths, and scaling a raster of a small drawing up
to 20 px scales the pen up with it (a digit drawn at 15% of the canvas with the
canvas's pen got a 6-7 px pen at 28x28: loops filled in, blobs that MNIST never
has).  The paths are scaled into the 20 px box and drawn again with one fixed,
MNIST-like pen, so a digit's strokes are about as thick as MNIST's whatever
size it was drawn at, then centred by mass like MNIST.

Pure numpy and Pillow (no Qt, no Keras), so the CLI, the GUI and the tests share it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuralstudio.core.errors import UserError

SIZE = 28  # the frame MNIST digits live in
BOX = 20  # the longer side of the digit inside the frame
INK_THRESHOLD = 0.1  # a pixel with at least this share of the brightest ink counts for the bounding box
MAX_IMAGE_PIXELS = 4096 * 4096  # checked before decoding: a small file can declare billions of pixels


class ImageFileError(UserError, ValueError):
    """An image file that cannot be read as a digit."""


def _as_float(gray: np.ndarray) -> np.ndarray:
    """``gray`` as float32 in [0, 1] (uint8 and 0..255 floats are divided by 255)."""
    arr = np.asarray(gray)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., :3].mean(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got an array of shape {arr.shape}")
    out = arr.astype(np.float32, copy=True)
    if np.issubdtype(arr.dtype, np.integer) or (out.size and float(out.max()) > 1.0):
        out /= 255.0
    np.nan_to_num(out, copy=False)
    return np.clip(out, 0.0, 1.0)


def _resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Anti-aliased resize of a float image (Pillow's area-weighted box filter down, bicubic-free up)."""
    from PIL import Image

    img = Image.fromarray(arr.astype(np.float32), mode="F")
    src_h, src_w = arr.shape
    # Shrinking: the box filter averages every source pixel (what anti-aliasing means here).
    # Enlarging a tiny digit: bilinear keeps edges soft without the ringing of Lanczos.
    resample = Image.Resampling.BOX if (height <= src_h and width <= src_w) else Image.Resampling.BILINEAR
    return np.asarray(img.resize((width, height), resample=resample), dtype=np.float32)


def ink_bbox(arr: np.ndarray, threshold: float = INK_THRESHOLD) -> tuple[int, int, int, int] | None:
    """The ``(top, bottom, left, right)`` bounds (exclusive ends) of the ink, or None for a blank image."""
    peak = float(arr.max()) if arr.size else 0.0
    if peak <= 1e-3:
        return None
    mask = arr >= peak * threshold
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def prepare_digit(gray: np.ndarray) -> np.ndarray:
    """Prepare a white-on-black digit image the way MNIST digits were prepared.

    Crop to the ink's bounding box, scale the longer side to 20 px keeping the
    aspect ratio, place the result in a 28x28 frame with its centre of mass at
    the centre, and stretch the values so the strongest ink is 1.

    Args:
        gray: a 2-D array (any size), white (high) ink on a black (low) background;
            uint8 0..255 or float 0..1.

    Returns:
        a ``(28, 28)`` float32 array in [0, 1]; all zeros for a blank image.
    """
    arr = _as_float(gray)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    box = ink_bbox(arr)
    if box is None:
        return out
    top, bottom, left, right = box
    crop = arr[top:bottom, left:right]
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_h = max(1, min(BOX, round(h * scale)))
    new_w = max(1, min(BOX, round(w * scale)))
    small = np.clip(_resize(crop, new_h, new_w), 0.0, None)
    peak = float(small.max())
    if peak <= 0.0:
        return out
    small /= peak  # a thin stroke scaled down is grey; MNIST ink is saturated in the middle of a stroke

    total = float(small.sum())
    ys, xs = np.indices(small.shape, dtype=np.float64)
    com_y = float((ys * small).sum() / total)
    com_x = float((xs * small).sum() / total)
    centre = (SIZE - 1) / 2.0
    # Integer shift so the centre of mass lands in the middle, kept inside the frame.
    top_at = int(np.clip(round(centre - com_y), 0, SIZE - new_h))
    left_at = int(np.clip(round(centre - com_x), 0, SIZE - new_w))
    out[top_at : top_at + new_h, left_at : left_at + new_w] = small
    return np.clip(out, 0.0, 1.0)


# ----- drawn strokes ----------------------------------------------------------------------------------------------
# Stroke thickness (stroke_thickness: ink mass per skeleton pixel) of the bundled MNIST sample after prepare_digit:
# 2.14 / 2.50 / 3.07 px (quartiles of 1,000 digits; tests/benchmarks/bench_drawn_digits.py prints it).  A round
# pen of 2.3 px drawn as below measures 2.5-2.6 px on drawn digits of every size: MNIST's median.
STROKE_WIDTH = 2.3  # pen diameter in px of the 28x28 frame
# Strokes are drawn 4x finer, then box-averaged: anti-aliased like MNIST in 1/16 grey steps, placed to 1/4 px.
# 8x measured the same accuracy and thickness on the benchmark's drawings at twice the time (1.3 against 0.65 ms).
SUPERSAMPLE = 4
MARGIN = 5  # px drawn around the 28x28 frame, so the centre-of-mass shift can crop instead of drawing again
EDGE = 0.9  # px of faint anti-aliased rim around the pen, both sides together
MIN_EXTENT_SHARE = 0.05  # a drawing smaller than this share of the canvas is scaled as if it were this size


@dataclass(frozen=True)
class PenStroke:
    """One stroke of a drawing as a path: what :func:`prepare_strokes` takes.

    Attributes:
        points: ``(n, 2)`` x, y in canvas coordinates (x right, y down); one point is a dot.
        width: the pen's width on the canvas, in the same units.  For an eraser it is what the eraser
            removed; for ink it only bounds how far a tiny drawing is enlarged (a dot stays a dot).
        erase: an eraser stroke: it removes the ink of earlier strokes it passed over.
    """

    points: np.ndarray
    width: float = 0.0
    erase: bool = False


StrokeLike = PenStroke | np.ndarray | Sequence[Sequence[float]]


def _pen_stroke(stroke: StrokeLike) -> PenStroke:
    """``stroke`` as a PenStroke with an ``(n, 2)`` float64 array (a bare polyline is ink)."""
    if isinstance(stroke, PenStroke):
        pts = np.asarray(stroke.points, dtype=np.float64).reshape(-1, 2)
        return PenStroke(points=pts, width=float(stroke.width), erase=bool(stroke.erase))
    return PenStroke(points=np.asarray(stroke, dtype=np.float64).reshape(-1, 2))


def _clip_polyline(pts: np.ndarray, width: float, height: float) -> list[np.ndarray]:
    """The parts of a polyline inside the canvas ``[0, width] x [0, height]`` (Liang-Barsky, segment by segment).

    A mouse held down keeps reporting positions when it leaves the widget; the canvas's raster never shows
    ink there, so neither may the prepared image, nor may it count for the digit's size.
    """
    pts = pts[np.isfinite(pts).all(axis=1)]
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= width) & (pts[:, 1] >= 0) & (pts[:, 1] <= height)
    if inside.all():
        return [pts] if len(pts) else []
    if len(pts) == 1:
        return []
    runs: list[np.ndarray] = []
    current: list[np.ndarray] = []
    for a, b in zip(pts[:-1], pts[1:]):
        d = b - a
        t0, t1 = 0.0, 1.0
        visible = True
        for p, q in ((-d[0], a[0]), (d[0], width - a[0]), (-d[1], a[1]), (d[1], height - a[1])):
            if p == 0.0:
                if q < 0.0:
                    visible = False
                    break
                continue
            t = q / p
            if p < 0.0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
        if not visible or t0 > t1:
            if current:
                runs.append(np.asarray(current))
                current = []
            continue
        start, end = a + t0 * d, a + t1 * d
        if current and t0 > 0.0:  # re-entered the canvas: a new piece
            runs.append(np.asarray(current))
            current = []
        if not current:
            current.append(start)
        current.append(end)
        if t1 < 1.0:  # left the canvas
            runs.append(np.asarray(current))
            current = []
    if current:
        runs.append(np.asarray(current))
    return runs


def _densify(pts: np.ndarray, spacing: float) -> np.ndarray:
    """The polyline with extra points so that no two neighbours are more than ``spacing`` apart."""
    if len(pts) < 2:
        return pts
    seg = np.diff(pts, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / spacing).astype(int))
    if (n == 1).all():
        return pts
    t = np.concatenate([np.arange(k) / k for k in n])
    starts = np.repeat(pts[:-1], n, axis=0)
    return np.vstack([starts + np.repeat(seg, n, axis=0) * t[:, None], pts[-1:]])


def _near(points: np.ndarray, line: np.ndarray, radius: float) -> np.ndarray:
    """Which of ``points`` lie within ``radius`` of the polyline ``line`` (a dot when it has one point)."""
    a = line[:-1] if len(line) > 1 else line
    b = line[1:] if len(line) > 1 else line
    d = b - a
    dd = np.maximum((d * d).sum(axis=1), 1e-12)
    out = np.zeros(len(points), dtype=bool)
    block = max(1, 1_000_000 // max(1, len(a)))  # bounded memory for long strokes
    for i in range(0, len(points), block):
        p = points[i : i + block, None, :]
        t = np.clip(((p - a) * d).sum(axis=2) / dd, 0.0, 1.0)
        gap = p - (a + t[..., None] * d)
        out[i : i + block] = ((gap * gap).sum(axis=2) <= radius * radius).any(axis=1)
    return out


def _visible_ink(strokes: list[PenStroke], width: float, height: float) -> tuple[list[np.ndarray], float]:
    """The ink's centre lines still visible (inside the canvas, not erased later), and the widest ink pen.

    An eraser removes the centre line of ink it passed within half its width of: the prepared image then
    draws what is left with its own pen, so a half-erased stroke does not leave slivers of the canvas's
    thicker pen.
    """
    spacing = max(width, height) / 280.0  # about one screen pixel of the canvas: erased ends cut that finely
    runs_per_stroke: list[list[np.ndarray]] = []
    widest = 0.0
    for i, stroke in enumerate(strokes):
        if stroke.erase or not len(stroke.points):
            runs_per_stroke.append([])
            continue
        widest = max(widest, stroke.width)
        runs = _clip_polyline(stroke.points, width, height)
        erasers = [e for e in strokes[i + 1 :] if e.erase and len(e.points)]
        if erasers and runs:
            kept: list[np.ndarray] = []
            for run in runs:
                run = _densify(run, spacing)
                gone = np.zeros(len(run), dtype=bool)
                for e in erasers:
                    gone |= _near(run, e.points, e.width / 2.0)
                # split the run where it was erased
                edges = np.flatnonzero(np.diff(np.concatenate([[1], gone.astype(np.int8), [1]])))
                kept.extend(run[s:t] for s, t in zip(edges[::2], edges[1::2]) if t > s)
            runs = kept
        runs_per_stroke.append(runs)
    return [r for runs in runs_per_stroke for r in runs], widest


def _draw_runs(runs: list[np.ndarray], side: int, pen: float) -> np.ndarray:
    """Draw polylines (in pixels of a ``side`` x ``side`` image) with a round pen ``pen`` px wide; uint8 0/255.

    Fast enough to run on every pen move: each polyline is thinned to a point every half pen width (a mouse
    reports one every 1-2 canvas px; at 20 px per digit that is far finer than the pen) and drawn as one wide
    line; round discs go only at its ends and where it turns by more than 0.3 rad, the only places where the
    wide segments leave a visible notch.
    """
    from PIL import Image, ImageDraw

    img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    r = pen / 2.0
    for run in runs:
        if len(run) > 1:
            step = np.hypot(*np.diff(run, axis=0).T)
            along = np.concatenate([[0.0], np.cumsum(step)])
            bins = np.floor(along / (pen / 2.0))
            keep = np.flatnonzero(np.diff(bins, prepend=-1.0) > 0)
            if keep[-1] != len(run) - 1:
                keep = np.append(keep, len(run) - 1)
            run = run[keep]
        if len(run) > 1 and float(np.abs(run[1:] - run[:-1]).max()) > 0.0:
            draw.line([(float(x), float(y)) for x, y in run], fill=255, width=max(1, round(pen)))
            d = np.diff(run, axis=0)
            heading = np.arctan2(d[:, 1], d[:, 0])
            turn = np.abs((np.diff(heading) + np.pi) % (2.0 * np.pi) - np.pi)
            corners = np.concatenate([[0], np.flatnonzero(turn > 0.3) + 1, [len(run) - 1]])
        else:
            corners = np.array([0])
        for x, y in run[corners]:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img)


def prepare_strokes(
    strokes: Sequence[StrokeLike],
    canvas_size: float | tuple[float, float],
    *,
    stroke_width: float = STROKE_WIDTH,
) -> np.ndarray:
    """Prepare a digit drawn as strokes the way MNIST digits look, whatever size it was drawn at.

    The visible centre lines of the ink (clipped to the canvas, minus what later eraser strokes removed)
    are scaled so that the digit's longer side, pen included, is 20 px, drawn with a round pen
    ``stroke_width`` px wide (anti-aliased), and placed in a 28x28 frame with their centre of mass in the
    middle (to 1/4 px, kept inside the frame), as :func:`prepare_digit` places a raster (to 1 px).  The canvas's own
    pen width plays no part: a digit drawn small on the canvas gets strokes as thin as one drawn large.

    Args:
        strokes: in drawing order, each a :class:`PenStroke` or a bare polyline (``(n, 2)`` x, y; ink).
        canvas_size: the canvas side, or its ``(width, height)``, in the strokes' units.
        stroke_width: the pen of the prepared image, in px of the 28x28 frame.

    Returns:
        a ``(28, 28)`` float32 array in [0, 1], strongest ink 1; all zeros when no ink is visible.
    """
    width, height = (float(canvas_size), float(canvas_size)) if np.isscalar(canvas_size) else map(float, canvas_size)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    runs, widest = _visible_ink([_pen_stroke(s) for s in strokes], width, height)
    if not runs:
        return out
    allpts = np.vstack(runs)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    extent = float((hi - lo).max())
    # Never enlarge more than a drawing of the pen's width (or 5% of the canvas) would be: a dot stays a dot.
    extent = max(extent, widest, MIN_EXTENT_SHARE * max(width, height), 1e-9)
    k = SUPERSAMPLE
    frame = (SIZE + 2 * MARGIN) * k
    # The centre lines span 20 px less the pen and its anti-aliased rims (0.45 px each side at 5% of the
    # peak), so the ink spans the 20 px that prepare_digit gives.
    scale = (BOX - stroke_width - EDGE) * k / extent  # super-pixels per canvas unit
    centre = (lo + hi) / 2.0
    drawn = _draw_runs([(run - centre) * scale + frame / 2.0 for run in runs], frame, stroke_width * k)

    profiles = (drawn.sum(axis=1, dtype=np.int64), drawn.sum(axis=0, dtype=np.int64))  # ink per row, per column
    total = float(profiles[0].sum())
    if total <= 0.0:
        return out
    window = SIZE * k
    origin = []
    for profile in profiles:  # rows (y), then columns (x)
        com = float((profile * (np.arange(frame) + 0.5)).sum() / total)
        ink = np.flatnonzero(profile)
        low, high = max(0, int(ink[-1]) + 1 - window), min(frame - window, int(ink[0]))
        want = round(com - window / 2.0)
        origin.append(int(np.clip(want, low, high)) if low <= high else (frame - window) // 2)
    top, left = origin
    crop = drawn[top : top + window, left : left + window].astype(np.float32)
    out = crop.reshape(SIZE, k, SIZE, k).mean(axis=(1, 3)) / 255.0
    peak = float(out.max())
    if peak > 0.0:
        out /= peak
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _thin(mask: np.ndarray) -> np.ndarray:
    """The one-pixel-wide skeleton of a binary image (Zhang-Suen thinning, both sub-steps vectorised)."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        removed = False
        for step in (0, 1):
            p = img
            up, down = np.roll(p, 1, 0), np.roll(p, -1, 0)
            # neighbours P2..P9, clockwise from the one above
            nb = [up, np.roll(up, -1, 1), np.roll(p, -1, 1), np.roll(down, -1, 1), down, np.roll(down, 1, 1),
                  np.roll(p, 1, 1), np.roll(up, 1, 1)]
            count = sum(n.astype(np.int16) for n in nb)
            transitions = sum(((a == 0) & (b == 1)).astype(np.int16) for a, b in zip(nb, nb[1:] + nb[:1]))
            p2, p4, p6, p8 = nb[0], nb[2], nb[4], nb[6]
            if step == 0:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            gone = (p == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if gone.any():
                img = img.copy()
                img[gone] = 0
                removed = True
        if not removed:
            return img[1:-1, 1:-1].astype(bool)


def stroke_thickness(image: np.ndarray) -> float:
    """The mean stroke thickness of a prepared digit in px: its ink mass per pixel of its skeleton.

    The measure that :data:`STROKE_WIDTH` was chosen by (MNIST's digits against drawn ones), and that the
    tests and ``tests/benchmarks/bench_drawn_digits.py`` check drawings of every size against.  The skeleton
    is that of the pixels at least half inked; 0.0 for a blank image.
    """
    arr = _as_float(image)
    skeleton = int(_thin(arr >= 0.5).sum())
    return float(arr.sum()) / skeleton if skeleton else 0.0


def load_gray_image(path: str | os.PathLike[str], *, as_stored: bool = False) -> np.ndarray:
    """Read an image file as a float32 grey array in [0, 1] (original size, upright).

    Predicting and training read images through this one function, so that a
    16-bit PNG, a float TIFF or a sideways phone photo means the same in both:

    * The size is checked before any pixel is decoded (opening is lazy): a
      small file can declare billions of pixels.  At most ``MAX_IMAGE_PIXELS``.
    * The EXIF orientation is applied, so a photo taken sideways is upright.
    * Grey levels are scaled by the image's real range, never clipped at 255:
      8-bit images (and colour, palette, 1-bit) by 255; 16-bit ones (``I;16``)
      by 65535; 32-bit integers (``I``) by 65535 too while they stay within
      0..65535 (Pillow and most TIFF writers keep 16-bit data that way), else
      by their own maximum (a 32-bit range of which only the maximum is
      known); negative integers min-max.  Floats (``F``) stay as they are
      within [0, 1], else min-max; NaN and infinite pixels become 0.

    With ``as_stored=False`` (a digit to predict), photos and scans, usually
    dark ink on light paper (the opposite of MNIST), are made white on black:
    transparent pixels count as background, an image whose border is mostly
    light is inverted, the background level (the border's median) is
    subtracted so grey paper becomes black, and the strongest ink is stretched
    to white.  With ``as_stored=True`` (a training image) the grey levels are
    returned as stored, alpha ignored.

    The standalone predict.py that the export writes copies this function's
    source, so everything it needs is inside it.

    Raises:
        ImageFileError: the file is missing, not an image, damaged, or too large.
    """
    import struct
    import warnings

    from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError, WebPImagePlugin  # noqa: F401

    # Decoders for the formats a digit or a training image comes in (those this Pillow has); others are never
    # tried: EPS would run Ghostscript, and each rarely used decoder is more code that a hostile file can reach.
    Image.preinit()  # PNG, JPEG, BMP, GIF, PPM; the TIFF and WebP decoders are registered by their imports above
    formats = [f for f in ("PNG", "JPEG", "BMP", "DIB", "GIF", "WEBP", "TIFF", "PPM") if f in Image.OPEN]
    # What Pillow's decoders raise on damaged or hostile files.
    damaged = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, struct.error,
               ZeroDivisionError, OverflowError)

    def grey_levels(img: Image.Image) -> np.ndarray:
        """The grey levels in [0, 1], scaled by the image's real range (see above)."""
        if img.mode not in ("I", "F") and not img.mode.startswith("I;"):
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        arr = np.asarray(img)
        if arr.dtype.kind == "f":
            arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        lo = float(arr.min()) if arr.size else 0.0
        hi = float(arr.max()) if arr.size else 0.0
        if arr.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
            return arr.astype(np.float32)
        if arr.dtype.kind in "ui" and lo >= 0:
            return (arr.astype(np.float32) / np.float32(max(hi, 65535.0))).astype(np.float32)
        if hi <= lo:
            return np.zeros(arr.shape, np.float32)
        return ((arr.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)

    def digit_levels(img: Image.Image) -> np.ndarray:
        """Grey levels of a digit to predict: transparent pixels take the colour opposite to the ink."""
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            alpha = np.asarray(rgba, dtype=np.float32)[..., 3] / 255.0
            lum = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
            ink_is_dark = float((lum * alpha).sum()) < 0.5 * float(alpha.sum())
            bg = 1.0 if ink_is_dark else 0.0
            return lum * alpha + bg * (1.0 - alpha)
        return grey_levels(img)

    p = Path(path)
    if not p.exists():
        raise ImageFileError(f"{p}: no such image file. Check the path.")
    if p.is_dir():
        raise ImageFileError(f"{p} is a folder; give a PNG or JPEG image file.")
    if not p.is_file():
        raise ImageFileError(f"{p} is not a regular file; give a PNG or JPEG image file.")
    side = int(MAX_IMAGE_PIXELS ** 0.5)
    too_large = f"NeuralStudio reads images of at most {MAX_IMAGE_PIXELS:,} pixels ({side}x{side}): shrink it first."
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; here that is an error like any other.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # "Corrupt EXIF data" and the like: the image is read all the same, or refused with a message.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with Image.open(p, formats=formats) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageFileError(f"{p} is {width}x{height} pixels; {too_large}")
                img.load()
                try:
                    ImageOps.exif_transpose(img, in_place=True)
                except damaged:
                    pass  # unreadable EXIF: keep the pixels as stored rather than refuse the image
                arr = grey_levels(img) if as_stored else digit_levels(img)
    except ImageFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageFileError(f"{p} has far too many pixels; {too_large}") from None
    except UnidentifiedImageError:
        raise ImageFileError(f"{p} cannot be read as an image (not a format NeuralStudio reads); "
                             "use a PNG or JPEG file.") from None
    except damaged as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ImageFileError(f"{p} cannot be read as an image ({reason}); is the file complete? "
                             "Save it again as PNG or JPEG.") from None
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ImageFileError(f"{p} has no pixels.")
    if as_stored:
        return arr

    border = np.concatenate([arr[0, :], arr[-1, :], arr[:, 0], arr[:, -1]])
    background = float(np.median(border))
    if background > 0.5:
        arr = 1.0 - arr
        background = 1.0 - background
    arr = np.clip(arr - background, 0.0, None)
    peak = float(arr.max())
    if peak > 0.0:
        arr /= peak  # the strongest ink becomes white, as on the canvas
    return arr.astype(np.float32)


def prepare_image_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG/JPEG digit and prepare it like MNIST (see :func:`prepare_digit`).

    Raises:
        ImageFileError: the file cannot be read, or it holds no ink.
    """
    arr = load_gray_image(path)
    prepared = prepare_digit(arr)
    if not prepared.any():
        raise ImageFileError(
            f"{path} looks blank: no digit found (it should be one digit, dark on light or light on dark)."
        )
    return prepared
