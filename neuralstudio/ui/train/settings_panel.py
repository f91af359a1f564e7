"""The hyperparameter form of the Train workspace, next to the data source.

The form edits a copy of the design's :class:`TrainingSettings`; the values are
validated by ``TrainingSettings.validate`` when Train is pressed, so the rules
live in one place (core) and the form only offers sensible ranges.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from neuralstudio.core.training_settings import LOSSES, OPTIMIZERS, TrainingSettings

_OPTIMIZER_TEXT = {"sgd": "SGD", "sgd-momentum": "SGD with momentum", "rmsprop": "RMSprop", "adam": "Adam",
                   "adamw": "AdamW"}
_LOSS_TEXT = {
    "sparse_categorical_crossentropy": "cross-entropy (class numbers)",
    "categorical_crossentropy": "cross-entropy (one-hot)",
    "mean_squared_error": "mean squared error (quadratic cost)",
    "binary_crossentropy": "binary cross-entropy",
}


def data_source_choices() -> list[tuple[str, str]]:
    """``(key, label)`` for every data source the engine offers (falls back to the bundled sample)."""
    try:
        from neuralstudio.ml.data import DATA_SOURCES
    except ImportError:
        return [("mnist-sample", "MNIST sample (bundled, offline)")]
    out: list[tuple[str, str]] = []
    items: Any = DATA_SOURCES.items() if isinstance(DATA_SOURCES, dict) else DATA_SOURCES
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            key, desc = item
        else:
            key, desc = item, item
        key = getattr(key, "name", key)
        label = getattr(desc, "title", None) or getattr(desc, "label", None) or getattr(desc, "description", None)
        if not isinstance(label, str):
            label = desc if isinstance(desc, str) else str(key)
        out.append((str(key), label if label != key else str(key)))
    return out or [("mnist-sample", "MNIST sample (bundled, offline)")]


class SettingsPanel(QGroupBox):
    """Optimizer, learning rate, batch size, epochs, loss, validation split, early stopping,
    seed, device, mixed precision and the data source."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training settings", parent)
        self.data_box = QComboBox(self)
        self.data_box.setObjectName("dataSourceBox")
        for key, label in data_source_choices():
            self.data_box.addItem(label, key)
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
        self.mixed_box = QCheckBox("mixed precision (GPU only)", self)
        self.mixed_box.setObjectName("mixedPrecisionBox")
        self.mixed_box.setEnabled(False)
        self.mixed_box.setToolTip("Needs a GPU: float16 arithmetic, about twice as fast on recent GPUs")

        form = QFormLayout()
        for label, w in (("Data", self.data_box), ("Optimizer", self.optimizer_box),
                         ("Learning rate", self.lr_box), ("Batch size", self.batch_box),
                         ("Epochs", self.epochs_box), ("Loss", self.loss_box),
                         ("Validation split", self.val_box), ("Early stopping", self.early_box),
                         ("Seed", self.seed_box), ("Device", self.device_box)):
            w.setAccessibleName(label)
            form.addRow(label, w)
        form.addRow("", self.mixed_box)
        self.estimate_label = QLabel("", self)
        self.estimate_label.setObjectName("estimateLabel")
        self.estimate_label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.estimate_label)
        lay.addStretch(1)
        for w in (self.data_box, self.optimizer_box, self.loss_box, self.device_box):
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
                if self.data_box.findData(data_source) < 0:
                    self.data_box.addItem(data_source, data_source)
                _select(self.data_box, data_source)
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

    def data_source(self) -> str:
        return str(self.data_box.currentData())

    def device(self) -> str:
        return str(self.device_box.currentData())

    def mixed_precision(self) -> bool:
        return self.mixed_box.isEnabled() and self.mixed_box.isChecked()

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        """Offer ``(key, label)`` devices beyond automatic/CPU, e.g. ``("gpu:0", "GPU 0: H200")``."""
        current = self.device()
        while self.device_box.count() > 2:
            self.device_box.removeItem(2)
        for key, label in devices:
            self.device_box.addItem(label, key)
        _select(self.device_box, current)
        self._on_device_changed()

    def has_gpu(self) -> bool:
        return any(str(self.device_box.itemData(i)).startswith("gpu") for i in range(self.device_box.count()))

    def set_running(self, running: bool) -> None:
        """Lock the form while a run is going: the run trains the values it started with."""
        for w in self.findChildren(QWidget):
            if w is not self.estimate_label:
                w.setEnabled(not running)
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


def _select(box: QComboBox, key: Any) -> None:
    i = box.findData(key)
    if i >= 0:
        box.setCurrentIndex(i)
