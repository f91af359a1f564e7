"""Help > About: what this copy of NeuralStudio is built on, whose data it ships, and its license.

The versions come from the installed packages' metadata (``importlib.metadata``),
not from importing them: opening the dialog must not pull TensorFlow in (seconds
and hundreds of MB) just to print a version string.  "Copy versions" puts the
same list on the clipboard for a bug report.
"""

from __future__ import annotations

import html
import platform
import sys
from importlib import metadata

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

import neuralstudio
from neuralstudio.core.paths import resources_dir

#: (shown name, distribution names to try, module whose ``__version__`` may be used if it is already imported)
_COMPONENTS: list[tuple[str, tuple[str, ...], str]] = [
    ("Keras", ("keras",), "keras"),
    ("TensorFlow", ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly"),
     "tensorflow"),
    ("PySide6", ("PySide6-Essentials", "PySide6"), "PySide6"),
    ("pyqtgraph", ("pyqtgraph",), "pyqtgraph"),
    ("NumPy", ("numpy",), "numpy"),
]

MNIST_ATTRIBUTION = (
    "The offline \u201cMNIST sample\u201d and the data the bundled digit model was trained on are the MNIST "
    "test set by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, used under the Creative Commons "
    "Attribution-Share Alike 3.0 license (CC BY-SA 3.0)."
)
LICENSE_TEXT = ("NeuralStudio is free software under the MIT License. "
                "Copyright (c) 2026 NeuralStudio developers.")
NOT_INSTALLED = "not installed"


def package_version(dist_names: tuple[str, ...], module: str = "") -> str:
    """The installed version of the first of ``dist_names`` found, without importing it.

    Falls back to ``module.__version__`` only when that module is already imported
    (a frozen app may lack the package metadata), else :data:`NOT_INSTALLED`.
    """
    for name in dist_names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    loaded = sys.modules.get(module) if module else None
    version = getattr(loaded, "__version__", None)
    return str(version) if version else NOT_INSTALLED


def versions() -> list[tuple[str, str]]:
    """(component, version) for NeuralStudio, Python, Qt and every library the About dialog lists."""
    from PySide6 import QtCore

    rows = [("NeuralStudio", neuralstudio.__version__), ("Python", platform.python_version())]
    rows += [(shown, package_version(dists, module)) for shown, dists, module in _COMPONENTS]
    rows.insert(5, ("Qt", QtCore.qVersion()))
    return rows


def versions_text() -> str:
    """The versions as plain text lines, for the clipboard and bug reports."""
    rows = versions()
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {version}" for name, version in rows]
    lines.append(f"{'Platform':<{width}}  {platform.platform()}")
    return "\n".join(lines)


class AboutDialog(QDialog):
    """The About box: app name and version, component versions, data attribution, license.

    Args:
        parent: the main window (the dialog is modal to it when opened with ``exec``).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About NeuralStudio")
        self.rows = versions()

        icon_label = QLabel()
        icon_label.setObjectName("aboutIcon")
        icon = QIcon(str(resources_dir() / "icons" / "neuralstudio.svg"))
        icon_label.setPixmap(icon.pixmap(QSize(96, 96)))
        icon_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)

        self.title_label = QLabel(f"<h2>NeuralStudio {html.escape(neuralstudio.__version__)}</h2>"
                                  "<p>Design, train and explore neural networks visually.</p>")
        self.title_label.setObjectName("aboutTitle")

        table = "".join(f"<tr><td style='padding-right:16px'>{html.escape(name)}</td>"
                        f"<td><b>{html.escape(version)}</b></td></tr>" for name, version in self.rows)
        self.versions_label = QLabel(f"<table>{table}</table>")
        self.versions_label.setObjectName("aboutVersions")
        self.versions_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.attribution_label = QLabel(html.escape(MNIST_ATTRIBUTION))
        self.attribution_label.setObjectName("aboutAttribution")
        self.attribution_label.setWordWrap(True)
        self.license_label = QLabel(html.escape(LICENSE_TEXT))
        self.license_label.setObjectName("aboutLicense")
        self.license_label.setWordWrap(True)

        text_box = QVBoxLayout()
        for label in (self.title_label, self.versions_label, self.attribution_label, self.license_label):
            text_box.addWidget(label)
        text_box.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(icon_label)
        top.addLayout(text_box, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy versions")
        self.copy_button.setObjectName("copyVersionsButton")
        self.copy_button.setToolTip("Copy the version list to the clipboard, for a bug report")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        buttons.rejected.connect(self.reject)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)

    def text(self) -> str:
        """Everything the dialog says, as plain text (what a screen reader or a test sees)."""
        return "\n".join([f"NeuralStudio {neuralstudio.__version__}", versions_text(), MNIST_ATTRIBUTION,
                          LICENSE_TEXT])

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(versions_text())
        self.copy_button.setText("Copied")
