"""The inference graph of a model: what the graph exports (SavedModel, LiteRT, ONNX) hold.

A design may contain layers that only act while the network trains: data
augmentation (``RandomRotation``, ``RandomZoom``...), noise and dropout.  At
inference Keras computes each of them as the identity, but only when the model
is called with ``training=False``.  Keras 3 records ``training=True`` on every
call of an augmentation layer (the default of their ``call`` signature), and its
exporters trace the model without a training flag, so a SavedModel or ONNX file
of such a model holds the random ops and augments every image it classifies
(docs/ARCHITECTURE.md, "Traps"); tf2onnx cannot even convert them
(``StatelessRandomUniformV2``, ``ImageProjectiveTransformV3``).

:func:`inference_model` returns a model for those exporters: the same layer
objects (so the same weights, nothing copied), with every layer of
:data:`TRAINING_ONLY_LAYERS` bypassed and every other layer called with
``training=False``; for LiteRT, which has no loop among its built-in
operations, recurrent layers over a fixed number of steps are unrolled copies.
The exports are still verified against the original model
(:mod:`neuralstudio.ml.verify`), so the bypass has to be exactly what Keras
computes; ``tests/ml/test_export_templates.py`` checks every listed class.

The formats that keep the whole network (``.keras``, ``.h5``, weights, the
Python code) use the model itself: training it further must still augment.

This module is the one place that knows which layers are training-only.
"""

from __future__ import annotations

import inspect
from typing import Any

#: Keras layers whose output at inference (``training=False``) is their input, unchanged and of the same
#: shape: augmentation, noise, dropout, activity regularisation.  Not listed on purpose: ``RandomCrop``
#: (Keras 3.15 returns the uncropped image at inference while it declares the cropped shape, so the
#: layers after it are built for another shape), and deterministic preprocessing (``AutoContrast``,
#: ``Equalization``, ``Rescaling``...), which is part of what the network computes.  A layer that is not
#: listed is never wrong: it is traced with ``training=False`` like every other layer.
TRAINING_ONLY_LAYERS: frozenset[str] = frozenset({
    # augmentation (keras.layers, image preprocessing)
    "RandomRotation", "RandomTranslation", "RandomZoom", "RandomFlip", "RandomContrast", "RandomBrightness",
    "RandomShear", "RandomPerspective", "RandomElasticTransform", "RandomErasing", "RandomGaussianBlur",
    "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomSharpness", "RandomColorDegeneration",
    "RandomColorJitter", "RandomInvert", "RandomPosterization", "Solarization", "AugMix", "RandAugment",
    "CutMix", "MixUp",
    # regularisation
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "GaussianNoise",
    "AlphaDropout", "ActivityRegularization",
})

_MODEL_CLASSES = ("Functional", "Sequential")


def is_training_only(layer_or_class_name: Any) -> bool:
    """Whether a layer (or a class name) is the identity at inference, so an inference graph leaves it out."""
    name = layer_or_class_name if isinstance(layer_or_class_name, str) else type(layer_or_class_name).__name__
    return name in TRAINING_ONLY_LAYERS


def training_only_layers(model: Any) -> list[str]:
    """The names of ``model``'s training-only layers, nested models included, in layer order."""
    found: list[str] = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ in _MODEL_CLASSES:
            found.extend(training_only_layers(layer))
        elif is_training_only(layer):
            found.append(str(layer.name))
    return found


def _unrollable(layer: Any, x: Any) -> bool:
    """A Keras recurrent layer (not yet unrolled) over a sequence whose number of steps is fixed."""
    import keras

    shape = getattr(x, "shape", None)
    return (isinstance(layer, keras.layers.RNN) and not getattr(layer, "unroll", True)
            and shape is not None and len(shape) >= 3 and shape[1] is not None)


def _unrolled_twin(layer: Any, input_shape: tuple[Any, ...]) -> Any:
    """A copy of the recurrent ``layer`` with ``unroll=True`` and its weights, or None if Keras cannot make one."""
    try:
        twin = type(layer).from_config({**layer.get_config(), "unroll": True})
        twin.build(input_shape)
        twin.set_weights(layer.get_weights())
    except (TypeError, ValueError):
        return None
    return twin


def recurrent_loops(model: Any) -> list[str]:
    """The names of the recurrent layers of ``model`` (nested models included) that still run a loop."""
    import keras

    found: list[str] = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ in _MODEL_CLASSES:
            found.extend(recurrent_loops(layer))
        elif isinstance(layer, keras.layers.RNN) and not getattr(layer, "unroll", True):
            found.append(str(layer.name))
    return found


def _takes_training(layer: Any) -> bool:
    """Whether the layer's ``call`` accepts a ``training`` argument (Keras passes it only to those)."""
    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False


def inference_model(model: Any, *, unroll_recurrent: bool = False) -> Any:
    """``model`` as it computes at inference, for exporters that trace it without a training flag.

    Args:
        model: a built functional or Sequential ``keras.Model``.
        unroll_recurrent: replace each recurrent layer (LSTM, GRU, SimpleRNN) over a fixed number of
            steps by an unrolled twin holding a copy of its weights, for a converter without loops (LiteRT's
            built-in operations have none: a loop would need TensorFlow's own ops, which the LiteRT
            interpreter does not have).  The twin computes the same steps one after the other.

    Returns:
        A functional model over the same layer objects (weights shared; the unrolled twins hold copies)
        with the training-only layers bypassed and every other layer called with ``training=False``; a
        model of another kind (a subclassed model) is returned unchanged, since its graph cannot be rewired.
        ``model`` itself is not changed: its layers only gain a call in the new graph.
    """
    import keras

    cache: dict[int, Any] = {}

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if is_training_only(layer):
            return args[0] if args else next(iter(kwargs.values()))
        if isinstance(layer, keras.Model) and type(layer).__name__ in _MODEL_CLASSES:
            kwargs.pop("training", None)
            inner = cache.get(id(layer))
            if inner is None:
                inner = cache[id(layer)] = inference_model(layer, unroll_recurrent=unroll_recurrent)
            return inner(*args, **kwargs)
        if unroll_recurrent and args and _unrollable(layer, args[0]):
            if id(layer) not in cache:
                cache[id(layer)] = _unrolled_twin(layer, tuple(args[0].shape))
            layer = cache[id(layer)] or layer  # no twin: the loop stays (the LiteRT export then says so)
        if _takes_training(layer):
            kwargs["training"] = False
        return layer(*args, **kwargs)

    if isinstance(model, keras.Sequential):
        spec = model.inputs[0] if model.inputs else None
        if spec is None:
            return model  # never built: nothing to trace yet (the exporter reports it)
        inputs = keras.Input(batch_shape=spec.shape, dtype=spec.dtype, name=spec.name)
        x = inputs
        for layer in model.layers:
            x = call(layer, x)
        return keras.Model(inputs, x, name=model.name)
    try:
        return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    except ValueError:  # a subclassed model: Keras cannot rewire its graph; exported as it is, still verified
        return model
