"""Fast single-image prediction for the Predict workspace and ``neuralstudio predict``.

``keras.Model.predict`` rebuilds its data pipeline on every call (~35 ms here),
far too slow to follow a pen.  :class:`Predictor` checks once that the model can
take a 28x28 grey digit, compiles one graph function for a batch of one, warms
it up, and from then on a prediction is a single call to that function
(well under 2 ms for the bundled model on CPU).

A model that is being trained in another thread must not be used for
prediction (its weights change under it, and Keras models are not thread
safe): :func:`inference_copy` makes an independent copy first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralstudio.core.errors import UserError

N_CLASSES = 10


class IncompatibleModelError(UserError, ValueError):
    """A model that cannot classify a 28x28 grey digit; the message says why."""


@dataclass(frozen=True)
class Prediction:
    """The result for one image."""

    probabilities: np.ndarray  # (10,) float, sums to 1
    digit: int
    confidence: float

    @property
    def sure(self) -> bool:
        """False when the network spreads its belief (top probability below 0.5)."""
        return self.confidence >= NOT_SURE_BELOW

    def as_dict(self) -> dict[str, Any]:
        return {
            "predicted": self.digit,
            "confidence": round(self.confidence, 6),
            "probabilities": [round(float(p), 6) for p in self.probabilities],
        }


NOT_SURE_BELOW = 0.5


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
    """Check that ``model`` classifies one 28x28 grey image into 10 classes; return the input reshape.

    Raises:
        IncompatibleModelError: several inputs or outputs, a wrong input shape, or not 10 outputs.
    """
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if not inputs or not outputs:
        raise IncompatibleModelError(
            "This model has no defined input (it was never built); save it after training or after calling it once."
        )
    if len(inputs) != 1:
        raise IncompatibleModelError(f"This model has {len(inputs)} inputs; a digit classifier has one image input.")
    if len(outputs) != 1:
        raise IncompatibleModelError(f"This model has {len(outputs)} outputs; a digit classifier has one output.")
    reshape = _input_adapter(_dims(inputs[0].shape))
    out_shape = _dims(outputs[0].shape)
    if len(out_shape) != 2 or out_shape[1] != N_CLASSES:
        shown = "(" + ", ".join("None" if d is None else str(d) for d in out_shape[1:]) + ")"
        raise IncompatibleModelError(
            f"This model's output has shape {shown}; a digit classifier outputs 10 values (one per digit 0-9)."
        )
    return reshape


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


def to_probabilities(raw: np.ndarray) -> np.ndarray:
    """Raw model outputs -> probabilities: softmax outputs pass through, logits get a softmax."""
    raw = np.asarray(raw, dtype=np.float64)
    sums = raw.sum(axis=-1)
    if np.all(raw >= -1e-6) and np.allclose(sums, 1.0, atol=1e-3):
        return np.clip(raw, 0.0, 1.0)
    return _softmax(raw)


class Predictor:
    """Classify 28x28 digits with a Keras model, fast enough to follow the pen.

    Args:
        model: a built ``keras.Model`` with one input that can take a 28x28 grey
            image ((28, 28), (28, 28, 1), (1, 28, 28) or (784,)) and 10 outputs.
        warm_up: run one prediction now so the first real one is fast.

    Raises:
        IncompatibleModelError: the model cannot classify 28x28 grey digits.
    """

    def __init__(self, model: Any, *, warm_up: bool = True) -> None:
        self.model = model
        self.reshape = check_model(model)
        self._fn = self._make_function()
        if warm_up:
            self.predict_batch(np.zeros((1, 28, 28), dtype=np.float32))

    def _make_function(self) -> Any:
        """One traced graph function for a batch of one (no data pipeline, no callbacks)."""
        import keras

        model = self.model
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec((None, *self.reshape), tf.float32)

            @tf.function(input_signature=[spec], reduce_retracing=True)
            def call(x: Any) -> Any:
                return model(x, training=False)

            return lambda x: call(x).numpy()
        return lambda x: keras.ops.convert_to_numpy(model(x, training=False))

    def predict_batch(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities ``(n, 10)`` for ``n`` prepared 28x28 images (values in [0, 1])."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.shape[1:] != (28, 28):
            raise ValueError(f"expected prepared (n, 28, 28) images, got shape {x.shape}")
        x = np.ascontiguousarray(x.reshape((x.shape[0], *self.reshape)))
        raw = np.asarray(self._fn(x))
        return to_probabilities(raw.reshape(x.shape[0], -1))

    def predict(self, image: np.ndarray) -> Prediction:
        """The prediction for one prepared ``(28, 28)`` image."""
        probs = self.predict_batch(image)[0]
        digit = int(np.argmax(probs))
        return Prediction(probabilities=probs, digit=digit, confidence=float(probs[digit]))
