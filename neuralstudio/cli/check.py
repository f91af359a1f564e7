"""``neuralstudio check FILE [--data DATA] [--json]``: is this design (or model) buildable, and what is in it?

For a design (``.nsd``) every layer's output shape and parameter count is
printed, then the totals, then every problem with the layer it concerns; the
exit status is 1 when the design cannot be built, so scripts and CI can use it.
A Keras model file (``.keras``/``.h5``) is opened safely (a Lambda layer is
refused unless ``--trust`` is given) and summarised the same way.

A design is valid or not on its own: whether its output fits a data set is a
warning that names that data set (the design's own, ``--data``, or for a model
file the data it was trained on, else NeuralStudio's default data set), and
warnings never change the exit status.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ORDER = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check a design (.nsd) or a Keras model (.keras/.h5): layers, shapes, parameters, problems",
        description="Build a design (or open a Keras model) and print every layer's output shape and parameter "
        "count, the totals, and every problem found, each with the layer it concerns. Exits with status 1 "
        "when the design cannot be built; a mismatch with the data set is a warning.",
    )
    p.add_argument("file", help="a .nsd design, or a .keras/.h5 model file")
    p.add_argument("--data", help="compare the output with this data set (name or path) instead of the design's "
                   "own, or, for a model file, the data it was trained on")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--trust", action="store_true",
                   help="open a model that contains Python code (Lambda layers); only for files you made yourself")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.errors import UserError

    path = Path(args.file)
    suffix = path.suffix.lower()
    data_arg = getattr(args, "data", None)
    extra: dict[str, Any] = {}
    if suffix in (".keras", ".h5", ".hdf5"):
        from neuralstudio.ml.model_files import load_keras_model
        from neuralstudio.ml.model_metadata import read_classes
        from neuralstudio.ml.summary import summarize_model

        model = load_keras_model(path, trusted=args.trust)
        summary = summarize_model(model)
        stored = read_classes(path)
        extra["class_names"] = list(stored.names) if stored else None
        extra["trained_on"] = stored.data if stored else None
        if data_arg:
            data = _data_classes(data_arg)
        elif stored is not None:
            data = (f"its training data ({stored.data})" if stored.data else "its training data", len(stored.names))
        else:
            from neuralstudio.core.class_names import data_label
            from neuralstudio.ml.data import DEFAULT_SOURCE

            data = (f"{data_label(DEFAULT_SOURCE)} (the default data set; choose another with --data)",
                    _data_classes(DEFAULT_SOURCE)[1])
        summary.problems.extend(_model_output_problems(model, *data))
    elif suffix == ".nsd" or (path.exists() and not path.is_dir()):
        from neuralstudio.core.class_names import data_classes
        from neuralstudio.core.design import load_design
        from neuralstudio.ml.builder import analyze
        from neuralstudio.ml.summary import summarize_graph

        design = load_design(path)
        if not len(design.graph):
            raise UserError(f"{path.name} has no layers: add an Input and some layers first.")
        known = _data_classes(data_arg) if data_arg else data_classes(design.data)
        num_classes, data_name = (known[1], known[0]) if known else (None, None)
        loss = design.training.loss
        analysis = analyze(design.graph, build=True, num_classes=num_classes, loss=loss, data_name=data_name)
        summary = summarize_graph(design.graph, num_classes=num_classes, loss=loss, analysis=analysis)
    else:
        raise UserError(f"{path} does not exist: give a .nsd design or a .keras/.h5 model file.")
    return _print(summary, path, args.json, extra)


def _data_classes(spec: str) -> tuple[str, int]:
    """``(label, classes)`` of a data set: named ones are known, others are loaded (the user asked for them)."""
    from neuralstudio.core.class_names import data_label, known_data

    known = known_data(spec)
    if known is not None:
        return known.label, known.num_classes
    from neuralstudio.ml.data import load_dataset

    return data_label(spec), load_dataset(spec).num_classes


def _model_output_problems(model: Any, data_name: str, num_classes: int) -> list[Any]:
    """A warning when a loaded model's output does not give one value per class of the data."""
    from neuralstudio.ml.diagnose import class_count_problem

    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or len(outputs[0].shape) != 2 or outputs[0].shape[-1] is None:
        return []
    units = int(outputs[0].shape[-1])
    if units == num_classes or (units == 1 and num_classes == 2):  # one sigmoid unit is a binary classifier
        return []
    history = getattr(outputs[0], "_keras_history", None)
    layer = history[0] if history else None
    where = f"{layer.name} ({type(layer).__name__})" if layer is not None else None
    return [class_count_problem(None, units, num_classes, data_name, layer=where)]


def _print(summary: Any, path: Path, as_json: bool, extra: dict[str, Any] | None = None) -> int:
    from neuralstudio.ml.summary import format_table

    extra = extra or {}
    status = 0 if summary.ok else 1
    if as_json:
        data = {"file": str(path), "ok": summary.ok, **summary.to_dict(), **extra}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return status
    print(format_table(summary))
    if "class_names" in extra:
        names = extra["class_names"]
        if names:
            shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
            trained = f" (trained on {extra['trained_on']})" if extra.get("trained_on") else ""
            print(f"Classes:              {shown}{trained}")
        else:
            print("Classes:              not stored in the file (outputs are numbered 0, 1, 2...)")
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
    elif problems:
        print(f"\n{path.name} is OK (see the warnings above).")
    else:
        print(f"\n{path.name} is OK.")
    return status
