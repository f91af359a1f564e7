"""``neuralstudio devices``: what TensorFlow sees, and why a GPU is not used when it is not."""

from __future__ import annotations

import argparse
import json

ORDER = 70


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list the CPU/GPU devices TensorFlow sees and why a GPU is not used",
        description="List the devices TensorFlow sees. When no GPU is used, say why (no GPU, a CPU-only "
        "TensorFlow, missing CUDA libraries) and which install fixes it.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from neuralstudio.ml.devices import device_report

    report = device_report()
    if args.json:
        print(json.dumps(asdict(report), sort_keys=True))
    else:
        print(report.format())
    return 0
