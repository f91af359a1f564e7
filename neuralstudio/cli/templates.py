"""``neuralstudio templates`` lists the built-in templates; ``neuralstudio new`` copies one to a design file.

Both commands are pure file work (no Keras import), so they answer at once.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from neuralstudio.core.errors import UserError
from neuralstudio.core.templates import DEFAULT_TEMPLATE, list_templates, load_template

ORDER = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "templates",
        help="list the built-in network templates",
        description="List the built-in network templates (the default is marked). "
        "Start from one with: neuralstudio new TEMPLATE -o net.nsd",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="also print each template's description")
    p.set_defaults(func=run)

    n = sub.add_parser(
        "new",
        help="start a design file from a template",
        description="Write a new design file from a built-in template (see: neuralstudio templates).",
    )
    n.add_argument("template", nargs="?", default=DEFAULT_TEMPLATE,
                   help=f"template name (default: {DEFAULT_TEMPLATE})")
    n.add_argument("-o", "--output", required=True, metavar="FILE", help="the design file to write (.nsd)")
    n.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    n.set_defaults(func=run_new)


def run(args: argparse.Namespace) -> int:
    """Print one line per template: name, title, and whether it is the default."""
    infos = list_templates()
    if not infos:
        raise UserError("No templates are installed: reinstall NeuralStudio.")
    width = max(len(i.name) for i in infos)
    for info in infos:
        mark = "  (default)" if info.is_default else ""
        print(f"{info.name:<{width}}  {info.title}{mark}")
        if args.verbose:
            print(textwrap.fill(info.description, width=100, initial_indent="    ", subsequent_indent="    "))
            print()
    print(f"\nStart from one with: neuralstudio new TEMPLATE -o net.nsd (default: {DEFAULT_TEMPLATE})")
    return 0


def run_new(args: argparse.Namespace) -> int:
    """Write the template to ``--output``; refuse to overwrite an existing file without ``--force``."""
    design = load_template(args.template)
    out = Path(args.output).expanduser()
    if out.is_dir():
        raise UserError(f"{out} is a folder: give a file name, e.g. {out / 'net.nsd'}.")
    if not out.suffix:
        out = out.with_name(out.name + ".nsd")
    if out.exists() and not args.force:
        raise UserError(f"{out} already exists: choose another name, or add --force to overwrite it.")
    if not out.parent.exists():
        raise UserError(f"The folder {out.parent} does not exist: create it first or choose another path.")
    try:
        design.save(out)
    except OSError as exc:
        raise UserError(f"{out} cannot be written: {exc.strerror or exc}.") from None
    print(f"Wrote {out} from the template {args.template!r} ({len(design.graph)} layers).")
    print("Open it in NeuralStudio, or see 'neuralstudio --help' for the commands that check and train it.")
    return 0

