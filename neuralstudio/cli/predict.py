"""``neuralstudio predict MODEL IMAGE... [--json]``: classify pictures of digits from the command line.

Each image goes through the same MNIST-style preparation as a digit drawn in the
Predict workspace (dark-on-light pictures are inverted), then the model's
prediction, confidence and ten probabilities are printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = 40


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict the digit in PNG/JPEG images with a model",
        description="Predict the digit in each image with a Keras model (.keras/.h5) whose input takes a 28x28 "
        "grey image. Images are prepared like MNIST: cropped to the ink, scaled to 20 px, centred by mass.",
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

    model_path = bundled_models_dir() / "digits.keras" if args.model == "bundled" else Path(args.model)
    predictor = Predictor(load_keras_model(model_path, trusted=args.trust), warm_up=False)

    import numpy as np

    probs = predictor.predict_batch(np.stack([x for _, x in prepared]))
    results = []
    for (path, _), p in zip(prepared, probs):
        digit = int(np.argmax(p))
        results.append({"image": str(path), "predicted": digit, "confidence": round(float(p[digit]), 6),
                        "probabilities": [round(float(v), 6) for v in p]})

    if args.json:
        print(json.dumps({"model": str(model_path), "results": results}, indent=2))
        return 0
    width = max(len(r["image"]) for r in results)
    print(f"{'image':<{width}}  digit  confidence  probabilities 0-9")
    for r in results:
        sure = "" if r["confidence"] >= 0.5 else " (not sure)"
        bars = " ".join(f"{v:.2f}" for v in r["probabilities"])
        print(f"{r['image']:<{width}}  {r['predicted']:>5}  {r['confidence']:>9.1%}  {bars}{sure}")
    return 0
