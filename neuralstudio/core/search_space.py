"""What an experiment varies: hyperparameters written as text, and the design each choice of values makes.

An experiment (``neuralstudio sweep``, the Train window's Experiment tab) varies three kinds of things,
all named by one path each so that the command line, the window and a stored study say the same:

- a training setting: ``learning_rate``, ``batch_size``, ``epochs``, ``optimizer``, ``momentum``,
  ``loss``, ``validation_split``, ``seed``;
- a parameter of one layer, by the layer's name: ``hidden.units``, ``conv_1.kernel_size``;
  or of every hidden layer of a class at once: ``Dense[hidden].activation`` (every Dense layer that
  does not produce the network's output), ``Conv2D[*].filters`` (every Conv2D layer);
- depth: ``hidden.repeat`` is how many times the layer ``hidden`` is stacked (1 = as designed),
  the "number of layers" of the course, realised by :func:`repeat_layer` on a copy of the design.

Values are written ``log:1e-4:1`` (a log-uniform range), ``16:128`` (a whole-number range, or a
real one if either end has a point), ``16:128:16`` (with a step), ``relu,sigmoid,tanh`` (choices)
or a single value. Pure Python: the sampler itself is Optuna's (``ml/sweep.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from neuralstudio.core.design import Design, design_from_dict
from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import shorten
from neuralstudio.core.training_settings import LOSSES, OPTIMIZERS, TrainingSettings

__all__ = ["SETTING_NAMES", "ParamSpec", "SearchSpaceError", "apply_values", "check_params", "grid_size",
           "parse_param", "repeat_layer", "target_layers"]

#: the training settings an experiment can vary, and the kind of value each takes
SETTING_NAMES: dict[str, str] = {
    "learning_rate": "float", "batch_size": "int", "epochs": "int", "optimizer": "choice",
    "momentum": "float", "loss": "choice", "validation_split": "float", "seed": "int",
}
REPEAT = "repeat"
MAX_REPEAT = 12
_LAYER_SPACING = 132.0  # the vertical distance between layers in the templates' column layout
MAX_CHOICES = 64
DEFAULT_GRID_POINTS = 3
_GROUP = re.compile(r"^(?P<cls>[A-Za-z_][A-Za-z0-9_]*)\[(?P<which>hidden|\*)\]$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class SearchSpaceError(UserError, ValueError):
    """A hyperparameter to vary that is written wrongly or names nothing in the design."""


@dataclass(frozen=True)
class ParamSpec:
    """One thing an experiment varies and the values it may take.

    Args:
        name: the path (``learning_rate``, ``hidden.units``, ``Dense[hidden].activation``, ``hidden.repeat``).
        kind: ``log`` or ``float`` (a real range), ``int`` (a whole-number range), ``choice`` (listed values).
        low, high: the range's ends (ranges only).
        step: the spacing of a whole-number range (1 when not given).
        choices: the listed values (``choice`` only).
    """

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def is_setting(self) -> bool:
        return "." not in self.name

    @property
    def layer(self) -> str:
        """The layer (or ``Class[hidden]`` group) part of a layer path; empty for a training setting."""
        return self.name.rsplit(".", 1)[0] if not self.is_setting else ""

    @property
    def key(self) -> str:
        """The setting or layer-parameter name."""
        return self.name.rsplit(".", 1)[-1]

    def grid(self, points: int = DEFAULT_GRID_POINTS) -> list[Any]:
        """The values a grid search tries: the choices, or ``points`` values spread over the range."""
        if self.kind == "choice":
            return list(self.choices)
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if points <= 1 or lo == hi:
            return [self.low]
        if self.kind == "int":
            step = self.step or 1
            n_steps = int((hi - lo) // step)
            idx = sorted({round(i * n_steps / (points - 1)) for i in range(points)})
            return [int(lo) + i * step for i in idx]
        if self.kind == "log":
            return [_round_sig(lo * (hi / lo) ** (i / (points - 1))) for i in range(points)]
        return [_round_sig(lo + (hi - lo) * i / (points - 1)) for i in range(points)]

    def describe(self) -> str:
        """The values in words, for tables and the experiment's summary."""
        if self.kind == "choice":
            return ", ".join(_text(c) for c in self.choices)
        if self.kind == "log":
            return f"{_text(self.low)} to {_text(self.high)} (log scale)"
        step = f" in steps of {self.step}" if self.step and self.step != 1 else ""
        return f"{_text(self.low)} to {_text(self.high)}{step}"

    def to_text(self) -> str:
        """The spec as ``--param`` takes it (what :func:`parse_param` reads back)."""
        if self.kind == "choice":
            return f"{self.name}=" + ",".join(_text(c) for c in self.choices)
        if self.kind == "log":
            return f"{self.name}=log:{_text(self.low)}:{_text(self.high)}"
        step = f":{self.step}" if self.step and self.step != 1 else ""
        return f"{self.name}={_text(self.low)}:{_text(self.high)}{step}"


def parse_param(text: str) -> ParamSpec:
    """``name=values`` (see the module docstring) as a :class:`ParamSpec`; refused with what to write instead."""
    name, sep, values = str(text).partition("=")
    name, values = name.strip(), values.strip()
    if not sep or not name or not values:
        raise SearchSpaceError(f"{shorten(text)}: write NAME=VALUES, e.g. learning_rate=log:1e-4:1, "
                               "batch_size=16,64,256 or hidden.units=16:128.")
    if not all(_NAME.match(part) or _GROUP.match(part) for part in name.rsplit(".", 1)):
        raise SearchSpaceError(f"{shorten(name)} is not a setting or LAYER.PARAMETER name.")
    if values.startswith("log:"):
        lo, hi = _range_ends(name, values[4:], real=True)
        if lo <= 0:
            raise SearchSpaceError(f"{name}: a log range needs positive ends, not {_text(lo)}.")
        return _checked(ParamSpec(name, "log", lo, hi))
    if ":" in values and "," not in values:
        parts = values.split(":")
        if len(parts) == 3:
            lo, hi = _range_ends(name, ":".join(parts[:2]), real=False)
            step = _number(name, parts[2])
            if not isinstance(step, int) or step < 1 or not isinstance(lo, int):
                raise SearchSpaceError(f"{name}: a step must go with whole-number ends and be 1 or more.")
            return _checked(ParamSpec(name, "int", lo, hi, step=step))
        lo, hi = _range_ends(name, values, real=False)
        kind = "int" if isinstance(lo, int) and isinstance(hi, int) else "float"
        return _checked(ParamSpec(name, kind, lo if kind == "int" else float(lo),
                                  hi if kind == "int" else float(hi), step=1 if kind == "int" else None))
    choices = tuple(_value(v.strip()) for v in values.split(","))
    if len(choices) > MAX_CHOICES or any(v == "" for v in choices):
        raise SearchSpaceError(f"{name}: give 1 to {MAX_CHOICES} values separated by commas.")
    return _checked(ParamSpec(name, "choice", choices=tuple(dict.fromkeys(choices))))


def check_params(design: Design, specs: list[ParamSpec]) -> None:
    """Refuse a set of specs that the design cannot take: unknown names, wrong kinds, duplicates."""
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise SearchSpaceError(f"{spec.name} is given twice.")
        seen.add(spec.name)
        if spec.is_setting:
            continue
        layers = target_layers(design, spec.layer)
        if spec.key == REPEAT:
            if spec.kind == "choice" and not all(isinstance(c, int) for c in spec.choices):
                raise SearchSpaceError(f"{spec.name}: repetitions are whole numbers.")
            continue
        for node in layers:
            if spec.key not in node.config and spec.key not in _LAYER_PARAMS_ALWAYS:
                raise SearchSpaceError(f"{spec.name}: layer {node.name} ({node.class_name}) has no parameter "
                                       f"{spec.key!r}.")
    for values in _corners(specs):
        apply_values(design, values)  # every corner of the space must make a valid design and settings


def target_layers(design: Design, layer: str) -> list[Any]:
    """The nodes a layer path names: one layer by name, or every (hidden) layer of a class."""
    graph = design.graph
    m = _GROUP.match(layer)
    if m:
        outputs = set(graph.outputs())
        nodes = [n for n in graph if n.class_name == m["cls"] and (m["which"] == "*" or n.id not in outputs)]
        if not nodes:
            which = "hidden " if m["which"] == "hidden" else ""
            raise SearchSpaceError(f"{layer}: the design has no {which}{m['cls']} layer.")
        return nodes
    node = graph.node_by_name(layer)
    if node is None:
        names = ", ".join(n.name for n in graph if n.class_name != "InputLayer")
        raise SearchSpaceError(f"{layer}: the design has no layer of that name (its layers: {shorten(names, 200)}).")
    return [node]


def apply_values(design: Design, values: dict[str, Any]) -> Design:
    """A copy of ``design`` with ``values`` (path -> value) in its training settings and layers.

    Repetitions are applied first, so that ``hidden.units`` also sets the copies of ``hidden``.
    """
    out = design_from_dict(design.to_dict(), source="experiment")
    out.id = design.id
    repeats = {k: v for k, v in values.items() if k.endswith("." + REPEAT)}
    for path, count in repeats.items():
        repeat_layer(out, path.rsplit(".", 1)[0], int(count))
    settings: dict[str, Any] = {}
    for path, value in values.items():
        if path in repeats:
            continue
        if "." not in path:
            if path not in SETTING_NAMES:
                raise SearchSpaceError(f"{path} is not a training setting ({', '.join(SETTING_NAMES)}).")
            settings[path] = value
            continue
        layer, key = path.rsplit(".", 1)
        for node in _with_copies(out, layer):
            out.graph.set_param(node.id, key, _layer_value(key, value))
    if settings:
        try:
            out.training = TrainingSettings.from_dict({**out.training.to_dict(), **settings})
        except UserError as exc:
            raise SearchSpaceError(str(exc)) from exc
    return out


def repeat_layer(design: Design, layer: str, count: int) -> None:
    """Stack ``count`` copies of the layer named ``layer`` where it is (in place): ``hidden``, ``hidden_2``...

    The layer must sit in a chain (one input, one output connection): that is what "more layers of
    this kind" means for a network drawn as a column.
    """
    if not 1 <= count <= MAX_REPEAT:
        raise SearchSpaceError(f"{layer}.repeat = {count}: repeat a layer 1 to {MAX_REPEAT} times.")
    graph = design.graph
    node = graph.node_by_name(layer)
    if node is None:
        raise SearchSpaceError(f"{layer}: the design has no layer of that name to repeat.")
    ins, outs = graph.in_edges(node.id), graph.out_edges(node.id)
    if len(ins) != 1 or len(outs) > 1 or node.shares or node.class_name == "InputLayer":
        raise SearchSpaceError(f"{layer} cannot be repeated: only a layer in a chain (one input, at most one "
                               "output connection) can be stacked.")
    nxt = outs[0] if outs else None
    prev = node.id
    pos = graph.position(node.id) or (0.0, 0.0)
    shift = _LAYER_SPACING * (count - 1)
    for other, (x, y) in list(graph.positions.items()):  # what lies below makes room for the copies
        if y > pos[1]:
            graph.move_node(other, (x, y + shift))
    if nxt is not None:
        graph.disconnect(nxt)
    for i in range(2, count + 1):
        config = {k: v for k, v in node.config.items() if k != "name"}
        new = graph.add_node(node.class_name, name=graph.unique_name(f"{layer}_{i}"), config=config,
                             pos=(pos[0], pos[1] + _LAYER_SPACING * (i - 1)))
        graph.connect(prev, new.id)
        prev = new.id
    if nxt is not None:
        graph.connect(prev, nxt.dst, nxt.slot)


def grid_size(specs: list[ParamSpec], points: int = DEFAULT_GRID_POINTS) -> int:
    """How many trials a grid over ``specs`` has."""
    return math.prod(len(s.grid(points)) for s in specs) if specs else 0


# ----------------------------------------------------------------------------- helpers
#: parameters every Keras layer takes even when a design's config does not spell them out
_LAYER_PARAMS_ALWAYS = {"activation", "units", "filters", "kernel_size", "rate", "kernel_initializer",
                        "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                        "use_bias", "strides", "padding", "pool_size", "dilation_rate", "momentum", "epsilon",
                        "center", "scale", "recurrent_activation", "dropout", "recurrent_dropout", "num_heads",
                        "key_dim", "depth_multiplier", "negative_slope", "alpha", "axis"}


def _with_copies(design: Design, layer: str) -> list[Any]:
    """The layers a path names, with the copies :func:`repeat_layer` made of a named one."""
    nodes = target_layers(design, layer)
    if _GROUP.match(layer):
        return nodes
    copies = re.compile(re.escape(layer) + r"_\d+$")
    return nodes + [n for n in design.graph if copies.match(n.name) and n.class_name == nodes[0].class_name]


def _layer_value(key: str, value: Any) -> Any:
    """A value as the layer config takes it: a kernel size of 3 is (3, 3), an L2 factor a regularizer."""
    if key in ("kernel_size", "pool_size", "strides") and isinstance(value, int):
        return [value, value]
    if key == "kernel_regularizer" and isinstance(value, (int, float)):
        if value == 0:
            return None
        return {"class_name": "L2", "config": {"l2": float(value)}, "module": "keras.regularizers"}
    return value


def _checked(spec: ParamSpec) -> ParamSpec:
    """Ranges in order and training settings of the right kind."""
    if spec.kind != "choice" and spec.low > spec.high:  # type: ignore[operator]
        raise SearchSpaceError(f"{spec.name}: the range goes from {_text(spec.low)} down to {_text(spec.high)}; "
                               "write the smaller end first.")
    if spec.is_setting:
        kind = SETTING_NAMES.get(spec.name)
        if kind is None:
            raise SearchSpaceError(f"{spec.name} is not a training setting: use one of {', '.join(SETTING_NAMES)}, "
                                   "or LAYER.PARAMETER for a layer.")
        if kind == "int" and spec.kind in ("float", "log") and spec.name != "batch_size":
            raise SearchSpaceError(f"{spec.name} takes whole numbers: write e.g. {spec.name}=2:10.")
        if spec.name == "optimizer" and not set(spec.choices) <= set(OPTIMIZERS):
            raise SearchSpaceError(f"optimizer: choose among {', '.join(OPTIMIZERS)}.")
        if spec.name == "loss" and not set(spec.choices) <= set(LOSSES):
            raise SearchSpaceError(f"loss: choose among {', '.join(LOSSES)}.")
        if spec.name == "batch_size" and spec.kind == "log":  # a log range of batch sizes: whole numbers
            return ParamSpec(spec.name, "choice", choices=tuple(sorted({int(round(v)) for v in spec.grid(5)})))
    return spec


def _corners(specs: list[ParamSpec]) -> list[dict[str, Any]]:
    """The lowest and the highest value of every spec (two designs that check the whole space cheaply)."""
    lows = {s.name: (s.choices[0] if s.kind == "choice" else s.low) for s in specs}
    highs = {s.name: (s.choices[-1] if s.kind == "choice" else s.high) for s in specs}
    return [lows, highs]


def _range_ends(name: str, text: str, real: bool) -> tuple[Any, Any]:
    parts = text.split(":")
    if len(parts) != 2:
        raise SearchSpaceError(f"{name}: write a range as LOW:HIGH (or log:LOW:HIGH), not {shorten(text)}.")
    lo, hi = (_number(name, p) for p in parts)
    if real:
        return float(lo), float(hi)
    return lo, hi


def _number(name: str, text: str) -> int | float:
    value = _value(text.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SearchSpaceError(f"{name}: {shorten(text)} is not a number.")
    return value


def _value(text: str) -> Any:
    """A listed value: a whole number, a real number, none/true/false, or a word (an activation...)."""
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _round_sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def _text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "none" if v is None else str(v)
