"""The Predict workspace: draw a digit (or open a picture) and watch what the network thinks.

Layout: the canvas with its tools on the left; on the right the predicted class
(large, with how sure the network is, or "not sure"), the bar chart of what the
network gives each class and the 28x28 image the network actually receives,
magnified, with a line under the chart saying what the classes are and how the
outputs are read.

Truthful readout (``ml/inference.py``): a softmax output is shown as
probabilities; a sigmoid output as its activations, labelled so, the verdict
resting on the largest activation and its margin over the next; a linear output
as the softmax of the outputs, labelled so.  Classes are named by the class
names stored with the model (the data it was trained on), else numbered 0..K-1.

Speed: the canvas emits ``changed`` on every pen move; the workspace does not
predict in that handler but starts a 0-ms single-shot timer, so a burst of
queued moves produces one prediction after they are all painted (the event loop
coalesces them).  A prediction is preparation (~0.3 ms) plus one call of a
warmed-up graph function (:class:`~neuralstudio.ml.inference.Predictor`).

Models are loaded, copied and warmed up on a background thread (Keras import
and loading take seconds); until then the workspace says "loading model...".
A model handed over by the training tab is copied first (``clone_model`` +
``set_weights``), so a model that is still training is never used here.

"Show what the network sees" opens, beside the probabilities, the inside of the
network (``inside_view.py``): feature maps, first-layer filters, saliency and
Dense activations.  Its probe is built on the same runner once a model is ready
and the view is on; each prediction hands the drawing to it, so it follows the
same coalesced timer.  Off by default (remembered once turned on): it costs a
forward and an eager backward pass per drawing (10-60 ms of CPU on a background
thread, against ~1 ms for the probabilities) and half the width of the window.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QFont, QImage, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.errors import UserError
from neuralstudio.core.paths import bundled_models_dir
from neuralstudio.ml.inference import LOGITS
from neuralstudio.ml.model_files import UntrustedCodeError
from neuralstudio.ml.preprocess import ImageFileError, load_gray_image
from neuralstudio.ui.predict.canvas import DigitCanvas
from neuralstudio.ui.predict.inside_view import InsideView
from neuralstudio.ui.predict.probability_chart import ProbabilityChart
from neuralstudio.ui.tasks import TaskRunner

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
PREVIEW_SCALE = 5
BUNDLED_LABEL = "bundled digit model"
SHOW_INSIDE_KEY = "predict/showInside"  # QSettings: the inside view was left on


DIGIT_HINT = "Draw one digit, as large as you like, anywhere on the black square."


def _verdict(prediction: Any) -> str:
    """How sure the network is, in the words of its output kind.

    Probabilities: "98% sure" / "not sure (40%)", with "softmax of the outputs" for logits.  Activations (a
    sigmoid output): the largest activation and the next one, never a percentage, since they are not
    probabilities.
    """
    kind = getattr(prediction, "kind", None)
    if kind is None or kind.is_probability:
        of_outputs = " (softmax of the outputs)" if kind is not None and kind.mode == LOGITS else ""
        if prediction.sure:
            return f"{prediction.score:.0%} sure{of_outputs}"
        return f"not sure ({prediction.score:.0%}){of_outputs}"
    runner_up = prediction.runner_up
    nxt = f", next {runner_up:.2f}" if runner_up is not None else ""
    what = f"output activation {prediction.score:.2f}{nxt}"
    return what if prediction.sure else f"not sure: {what}"


def bundled_model_path() -> Path:
    """Where the pretrained digit model ships."""
    return bundled_models_dir() / "digits.keras"


# The background jobs load or copy the model, check its shapes, and trace and warm up the prediction
# function (seconds: Keras import, file reading, tracing), each on a plain Python thread of its own (the
# task runner's rule, docs/ARCHITECTURE.md "Threads"): the GUI thread only calls the traced function.
# Tracing it on the GUI thread froze the window for 0.2-0.6 s at every model change; traced on the
# runner's QThread itself, a second trace crashed the interpreter (segfault in graph_def_versions, TF 2.21).


def ask_trust(parent: QWidget | None, file_name: str, exc: UntrustedCodeError) -> bool:
    """Warn that ``file_name`` holds code and ask whether to open it anyway; True for "Trust and open".

    Cancel is the default button, and the answer is never stored: every opening asks again.
    """
    box = QMessageBox(QMessageBox.Icon.Warning, "This model contains code",
                      f"{file_name} contains Python code ({exc.what()}). Code in a model file can do anything on "
                      "your computer. Open it only if you made it yourself or trust its author.",
                      QMessageBox.StandardButton.NoButton, parent)
    trust = box.addButton("Trust and open", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    return box.clickedButton() is trust


def _predictor(model: Any, classes: Any) -> Any:
    """The Predictor for ``model``, its outputs named by ``classes`` (the names stored with it), else 0..K-1."""
    from neuralstudio.ml.inference import Predictor

    if classes is None:
        return Predictor(model)
    return Predictor(model, class_names=classes.names, trained_on=classes.data)


def _load_file_job(path: str, trusted: bool) -> Any:
    from neuralstudio.ml.inference import check_model
    from neuralstudio.ml.model_files import load_keras_model
    from neuralstudio.ml.model_metadata import read_classes

    model = load_keras_model(path, trusted=trusted)
    check_model(model)
    return _predictor(model, read_classes(path))


def _copy_job(model: Any) -> Any:
    from neuralstudio.ml.inference import check_model, inference_copy
    from neuralstudio.ml.model_metadata import remembered_classes

    check_model(model)
    return _predictor(inference_copy(model), remembered_classes(model))


def _same_job(model: Any) -> Any:
    from neuralstudio.ml.model_metadata import remembered_classes

    return _predictor(model, remembered_classes(model))


def _probe_job(model: Any) -> Any:
    """The inside view's probe of the predictor's model, traced and warmed up (on the runner's plain thread)."""
    from neuralstudio.ml.activations import ActivationProbe

    return ActivationProbe(model)


class PredictWorkspace(QWidget):
    """Draw a digit and see the network's prediction live.

    Args:
        parent: the parent widget (the main window's tab widget), or None to stand alone.
        runner: the background task runner to load models on; the workspace makes
            its own when None (and stops it in :meth:`shutdown`).
        load_bundled: load the bundled model the first time the workspace is shown
            (unless a model was set before).

    Signals:
        model_changed(str): a model is ready; the text says which.
        model_failed(str): a model could not be used; the message says why.
        predicted(int, float): a prediction was shown (class index, its value: a probability or an
            activation, as the chart says), -1 when empty.
    """

    model_changed = Signal(str)
    model_failed = Signal(str)
    predicted = Signal(int, float)

    def __init__(self, parent: QWidget | None = None, runner: TaskRunner | None = None,
                 load_bundled: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("predictWorkspace")
        self.setAcceptDrops(True)
        self._own_runner = runner is None
        self._runner = runner or TaskRunner(self, name="neuralstudio-predict")
        self._load_bundled = load_bundled
        self._generation = 0  # newest model request; older results are dropped
        self._loading = False
        self._pending = False
        self._untrusted_file: tuple[int, str] | None = None  # (generation, path) of an untrusted file load
        self.predictor: Any = None
        self.source_label = ""
        self.last_input: np.ndarray = np.zeros((28, 28), dtype=np.float32)
        self.last_probabilities: np.ndarray | None = None  # None too when the values are activations
        self.last_values: np.ndarray | None = None  # what the chart shows, whatever the output kind
        self.last_prediction: Any = None
        self.prediction_count = 0
        self._exact_input: np.ndarray | None = None  # an image given as the network's input (show_image)
        self._probe_model: Any = None  # the model whose probe the inside view has or is getting
        self._build()
        self._show_prediction(None)
        self.insideButton.setChecked(bool(QSettings().value(SHOW_INSIDE_KEY, False, type=bool)))

    # ----- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.canvas = DigitCanvas(self)
        self.canvas.changed.connect(self._on_canvas_changed)

        self.undoButton = QPushButton("Undo stroke", self)
        self.undoButton.setObjectName("undoStrokeButton")
        self.undoButton.setShortcut("Ctrl+Z")
        self.undoButton.setToolTip("Remove the last stroke (Ctrl+Z)")
        self.undoButton.clicked.connect(self.canvas.undo_stroke)
        self.clearButton = QPushButton("Clear", self)
        self.clearButton.setObjectName("clearCanvasButton")
        self.clearButton.setAccessibleName("clearCanvasButton")
        self.clearButton.setToolTip("Erase the whole drawing (Delete)")
        self.clearButton.setShortcut("Delete")
        self.clearButton.clicked.connect(self.canvas.clear)
        self.eraserButton = QToolButton(self)
        self.eraserButton.setObjectName("eraserButton")
        self.eraserButton.setText("Eraser")
        self.eraserButton.setCheckable(True)
        self.eraserButton.setToolTip("Erase with the left button too (the right button always erases)")
        self.eraserButton.toggled.connect(self._on_eraser_toggled)
        tools = QHBoxLayout()
        tools.addWidget(self.undoButton)
        tools.addWidget(self.eraserButton)
        tools.addStretch(1)
        tools.addWidget(self.clearButton)

        self.hintLabel = hint = QLabel(DIGIT_HINT, self)
        hint.setObjectName("drawHint")
        hint.setWordWrap(True)
        hint.setMaximumWidth(self.canvas.width())
        left = QVBoxLayout()
        left.addWidget(hint)
        left.addWidget(self.canvas, 0, Qt.AlignmentFlag.AlignHCenter)
        left.addLayout(tools)
        left.addStretch(1)

        self.predictionLabel = QLabel("", self)
        self.predictionLabel.setObjectName("predictionLabel")
        self.predictionLabel.setAccessibleName("predictionLabel")
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 4.5)
        big.setBold(True)
        self.predictionLabel.setFont(big)
        self.predictionLabel.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.predictionLabel.setMinimumWidth(110)
        self.confidenceLabel = QLabel("", self)
        self.confidenceLabel.setObjectName("confidenceLabel")
        self.confidenceLabel.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.preview = QLabel(self)
        self.preview.setObjectName("inputPreview")
        self.preview.setAccessibleName("inputPreview")
        self.preview.setToolTip("The 28x28 image the network receives (cropped, scaled to 20 px, centred by mass)")
        self.preview.setFixedSize(28 * PREVIEW_SCALE + 2, 28 * PREVIEW_SCALE + 2)
        self.preview.setFrameShape(QFrame.Shape.Box)
        preview_caption = QLabel("What the network sees (28x28)", self)
        preview_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.chart = ProbabilityChart(self)
        self.outputLabel = QLabel("", self)
        self.outputLabel.setObjectName("outputKindLabel")
        self.outputLabel.setAccessibleName("outputKindLabel")
        self.outputLabel.setWordWrap(True)
        self.outputLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._big_font = big

        top = QGridLayout()
        top.addWidget(self.predictionLabel, 0, 0)
        top.addWidget(self.confidenceLabel, 1, 0)
        top.addWidget(self.preview, 0, 1, Qt.AlignmentFlag.AlignCenter)
        top.addWidget(preview_caption, 1, 1)
        top.setColumnStretch(0, 1)

        self.modelLabel = QLabel("Model: none yet", self)
        self.modelLabel.setObjectName("modelSourceLabel")
        self.modelLabel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bundledButton = QPushButton("Bundled model", self)
        self.bundledButton.setObjectName("bundledModelButton")
        self.bundledButton.setToolTip("Use the pretrained digit model that ships with NeuralStudio")
        self.bundledButton.clicked.connect(self.load_bundled_model)
        self.openModelButton = QPushButton("Open model...", self)
        self.openModelButton.setObjectName("openModelButton")
        self.openModelButton.setToolTip("Use a .keras or .h5 model file (input 28x28, 10 outputs)")
        self.openModelButton.clicked.connect(self._on_open_model_clicked)
        self.openImageButton = QPushButton("Open image...", self)
        self.openImageButton.setObjectName("openImageButton")
        self.openImageButton.setToolTip("Predict a PNG or JPEG picture of a digit (or drop it here)")
        self.openImageButton.clicked.connect(self._on_open_image_clicked)
        model_row = QHBoxLayout()
        model_row.addWidget(self.modelLabel, 1)
        model_row.addWidget(self.bundledButton)
        model_row.addWidget(self.openModelButton)
        model_row.addWidget(self.openImageButton)
        self.insideButton = QPushButton("Show what the network sees", self)
        self.insideButton.setObjectName("showInsideButton")
        self.insideButton.setCheckable(True)
        self.insideButton.setShortcut("Ctrl+Shift+I")
        self.insideButton.setToolTip("Show, beside the probabilities, the network's feature maps, first-layer filters, "
                                     "saliency and Dense activations for the drawing, live (Ctrl+Shift+I)")
        self.insideButton.toggled.connect(self._on_inside_toggled)
        model_row.addWidget(self.insideButton)

        self.statusLabel = QLabel("", self)
        self.statusLabel.setObjectName("predictStatus")
        self.statusLabel.setWordWrap(True)
        self.statusLabel.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

        self.probabilitiesPanel = QWidget(self)
        right = QVBoxLayout(self.probabilitiesPanel)
        right.setContentsMargins(0, 0, 0, 0)
        right.addLayout(top)
        right.addWidget(self.chart, 1)
        right.addWidget(self.outputLabel)
        self.inside = InsideView(self)
        self.inside.hide()
        self.insideSplitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.insideSplitter.setObjectName("insideSplitter")
        self.insideSplitter.setChildrenCollapsible(False)
        self.insideSplitter.addWidget(self.probabilitiesPanel)
        self.insideSplitter.addWidget(self.inside)
        self.insideSplitter.setStretchFactor(0, 2)
        self.insideSplitter.setStretchFactor(1, 3)

        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(self.insideSplitter, 1)
        outer = QVBoxLayout(self)
        outer.addLayout(model_row)
        outer.addLayout(body, 1)
        outer.addWidget(self.statusLabel)

    # ----- models -----------------------------------------------------------------------------
    @property
    def is_loading(self) -> bool:
        return self._loading

    def _start(self, job: Any, label: str) -> None:
        self._generation += 1
        gen = self._generation
        self._loading = True
        self._set_status(f"loading model... ({label})")
        self._runner.submit(job, lambda p: self._on_model_ready(gen, p, label),
                            lambda exc, tb: self._on_model_error(gen, exc, label))

    def set_model(self, model: Any, source_label: str, copy: bool = True) -> None:
        """Predict with ``model`` (e.g. the one just trained); an independent copy is made in the background.

        Args:
            model: a built ``keras.Model``.
            source_label: how the model is named in the workspace ("trained: run 3").
            copy: copy first (leave True for a model that may still be training).
        """
        self._load_bundled = False
        self._start((lambda: _copy_job(model)) if copy else (lambda: _same_job(model)), source_label)

    def load_model_file(self, path: str | os.PathLike[str], trusted: bool = False) -> None:
        """Load a ``.keras``/``.h5`` file in the background and predict with it once it is ready."""
        self._load_bundled = False
        p = str(path)
        self._start(lambda: _load_file_job(p, trusted), Path(p).name)
        self._untrusted_file = None if trusted else (self._generation, p)

    def load_bundled_model(self) -> None:
        """Use the pretrained digit model in ``models/``."""
        self._load_bundled = False
        path = bundled_model_path()
        if not path.exists():
            self._on_model_error(self._generation, UserError(
                f"The bundled model is missing ({path}). Train it with `python tools/train_bundled_model.py`, "
                "or open a model file."), BUNDLED_LABEL)
            return
        p = str(path)
        self._start(lambda: _load_file_job(p, False), BUNDLED_LABEL)

    def _on_model_ready(self, gen: int, predictor: Any, label: str) -> None:
        if gen != self._generation:
            return
        self._loading = False
        self.predictor = predictor
        self.source_label = label
        self.modelLabel.setText(f"Model: {label}")
        self._show_output_kind(predictor)
        self._set_status("")
        self.model_changed.emit(label)
        self._refresh_probe()
        self._predict_now()

    def _show_output_kind(self, predictor: Any) -> None:
        """Name the classes on the chart and say, under it, what they are and how the outputs are read."""
        kind = getattr(predictor, "kind", None)
        names = list(getattr(predictor, "class_names", ()) or [str(i) for i in range(10)])
        if kind is None:  # a stand-in predictor (benchmarks): softmax digits
            self.chart.set_classes(names)
            self.outputLabel.setText("")
            return
        self.chart.set_classes(names, kind.value_label, value_range=kind.bounded, is_probability=kind.is_probability)
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} classes)" if len(names) > 8 else "")
        if getattr(predictor, "names_known", False):
            trained = f" (trained on {predictor.trained_on})" if getattr(predictor, "trained_on", None) else ""
            classes = f"Classes: {shown}{trained}."
        elif getattr(predictor, "trained_on", None):
            classes = f"Classes {shown} (trained on {predictor.trained_on})."
        else:
            classes = f"Classes {names[0]}-{names[-1]} (the model stores no class names)."
        self.outputLabel.setText(f"{classes} {kind.description}")
        digits = names == [str(i) for i in range(len(names))]
        self.hintLabel.setText(DIGIT_HINT if digits else
                               f"Draw one of: {shown}, as large as you like, anywhere on the black square.")

    def _ask_trust(self, file_name: str, exc: UntrustedCodeError) -> bool:
        """True to open a file with code in it after a warning (tests replace this method)."""
        return ask_trust(self, file_name, exc)

    def _on_model_error(self, gen: int, exc: BaseException, label: str) -> None:
        if gen != self._generation:
            return
        self._loading = False
        request, self._untrusted_file = self._untrusted_file, None
        if isinstance(exc, UntrustedCodeError) and request is not None and request[0] == gen:
            if self._ask_trust(label, exc):
                self.load_model_file(request[1], trusted=True)
                return
        if isinstance(exc, UserError):
            message = str(exc)
        else:
            message = f"The model could not be used: {type(exc).__name__}: {exc}"
        kept = f" Still using: {self.source_label}." if self.predictor is not None else ""
        self._set_status(f"{label}: {message}{kept}", error=True)
        self.model_failed.emit(message)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.statusLabel.setText(text)
        self.statusLabel.setStyleSheet("color: #b00020;" if error else "")
        self.statusLabel.setProperty("isError", error)

    # ----- images -----------------------------------------------------------------------------
    def open_image(self, path: str | os.PathLike[str]) -> bool:
        """Show a picture of a digit on the canvas and predict it; False (with a message) if unreadable."""
        try:
            gray = load_gray_image(path)
        except ImageFileError as exc:
            self._set_status(str(exc), error=True)
            return False
        self.canvas.set_background(gray)
        self._set_status(f"Image: {Path(path).name}")
        return True

    def show_image(self, image: np.ndarray, label: str = "") -> None:
        """Show an image the network saw (e.g. a test image from the Mistakes tab) on the canvas and predict it.

        A ``(28, 28)`` image in [0, 1] is predicted as it is, without the picture preparation, so that Predict
        shows the same values as the gallery it came from; drawing on it (or any other change) prepares the
        canvas again. Other grey images go through the picture preparation, as an opened file does.
        """
        gray = np.asarray(image, dtype=np.float32)
        if gray.ndim == 3:  # colour data: the grey the canvas can show
            gray = gray.mean(axis=-1)
        self.canvas.set_background(np.clip(gray, 0.0, 1.0))  # emits changed: a prediction is due
        if gray.shape == (28, 28):
            self._exact_input = np.clip(gray, 0.0, 1.0)  # after set_background, whose change cleared it
        self._set_status(label or "An image from the data: draw on it to see how the network's answer changes.")

    def _on_open_image_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a picture of a digit", "", "Images (*.png *.jpg *.jpeg)")
        if path:
            self.open_image(path)

    def _on_open_model_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", "", "Keras models (*.keras *.h5 *.hdf5)")
        if path:
            self.load_model_file(path)

    @staticmethod
    def _dropped_file(event: QDragEnterEvent | QDropEvent) -> str | None:
        mime = event.mimeData()
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES + MODEL_SUFFIXES):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_file(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_file(event)
        if not path:
            event.ignore()
            return
        event.acceptProposedAction()
        if path.lower().endswith(IMAGE_SUFFIXES):
            self.open_image(path)
        else:
            self.load_model_file(path)

    # ----- prediction -------------------------------------------------------------------------
    def _on_eraser_toggled(self, on: bool) -> None:
        self.canvas.eraser = on

    def _on_canvas_changed(self) -> None:
        self._exact_input = None  # the drawing changed: prepared from the canvas again
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self._on_predict_due)

    def _on_predict_due(self) -> None:
        self._pending = False
        self._predict_now()

    def _predict_now(self) -> None:
        """Prepare the canvas image, predict, and show the result (called once per burst of moves)."""
        if self.canvas.is_empty():
            self.last_input = np.zeros((28, 28), dtype=np.float32)
            self._show_prediction(None)
            return
        # from the strokes: MNIST-thick whatever the drawing's size; an image of the data as the network saw it
        x = self._exact_input if self._exact_input is not None else self.canvas.prepared_image()
        self.last_input = x
        self._show_preview(x)
        if not x.any():  # everything was erased
            self._show_prediction(None)
            return
        if self.predictor is None:
            if not self._loading:
                self._set_status("No model yet: open a model file or use the bundled model.", error=True)
            return
        try:
            prediction = self.predictor.predict(x)
        except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
            self._set_status(f"Prediction failed: {type(exc).__name__}: {exc}", error=True)
            return
        self._show_prediction(prediction)

    def _show_preview(self, x: np.ndarray) -> None:
        data = np.ascontiguousarray((x * 255).astype(np.uint8))
        img = QImage(data.data, 28, 28, 28, QImage.Format.Format_Grayscale8).copy()
        dpr = max(1.0, float(self.preview.devicePixelRatioF()))
        size = round(28 * PREVIEW_SCALE * dpr)  # device pixels, so HiDPI screens show sharp squares too
        pix = QPixmap.fromImage(img.scaled(size, size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                           Qt.TransformationMode.FastTransformation))
        pix.setDevicePixelRatio(dpr)
        self.preview.setPixmap(pix)

    def _show_prediction(self, prediction: Any) -> None:
        self.prediction_count += 1
        self.last_prediction = prediction
        if prediction is None:
            self.last_probabilities = None
            self.last_values = None
            self.chart.set_values(None)
            self.predictionLabel.setText("–")
            self.predictionLabel.setProperty("predictedClass", -1)
            self.predictionLabel.setToolTip("")
            self.confidenceLabel.setText("draw a digit" if self.hintLabel.text() == DIGIT_HINT else "draw something")
            self._show_preview(np.zeros((28, 28), dtype=np.float32))
            self.predicted.emit(-1, 0.0)
            self._update_inside(None)
            return
        values = np.asarray(prediction.values)
        kind = getattr(prediction, "kind", None)
        is_probability = kind is None or kind.is_probability
        self.last_values = values
        self.last_probabilities = values if is_probability else None
        self.chart.set_values(values, prediction.sure)
        self.predictionLabel.setProperty("predictedClass", prediction.index)
        label = getattr(prediction, "label", str(prediction.index))
        self._fit_verdict_font(label)
        self.predictionLabel.setText(label if prediction.sure else f"{label}?")
        self.predictionLabel.setToolTip(label)
        self.confidenceLabel.setText(_verdict(prediction))
        self.predictionLabel.setAccessibleDescription(self.confidenceLabel.text())
        self.predicted.emit(prediction.index, prediction.score)
        self._update_inside(prediction)

    # ----- inside the network -----------------------------------------------------------------
    def _on_inside_toggled(self, on: bool) -> None:
        self.inside.setVisible(on)
        QSettings().setValue(SHOW_INSIDE_KEY, on)
        if not on:
            return
        QTimer.singleShot(0, self._on_inside_shown)  # once the splitter has laid the newly shown panel out
        self._refresh_probe()
        self._update_inside(self.last_prediction)

    def _on_inside_shown(self) -> None:
        """The probabilities keep 2/5 of the width (at least their minimum), the inside of the network the rest."""
        total = sum(self.insideSplitter.sizes())
        if total > 0 and self.inside.isVisible():
            first = max(self.probabilitiesPanel.minimumSizeHint().width(), total * 2 // 5)
            self.insideSplitter.setSizes([first, max(1, total - first)])

    def _refresh_probe(self) -> None:
        """Build the inside view's probe for the predictor's model in the background, if the view is on and it has
        none for that model yet."""
        model = getattr(self.predictor, "model", None)
        if not self.insideButton.isChecked() or model is self._probe_model:
            return
        self._probe_model = model
        if model is None:
            self.inside.set_probe(None)
            return
        self.inside.set_loading(self.source_label)
        self._runner.submit(lambda: _probe_job(model), lambda probe: self._on_probe_ready(model, probe),
                            lambda exc, _tb: self._on_probe_error(model, exc))

    def _on_probe_ready(self, model: Any, probe: Any) -> None:
        if model is not getattr(self.predictor, "model", None):
            return  # another model came meanwhile; its own probe follows
        self.inside.set_probe(probe)
        self._update_inside(self.last_prediction)

    def _on_probe_error(self, model: Any, exc: BaseException) -> None:
        if model is not getattr(self.predictor, "model", None):
            return
        message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        self.inside.set_probe(None, note=f"What this network sees cannot be shown: {message}")

    def _update_inside(self, prediction: Any) -> None:
        """Hand the drawing just predicted to the inside view (when it is on): the same coalesced update."""
        if not self.insideButton.isChecked():
            return
        if prediction is None or not self.last_input.any():
            self.inside.clear_drawing()
            return
        self.inside.show_drawing(self.last_input, prediction.index, getattr(prediction, "label", str(prediction.index)))

    def _fit_verdict_font(self, label: str) -> None:
        """The verdict's big font for a digit, smaller for a class name ("Ankle boot") so it fits beside the
        preview."""
        font = QFont(self._big_font)
        if len(label) > 2:
            font.setPointSizeF(max(self.font().pointSizeF() * 1.6, self._big_font.pointSizeF() * 2.4 / len(label)))
        if self.predictionLabel.font() != font:
            self.predictionLabel.setFont(font)

    # ----- lifecycle --------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._load_bundled and self.predictor is None and not self._loading:
            self._load_bundled = False
            QTimer.singleShot(0, self.load_bundled_model)

    def shutdown(self) -> None:
        """Stop the workspace's own loader thread and the inside view's worker (call before the window closes)."""
        self.inside.shutdown()
        if self._own_runner:
            self._runner.shutdown()
