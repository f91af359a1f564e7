"""``neuralstudio backends [DESIGN]``: the Keras backends, which one is in use, and which trains a design fastest.

Without a design it only lists (no Keras import: it answers at once): each backend, installed or with its
install line, what works differently on it, the one in use and where that was chosen. With a design file or a
template name it also measures the design on every installed backend, each in a child process of its own
(``ml/backend_speed.py``: Keras fixes its backend per process), and prints the table and one sentence saying
which to choose. ``--json`` prints one JSON object instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ORDER = 72

_SOURCES = {"--backend": "chosen with --backend", "KERAS_BACKEND": "from the KERAS_BACKEND variable",
            "settings": "chosen in the app's Settings > Keras Backend", "default": "the default"}
_DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"), "jax": ("jax",),
                  "torch": ("torch",)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backends",
        help="list the Keras backends (TensorFlow, JAX, PyTorch) and measure which trains a design fastest",
        description="List the Keras backends: installed or how to install them, what works differently on each, "
        "the one in use and where it was chosen. Given a design (.nsd) or a template name, also measure how many "
        "samples per second it trains on each installed backend (a few real training steps on zeros, each "
        "backend in a process of its own) and say which to choose.",
    )
    p.add_argument("design", nargs="?", metavar="DESIGN.nsd|TEMPLATE",
                   help="a design file or a template name (see: neuralstudio templates) to measure")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timeout", type=float, default=180, metavar="SECONDS",
                   help="the most one backend's measurement may take, its start included (default: 180)")
    p.add_argument("--measure-child", action="store_true", help=argparse.SUPPRESS)  # a frozen app's child
    p.set_defaults(func=run)


def resolve_design(arg: str) -> Any:
    """A design from a file path, else from the template of that name.

    A name that looks like a path (a ``.nsd`` suffix, a folder separator) or names an existing file is read as
    a file, so that a missing file is said to be missing rather than "no such template".
    """
    from neuralstudio.core.design import load_design
    from neuralstudio.core.templates import load_template

    path = Path(arg)
    if path.exists() or arg.lower().endswith(".nsd") or any(sep in arg for sep in ("/", "\\")):
        return load_design(path)
    return load_template(arg)


def _version(name: str) -> str:
    for dist in _DISTRIBUTIONS[name]:
        try:
            return metadata.version(dist).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
    return ""


def listing(flag: str | None) -> dict[str, Any]:
    """What the backends are here, without importing Keras: for the text listing and ``--json``."""
    from neuralstudio.ml import backends
    from neuralstudio.ml.backend_speed import capability_notes

    choice = backends.requested(flag)
    rows = []
    for name in backends.BACKENDS:
        ok = backends.installed(name)
        rows.append({"name": name, "label": backends.label(name), "installed": ok,
                     "version": _version(name) if ok else "", "install": backends.INSTALL[name],
                     "in_use": name == choice.name, "notes": capability_notes(name)})
    return {"backend": choice.name, "source": choice.source, "saved": backends.saved_choice(), "backends": rows}


def format_listing(info: dict[str, Any]) -> str:
    from neuralstudio.ml.backends import label

    lines = [f"Keras backend in use: {label(info['backend'])} ({_SOURCES.get(info['source'], info['source'])})."]
    rows = info["backends"]
    names = [f"{r['label']} {r['version']}".strip() for r in rows]
    width = max(len(n) for n in names)
    for r, name in zip(rows, names, strict=True):
        state = "installed" if r["installed"] else f"not installed: {r['install']}"
        mark = "*" if r["in_use"] else " "
        notes = f"  ({'; '.join(r['notes'])})" if r["notes"] and r["installed"] else ""
        lines.append(f"  {mark} {name.ljust(width)}  {state}{notes}")
    saved = label(info["saved"]) if info["saved"] else "none"
    lines.append(f"Choose with --backend NAME, KERAS_BACKEND=NAME or the app's Settings > Keras Backend (saved there: "
                 f"{saved}). Measure a design on each: neuralstudio backends DESIGN.nsd")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.measure_child:
        from neuralstudio.ml.backend_speed import child_main

        return child_main()
    from neuralstudio.core.errors import UserError
    from neuralstudio.ml import backends
    from neuralstudio.ml.backend_speed import Comparison, format_table, suggestion

    info = listing(getattr(args, "backend", None))
    if not args.design:
        print(json.dumps(info, sort_keys=True) if args.json else format_listing(info))
        return 0
    design = resolve_design(args.design)
    if not len(design.graph):
        raise UserError(f"{args.design} has no layers: add an Input and some layers first.")
    names = [b for b in backends.BACKENDS if backends.installed(b)]
    progress = sys.stderr.isatty() and not args.json
    if progress:
        print(f"Measuring {design.name!r} (batch {design.training.batch_size}) on "
              f"{', '.join(backends.label(b) for b in names)}: each starts a process of its own "
              "(Keras fixes its backend per process), half a minute or more each.", file=sys.stderr, flush=True)

    def heard(s: Any) -> None:
        if progress:
            what = f"{s.samples_per_second:,.0f} samples/s" if s.ok else s.error
            print(f"  {backends.label(s.backend)}: {what} ({s.seconds:.0f} s)", file=sys.stderr, flush=True)

    comparison = Comparison(design, backends.BACKENDS, timeout_s=args.timeout)
    try:
        speeds = comparison.run(heard)
    except KeyboardInterrupt:
        comparison.cancel()  # the child measuring now must not outlive the command
        raise
    current = info["backend"]
    sentence = suggestion(speeds, current, how="use it with --backend {name} (or the app's Settings > Keras Backend)")
    if args.json:
        print(json.dumps({**info, "design": design.name, "speeds": [s.to_dict() for s in speeds],
                          "suggestion": sentence}, sort_keys=True))
    else:
        print(format_listing(info))
        print()
        print(f"Training speed of {design.name!r} here (batch {design.training.batch_size}, a few steps on zeros):")
        print(format_table(speeds, current))
        print(sentence)
    return 0 if any(s.ok for s in speeds) else 1
