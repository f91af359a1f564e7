"""Starts the Qt application and shows the main window.

Only Qt and the light core modules are imported here, so that the window is
painted within half a second; Keras and TensorFlow load in the background.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def run_app(path: str | None = None, argv: list[str] | None = None) -> int:
    """Open the main window (with ``path`` if given) and run the event loop; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PySide6.QtCore import QCoreApplication, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from neuralstudio.ui.responsiveness import favor_gui_thread, single_threaded_painting

    single_threaded_painting()  # before the QApplication: Qt reads it once

    QCoreApplication.setOrganizationName("NeuralStudio")
    QCoreApplication.setApplicationName("NeuralStudio")
    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    favor_gui_thread()  # Keras loads, designs are checked and models trained on other threads
    _apply_style(app)
    _apply_icon(app)

    from neuralstudio.ui.main_window import MainWindow

    window = MainWindow(load_default=path is None)
    window.show()
    if path is not None:
        QTimer.singleShot(0, lambda: _open_at_start(window, path))
    bench = os.environ.get("NEURALSTUDIO_BENCH_FIRST_PAINT")
    if bench:  # used by tests/benchmarks/bench_startup.py: report the first paint, then quit
        _report_first_paint(window, bench)
    code = app.exec()
    from neuralstudio.ui.widget_lifetime import delete_now

    delete_now(window)  # top-down, before the interpreter's teardown frees the wrappers in any order
    return code


def _open_at_start(window, path: str) -> None:  # noqa: ANN001
    """Open the file named on the command line; if it cannot be opened (its message was shown), start from the
    default template rather than an empty canvas."""
    request = window.open_path(path, confirm=False)
    if request.done:
        if not request.ok:
            window.new_default()
    else:
        request.finished.connect(lambda ok: None if ok else window.new_default())


def _apply_style(app) -> None:  # noqa: ANN001
    from neuralstudio.core.paths import resources_dir

    qss = Path(resources_dir()) / "styles" / "app.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text("utf-8"))


def _apply_icon(app) -> None:  # noqa: ANN001
    from PySide6.QtGui import QGuiApplication, QIcon

    from neuralstudio.core.paths import resources_dir

    icon = Path(resources_dir()) / "icons" / "neuralstudio.svg"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    # Lets Wayland match the window to its desktop entry (packaging/).
    QGuiApplication.setDesktopFileName("io.github.neuralstudio.NeuralStudio")


def _report_first_paint(window, out_path: str) -> None:  # noqa: ANN001
    import time

    from PySide6.QtCore import QEvent, QObject, QTimer

    class _Watch(QObject):
        done = False

        def eventFilter(self, obj, event):  # noqa: ANN001, ANN201, N802
            if event.type() == QEvent.Type.Paint and not self.done:
                self.done = True
                Path(out_path).write_text(f"{time.time():.6f}\n", encoding="utf-8")
                QTimer.singleShot(0, _quit)
            return False

    def _quit() -> None:
        # Measuring only: leave at once instead of waiting for the background Keras import.
        sys.stdout.flush()
        os._exit(0)

    watch = _Watch(window)
    window.tabs.installEventFilter(watch)
    window._bench_watch = watch  # keep it alive
