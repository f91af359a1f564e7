"""The About dialog shows the real installed versions, the MNIST attribution and the license."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import numpy
import pyqtgraph
from PySide6 import QtCore
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

import neuralstudio
from neuralstudio.ui.about_dialog import NOT_INSTALLED, AboutDialog, package_version


def test_about_dialog_shows_versions_attribution_and_license(qtbot):
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    assert neuralstudio.__version__ in dialog.title_label.text()
    shown = dialog.versions_label.text()
    for name, version in [("Keras", metadata.version("keras")),
                          ("TensorFlow", metadata.version("tensorflow")),
                          ("Qt", QtCore.qVersion()),
                          ("pyqtgraph", pyqtgraph.__version__),
                          ("NumPy", numpy.__version__)]:
        assert f"{name}</td><td><b>{version}</b>" in shown, f"{name} {version} not shown in: {shown}"
    assert NOT_INSTALLED not in shown

    attribution = dialog.attribution_label.text()
    for words in ("MNIST", "LeCun", "Cortes", "Burges", "CC BY-SA 3.0"):
        assert words in attribution
    assert "MIT License" in dialog.license_label.text()
    assert not dialog.findChild(type(dialog.title_label), "aboutIcon").pixmap().isNull(), "the app icon did not load"

    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert "Keras" in copied and metadata.version("keras") in copied
    assert QtCore.qVersion() in copied

    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_package_version_falls_back_and_reports_missing():
    assert package_version(("no-such-distribution-xyz",)) == NOT_INSTALLED
    # No metadata under that name, but the module is imported: its __version__ is used.
    assert package_version(("no-such-distribution-xyz",), "numpy") == numpy.__version__


def test_opening_the_dialog_does_not_import_tensorflow():
    """Versions come from package metadata: the About box must not load TensorFlow (seconds, hundreds of MB)."""
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from neuralstudio.ui.about_dialog import AboutDialog\n"
        "d = AboutDialog(); d.show(); app.processEvents()\n"
        "assert 'TensorFlow' in d.versions_label.text()\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr
