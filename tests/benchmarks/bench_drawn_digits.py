"""Benchmark: the bundled model on digits drawn small and large, prepared from the raster and from the paths.

Run (from the repository root, offscreen; about 2-4 minutes on 2 cores)::

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_drawn_digits.py [--per-digit 20] [--seed 0]

Why: a digit drawn small (15-30% of the canvas) used to be prepared from the
canvas's raster, scaled up to MNIST's 20 px box with its pen: 6-7 px blobs
where MNIST has 2-3 px strokes.  The canvas now hands its strokes' paths to
``prepare_strokes``, which draws them again with one MNIST-like pen.

What it does: draws digits 0-9 through real mouse events (``QTest.mousePress``
/ ``mouseMove`` / ``mouseRelease``, a move every 1 or 2 px) on a shown
:class:`DigitCanvas` with its default pen, at four sizes (the digit's bounding
box height as 15%, 30%, 60% and 90% of the canvas side), ``--per-digit``
drawings of each digit at each size.  The strokes are the templates of
``tests/ui/digit_strokes.py`` plus a few more styles below, drawn by a handful
of "writers" (slant, width, tremor, mouse speed of their own) with random
jitter, slant, rotation and position.  Each drawing is prepared both ways:

* before: ``prepare_digit(canvas.image_array())``, the raster preparation the
  Predict workspace used (the function itself is unchanged);
* after: ``canvas.prepared_image()``, the strokes' paths through ``prepare_strokes``;

and classified with the bundled model (``models/digits.keras`` through
``Predictor``).  Printed: accuracy per size before and after, the same per
digit, the median stroke thickness at 28x28 (``stroke_thickness``) beside
MNIST's own, and the preparation time.  Goal: 15% and 30% about as accurate as
60% and 90%, and 60%/90% no worse than before.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ui"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SIZES = (0.15, 0.30, 0.60, 0.90)
Polyline = list[tuple[float, float]]


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, step: float = 10.0) -> Polyline:
    """Points on an ellipse from ``a0`` to ``a1`` degrees in a unit box (y down: 90 is the bottom)."""
    n = max(2, int(abs(a1 - a0) / step) + 1)
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(a0, a1, n)]


# More ways people write digits, beside the templates of tests/ui/digit_strokes.py (unit box, y down).
EXTRA_STYLES: dict[int, dict[str, list[Polyline]]] = {
    0: {"round-start-right": [arc(0.5, 0.5, 0.3, 0.46, -60, 300)]},
    1: {"serif": [[(0.35, 0.18), (0.52, 0.05), (0.5, 0.95)]]},
    2: {"loop": [arc(0.5, 0.3, 0.28, 0.25, 200, 380) + [(0.3, 0.8), (0.22, 0.92)] + arc(0.3, 0.86, 0.1, 0.08, 90, -180)
                 + [(0.45, 0.93), (0.85, 0.95)]]},
    3: {"open": [arc(0.47, 0.27, 0.27, 0.22, 210, 440) + arc(0.47, 0.72, 0.3, 0.23, 280, 500)]},
    4: {"tall-cross": [[(0.3, 0.05), (0.15, 0.62), (0.9, 0.62)], [(0.66, 0.3), (0.66, 0.95)]]},
    5: {"flat": [[(0.8, 0.05), (0.28, 0.05), (0.24, 0.42), (0.5, 0.38)] + arc(0.5, 0.66, 0.3, 0.28, -80, 140)]},
    6: {"loop-low": [arc(0.62, 0.52, 0.42, 0.47, 270, 170) + arc(0.5, 0.74, 0.26, 0.2, 180, 540)]},
    7: {"curved": [[(0.15, 0.08), (0.85, 0.05)] + [(0.72, 0.3), (0.58, 0.55), (0.5, 0.75), (0.46, 0.95)]]},
    8: {"cross": [[(0.72, 0.1), (0.5, 0.05), (0.3, 0.15), (0.32, 0.35), (0.7, 0.6), (0.72, 0.85), (0.5, 0.95),
                   (0.28, 0.85), (0.3, 0.6), (0.68, 0.35), (0.7, 0.15), (0.5, 0.05)]]},
    9: {"stick": [arc(0.45, 0.28, 0.27, 0.22, 0, -360), [(0.72, 0.2), (0.72, 0.95)]]},
}


@dataclass(frozen=True)
class Writer:
    """One person's hand: how they lean, how wide they write, how shaky and how fast their mouse is."""

    name: str
    slant: float  # horizontal shear, positive leans right
    aspect: float  # width multiplier
    wobble: float  # hand tremor, px (smoothed)
    step: float  # px between mouse reports


WRITERS = (
    Writer("upright", 0.0, 1.0, 0.5, 1.0),
    Writer("leaning", 0.25, 0.9, 0.8, 2.0),
    Writer("back-hand", -0.15, 1.05, 0.6, 1.0),
    Writer("wide-shaky", 0.08, 1.2, 1.5, 2.0),
    Writer("narrow", 0.12, 0.8, 0.3, 1.5),
)


def styles() -> dict[int, dict[str, list[Polyline]]]:
    """Every template: the shared ones first, then the extra styles of this benchmark."""
    from digit_strokes import STYLES

    return {d: {**STYLES[d], **EXTRA_STYLES.get(d, {})} for d in range(10)}


@dataclass(frozen=True)
class Drawing:
    """One digit as mouse positions on the canvas (integer px, as a mouse reports them)."""

    digit: int
    size: float
    label: str
    strokes: list[list[tuple[int, int]]]


def make_drawing(digit: int, style: str, lines: list[Polyline], size: float, writer: Writer, canvas: int,
                 pen: float, rng: np.random.Generator) -> Drawing:
    """Place a template on the canvas with its bounding box ``size`` x the canvas side tall.

    The template is widened, slanted and turned by the writer's habits plus jitter, scaled so its
    height is exact, shaken by the writer's tremor, kept a pen's half width inside the canvas (so the
    raster shows all of it: the comparison is fair) and sampled every ``writer.step`` px.
    """
    slant = writer.slant + rng.normal(0.0, 0.08)
    aspect = writer.aspect * rng.uniform(0.85, 1.15) * (0.8 if digit == 1 else 1.0)
    angle = math.radians(rng.normal(0.0, 5.0))
    c, s = math.cos(angle), math.sin(angle)
    shaped = []
    for line in lines:
        pts = np.array([((x - 0.5) * aspect + slant * (0.5 - y), y - 0.5) for x, y in line])
        pts += rng.normal(0.0, 0.01, size=pts.shape)  # the template's points are never in quite the same place
        shaped.append(pts @ np.array([[c, s], [-s, c]]))
    target = size * canvas
    margin = pen / 2.0 + 1.0

    def fit(lines_: list[np.ndarray]) -> list[np.ndarray]:
        allpts = np.vstack(lines_)
        lo, hi = allpts.min(axis=0), allpts.max(axis=0)
        sy = target / (hi[1] - lo[1])
        sx = min(sy, (canvas - 2 * margin) / max(hi[0] - lo[0], 1e-9))  # squeezed only if it cannot fit
        return [(p - (lo + hi) / 2.0) * (sx, sy) for p in lines_]

    placed = fit(shaped)
    shaken = []
    for pts in placed:
        dense = densify(pts, 2.0)
        noise = rng.normal(0.0, writer.wobble, size=dense.shape)
        kernel = np.ones(5) / 5.0
        noise = np.stack([np.convolve(noise[:, k], kernel, mode="same") for k in range(2)], axis=1)
        shaken.append(dense + noise)
    placed = fit(shaken)
    allpts = np.vstack(placed)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    room_lo, room_hi = margin - lo, canvas - margin - hi  # where the centre may go
    centre = np.array([rng.uniform(a, b) if b > a else (a + b) / 2.0 for a, b in zip(room_lo, room_hi)])
    strokes = []
    for pts in placed:
        mouse: list[tuple[int, int]] = []
        for x, y in densify(pts + centre, writer.step):
            p = (round(x), round(y))
            if not mouse or p != mouse[-1]:
                mouse.append(p)
        strokes.append(mouse)
    return Drawing(digit=digit, size=size, label=f"{digit}/{style}/{writer.name}@{size:.0%}", strokes=strokes)


def densify(pts: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` px along a polyline."""
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(math.ceil(float(np.hypot(*(b - a))) / spacing)))
        out.extend(a + (b - a) * k / n for k in range(1, n + 1))
    return np.array(out)


def drawings(per_digit: int, canvas: int, pen: float, seed: int) -> list[Drawing]:
    """``per_digit`` drawings of each digit at each size: styles and writers in turn, jitter at random."""
    rng = np.random.default_rng(seed)
    table = styles()
    out = []
    for size in SIZES:
        for digit in range(10):
            names = list(table[digit])
            for i in range(per_digit):
                style = names[i % len(names)]
                writer = WRITERS[i % len(WRITERS)]  # 2-4 styles against 5 writers: every pairing in 10-20
                out.append(make_drawing(digit, style, table[digit][style], size, writer, canvas, pen, rng))
    return out


def spin() -> None:
    """Let the event loop run once (paint events): a QEventLoop, never QTest.qWait (it holds the GIL)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(0, loop.quit)
    loop.exec()


def draw(canvas: object, drawing: Drawing) -> None:
    """Draw with real mouse events: press, a move per mouse report, release; left button."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for stroke in drawing.strokes:
        pts = [QPoint(x, y) for x, y in stroke]
        QTest.mousePress(canvas, left, none, pts[0])
        for p in pts[1:]:
            QTest.mouseMove(canvas, p)
        QTest.mouseRelease(canvas, left, none, pts[-1])


def best_of(n: int, fn: Callable[[], object]) -> float:
    """The shortest of ``n`` timed calls, in s (the machine is shared: the others measure its other programs)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def mnist_thickness(n: int = 1000) -> np.ndarray:
    """Stroke thickness of the first ``n`` digits of the bundled MNIST sample, prepared like an image file."""
    from neuralstudio.ml.preprocess import prepare_digit, stroke_thickness

    with gzip.open(ROOT / "resources" / "data" / "mnist-sample" / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    return np.array([stroke_thickness(prepare_digit(im)) for im in images])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-digit", type=int, default=20, help="drawings of each digit at each size (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mistakes", action="store_true", help="list the drawings read wrong after the change")
    args = parser.parse_args(argv)

    # Keras before Qt: PySide6 inspects the source of every module imported after it (docs/ARCHITECTURE.md).
    from neuralstudio.ml.inference import Predictor
    from neuralstudio.ml.model_files import load_keras_model

    predictor = Predictor(load_keras_model(ROOT / "models" / "digits.keras"))

    from PySide6.QtWidgets import QApplication

    from neuralstudio.ml.preprocess import prepare_digit, stroke_thickness
    from neuralstudio.ui.predict.canvas import DigitCanvas

    app = QApplication.instance() or QApplication([])
    canvas = DigitCanvas()
    canvas.show()
    spin()
    items = drawings(args.per_digit, canvas.width(), canvas.pen_width, args.seed)
    before, after, t_before, t_after, moves = [], [], [], [], 0
    t0 = time.perf_counter()
    for d in items:
        canvas.clear()
        draw(canvas, d)
        spin()
        moves += sum(len(s) for s in d.strokes)
        before.append(prepare_digit(canvas.image_array()))  # the previous preparation, as the workspace called it
        after.append(canvas.prepared_image())
        t_before.append(best_of(3, lambda: prepare_digit(canvas.image_array())))
        t_after.append(best_of(3, canvas.prepared_image))
    t_draw = time.perf_counter() - t0
    canvas.close()
    app.processEvents()

    truth = np.array([d.digit for d in items])
    sizes = np.array([d.size for d in items])
    pred = {name: predictor.predict_batch(np.stack(x)).argmax(axis=1) for name, x in (("before", before),
                                                                                     ("after", after))}
    thick = {name: np.array([stroke_thickness(x) for x in xs]) for name, xs in (("before", before), ("after", after))}
    ref = mnist_thickness()

    n_styles = sum(len(v) for v in styles().values())
    print(f"\nDrawn digits on the Predict canvas ({canvas.width()} px, default pen {canvas.pen_width:.1f} px), "
          f"real mouse events: {len(items)} drawings ({args.per_digit} per digit per size, {n_styles} styles, "
          f"{len(WRITERS)} writers, seed {args.seed}), {moves:,} mouse moves in {t_draw:.0f} s")
    print("bundled model (models/digits.keras); before = prepare_digit(canvas raster), "
          "after = prepare_strokes(canvas paths)\n")
    def acc(name: str, m: np.ndarray) -> float:
        return float((pred[name][m] == truth[m]).mean())

    print(f"{'digit height':<14}{'before':>9}{'after':>9}{'change':>9}   {'without 1s: before':>18}{'after':>8}"
          f"   {'thickness before':>16}{'after':>9}")
    for size in [*SIZES, None]:
        m = sizes == size if size is not None else np.ones(len(items), bool)
        no1 = m & (truth != 1)
        b, a = acc("before", m), acc("after", m)
        line = (f"{'all' if size is None else f'{size:.0%}':<14}{b:>9.1%}{a:>9.1%}{(a - b) * 100:>+8.1f}p"
                f"   {acc('before', no1):>18.1%}{acc('after', no1):>8.1%}")
        if size is not None:
            line += f"   {np.median(thick['before'][m]):>13.2f} px{np.median(thick['after'][m]):>6.2f} px"
        print(line)
    q = np.percentile(ref, [25, 50, 75])
    print(f"MNIST sample (1,000 digits, prepare_digit): thickness {q[1]:.2f} px median, "
          f"{q[0]:.2f}-{q[2]:.2f} quartiles")

    print("\nper digit, before -> after")
    print(f"{'height':<8}" + "".join(f"{k:>12}" for k in range(10)))
    for size in SIZES:
        cells = []
        for k in range(10):
            m = (sizes == size) & (truth == k)
            b, a = (float((pred[n][m] == k).mean()) for n in ("before", "after"))
            cells.append(f"{b:>5.0%}->{a:<4.0%}")
        print(f"{size:<8.0%}" + "".join(f"{c:>12}" for c in cells))

    def ms(samples: list[float], q_: float) -> float:
        return float(np.percentile(np.asarray(samples) * 1000.0, q_))

    print(f"\npreparation time per drawing: before p50 {ms(t_before, 50):.2f} ms / p95 {ms(t_before, 95):.2f} ms; "
          f"after p50 {ms(t_after, 50):.2f} ms / p95 {ms(t_after, 95):.2f} ms")
    if args.mistakes:
        wrong = [f"{d.label} -> {int(p)}" for d, p in zip(items, pred["after"]) if p != d.digit]
        print("\nread wrong after the change:\n  " + "\n  ".join(wrong))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
