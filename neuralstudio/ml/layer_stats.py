"""Per-layer training signals, measured inside a run: what Nielsen's chapter 5 looks at.

For every layer with trainable weights, a *snapshot* holds:

- ``grad_norm``: the L2 norm of the loss gradient over the layer's kernel weights (its weight arrays of two
  or more dimensions: a Dense or Conv kernel, an LSTM's kernel and recurrent kernel; a layer that has only
  one-dimensional weights, such as BatchNormalization, uses those). Taken on one fixed *probe batch* by
  :func:`neuralstudio.ml.gradients.layer_gradients`, the one place gradients are taken (keras#20760).
- ``bias_grad_norm`` and ``bias_grad_rms``: the L2 norm and the root mean square over the units of the
  gradient with respect to the layer's per-unit biases, from the same gradient. The gradient of the mean loss
  with respect to unit ``j``'s bias is that unit's error averaged over the probe batch, Nielsen's
  ``delta^l_j``; ``bias_grad_norm`` is his ``||delta^l||`` (chapter 5's "speed of learning" of a layer) and
  ``bias_grad_rms`` is the same per unit, so that layers of different widths compare: what :func:`interpret`
  and the Inside tab lead with (:func:`gradient_measure` says why). None for a layer without a per-unit bias
  (``use_bias=False``, BatchNormalization, and the shared biases of convolutions, recurrent layers and Dense
  layers on sequences, whose gradient sums over positions).
- ``update_ratio``: ``||W_now - W_start|| / ||W_start||`` over the same kernel weights, where ``W_start``
  are the weights at the start of the snapshot's epoch (the end of the previous epoch, or the weights the
  run started from): how far one epoch moved the layer, relative to its size. None when ``W_start`` is zero.
- ``weight_hist`` and ``activation_hist``: ``{"counts": [...], "edges": [...]}`` with :data:`HIST_BINS`
  bins (``edges`` has one more entry) of the kernel weights and of the layer's output on the probe batch
  (inference mode, as the network computes it for a prediction). Large arrays are histogrammed from a
  fixed random sample of :data:`MAX_HIST_VALUES` values: the shape is what the strip shows, not totals.
- ``dead_fraction`` (ReLU layers, else None): the share of units (output channels: the last axis) that
  are exactly 0 for every probe example (and every position): a dead unit gets no gradient and never
  recovers.
- ``saturated_fraction`` (sigmoid and tanh layers, else None): the share of the layer's output values on
  the probe batch in the flat ends of the curve: sigmoid below :data:`SIGMOID_LOW` (0.01) or above
  :data:`SIGMOID_HIGH` (0.99), tanh with ``|value|`` above :data:`TANH_LIMIT` (0.99). There the derivative
  is under 1/25 of its peak, so almost no gradient passes.
- ``layer``, ``class_name``, ``activation`` (the layer's own activation name, or None), ``epoch`` (0-based,
  as the reporter's ``on_epoch``) and ``batch`` (None for the snapshot at the end of an epoch, else the
  0-based batch a mid-epoch snapshot was taken after).

Why this way: the figures are a side view of training and must not slow it. Nothing runs per batch in
Python but a clock check: one snapshot at the end of each epoch (two forward passes and one backward pass
over the probe batch, eagerly: measured at about 3.5 times what training on as many examples costs, plus
some 20 ms of fixed overhead), and one during an epoch only when the epoch is long: no more often than
every :data:`MIN_INTERVAL_S` seconds, nor than keeps those snapshots under :data:`MAX_OVERHEAD` of the
training time (the interval follows from what the last snapshot cost).

The probe batch holds :data:`PROBE_SHARE` of the epoch's examples (between :data:`MIN_PROBE_EXAMPLES` and
:data:`PROBE_EXAMPLES`), so that the end-of-epoch snapshot costs about 2% of the epoch whatever the size of
the data set (measured: 256 examples took 6-9% of an mnist-cnn epoch on the 8,000-image MNIST sample, 32
take about 2%; full MNIST gets 240). The size follows from the data alone, not from a timing, so a seeded
run measures the same examples every time; they are chosen once, so successive snapshots differ because the
network changed, not the examples. Taking the gradient runs the model in training mode, which moves
BatchNormalization's moving statistics and Dropout's seed: they are put back afterwards, so a seeded run
trains the same with the statistics on or off.

:func:`interpret` turns a snapshot into one sentence for a learner, :func:`format_table` into the table
``neuralstudio train --layer-stats`` prints. This module imports Keras only inside functions, so that the
GUI can import :func:`interpret` at any time for free.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["HIST_BINS", "LayerStatsRecorder", "format_table", "gradient_measure", "interpret"]

#: Examples in the probe batch at most, and at least (when the data set has that many)...
PROBE_EXAMPLES = 256
MIN_PROBE_EXAMPLES = 32
#: ...and in between, this share of an epoch's examples (the snapshot's cost follows the probe's size).
PROBE_SHARE = 1 / 250
#: Input values the probe batch may hold before it is cut to one training batch (large images: a training
#: batch is known to fit in memory with its gradients, 256 of them might not).
PROBE_INPUT_BUDGET = 256 * 32 * 32 * 3
HIST_BINS = 20
#: Values a histogram is computed from at most (a fixed random sample of larger arrays).
MAX_HIST_VALUES = 200_000
#: Mid-epoch snapshots come at most this often (seconds of training)...
MIN_INTERVAL_S = 30.0
#: ...and no more often than keeps their cost under this share of the training time.
MAX_OVERHEAD = 0.01
SIGMOID_LOW, SIGMOID_HIGH = 0.01, 0.99
TANH_LIMIT = 0.99
#: A first layer whose gradient norm is this many times smaller (or larger) than the last layer's is
#: called vanishing (exploding) by :func:`interpret`...
GRADIENT_RATIO_ALARM = 10.0
#: ...and this many times, noticeably slower (or faster); below it, "similar sizes".
GRADIENT_RATIO_NOTICE = 3.0
#: Shares of dead or saturated units that :func:`interpret` mentions (a majority first, a sizeable minority
#: only when nothing else stands out).
MAJORITY, MINORITY = 0.5, 0.2

_RELU = frozenset({"relu", "relu6"})
_SIGMOID = frozenset({"sigmoid", "hard_sigmoid"})
_TANH = frozenset({"tanh"})


class LayerStatsRecorder:
    """Takes the snapshots of one run; :attr:`callback` is the Keras callback to add to every ``fit``.

    Args:
        x, y: the training examples and their targets, encoded as the loss reads them (the probe batch is
            drawn from them once).
        loss: the Keras loss the model trains on (``keras.losses.get(name)``).
        reporter: receives ``on_layer_stats(epoch, stats)`` after each snapshot, when it has that method
            (called on the training thread, like the other reporter methods).
        log: receives one line if the statistics have to stop (e.g. on a backend without gradients).
        batch_size: the training batch size (the probe's size when examples are large).
        seed: chooses the probe examples.
        min_interval_s: the shortest time between two snapshots within an epoch.
        probe_examples: the probe's size (default: from the number of examples, see the module docstring).
    """

    def __init__(self, x: Any, y: Any, loss: Any, *, reporter: Any = None, log: Callable[[str], None] | None = None,
                 batch_size: int | None = None, seed: int = 0, min_interval_s: float = MIN_INTERVAL_S,
                 probe_examples: int | None = None) -> None:
        n = int(len(y))
        per_example = int(np.prod(np.shape(x)[1:])) if np.ndim(x) > 1 else 1
        if probe_examples is None:
            probe_examples = min(PROBE_EXAMPLES, max(MIN_PROBE_EXAMPLES, int(n * PROBE_SHARE)))
        k = min(n, probe_examples, max(PROBE_INPUT_BUDGET // max(1, per_example), min(batch_size or 1, probe_examples)))
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(n, size=max(1, k), replace=False)) if n else np.zeros(0, int)
        self.x_probe = np.asarray(x[idx])
        self.y_probe = np.asarray(y[idx])
        self.loss = loss
        self.reporter = reporter
        self.log = log
        self.min_interval_s = float(min_interval_s)
        self._taken = 0
        #: the end-of-epoch snapshots, one list of layer dicts per epoch (what ``RunResult.layer_stats`` holds)
        self.per_epoch: list[list[dict[str, Any]]] = []
        #: seconds the snapshots took in all
        self.seconds = 0.0
        self.enabled = n > 0
        self._rng = np.random.default_rng(seed + 1)
        self._model: Any = None
        self._layers: list[Any] = []
        self._act_model: Any = None
        self._act_layers: list[str] = []
        self._start: dict[str, np.ndarray] = {}
        self._bias: dict[str, list[int]] = {}  # per layer: which of its weights are per-unit biases
        self._last_t = time.perf_counter()
        self._interval = self.min_interval_s
        self.callback = _make_callback(self)

    # ------------------------------------------------------------------ hooks (called by the callback)
    def train_begin(self, model: Any) -> None:
        """At each ``fit`` (a run may call it twice): the first one fixes the layers and the starting weights."""
        if self._model is model:
            return
        self._model = model
        self._layers = [layer for layer in model.layers if layer.trainable_weights]
        self._start = {layer.name: _flat(_kernels(layer)) for layer in self._layers}
        self._bias = {layer.name: _unit_bias_indices(layer) for layer in self._layers}
        self._act_model, self._act_layers = _activation_model(model, self._layers)
        self._last_t = time.perf_counter()

    def batch_end(self, epoch: int, batch: int) -> None:
        """A mid-epoch snapshot when the epoch has run long enough since the last one (a clock check, else)."""
        if self.enabled and time.perf_counter() - self._last_t >= self._interval:
            self._take(epoch, batch)

    def epoch_end(self, epoch: int, logs: dict[str, Any] | None) -> None:
        """The epoch's snapshot, kept in :attr:`per_epoch`; none after a non-finite loss (the weights are lost)."""
        loss = (logs or {}).get("loss")
        if not self.enabled or (loss is not None and not math.isfinite(float(loss))):
            return
        stats = self._take(epoch, None)
        if stats is not None:
            self.per_epoch.append(stats)

    # ------------------------------------------------------------------ the snapshot
    def snapshot(self, epoch: int, batch: int | None = None) -> list[dict[str, Any]]:
        """The statistics of every trainable layer now (raises on failure; the hooks catch and log it)."""
        import keras

        from neuralstudio.ml.backends import sync_variables
        from neuralstudio.ml.gradients import layer_gradients

        model = self._model
        sync_variables(model)  # within an epoch on JAX the variables lag fit's own state
        saved = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
        try:
            grads = layer_gradients(model, self.x_probe, self.y_probe, self.loss)
        finally:  # training mode moved BatchNormalization's statistics and Dropout's seed: put them back
            for v, value in zip(model.non_trainable_variables, saved, strict=True):
                v.assign(value)
        acts: dict[str, np.ndarray] = {}
        if self._act_model is not None:
            outs = self._act_model(self.x_probe, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            acts = {name: keras.ops.convert_to_numpy(o) for name, o in zip(self._act_layers, outs, strict=True)}
        stats = []
        for layer in self._layers:
            idx = _kernel_indices(layer)
            now = _flat(_kernels(layer))
            g = grads.get(layer.name)
            grad_norm = _finite(math.sqrt(sum(float(np.vdot(g[i], g[i])) for i in idx))) if g else None
            bias_grad_norm, bias_grad_rms = _norm_and_rms(g, self._bias.get(layer.name, []))
            start = self._start.get(layer.name)
            ref = float(np.linalg.norm(start)) if start is not None and start.size == now.size else 0.0
            ratio = _finite(float(np.linalg.norm(now - start)) / ref) if ref > 0 else None
            activation = _activation_name(layer)
            a = acts.get(layer.name)
            stats.append({
                "layer": layer.name, "class_name": type(layer).__name__, "activation": activation,
                "grad_norm": grad_norm, "bias_grad_norm": bias_grad_norm, "bias_grad_rms": bias_grad_rms,
                "update_ratio": ratio,
                "weight_hist": _histogram(now, self._rng),
                "activation_hist": _histogram(a, self._rng) if a is not None else None,
                "dead_fraction": _dead_fraction(a) if a is not None and activation in _RELU else None,
                "saturated_fraction": _saturated_fraction(a, activation) if a is not None else None,
                "epoch": int(epoch), "batch": None if batch is None else int(batch),
            })
            if batch is None:
                self._start[layer.name] = now  # the next epoch's update is measured from here
        return stats

    def _take(self, epoch: int, batch: int | None) -> list[dict[str, Any]] | None:
        """:meth:`snapshot`, timed, reported, and turned off with one log line if it fails."""
        if self._model is None:
            return None
        t0 = time.perf_counter()
        try:
            stats = self.snapshot(epoch, batch)
        except Exception as exc:  # noqa: BLE001 - a side view must never end the run it watches
            self.enabled = False
            if self.log is not None:
                self.log(f"Layer statistics are off for the rest of this run: {type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}")
            return None
        cost = time.perf_counter() - t0
        self.seconds += cost
        if self._taken:  # the first one also compiles the gradient (JAX: 0.3-1 s): it says nothing of the next
            self._interval = max(self.min_interval_s, cost / MAX_OVERHEAD)
        self._taken += 1
        self._last_t = time.perf_counter()
        report = getattr(self.reporter, "on_layer_stats", None)
        if report is not None:
            report(int(epoch), stats)
        return stats


def _make_callback(recorder: LayerStatsRecorder) -> Any:
    """The Keras callback that forwards ``fit``'s hooks to ``recorder`` (Keras is imported here, not above)."""
    import keras

    class LayerStatsCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._epoch = 0

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            recorder.train_begin(self.model)

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            recorder.batch_end(self._epoch, batch)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            recorder.epoch_end(epoch, logs)

    return LayerStatsCallback()


# ----------------------------------------------------------------------------- pieces of a snapshot
def _kernel_indices(layer: Any) -> list[int]:
    """Which trainable weights are the layer's kernels: those of 2+ dimensions, else all (BatchNormalization)."""
    shapes = [tuple(v.shape) for v in layer.trainable_weights]
    idx = [i for i, s in enumerate(shapes) if len(s) >= 2]
    return idx or list(range(len(shapes)))


def _unit_bias_indices(layer: Any) -> list[int]:
    """Which trainable weights are the layer's own per-unit biases, or [] when it has none of that kind.

    A bias is a weight Keras names ``bias`` in a layer that also has kernels (BatchNormalization's ``beta`` is
    measured with its ``gamma`` as the layer's kernels), and it is *per unit* only when the layer's output is
    one value per unit for each example (shape ``(batch, units)``) and no state is carried over time steps:
    then the gradient of the mean loss with respect to bias ``j`` is unit ``j``'s error averaged over the probe
    examples, Nielsen's delta. A convolution's, a recurrent layer's or a sequence Dense layer's bias is shared
    by every position or step, and its gradient sums the errors over them: it grows with the image or sequence,
    so it is left out rather than compared with a Dense layer's.
    """
    if hasattr(layer, "cell") or hasattr(layer, "forward_layer"):  # RNN, Bidirectional: shared over time steps
        return []
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):  # no single symbolic output (a layer used twice)
        return []
    if len(shape) != 2:
        return []
    kernels = set(_kernel_indices(layer))
    return [i for i, v in enumerate(layer.trainable_weights)
            if i not in kernels and str(getattr(v, "name", "")).rsplit("/", 1)[-1] == "bias"
            and tuple(v.shape) == (shape[-1],)]


def _norm_and_rms(g: Sequence[np.ndarray] | None, idx: Sequence[int]) -> tuple[float | None, float | None]:
    """The L2 norm and the root mean square of the gradient arrays ``g[i]`` for ``i`` in ``idx``
    ((None, None) when there is nothing to measure)."""
    if not g or not idx:
        return None, None
    n = sum(int(np.size(g[i])) for i in idx)
    if not n:
        return None, None
    sq = sum(float(np.vdot(g[i], g[i])) for i in idx)
    return _finite(math.sqrt(sq)), _finite(math.sqrt(sq / n))


def _kernels(layer: Any) -> list[np.ndarray]:
    import keras

    weights = layer.trainable_weights
    return [keras.ops.convert_to_numpy(weights[i]) for i in _kernel_indices(layer)]


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.zeros(0, np.float32)
    return np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays])


def _activation_model(model: Any, layers: list[Any]) -> tuple[Any, list[str]]:
    """One ``keras.Model`` from the model's inputs to each layer's output, built once; (None, []) when the
    model's layers have no single symbolic output (a subclassed model, a layer used twice)."""
    import keras

    outputs, names = [], []
    for layer in layers:
        try:
            out = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        if isinstance(out, (list, tuple)):
            continue
        outputs.append(out)
        names.append(layer.name)
    if not outputs:
        return None, []
    try:
        inputs = list(model.inputs)  # one tensor, not a list of one: a call with one array then warns of nothing
        return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs), names
    except Exception:  # noqa: BLE001 - no activation histograms then, the gradients still come
        return None, []


def _activation_name(layer: Any) -> str | None:
    """The layer's own activation as Keras names it (``relu``, ``sigmoid``...), or None when it has none."""
    try:
        act = layer.get_config().get("activation")
    except Exception:  # noqa: BLE001 - a layer whose config cannot be read just has no known activation
        return None
    if isinstance(act, dict):
        act = (act.get("config") or {}).get("name") or act.get("class_name")
    return str(act) if isinstance(act, str) and act else None


def _histogram(values: Any, rng: np.random.Generator, bins: int = HIST_BINS) -> dict[str, list[Any]]:
    """Counts and edges of the finite values (of a fixed-size random sample of a large array)."""
    v = np.asarray(values).ravel()
    if v.size > MAX_HIST_VALUES:
        v = v[rng.integers(0, v.size, MAX_HIST_VALUES)]
    v = v.astype(np.float32, copy=False)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"counts": [], "edges": []}
    counts, edges = np.histogram(v, bins=bins)
    return {"counts": [int(c) for c in counts], "edges": [float(e) for e in edges]}


def _dead_fraction(a: np.ndarray) -> float | None:
    """The share of units (last axis) that are 0 for every example and position of the probe batch."""
    if a.ndim < 2 or not a.size:
        return None
    alive = np.any(a > 0, axis=tuple(range(a.ndim - 1)))
    return float(1.0 - np.mean(alive))


def _saturated_fraction(a: np.ndarray, activation: str | None) -> float | None:
    """The share of output values in the flat ends of a sigmoid or tanh (thresholds in the module docstring)."""
    if not a.size:
        return None
    a = a.astype(np.float32, copy=False)
    if activation in _SIGMOID:
        return float(np.mean((a < SIGMOID_LOW) | (a > SIGMOID_HIGH)))
    if activation in _TANH:
        return float(np.mean(np.abs(a) > TANH_LIMIT))
    return None


def _finite(v: float) -> float | None:
    """JSON has no infinity or NaN (an exploding gradient reads as None: the loss check reports it)."""
    return v if math.isfinite(v) else None


# ----------------------------------------------------------------------------- words
def interpret(stats: Sequence[dict[str, Any]]) -> str:
    """One sentence for a learner about one snapshot: the most telling thing it shows.

    In order: a hidden layer whose ReLU units are mostly dead; a first layer whose gradients (per unit, else
    the kernel norms: :func:`gradient_measure`) are
    :data:`GRADIENT_RATIO_ALARM` times smaller (vanishing) or larger (exploding) than the last layer's, or
    :data:`GRADIENT_RATIO_NOTICE` times (noticeably slower or faster); a hidden sigmoid or tanh layer mostly
    saturated; a sizeable minority of dead units; else that gradients reach every layer at similar sizes.
    The output layer's saturation is left out: a confident sigmoid output is meant to sit near 0 or 1.
    """
    layers = list(stats)
    if not layers:
        return "No layer has trainable weights to measure."
    hidden = layers[:-1]
    dead = [(s["dead_fraction"], s["layer"]) for s in hidden if s.get("dead_fraction") is not None]
    worst_dead = max(dead, default=None)
    if worst_dead and worst_dead[0] >= MAJORITY:
        return (f"{worst_dead[0]:.0%} of {worst_dead[1]}'s ReLU units are dead (zero for every example): they get "
                "no gradient and stop learning; try a lower learning rate or He initialisation.")
    key = gradient_measure(layers)
    norms = [s.get(key) for s in layers if s.get(key) is not None]
    if len(norms) >= 2:
        first, last = norms[0], norms[-1]
        if first == 0 and last == 0:
            return "No gradient reaches the weights: the loss does not change when they do, so nothing learns."
        if first == 0 or last / first >= GRADIENT_RATIO_ALARM:
            times = "infinitely" if first == 0 else f"{_times(last / first)}x"
            return (f"The first layer's gradients are {times} smaller than the last's: it learns slowly "
                    "(vanishing gradients).")
        if last == 0 or first / last >= GRADIENT_RATIO_ALARM:
            times = "infinitely" if last == 0 else f"{_times(first / last)}x"
            return (f"The first layer's gradients are {times} larger than the last's: its steps are too big "
                    "(exploding gradients); a lower learning rate or normalisation helps.")
        if last / first >= GRADIENT_RATIO_NOTICE:
            return (f"The first layer's gradients are {_times(last / first)}x smaller than the last's: it learns "
                    "more slowly than the layers after it.")
        if first / last >= GRADIENT_RATIO_NOTICE:
            return (f"The first layer's gradients are {_times(first / last)}x larger than the last's: it takes "
                    "bigger steps than the layers after it.")
    elif len(norms) == 1:
        return f"Only one layer learns here; its gradient {_MEASURE_WORDS[key]} is {norms[0]:.3g}."
    sat = [(s["saturated_fraction"], s["layer"], s.get("activation")) for s in hidden
           if s.get("saturated_fraction") is not None]
    worst_sat = max(sat, default=None)
    if worst_sat and worst_sat[0] >= MAJORITY:
        return (f"{worst_sat[0]:.0%} of {worst_sat[1]}'s {worst_sat[2]} outputs are saturated (on the flat ends of "
                "the curve): little gradient passes through them, so the layers below learn slowly.")
    if worst_dead and worst_dead[0] >= MINORITY:
        return (f"{worst_dead[0]:.0%} of {worst_dead[1]}'s ReLU units are dead (zero for every example): they no "
                "longer learn.")
    if len(norms) < 2:
        return "No gradient could be measured for these layers."
    return "Gradients reach every layer at similar sizes."


#: how :func:`interpret` names each measure it may compare the layers by
_MEASURE_WORDS = {"bias_grad_rms": "per unit", "grad_norm": "norm"}


def interpret_history(history: Sequence[Sequence[dict[str, Any]]]) -> str:
    """:func:`interpret` of the last snapshot, and, when an earlier epoch showed vanishing gradients that have
    gone since, that too: a network like nielsen-deep-sigmoid starts with its first layer's gradients two
    decades below the last's and closes the gap as its later layers learn, so after a longer run the last
    snapshot alone ("similar sizes") would hide the lesson the plots show.

    Args:
        history: one snapshot per epoch, oldest first.
    """
    if not history:
        return interpret([])
    now = interpret(history[-1])
    if "vanishing" in now or "exploding" in now:
        return now
    for stats in history[:-1]:
        layers = list(stats)
        key = gradient_measure(layers)
        norms = [s.get(key) for s in layers if s.get(key) is not None]
        if len(norms) >= 2 and norms[0] > 0 and norms[-1] / norms[0] >= GRADIENT_RATIO_ALARM:
            epoch = int(layers[0].get("epoch") or 0) + 1
            return (f"{now} After epoch {epoch} the first layer's gradients were {_times(norms[-1] / norms[0])}x "
                    "smaller than the last's (vanishing gradients): it started learning late.")
    return now


def gradient_measure(stats: Sequence[dict[str, Any]]) -> str:
    """Which figure compares the layers' gradients: ``"bias_grad_rms"`` when the first and the last layer both
    have it, else ``"grad_norm"``; :func:`interpret` and the Inside tab lead with it (the terminal table shows
    both).

    Why the per-unit bias gradient first: it is the error of each unit itself (Nielsen's delta, his "speed of
    learning" of a neuron), so a layer's figure does not grow with how many inputs its units have, as the kernel
    gradient's norm does: the first layer of nielsen-deep-sigmoid has 784 x 30 weights, the last 30 x 10, and
    after one epoch its kernel norm was only 17-23 times below the last's where its units' errors were 113-165
    times smaller (seeds 42, 1, 2, 3; its ReLU twin 0.7-1.2 times). Nor does it grow with how many units a layer
    has, as the L2 norm of the bias gradient does (``bias_grad_norm``, Nielsen's own figure, which compares his
    equally wide hidden layers: 65-95 times there, against an output layer a third as wide). A layer without a
    per-unit bias (a convolution, a recurrent layer, ``use_bias=False``) has none, and then the kernel gradient
    norms of all layers are compared instead, as before: the two are never mixed in one comparison.
    """
    layers = list(stats)
    if len(layers) >= 2 and all(layers[i].get("bias_grad_rms") is not None for i in (0, -1)):
        return "bias_grad_rms"
    return "grad_norm"


def _times(r: float) -> str:
    """A ratio as a learner reads it: 40, 1,200, 3.5."""
    return f"{r:,.0f}" if r >= 10 else f"{r:.1f}"


def format_table(stats: Sequence[dict[str, Any]]) -> str:
    """The snapshot as a plain-text table for the terminal, headed by its epoch and ended by :func:`interpret`."""
    layers = list(stats)
    if not layers:
        return interpret(layers)
    first = layers[0]
    when = f"after epoch {first['epoch'] + 1}" if first.get("batch") is None else (
        f"during epoch {first['epoch'] + 1} (batch {first['batch'] + 1})")
    head = ("layer", "type", "grad/unit", "grad norm", "update/weight", "dead", "saturated")
    rows = [(s["layer"], s["class_name"] + (f" ({s['activation']})" if s.get("activation") else ""),
             _num(s.get("bias_grad_rms")), _num(s.get("grad_norm")), _num(s.get("update_ratio")),
             _pct(s.get("dead_fraction")), _pct(s.get("saturated_fraction"))) for s in layers]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([f"Layer statistics {when}:", line(head), *(line(r) for r in rows), interpret(layers)])


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"
