"""The ``neuralstudio`` command line.

Each sub-command is a module in this package that defines ``register(sub)``
(adding its parser and ``set_defaults(func=run)``) and an optional ``ORDER``
for the help listing.  Command modules import Keras inside ``run`` so that
``neuralstudio --help`` and the GUI start stay fast.  With no command the
desktop app opens.

Whatever goes wrong ends in one ``error:`` line and exit status 1, never a
traceback: a full disk, an unreadable file, memory running out.  Set
``NEURALSTUDIO_DEBUG=1`` to get the traceback of an unexpected failure.

A command prints its own output only; ``--verbose`` adds what TensorFlow and Keras print
(:mod:`neuralstudio.cli.console`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from neuralstudio import __version__
from neuralstudio.cli.console import quiet_console
from neuralstudio.core.errors import UserError

VERBOSE_FLAG = "--verbose"

#: Longest line of an error message printed: messages may quote text from the user's files.
MAX_ERROR_LINE = 2000
# Errors that only writing causes: the file could not have been being read.
_WRITE_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EROFS", "EDQUOT", "EFBIG")
                          if hasattr(errno, name))


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
    parser.add_argument("--verbose", action="store_true",
                        help="also print what TensorFlow and Keras report (start-up lines, warnings); "
                             "may be given anywhere on the line")
    parser.add_argument("--backend", metavar="NAME", choices=("tensorflow", "jax", "torch"),
                        help="the Keras backend to run on: tensorflow (default), jax or torch; overrides "
                             "KERAS_BACKEND and the app's saved choice; may be given anywhere on the line")
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


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None, writing: bool | None = None) -> str:
    """One sentence for a failed file operation: which file, what happened, and for a full disk what to do.

    Args:
        exc: the error.
        path: the file concerned, when the error does not name it (``os.fsync`` errors do not).
        writing: whether it was a write; guessed from the error when not given.
    """
    name = path if path is not None else exc.filename
    if writing is None:
        writing = exc.errno in _WRITE_ERRNOS
    what = f"{'write' if writing else 'read'} {name}" if name is not None else ("write a file" if writing
                                                                                else "read a file")
    if exc.errno == errno.ENOSPC or (hasattr(errno, "EDQUOT") and exc.errno == errno.EDQUOT):
        return f"cannot {what}: the disk is full: free some space and try again."
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.EROFS:
        reason += ": choose a folder you can write to"
    return f"cannot {what}: {reason}."


def _shortened(text: str) -> str:
    """``text`` with every line cut to :data:`MAX_ERROR_LINE` characters."""
    lines = [ln if len(ln) <= MAX_ERROR_LINE else ln[: MAX_ERROR_LINE - 3] + "..." for ln in text.splitlines()]
    return "\n".join(lines) or text[:MAX_ERROR_LINE]


def _unexpected(exc: BaseException) -> str:
    """The one line printed for a failure nobody foresaw: its type and the start of its message."""
    detail = " ".join(str(exc).split())
    detail = detail if len(detail) <= 200 else detail[:197] + "..."
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"unexpected failure ({what}): please report this"


def _debugging() -> bool:
    return os.environ.get("NEURALSTUDIO_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 user error, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = VERBOSE_FLAG in argv[: argv.index("--") if "--" in argv else len(argv)]
    if verbose:  # a global option, wherever it is written: `neuralstudio info m.keras --verbose` too
        argv.remove(VERBOSE_FLAG)
    backend, argv = _take_backend(argv)
    parser = build_parser()
    args = parser.parse_args(argv if backend is None else ["--backend", backend, *argv])
    with quiet_console(verbose):
        return _run(parser, args, argv)


def _take_backend(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--backend NAME`` (or ``--backend=NAME``) wherever it is written before ``--``, and the other arguments.

    A global option like ``--verbose``: ``neuralstudio train net.nsd --backend jax`` is as natural to write as
    ``neuralstudio --backend jax train net.nsd``, and the backend must be known before any command imports Keras.
    """
    end = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:end], argv[end:]
    backend = None
    rest: list[str] = []
    i = 0
    while i < len(head):
        arg = head[i]
        if arg == "--backend" and i + 1 < len(head):
            backend, i = head[i + 1], i + 2
            continue
        if arg.startswith("--backend="):
            backend = arg.partition("=")[2]
        else:
            rest.append(arg)
        i += 1
    return backend, rest + tail


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> int:
    try:
        from neuralstudio.ml.backends import select

        # before any command imports Keras; the app starts on TensorFlow if its saved choice is gone
        select(args.backend, fall_back=args.command in (None, "gui"))
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
        return _fail(_shortened(str(exc)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `neuralstudio templates | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if _debugging():
            raise
        return _fail(_shortened(os_error_message(exc, writing=getattr(exc, "neuralstudio_writing", None))))
    except MemoryError:
        if _debugging():
            raise
        return _fail("not enough memory: close other programs, or use a smaller network, batch size or data set.")
    except RecursionError:
        if _debugging():
            raise
        return _fail("the input is nested too deeply (or the network is too deep) to be processed.")
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, not a traceback
        if _debugging():
            raise
        return _fail(_unexpected(exc))


def _fail(message: str) -> int:
    """Print ``error: message`` on stderr; the exit status of a failed command."""
    try:
        print(f"error: {message}", file=sys.stderr)
    except (OSError, ValueError):
        pass  # stderr itself is gone: the status still tells
    return 1
