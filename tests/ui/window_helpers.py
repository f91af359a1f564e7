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


def close_workspace(ws: Any) -> None:
    """Close a Train workspace at the end of a test without asking, and check that no training thread is left.

    Not qtbot.addWidget: pytest-qt would close the widget first, and closing a workspace whose run is still
    going (after a failed assertion) asks the user and waits forever.
    """
    from neuralstudio.ui.train import workspace as ws_mod

    ws_mod.TrainWorkspace.confirm_close = staticmethod(lambda _parent: True)
    try:
        assert ws.request_close()
    finally:
        ws_mod.TrainWorkspace.confirm_close = staticmethod(ws_mod.default_confirm_close)
        ws.close()
        from neuralstudio.ui.widget_lifetime import delete_now

        delete_now(ws)  # not left to the garbage collector (neuralstudio/ui/widget_lifetime.py)
    assert ws_mod.running_training_threads() == 0
