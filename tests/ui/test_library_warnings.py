"""The libraries' warnings reach the Train workspace's event log (once each), from whichever thread."""

from __future__ import annotations

import threading
import warnings

import pytest

pytest.importorskip("pytestqt")

from neuralstudio.core.runs import RunsStore  # noqa: E402
from neuralstudio.ui.library_warnings import WarningsRelay, library_warnings  # noqa: E402
from neuralstudio.ui.train.workspace import TrainWorkspace  # noqa: E402


def test_a_keras_warning_from_a_worker_thread_is_logged_once(qtbot, tmp_path):
    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    qtbot.addWidget(ws)
    with warnings.catch_warnings():
        library_warnings().install()  # pytest replaced showwarning for this test: take it back

        def work() -> None:
            for _ in range(3):
                warnings.warn("Do not pass an `input_shape`/`input_dim` argument to a layer.", UserWarning,
                              stacklevel=1)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        qtbot.waitUntil(lambda: "input_shape" in ws.log_view.toPlainText(), timeout=5000)
    log = ws.log_view.toPlainText()
    assert log.count("input_shape") == 1
    assert "warns (UserWarning): Do not pass an `input_shape`" in log


def test_warnings_before_the_log_exists_are_kept_for_it(qtbot, tmp_path):
    relay = WarningsRelay()
    with warnings.catch_warnings():
        relay.install()
        warnings.warn("legacy HDF5 format", UserWarning, stacklevel=1)
    assert any("legacy HDF5 format" in text for text in relay.backlog)
