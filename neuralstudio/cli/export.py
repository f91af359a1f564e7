"""``neuralstudio export MODEL --format FORMAT -o PATH``: export a trained model and verify the result."""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

from neuralstudio.core.errors import UserError
from neuralstudio.ml.export_formats import (
    DEFAULT_FORMAT,
    FORMATS,
    QUANTIZE_CHOICES,
    format_names,
    get_format,
    quantizable_formats,
)

ORDER = 60


DESCRIPTION = (
    "Export a trained model to another format. The result is checked with its own runtime against the Keras model "
    "on real MNIST images before it is moved into place; an export that does not match fails with exit status 1 "
    "and leaves any previous file untouched."
)


# The help and choices come from the export-format registry, which imports neither Keras nor numpy
# (a contract in pyproject.toml), so `neuralstudio --help` stays fast; Keras is imported inside run().
def format_help() -> str:
    """The ``--format`` help: the registry's format names, the default named."""
    return f"the export format, one of: {format_names()} (described below; default: {DEFAULT_FORMAT})"


def formats_epilog(width: int | None = None) -> str:
    """The list after the options: each registry format, what it is, what reads it, what it needs.

    Args:
        width: the line width to wrap at; by default the terminal's, as argparse wraps the rest.
    """
    width = width or max(60, shutil.get_terminal_size().columns - 2)
    name_width = max(len(name) for name in FORMATS)
    lines = ["formats:"]
    for f in FORMATS.values():
        text = f"{f.label}{', the default' if f.name == DEFAULT_FORMAT else ''} - {f.use}."
        if f.extra:
            text += f" Needs {f.install_hint()}."
        lines.append(textwrap.fill(text, width, initial_indent=f"  {f.name:<{name_width}}  ",
                                   subsequent_indent=" " * (name_width + 4), break_on_hyphens=False))
    return "\n".join(lines)


def register(sub: Any) -> None:
    width = max(60, shutil.get_terminal_size().columns - 2)
    p = sub.add_parser(
        "export",
        help="export a trained model (Keras, SavedModel, LiteRT, ONNX, Python code...) and verify it",
        description=textwrap.fill(DESCRIPTION, width),
        epilog=formats_epilog(width),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the epilog keeps one format a paragraph
    )
    p.add_argument("model", metavar="MODEL", help="the trained model file (.keras or .h5)")
    # Not argparse choices: get_format accepts any case, and its message lists the formats (exit status 1).
    p.add_argument("--format", "-f", default=DEFAULT_FORMAT, metavar="FORMAT", help=format_help())
    p.add_argument("-o", "--output", metavar="PATH",
                   help="the file or folder to write (default: beside MODEL, named after it)")
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES,
                   help=f"{quantizable_formats()} only: dynamic-range quantization (int8 weights, about 4x smaller)")
    p.add_argument("--trust", action="store_true",
                   help="open MODEL even if it contains code (Lambda layers); only for files you trust")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _design_for(model_path: Path) -> Any:
    """The design a NeuralStudio run trained (from its run.json beside the model), or None."""
    from neuralstudio.core.runs import RUN_FILE

    run_file = model_path.parent / RUN_FILE
    if not run_file.is_file():
        return None
    try:
        from neuralstudio.core.design import design_from_dict

        data = json.loads(run_file.read_text(encoding="utf-8"))
        design = data.get("design") if isinstance(data, dict) else None
        return design_from_dict(design, str(run_file)) if design else None
    except (OSError, ValueError, UserError):
        return None  # the design is rebuilt from the model instead


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.formatting import human_size
    from neuralstudio.ml.export import export_model
    from neuralstudio.ml.model_metadata import load_model as load_keras_model  # remembers its class names

    fmt = get_format(args.format)  # a bad name fails before the (slow) model load
    if args.quantize and args.quantize not in fmt.quantize:
        raise UserError(f"--quantize applies to {quantizable_formats()} only, not {fmt.name}.")
    model_path = Path(args.model)
    out = Path(args.output) if args.output else fmt.default_output(model_path, args.quantize)
    if args.trust:
        print("warning: --trust: code inside this model file may run on this computer.")
    model = load_keras_model(model_path, trusted=args.trust)
    design = _design_for(model_path) if fmt.uses_design else None
    started = time.perf_counter()
    result = export_model(model, out, fmt.name, quantize=args.quantize, design=design, trusted=args.trust)
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({"format": result.format, "path": str(result.path), "quantize": result.quantize,
                          "files": [str(f) for f in result.files], "size_bytes": result.size_bytes,
                          "seconds": round(seconds, 2), "verification": result.report.to_dict()}, indent=2))
        return 0
    what = fmt.label + (" (dynamic-range quantized)" if result.quantize else "")
    print(f"Exported {what} to {result.path} ({human_size(result.size_bytes)}, {seconds:.1f} s)")
    if fmt.folder:
        for f in result.files:
            print(f"  {f.relative_to(result.path)}")
    print(f"Verification {result.report.summary()}")
    return 0
