"""Turn what is wrong with a design into messages a learner can act on.

Keras's own exceptions are precise but written for library users; each
function here recognises a situation and says, in the design's own terms
(layer names, shapes), what is wrong and what to do, with a one-click
:class:`~neuralstudio.core.problems.Fix` where one exists.
"""

from __future__ import annotations

import math
import re
from typing import Any

from neuralstudio.core.arity import MERGE_LAYERS, input_arity
from neuralstudio.core.formatting import format_shape, shorten
from neuralstudio.core.graph import INPUT_CLASS, Graph, Node
from neuralstudio.core.problems import Fix, Problem

# 4 bytes per float32 weight.  Training keeps about four copies of every weight
# (the weights, their gradients and Adam's two moments), so a single layer above
# 1 GiB of weights, or a network above 2 GiB, would not train on a learner's
# machine: refuse it before Keras allocates anything.
MAX_WEIGHT_BYTES = 2**30
MAX_TOTAL_WEIGHT_BYTES = 2 * 2**30
CLASSIFICATION_LOSSES = frozenset({"sparse_categorical_crossentropy", "categorical_crossentropy"})


class UnknownLayer(Exception):  # noqa: N818 - a signal, caught in explain()
    def __init__(self, class_name: str) -> None:
        super().__init__(class_name)
        self.class_name = class_name


class InputShapeMissing(Exception):  # noqa: N818 - a signal, caught in explain()
    pass


def short(exc: BaseException) -> str:
    """The first meaningful line of a Keras/TensorFlow error, without internals."""
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # Keras bolds parts of its messages
    text = text.split("\n\nArguments received")[0]
    if "Exception encountered:" in text:  # "Error when deserializing class X using config={...}"
        text = text.split("Exception encountered:", 1)[1]
    text = text.replace("Exception encountered when calling", "In").strip()
    text = re.sub(r"\s+", " ", text).rstrip(".")
    return text[:400]


def label(node: Node) -> str:
    return f"{node.name} ({node.class_name})"


def fmt(shape: Any) -> str:
    return format_shape(shape)


def _shape(t: Any) -> tuple:
    return tuple(t.shape)


def takes_single_tensor(class_name: str, n_inputs: int) -> bool:
    return n_inputs == 1 and class_name not in MERGE_LAYERS


def structural_problems(graph: Graph) -> list[Problem]:
    """Problems visible without Keras: no input, unconnected slots, dangling layers."""
    problems: list[Problem] = []
    if not graph.inputs():
        first = next(iter(graph.nodes), None)
        problems.append(Problem(
            "The network has no Input layer: add one and set its shape (for MNIST: 28, 28, 1).",
            first,
            fix=Fix("add_input", "Add an Input (28, 28, 1)", "InputLayer",
                    {"batch_shape": [None, 28, 28, 1]}) if first else None,
        ))
    for node in graph:
        if node.class_name == INPUT_CLASS:
            continue
        lo, _hi = input_arity(node.class_name)
        n = len(graph.in_edges(node.id))
        if n < lo:
            if n == 0:
                msg = f"{label(node)} has no input: connect a layer's output to it."
            else:
                msg = f"{label(node)} needs at least {lo} inputs but has {n}: connect another layer to it."
            problems.append(Problem(msg, node.id))
    if graph.nodes and not graph.outputs():
        problems.append(Problem("The network has no output layer."))
    return problems


def _last_dim(t: Any) -> int | None:
    return t.shape[-1] if len(t.shape) else None


def estimate_params(node: Node, inputs: list[Any]) -> int | None:
    """Parameters a layer would create, computed before Keras allocates them."""
    cfg = node.config
    try:
        if node.class_name == "Dense":
            d = _last_dim(inputs[0])
            return (d or 0) * int(cfg.get("units", 0)) + int(cfg.get("units", 0))
        if node.class_name == "Embedding":
            return int(cfg.get("input_dim", 0)) * int(cfg.get("output_dim", 0))
        if node.class_name.startswith("ConvLSTM") and "filters" in cfg:
            k = cfg.get("kernel_size", 1)
            k = math.prod(k) if isinstance(k, (list, tuple)) else int(k) ** max(1, len(inputs[0].shape) - 3)
            f = int(cfg["filters"])
            return 4 * (k * ((_last_dim(inputs[0]) or 0) + f) * f + f)
        if node.class_name.startswith("Conv") and "filters" in cfg:
            k = cfg.get("kernel_size", 1)
            k = math.prod(k) if isinstance(k, (list, tuple)) else int(k) ** max(1, len(inputs[0].shape) - 2)
            return k * (_last_dim(inputs[0]) or 0) * int(cfg["filters"]) + int(cfg["filters"])
        if node.class_name in ("SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D"):
            return None  # small by construction
        if node.class_name in ("LSTM", "GRU", "SimpleRNN"):
            u = int(cfg.get("units", 0))
            gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[node.class_name]
            return gates * ((_last_dim(inputs[0]) or 0) + u + 2) * u
    except (TypeError, ValueError, IndexError):
        return None
    return None


def too_big(node: Node, inputs: list[Any], total_so_far: int = 0, params: int | None = None) -> Problem | None:
    """Refuse a layer whose weights would not fit, *before* Keras allocates them.

    Args:
        node: the layer about to be built.
        inputs: its symbolic inputs (only their shapes are read).
        total_so_far: parameters of the layers built before it.
        params: its weight count when already known (the builder asks Keras without
            allocating anything); else :func:`estimate_params` estimates it.
    """
    n = params if params is not None else estimate_params(node, inputs)
    if n is None:
        return None
    if n * 4 > MAX_WEIGHT_BYTES:
        return Problem(
            f"{label(node)} would have {n:,} parameters ({n * 4 / 2**30:.1f} GiB of weights), more than "
            f"this computer can train: reduce its size.",
            node.id,
        )
    if (n + total_so_far) * 4 > MAX_TOTAL_WEIGHT_BYTES:
        total = n + total_so_far
        return Problem(
            f"{label(node)} brings the network to {total:,} parameters ({total * 4 / 2**30:.1f} GiB of "
            f"weights), more than this computer can train: make the layers smaller.",
            node.id,
        )
    return None


# Spatial layers: name pattern -> number of spatial dimensions they work on.
_SPATIAL_RE = re.compile(
    r"^(Conv|Conv\dDTranspose|SeparableConv|DepthwiseConv|MaxPooling|AveragePooling|GlobalMaxPooling|"
    r"GlobalAveragePooling|AdaptiveMaxPooling|AdaptiveAveragePooling|UpSampling|ZeroPadding|Cropping|"
    r"SpatialDropout)(\d)D"
)
_RNN = frozenset({"LSTM", "GRU", "SimpleRNN"})
_ELEMENTWISE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
_WINDOWED = re.compile(r"^(Conv|SeparableConv|DepthwiseConv|MaxPooling|AveragePooling)(\d)D$")


def expected_rank(class_name: str) -> int | None:
    """The rank (with the batch axis) a layer needs, or None when it takes any rank."""
    if class_name in _RNN:
        return 3
    m = re.match(r"^ConvLSTM(\d)D$", class_name)
    if m:
        return int(m.group(1)) + 3
    m = _SPATIAL_RE.match(class_name)
    if m:
        return int(m.group(2)) + 2
    return None


def _square_side(n: int) -> int | None:
    s = math.isqrt(n)
    return s if s > 1 and s * s == n else None


def _rank_problem(node: Node, shape: tuple, want: int) -> Problem:
    rank = len(shape)
    what = {3: "a sequence (batch, steps, features)", 4: "an image (batch, height, width, channels)",
            5: "a volume (batch, depth, height, width, channels)"}.get(want, f"a {want}-D tensor")
    if node.class_name.startswith("ConvLSTM"):
        what = f"a sequence of {want - 3}-D frames ({want}-D)"
    target: list[int] | None = None
    feat = shape[1:]
    known = all(d is not None for d in feat)
    if known and feat:
        if want == 4 and rank == 2:
            side = _square_side(feat[0])
            if side:
                target = [side, side, 1]
            elif feat[0] % 3 == 0 and _square_side(feat[0] // 3):
                side = _square_side(feat[0] // 3)
                target = [side, side, 3]
        elif want == 4 and rank == 3:
            target = [feat[0], feat[1], 1]
        elif want == 3 and node.class_name in _RNN and rank == 2:
            side = _square_side(feat[0])
            target = [side, side] if side else [feat[0], 1]
        elif want == 3 and rank == 2:
            target = [feat[0], 1]
        elif want == 3 and rank == 4:
            target = [feat[0], feat[1] * feat[2]]
    msg = f"{label(node)} needs {what} but receives a {rank}-D tensor {fmt(shape)}"
    if target:
        t = ", ".join(map(str, target))
        return Problem(f"{msg}: insert a Reshape to ({t}) before it.", node.id,
                       fix=Fix("insert_before", f"Insert Reshape to ({t}) before it", "Reshape",
                               {"target_shape": target}, 0))
    if rank > want:
        return Problem(f"{msg}: insert a Reshape (or a Flatten and a Reshape) that gives it {want} dimensions.",
                       node.id)
    return Problem(f"{msg}: insert a Reshape before it that gives it {want} dimensions.", node.id)


def _as_list(v: Any, n: int) -> list[int] | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return [v] * n
    if isinstance(v, (list, tuple)) and all(isinstance(i, int) for i in v):
        return list(v) if len(v) == n else ([v[0]] * n if len(v) == 1 else None)
    return None


def _window_problem(node: Node, shape: tuple) -> Problem | None:
    """A convolution or pooling window larger than what is left of the image."""
    m = _WINDOWED.match(node.class_name)
    cfg = node.config
    if not m or str(cfg.get("padding", "valid")).lower() != "valid":
        return None
    if cfg.get("data_format") == "channels_first":
        return None
    n = int(m.group(2))
    if len(shape) != n + 2:
        return None
    pooling = "Pooling" in node.class_name
    key = "pool_size" if pooling else "kernel_size"
    window = _as_list(cfg.get(key, 2 if pooling else None), n)
    dilation = _as_list(cfg.get("dilation_rate", 1), n) or [1] * n
    if window is None:
        return None
    spatial = shape[1:-1]
    eff = [(k - 1) * d + 1 for k, d in zip(window, dilation)]
    if all(s is None or s >= k for s, k in zip(spatial, eff)):
        return None
    win = "x".join(map(str, window))
    kind = "pooling window" if pooling else "kernel"
    return Problem(
        f"{label(node)} receives {fmt(shape)}, smaller than its {win} {kind}: use a smaller {kind}, remove "
        f"a pooling layer before it (too many poolings shrink the image to nothing), or set its padding to "
        f"'same'.",
        node.id,
        fix=Fix("set_params", "Set padding to 'same'", config={"padding": "same"}),
    )


def _broadcastable(a: tuple, b: tuple) -> bool:
    a, b = a[1:], b[1:]
    if len(a) < len(b):
        a, b = b, a
    for x, y in zip(a[len(a) - len(b):], b):
        if x is None or y is None or x == 1 or y == 1 or x == y:
            continue
        return False
    return True


def _merge_problem(node: Node, inputs: list[Any], sources: list[str]) -> Problem | None:
    shapes = [_shape(t) for t in inputs]
    names = sources if len(sources) == len(shapes) else [f"input {i + 1}" for i in range(len(shapes))]
    if node.class_name in _ELEMENTWISE:
        for i in range(1, len(shapes)):
            if not _broadcastable(shapes[0], shapes[i]):
                verb = {"Add": "adds", "Subtract": "subtracts", "Multiply": "multiplies",
                        "Average": "averages", "Maximum": "takes the maximum of",
                        "Minimum": "takes the minimum of"}[node.class_name]
                return Problem(
                    f"{label(node)} {verb} its inputs element by element, so they need the same shape, but "
                    f"{names[0]} gives {fmt(shapes[0])} and {names[i]} gives {fmt(shapes[i])}: give them the "
                    f"same size, or use a Concatenate instead.",
                    node.id,
                )
    if node.class_name == "Concatenate":
        axis = node.config.get("axis", -1)
        ranks = {len(s) for s in shapes}
        if len(ranks) > 1:
            lo = min(range(len(shapes)), key=lambda i: len(shapes[i]))
            hi = max(range(len(shapes)), key=lambda i: len(shapes[i]))
            fix = None
            if len(shapes[lo]) == 2:
                fix = Fix("insert_before", f"Insert Flatten after {names[hi]}", "Flatten", {}, hi)
            return Problem(
                f"{label(node)} joins tensors with the same number of dimensions, but {names[lo]} gives "
                f"{fmt(shapes[lo])} ({len(shapes[lo])}-D) and {names[hi]} gives {fmt(shapes[hi])} "
                f"({len(shapes[hi])}-D): flatten the {len(shapes[hi])}-D branch first.",
                node.id, fix=fix,
            )
        rank = ranks.pop() if ranks else 0
        if not isinstance(axis, int) or not -rank < axis < rank or axis == 0 or axis == -rank:
            return Problem(
                f"{label(node)} joins along axis {axis}, which its {rank}-D inputs do not have: use -1 "
                f"(the last axis, the features).",
                node.id, fix=Fix("set_params", "Set axis to -1", config={"axis": -1}),
            )
        ax = axis % rank
        for i in range(1, len(shapes)):
            for d, (x, y) in enumerate(zip(shapes[0], shapes[i])):
                if d in (0, ax) or x is None or y is None or x == y:
                    continue
                return Problem(
                    f"{label(node)} joins its inputs along axis {axis}, so every other size must match, but "
                    f"{names[0]} gives {fmt(shapes[0])} and {names[i]} gives {fmt(shapes[i])}: make the "
                    f"sizes match (e.g. padding='same' or the same number of poolings on both branches).",
                    node.id,
                )
    return None


def lint_call(node: Node, inputs: list[Any], sources: list[str] | None = None) -> Problem | None:
    """Mistakes visible from the input shapes alone, found before Keras is asked.

    Checking here instead of decoding Keras's exception gives messages in the
    design's terms and a one-click fix.  Some findings are legal in Keras but
    almost certainly a learner's mistake (a Dense on an image).

    Args:
        node: the layer about to be built.
        inputs: its symbolic inputs.
        sources: "name (Class)" of the layers feeding each input, for messages.
    """
    if node.class_name == "Dense" and len(inputs[0].shape) >= 4:
        rank = len(inputs[0].shape)
        return Problem(
            f"{label(node)} receives a {rank}-D tensor {fmt(inputs[0].shape)}: insert a Flatten or "
            f"GlobalAveragePooling2D before it.",
            node.id,
            fix=Fix("insert_before", "Insert Flatten before it", "Flatten", {}, 0),
        )
    want = expected_rank(node.class_name)
    if want is not None and len(inputs) == 1:
        shape = _shape(inputs[0])
        if len(shape) != want and not (node.class_name.startswith("Global") and len(shape) == want):
            return _rank_problem(node, shape, want)
        window = _window_problem(node, shape)
        if window is not None:
            return window
    if node.class_name in _ELEMENTWISE or node.class_name == "Concatenate":
        return _merge_problem(node, inputs, sources or [])
    return None


def explain(node: Node, graph: Graph, tensors: dict[str, Any], exc: BaseException) -> Problem:
    """Map a Keras exception raised while building ``node`` to a Problem."""
    if isinstance(exc, UnknownLayer):
        return Problem(f"{node.name} uses an unknown layer type {shorten(exc.class_name)}: replace it with a Keras "
                       "layer.", node.id)
    if isinstance(exc, InputShapeMissing):
        return Problem(
            f"{label(node)} needs a shape of positive whole numbers, for example (28, 28, 1) for MNIST images.",
            node.id,
            fix=Fix("set_params", "Set shape to (28, 28, 1)", config={"batch_shape": [None, 28, 28, 1]}),
        )
    edges = graph.in_edges(node.id)
    ins = [(graph.nodes[e.src], tensors[e.src]) for e in edges
           if e.src in tensors and hasattr(tensors[e.src], "shape")]
    shapes = [fmt(t.shape) for _n, t in ins]
    got = f" It receives {', '.join(shapes)}." if shapes else ""
    text = short(exc)
    config = _config_problem(node, str(exc))
    if config is not None:
        return config
    if isinstance(exc, TypeError) and ("unexpected keyword" in str(exc) or "got an unexpected" in str(exc)):
        return Problem(f"{label(node)} has a parameter Keras does not accept: {text}", node.id)
    m = re.search(r"expected (?:min_|max_)?ndim=(\d+), found ndim=(\d+)", text)
    if m and ins:
        return _rank_problem(node, tuple(ins[0][1].shape), int(m.group(1)))
    if "zero or negative" in text or "Negative dimension" in text:
        return Problem(
            f"{label(node)} would produce an empty output: its window is larger than what is left of the "
            f"image.{got} Remove a pooling layer before it or set its padding to 'same'.",
            node.id, fix=Fix("set_params", "Set padding to 'same'", config={"padding": "same"})
            if "padding" in node.config or node.class_name.endswith("D") else None,
        )
    if "incompatible shapes" in text.lower() and len(ins) >= 2:
        pairs = " and ".join(f"{label(n)} gives {fmt(t.shape)}" for n, t in ins)
        return Problem(f"{label(node)} cannot combine its inputs: {pairs}. Make their shapes match.", node.id)
    if "total size" in text and node.class_name == "Reshape":
        return Problem(
            f"{label(node)} cannot reshape: the target shape {tuple(node.config.get('target_shape', ()))} must hold "
            f"exactly as many values as its input.{got}",
            node.id,
        )
    return Problem(f"{label(node)} cannot be built: {text}.{got}", node.id)


_NOT_PARAMS = frozenset({"name", "trainable", "dtype", "autocast", "quantization_config", "input_shape",
                         "batch_input_shape", "batch_shape", "shape", "sparse", "ragged", "input_tensor",
                         "batch_size", "optional"})


def _config_problem(node: Node, error: str) -> Problem | None:
    """The setting Keras refused, said in words, with a reset to Keras's default when it has one."""
    from neuralstudio.ml import catalog

    try:
        spec = catalog.layer_spec(node.class_name)
    except KeyError:
        return None
    unknown_kw = "Unrecognized keyword" in error or "unexpected keyword" in error
    for key, value in node.config.items():
        if key in _NOT_PARAMS:
            continue
        param = spec.param(key)
        if param is None:
            if unknown_kw and key in error:
                return Problem(f"{label(node)} has a setting {key!r} that Keras's {node.class_name} does not "
                               f"have: remove it.", node.id)
            continue
        reason = catalog.validate_param(node.class_name, key, value)
        if reason is None:
            continue
        fix = None
        if param.default is not None or not param.required:
            fix = Fix("set_params", f"Reset {key} to {param.default!r}", config={key: param.default})
        return Problem(f"{label(node)}: {reason}", node.id, fix=fix)
    return None


def _activation_of(node: Node) -> str | None:
    """The activation a layer ends with, when it is a Dense/Activation/Softmax."""
    if node.class_name == "Softmax":
        return "softmax"
    if node.class_name in ("Dense", "Activation", "EinsumDense") or "activation" in node.config:
        act = node.config.get("activation")
        if isinstance(act, dict):
            act = act.get("config", {}).get("name") or act.get("class_name")
        return str(act or "linear")
    return None


def output_problems(graph: Graph, infos: dict[str, Any], num_classes: int | None = None,
                    loss: str | None = None, data_name: str | None = None) -> list[Problem]:
    """Check the output of a classifier: one value per class, (None, classes), with softmax.

    A design is valid or not on its own: nothing here is an error.  Whether the output fits the data is a
    question about the data chosen, so it is asked only when the data is known (``num_classes``), and a
    mismatch is a warning that names that data set: the same network may be meant for other data (an
    imported MobileNetV2 has 1,000 outputs for ImageNet, not 10 for the MNIST sample).

    Args:
        graph: the design's graph.
        infos: what :func:`~neuralstudio.ml.builder.analyze` found for each node.
        num_classes: classes in the chosen data; None when unknown (then the output's size is not checked).
        loss: the training loss; a non-classification loss (e.g. ``"mse"``) skips the check.
        data_name: how the data set is named in the warning ("MNIST sample"); "the data" when None.
    """
    if loss is not None and loss not in CLASSIFICATION_LOSSES:
        return []
    outs = graph.outputs()
    if len(outs) != 1 or outs[0] not in infos:
        return []
    node = graph.nodes[outs[0]]
    shape = infos[outs[0]].output_shape
    if not isinstance(shape, tuple):
        return []
    if len(shape) != 2:
        for_data = f" (Dense({num_classes}) for {data_name or 'the data'})" if num_classes is not None else ""
        return [Problem(
            f"{label(node)} is the output and gives {fmt(shape)}, but a classifier gives one value per class, "
            f"(None, classes): end the network with a Flatten and a Dense(classes, softmax){for_data}.",
            node.id, "warning")]
    act = _activation_of(node)
    if num_classes is not None and shape[1] != num_classes:
        return [class_count_problem(node, shape[1], num_classes, data_name)]
    if act is not None and act != "softmax":
        used = loss or "sparse_categorical_crossentropy"
        fix = Fix("set_params", "Set activation to softmax", config={"activation": "softmax"}) \
            if node.class_name in ("Dense", "Activation") else None
        return [Problem(
            f"{label(node)} is the output with activation {act}, but the loss {used} expects probabilities: "
            f"set its activation to softmax.",
            node.id, "warning", fix)]
    return []


def class_count_problem(node: Node | None, units: Any, num_classes: int, data_name: str | None,
                        layer: str | None = None) -> Problem:
    """The warning for an output of ``units`` values trained on data of ``num_classes`` classes.

    Args:
        node: the output node of a design (it gets the one-click fix), or None for a loaded model.
        units: the output's width.
        num_classes: the data's classes.
        data_name: the data set's name ("MNIST sample"); "the data" when None.
        layer: how to name the output layer when there is no node ("predictions (Dense)").
    """
    data = data_name or "the data"
    where = label(node) if node is not None else (layer or "the output layer")
    fix = None
    if node is not None and node.class_name == "Dense":
        fix = Fix("set_params", f"Set units to {num_classes} and activation to softmax",
                  config={"units": num_classes, "activation": "softmax"})
    return Problem(
        f"The output layer has {units} units but {data} has {num_classes} classes: give {where} "
        f"{num_classes} units (softmax) to train it on that data, or choose data with {units} classes.",
        node.id if node is not None else None, "warning", fix)
