"""Shared test setup: offscreen Qt, quiet TensorFlow, a private user-data folder."""

import json
import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ["QT_QPA_PLATFORM"] == "offscreen":
    # The offscreen screen is 800x800 by default, smaller than the window's minimum: give the
    # tests a laptop-sized virtual screen so that geometry behaves as it does for users.
    _screen = os.path.join(tempfile.gettempdir(), "neuralstudio-test-screen.json")
    with open(_screen, "w", encoding="utf-8") as fh:
        json.dump({"screens": [{"name": "laptop", "x": 0, "y": 0, "width": 1600, "height": 1000,
                                "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}, fh)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screen}"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from neuralstudio.ui.responsiveness import single_threaded_painting  # noqa: E402 - Qt-free, after the env above

single_threaded_painting()  # Qt set up as the app sets it up (before pytest-qt creates the QApplication)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """Runs, settings and autosaves of a test never touch the real user folder."""
    monkeypatch.setenv("NEURALSTUDIO_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def qtbot(qtbot):
    """pytest-qt's qtbot, whose ``addWidget`` also keeps the widget alive until it is deleted after the test.

    pytest-qt holds only a weak reference, so a widget a test made and registered lost its last name when
    the test function returned, and the garbage collector, not ``deleteLater``, freed the window's wrapper
    cycle (in the event processing right after the test): a crash in ``QWidget::~QWidget``
    (neuralstudio/ui/widget_lifetime.py). Here the widget lives until pytest-qt has closed it and
    ``deleteLater`` has been carried out; its wrappers are then invalid and the collector frees nothing live.
    """
    from neuralstudio.ui.widget_lifetime import delete_later_now

    kept = []
    add_widget = qtbot.addWidget

    def add_and_keep(widget, *, before_close_func=None):
        kept.append(widget)
        add_widget(widget, before_close_func=before_close_func)

    qtbot.addWidget = add_and_keep
    yield qtbot
    delete_later_now()  # pytest-qt closed and deleteLater-ed its widgets before the fixtures' teardown
    kept.clear()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item):
    """Carry out the ``deleteLater`` calls of a test's fixtures (the main window's) before the next test.

    Outside an event loop a deferred delete waits for the next one, and a window whose wrappers reached the
    garbage collector first crashed the process (neuralstudio/ui/widget_lifetime.py).
    """
    result = yield
    from neuralstudio.ui.widget_lifetime import delete_later_now

    delete_later_now()
    return result


#: a test still running after this long is hung, not slow (the slowest takes about a minute)
HANG_LIMIT_S = float(os.environ.get("NEURALSTUDIO_TEST_HANG_LIMIT_S", "300"))
_real_stderr_fd: int | None = None


def pytest_configure(config):
    """Keep a descriptor of the real stderr for the hang watchdog.

    Output capture points fd 2 at a temporary file, and a watchdog that ends the
    process would print its stacks there, where nobody sees them.
    """
    global _real_stderr_fd
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture()
    try:
        _real_stderr_fd = os.dup(2)
    finally:
        if capman is not None:
            capman.resume_global_capture()


@pytest.fixture(autouse=True)
def _hang_watchdog():
    """Print every thread's stack and end the process if a test hangs.

    pytest-timeout's alarm is Python code: it cannot run while a thread deadlocks
    holding the GIL (a Qt object destroyed from the wrong thread did exactly that
    once), and CI then waited for its own limit with nothing to show.
    faulthandler's watchdog is a C thread that needs no GIL.
    """
    import faulthandler

    faulthandler.dump_traceback_later(HANG_LIMIT_S, exit=True, file=_real_stderr_fd or 2)
    yield
    faulthandler.cancel_dump_traceback_later()
