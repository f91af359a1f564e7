"""``neuralstudio code net.nsd [-o train_net.py]``: the design as a Keras Python script.

The script builds the same model (``keras.Sequential`` for a plain chain, the
functional API otherwise) and, when run, trains it on MNIST with the design's
hyperparameters.  Without ``-o`` it is printed, so it can be piped or read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 35


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "code",
        help="print (or write) the Keras Python script for a design",
        description="Generate a readable Keras 3 script that builds the design's network and, when run, trains "
        "it on MNIST with the design's hyperparameters.",
    )
    p.add_argument("design", help="a .nsd design file")
    p.add_argument("-o", "--output", help="write the script to this .py file instead of printing it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.atomic import atomic_write_text
    from neuralstudio.core.design import load_design
    from neuralstudio.core.errors import UserError
    from neuralstudio.ml.codegen import generate_code

    design = load_design(args.design)
    code = generate_code(design)
    if not args.output:
        sys.stdout.write(code)
        return 0
    out = Path(args.output)
    if out.suffix.lower() != ".py":
        raise UserError(f"{out.name} does not end in .py: give a Python file name such as train_net.py.")
    try:
        atomic_write_text(out, code)
    except OSError as exc:  # a full disk, a read-only folder: say which file and why, not a traceback
        from neuralstudio.cli import os_error_message

        raise UserError(os_error_message(exc, out, writing=True)) from None
    print(f"wrote {out}")
    return 0
