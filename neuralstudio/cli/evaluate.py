"""``neuralstudio evaluate model.keras --data ...``: loss, accuracy and the confusion matrix of a trained model.

The confusion matrix names the true classes by the data's class names and the
predicted ones by the names stored with the model (``ml/model_metadata.py``),
so that a model trained on other classes than the data's is seen at once.
One sentence names the pair the network confuses most (``ml/confusion.py``).

``--misclassified DIR`` writes every wrongly predicted image as a PNG named by
what it is and what the network said (``true4_pred9_conf0.97_idx1234.png``), with
``index.csv`` and ``index.json`` listing each one's three largest outputs, so that
the mistakes can be looked at in any image viewer or spreadsheet. The folder is
the user's: it is written only when it is empty or holds nothing but what an
earlier ``--misclassified`` wrote there (that export is then replaced); every file
is written atomically (``core/atomic.py``).

Predictions go through one traced function over batches (``ml/confusion.BatchPredictor``),
not ``model.predict`` (docs/ARCHITECTURE.md, "Traps").
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

ORDER = 46


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="loss, accuracy and confusion matrix of a trained model on a data set",
        description="Evaluate a trained Keras model on a data set's test split (or another split): prints the "
        "loss, the accuracy and the confusion matrix (rows: true class, columns: predicted class).",
    )
    p.add_argument("model", help="the .keras (or .h5) model file")
    p.add_argument("--data", default="mnist-sample", help="data set name or path (default: mnist-sample)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="which part of the data set to evaluate on (default: test)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--trust", action="store_true",
                   help="open a model that contains Python code (Lambda layers); only for files you made yourself")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--misclassified", metavar="DIR",
                   help="write every misclassified image to DIR as a PNG (true4_pred9_conf0.97_idx1234.png) with "
                        "index.csv and index.json (each image's three largest outputs); DIR must be empty, new, or "
                        "hold only an earlier --misclassified export, which is replaced")
    p.add_argument("--scale", type=int, default=1, metavar="N",
                   help="with --misclassified: draw each pixel as N x N pixels (default 1: 28x28 as the network "
                        "saw it; at most 16)")
    p.set_defaults(func=run)


def evaluate_model(model: Any, x: Any, y: Any, num_classes: int, batch_size: int = 256,
                   raw: Any = None) -> dict[str, Any]:
    """Loss (with the model's own compiled loss when it has one), accuracy and confusion matrix.

    Args:
        model: a ``keras.Model`` with one classification output.
        x: inputs already adapted to the model.
        y: integer labels.
        num_classes: rows/columns of the confusion matrix (at least the model's output width).
        batch_size: examples per prediction batch.
        raw: the model's outputs for ``x`` when already computed (:func:`run` predicts once for the scores and
            the confusion report), else predicted here.
    """
    import keras
    import numpy as np

    from neuralstudio.core.training_settings import one_hot_targets
    from neuralstudio.ml.data import one_hot

    if raw is None:
        from neuralstudio.ml.confusion import BatchPredictor

        raw = BatchPredictor(model, batch_size=batch_size).raw(x)
    probs = np.asarray(raw, dtype=np.float32)
    if probs.ndim != 2:
        from neuralstudio.core.errors import UserError

        raise UserError(f"The model's output has shape {probs.shape[1:]}: evaluate needs one score per class.")
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    units = probs.shape[1]
    loss_name = model.loss if isinstance(getattr(model, "loss", None), str) else "sparse_categorical_crossentropy"
    if units == 1:
        from neuralstudio.ml.inference import BINARY_LOGIT, output_kind

        threshold = 0.0 if output_kind(model).mode == BINARY_LOGIT else 0.5  # a logit's sigmoid is 0.5 at 0
        pred = (probs[:, 0] > threshold).astype(np.int64)
        y_t: Any = y.astype(np.float32).reshape(-1, 1)
        if loss_name not in ("binary_crossentropy", "mean_squared_error"):
            loss_name = "binary_crossentropy"
    else:
        pred = probs.argmax(axis=1)
        y_t = one_hot(y, units) if one_hot_targets(loss_name, units) else y
    loss = float(np.mean(keras.ops.convert_to_numpy(keras.losses.get(loss_name)(y_t, probs)))) * _loss_weight(model)
    k = max(num_classes, units, int(y.max()) + 1 if len(y) else 0)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    return {"loss": loss, "loss_function": loss_name, "accuracy": float(np.mean(pred == y)) if len(y) else None,
            "examples": int(len(y)), "confusion": confusion.tolist()}


def _loss_weight(model: Any) -> float:
    """The weight the model was compiled with for its one loss (a ``quadratic`` design's units/2), else 1."""
    try:
        weight = (model.get_compile_config() or {}).get("loss_weights")
    except (AttributeError, TypeError, ValueError):
        return 1.0
    return float(weight) if isinstance(weight, (int, float)) and not isinstance(weight, bool) else 1.0


def format_confusion(confusion: list[list[int]], names: list[str],
                     predicted_names: list[str] | None = None) -> str:
    """The confusion matrix as a text table, true classes down (``names``), predicted across (``predicted_names``,
    the model's own class names when they differ from the data's)."""
    k = len(confusion)
    cols = predicted_names if predicted_names is not None else names
    labels = [(names[i] if i < len(names) else str(i))[:10] for i in range(k)]
    across = [(cols[i] if i < len(cols) else str(i))[:10] for i in range(k)]
    w = max([len(str(v)) for row in confusion for v in row] + [len(s) for s in across] + [1])
    lw = max(len(s) for s in labels) if labels else 1
    lines = ["(rows: true class, columns: predicted class)"]
    lines.append(f"{'':>{lw}} " + " ".join(f"{s:>{w}}" for s in across))
    for i, row in enumerate(confusion):
        lines.append(f"{labels[i]:>{lw}} " + " ".join(f"{v:>{w}}" for v in row))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from neuralstudio.core.errors import UserError
    from neuralstudio.ml.data import adapt_inputs, load_dataset
    from neuralstudio.ml.model_files import load_keras_model
    from neuralstudio.ml.model_metadata import read_classes

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1.")
    if not 1 <= args.scale <= MAX_SCALE:
        raise UserError(f"--scale must be between 1 and {MAX_SCALE}.")
    out_dir = Path(args.misclassified).expanduser() if args.misclassified else None
    if out_dir is not None:
        check_misclassified_folder(out_dir)  # before the model loads: a wrong folder is said at once
    model = load_keras_model(args.model, trusted=args.trust, compile=True)
    ds = load_dataset(args.data)
    if isinstance(model.input_shape, list):
        raise UserError("The model has several inputs: evaluate works on models with one image input.")
    parts = []
    if args.split in ("train", "all"):
        parts.append((ds.x_train, ds.y_train))
    if args.split in ("test", "all"):
        if ds.x_test is None or ds.y_test is None or not len(ds.x_test):
            raise UserError(f"The data set {args.data!r} has no test split: use --split train.")
        parts.append((ds.x_test, ds.y_test))
    images = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    x = adapt_inputs(images, tuple(model.input_shape[1:]))
    from neuralstudio.ml.confusion import BatchPredictor, report_from_values

    predictor = BatchPredictor(model, batch_size=args.batch_size)
    raw = predictor.raw(x)
    scores = evaluate_model(model, x, y, ds.num_classes, args.batch_size, raw=raw)
    stored = read_classes(args.model)
    data_names = list(ds.class_names)
    report = report_from_values(predictor.values(raw), y, data_names, images=images,
                                is_probability=predictor.kind.is_probability, value_label=predictor.kind.value_label)
    pair = report.worst_pair()
    scores["worst_pair"] = pair.as_dict() if pair is not None else None
    scores["worst_pair_sentence"] = report.worst_pair_sentence()
    model_names = list(stored.names) if stored else None
    note = _names_note(model_names, data_names, stored.data if stored else None)
    written = None
    if out_dir is not None:
        written = write_misclassified(report, out_dir, scale=args.scale,
                                      about={"model": str(args.model), "data": args.data, "split": args.split})
    if args.json:
        extra = {"misclassified": {"folder": str(out_dir), "images": written}} if written is not None else {}
        print(json.dumps({"model": str(args.model), "data": args.data, "split": args.split,
                          "class_names": data_names, "model_class_names": model_names,
                          "trained_on": stored.data if stored else None, "class_names_note": note, **scores,
                          **extra}, sort_keys=True, ensure_ascii=False))
        return 0
    print(f"{args.model} on {args.data} ({args.split}, {scores['examples']:,} examples)")
    print(f"loss      {scores['loss']:.4f}  ({scores['loss_function']})")
    print(f"accuracy  {scores['accuracy']:.2%}")
    if note:
        print(note)
    print(scores["worst_pair_sentence"])
    print()
    print(format_confusion(scores["confusion"], data_names, model_names if note else None))
    if written is not None:
        print()
        print(f"Wrote {written:,} misclassified image(s) to {out_dir} (listed in index.csv and index.json)."
              if written else f"No misclassified images: {out_dir} holds only index.csv and index.json.")
    return 0


# ------------------------------------------------------------------------------- --misclassified DIR
#: the largest --scale (a 28x28 image drawn as 448x448)
MAX_SCALE = 16
#: the files an export writes: the PNGs, the two indexes, and temporary files of an interrupted write
_PNG_NAME = re.compile(r"true[0-9A-Za-z-]+_pred[0-9A-Za-z-]+_conf(-?[0-9]+\.[0-9]{2}|nan)_idx[0-9]+\.png")
INDEX_FILES = ("index.csv", "index.json")
_SHOWN_OTHERS = 5


def _is_export_file(name: str) -> bool:
    from neuralstudio.core.atomic import is_partial_file

    return name in INDEX_FILES or bool(_PNG_NAME.fullmatch(name)) or is_partial_file(name)


def check_misclassified_folder(folder: Path) -> None:
    """Refuse a folder that is a file or holds anything --misclassified did not write (the user's own files).

    Raises:
        UserError: naming the folder and up to five of the other files; nothing has been written.
    """
    from neuralstudio.core.errors import UserError

    if folder.exists() and not folder.is_dir():
        raise UserError(f"--misclassified {folder}: that is a file, not a folder: give a new or empty folder.")
    if not folder.exists():
        return
    try:
        others = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
                        if p.is_dir() or not _is_export_file(p.name))
    except OSError as exc:
        raise UserError(f"--misclassified {folder}: the folder cannot be read ({exc.strerror or exc}).") from None
    if others:
        shown = ", ".join(others[:_SHOWN_OTHERS]) + (f" and {len(others) - _SHOWN_OTHERS} more"
                                                      if len(others) > _SHOWN_OTHERS else "")
        raise UserError(f"--misclassified {folder}: the folder holds files that an earlier --misclassified did not "
                        f"write ({shown}); they are left alone, and nothing was written. Give a new or empty folder.")


def _safe(name: str, k: int) -> str:
    """A class name as it may appear in a file name (letters, digits and '-'; the number when nothing is left)."""
    text = re.sub(r"[^0-9A-Za-z-]+", "-", name).strip("-")[:24]
    return text or str(k)


def misclassified_file_name(report: Any, index: int) -> str:
    """``true4_pred9_conf0.97_idx1234.png`` for example ``index`` of ``report``."""
    import math

    t, p = int(report.y_true[index]), int(report.y_pred[index])
    c = float(report.confidence[index])
    conf = f"{c:.2f}" if math.isfinite(c) else "nan"
    return f"true{_safe(report.name(t), t)}_pred{_safe(report.name(p), p)}_conf{conf}_idx{index}.png"


def write_misclassified(report: Any, folder: Path, *, scale: int = 1, about: dict[str, Any] | None = None) -> int:
    """Write the misclassified examples of ``report`` into ``folder``; return how many were written.

    Each image is a PNG (grey, or colour for colour data) of the example as the network saw it, ``scale`` times
    larger with square pixels; examples that are no image (a CSV row of a non-square length) get a line in the
    indexes but no PNG. PNGs of an earlier export that this one does not write again are removed (only those:
    :func:`check_misclassified_folder` refused any other file first). Every file is written atomically.
    """
    import numpy as np
    from PIL import Image

    from neuralstudio.core.atomic import atomic_path, atomic_write_text
    from neuralstudio.ml.data.preview import thumbnail_pixels

    check_misclassified_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    written: set[str] = set()
    for i in report.misclassified():
        i = int(i)
        picture = report.image(i)
        pixels = thumbnail_pixels(picture) if picture is not None else None
        name = ""
        if pixels is not None:
            if scale > 1:
                pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
            name = misclassified_file_name(report, i)
            with atomic_path(folder / name) as tmp:
                Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG")
            written.add(name)
        t, p = int(report.y_true[i]), int(report.y_pred[i])
        rows.append({"file": name, "index": i, "true": t, "true_name": report.name(t), "predicted": p,
                     "predicted_name": report.name(p), "confidence": _rounded(report.confidence[i]),
                     "top": [{"class": int(c), "name": report.name(int(c)), "value": _rounded(v)}
                             for c, v in zip(report.top_classes[i], report.top_values[i])]})
    for old in folder.iterdir():  # an earlier export's images that this one did not write again
        if old.is_file() and _PNG_NAME.fullmatch(old.name) and old.name not in written:
            old.unlink()
    atomic_write_text(folder / "index.csv", _index_csv(rows))
    atomic_write_text(folder / "index.json", json.dumps(
        {**(about or {}), "examples": report.examples, "accuracy": report.accuracy, "misclassified": len(rows),
         "value_label": report.value_label, "class_names": list(report.class_names),
         "worst_pair_sentence": report.worst_pair_sentence(), "confusion": report.counts.tolist(), "images": rows},
        indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return len(written)


def _rounded(v: Any) -> float | None:
    import math

    f = float(v)
    return round(f, 6) if math.isfinite(f) else None


def _index_csv(rows: list[dict[str, Any]]) -> str:
    """One line per misclassified example: file, index, true and predicted class, confidence, the top outputs."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    tops = max((len(r["top"]) for r in rows), default=3)
    w.writerow(["file", "index", "true", "true_name", "predicted", "predicted_name", "confidence",
                *[f"top{j + 1}_{what}" for j in range(tops) for what in ("name", "value")]])
    for r in rows:
        w.writerow([r["file"], r["index"], r["true"], r["true_name"], r["predicted"], r["predicted_name"],
                    r["confidence"], *[x for t in r["top"] for x in (t["name"], t["value"])]])
    return buf.getvalue()


def _names_note(model_names: list[str] | None, data_names: list[str], trained_on: str | None) -> str:
    """A line when the model was trained on classes named otherwise than the data's (empty when they agree)."""
    if model_names is None or model_names == data_names[: len(model_names)] or data_names == model_names[
            : len(data_names)]:
        return ""
    where = f" ({trained_on})" if trained_on else ""
    shown = ", ".join(model_names[:6]) + (", ..." if len(model_names) > 6 else "")
    data = ", ".join(data_names[:6]) + (", ..." if len(data_names) > 6 else "")
    return (f"note: the model was trained on other classes{where}: {shown}; the data's are {data}. Its "
            "predictions are counted by class number.")
