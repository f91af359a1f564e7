"""Fast single-image prediction for the Predict workspace and ``neuralstudio predict``, read truthfully.

``keras.Model.predict`` rebuilds its data pipeline on every call (~35 ms here),
far too slow to follow a pen.  :class:`Predictor` checks once that the model can
take a 28x28 grey image, compiles one graph function for a batch of one, warms
it up, and from then on a prediction is a single call to that function
(well under 2 ms for the bundled model on CPU).

What the outputs mean is decided once, from the model's last layer
(:func:`output_kind`), never guessed from the numbers: a softmax output gives
probabilities and is shown as it is; a sigmoid output (Nielsen's ``784-30-10``
network, trained with the quadratic cost) gives one activation per class that
need not sum to 1, and is shown as those activations, the verdict resting on the
largest one and its margin over the next; a linear output gives logits, shown as
their softmax and said so.  A single sigmoid (or linear) unit is a binary
classifier: the probability of class 1 (the sigmoid of a logit).  Softmaxing
sigmoid outputs again, as this module once did, turned a clean 7 with activation
0.83 into "7? not sure (21%)".

The outputs are named by the class names of the data the model was trained on
(stored with the model, ``ml/model_metadata.py``), else numbered ``0..K-1``.

A model that is being trained in another thread must not be used for
prediction (its weights change under it, and Keras models are not thread
safe): :func:`inference_copy` makes an independent copy first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralstudio.core.class_names import is_digit_names, names_for_outputs
from neuralstudio.core.errors import UserError

N_CLASSES = 10  # the digit models NeuralStudio ships and most learners train; any K >= 1 is accepted
NOT_SURE_BELOW = 0.5
#: A verdict is sure only when the largest value beats the next by this much (as well as being at least 0.5).
MARGIN = 0.2

# How a model's output values are read.
PROBABILITIES = "probabilities"  # softmax: shown as they are
LOGITS = "logits"  # linear: shown as their softmax
ACTIVATIONS = "activations"  # sigmoid, tanh, relu...: shown as they are, not as probabilities
BINARY = "binary"  # one sigmoid unit: the probability of class 1
BINARY_LOGIT = "binary-logit"  # one linear unit: the sigmoid of the logit is the probability of class 1

# Layers that pass their input through unchanged at inference: the activation that matters is before them.
_PASS_THROUGH = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
                           "GaussianDropout", "GaussianNoise", "Flatten", "Reshape", "Identity",
                           "ActivityRegularization", "Cast"})
_ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu",
                      "PReLU": "prelu"}
_BOUNDED_01 = frozenset({"sigmoid", "hard_sigmoid"})
_LOGIT_ACTIVATIONS = frozenset({"linear", "log_softmax"})  # softmax(log p) = p: log-probabilities read as logits


class IncompatibleModelError(UserError, ValueError):
    """A model that cannot classify a 28x28 grey image; the message says why."""


@dataclass(frozen=True)
class OutputKind:
    """How to read a classifier's outputs: decided once from its last layer's activation.

    Args:
        activation: the output layer's activation ("softmax", "sigmoid", "linear", "relu"...), or
            "unknown" when the last layer is of a kind that says nothing (an Add, a custom layer).
        units: the number of output values.
    """

    activation: str
    units: int

    @property
    def mode(self) -> str:
        """One of :data:`PROBABILITIES`, :data:`LOGITS`, :data:`ACTIVATIONS`, :data:`BINARY`, :data:`BINARY_LOGIT`."""
        if self.units == 1:
            if self.activation in _BOUNDED_01:
                return BINARY
            if self.activation == "linear":
                return BINARY_LOGIT
            return ACTIVATIONS
        if self.activation == "softmax":
            return PROBABILITIES
        if self.activation in _LOGIT_ACTIVATIONS:
            return LOGITS
        return ACTIVATIONS

    @property
    def is_probability(self) -> bool:
        """True when the values shown are probabilities (they sum to 1); False for raw activations."""
        return self.mode != ACTIVATIONS

    @property
    def num_classes(self) -> int:
        """Classes the values are over: two for a single binary unit, else one per output."""
        return 2 if self.mode in (BINARY, BINARY_LOGIT) else self.units

    @property
    def bounded(self) -> tuple[float, float] | None:
        """The range the values shown always lie in, or None (relu, linear of unknown layers...)."""
        if self.is_probability or self.activation in _BOUNDED_01:
            return (0.0, 1.0)
        if self.activation == "tanh":
            return (-1.0, 1.0)
        return None

    @property
    def value_label(self) -> str:
        """What a shown value is, for the chart's axis: "probability", "output activation (sigmoid)"..."""
        return {PROBABILITIES: "probability", LOGITS: "softmax of the outputs",
                BINARY: "probability (sigmoid output)", BINARY_LOGIT: "probability (sigmoid of the output)",
                }.get(self.mode) or ("output value" if self.activation == "unknown"
                                     else f"output activation ({self.activation})")

    @property
    def description(self) -> str:
        """One sentence on how the outputs are read, for the status line and ``predict``."""
        mode = self.mode
        if mode == PROBABILITIES:
            return "Softmax output: the values are the network's probabilities."
        if mode == LOGITS:
            return (f"{self.activation.capitalize()} output (logits): shown as the softmax of the outputs, which is "
                    "what the network's probabilities would be.")
        if mode == BINARY:
            return "One sigmoid output: the probability of the second class (1 minus it for the first)."
        if mode == BINARY_LOGIT:
            return "One linear output (a logit): its sigmoid is the probability of the second class."
        if self.activation == "unknown":
            return ("The output layer has no activation NeuralStudio knows: its raw values are shown, "
                    "not probabilities.")
        return (f"{self.activation.capitalize()} output: each class gets its own activation; they are not "
                "probabilities and need not sum to 1. The verdict is the largest activation and its margin over "
                "the next.")

    def values(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs ``(n, units)`` -> the values shown ``(n, num_classes)``, as :attr:`mode` says."""
        raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
        mode = self.mode
        if mode == PROBABILITIES:
            return np.clip(raw, 0.0, 1.0)
        if mode == LOGITS:
            return _softmax(raw)
        if mode in (BINARY, BINARY_LOGIT):
            p = np.clip(raw[:, :1], 0.0, 1.0) if mode == BINARY else 1.0 / (1.0 + np.exp(-raw[:, :1]))
            return np.concatenate([1.0 - p, p], axis=1)
        return raw


SOFTMAX_OUTPUT = OutputKind("softmax", N_CLASSES)


@dataclass(frozen=True)
class Prediction:
    """The result for one image: the values shown, the class chosen, and how sure that is.

    Args:
        values: one value per class, as :attr:`kind` says (probabilities, or the raw activations).
        index: the class chosen (the largest value).
        score: ``values[index]``.
        kind: how the model's outputs are read.
        class_names: one name per class.
    """

    values: np.ndarray
    index: int
    score: float
    kind: OutputKind = SOFTMAX_OUTPUT
    class_names: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """The chosen class's name ("7", "cat")."""
        return self.class_names[self.index] if self.index < len(self.class_names) else str(self.index)

    @property
    def margin(self) -> float:
        """How far the chosen value is above the next largest (the whole value when there is one class)."""
        if len(self.values) < 2:
            return float(self.score)
        return float(self.score - np.partition(self.values, -2)[-2])

    @property
    def runner_up(self) -> float | None:
        """The second largest value (None for a single class)."""
        return None if len(self.values) < 2 else float(np.partition(self.values, -2)[-2])

    @property
    def sure(self) -> bool:
        """The top value is at least 0.5 (a probability, or a sigmoid's activation) and stands out from the next by
        :data:`MARGIN`: with two classes a top probability is always at least 0.5, so 0.5 alone says nothing.
        Unbounded activations (relu...) need the margin relative to their size."""
        if (self.kind.is_probability or self.kind.bounded == (0.0, 1.0)) and self.score < NOT_SURE_BELOW:
            return False
        scale = 1.0 if self.kind.bounded is not None else max(1.0, abs(self.score))
        return self.margin >= MARGIN * scale

    # Names of the first version, still used by the self-test, the export tests and the benchmarks.
    @property
    def probabilities(self) -> np.ndarray:
        """The values shown (probabilities only when ``kind.is_probability``)."""
        return self.values

    @property
    def digit(self) -> int:
        return self.index

    @property
    def confidence(self) -> float:
        return self.score

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of ``neuralstudio predict --json``: probabilities or activations, named as they are."""
        out: dict[str, Any] = {"predicted": self.index, "label": self.label, "output": self.kind.mode,
                               "value_label": self.kind.value_label, "score": round(self.score, 6),
                               "margin": round(self.margin, 6), "sure": self.sure}
        values = [round(float(v), 6) for v in self.values]
        if self.kind.is_probability:
            out["confidence"] = round(self.score, 6)
            out["probabilities"] = values
        else:
            out["activations"] = values
        return out


def _dims(shape: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in shape)


def _input_adapter(shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """The per-image shape a 28x28 array is reshaped to for a model input of ``shape`` (batch included).

    Raises:
        IncompatibleModelError: the input cannot hold one 28x28 grey image.
    """
    per_image = shape[1:]

    def fits(dim: int | None, want: int) -> bool:
        return dim is None or dim == want

    if len(per_image) == 2 and fits(per_image[0], 28) and fits(per_image[1], 28):
        return (28, 28)
    if len(per_image) == 3 and fits(per_image[0], 28) and fits(per_image[1], 28) and fits(per_image[2], 1):
        return (28, 28, 1)
    if len(per_image) == 3 and fits(per_image[0], 1) and fits(per_image[1], 28) and fits(per_image[2], 28):
        return (1, 28, 28)  # channels-first
    if len(per_image) == 1 and fits(per_image[0], 784):
        return (784,)
    shown = "(" + ", ".join("None" if d is None else str(d) for d in per_image) + ")"
    hint = ""
    if len(per_image) == 3 and per_image[-1] == 3:
        hint = " It expects colour (3-channel) images; digits here are grey (1 channel)."
    elif len(per_image) >= 2 and per_image[0] not in (None, 28, 1):
        hint = f" It expects {per_image[0]}x{per_image[1]} images; drawn digits are prepared as 28x28 (MNIST)."
    raise IncompatibleModelError(
        f"This model's input has shape {shown}, which cannot take a 28x28 grey digit.{hint} "
        "Use a model whose input is (28, 28), (28, 28, 1) or (784,), for example one trained on MNIST."
    )


def check_model(model: Any) -> tuple[int, ...]:
    """Check that ``model`` classifies one 28x28 grey image into classes; return the input reshape.

    Any number of classes is accepted (a digit model has 10, a cat/dog folder 2, a single sigmoid unit is
    binary): what the outputs mean comes from :func:`output_kind` and the stored class names.

    Raises:
        IncompatibleModelError: several inputs or outputs, a wrong input shape, or an output that is not one
            value per class ``(None, K)``.
    """
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if not inputs or not outputs:
        raise IncompatibleModelError(
            "This model has no defined input (it was never built); save it after training or after calling it once."
        )
    if len(inputs) != 1:
        raise IncompatibleModelError(f"This model has {len(inputs)} inputs; a classifier here has one image input.")
    if len(outputs) != 1:
        raise IncompatibleModelError(f"This model has {len(outputs)} outputs; a classifier here has one output.")
    reshape = _input_adapter(_dims(inputs[0].shape))
    out_shape = _dims(outputs[0].shape)
    if len(out_shape) != 2 or out_shape[1] is None or out_shape[1] < 1:
        shown = "(" + ", ".join("None" if d is None else str(d) for d in out_shape[1:]) + ")"
        raise IncompatibleModelError(
            f"This model's output has shape {shown}; a classifier outputs one value per class, such as 10 values "
            "for the digits 0-9: end it with Flatten and Dense(classes, softmax)."
        )
    return reshape


def output_units(model: Any) -> int:
    """The number of values the model's (single, flat) output gives per image."""
    return int(_dims(model.outputs[0].shape)[-1])


def output_activation(model: Any) -> str:
    """The activation of the layer that makes ``model``'s output: "softmax", "sigmoid", "linear"..., or "unknown".

    Read from the layers (a Dense or Activation layer's activation, a Softmax layer), looking through layers
    that pass values on unchanged at inference (Dropout, Flatten, Reshape...) and into a nested model that
    is the last layer.  Never from the values: softmax outputs and sigmoid outputs that happen to sum to
    about 1 look alike.
    """
    import keras

    outputs = getattr(model, "outputs", None) or [None]
    layers = getattr(model, "layers", None) or [None]
    layer = _producer(outputs[0]) or layers[-1]
    for _ in range(1_000):  # a chain of pass-through layers, bounded
        if layer is None:
            return "unknown"
        if isinstance(layer, keras.Model) and layer is not model:
            return output_activation(layer)  # a nested model
        name = _layer_activation(layer)
        if name is not None:
            return name
        if type(layer).__name__ not in _PASS_THROUGH:
            return "unknown"
        layer = _single_input_producer(layer)
    return "unknown"


def output_kind(model: Any) -> OutputKind:
    """How to read ``model``'s outputs (its last layer's activation and its number of outputs)."""
    return OutputKind(output_activation(model), output_units(model))


def _producer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _single_input_producer(layer: Any) -> Any:
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if len(nodes) != 1:
        return None
    tensors = list(getattr(nodes[0], "input_tensors", None) or [])
    return _producer(tensors[0]) if len(tensors) == 1 else None


def _layer_activation(layer: Any) -> str | None:
    """The activation a layer applies last, by name, or None when it has none of its own."""
    kind = type(layer).__name__
    if kind in _ACTIVATION_LAYERS:
        return _ACTIVATION_LAYERS[kind]
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    if callable(act) and type(act).__name__ in _ACTIVATION_LAYERS:  # Dense(activation=keras.layers.Softmax())
        return _ACTIVATION_LAYERS[type(act).__name__]
    name = getattr(act, "__name__", None)
    return str(name) if isinstance(name, str) and name else "unknown"


def inference_copy(model: Any) -> Any:
    """An independent copy of ``model`` (same architecture and weights) to predict with.

    The copy shares no variables with the original, so training can continue on
    the original in another thread without the prediction ever seeing half-updated
    weights (or touching the training thread's objects).
    """
    import keras

    try:
        # from_config gives an uncompiled copy: clone_model would also recompile it with the
        # training run's own optimizer object.
        clone = type(model).from_config(model.get_config())
    except Exception:  # noqa: BLE001 - subclassed models may not round-trip their config
        try:
            clone = keras.models.clone_model(model)
        except Exception as exc:  # noqa: BLE001
            raise IncompatibleModelError(f"This model cannot be copied for prediction: {exc}") from None
    clone.set_weights(model.get_weights())
    return clone


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# Only for the exported standalone predict.py (ml/export.py copies this function's source, docstring included, into
# a script for people without NeuralStudio) and its verification. Predict and the `predict` command read the model's
# own output layer instead (output_kind): this guess from the values gets sigmoid outputs wrong.
def to_probabilities(raw: np.ndarray) -> np.ndarray:
    """Raw model outputs -> probabilities: softmax outputs pass through, logits get a softmax."""
    raw = np.asarray(raw, dtype=np.float64)
    sums = raw.sum(axis=-1)
    if np.all(raw >= -1e-6) and np.allclose(sums, 1.0, atol=1e-3):
        return np.clip(raw, 0.0, 1.0)
    return _softmax(raw)


class Predictor:
    """Classify 28x28 grey images with a Keras model, fast enough to follow the pen.

    Args:
        model: a built ``keras.Model`` with one input that can take a 28x28 grey
            image ((28, 28), (28, 28, 1), (1, 28, 28) or (784,)) and one value per class.
        class_names: the names of the classes (stored with the model by the trainer); ``"0".."K-1"``
            when None.
        trained_on: how the data the names came from is named ("Fashion-MNIST"), for display.
        warm_up: run one prediction now so the first real one is fast.

    Attributes:
        kind: how the outputs are read (:func:`output_kind`), decided here once.
        class_names: one name per class shown.
        names_known: True when the names came with the model (not just its output numbers).
        trained_on: as given.

    Raises:
        IncompatibleModelError: the model cannot classify 28x28 grey images.
    """

    def __init__(self, model: Any, *, class_names: Sequence[str] | None = None, trained_on: str | None = None,
                 warm_up: bool = True) -> None:
        self.model = model
        self.trained_on = trained_on
        self.reshape = check_model(model)
        self.kind = output_kind(model)
        self.class_names = tuple(names_for_outputs(class_names, self.kind.num_classes))
        self.names_known = class_names is not None and not is_digit_names(self.class_names)
        self._fn = self._make_function()
        if warm_up:
            self.predict_batch(np.zeros((1, 28, 28), dtype=np.float32))

    def _make_function(self) -> Any:
        """One compiled function for a batch (no data pipeline, no callbacks): ``ml/backends.forward_function``."""
        from neuralstudio.ml.backends import forward_function

        return forward_function(self.model, self.reshape)

    def raw_batch(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The model's own outputs ``(n, units)`` for ``n`` prepared 28x28 images (values in [0, 1])."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.shape[1:] != (28, 28):
            raise ValueError(f"expected prepared (n, 28, 28) images, got shape {x.shape}")
        x = np.ascontiguousarray(x.reshape((x.shape[0], *self.reshape)))
        return np.asarray(self._fn(x)).reshape(x.shape[0], -1)

    def predict_batch(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The values shown ``(n, classes)`` for ``n`` prepared images, read as :attr:`kind` says: probabilities
        for softmax, binary and logit outputs, the activations themselves for sigmoid (and other) outputs."""
        return self.kind.values(self.raw_batch(images))

    def prediction(self, values: np.ndarray) -> Prediction:
        """The :class:`Prediction` for one row of :meth:`predict_batch`."""
        values = np.asarray(values, dtype=np.float64)
        index = int(np.argmax(values))
        return Prediction(values=values, index=index, score=float(values[index]), kind=self.kind,
                          class_names=self.class_names)

    def predict(self, image: np.ndarray) -> Prediction:
        """The prediction for one prepared ``(28, 28)`` image."""
        return self.prediction(self.predict_batch(image)[0])
