"""Where NeuralStudio finds its shipped files and keeps the user's data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent.parent  # the neuralstudio package


def _shipped(package: str, folder: str) -> Path:
    """The installed ``neuralstudio.<package>`` folder, or the source tree's top-level ``folder``.

    In a wheel, ``resources/`` and ``models/`` are installed as sub-packages; in a
    source checkout they sit beside the ``neuralstudio`` package.
    """
    installed = _HERE / package
    if (installed / "__init__.py").exists():
        return installed
    return _HERE.parent / folder


def resources_dir() -> Path:
    return _shipped("resources", "resources")


def templates_dir() -> Path:
    return resources_dir() / "templates"


def sample_data_dir() -> Path:
    """The bundled MNIST t10k files (the offline "MNIST sample")."""
    return resources_dir() / "data" / "mnist-sample"


def bundled_models_dir() -> Path:
    return _shipped("models", "models")


def user_data_dir() -> Path:
    """The per-user data folder (runs, autosave); ``NEURALSTUDIO_HOME`` overrides it."""
    env = os.environ.get("NEURALSTUDIO_HOME")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "NeuralStudio"
