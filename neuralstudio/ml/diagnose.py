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
from neuralstudio.core.graph import INPUT_CLASS, Graph, Node
from neuralstudio.core.problems import Fix, Problem

# 4 bytes per float32 weight; refuse a layer whose weights alone exceed this.
MAX_WEIGHT_BYTES = 8 * 2**30


class UnknownLayer(Exception):
    def __init__(self, class_name: str) -> None:
        super().__init__(class_name)
        self.class_name = class_name


class InputShapeMissing(Exception):
    pass


def short(exc: BaseException) -> str:
    """The first meaningful line of a Keras/TensorFlow error, without internals."""
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"\s+", " ", text.split("\n\nArguments received")[0])
    return text[:400]


def label(node: Node) -> str:
    return f"{node.name} ({node.class_name})"


def fmt(shape: Any) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


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
        if node.class_name.startswith("Conv") and "filters" in cfg:
            k = cfg.get("kernel_size", 1)
            k = math.prod(k) if isinstance(k, (list, tuple)) else int(k) ** max(1, len(inputs[0].shape) - 2)
            return k * (_last_dim(inputs[0]) or 0) * int(cfg["filters"]) + int(cfg["filters"])
        if node.class_name in ("LSTM", "GRU", "SimpleRNN"):
            u = int(cfg.get("units", 0))
            gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[node.class_name]
            return gates * ((_last_dim(inputs[0]) or 0) + u + 2) * u
    except (TypeError, ValueError, IndexError):
        return None
    return None


def too_big(node: Node, inputs: list[Any]) -> Problem | None:
    n = estimate_params(node, inputs)
    if n is None or n * 4 <= MAX_WEIGHT_BYTES:
        return None
    return Problem(
        f"{label(node)} would have {n:,} parameters ({n * 4 / 2**30:.1f} GiB of weights), more than "
        f"this computer can hold: reduce its size.",
        node.id,
    )


def lint_call(node: Node, inputs: list[Any]) -> Problem | None:
    """Legal in Keras but almost certainly a mistake for a learner."""
    if node.class_name == "Dense" and len(inputs[0].shape) >= 4:
        rank = len(inputs[0].shape)
        return Problem(
            f"{label(node)} receives a {rank}-D tensor {fmt(inputs[0].shape)}: insert a Flatten or "
            f"GlobalAveragePooling2D before it.",
            node.id,
            fix=Fix("insert_before", "Insert Flatten before it", "Flatten", {}, 0),
        )
    return None


def explain(node: Node, graph: Graph, tensors: dict[str, Any], exc: BaseException) -> Problem:
    """Map a Keras exception raised while building ``node`` to a Problem."""
    if isinstance(exc, UnknownLayer):
        return Problem(f"{node.name} uses an unknown layer type {exc.class_name!r}: replace it with a Keras layer.",
                       node.id)
    if isinstance(exc, InputShapeMissing):
        return Problem(
            f"{label(node)} needs a shape of positive whole numbers, for example (28, 28, 1) for MNIST images.",
            node.id,
            fix=Fix("set_params", "Set shape to (28, 28, 1)", config={"batch_shape": [None, 28, 28, 1]}),
        )
    shapes = [fmt(tensors[e.src].shape) for e in graph.in_edges(node.id)
              if e.src in tensors and hasattr(tensors[e.src], "shape")]
    got = f" It receives {', '.join(shapes)}." if shapes else ""
    if isinstance(exc, TypeError) and ("unexpected keyword" in str(exc) or "got an unexpected" in str(exc)):
        return Problem(f"{label(node)} has a parameter Keras does not accept: {short(exc)}", node.id)
    return Problem(f"{label(node)} cannot be built: {short(exc)}.{got}", node.id)


def output_problems(graph: Graph, infos: dict[str, Any]) -> list[Problem]:
    """Warnings about the model's outputs (softmax over the classes for classification)."""
    return []
