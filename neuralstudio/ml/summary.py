"""A model summary a learner can read: every layer's shape and parameters, and the totals.

One :class:`Summary` is made either from a design's graph (through
:func:`~neuralstudio.ml.builder.analyze`, so the problems come with it) or from
a loaded ``keras.Model``; the ``check`` command prints it as a table or as JSON,
and the editor can show the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.graph import Graph
from neuralstudio.core.problems import Problem
from neuralstudio.ml.builder import Analysis, analyze, format_shape

# Classes of the data sources NeuralStudio knows without loading them.
_KNOWN_CLASSES = {"mnist-sample": 10, "mnist": 10, "fashion_mnist": 10, "fashion-mnist": 10, "cifar10": 10}


@dataclass
class LayerRow:
    """One line of the table."""

    name: str
    class_name: str
    output_shape: str
    params: int


@dataclass
class Summary:
    """Layers, totals and problems of a design or a model.

    Args:
        layers: one row per layer, inputs first, in the order data flows.
        total_params: all weights.
        trainable_params: weights training changes.
        non_trainable_params: weights it does not (e.g. BatchNormalization statistics).
        weights_bytes: memory the weights take (their dtypes' sizes).
        problems: what is wrong, from :func:`analyze` (empty for a loaded model).
    """

    layers: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    weights_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    layer_names: dict[str, str] = field(default_factory=dict)  # node id -> name, for problems

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def problem_dicts(self) -> list[dict[str, Any]]:
        return [
            {
                "severity": p.severity,
                "layer": self.layer_names.get(p.node_id) if p.node_id else None,
                "message": p.message,
                "fix": p.fix.label if p.fix else None,
            }
            for p in self.problems
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``neuralstudio check --json``."""
        return {
            "layers": [
                {"name": r.name, "class_name": r.class_name, "output_shape": r.output_shape, "params": r.params}
                for r in self.layers
            ],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "weights_bytes": self.weights_bytes,
            "problems": self.problem_dicts(),
        }


def _weights_bytes(weights: list[Any]) -> int:
    total = 0
    for w in weights:
        dtype = str(getattr(w, "dtype", "float32"))
        size = {"float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1, "int64": 8}.get(dtype, 4)
        total += int(math.prod(w.shape)) * size
    return total


def summarize_graph(graph: Graph, *, num_classes: int | None = None, loss: str | None = None,
                    analysis: Analysis | None = None) -> Summary:
    """Summarise a design's graph, with every problem :func:`analyze` finds.

    Args:
        graph: the design's graph.
        num_classes: classes in the training data, when known (for the output check).
        loss: the training loss (for the output check).
        analysis: a result of :func:`analyze` already at hand, to avoid building twice.
    """
    result = analysis or analyze(graph, build=True, num_classes=num_classes, loss=loss)
    summary = Summary(problems=list(result.problems))
    try:
        order = graph.topological_order()
    except Exception:  # noqa: BLE001 - a cycle is already one of the problems
        order = list(graph.nodes)
    for nid in order:
        node = graph.nodes[nid]
        info = result.infos.get(nid)
        summary.layers.append(LayerRow(node.name, node.class_name, info.shape_text if info else "?",
                                       info.params if info else 0))
        summary.layer_names[nid] = node.name
    summary.total_params = result.total_params
    summary.trainable_params = result.trainable_params
    summary.non_trainable_params = result.total_params - result.trainable_params
    if result.model is not None:
        summary.weights_bytes = _weights_bytes(result.model.weights)
    else:
        summary.weights_bytes = 4 * result.total_params  # float32 estimate for what was built
    return summary


def _layer_shape(layer: Any) -> str:
    try:
        out = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return "?"
    if isinstance(out, (list, tuple)):
        return format_shape([tuple(t.shape) for t in out])
    if isinstance(out, dict):
        return format_shape([tuple(t.shape) for t in out.values()])
    return format_shape(tuple(out.shape))


#: Longest layer name shown: a model file is untrusted, and a megabyte-long name would fill the terminal.
MAX_SHOWN_NAME = 100


def _clip(text: str) -> str:
    text = str(text)
    return text if len(text) <= MAX_SHOWN_NAME else text[: MAX_SHOWN_NAME - 3] + "..."


def summarize_model(model: Any) -> Summary:
    """Summarise a loaded ``keras.Model``: its layers as Keras lists them, and its weights."""
    summary = Summary()
    for layer in model.layers:
        params = int(sum(math.prod(w.shape) for w in layer.weights))
        summary.layers.append(LayerRow(_clip(layer.name), _clip(type(layer).__name__), _layer_shape(layer), params))
    summary.total_params = int(sum(math.prod(w.shape) for w in model.weights))
    summary.trainable_params = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    summary.non_trainable_params = summary.total_params - summary.trainable_params
    summary.weights_bytes = _weights_bytes(model.weights)
    return summary


def classes_of(data: dict[str, Any]) -> int | None:
    """Number of classes of a design's data source, when known without loading it."""
    n = data.get("num_classes") if isinstance(data, dict) else None
    if isinstance(n, int) and not isinstance(n, bool) and n > 0:
        return n
    source = data.get("source") if isinstance(data, dict) else None
    return _KNOWN_CLASSES.get(str(source).lower()) if source else None


def human_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def format_table(summary: Summary) -> str:
    """The summary as a fixed-width table, like Keras's ``model.summary()`` but plainer."""
    head = ("Layer (name)", "Type", "Output shape", "Params")
    rows = [(r.name, r.class_name, r.output_shape, f"{r.params:,}") for r in summary.layers]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join("-" * w for w in widths)

    def fmt_row(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    out = [fmt_row(head), line, *(fmt_row(r) for r in rows), line]
    out.append(f"Total params:         {summary.total_params:,}")
    out.append(f"Trainable params:     {summary.trainable_params:,}")
    out.append(f"Non-trainable params: {summary.non_trainable_params:,}")
    out.append(f"Weights memory:       {human_bytes(summary.weights_bytes)}")
    return "\n".join(out)
