"""The hyperparameter form of the Train workspace, next to the data source.

The form edits a copy of the design's :class:`TrainingSettings`; the values are
validated by ``TrainingSettings.validate`` when Train is pressed, so the rules
live in one place (core) and the form only offers sensible ranges. Choosing and
previewing the data source is a concept of its own (:mod:`.data_picker`); the
form only hosts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.training_settings import LOSSES, OPTIMIZERS, TrainingSettings
from neuralstudio.ui.train.data_picker import DataPicker, data_source_choices

__all__ = ["SettingsPanel", "data_source_choices"]  # data_source_choices: imported from here before the picker

_OPTIMIZER_TEXT = {"sgd": "SGD", "sgd-momentum": "SGD with momentum", "rmsprop": "RMSprop", "adam": "Adam",
                   "adamw": "AdamW"}
_LOSS_TEXT = {
    "sparse_categorical_crossentropy": "cross-entropy (class numbers)",
    "categorical_crossentropy": "cross-entropy (one-hot)",
    "quadratic": "quadratic cost (Nielsen: ½‖y − a‖²)",
    "mean_squared_error": "mean squared error (Keras: averaged over outputs)",
    "binary_crossentropy": "binary cross-entropy",
}


#: what each hyperparameter does and a typical range: on the field and its label, where a learner needs it
HYPERPARAMETER_TIPS: dict[str, str] = {
    "optimizer": "How the weights move down the gradient. SGD is plain gradient descent (Nielsen's book); "
                 "momentum keeps part of the last step; Adam adapts the step per weight and is the usual "
                 "default. Changing it usually means changing the learning rate too.",
    "learning_rate": "How far each step moves the weights. Too high and the loss jumps around or grows "
                     "(NaN); too low and it barely falls. Typical: 0.001 for Adam, 0.01-0.1 for SGD; "
                     "Nielsen's quadratic-cost network uses 3.0.",
    "batch_size": "How many examples each step averages its gradient over. Small batches: more, noisier "
                  "steps per epoch; large ones: fewer, smoother, faster on a GPU, and often need a larger "
                  "learning rate. Typical: 16-256 (Nielsen: 10).",
    "epochs": "How many times training goes through all the training examples. More epochs learn more, "
              "until the validation loss stops falling (then the network starts to overfit). Typical: "
              "5-30 for MNIST.",
    "loss": "What training minimises. Cross-entropy for a softmax output (labels as class numbers: sparse); "
            "the quadratic cost is Nielsen's for a sigmoid output, ½‖y − a‖² summed over the outputs. Keras's "
            "mean squared error averages it over the outputs instead, so the same learning rate steps 5x less "
            "for ten digits.",
    "validation_split": "The share of the training examples held back to check the network on data it is "
                        "not trained on; the validation curves show overfitting. Typical: 0.1-0.2; 0 turns "
                        "validation off.",
    "early_stopping": "Stop when the validation loss has not improved for this many epochs, and keep the "
                      "best weights. Off: train for all the epochs. Typical: 3-5.",
    "seed": "Fixes the random start (initial weights, shuffling), so that two runs differ only by what you "
            "changed. Random: a new start each run.",
}


#: on the Find… button next to the learning rate
FIND_LEARNING_RATE_TIP = ("Find a learning rate: trains briefly while the rate grows step by step from 1e-6 to "
                          "10 (Leslie Smith's range test), plots the loss against it and suggests the rate where "
                          "the loss fell fastest. Nothing changes until you click Use.")


#: on the per-layer signals box: what the run measures for the Inside tab, and what it costs
LAYER_STATS_TIP = ("Measure, at the end of each epoch, each layer's gradients (per unit, as Nielsen measures the "
                   "speed of learning), how far its weights moved, how "
                   "its weights and outputs are spread, and its dead or saturated units, on a fixed batch of "
                   "training examples: the Inside tab shows them. Costs a few percent of the training time "
                   "(3-5% on the MNIST sample).")
#: the box starts ticked: the measured cost is under 5% of the training time (snapshots: a median 2.8% of fit time
#: for nielsen-784-30-10 and 4.5% for nielsen-deep-sigmoid on the MNIST sample; drawing the Inside tab: 15-20 ms of
#: the GUI thread an epoch)
LAYER_STATS_DEFAULT = True


def _tips_by_box(panel: Any) -> dict[Any, str]:
    boxes = {"optimizer": panel.optimizer_box, "learning_rate": panel.lr_box, "batch_size": panel.batch_box,
             "epochs": panel.epochs_box, "loss": panel.loss_box, "validation_split": panel.val_box,
             "early_stopping": panel.early_box, "seed": panel.seed_box}
    return {boxes[k]: tip for k, tip in HYPERPARAMETER_TIPS.items()}


class SettingsPanel(QGroupBox):
    """Optimizer, learning rate, batch size, epochs, loss, validation split, early stopping,
    seed, device, mixed precision and the data source."""

    changed = Signal()
    #: the Find… button next to the learning rate was clicked (the workspace opens the range test)
    find_learning_rate_requested = Signal()

    def __init__(self, parent: QWidget | None = None, *, settings: Callable[[], QSettings] | None = None) -> None:
        """``settings`` makes the QSettings the recent data sources are kept in (default: the app's)."""
        super().__init__("Training settings", parent)
        self.data_picker = DataPicker(self, settings=settings)
        self.data_box = self.data_picker.box  # the data source box, as the form and its tests know it
        self.optimizer_box = QComboBox(self)
        self.optimizer_box.setObjectName("optimizerBox")
        for key in OPTIMIZERS:
            self.optimizer_box.addItem(_OPTIMIZER_TEXT.get(key, key), key)
        self.lr_box = QDoubleSpinBox(self)
        self.lr_box.setObjectName("learningRateBox")
        self.lr_box.setDecimals(6)
        self.lr_box.setRange(1e-6, 100.0)
        self.lr_box.setSingleStep(0.0005)
        self.lr_box.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.find_lr_button = QToolButton(self)
        self.find_lr_button.setObjectName("findLearningRateButton")
        self.find_lr_button.setText("Find…")
        self.find_lr_button.setToolTip(FIND_LEARNING_RATE_TIP)
        self.find_lr_button.setAccessibleName("Find a learning rate")
        self.find_lr_button.clicked.connect(self.find_learning_rate_requested)
        lr_row = QWidget(self)  # the field and its Find… button on one form row
        lr_layout = QHBoxLayout(lr_row)
        lr_layout.setContentsMargins(0, 0, 0, 0)
        lr_layout.addWidget(self.lr_box, 1)
        lr_layout.addWidget(self.find_lr_button)
        self.batch_box = QSpinBox(self)
        self.batch_box.setObjectName("batchSizeBox")
        self.batch_box.setRange(1, 65536)
        self.epochs_box = QSpinBox(self)
        self.epochs_box.setObjectName("epochsBox")
        self.epochs_box.setRange(1, 100_000)
        self.loss_box = QComboBox(self)
        self.loss_box.setObjectName("lossBox")
        for key in LOSSES:
            self.loss_box.addItem(_LOSS_TEXT.get(key, key), key)
        self.val_box = QDoubleSpinBox(self)
        self.val_box.setObjectName("validationSplitBox")
        self.val_box.setRange(0.0, 0.9)
        self.val_box.setSingleStep(0.05)
        self.val_box.setDecimals(2)
        self.early_box = QSpinBox(self)
        self.early_box.setObjectName("earlyStoppingBox")
        self.early_box.setRange(0, 1000)
        self.early_box.setSpecialValueText("off")
        self.early_box.setSuffix(" epochs")
        self.early_box.setToolTip("Stop when validation loss has not improved for this many epochs")
        self.seed_box = QSpinBox(self)
        self.seed_box.setObjectName("seedBox")
        self.seed_box.setRange(-1, 2**31 - 1)
        self.seed_box.setSpecialValueText("random")
        self.device_box = QComboBox(self)
        self.device_box.setObjectName("deviceBox")
        self.device_box.addItem("automatic", "auto")
        self.device_box.addItem("CPU", "cpu")
        # The backend under the device: which GPU is usable depends on it (set by the workspace once Keras runs).
        # Its own row: beside the device box it widened the whole form by its 200-odd pixels. One short line, not
        # word-wrapped (a wrapped label reserved a second line's height in the form): the GPU's name is in the tip.
        self.backend_label = QLabel("", self)
        self.backend_label.setObjectName("backendLabel")
        self.backend_label.setAccessibleName("Keras backend")
        self.set_backend(_backend_label(), BACKEND_TIP)
        self.mixed_box = QCheckBox("mixed precision (GPU only)", self)
        self.mixed_box.setObjectName("mixedPrecisionBox")
        self.mixed_box.setEnabled(False)
        self.mixed_box.setToolTip("Needs a GPU: float16 arithmetic, about twice as fast on recent GPUs")
        self.layer_stats_box = QCheckBox("Per-layer signals (Inside tab)", self)
        self.layer_stats_box.setObjectName("layerStatsBox")
        self.layer_stats_box.setAccessibleName("Per-layer signals")
        self.layer_stats_box.setToolTip(LAYER_STATS_TIP)
        self.layer_stats_box.setChecked(LAYER_STATS_DEFAULT)

        for w, tip in _tips_by_box(self).items():
            w.setToolTip(tip)
        form = QFormLayout()
        form.addRow("Data", self.data_picker)
        for label, w in (("Optimizer", self.optimizer_box),
                         ("Learning rate", self.lr_box), ("Batch size", self.batch_box),
                         ("Epochs", self.epochs_box), ("Loss", self.loss_box),
                         ("Validation split", self.val_box), ("Early stopping", self.early_box),
                         ("Seed", self.seed_box), ("Device", self.device_box)):
            w.setAccessibleName(label)
            caption = QLabel(label, self)
            caption.setToolTip(w.toolTip())  # the tip on the words a learner reads, not only on the field
            form.addRow(caption, lr_row if w is self.lr_box else w)
        form.addRow("", self.backend_label)
        form.addRow("", self.mixed_box)
        form.addRow("", self.layer_stats_box)
        self.estimate_label = QLabel("", self)
        self.estimate_label.setObjectName("estimateLabel")
        self.estimate_label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.estimate_label)
        lay.addStretch(1)
        self.data_picker.source_changed.connect(self._on_changed)
        for w in (self.optimizer_box, self.loss_box, self.device_box):
            w.currentIndexChanged.connect(self._on_changed)
        for w in (self.lr_box, self.val_box):
            w.valueChanged.connect(self._on_changed)
        for w in (self.batch_box, self.epochs_box, self.early_box, self.seed_box):
            w.valueChanged.connect(self._on_changed)
        self.device_box.currentIndexChanged.connect(self._on_device_changed)
        self.set_settings(TrainingSettings())

    # ------------------------------------------------------------------ values
    def set_settings(self, s: TrainingSettings, data_source: str | None = None) -> None:
        """Show ``s`` (and the design's data source) in the form."""
        self.blockSignals(True)
        try:
            _select(self.optimizer_box, s.optimizer)
            self.lr_box.setValue(float(s.learning_rate))
            self.batch_box.setValue(int(s.batch_size))
            self.epochs_box.setValue(int(s.epochs))
            _select(self.loss_box, s.loss)
            self.val_box.setValue(float(s.validation_split))
            self.early_box.setValue(int(s.early_stopping or 0))
            self.seed_box.setValue(-1 if s.seed is None else int(s.seed))
            self._momentum = s.momentum
            if data_source is not None:
                self.data_picker.set_source(data_source)
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def settings(self) -> TrainingSettings:
        """The form's values as validated settings (raises ``SettingsError`` with a readable message)."""
        s = TrainingSettings(
            optimizer=self.optimizer_box.currentData(),
            learning_rate=float(self.lr_box.value()),
            momentum=getattr(self, "_momentum", 0.9),
            batch_size=int(self.batch_box.value()),
            epochs=int(self.epochs_box.value()),
            loss=self.loss_box.currentData(),
            validation_split=float(self.val_box.value()),
            early_stopping=int(self.early_box.value()) or None,
            seed=None if self.seed_box.value() < 0 else int(self.seed_box.value()),
        )
        s.validate()
        return s

    def set_learning_rate(self, value: float) -> None:
        """Put ``value`` into the learning-rate field as typing it would: ``changed`` follows, so the workspace
        writes it into the design's settings (the field's range, 1e-6 to 100, clamps it)."""
        self.lr_box.setValue(float(value))

    def data_source(self) -> str:
        """The chosen source as the loaders take it: a named set or a path."""
        return self.data_picker.source()

    def data_name(self) -> str:
        """The chosen source in words, for the event log (a file's full path)."""
        return self.data_picker.source_label()

    def device(self) -> str:
        return str(self.device_box.currentData())

    def mixed_precision(self) -> bool:
        return self.mixed_box.isEnabled() and self.mixed_box.isChecked()

    def layer_stats(self) -> bool:
        """Whether the run measures the per-layer signals the Inside tab shows."""
        return self.layer_stats_box.isChecked()

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        """Offer ``(key, label)`` devices beyond automatic/CPU, e.g. ``("gpu:0", "GPU 0: H200")``."""
        current = self.device()
        while self.device_box.count() > 2:
            self.device_box.removeItem(2)
        for key, label in devices:
            self.device_box.addItem(label, key)
        _select(self.device_box, current)
        self._on_device_changed()

    def set_backend(self, text: str, tip: str) -> None:
        """Show the Keras backend under the device choice, e.g. "Backend: JAX 0.10.2 — CPU", and why in ``tip``."""
        self.backend_label.setText(text)
        self.backend_label.setToolTip(tip)

    def has_gpu(self) -> bool:
        return any(str(self.device_box.itemData(i)).startswith("gpu") for i in range(self.device_box.count()))

    def set_running(self, running: bool) -> None:
        """Lock the form while a run is going: the run trains the values it started with."""
        picker = self.data_picker
        for w in self.findChildren(QWidget):
            if w not in (self.estimate_label, self.backend_label, picker) and not picker.isAncestorOf(w):
                w.setEnabled(not running)
        picker.set_running(running)  # the picker knows which of its parts may be used
        if not running:
            self._on_device_changed()

    # ------------------------------------------------------------------- slots
    def _on_changed(self, *_: Any) -> None:
        self.changed.emit()

    def _on_device_changed(self, *_: Any) -> None:
        dev = self.device()
        gpu_possible = dev.startswith("gpu") or (dev == "auto" and self.has_gpu())
        self.mixed_box.setEnabled(gpu_possible)
        if not gpu_possible:
            self.mixed_box.setChecked(False)


#: the backend label's tooltip until the device report says more
BACKEND_TIP = ("The Keras backend training runs on: TensorFlow, JAX or PyTorch. Change it in Settings > Keras "
               "Backend (applies at the next start).")


def _backend_label() -> str:
    """"Backend: TensorFlow", without importing Keras (the backend chosen before the window started)."""
    from neuralstudio.ml.backends import current, label

    return f"Backend: {label(current())}"


def _select(box: QComboBox, key: Any) -> None:
    i = box.findData(key)
    if i >= 0:
        box.setCurrentIndex(i)
