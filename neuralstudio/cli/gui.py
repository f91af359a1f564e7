"""``neuralstudio gui [FILE]``: open the desktop app (also what ``neuralstudio`` alone does)."""

from __future__ import annotations

import argparse
from pathlib import Path

from neuralstudio.core.errors import UserError

ORDER = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop app (the default with no command)",
                       description="Open the NeuralStudio window, with a design (.nsd) or Keras model "
                                   "(.keras, .h5) if given.")
    p.add_argument("file", nargs="?", help="a design or model file to open")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = getattr(args, "file", None)
    if path is not None and not Path(path).exists():
        raise UserError(f"{path} does not exist: give the path of a .nsd design or a .keras/.h5 model.")
    from neuralstudio.platform_libs import check_window_libraries

    advice = check_window_libraries()  # Qt would abort with a generic message: say what to install
    if advice:
        raise UserError(advice)
    try:
        from neuralstudio.app import run_app
    except ImportError as exc:
        raise UserError(f"The desktop app needs PySide6, which could not be imported ({exc}).") from None
    return run_app(path)
