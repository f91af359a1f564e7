"""``neuralstudio info MODEL``: what is inside a model file, and how it was trained."""

from __future__ import annotations

import argparse
import json
from typing import Any

ORDER = 55


def register(sub: Any) -> None:
    p = sub.add_parser(
        "info",
        help="show a model file's inputs, outputs, layers, parameters, Keras version and training history",
        description="Describe a model file (.keras or .h5): inputs and outputs, layers, parameters, file size, "
        "the Keras version that saved it and, for a model trained by NeuralStudio, its training history.",
    )
    p.add_argument("model", metavar="MODEL", help="the model file (.keras or .h5)")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.add_argument("--trust", action="store_true",
                   help="open MODEL even if it contains code (Lambda layers); only for files you trust")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.ml.model_info import model_info

    if args.trust and not args.json:
        print("warning: --trust: code inside this model file may run on this computer.")
    info = model_info(args.model, trusted=args.trust)
    print(json.dumps(info.to_dict(), indent=2) if args.json else info.format())
    return 0
