"""Help > Getting started: the first hour with NeuralStudio in six steps, with the keys that do each.

The steps follow the path a learner of Nielsen's book takes (build 784-30-10 by hand, train it, try
another learning rate, compare, draw, export), the same path as the README's "Using the app".
The page is static text in a non-modal window, so it can stay open beside the main window.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

#: (title, what to do) for each step; keys in <kbd>
STEPS: tuple[tuple[str, str], ...] = (
    ("Start a design",
     "<kbd>Ctrl+N</kbd> gives an empty canvas (File &gt; New from Template has ready-made networks). Drag an "
     "<b>InputLayer</b> from the palette on the left onto the canvas and set its <i>shape of one example</i> "
     "in the Inspector: <code>784</code> for a flattened MNIST image, <code>28, 28, 1</code> for an image."),
    ("Add and connect layers",
     "Drag a <b>Dense</b> layer (units 30, activation sigmoid) and another (units 10) onto the canvas. Drop a "
     "layer onto a connection to insert it there; drag from an output port (right) to an input port (left) to "
     "connect. <kbd>Del</kbd> deletes the selection, <kbd>Ctrl+Z</kbd> / <kbd>Ctrl+Shift+Z</kbd> undo and "
     "redo, <kbd>F2</kbd> renames a layer, <kbd>Ctrl+0</kbd> fits the network in view. The Problems list "
     "explains every mistake and offers a fix; the Code tab shows the same network as Keras code."),
    ("Train",
     "<kbd>Ctrl+2</kbd> opens Train. Choose the data (the bundled MNIST sample works offline, or Browse for "
     "your own), the optimizer, learning rate, batch size and epochs (hover over each for what it does), then "
     "press <b>Train</b>. The plots show loss and accuracy per batch and per epoch; Pause and Stop keep what "
     "was learned. When the run ends, one sentence says how it went and what to try next."),
    ("Try another setting and compare",
     "Change one hyperparameter (for example the learning rate from 3.0 to 0.3) and train again. Every run is "
     "kept in the Runs table: tick two runs to overlay their curves, and press Compare to see what differed. "
     "Double-click a run to make its model the one Predict and Export use."),
    ("Draw a digit",
     "<kbd>Ctrl+3</kbd> opens Predict. Draw a digit with the mouse; the bars show what the network answers "
     "while you draw. <kbd>Ctrl+Z</kbd> takes back the last stroke, <kbd>Del</kbd> (Clear) starts again."),
    ("Save and export",
     "<kbd>Ctrl+S</kbd> saves the design (.nsd). File &gt; Export writes the trained model as .keras, "
     "SavedModel, LiteRT (.tflite), ONNX or a Python script, and checks that the exported model gives the "
     "same answers before it keeps the file."),
)


def getting_started_html() -> str:
    items = "".join(f"<li><p><b>{title}.</b> {text}</p></li>" for title, text in STEPS)
    return ("<h2>Getting started</h2>"
            "<p>Your first hour: build Michael Nielsen's 784-30-10 network by hand, train it, and see what it "
            "learned.</p>"
            f"<ol>{items}</ol>"
            "<p>Keys everywhere: <kbd>Ctrl+1</kbd> Design, <kbd>Ctrl+2</kbd> Train, <kbd>Ctrl+3</kbd> Predict, "
            "<kbd>Ctrl+O</kbd> Open, <kbd>Ctrl+S</kbd> Save, <kbd>F1</kbd> this page.</p>")


class GettingStartedDialog(QDialog):
    """The Getting started page; non-modal, so it can stay open while the user follows it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gettingStartedDialog")
        self.setWindowTitle("Getting started with NeuralStudio")
        self.setModal(False)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("gettingStartedText")
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(getting_started_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.resize(620, 640)
