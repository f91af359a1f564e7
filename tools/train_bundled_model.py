"""Train the pretrained digit model that ships in ``models/digits.keras``.

One command (from the repository root)::

    python tools/train_bundled_model.py            # ~3 min on 2 CPU cores

It trains the ``cnn-augmented`` template on the bundled "MNIST sample"
(8,000 training images) and saves ``models/digits.keras`` atomically, then
measures the test accuracy on the sample's 2,000 test images and the accuracy
on the project's synthetic hand-drawn digits (drawn through real mouse events
on the Predict canvas, offscreen), and writes those numbers to
``models/digits.metrics.json`` for the model card (``models/README.md``).

Why extra augmentation beyond the template's own layers: digits drawn with a
mouse differ from MNIST in stroke thickness, slant and proportions.  Every
training image is therefore also varied offline (rotation, shear, scale, stroke
thickness) and then prepared with :func:`neuralstudio.ml.preprocess.prepare_digit`
exactly as a drawn digit is, so the network sees the same kind of 28x28 image
in training as in the Predict workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from neuralstudio.core.atomic import atomic_path, atomic_write_text  # noqa: E402
from neuralstudio.ml.preprocess import prepare_digit  # noqa: E402

TEMPLATE = "cnn-augmented"
DATASET = "mnist-sample"


def _thicken(img: np.ndarray, amount: int) -> np.ndarray:
    """Grey dilation (amount > 0) or erosion (amount < 0) by one pixel, via shifted max/min."""
    if amount == 0:
        return img
    pad = np.pad(img, 1)
    h, w = img.shape
    shifts = [pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    stack = np.stack(shifts)
    return stack.max(axis=0) if amount > 0 else stack.min(axis=0)


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly varied copy of every image, re-prepared like a drawn digit.

    Each digit is drawn big (112x112), rotated by up to 15 degrees, sheared
    (slant), stretched, made thinner or thicker, then shrunk back through
    :func:`prepare_digit`.
    """
    from PIL import Image

    out = np.empty_like(images)
    big = 112
    for i, img in enumerate(images):
        pil = Image.fromarray((img * 255).astype(np.uint8)).resize((big, big), Image.Resampling.BILINEAR)
        angle = np.deg2rad(rng.uniform(-15, 15))
        shear = rng.uniform(-0.35, 0.35)
        sx = rng.uniform(0.75, 1.25)
        sy = rng.uniform(0.85, 1.15)
        c, s = np.cos(angle), np.sin(angle)
        # forward map = rotation @ shear @ scale; PIL wants the inverse (output -> input).
        fwd = np.array([[c, -s], [s, c]]) @ np.array([[1, shear], [0, 1]]) @ np.diag([sx, sy])
        inv = np.linalg.inv(fwd)
        centre = np.array([big / 2, big / 2])
        offset = centre - inv @ centre
        coeffs = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
        warped = pil.transform((big, big), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
        arr = np.asarray(warped.resize((56, 56), Image.Resampling.BOX), dtype=np.float32) / 255.0
        steps = int(rng.choice([-1, 0, 1, 2], p=[0.15, 0.35, 0.35, 0.15]))
        for _ in range(abs(steps)):
            arr = _thicken(arr, steps)
        out[i] = prepare_digit(arr)
    return out


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sample's training and test split, images re-prepared like drawn digits."""
    from neuralstudio.ml.data import load_dataset

    ds = load_dataset(DATASET)
    return (np.asarray(ds.x_train, np.float32), np.asarray(ds.y_train).astype(np.int64).ravel(),
            np.asarray(ds.x_test, np.float32), np.asarray(ds.y_test).astype(np.int64).ravel())


def build() -> object:
    """The template's network, compiled for integer labels."""
    import keras

    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.builder import build_model

    design = load_template(TEMPLATE)
    model = build_model(design.graph)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def drawn_digit_accuracy(model: object) -> dict[str, object]:
    """Accuracy on the synthetic hand-drawn digits, drawn through mouse events on the real canvas."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT / "tests" / "ui"))
    from digit_strokes import evaluate_on_canvas  # the generator the tests and benchmark use

    return evaluate_on_canvas(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="passes over the augmented training set (default 6)")
    parser.add_argument("--copies", type=int, default=2, help="augmented copies of each training image (default 2)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "digits.keras")
    parser.add_argument("--skip-drawn", action="store_true", help="do not measure accuracy on drawn digits")
    args = parser.parse_args(argv)

    import keras

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test = load_data()
    prepared_train = np.stack([prepare_digit(im) for im in x_train])
    xs = [prepared_train] + [augment(x_train, rng) for _ in range(args.copies)]
    x_all = np.concatenate(xs)[..., None]
    y_all = np.concatenate([y_train] * len(xs))
    x_test_p = np.stack([prepare_digit(im) for im in x_test])[..., None]
    t_data = time.perf_counter() - t0
    print(f"data: {len(x_all)} training images ({args.copies} augmented copies), {len(x_test_p)} test, {t_data:.0f} s")

    model = build()
    t1 = time.perf_counter()
    model.fit(x_all, y_all, batch_size=64, epochs=args.epochs, validation_data=(x_test_p, y_test), verbose=2,
              callbacks=[keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)])
    t_train = time.perf_counter() - t1
    _, test_acc = model.evaluate(x_test_p, y_test, verbose=0)
    # The test split as it comes (not re-prepared), for comparison with other models trained in the app.
    _, raw_test_acc = model.evaluate(np.asarray(x_test)[..., None], y_test, verbose=0)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Ship the network without its optimizer state (Adam's two slots would triple the file):
    # an uncompiled copy with the same weights is all the Predict workspace needs (clone_model would
    # copy the compile state too, optimizer included).
    shipped = keras.Model.from_config(model.get_config())
    shipped.set_weights(model.get_weights())
    with atomic_path(args.out) as tmp:
        shipped.save(tmp)
    size = args.out.stat().st_size
    print(f"saved {args.out} ({size / 1e6:.2f} MB); test accuracy {test_acc:.4f} (raw split {raw_test_acc:.4f})")

    metrics: dict[str, object] = {
        "template": TEMPLATE,
        "dataset": DATASET,
        "train_images": int(len(x_train)),
        "augmented_copies": args.copies,
        "epochs": args.epochs,
        "seed": args.seed,
        "params": int(model.count_params()),
        "file_bytes": int(size),
        "train_seconds": round(t_train, 1),
        "test_images": int(len(y_test)),
        "test_accuracy_prepared": round(float(test_acc), 4),
        "test_accuracy_raw": round(float(raw_test_acc), 4),
        "keras": keras.__version__,
    }
    if not args.skip_drawn:
        from neuralstudio.ml.model_files import load_keras_model

        drawn = drawn_digit_accuracy(load_keras_model(args.out))
        metrics["drawn_digits"] = {k: v for k, v in drawn.items() if k in ("accuracy", "total", "per_digit")}
        print(f"drawn digits: {drawn['accuracy']:.4f} overall ({drawn['total']} drawings)")
        for digit, acc in drawn["per_digit"].items():
            print(f"  {digit}: {acc:.3f}")
    metrics_path = args.out.with_name(args.out.stem + ".metrics.json")
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
