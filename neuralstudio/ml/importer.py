"""Keras model -> editable design.

The importer reads the model's own functional description (``get_config()``,
Keras's public and stable format) rather than private attributes: every layer
call becomes a graph node holding the layer's serialized config, every tensor
an edge.  The result rebuilds with :func:`neuralstudio.ml.builder.build_model`
into a model with the same layers, configs, shapes and parameter counts, so
weights copied by layer name give the same outputs.

Decisions:

* A nested model (a ``Functional`` or ``Sequential`` used as a layer) stays one
  node whose config Keras deserializes: this keeps the layer list, the layer
  names and therefore the weights identical to the original, which inlining
  would not.  A nested model with several inputs cannot be one node (a node
  takes one tensor unless it is a merge layer), so it is refused with a message.
* A layer called several times becomes one node per call; the later calls
  ``share`` the first call's node.
* ``training=False`` recorded on a call (keras.applications' EfficientNet does so
  on its Dropout layers) is dropped: inference is identical, but in ``fit()`` the
  layer then follows the training flag like every other layer of a design.
  ``training=True`` recorded on an augmentation layer is the default of its
  ``call`` signature, which Keras records on every plain call (the builder's
  model records it again): dropped too.  Only a value that differs from that
  default (dropout kept on at inference) is refused.
* ``keras.ops`` applied to tensors (``x + 3.0`` in MobileNetV3), custom layers
  and calls with extra tensor arguments cannot be represented and are refused
  naming the layer, never silently dropped.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from neuralstudio.core.design import Design
from neuralstudio.core.errors import UserError
from neuralstudio.core.graph import INPUT_CLASS, MAX_NAME_LENGTH, Graph

# Spacing of the automatic layout, in scene units (a node is about 160 x 50).
X_STEP = 200.0
Y_STEP = 100.0
_MODEL_CLASSES = ("Functional", "Sequential")
_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# Call keyword arguments that do not change what the layer computes in inference
# (Keras records ``mask=None``; applications record ``training=False`` on Dropout; augmentation
# layers record their signature's ``training=True``: see ``_is_call_default``).
# ``training=True`` on a Dropout (kept on at inference) does change it and is refused.
_HARMLESS_KWARGS = ("mask", "training")
# Layers that take their tensors as separate positional/keyword arguments.
_POSITIONAL = {"MultiHeadAttention": ("query", "value", "key"), "GroupedQueryAttention": ("query", "value", "key")}


class ModelImportError(UserError, ValueError):
    """A Keras model that cannot become a design; the message names the layer and why."""


def import_model(model: Any, *, name: str | None = None) -> Design:
    """An editable :class:`Design` holding ``model``'s architecture (not its weights).

    Args:
        model: a functional or Sequential ``keras.Model``.
        name: the design's name (default: the model's name).
    """
    graph = graph_from_model(model)
    return Design(graph=graph, name=name or str(getattr(model, "name", "imported")),
                  description=f"Imported from the Keras model {getattr(model, 'name', '')!r}.")


def graph_from_model(model: Any) -> Graph:
    """The graph of layer calls of ``model``, laid out top to bottom.

    Args:
        model: a functional or Sequential ``keras.Model`` (nested models stay one node each).

    Raises:
        ModelImportError: for anything a design cannot represent.
    """
    import keras

    if isinstance(model, keras.Sequential):
        calls, inputs, outputs = _sequential_calls(model)
    elif isinstance(model, keras.Model):
        calls, inputs, outputs = _functional_calls(model)
    else:
        raise ModelImportError(f"{type(model).__name__} is not a Keras model.")
    return _make_graph(calls, inputs, outputs)


class _Call:
    """One layer call read from the config."""

    __slots__ = ("key", "class_name", "config", "layer_name", "index", "inputs", "shares")

    def __init__(self, key: tuple[str, int], class_name: str, config: dict[str, Any], layer_name: str,
                 index: int, inputs: list[tuple[str, int, int]], shares: tuple[str, int] | None) -> None:
        self.key = key
        self.class_name = class_name
        self.config = config
        self.layer_name = layer_name
        self.index = index
        self.inputs = inputs  # (layer name, call index, tensor index) per input slot
        self.shares = shares


def _check_layer(entry: dict[str, Any]) -> str:
    """The class name of a serialized layer, refusing what the builder cannot make."""
    from neuralstudio.ml.builder import layer_class

    cn = entry.get("class_name")
    module = str(entry.get("module") or "")
    name = entry.get("name") or (entry.get("config") or {}).get("name")
    if module.startswith("keras.src.ops") or module.startswith("keras.ops"):
        raise ModelImportError(
            f"{name} is a keras.ops operation ({cn}) applied directly to a tensor, not a layer: a design can "
            "only hold layers. Replace it with a layer (for example Add, Multiply, Rescaling or Activation)."
        )
    if cn in _MODEL_CLASSES:
        for inner in (entry.get("config") or {}).get("layers") or []:
            if isinstance(inner, dict):
                _check_layer(inner)
        return str(cn)
    if cn == "Lambda":
        raise ModelImportError(f"{name} is a Lambda layer: its Python code cannot be part of a design. "
                               "Replace it with standard layers.")
    if not isinstance(cn, str) or layer_class(cn) is None or (module and module != "keras.layers"):
        raise ModelImportError(
            f"{name} is a custom layer ({cn}{', from ' + module if module else ''}) that is not part of "
            "keras.layers: a design can only hold standard Keras layers."
        )
    return cn


def _history(obj: Any, owner: str) -> tuple[str, int, int]:
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        h = obj["config"]["keras_history"]
        return (str(h[0]), int(h[1]), int(h[2]))
    raise ModelImportError(
        f"{owner} is called with a constant argument ({_short(obj)}) besides its input tensors: "
        "a design can only pass tensors between layers."
    )


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) < 60 else text[:57] + "..."


def _call_inputs(name: str, class_name: str, node: dict[str, Any]) -> list[tuple[str, int, int]]:
    args = node.get("args", [])
    kwargs = dict(node.get("kwargs") or {})
    for k in _HARMLESS_KWARGS:
        if k in kwargs and (kwargs[k] in (None, False) or _is_call_default(class_name, k, kwargs[k])):
            kwargs.pop(k)
    if class_name in _POSITIONAL:
        names = _POSITIONAL[class_name]
        tensors = list(args)
        for k in names[len(tensors):]:
            if k in kwargs:
                tensors.append(kwargs.pop(k))
            else:
                break
        args = tensors
        kwargs = {k: v for k, v in kwargs.items() if v is not None and v is not False}
    if kwargs:
        raise ModelImportError(
            f"{name} is called with extra arguments ({', '.join(sorted(kwargs))}) that a design cannot hold."
        )
    if len(args) == 1 and isinstance(args[0], list):
        return [_history(a, name) for a in args[0]]
    if len(args) > 1 and class_name not in _POSITIONAL:
        _history(args[1], name)  # raises for a constant
        raise ModelImportError(f"{name} takes several tensors as separate arguments, which a design cannot hold.")
    return [_history(a, name) for a in args]


def _is_call_default(class_name: str, key: str, value: Any) -> bool:
    """Whether ``value`` is the default of ``key`` in the layer's ``call`` signature.

    Keras records that default on every plain call: an augmentation layer (``call(data, training=True)``)
    called without a training flag is saved with ``training=True``.  A design's layer, built by the
    builder, records the same again, so the call is the plain one a design holds; only a value the
    model's author chose (``Dropout(...)(x, training=True)``) is refused.
    """
    import inspect

    from neuralstudio.ml.builder import layer_class

    cls = layer_class(class_name)
    try:
        param = inspect.signature(cls.call).parameters.get(key) if cls is not None else None
    except (TypeError, ValueError):
        return False
    return param is not None and param.default is not inspect.Parameter.empty and param.default is value


def _model_io(struct: Any, what: str) -> list[tuple[str, int, int]]:
    if isinstance(struct, dict):
        struct = list(struct.values())
    if isinstance(struct, list) and len(struct) == 3 and isinstance(struct[0], str) and isinstance(struct[1], int):
        return [(struct[0], struct[1], struct[2])]
    if isinstance(struct, list):
        out: list[tuple[str, int, int]] = []
        for s in struct:
            out.extend(_model_io(s, what))
        return out
    raise ModelImportError(f"The model's {what} have a structure NeuralStudio cannot read.")


def _functional_calls(model: Any) -> tuple[list[_Call], list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    try:
        config = model.get_config()
    except Exception as exc:  # noqa: BLE001
        raise ModelImportError(f"Keras cannot describe the model {model.name!r}: {exc}") from None
    if not isinstance(config, dict) or "layers" not in config:
        raise ModelImportError(
            f"{model.name!r} is a subclassed model (its layers are connected by Python code, not by a layer "
            "graph), so it cannot become a design: rebuild it with the functional API or keras.Sequential."
        )
    calls: list[_Call] = []
    functional_layers: set[str] = set()
    for entry in config["layers"]:
        cn = _check_layer(entry)
        lname = str(entry.get("name") or entry["config"].get("name"))
        layer_cfg = entry.get("config") or {}
        if cn == INPUT_CLASS:
            calls.append(_Call((lname, 0), cn, layer_cfg, lname, 0, [], None))
            continue
        if cn == "Functional":
            functional_layers.add(lname)
        for k, node in enumerate(entry.get("inbound_nodes") or []):
            ins = _call_inputs(lname, cn, node)
            calls.append(_Call((lname, k), cn, layer_cfg, lname, k, ins, (lname, 0) if k else None))
    # input_layers/output_layers count a nested Functional's own first node; call arguments do not.
    def fix(t: tuple[str, int, int]) -> tuple[str, int, int]:
        return (t[0], t[1] - 1, t[2]) if t[0] in functional_layers else t

    inputs = [fix(t) for t in _model_io(config["input_layers"], "inputs")]
    outputs = [fix(t) for t in _model_io(config["output_layers"], "outputs")]
    return calls, inputs, outputs


def _sequential_calls(model: Any) -> tuple[list[_Call], list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    config = model.get_config()
    entries = list(config.get("layers") or [])
    if entries and entries[0].get("class_name") == INPUT_CLASS:
        first = entries.pop(0)
        in_cfg = dict(first.get("config") or {})
    else:
        shape = config.get("build_input_shape")
        if not shape:
            raise ModelImportError(
                f"The Sequential model {model.name!r} has no input shape yet: start it with keras.Input(shape=...) "
                "or build it, then import it again."
            )
        in_cfg = {"batch_shape": list(shape), "dtype": "float32", "sparse": False, "name": "input_layer"}
    in_name = str(in_cfg.get("name") or "input_layer")
    calls = [_Call((in_name, 0), INPUT_CLASS, in_cfg, in_name, 0, [], None)]
    prev = (in_name, 0, 0)
    if not entries:
        raise ModelImportError(f"The Sequential model {model.name!r} has no layers.")
    for entry in entries:
        cn = _check_layer(entry)
        cfg = entry.get("config") or {}
        lname = str(cfg.get("name"))
        calls.append(_Call((lname, 0), cn, cfg, lname, 0, [prev], None))
        prev = (lname, 0, 0)
    return calls, [(in_name, 0, 0)], [prev]


def _safe_name(name: str, taken: set[str]) -> str:
    """A valid, unique design name for a Keras layer name (a design's names are shorter and plainer)."""
    base = name if _NAME_OK.match(name) else (re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "layer")
    base = base[: MAX_NAME_LENGTH - 8]  # room for a "_N" suffix that makes it unique
    if not re.match(r"[A-Za-z_]", base):
        base = "l_" + base
    import keyword

    if keyword.iskeyword(base):
        base += "_"
    cand, i = base, 1
    while cand in taken:
        cand = f"{base}_{i}"
        i += 1
    return cand


def _make_graph(calls: list[_Call], inputs: list[tuple[str, int, int]],
                outputs: list[tuple[str, int, int]]) -> Graph:
    by_key = {c.key: c for c in calls}
    for t in inputs + [i for c in calls for i in c.inputs] + outputs:
        if (t[0], t[1]) not in by_key:
            raise ModelImportError(f"The model refers to a call of {t[0]} that it does not contain.")
    input_keys = [(t[0], t[1]) for t in inputs]
    for c in calls:
        if c.class_name == INPUT_CLASS and c.key not in input_keys:
            raise ModelImportError(f"{c.layer_name} is an Input that is not an input of the model.")
        if c.class_name in _MODEL_CLASSES and len(c.inputs) > 1:
            raise ModelImportError(
                f"{c.layer_name} is a nested model with {len(c.inputs)} inputs: a design node takes one input, so "
                "this model cannot be imported. Rebuild it without the nested model."
            )

    # Topological order of the calls; a later call of a shared layer also waits for its first call,
    # since the builder creates the layer there.
    deps: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for c in calls:
        d = {(t[0], t[1]) for t in c.inputs}
        if c.shares:
            d.add(c.shares)
        deps[c.key] = d
    users: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for k, d in deps.items():
        for src in d:
            users[src].append(k)
    remaining = {k: len(d) for k, d in deps.items()}
    order = list(input_keys)
    ready = [c.key for c in calls if not deps[c.key] and c.key not in input_keys]
    order.extend(ready)
    i = 0
    while i < len(order):
        k = order[i]
        i += 1
        for u in users.get(k, ()):
            remaining[u] -= 1
            if remaining[u] == 0:
                order.append(u)
    if len(order) != len(calls):
        raise ModelImportError("The model's layers form a cycle, which a design cannot hold.")

    # Node names: the Keras layer name for a layer's first call; later calls get a free variant.
    taken: set[str] = set()
    names: dict[tuple[str, int], str] = {}
    for c in calls:
        if not c.shares:
            names[c.key] = _safe_name(c.layer_name, taken)
            taken.add(names[c.key])
    for c in calls:
        if c.shares:
            names[c.key] = _safe_name(f"{names[c.shares]}_call{c.index + 1}", taken)
            taken.add(names[c.key])

    level = _levels(order, deps)
    per_level: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for k in order:
        per_level[level[k]].append(k)
    pos: dict[tuple[str, int], tuple[float, float]] = {}
    for lv, keys in per_level.items():
        x0 = -(len(keys) - 1) * X_STEP / 2
        for j, k in enumerate(keys):
            pos[k] = (x0 + j * X_STEP, lv * Y_STEP)

    g = Graph()
    ids: dict[tuple[str, int], str] = {}
    for n, k in enumerate(order, start=1):
        c = by_key[k]
        nid = f"n{n}"
        ids[k] = nid
        g.add_node(c.class_name, {} if c.shares else c.config, name=names[k], node_id=nid, pos=pos[k],
                   shares=ids[c.shares] if c.shares else None)
        for slot, t in enumerate(c.inputs):
            g.connect(ids[(t[0], t[1])], nid, slot, src_port=t[2])
    out_ids = []
    for t in outputs:
        if t[2]:
            raise ModelImportError(
                f"A model output is output {t[2] + 1} of {t[0]}, which has several outputs: a design can only "
                "use a layer's first output as a model output."
            )
        if by_key[(t[0], t[1])].class_name == INPUT_CLASS:
            raise ModelImportError(f"The model returns its input {t[0]} unchanged, which a design cannot hold.")
        nid = ids[(t[0], t[1])]
        if nid in out_ids:
            raise ModelImportError(f"The model returns the output of {t[0]} twice, which a design cannot hold.")
        out_ids.append(nid)
    g.set_outputs(out_ids)
    return g


def _levels(order: list[tuple[str, int]], deps: dict[tuple[str, int], set[tuple[str, int]]]) -> dict[Any, int]:
    """Longest-path layering: each call one row below its lowest input."""
    level: dict[Any, int] = {}
    for k in order:
        level[k] = 1 + max((level[d] for d in deps[k]), default=-1)
    return level


def layout_graph(graph: Graph) -> None:
    """Give every node of ``graph`` a position by longest-path layering (inputs at the top).

    Args:
        graph: the graph to lay out; each node is moved (one ``node_moved`` event per node).
    """
    order = graph.topological_order()
    deps = {n: set(graph.predecessors(n)) for n in order}
    level = _levels(order, deps)  # type: ignore[arg-type]
    per_level: dict[int, list[str]] = defaultdict(list)
    for n in order:
        per_level[level[n]].append(n)
    for lv, nodes in per_level.items():
        x0 = -(len(nodes) - 1) * X_STEP / 2
        for j, n in enumerate(nodes):
            graph.move_node(n, (x0 + j * X_STEP, lv * Y_STEP))
