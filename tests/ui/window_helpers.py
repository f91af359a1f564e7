"""Helpers for tests that drive the main window as a user would."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_file(qtbot: Any, window: Any, path: str | Path, **kwargs: Any) -> bool:
    """Open ``path`` as File > Open does and wait until it is shown, refused or failed: True if shown.

    A model opens in the background, so ``MainWindow.open_path`` returns a request that finishes later.
    """
    request = window.open_path(path, **kwargs)
    qtbot.waitUntil(lambda: request.done, timeout=120_000)
    return request.ok
