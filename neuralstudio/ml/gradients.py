"""Gradients of a Keras model, per backend: the one place NeuralStudio takes derivatives itself.

Keras 3 has no backend-neutral way to ask for gradients outside ``fit`` (keras#20760): each backend
has its own (TensorFlow's ``GradientTape``, ``jax.grad``, ``torch.autograd``). Everything that looks
inside a network (the per-layer gradient norms of Nielsen's chapter 5, the saliency of a drawing) asks
this module, which picks the function of the backend Keras runs on: TensorFlow, JAX and PyTorch, each
checked against finite differences (``tests/ml/test_gradients.py``, run on every backend in CI).

These functions run on the caller's thread and take NumPy arrays; they never change the model's trainable
weights, but :func:`layer_gradients` runs the model in training mode, which moves BatchNormalization's
moving statistics and advances Dropout's seed: a caller that must leave the model exactly as it was saves
and restores them (``ml/layer_stats.py`` does).

:func:`outputs_and_input_gradient` is the compiled form of :func:`input_gradient` for a caller that asks for
the same gradient again and again (the saliency of every pen move, ``ml/activations.py``): one function, traced
once per model and input shape, that returns a model's outputs and the input gradient of its last output from
one forward and one backward pass (docs/ARCHITECTURE.md, "Traps": an eager tape costs several times more).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from neuralstudio.core.errors import UserError

__all__ = ["GradientsUnavailableError", "OutputsAndInputGradient", "gradients_available", "input_gradient",
           "layer_gradients", "outputs_and_input_gradient"]


class GradientsUnavailableError(UserError, RuntimeError):
    """Gradients cannot be taken on this Keras backend (yet)."""


def layer_gradients(model: Any, x: np.ndarray, y: np.ndarray,
                    loss: Callable[[Any, Any], Any]) -> dict[str, list[np.ndarray]]:
    """The gradient of ``loss(y, model(x))`` with respect to each layer's trainable weights, by layer name.

    ``loss`` is a Keras loss (``keras.losses.get(name)`` or an instance); the model runs in training mode,
    as in a training step (Dropout active, BatchNormalization on batch statistics; see the module docstring).
    Layers without trainable weights are left out.
    """
    return _backend_impl("layer_gradients")(model, x, y, loss)


def input_gradient(model: Any, x: np.ndarray, class_index: int | np.ndarray) -> np.ndarray:
    """d(output[class_index]) / d(input) for each example of ``x``, in inference mode: what saliency maps show.

    ``class_index`` is one class for all examples, or one per example. The result has ``x``'s shape.
    """
    return _backend_impl("input_gradient")(model, x, class_index)


class OutputsAndInputGradient:
    """A compiled ``x, class_index -> (outputs, d(last output[class_index]) / d(x))``, made by
    :func:`outputs_and_input_gradient`.

    Calling it returns the model's outputs (a list of NumPy arrays, in the order of ``model.outputs``) and the
    gradient of its last output's ``class_index`` entry with respect to ``x`` (``x``'s shape), both from the same
    forward pass, in inference mode. ``class_index`` is one class for all examples or one per example, and is an
    argument of the compiled function, not a constant of its trace: a new class or a new drawing never traces again.

    Attributes:
        traces: how many times the function was traced (TensorFlow, JAX; PyTorch runs without tracing: 0). A model
            called with batches of one shape is traced once, on the first call.
    """

    def __init__(self, model: Any, input_shape: tuple[int | None, ...]) -> None:
        self.model = model
        self.input_shape = tuple(input_shape)
        self.traces = 0
        self._call: Callable[[np.ndarray, np.ndarray], tuple[list[np.ndarray], np.ndarray]] = (
            _backend_impl("outputs_and_input_gradient")(self))

    def __call__(self, x: np.ndarray, class_index: int | np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        x = np.asarray(x, dtype="float32")
        idx = np.broadcast_to(np.asarray(class_index, dtype="int32"), (int(x.shape[0]),)).copy()  # writable: torch
        return self._call(x, idx)

    def _traced(self) -> None:
        """Called from inside the traced Python body: it runs once per trace, never per call."""
        self.traces += 1


def outputs_and_input_gradient(model: Any, input_shape: tuple[int | None, ...]) -> OutputsAndInputGradient:
    """One compiled function for ``model``'s outputs and the input gradient of its last output (see the class).

    ``input_shape`` is one example's shape, the batch axis left out. The function is traced on its first call (a
    ``tf.function`` with a batch-free signature on TensorFlow, ``jax.jit`` once per batch size on JAX, with the weights
    passed in at each call so that it reads them as they are now; plain autograd on PyTorch): make the first call on
    the thread that will make the others, off the GUI thread (docs/ARCHITECTURE.md, "Threads").

    Raises:
        GradientsUnavailableError: the backend has no gradients here.
    """
    return OutputsAndInputGradient(model, input_shape)


def _as_list(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _no_gradient() -> ValueError:
    return ValueError("the model's output does not depend on its input through operations that have a gradient")


# ----------------------------------------------------------------------------- TensorFlow
def _tf_layer_gradients(model: Any, x: np.ndarray, y: np.ndarray, loss: Callable[[Any, Any], Any]
                        ) -> dict[str, list[np.ndarray]]:
    import tensorflow as tf

    layers = [layer for layer in model.layers if layer.trainable_weights]
    variables = [v for layer in layers for v in layer.trainable_weights]
    with tf.GradientTape() as tape:
        pred = model(tf.convert_to_tensor(x), training=True)
        value = tf.reduce_mean(loss(tf.convert_to_tensor(y), pred))
    grads = tape.gradient(value, [v.value if hasattr(v, "value") else v for v in variables])
    out: dict[str, list[np.ndarray]] = {}
    i = 0
    for layer in layers:
        n = len(layer.trainable_weights)
        out[layer.name] = [np.zeros(tuple(v.shape), "float32") if g is None else np.asarray(g)
                           for v, g in zip(layer.trainable_weights, grads[i:i + n])]
        i += n
    return out


def _tf_input_gradient(model: Any, x: np.ndarray, class_index: int | np.ndarray) -> np.ndarray:
    import tensorflow as tf

    xt = tf.convert_to_tensor(np.asarray(x, dtype="float32"))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        pred = model(xt, training=False)
        idx = np.broadcast_to(np.asarray(class_index, dtype="int32"), (int(xt.shape[0]),))
        # a one-hot product, not tf.gather(batch_dims=1): the same gradient, but gather's eager gradient is
        # about 60 small operations (22 ms a drawing for mnist-cnn against 9 ms)
        picked = tf.reduce_sum(pred * tf.one_hot(idx, int(pred.shape[-1]), dtype=pred.dtype), axis=1)
    return np.asarray(tape.gradient(picked, xt))


def _tf_outputs_and_input_gradient(fn: OutputsAndInputGradient
                                   ) -> Callable[[np.ndarray, np.ndarray], tuple[list[np.ndarray], np.ndarray]]:
    """The forward pass and its tape inside one ``tf.function``: eagerly, a tape around the probe's traced forward
    pass cost 16.5 ms a drawing for the bundled model against 4.9 ms traced (docs/ARCHITECTURE.md, "Traps")."""
    import tensorflow as tf

    model = fn.model

    @tf.function(input_signature=[tf.TensorSpec((None, *fn.input_shape), tf.float32),
                                  tf.TensorSpec((None,), tf.int32)])
    def traced(x: Any, idx: Any) -> Any:
        fn._traced()
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = _as_list(model(x, training=False))
            pred = outputs[-1]
            picked = tf.reduce_sum(pred * tf.one_hot(idx, int(pred.shape[-1]), dtype=pred.dtype))
        grad = tape.gradient(picked, x)
        if grad is None:  # raised while tracing, so on the first call
            raise _no_gradient()
        return outputs, grad

    def call(x: np.ndarray, idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        outputs, grad = traced(x, idx)
        return [o.numpy() for o in outputs], grad.numpy()

    return call


# ----------------------------------------------------------------------------- JAX
def _by_layer(layers: list[Any], variables: list[Any], grads: list[Any]) -> dict[str, list[np.ndarray]]:
    """The gradients of ``variables`` (in that order) grouped by layer, as NumPy."""
    import keras

    index = {id(v): i for i, v in enumerate(variables)}
    out: dict[str, list[np.ndarray]] = {}
    for layer in layers:
        out[layer.name] = [np.zeros(tuple(v.shape), "float32") if grads[index[id(v)]] is None
                           else np.asarray(keras.ops.convert_to_numpy(grads[index[id(v)]]))
                           for v in layer.trainable_weights]
    return out


def _jax_layer_gradients(model: Any, x: np.ndarray, y: np.ndarray, loss: Callable[[Any, Any], Any]
                         ) -> dict[str, list[np.ndarray]]:
    import jax
    import jax.numpy as jnp

    layers = [layer for layer in model.layers if layer.trainable_weights]
    variables = list(model.trainable_variables)
    fn = _jax_cached(_JAX_LAYER_GRADIENTS, model, loss)
    if fn is None:
        def value(trainable: list[Any], non_trainable: list[Any], xx: Any, yy: Any) -> Any:
            # stateless: what training mode would move (BatchNormalization's statistics) is returned, not applied
            pred, _ = model.stateless_call(trainable, non_trainable, xx, training=True)
            return jnp.mean(loss(yy, pred))

        fn = jax.jit(jax.grad(value))
        _JAX_LAYER_GRADIENTS[model] = (loss, fn)
    grads = fn([v.value for v in variables], [v.value for v in model.non_trainable_variables], jnp.asarray(x),
               jnp.asarray(y))
    return _by_layer(layers, variables, list(grads))


#: jitted gradient functions per model (weakly held): tracing one again at every call cost 100+ ms, which made
#: the per-layer statistics space themselves out (they keep within an overhead budget) and saliency lag the pen
_JAX_LAYER_GRADIENTS: Any = weakref.WeakKeyDictionary()
_JAX_INPUT_GRADIENTS: Any = weakref.WeakKeyDictionary()


def _jax_cached(cache: Any, model: Any, key: Any) -> Any:
    """The jitted function cached for ``model`` if it was made for the same ``key`` (the loss), else None."""
    entry = cache.get(model)
    return entry[1] if entry is not None and entry[0] is key else None


def _jax_input_gradient(model: Any, x: np.ndarray, class_index: int | np.ndarray) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    fn = _jax_cached(_JAX_INPUT_GRADIENTS, model, None)
    if fn is None:
        def picked(trainable: Any, non_trainable: Any, xx: Any, onehot: Any) -> Any:
            pred, _ = model.stateless_call(trainable, non_trainable, xx, training=False)
            return jnp.sum(pred * onehot)

        fn = jax.jit(jax.grad(picked, argnums=2))
        _JAX_INPUT_GRADIENTS[model] = (None, fn)
    xj = jnp.asarray(np.asarray(x, dtype="float32"))
    units = int(model.outputs[0].shape[-1])
    idx = np.broadcast_to(np.asarray(class_index, dtype="int32"), (int(xj.shape[0]),))
    onehot = jax.nn.one_hot(jnp.asarray(idx), units, dtype=xj.dtype)
    grad = fn([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
              xj, onehot)
    return np.asarray(grad)


def _jax_outputs_and_input_gradient(fn: OutputsAndInputGradient
                                    ) -> Callable[[np.ndarray, np.ndarray], tuple[list[np.ndarray], np.ndarray]]:
    """``jax.grad`` with the outputs as its auxiliary result, jitted: one forward pass gives both."""
    import jax
    import jax.numpy as jnp

    model = fn.model
    units = int(_as_list(model.outputs)[-1].shape[-1])

    def both(trainable: Any, non_trainable: Any, x: Any, idx: Any) -> Any:
        fn._traced()

        def picked(xx: Any) -> Any:
            outputs, _ = model.stateless_call(trainable, non_trainable, xx, training=False)
            outputs = _as_list(outputs)
            return jnp.sum(outputs[-1] * jax.nn.one_hot(idx, units, dtype=outputs[-1].dtype)), outputs

        grad, outputs = jax.grad(picked, has_aux=True)(x)
        return outputs, grad

    jitted = jax.jit(both)

    def call(x: np.ndarray, idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        outputs, grad = jitted([v.value for v in model.trainable_variables],
                               [v.value for v in model.non_trainable_variables], jnp.asarray(x), jnp.asarray(idx))
        return [np.asarray(o) for o in outputs], np.asarray(grad)

    return call


# ----------------------------------------------------------------------------- PyTorch
def _torch_layer_gradients(model: Any, x: np.ndarray, y: np.ndarray, loss: Callable[[Any, Any], Any]
                           ) -> dict[str, list[np.ndarray]]:
    import keras
    import torch

    layers = [layer for layer in model.layers if layer.trainable_weights]
    variables = list(model.trainable_variables)
    pred = model(keras.ops.convert_to_tensor(x), training=True)
    value = torch.mean(loss(keras.ops.convert_to_tensor(y), pred))
    # autograd.grad, not backward(): nothing accumulates in the weights' .grad, which fit's optimizer reads
    grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
    return _by_layer(layers, variables, [None if g is None else g.detach().cpu() for g in grads])


def _torch_input_gradient(model: Any, x: np.ndarray, class_index: int | np.ndarray) -> np.ndarray:
    import keras
    import torch

    xt = keras.ops.convert_to_tensor(np.asarray(x, dtype="float32")).detach().requires_grad_(True)
    pred = model(xt, training=False)
    idx = torch.as_tensor(np.broadcast_to(np.asarray(class_index, dtype="int64"), (int(xt.shape[0]),)).copy(),
                          device=pred.device)
    picked = torch.sum(pred * torch.nn.functional.one_hot(idx, int(pred.shape[-1])).to(pred.dtype))
    (grad,) = torch.autograd.grad(picked, xt)
    return grad.detach().cpu().numpy()


def _torch_outputs_and_input_gradient(fn: OutputsAndInputGradient
                                      ) -> Callable[[np.ndarray, np.ndarray], tuple[list[np.ndarray], np.ndarray]]:
    """One call with autograd and ``torch.autograd.grad`` on its input: nothing to trace, the outputs of the same
    call read detached."""
    import keras
    import torch

    model = fn.model

    def call(x: np.ndarray, idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        xt = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        outputs = _as_list(model(xt, training=False))
        pred = outputs[-1]
        onehot = torch.nn.functional.one_hot(torch.as_tensor(idx, dtype=torch.int64, device=pred.device),
                                             int(pred.shape[-1])).to(pred.dtype)
        (grad,) = torch.autograd.grad(torch.sum(pred * onehot), xt)
        return [o.detach().cpu().numpy() for o in outputs], grad.detach().cpu().numpy()

    return call


_IMPLEMENTATIONS: dict[str, dict[str, Callable[..., Any]]] = {
    "tensorflow": {"layer_gradients": _tf_layer_gradients, "input_gradient": _tf_input_gradient,
                   "outputs_and_input_gradient": _tf_outputs_and_input_gradient},
    "jax": {"layer_gradients": _jax_layer_gradients, "input_gradient": _jax_input_gradient,
            "outputs_and_input_gradient": _jax_outputs_and_input_gradient},
    "torch": {"layer_gradients": _torch_layer_gradients, "input_gradient": _torch_input_gradient,
              "outputs_and_input_gradient": _torch_outputs_and_input_gradient},
}


def gradients_available() -> bool:
    """Whether gradients can be taken on the backend Keras runs on (to say so before a view is drawn)."""
    import keras

    return keras.backend.backend() in _IMPLEMENTATIONS


def _backend_impl(name: str) -> Callable[..., Any]:
    import keras

    backend = keras.backend.backend()
    impl = _IMPLEMENTATIONS.get(backend, {}).get(name)
    if impl is None:
        raise GradientsUnavailableError(f"Gradients are not available on the {backend} backend: choose TensorFlow, "
                                        "JAX or PyTorch (--backend) to see gradients and saliency.")
    return impl
