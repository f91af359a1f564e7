"""Shared fixtures of the GUI tests: private settings, no QThread left running, a main window, a Train window."""

from __future__ import annotations

import gc
import time

import pytest
from PySide6.QtCore import QCoreApplication, QSettings, QThread


@pytest.fixture(autouse=True)
def _private_qsettings(tmp_path, monkeypatch):
    """QSettings of a test go to a temporary folder, never to the user's real settings."""
    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder))
    QCoreApplication.setOrganizationName("NeuralStudio")
    QCoreApplication.setApplicationName("NeuralStudio-tests")
    yield


def _running_qthreads() -> list[QThread]:
    main = QCoreApplication.instance().thread() if QCoreApplication.instance() else None
    gc.unfreeze()  # get_objects() cannot see frozen objects (ui/garbage_collection.py freezes the heap)
    found = []
    for obj in gc.get_objects():
        try:
            if isinstance(obj, QThread) and obj is not main and obj.isRunning():
                found.append(obj)
        except RuntimeError:  # the C++ object is already gone
            continue
    return found


@pytest.fixture(autouse=True)
def _no_qthread_left_running(request):
    """Fail any test that leaves a QThread running (destroying one later would abort the process)."""
    yield
    deadline = time.monotonic() + 3.0
    app = QCoreApplication.instance()
    left = _running_qthreads()
    while left and time.monotonic() < deadline:
        if app is not None:
            app.processEvents()
        time.sleep(0.02)
        left = _running_qthreads()
    if left:
        names = ", ".join(t.objectName() or type(t).__name__ for t in left)
        for t in left:  # stop them so the rest of the session is not aborted
            t.requestInterruption()
            t.quit()
            t.wait(10_000)
        pytest.fail(f"{request.node.name} left QThreads running: {names}")


@pytest.fixture
def main_window(qtbot):
    """A shown MainWindow with the default template; closed without prompts afterwards."""
    from neuralstudio.ui.main_window import MainWindow

    window = MainWindow(check_autosave=False)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.shutdown()  # stops the worker thread; the close below then asks nothing
    from PySide6.QtWidgets import QApplication

    QApplication.clipboard().clear()  # Qt's offscreen clipboard crashes at exit if it still owns data
    window.close()
    window.deleteLater()


@pytest.fixture
def ready_window(main_window, qtbot):
    """The main window once Keras, the catalog and the first analysis are in."""
    qtbot.waitUntil(lambda: main_window.loader.is_loaded, timeout=120_000)
    qtbot.waitUntil(lambda: main_window.editor.analysis_current, timeout=60_000)
    return main_window



@pytest.fixture(scope="module")
def tiny_data():
    """600 training and 100 test images of the bundled MNIST sample (a run of one epoch takes seconds)."""
    from support import mnist_slice

    return mnist_slice(600, 100)


@pytest.fixture
def train_workspace(qtbot, tmp_path, tiny_data):
    """A Train window on ``tiny_data`` with its runs in ``tmp_path``, not shown; closed without asking at the end
    (which stops a running run or experiment and checks that no training thread is left)."""
    from window_helpers import close_workspace

    from neuralstudio.core.runs import RunsStore
    from neuralstudio.ui.train.workspace import TrainWorkspace

    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    ws.set_dataset(tiny_data)
    ws.resize(1400, 900)
    yield ws
    close_workspace(ws)


@pytest.fixture
def shown_workspace(qtbot, train_workspace):
    """:func:`train_workspace`, shown at 1200 x 800."""
    ws = train_workspace
    ws.resize(1200, 800)
    ws.show()
    qtbot.waitExposed(ws)
    return ws
