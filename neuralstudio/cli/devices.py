"""``neuralstudio devices``: the backend, what it sees, why a GPU is not used, and what works on each backend."""

from __future__ import annotations

import argparse
import json

ORDER = 70


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list the Keras backend's CPU/GPU devices and why a GPU is not used",
        description="List the devices the Keras backend (TensorFlow, JAX or PyTorch: --backend) sees. When no GPU "
        "is used, say why (no GPU, a CPU-only build, missing CUDA libraries) and which install fixes it on this "
        "platform.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (with the capability table)")
    p.add_argument("--capabilities", action="store_true",
                   help="also print what works on each backend (training, Predict, gradients, GPUs, export formats)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from neuralstudio.ml.backends import capability_table, format_capability_table
    from neuralstudio.ml.devices import device_report

    report = device_report()
    if args.json:
        print(json.dumps({**asdict(report), "capabilities": capability_table()}, sort_keys=True))
    else:
        print(report.format())
        if args.capabilities:
            print()
            print(format_capability_table())
    return 0
