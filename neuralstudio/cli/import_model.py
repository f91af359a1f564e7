"""``neuralstudio import MODEL -o net.nsd``: turn a Keras model file into an editable design.

The model file is opened safely (a Lambda layer is refused unless ``--trust``
is given), its layer graph becomes a design with an automatic top-to-bottom
layout, and the design is written atomically.  Weights are not part of a design.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="turn a Keras model (.keras/.h5) into an editable design (.nsd)",
        description="Read the architecture of a Keras model file and save it as a NeuralStudio design that the "
        "editor can open. Only the architecture is kept, not the trained weights.",
    )
    p.add_argument("model", help="a .keras or .h5 Keras model file")
    p.add_argument("-o", "--output", help="the design file to write (default: MODEL with the .nsd extension)")
    p.add_argument("--trust", action="store_true",
                   help="open a model that contains Python code (Lambda layers); only for files you made yourself")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.errors import UserError
    from neuralstudio.ml.importer import import_model
    from neuralstudio.ml.model_files import load_keras_model

    src = Path(args.model)
    out = Path(args.output) if args.output else src.with_suffix(".nsd")
    if out.suffix.lower() != ".nsd":
        raise UserError(f"{out.name} does not end in .nsd: give a design file name such as net.nsd.")
    model = load_keras_model(src, trusted=args.trust)
    design = import_model(model, name=src.stem)
    design.save(out)
    n = len(design.graph)
    print(f"wrote {out} ({n} layer{'s' if n != 1 else ''}, {model.count_params():,} parameters; weights are not "
          "part of a design)")
    return 0
