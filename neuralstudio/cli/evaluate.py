"""``neuralstudio evaluate model.keras --data ...``: loss, accuracy and the confusion matrix of a trained model.

The confusion matrix names the true classes by the data's class names and the
predicted ones by the names stored with the model (``ml/model_metadata.py``),
so that a model trained on other classes than the data's is seen at once.
"""

from __future__ import annotations

import argparse
import json
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
    p.set_defaults(func=run)


def evaluate_model(model: Any, x: Any, y: Any, num_classes: int, batch_size: int = 256) -> dict[str, Any]:
    """Loss (with the model's own compiled loss when it has one), accuracy and confusion matrix.

    Args:
        model: a ``keras.Model`` with one classification output.
        x: inputs already adapted to the model.
        y: integer labels.
        num_classes: rows/columns of the confusion matrix (at least the model's output width).
        batch_size: examples per prediction batch.
    """
    import keras
    import numpy as np

    from neuralstudio.ml.data import one_hot

    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
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
        y_t = one_hot(y, units) if loss_name in ("categorical_crossentropy", "mean_squared_error",
                                                 "binary_crossentropy") else y
    loss = float(np.mean(keras.ops.convert_to_numpy(keras.losses.get(loss_name)(y_t, probs))))
    k = max(num_classes, units, int(y.max()) + 1 if len(y) else 0)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    return {"loss": loss, "loss_function": loss_name, "accuracy": float(np.mean(pred == y)) if len(y) else None,
            "examples": int(len(y)), "confusion": confusion.tolist()}


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
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    x = adapt_inputs(x, tuple(model.input_shape[1:]))
    scores = evaluate_model(model, x, y, ds.num_classes, args.batch_size)
    stored = read_classes(args.model)
    data_names = list(ds.class_names)
    model_names = list(stored.names) if stored else None
    note = _names_note(model_names, data_names, stored.data if stored else None)
    if args.json:
        print(json.dumps({"model": str(args.model), "data": args.data, "split": args.split,
                          "class_names": data_names, "model_class_names": model_names,
                          "trained_on": stored.data if stored else None, "class_names_note": note, **scores},
                         sort_keys=True, ensure_ascii=False))
        return 0
    print(f"{args.model} on {args.data} ({args.split}, {scores['examples']:,} examples)")
    print(f"loss      {scores['loss']:.4f}  ({scores['loss_function']})")
    print(f"accuracy  {scores['accuracy']:.2%}")
    if note:
        print(note)
    print()
    print(format_confusion(scores["confusion"], data_names, model_names if note else None))
    return 0


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
