"""Graph -> ``keras.Model``, with every node's output shape, parameter count and problems.

:func:`analyze` is what the editor runs after every edit and what ``check``
prints: it walks the graph in topological order, instantiates each layer from
its config and calls it on symbolic inputs, and records *every* problem
instead of stopping at the first (a node downstream of a failed one is skipped
silently, since its problem is the upstream one).  :func:`build_model` is the
strict version the trainer uses.

The editor should call ``analyze(graph, build=False)``: layers whose config and
input shapes did not change since an earlier analysis are served from a shape
cache, and Dense/Conv layers are sized with ``compute_output_shape`` without
creating their weights, so a re-analysis of a 200-layer design after one edit
takes tens of milliseconds instead of the second or more Keras needs to build
it (``tests/benchmarks/bench_builder.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import format_shape as core_format_shape
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
    model_requested: bool = True  # False for analyze(build=False): no model is expected then

    @property
    def ok(self) -> bool:
        """No errors, and the model was assembled when one was asked for."""
        if any(p.severity == "error" for p in self.problems):
            return False
        return self.model is not None or not self.model_requested

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
    """One shape, or a layer's several output shapes; ``?`` when unknown."""
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(format_shape(s) for s in shape)
    return core_format_shape(shape)


def layer_class(class_name: str) -> type | None:
    """The Keras layer class for ``class_name`` (None if Keras has no such layer)."""
    import keras

    cls = getattr(keras.layers, class_name, None)
    if cls is None:  # a class Keras exports under another name (GroupedQueryAttention)
        cls = next((c for c in vars(keras.layers).values()
                    if isinstance(c, type) and c.__name__ == class_name), None)
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


# Shape inference results of earlier analyses, keyed by everything that decides
# them (class, config without the name, input shapes/dtypes): an edit then only
# re-infers the layers whose config or inputs changed.  Only shapes and counts are
# kept, never layer objects, so no two models ever share weights.
_CACHE: OrderedDict[tuple, tuple[Any, Any, int, int]] = OrderedDict()
_CACHE_SIZE = 8192
_CACHE_LOCK = threading.Lock()  # the editor analyses in a worker thread, other views in the GUI thread


def _cache_key(node: Node, inputs: list[Any], policy: str = "") -> tuple | None:
    if node.shares:
        return None
    cfg = {k: v for k, v in node.config.items() if k != "name"}
    try:
        text = json.dumps(cfg, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None
    ins = tuple((tuple(t.shape), str(t.dtype), bool(getattr(t, "sparse", False))) for t in inputs)
    return (policy, node.class_name, text, ins)


def _spec(out: Any) -> tuple[Any, Any]:
    if isinstance(out, (list, tuple)):
        return [tuple(t.shape) for t in out], [str(t.dtype) for t in out]
    return tuple(out.shape), str(out.dtype)


def _tensor_from(shape: Any, dtype: Any) -> Any:
    import keras

    if isinstance(shape, list):
        return [keras.KerasTensor(s, dtype=d) for s, d in zip(shape, dtype)]
    return keras.KerasTensor(shape, dtype=dtype)


# The live (build=False) analysis of a Dense or convolution layer with at least
# this many parameters asks Keras only for its output shape
# (``compute_output_shape``) and counts the weights itself, instead of building
# it: creating and initialising weights costs ~5 ms a layer, and seconds and
# hundreds of MB for a 100-million-weight layer, on every edit.  The strict
# build (build=True) always builds, so Keras still has the last word.
SHAPE_ONLY_PARAMS = 0
_CONV_RE = re.compile(r"^Conv([123])D(Transpose)?$")


def exact_params(node: Node, inputs: list[Any]) -> int | None:
    """Exact weight count of a Dense or ConvND layer from its config and input shape (None: not one)."""
    cfg = node.config
    cin = inputs[0].shape[-1] if len(inputs) == 1 and len(inputs[0].shape) else None
    if not isinstance(cin, int) or cfg.get("lora_rank") or cfg.get("data_format") == "channels_first":
        return None  # unknown channels, LoRA weights, channels not last: let Keras build it
    bias = bool(cfg.get("use_bias", True))
    if node.class_name == "Dense":
        units = int(cfg["units"])
        return cin * units + (units if bias else 0)
    m = _CONV_RE.match(node.class_name)
    if m is None:
        return None
    rank = int(m.group(1))
    k = cfg["kernel_size"]
    k = [int(k)] * rank if isinstance(k, int) else [int(v) for v in k]
    filters = int(cfg["filters"])
    groups = 1 if m.group(2) else int(cfg.get("groups", 1))
    if len(k) != rank or groups < 1 or cin % groups:
        return None
    return math.prod(k) * (cin // groups) * filters + (filters if bias else 0)


def _shape_only(node: Node, inputs: list[Any]) -> tuple[Any, int] | None:
    """Output tensor and weight count of a big Dense/ConvND layer, without creating its weights."""
    import keras

    try:
        n = exact_params(node, inputs)
    except (KeyError, TypeError, ValueError):
        return None
    if n is None or n < SHAPE_ONLY_PARAMS or node.shares:
        return None
    layer = make_layer(node)
    shape = layer.compute_output_shape(tuple(inputs[0].shape))
    return keras.KerasTensor(tuple(shape), dtype=layer.compute_dtype), n


def probe_layer(node: Node, inputs: list[Any]) -> tuple[Any, int, int] | None:
    """Output, weight count and trainable count of a layer, from Keras itself but without allocating weights.

    The layer is made and called on stand-ins of its inputs inside a ``keras.StatelessScope``
    that does not initialise variables: Keras then declares every weight (shape and dtype) but
    gives it no value, so a layer of a billion weights costs what a small one does.  This is
    how the size guard knows every layer's size (MultiHeadAttention, EinsumDense, wrappers,
    nested models...), not only the ones it has a formula for.  None when the probe fails (the
    real build then reports why).
    """
    import keras
    from keras.src.backend.common import global_state

    # Keras lists the unvalued variables so that the next StatelessScope to close initialises
    # them; Keras's own symbolic calls open one, so the probe's must leave that list as it was.
    pending = global_state.get_global_attribute("uninitialized_variables")
    saved = list(pending) if pending else []
    try:
        with keras.StatelessScope(initialize_variables=False):
            layer = make_layer(node)
            stand_ins = [_tensor_from(tuple(t.shape), str(t.dtype)) for t in inputs]
            out = _call(layer, node, stand_ins)
            return out, _count(layer.weights), _count(layer.trainable_weights)
    except Exception:  # noqa: BLE001 - any failure: the real build explains it
        return None
    finally:
        global_state.set_global_attribute("uninitialized_variables", saved)


@functools.lru_cache(maxsize=512)
def _builds_no_weights(class_name: str) -> bool:
    """True for a layer class that keeps Keras's empty ``build`` (ReLU, Dropout, Flatten, pooling...).

    Keras layers create their weights in ``build``; one that does not override it has none
    to size, so probing it would only cost time on every analysis.
    """
    import keras

    cls = layer_class(class_name)
    return cls is not None and not issubclass(cls, keras.Model) and cls.build is keras.layers.Layer.build


def _call(layer: Any, node: Node, inputs: list[Any]) -> Any:
    """Call ``layer`` on ``inputs`` the way the design means: one tensor, a list, or attention's arguments."""
    if node.class_name in ("MultiHeadAttention", "GroupedQueryAttention"):
        return layer(*inputs)
    return layer(inputs[0] if diagnose.takes_single_tensor(node.class_name, len(inputs)) else inputs)


#: Longest problem message kept: messages quote names and settings from the design file.
MAX_MESSAGE = 1000


def _bounded(problem: Problem) -> Problem:
    if len(problem.message) <= MAX_MESSAGE:
        return problem
    return dataclasses.replace(problem, message=problem.message[: MAX_MESSAGE - 3] + "...")


_RECURSION_LOCK = threading.Lock()
_recursion_users = 0
_recursion_saved = 0
#: Highest recursion limit asked for (a graph of ~30,000 layers in a row).
MAX_RECURSION_LIMIT = 60_000


@contextlib.contextmanager
def keras_graph_recursion(layers: int) -> Iterator[None]:
    """Room on Python's stack for Keras to walk the graph of a model of ``layers`` layers.

    Keras maps a functional model recursively: ``keras.Model(inputs, outputs)`` ->
    ``Functional.__init__`` -> ``Function.__init__`` -> ``map_graph`` -> ``_build_map`` ->
    ``_build_map_helper`` (``keras/src/ops/function.py``) calls itself once per layer along the
    longest path, so a valid chain of 1,000 layers passes Python's default limit of 1,000 frames
    and fails with "maximum recursion depth exceeded".  Loading such a model from a file walks
    the same code.  The limit is process-wide: it is raised while any caller needs it and put
    back by the last one.  Python 3.11+ runs Python-to-Python calls without C stack, so the
    higher limit cannot overflow a thread's stack.
    """
    global _recursion_users, _recursion_saved
    need = min(MAX_RECURSION_LIMIT, _stack_depth() + 2 * layers + 1000)
    with _RECURSION_LOCK:
        if _recursion_users == 0:
            _recursion_saved = sys.getrecursionlimit()
        _recursion_users += 1
        if need > sys.getrecursionlimit():
            sys.setrecursionlimit(need)
    try:
        yield
    finally:
        with _RECURSION_LOCK:
            _recursion_users -= 1
            if _recursion_users == 0:
                sys.setrecursionlimit(_recursion_saved)


def _stack_depth() -> int:
    """How many frames deep the caller is (the room Keras gets is counted from there)."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def _lookup(key: tuple | None) -> tuple[Any, Any, int, int] | None:
    if key is None:
        return None
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
        return hit


def _remember(key: tuple | None, shape: Any, dtype: Any, params: int, trainable: int) -> None:
    if key is not None:
        with _CACHE_LOCK:
            _CACHE[key] = (shape, dtype, params, trainable)
            if len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)


def clear_cache() -> None:
    """Forget cached shape inference (tests; after changing Keras settings such as the float type)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def analyze(graph: Graph, build: bool = True, *, num_classes: int | None = None,
            loss: str | None = None, data_name: str | None = None) -> Analysis:
    """Build the graph node by node, collecting shapes, parameter counts and all problems.

    Every problem is reported, not only the first: independent branches are all
    checked, and a node downstream of a failed one is skipped silently since its
    problem is the upstream one.

    Args:
        graph: the design's graph.
        build: also assemble the ``keras.Model`` when every node built.  The
            editor's live check passes False: shapes then come from a cache of
            earlier analyses wherever a layer and its inputs did not change, so
            an edit costs only the layers it affects.
        num_classes: classes in the chosen data, when known; an output that is not
            (None, num_classes) is then a warning naming the data (``data_name``).  A design is
            valid or not on its own: without it, the output's size is not checked at all
            (``core.class_names.data_classes`` gives both for a design's data section).
        loss: the training loss, for the output check.
        data_name: how the data is named in that warning ("MNIST sample").
    """
    import keras

    result = Analysis(model_requested=build)
    try:
        order = graph.topological_order()
    except GraphError as exc:
        result.problems.append(Problem(str(exc)))
        return result
    result.problems.extend(diagnose.structural_problems(graph))

    tensors: dict[str, Any] = {}
    layers: dict[str, Any] = {}
    failed: set[str] = set()
    shared = {n.shares for n in graph if n.shares}  # their layer objects are needed again
    policy = str(keras.config.dtype_policy().name)  # mixed precision changes output dtypes
    total = 0
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
            bad_port = next((pr for pr in (_port_problem(graph, e, tensors[e.src]) for e in preds) if pr), None)
            if bad_port is not None:
                result.problems.append(bad_port)
                failed.add(nid)
                continue
            inputs = [_pick(tensors[e.src], e.src_port) for e in preds]
            live = not build and nid not in shared  # shapes are enough: no layer object is needed later
            key = _cache_key(node, inputs, policy) if live else None
            hit = _lookup(key)
            probe, params = _size(node, inputs, hit)
            estimate = diagnose.too_big(node, inputs, total, params=params)
            if estimate is not None:
                result.problems.append(estimate)
                failed.add(nid)
                continue
            sources = [diagnose.label(graph.nodes[e.src]) for e in preds]
            lint = diagnose.lint_call(node, inputs, sources)
            if lint is not None:
                result.problems.append(lint)
                if lint.severity == "error":
                    failed.add(nid)
                    continue
            if hit is not None:
                shape, dtype, params, trainable = hit
                tensors[nid] = _tensor_from(shape, dtype)
                result.infos[nid] = NodeInfo(shape, params, trainable)
                total += params
                continue
            if live and probe is not None:  # Keras's own answer, without weights: nothing more to build
                out, n_params, trainable = probe
                tensors[nid] = out
                shape, dtype = _spec(out)
                result.infos[nid] = NodeInfo(shape, n_params, trainable)
                total += n_params
                _remember(key, shape, dtype, n_params, trainable)
                continue
            quick = _shape_only(node, inputs) if live else None
            if quick is not None:
                out, n_params = quick
                tensors[nid] = out
                trainable = n_params if node.config.get("trainable", True) else 0
                result.infos[nid] = NodeInfo(tuple(out.shape), n_params, trainable)
                total += n_params
                _remember(key, tuple(out.shape), str(out.dtype), n_params, trainable)
                continue
            if node.shares:
                layer = layers.get(node.shares)
                if layer is None:
                    failed.add(nid)
                    continue
            else:
                layer = make_layer(node)
            out = _call(layer, node, inputs)
            layers[nid] = layer
            tensors[nid] = out
            shape, dtype = _spec(out)
            if node.shares:
                info = NodeInfo(shape, 0, 0)
            else:
                info = NodeInfo(shape, _count(layer.weights), _count(layer.trainable_weights))
            result.infos[nid] = info
            total += info.params
            _remember(key if key is not None else _cache_key(node, inputs, policy), shape, dtype, info.params,
                      info.trainable_params)
        except Exception as exc:  # noqa: BLE001 - every Keras error becomes a Problem
            failed.add(nid)
            result.problems.append(diagnose.explain(node, graph, tensors, exc))

    result.problems.extend(diagnose.output_problems(graph, result.infos, num_classes, loss, data_name))
    if build and not failed and not result.errors and graph.outputs():
        try:
            ins = [tensors[i] for i in graph.inputs()]
            outs = [_pick(tensors[o], 0) for o in graph.outputs()]
            with keras_graph_recursion(len(graph)):
                result.model = keras.Model(
                    inputs=ins[0] if len(ins) == 1 else ins,
                    outputs=outs[0] if len(outs) == 1 else outs,
                    name="neuralstudio_model",
                )
        except Exception as exc:  # noqa: BLE001
            result.problems.append(Problem(f"Keras could not assemble the model: {diagnose.short(exc)}"))
    result.problems = [_bounded(p) for p in result.problems]
    return result


def _size(node: Node, inputs: list[Any], hit: tuple | None) -> tuple[tuple[Any, int, int] | None, int | None]:
    """The probe of a layer (when one was needed) and its weight count, known before any weight exists.

    A cached analysis or the exact formula of a Dense/Conv layer answers at no cost; any
    other layer is probed through Keras (:func:`probe_layer`).  A layer calling another's
    weights again adds none.
    """
    if hit is not None:
        return None, hit[2]
    if node.shares:
        return None, 0
    try:
        exact = exact_params(node, inputs)
    except (KeyError, TypeError, ValueError):
        exact = None
    if exact is not None:
        return None, exact
    if _builds_no_weights(node.class_name):
        return None, None
    probe = probe_layer(node, inputs)
    return probe, (probe[1] if probe is not None else None)


def _pick(t: Any, port: int) -> Any:
    """Output ``port`` of a layer's result (ports are checked first by :func:`_port_problem`)."""
    if isinstance(t, (list, tuple)):
        return t[port]
    return t


def _port_problem(graph: Graph, edge: Any, out: Any) -> Problem | None:
    """A connection from an output the source layer does not have.

    Silently using output 0 instead would make the analysis say "no problems" while the generated code
    (``layer[3]``) builds another network.
    """
    n = len(out) if isinstance(out, (list, tuple)) else 1
    if edge.src_port < n:
        return None
    src, dst = graph.nodes[edge.src], graph.nodes[edge.dst]
    return Problem(f"{dst.name} reads output {edge.src_port + 1} of {src.name}, which has only {n} output"
                   f"{'s' if n != 1 else ''}: connect it to one of those.", edge.dst)


def build_model(graph: Graph) -> Any:
    """The ``keras.Model`` for ``graph``; raises :class:`BuildError` with every problem."""
    result = analyze(graph)
    if not result.ok:
        raise BuildError(result.errors or [Problem("The network has no output.")])
    return result.model
