"""``neuralstudio predict MODEL IMAGE... [--json]``: classify pictures of digits (or other 28x28 things).

Each image goes through the same MNIST-style preparation as a digit drawn in the
Predict workspace (dark-on-light pictures are inverted), then the model's
prediction is printed as the model gives it (``ml/inference.py``): the
probabilities of a softmax output, the activations of a sigmoid output (not
probabilities, and said so), the softmax of a linear output (said so).  Classes
are named by the class names stored with the model, else numbered 0..K-1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ORDER = 40


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict the digit (or class) in PNG/JPEG images with a model",
        description="Predict the class of each image with a Keras model (.keras/.h5) whose input takes a 28x28 "
        "grey image. Images are prepared like MNIST: cropped to the ink, scaled to 20 px, centred by mass. "
        "Softmax outputs are printed as probabilities, sigmoid outputs as activations, linear outputs as their "
        "softmax; classes are named by the names stored with the model (else 0, 1, 2...).",
    )
    p.add_argument("model", help="a .keras or .h5 model file, or 'bundled' for the pretrained digit model")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG pictures of one digit each")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--trust", action="store_true",
                   help="load a model that contains Python code (Lambda layers); only for files you made yourself")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.paths import bundled_models_dir
    from neuralstudio.ml.preprocess import prepare_image_file

    prepared = [(path, prepare_image_file(path)) for path in args.images]  # bad images fail before Keras loads

    from neuralstudio.ml.inference import Predictor
    from neuralstudio.ml.model_files import load_keras_model
    from neuralstudio.ml.model_metadata import read_classes

    model_path = bundled_models_dir() / "digits.keras" if args.model == "bundled" else Path(args.model)
    model = load_keras_model(model_path, trusted=args.trust)
    classes = read_classes(model_path)
    predictor = Predictor(model, class_names=classes.names if classes else None, warm_up=False)

    import numpy as np

    rows = predictor.predict_batch(np.stack([x for _, x in prepared]))
    predictions = [predictor.prediction(v) for v in rows]
    results = [{"image": str(path), **p.as_dict()} for (path, _), p in zip(prepared, predictions)]
    kind = predictor.kind
    if args.json:
        print(json.dumps({"model": str(model_path), "output": kind.mode, "value_label": kind.value_label,
                          "output_activation": kind.activation, "class_names": list(predictor.class_names),
                          "trained_on": classes.data if classes else None, "results": results},
                         indent=2, ensure_ascii=False))
        return 0
    names = list(predictor.class_names)
    width = max(len(r["image"]) for r in results)
    cw = max(5, *(len(n) for n in names)) if len(names) <= 50 else max(5, *(len(p.label) for p in predictions))
    score = "confidence" if kind.is_probability else "activation"
    shown = _value_header(kind.value_label, names)
    print(f"{'image':<{width}}  {'class':>{cw}}  {score:>10}  {shown}")
    for r, p in zip(results, predictions):
        sure = "" if p.sure else " (not sure)"
        value = f"{p.score:>10.1%}" if kind.is_probability else f"{p.score:>10.3f}"
        print(f"{r['image']:<{width}}  {p.label:>{cw}}  {value}  {_values_text(p.values, names)}{sure}")
    print()
    print(kind.description)
    if classes is None:
        print(f"The model stores no class names: its {len(names)} classes are numbered 0-{len(names) - 1}.")
    elif classes.data:
        print(f"Classes of {classes.data}: {', '.join(names[:10])}{', ...' if len(names) > 10 else ''}")
    return 0


def _value_header(value_label: str, names: list[str]) -> str:
    """"probabilities 0-9", or "output activation (sigmoid): cat dog" for named classes."""
    if names == [str(i) for i in range(len(names))]:
        return f"{value_label} {names[0]}-{names[-1]}" if len(names) <= 10 else f"{value_label} (top 5)"
    if len(names) <= 10:
        return f"{value_label}: " + " ".join(names)
    return f"{value_label} (top 5)"


def _values_text(values: Any, names: list[str]) -> str:
    """All the values for up to ten classes, else the five largest with their class names."""
    if len(values) <= 10:
        return " ".join(f"{v:.2f}" for v in values)
    top = sorted(range(len(values)), key=lambda i: -float(values[i]))[:5]
    return " ".join(f"{names[i]}={float(values[i]):.2f}" for i in top)
