"""What a network computes inside for one drawing: feature maps, Dense activations, filters, saliency.

The Predict workspace shows, next to the probabilities, what each convolution layer makes of the drawing,
the first layer's filters, the pixels that drove the answer and the activations of the Dense layers
(``ui/predict/inside_view.py``). This module computes all of it, without Qt:

- :class:`ActivationProbe` builds once, from a model's input, one ``keras.Model`` whose outputs are those of
  its convolution, Dense and recurrent layers (each taken after the BatchNormalization and activation layers
  that directly follow it, since that is what the next layer receives) and the model's own output. Like
  :class:`~neuralstudio.ml.inference.Predictor` it traces one graph function for a batch of one and warms it
  up, so a stroke costs one call of that function, never ``model.predict`` (docs/ARCHITECTURE.md, "Traps").
  ``Predictor``'s own function cannot be reused: it has the model's single output and returns NumPy, while
  the probe needs every layer's output and a function gradients can flow through.
- The saliency is gradient x input, the gradient taken in ``ml/gradients.py`` (the one module that takes
  derivatives): :func:`~neuralstudio.ml.gradients.outputs_and_input_gradient` compiles, once per probe, one
  function that returns every probed layer's output and the input gradient of the class output, so
  :meth:`ActivationProbe.look` costs one call, one forward and one backward pass, for all the views. For the
  bundled model that is about 5 ms a drawing on this CPU, against 16.5 ms for an eager gradient tape around the
  probe's traced forward pass and 56 ms for one around the model itself (docs/ARCHITECTURE.md, "Traps").
- :func:`first_layer_filters` and :func:`explain_unavailable` read the model's layers only.

Everything here runs on the caller's thread, which is never the GUI thread: the inside view builds, warms up
(tracing takes 0.5-1 s) and calls a probe on a plain thread of its own that computes only the newest drawing
(docs/ARCHITECTURE.md, "Threads").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralstudio.core.errors import UserError
from neuralstudio.ml.inference import IncompatibleModelError, check_model

__all__ = [
    "CONV_LAYERS",
    "DENSE",
    "DENSE_LAYERS",
    "FEATURE_MAPS",
    "FILTERS",
    "MAX_CHANNELS",
    "RECURRENT_LAYERS",
    "SALIENCY",
    "VIEWS",
    "ActivationProbe",
    "FirstLayerFilters",
    "LayerActivation",
    "Look",
    "ProbedLayer",
    "explain_unavailable",
    "first_layer_filters",
    "saliency",
    "unavailable_views",
]

# The views of the inside of a network, the keys of :func:`unavailable_views`.
FEATURE_MAPS = "feature_maps"
FILTERS = "filters"
SALIENCY = "saliency"
DENSE = "dense"
VIEWS = (FEATURE_MAPS, FILTERS, SALIENCY, DENSE)

#: Layers whose output is a stack of feature maps (one image per channel).
CONV_LAYERS = frozenset({"Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
                         "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose"})
DENSE_LAYERS = frozenset({"Dense", "EinsumDense"})
RECURRENT_LAYERS = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D"})
_SEQUENCE_LAYERS = RECURRENT_LAYERS | {"MultiHeadAttention", "GroupQueryAttention", "Attention",
                                       "AdditiveAttention"}
#: Layers taken together with the convolution or Dense layer right before them: what the next layer receives
#: is a convolution's output after its batch normalisation and activation, not before.
_FOLLOWED = frozenset({"BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax"})
_MODEL_CLASSES = frozenset({"Functional", "Sequential"})

#: Feature maps shown per layer by default (the rest are counted: "+k more").
MAX_CHANNELS = 16


@dataclass(frozen=True)
class ProbedLayer:
    """A layer the probe reads.

    Args:
        name: the layer's name.
        class_name: its Keras class ("Conv2D").
        shape: its output shape for one input, batch axis left out.
        through: the BatchNormalization and activation layers after it whose output is the one read.
        is_output: it makes the model's output (its values are the probabilities chart).
        channels_first: the channels come before the spatial axes (``data_format="channels_first"``).
    """

    name: str
    class_name: str
    shape: tuple[int | None, ...]
    through: tuple[str, ...] = ()
    is_output: bool = False
    channels_first: bool = False

    @property
    def kind(self) -> str:
        """"maps" for convolutions, "vector" for one value per unit (Dense, a recurrent layer's last state),
        "sequence" for values per position (a Dense applied to each row or patch), "other" otherwise."""
        if self.class_name in CONV_LAYERS and len(self.shape) in (2, 3):
            return "maps"
        if len(self.shape) == 1:
            return "vector"
        if len(self.shape) == 2 and self.class_name in DENSE_LAYERS | RECURRENT_LAYERS:
            return "sequence"
        return "other"

    @property
    def title(self) -> str:
        """The layer and the ones read with it: "conv_1a (Conv2D) → bn_1a → relu_1a"."""
        return " → ".join([f"{self.name} ({self.class_name})", *self.through])


@dataclass(frozen=True)
class LayerActivation:
    """One layer's output for one input.

    Args:
        layer: which layer it is.
        output: its output for the input, the batch axis removed, as the layer gives it.
    """

    layer: ProbedLayer
    output: np.ndarray

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def class_name(self) -> str:
        return self.layer.class_name

    @property
    def channels(self) -> int:
        """How many feature maps (or units) the layer has."""
        shape = self.output.shape
        if self.layer.kind == "maps":
            return int(shape[0] if self.layer.channels_first else shape[-1])
        return int(shape[-1]) if shape else 1

    def maps(self) -> np.ndarray:
        """The feature maps as ``(channels, height, width)``; a 1-D convolution's as one ``(1, channels, steps)``
        map, channels as rows, since one strip per channel would be too thin to read."""
        out = self.output
        if self.layer.kind != "maps":
            raise ValueError(f"{self.name} has no feature maps")
        if out.ndim == 2:  # Conv1D: (steps, channels) or (channels, steps)
            rows = out if self.layer.channels_first else out.T
            return rows[None]
        return out if self.layer.channels_first else np.moveaxis(out, -1, 0)

    def display_maps(self, limit: int = MAX_CHANNELS) -> tuple[np.ndarray, int]:
        """Up to ``limit`` feature maps scaled to 0..1 for display, and how many were left out.

        One scale for the whole layer (not per map), so a map that barely responds looks dark beside one that
        responds strongly: the point is to see which filters fire on the drawing. Non-negative outputs (after a
        ReLU) are divided by their maximum, so zero is black; signed ones are spread from their minimum to their
        maximum. The first ``limit`` channels are shown, always the same ones, so that the grid does not
        reshuffle while the pen moves.
        """
        maps = self.maps()
        shown = maps[:limit].astype(np.float32)
        return _unit_range(shown, np.asarray(maps)), max(0, len(maps) - limit)

    def vector(self) -> np.ndarray:
        """One value per unit (a Dense layer's activations), as float64."""
        return np.asarray(self.output, dtype=np.float64).reshape(-1)


@dataclass(frozen=True)
class FirstLayerFilters:
    """The kernels of a model's first convolution layer, ready to show, or why there are none.

    Args:
        images: ``(n, height, width)`` in 0..1, 0.5 being a zero weight (one scale for all the filters, by the
            largest absolute weight, so that the sign and strength of weights compare across filters), or None.
        layer: the layer's name, or None.
        class_name: its class, or None.
        reason: why there are no filters to show ("" when there are).
        note: what the images are when it is not obvious ("the kernels for the first input channel").
    """

    images: np.ndarray | None
    layer: str | None = None
    class_name: str | None = None
    reason: str = ""
    note: str = ""

    @property
    def available(self) -> bool:
        return self.images is not None


@dataclass(frozen=True)
class Look:
    """Everything :meth:`ActivationProbe.look` computes for one drawing.

    Args:
        activations: the probed layers' outputs, in the order of the model's layers.
        saliency: gradient x input, ``(28, 28)`` in 0..1, or None where the gradient is not available.
        output: the model's raw output for the drawing, ``(units,)``.
        class_index: the class the saliency is for.
        saliency_reason: why there is no saliency ("" when there is).
    """

    activations: list[LayerActivation]
    saliency: np.ndarray | None
    output: np.ndarray
    class_index: int
    saliency_reason: str = ""

    def feature_maps(self) -> list[LayerActivation]:
        return [a for a in self.activations if a.layer.kind == "maps"]

    def vectors(self, *, include_output: bool = False) -> list[LayerActivation]:
        """The layers with one value per unit; the output layer only when asked (it is the probabilities chart)."""
        return [a for a in self.activations if a.layer.kind == "vector" and (include_output or not a.layer.is_output)]


# ----------------------------------------------------------------------------- reading the layers
def _dims(shape: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in shape)


@dataclass(frozen=True, eq=False)
class _Call:
    """One call of a layer in a model's graph (a Keras node) and the calls that take its output."""

    layer: Any
    node: Any
    consumers: list[_Call]


def _key(tensor: Any) -> tuple[int, int] | None:
    """The call that made a symbolic tensor: (id of its layer, index of the layer's node)."""
    history = getattr(tensor, "_keras_history", None)
    return (id(history[0]), int(history[1])) if history else None


def _graph(model: Any) -> dict[tuple[int, int], _Call]:
    """Every layer call of ``model``'s own graph, walked back from its outputs.

    Not ``layer._inbound_nodes[0]``: a layer has a node for every graph it was called in, and a Sequential model
    loaded from a file has two for each layer (its build and its functional graph); only the nodes reached from
    this model's outputs are its own.
    """
    calls: dict[tuple[int, int], _Call] = {}
    stack = list(getattr(model, "outputs", None) or [])
    while stack:  # iterative: a deep network must not reach Python's recursion limit
        tensor = stack.pop()
        key = _key(tensor)
        if key is None or key in calls:
            continue
        history = tensor._keras_history
        nodes = getattr(history[0], "_inbound_nodes", None) or []
        if key[1] >= len(nodes):
            continue
        node = nodes[key[1]]
        calls[key] = _Call(history[0], node, [])
        stack.extend(node.input_tensors)
    for call in calls.values():
        for tensor in call.node.input_tensors:
            producer = calls.get(_key(tensor))
            if producer is not None and call not in producer.consumers:
                producer.consumers.append(call)
    return calls


def _probed(model: Any) -> list[tuple[ProbedLayer, Any]]:
    """The layers to read and the symbolic tensor to read for each, in the order of ``model.layers``."""
    calls = _graph(model)
    per_layer: dict[int, list[_Call]] = {}
    for call in calls.values():
        per_layer.setdefault(id(call.layer), []).append(call)
    output_call = calls.get(_key((getattr(model, "outputs", None) or [None])[0]))
    probed: list[tuple[ProbedLayer, Any]] = []
    for layer in model.layers:
        kind = type(layer).__name__
        own = per_layer.get(id(layer), [])
        if kind not in CONV_LAYERS | DENSE_LAYERS | RECURRENT_LAYERS or len(own) != 1:
            continue  # not a layer the views read, or one called several times (shared)
        first = last = own[0]
        through: list[str] = []
        while True:  # follow BatchNormalization and activation layers taken only from this one
            after = last.consumers
            if (len(after) != 1 or type(after[0].layer).__name__ not in _FOLLOWED
                    or len(per_layer.get(id(after[0].layer), [])) != 1 or len(after[0].node.input_tensors) != 1):
                break
            last = after[0]
            through.append(str(last.layer.name))
        outputs = list(last.node.output_tensors)
        if len(outputs) != 1:  # a recurrent layer returning its states too
            continue
        tensor = outputs[0]
        probed.append((ProbedLayer(
            name=str(layer.name), class_name=kind, shape=_dims(tensor.shape)[1:], through=tuple(through),
            is_output=output_call is not None and (first is output_call or last is output_call),
            channels_first=getattr(layer, "data_format", "channels_last") == "channels_first",
        ), tensor))
    return probed


def _nested_models(model: Any) -> list[str]:
    return [str(layer.name) for layer in getattr(model, "layers", []) if type(layer).__name__ in _MODEL_CLASSES]


def unavailable_views(model: Any) -> dict[str, str]:
    """Why each view of the inside of ``model`` does not apply, by view (:data:`VIEWS`); views that apply are left
    out. The sentences are written for the learner who opened the model."""
    reasons: dict[str, str] = {}
    inputs = getattr(model, "inputs", None) or []
    if not inputs or not getattr(model, "outputs", None):
        text = ("This model has no graph of layers NeuralStudio can read (it was never built, or it is a "
                "subclassed model), so what happens inside it cannot be shown.")
        return dict.fromkeys(VIEWS, text)
    if len(inputs) != 1:
        text = (f"This model has {len(inputs)} inputs; the views of the inside follow one image through a network "
                "with one input.")
        return dict.fromkeys(VIEWS, text)
    try:
        check_model(model)
    except IncompatibleModelError as exc:
        return dict.fromkeys(VIEWS, str(exc))
    probed = [p for p, _ in _probed(model)]
    kinds = {type(layer).__name__ for layer in model.layers}
    nested = _nested_models(model)
    inside_nested = (f" Layers inside the nested model{'s' if len(nested) > 1 else ''} {', '.join(nested)} are not "
                     "read one by one." if nested else "")
    maps = [p for p in probed if p.kind == "maps"]
    if not maps:
        sequence = sorted(kinds & _SEQUENCE_LAYERS)
        if sequence:
            reasons[FEATURE_MAPS] = (f"This model reads the image as a sequence of rows ({', '.join(sequence)}), not "
                                     "with convolution filters, so there are no feature maps: its Dense and "
                                     "recurrent layers' activations are shown instead." + inside_nested)
        else:
            reasons[FEATURE_MAPS] = ("This model has no convolution layers, so there are no feature maps: its Dense "
                                     "layers' activations are shown instead." + inside_nested)
    filters = first_layer_filters(model)
    if not filters.available and maps:
        reasons[FILTERS] = filters.reason
    vectors = [p for p in probed if p.kind == "vector"]
    if not [p for p in vectors if not p.is_output]:
        per_position = [p.name for p in probed if p.kind == "sequence"]
        if per_position:
            reasons[DENSE] = (f"The Dense layers {', '.join(per_position)} act on each position of a sequence, not on "
                              "the whole image, so they have no single activation per unit to show; the output layer "
                              "is the probabilities chart.")
        else:
            reasons[DENSE] = ("This model has no hidden Dense layer: its only Dense layer is the output, whose values "
                              "are the probabilities chart.")
    import keras

    from neuralstudio.ml.gradients import gradients_available

    if not gradients_available():
        reasons[SALIENCY] = (f"Gradients are not available on the {keras.backend.backend()} backend, so there is no "
                             "saliency: choose TensorFlow, JAX or PyTorch (--backend) to see it.")
    return reasons


def explain_unavailable(model: Any) -> str:
    """One paragraph saying which views of the inside of ``model`` do not apply, and why; "" when all apply.

    For example, for a model of Dense layers only: "This model has no convolution layers, so there are no feature
    maps: its Dense layers' activations are shown instead."
    """
    return " ".join(dict.fromkeys(unavailable_views(model).values()))  # each sentence once, in the views' order


# ----------------------------------------------------------------------------- filters
def _first_conv(model: Any) -> Any:
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ in CONV_LAYERS:
            return layer
    return None


def first_layer_filters(model: Any) -> FirstLayerFilters:
    """The kernels of ``model``'s first convolution layer, one image per filter, scaled for display.

    A filter over one input channel (a grey image) is its kernel; over several, the kernel for the first
    channel is shown and :attr:`FirstLayerFilters.note` says so. A 1-D convolution's filter is shown as an
    image of ``kernel size x input features``. A depthwise layer's kernels are one per input channel and
    multiplier; a separable layer's are its depthwise kernels.
    """
    layer = _first_conv(model)
    if layer is None:
        return FirstLayerFilters(None, reason="This model has no convolution layers, so there are no filters to show.")
    name, kind = str(layer.name), type(layer).__name__
    weights = layer.get_weights()
    if not weights:
        return FirstLayerFilters(None, name, kind, reason=f"{name} has no weights yet (the model was never built).")
    kernel = np.asarray(weights[0], dtype=np.float64)
    note = ""
    if kind.endswith("Transpose"):  # (kh, kw, out, in): the same layout, the channel axes swapped
        kernel = np.swapaxes(kernel, -1, -2)
    if kernel.ndim == 4:  # (kh, kw, in, out or multiplier)
        if kind.startswith("Depthwise") or kind.startswith("Separable"):
            images = np.moveaxis(kernel.reshape(kernel.shape[0], kernel.shape[1], -1), -1, 0)
        else:
            if kernel.shape[2] > 1:
                note = f"the kernels for the first of {kernel.shape[2]} input channels"
            images = np.moveaxis(kernel[:, :, 0, :], -1, 0)
    elif kernel.ndim == 3:  # Conv1D (k, in, out): an image of kernel size x input features per filter
        if kind.startswith("Depthwise") or kind.startswith("Separable"):
            images = np.moveaxis(kernel.reshape(kernel.shape[0], 1, -1), -1, 0)
        else:
            images = np.moveaxis(kernel, -1, 0)
    else:
        return FirstLayerFilters(None, name, kind, reason=f"{name}'s kernel has shape {kernel.shape}, which cannot be "
                                 "shown as images.")
    scale = float(np.abs(images).max())
    shown = 0.5 + 0.5 * images / scale if scale > 0 else np.full(images.shape, 0.5)
    return FirstLayerFilters(np.asarray(shown, dtype=np.float32), name, kind, note=note)


# ----------------------------------------------------------------------------- saliency
def _unit_range(values: np.ndarray, over: np.ndarray | None = None) -> np.ndarray:
    """``values`` scaled to 0..1 by the range of ``over`` (themselves by default), as :meth:`display_maps` says."""
    ref = values if over is None else over
    if ref.size == 0:
        return values.astype(np.float32)
    lo, hi = float(ref.min()), float(ref.max())
    if lo >= 0.0:
        out = values / hi if hi > 0 else np.zeros_like(values)
    else:
        out = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _gradient_times_input(gradient: np.ndarray, x: np.ndarray) -> np.ndarray:
    """|gradient x input| as a ``(28, 28)`` map scaled to 0..1 by its maximum (all zeros when it is zero).

    The absolute value: a pixel that pushed the class's output down drove the answer as much as one that pushed it
    up. Where the input is 0 (no ink) the map is 0, whatever the gradient: gradient x input shows what the drawing
    itself contributed.
    """
    s = np.abs(np.asarray(gradient, dtype=np.float64).reshape(28, 28) * np.asarray(x, dtype=np.float64).reshape(28, 28))
    top = float(s.max())
    return (s / top if top > 0 else s).astype(np.float32)


def saliency(model: Any, x: np.ndarray, class_index: int) -> np.ndarray:
    """Gradient x input for class ``class_index`` of a prepared ``(28, 28)`` image, ``(28, 28)`` in 0..1.

    ``model`` is a ``keras.Model`` (its gradient taken eagerly: fine once, ~100 ms) or an
    :class:`ActivationProbe` (its traced function: fast enough to follow the pen). The gradient comes from
    :func:`neuralstudio.ml.gradients.input_gradient`.
    """
    if isinstance(model, ActivationProbe):
        return model.saliency(x, class_index)
    from neuralstudio.ml.gradients import input_gradient

    reshape = check_model(model)
    batch = np.asarray(x, dtype=np.float32).reshape((1, *reshape))
    return _gradient_times_input(input_gradient(model, batch, int(class_index))[0], x)


# ----------------------------------------------------------------------------- the probe
class ActivationProbe:
    """Reads a model's layers for one prepared 28x28 image, fast enough to follow the pen.

    Args:
        model: a built functional or Sequential ``keras.Model`` that :func:`~neuralstudio.ml.inference.check_model`
            accepts (one 28x28 grey input, one value per class). The probe shares its layers and weights.
        warm_up: trace the function and its gradient now (0.5-1 s: do it on a background thread) so that the first
            drawing is fast.

    Attributes:
        layers: the layers read, in the model's order.
        filters: the first convolution layer's filters (:func:`first_layer_filters`).
        reasons: why views do not apply (:func:`unavailable_views`).
        explanation: the same as one paragraph (:func:`explain_unavailable`).

    Raises:
        IncompatibleModelError: the model cannot take a 28x28 grey image.
    """

    def __init__(self, model: Any, *, warm_up: bool = True) -> None:
        self.model = model
        self.reshape = check_model(model)
        self.reasons = unavailable_views(model)
        self.explanation = " ".join(dict.fromkeys(self.reasons.values()))
        self.filters = first_layer_filters(model)
        probed = _probed(model)
        self.layers: tuple[ProbedLayer, ...] = tuple(p for p, _ in probed)
        import keras  # here, not at the top: the window imports this module before Keras has loaded

        # The one input as a tensor, not a list: called with one tensor, a list-input model warns on every trace.
        self._probe_model = keras.Model(model.inputs[0], [*(t for _, t in probed), model.outputs[0]],
                                        name=f"{model.name}_probe")
        self._fn = self._make_function()
        self._both: Any = None  # the compiled forward and backward pass (outputs_and_input_gradient), made when needed
        if warm_up:
            self.look(np.zeros((28, 28), dtype=np.float32), 0)

    @property
    def has_saliency(self) -> bool:
        return SALIENCY not in self.reasons

    def _make_function(self) -> Any:
        """One compiled function from the input to the probed layers' outputs and the model's output, as NumPy.

        The same pattern as ``Predictor._make_function`` (no data pipeline, no callbacks, a batch of any size); used
        where no gradient is wanted (:meth:`activations`, a model without saliency).
        """
        from neuralstudio.ml.backends import forward_function

        call = forward_function(self._probe_model, self.reshape)
        return lambda x: list(call(x))

    @property
    def traces(self) -> int:
        """How many times the saliency's compiled forward and backward pass was traced (0 before the first look):
        once per model, whatever the drawings and classes (PyTorch does not trace: 0)."""
        return 0 if self._both is None else self._both.traces

    def _batch(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (28, 28):
            raise ValueError(f"expected a prepared (28, 28) image, got shape {x.shape}")
        return np.ascontiguousarray(x.reshape((1, *self.reshape)))

    def _activations(self, outputs: Sequence[Any]) -> list[LayerActivation]:
        return [LayerActivation(layer, np.asarray(out)[0]) for layer, out in zip(self.layers, outputs)]

    def activations(self, x: np.ndarray) -> list[LayerActivation]:
        """The probed layers' outputs for a prepared ``(28, 28)`` image (one forward pass, no gradient)."""
        return self._activations(self._fn(self._batch(x))[:-1])

    def saliency(self, x: np.ndarray, class_index: int) -> np.ndarray:
        """Gradient x input for class ``class_index``, ``(28, 28)`` in 0..1 (see :func:`saliency`)."""
        look = self.look(x, class_index)
        if look.saliency is None:
            raise UserError(look.saliency_reason)
        return look.saliency

    def look(self, x: np.ndarray, class_index: int) -> Look:
        """Everything the inside view shows for a prepared ``(28, 28)`` image, from one compiled call.

        Args:
            x: the prepared image (values in 0..1).
            class_index: the class the saliency is for (the predicted one).

        The layer outputs and the input gradient come from one forward and one backward pass, compiled once per probe
        (:func:`~neuralstudio.ml.gradients.outputs_and_input_gradient`: ``tf.function``, ``jax.jit``, autograd on
        PyTorch), never an eager gradient tape per drawing (docs/ARCHITECTURE.md, "Traps"). A model whose gradient
        cannot be taken loses its saliency, with the reason, and keeps the other views. One thread at a time.
        """
        batch = self._batch(x)
        gradient = None
        if self.has_saliency:
            try:
                if self._both is None:
                    from neuralstudio.ml.gradients import outputs_and_input_gradient

                    self._both = outputs_and_input_gradient(self._probe_model, self.reshape)
                outputs, gradient = self._both(batch, int(class_index))
            except Exception as exc:  # noqa: BLE001 - a layer without a gradient: the other views still apply
                self.reasons[SALIENCY] = ("The gradient through this model could not be taken, so there is no "
                                          f"saliency: {type(exc).__name__}: {exc}")
                self.explanation = " ".join(dict.fromkeys(self.reasons.values()))
                self._both = None
        if gradient is None:
            outputs = self._fn(batch)
        activations = self._activations(outputs[:-1])
        output = np.asarray(outputs[-1])[0].reshape(-1)
        if gradient is None:
            return Look(activations, None, output, int(class_index), self.reasons[SALIENCY])
        return Look(activations, _gradient_times_input(gradient[0], x), output, int(class_index))
