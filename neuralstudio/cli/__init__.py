"""The ``neuralstudio`` command line.

Each sub-command is a module in this package that defines ``register(sub)``
(adding its parser and ``set_defaults(func=run)``) and an optional ``ORDER``
for the help listing.  Command modules import Keras inside ``run`` so that
``neuralstudio --help`` and the GUI start stay fast.  With no command the
desktop app opens.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from neuralstudio import __version__
from neuralstudio.core.errors import UserError


def _command_modules() -> list:
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "register"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 50), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuralstudio",
        description="Design, train and explore neural networks. With no command, the desktop app opens.",
    )
    parser.add_argument("--version", action="version", version=f"NeuralStudio {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check headless that this installation works (templates, data, bundled model, "
                             "prediction, main window), print a report and exit (0 = all passed)")
    parser.add_argument("--install-desktop", action="store_true",
                        help="add NeuralStudio to your desktop menu with its icon and open .nsd files with it "
                             "(Linux, current user), then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 user error, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.self_test:
            from neuralstudio.self_test import run_self_test

            return run_self_test()
        if args.install_desktop:
            from neuralstudio.desktop_integration import install

            print(install().summary())
            return 0
        if not getattr(args, "func", None):
            args = parser.parse_args(["gui", *argv])
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `neuralstudio templates | head`: the reader left; say nothing more.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
