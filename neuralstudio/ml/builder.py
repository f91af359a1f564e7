"""Graph -> ``keras.Model``, with every node's output shape, parameter count and problems.

:func:`analyze` is what the editor runs after every edit and what ``check``
prints: it walks the graph in topological order, instantiates each layer from
its config and calls it on symbolic inputs, and records *every* problem
instead of stopping at the first (a node downstream of a failed one is skipped
silently, since its problem is the upstream one).  :func:`build_model` is the
strict version the trainer uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.errors import UserError
from neuralstudio.core.graph import INPUT_CLASS, Graph, GraphError, Node
from neuralstudio.core.problems import Problem
from neuralstudio.ml import diagnose


@dataclass
class NodeInfo:
    """What Keras says about one node once built."""

    output_shape: Any = None  # tuple, or list of tuples for multi-output layers
    params: int = 0
    trainable_params: int = 0

    @property
    def shape_text(self) -> str:
        return format_shape(self.output_shape)


@dataclass
class Analysis:
    """The result of :func:`analyze`."""

    infos: dict[str, NodeInfo] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    model: Any = None  # keras.Model when the graph built cleanly

    @property
    def ok(self) -> bool:
        return self.model is not None and not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def total_params(self) -> int:
        return sum(i.params for i in self.infos.values())

    @property
    def trainable_params(self) -> int:
        return sum(i.trainable_params for i in self.infos.values())


class BuildError(UserError, ValueError):
    """The graph cannot become a Keras model; ``problems`` lists why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.message for p in problems) or "The network cannot be built.")


def format_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(format_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def layer_class(class_name: str) -> type | None:
    """The Keras layer class for ``class_name`` (None if Keras has no such layer)."""
    import keras

    cls = getattr(keras.layers, class_name, None)
    if cls is None and class_name in ("Functional", "Sequential", "Model"):
        cls = {"Functional": keras.Model, "Model": keras.Model, "Sequential": keras.Sequential}[class_name]
    if isinstance(cls, type) and issubclass(cls, keras.layers.Layer):
        return cls
    return None


def make_layer(node: Node) -> Any:
    """Instantiate the Keras layer a (non-input) node describes."""
    import keras

    config = dict(node.config)
    config["name"] = node.name
    if node.class_name in ("Functional", "Sequential", "Model"):
        return keras.saving.deserialize_keras_object(
            {"class_name": node.class_name, "config": config, "module": _model_module(node.class_name)},
            safe_mode=True,
        )
    cls = layer_class(node.class_name)
    if cls is None:
        raise diagnose.UnknownLayer(node.class_name)
    return cls.from_config(config)


def _model_module(class_name: str) -> str:
    return "keras" if class_name != "Functional" else "keras.src.models.functional"


def make_input(node: Node) -> Any:
    import keras

    cfg = node.config
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    if shape is None and cfg.get("shape") is not None:
        shape = [None, *cfg["shape"]]
    if not isinstance(shape, (list, tuple)) or not shape:
        raise diagnose.InputShapeMissing()
    if any(d is not None and (isinstance(d, bool) or not isinstance(d, int) or d <= 0) for d in shape):
        raise diagnose.InputShapeMissing()
    dtype = cfg.get("dtype") or "float32"
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    return keras.Input(batch_shape=tuple(shape), dtype=dtype, name=node.name,
                       sparse=bool(cfg.get("sparse", False)))


def _count(weights: list[Any]) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def analyze(graph: Graph, *, build: bool = True) -> Analysis:
    """Build the graph node by node, collecting shapes, parameter counts and all problems.

    Args:
        graph: the design's graph.
        build: also assemble the ``keras.Model`` when every node built.
    """
    import keras

    result = Analysis()
    try:
        order = graph.topological_order()
    except GraphError as exc:
        result.problems.append(Problem(str(exc)))
        return result
    result.problems.extend(diagnose.structural_problems(graph))

    tensors: dict[str, Any] = {}
    layers: dict[str, Any] = {}
    failed: set[str] = set()
    for nid in order:
        node = graph.nodes[nid]
        preds = graph.in_edges(nid)
        if any(e.src in failed for e in preds):
            failed.add(nid)
            continue
        try:
            if node.class_name == INPUT_CLASS:
                out = make_input(node)
                result.infos[nid] = NodeInfo(tuple(out.shape))
                tensors[nid] = out
                continue
            if not preds:
                failed.add(nid)
                continue  # structural_problems reported the missing input
            inputs = [_pick(tensors[e.src], e.src_port) for e in preds]
            estimate = diagnose.too_big(node, inputs)
            if estimate is not None:
                result.problems.append(estimate)
                failed.add(nid)
                continue
            lint = diagnose.lint_call(node, inputs)
            if lint is not None:
                result.problems.append(lint)
                if lint.severity == "error":
                    failed.add(nid)
                    continue
            if node.shares:
                layer = layers.get(node.shares)
                if layer is None:
                    failed.add(nid)
                    continue
            else:
                layer = make_layer(node)
            arg = inputs[0] if diagnose.takes_single_tensor(node.class_name, len(inputs)) else inputs
            if node.class_name in ("MultiHeadAttention", "GroupedQueryAttention"):
                out = layer(*inputs)
            else:
                out = layer(arg)
            layers[nid] = layer
            tensors[nid] = out
            shape = [tuple(t.shape) for t in out] if isinstance(out, (list, tuple)) else tuple(out.shape)
            if node.shares:
                info = NodeInfo(shape, 0, 0)
            else:
                info = NodeInfo(shape, _count(layer.weights), _count(layer.trainable_weights))
            result.infos[nid] = info
        except Exception as exc:  # noqa: BLE001 - every Keras error becomes a Problem
            failed.add(nid)
            result.problems.append(diagnose.explain(node, graph, tensors, exc))

    result.problems.extend(diagnose.output_problems(graph, result.infos))
    if build and not failed and not result.errors and graph.outputs():
        try:
            ins = [tensors[i] for i in graph.inputs()]
            outs = [tensors[o] for o in graph.outputs()]
            result.model = keras.Model(
                inputs=ins[0] if len(ins) == 1 else ins,
                outputs=outs[0] if len(outs) == 1 else outs,
                name="neuralstudio_model",
            )
        except Exception as exc:  # noqa: BLE001
            result.problems.append(Problem(f"Keras could not assemble the model: {diagnose.short(exc)}"))
    return result


def _pick(t: Any, port: int) -> Any:
    if isinstance(t, (list, tuple)):
        return t[port] if port < len(t) else t[0]
    return t


def build_model(graph: Graph) -> Any:
    """The ``keras.Model`` for ``graph``; raises :class:`BuildError` with every problem."""
    result = analyze(graph)
    if not result.ok:
        raise BuildError(result.errors or [Problem("The network has no output.")])
    return result.model
