"""``neuralstudio check FILE [--json]``: is this design (or model) buildable, and what is in it?

For a design (``.nsd``) every layer's output shape and parameter count is
printed, then the totals, then every problem with the layer it concerns; the
exit status is 1 when the design cannot be built, so scripts and CI can use it.
A Keras model file (``.keras``/``.h5``) is opened safely (a Lambda layer is
refused unless ``--trust`` is given) and summarised the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check a design (.nsd) or a Keras model (.keras/.h5): layers, shapes, parameters, problems",
        description="Build a design (or open a Keras model) and print every layer's output shape and parameter "
        "count, the totals, and every problem found, each with the layer it concerns. Exits with status 1 "
        "when the design cannot be built.",
    )
    p.add_argument("file", help="a .nsd design, or a .keras/.h5 model file")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--trust", action="store_true",
                   help="open a model that contains Python code (Lambda layers); only for files you made yourself")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.errors import UserError

    path = Path(args.file)
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5", ".hdf5"):
        from neuralstudio.ml.model_files import load_keras_model
        from neuralstudio.ml.summary import summarize_model

        summary = summarize_model(load_keras_model(path, trusted=args.trust))
    elif suffix == ".nsd" or (path.exists() and not path.is_dir()):
        from neuralstudio.core.design import load_design
        from neuralstudio.ml.summary import classes_of, summarize_graph

        design = load_design(path)
        if not len(design.graph):
            raise UserError(f"{path.name} has no layers: add an Input and some layers first.")
        summary = summarize_graph(design.graph, num_classes=classes_of(design.data), loss=design.training.loss)
    else:
        raise UserError(f"{path} does not exist: give a .nsd design or a .keras/.h5 model file.")
    return _print(summary, path, args.json)


def _print(summary, path: Path, as_json: bool) -> int:
    from neuralstudio.ml.summary import format_table

    status = 0 if summary.ok else 1
    if as_json:
        data = {"file": str(path), "ok": summary.ok, **summary.to_dict()}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return status
    print(format_table(summary))
    problems = summary.problem_dicts()
    if problems:
        errors = sum(1 for p in problems if p["severity"] == "error")
        warnings = len(problems) - errors
        print()
        print(f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}:")
        for p in problems:
            fix = f"  [fix: {p['fix']}]" if p["fix"] else ""
            print(f"  {p['severity']}: {p['message']}{fix}")
    if status:
        print(f"\n{path.name} cannot be built: fix the errors above.")
    else:
        print(f"\n{path.name} is OK.")
    return status
