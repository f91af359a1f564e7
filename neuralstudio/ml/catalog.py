"""The layer palette, derived from Keras's own layer classes.

Keras is the authority on what a layer is (docs/ARCHITECTURE.md, "Decisions"), so nothing here describes
a layer by hand: the parameters and their defaults come from the signature of
each class's ``__init__``, the one-line description and the parameter help from
its docstring.  What Keras cannot tell us is how to *present* a parameter: which
category a layer belongs to in the palette, which values a text field may take,
what range a number should stay in, which parameters a learner needs first, and
a starting value for the parameters Keras requires.  That is the small curated
table of UI hints below.

Everything here is pure data (no Qt); :func:`catalog` is computed once and cached.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any

CATEGORIES: tuple[str, ...] = (
    "Core", "Convolution", "Pooling", "Recurrent", "Attention", "Normalization", "Regularization",
    "Reshaping", "Merging", "Preprocessing/Augmentation", "Activation", "Other",
)

# Keras sub-package of a layer's module -> palette category.
_MODULE_CATEGORY = {
    "core": "Core", "convolutional": "Convolution", "pooling": "Pooling", "rnn": "Recurrent",
    "attention": "Attention", "normalization": "Normalization", "regularization": "Regularization",
    "reshaping": "Reshaping", "merging": "Merging", "preprocessing": "Preprocessing/Augmentation",
    "activations": "Activation",
}

# Layers that cannot be made from a plain config in the editor: abstract bases, wrappers
# whose argument is another layer, cells that only live inside an RNN, layers that run
# arbitrary code (unsafe in shared files) or need another framework's module.
_EXCLUDED = frozenset({
    "Layer", "Wrapper", "Lambda", "Bidirectional", "TimeDistributed", "RNN", "StackedRNNCells",
    "GRUCell", "LSTMCell", "SimpleRNNCell", "SpectralNormalization", "Pipeline", "FlaxLayer",
    "JaxLayer", "TorchModuleWrapper", "TFSMLayer",
})

# Parameters that are not edited in the inspector: identity, dtype policy, plumbing.
_HIDDEN = frozenset({
    "self", "name", "dtype", "trainable", "autocast", "input_shape", "quantization_config",
    "input_tensor", "batch_size", "shape", "ragged", "optional", "sparse",
})

ACTIVATIONS: tuple[str, ...] = (
    "linear", "relu", "softmax", "sigmoid", "tanh", "elu", "selu", "gelu", "silu", "swish",
    "leaky_relu", "relu6", "softplus", "softsign", "hard_sigmoid", "mish", "log_softmax", "exponential",
)
INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
    "zeros", "ones", "random_normal", "random_uniform", "truncated_normal", "orthogonal",
)
REGULARIZERS: tuple[Any, ...] = (None, "l1", "l2", "l1_l2", "orthogonal_regularizer")
CONSTRAINTS: tuple[Any, ...] = (None, "max_norm", "non_neg", "unit_norm", "min_max_norm")

# Starting values for parameters Keras requires (no default in the signature).
_REQUIRED_DEFAULTS: dict[str, dict[str, Any]] = {
    "Dense": {"units": 32},
    "EinsumDense": {"equation": "ab,bc->ac", "output_shape": 32},
    "Embedding": {"input_dim": 1000, "output_dim": 64},
    "ReversibleEmbedding": {"input_dim": 1000, "output_dim": 64},
    "Activation": {"activation": "relu"},
    "Dropout": {"rate": 0.25},
    "AlphaDropout": {"rate": 0.1},
    "GaussianDropout": {"rate": 0.1},
    "GaussianNoise": {"stddev": 0.1},
    "SpatialDropout1D": {"rate": 0.1},
    "SpatialDropout2D": {"rate": 0.1},
    "SpatialDropout3D": {"rate": 0.1},
    "Dot": {"axes": -1},
    "MultiHeadAttention": {"num_heads": 2, "key_dim": 16},
    "GroupedQueryAttention": {"head_dim": 16, "num_query_heads": 4, "num_key_value_heads": 2},
    "Permute": {"dims": [2, 1]},
    "RepeatVector": {"n": 3},
    "Reshape": {"target_shape": [28, 28, 1]},
    "Rescaling": {"scale": 1.0 / 255},
    "CenterCrop": {"height": 24, "width": 24},
    "RandomCrop": {"height": 24, "width": 24},
    "Resizing": {"height": 32, "width": 32},
    "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.1},
    "RandomZoom": {"height_factor": 0.1},
    "Hashing": {"num_bins": 16},
    "HashedCrossing": {"num_bins": 16},
    "MaxNumBoundingBoxes": {"max_number": 10},
    "InputLayer": {"batch_shape": [None, 28, 28, 1]},
    "RandomPosterization": {"factor": 4},
}
# Optional parameters a new layer starts with because Keras's default does not build
# (``num_tokens=None``) or its ``from_config`` expects the key to be present.
_STARTING: dict[str, dict[str, Any]] = {
    "CategoryEncoding": {"num_tokens": 10},
    "Discretization": {"num_bins": 4},
    "Rescaling": {"offset": 0.0},
    "TextVectorization": {"standardize": "lower_and_strip_punctuation", "split": "whitespace", "ngrams": None},
}
_INPUT_DOC = "The model's input: the shape of one example (the batch size is chosen in Train)."
_RNN_UNITS = 64
_CONV_FILTERS = 32

# Parameter ranges: (minimum, maximum, maximum is exclusive).
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "units": (1, None), "filters": (1, None), "num_heads": (1, None), "key_dim": (1, None),
    "value_dim": (1, None), "input_dim": (1, None), "output_dim": (1, None), "n": (1, None),
    "groups": (1, None), "depth_multiplier": (1, None), "num_bins": (1, None), "max_number": (1, None),
    "height": (1, None), "width": (1, None), "num_tokens": (1, None),
    "rate": (0.0, 1.0), "dropout": (0.0, 1.0), "recurrent_dropout": (0.0, 1.0),
    "momentum": (0.0, 1.0), "epsilon": (0.0, None), "stddev": (0.0, None), "negative_slope": (0.0, None),
}
_EXCLUSIVE_MAX = frozenset({"rate", "dropout", "recurrent_dropout"})
_TUPLE_PARAMS = frozenset({
    "kernel_size", "strides", "pool_size", "dilation_rate", "size", "output_size", "padding_tuple",
})
_SHAPE_PARAMS = frozenset({"batch_shape", "target_shape", "dims", "noise_shape"})
# What a learner sets first, in this order; the rest follow in signature order.
_FIRST = ("batch_shape", "units", "filters", "kernel_size", "pool_size", "rate", "activation", "strides",
          "padding", "return_sequences", "num_heads", "key_dim", "axis", "target_shape")


@dataclass(frozen=True)
class ParamSpec:
    """One constructor parameter of a layer, as the inspector shows it.

    Args:
        name: the keyword in the layer's config.
        default: Keras's default (or a starting value for required parameters).
        kind: 'int', 'float', 'bool', 'choice', 'tuple', 'str', 'activation',
            'initializer', 'regularizer', 'constraint', 'shape' or 'any'.
        choices: the allowed values for 'choice' (and suggestions for the named kinds).
        minimum: smallest allowed number, if any.
        maximum: largest allowed number, if any (exclusive for rates).
        tuple_len: how many integers a 'tuple' holds (a single int is also accepted).
        doc: the parameter's help from the Keras docstring.
    """

    name: str
    default: Any
    kind: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    tuple_len: int | None = None
    doc: str = ""
    required: bool = False


@dataclass(frozen=True)
class LayerSpec:
    """A palette entry: one Keras layer class and its editable parameters.

    Args:
        class_name: the Keras class name, e.g. ``"Conv2D"``.
        category: the palette section.
        doc: the first line of the Keras docstring.
        params: the parameters, the ones a learner needs first at the front.
        min_inputs: fewest input tensors a call takes.
        max_inputs: most input tensors (None: any number).
    """

    class_name: str
    category: str
    doc: str
    params: tuple[ParamSpec, ...]
    min_inputs: int
    max_inputs: int | None
    starting: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def default_config(self) -> dict[str, Any]:
        """A config that builds: the required parameters with starting values.

        Optional parameters are left out so Keras applies its own defaults.
        """
        config = {p.name: _copy(p.default) for p in self.params if p.required}
        config.update((k, _copy(v)) for k, v in self.starting)
        return config


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _rank(class_name: str) -> int | None:
    m = re.search(r"([123])D", class_name)
    return int(m.group(1)) if m else None


def _param_docs(doc: str) -> dict[str, str]:
    """Parse the Google-style ``Args:`` section of a Keras docstring."""
    out: dict[str, str] = {}
    m = re.search(r"^(\s*)Args:\s*$", doc, re.MULTILINE)
    if not m:
        return out
    current = None
    indent = None
    for line in doc[m.end():].splitlines():
        if not line.strip():
            continue
        ind = len(line) - len(line.lstrip())
        if indent is None:
            indent = ind
        if ind < indent:
            break
        pm = re.match(r"\s*(\w+):\s*(.*)", line)
        if ind == indent and pm:
            current = pm.group(1)
            out[current] = pm.group(2).strip()
        elif current:
            out[current] += " " + line.strip()
    return out


def _first_line(doc: str | None) -> str:
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _required_default(class_name: str, name: str) -> Any:
    curated = _REQUIRED_DEFAULTS.get(class_name, {})
    if name in curated:
        return curated[name]
    rank = _rank(class_name) or 1
    if name == "filters":
        return _CONV_FILTERS
    if name == "kernel_size":
        return [3] * rank if rank > 1 else 3
    if name in ("pool_size", "output_size"):
        return [2] * rank if rank > 1 else 2
    if name == "units":
        return _RNN_UNITS
    if name == "factor":
        return 0.1
    return None


def _make_param(class_name: str, p: inspect.Parameter, doc: str) -> ParamSpec:
    name = p.name
    required = p.default is inspect.Parameter.empty
    default = _required_default(class_name, name) if required else p.default
    if isinstance(default, tuple):
        default = list(default)
    lo, hi = _RANGES.get(name, (None, None))
    kw: dict[str, Any] = {"minimum": lo, "maximum": hi}
    if "activation" in name and name != "activity_regularizer":
        kind, kw["choices"] = "activation", ACTIVATIONS
    elif name.endswith("_initializer"):
        kind, kw["choices"] = "initializer", INITIALIZERS
    elif name.endswith("_regularizer"):
        kind, kw["choices"] = "regularizer", REGULARIZERS
    elif name.endswith("_constraint"):
        kind, kw["choices"] = "constraint", CONSTRAINTS
    elif name == "padding" and isinstance(default, str):
        kind = "choice"
        causal = class_name in ("Conv1D", "SeparableConv1D")
        kw["choices"] = ("valid", "same", "causal") if causal else ("valid", "same")
    elif name == "data_format":
        kind, kw["choices"] = "choice", (None, "channels_last", "channels_first")
    elif name == "interpolation" and isinstance(default, str):
        kind, kw["choices"] = "choice", ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")
    elif name == "merge_mode":
        kind, kw["choices"] = "choice", ("concat", "sum", "mul", "ave", None)
    elif name in _TUPLE_PARAMS:
        kind, kw["tuple_len"] = "tuple", _rank(class_name) or 1
        kw["minimum"] = 1
    elif name in _SHAPE_PARAMS:
        kind = "shape"
    elif isinstance(default, bool):
        kind = "bool"
    elif isinstance(default, int):
        kind = "int"
    elif isinstance(default, float):
        kind = "float"
    elif isinstance(default, str):
        kind = "str"
    elif name in _RANGES and name not in ("units", "filters"):
        kind = "float" if isinstance(hi, float) or isinstance(lo, float) else "int"
    elif default is None and re.match(r"(optional )?(positive )?int(eger)?\b", doc.strip(), re.IGNORECASE):
        kind = "int"  # "Optional integer. ..." (lora_rank, seed...): a whole number or nothing, not any text
        kw["minimum"] = 1 if name.endswith(("_rank", "_size", "units")) else lo
    else:
        kind = "any"
    return ParamSpec(name=name, default=default, kind=kind, doc=doc, required=required, **kw)


def _spec_for(cls: type, arity: tuple[int, int | None]) -> LayerSpec:
    class_name = cls.__name__
    # The class's own docstring: inspect.getdoc would fall back to the base Layer's.
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "") if class_name != "InputLayer" else _INPUT_DOC
    docs = _param_docs(doc)
    params: list[ParamSpec] = []
    if class_name == "InputLayer":
        params.append(ParamSpec("batch_shape", [None, 28, 28, 1], "shape", required=True,
                                doc="The shape of one example: 28, 28, 1 for an MNIST image (28, 28 without "
                                    "the channel), 784 for a flattened one. The batch size is not part of "
                                    "it: Train chooses it."))
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        sig = None
    for p in (sig.parameters.values() if sig else ()):
        if p.name in _HIDDEN or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or any(q.name == p.name for q in params):
            continue
        params.append(_make_param(class_name, p, docs.get(p.name, "")))

    def order(ps: ParamSpec) -> tuple[int, int]:
        if ps.name in _FIRST:
            return (0, _FIRST.index(ps.name))
        if ps.required:
            return (1, 0)
        if ps.kind in ("initializer", "regularizer", "constraint") or ps.name.startswith("lora_"):
            return (3, 0)
        return (2, 0)

    params.sort(key=order)  # stable: signature order within a group
    module = cls.__module__.split(".")
    sub = module[3] if len(module) > 3 and module[:3] == ["keras", "src", "layers"] else ""
    category = _MODULE_CATEGORY.get(sub, "Other")
    if class_name in ("Masking", "Identity"):
        category = "Core" if class_name == "Identity" else "Preprocessing/Augmentation"
    starting = tuple(_STARTING.get(class_name, {}).items())
    return LayerSpec(class_name, category, _first_line(doc), tuple(params), arity[0], arity[1], starting)


@functools.lru_cache(maxsize=1)
def catalog() -> dict[str, LayerSpec]:
    """Every Keras layer the editor can build from a config, by class name (sorted).

    Aliases (``MaxPool2D`` for ``MaxPooling2D``) appear once under the class's own name.
    """
    import importlib.util

    import keras

    from neuralstudio.core.arity import input_arity

    needs_scipy = {"STFTSpectrogram"} if importlib.util.find_spec("scipy") is None else set()

    specs: dict[str, LayerSpec] = {}
    for attr in sorted(dir(keras.layers)):
        cls = getattr(keras.layers, attr, None)
        if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
            continue
        # Key by the class's own name, the one Keras writes in configs: aliases
        # (MaxPool2D) are skipped, and a class exported only under another name
        # (GroupedQueryAttention as GroupQueryAttention) appears under its own.
        name = cls.__name__
        if name != attr and hasattr(keras.layers, name):
            continue
        if name in specs or name in _EXCLUDED or name in needs_scipy or name.startswith("_"):
            continue
        specs[name] = _spec_for(cls, input_arity(name))
    specs = dict(sorted(specs.items()))
    return specs


def categories() -> list[str]:
    """The palette sections that hold at least one layer, in palette order."""
    used = {s.category for s in catalog().values()}
    return [c for c in CATEGORIES if c in used]


def layer_spec(class_name: str) -> LayerSpec:
    """The spec of one layer class; raises ``KeyError`` for a layer not in the palette."""
    return catalog()[class_name]


def by_category() -> dict[str, list[LayerSpec]]:
    """Palette sections -> their layers, sorted by name."""
    out: dict[str, list[LayerSpec]] = {c: [] for c in categories()}
    for spec in catalog().values():
        out[spec.category].append(spec)
    return out


# ------------------------------------------------------------------ summaries
def _dims(value: Any, rank: int | None = None) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join("?" if d is None else str(d) for d in value)
    if isinstance(value, int) and rank and rank > 1:
        return "x".join([str(value)] * rank)
    return str(value)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _act(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("config", {}).get("name") or value.get("class_name")
    if value in (None, "linear"):
        return ""
    return str(value)


def summary_text(class_name: str, config: dict[str, Any]) -> str:
    """The layer and its key parameters in a few words, for the node's face.

    Examples: ``"Conv2D 32 3x3 relu"``, ``"Dense 10 softmax"``, ``"Dropout 0.25"``,
    ``"MaxPooling2D 2x2"``, ``"Input 28x28x1"``, ``"LSTM 128"``.
    """
    cfg = config or {}
    spec = catalog().get(class_name)

    def get(key: str) -> Any:
        if key in cfg:
            return cfg[key]
        p = spec.param(key) if spec else None
        return p.default if p else None

    rank = _rank(class_name)
    parts: list[str] = [class_name]
    if class_name == "InputLayer":
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape is None and cfg.get("shape") is not None:
            shape = [None, *cfg["shape"]]
        return "Input " + (_dims(list(shape)[1:]) if isinstance(shape, (list, tuple)) else "?")
    if "units" in cfg or (spec and spec.param("units")):
        parts.append(_num(get("units")))
    elif "filters" in cfg or (spec and spec.param("filters")):
        parts.append(_num(get("filters")))
        parts.append(_dims(get("kernel_size"), rank))
    elif spec and spec.param("kernel_size"):
        parts.append(_dims(get("kernel_size"), rank))
    elif spec and spec.param("pool_size"):
        parts.append(_dims(get("pool_size"), rank))
    elif spec and spec.param("rate"):
        parts.append(_num(get("rate")))
    elif class_name in ("Reshape",):
        parts.append(_dims(get("target_shape")))
    elif class_name == "Embedding":
        parts.append(f"{get('input_dim')} -> {get('output_dim')}")
    elif class_name == "MultiHeadAttention":
        parts.append(f"{get('num_heads')} heads")
    elif class_name == "Activation":
        parts.append(_act(get("activation")) or "linear")
        return " ".join(parts)
    elif class_name in ("UpSampling1D", "UpSampling2D", "UpSampling3D"):
        parts.append(_dims(get("size"), rank))
    elif class_name == "Rescaling":
        parts.append(_num(get("scale")))
    if class_name not in ("LSTM", "GRU", "SimpleRNN") and spec and spec.param("activation"):
        a = _act(get("activation"))
        if a:
            parts.append(a)
    return " ".join(p for p in parts if p not in ("", "None"))


# ----------------------------------------------------------------- validation
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _range_problem(p: ParamSpec, v: float) -> str | None:
    if p.minimum is not None and v < p.minimum:
        return f"{p.name} must be at least {_num(p.minimum)}."
    if p.maximum is not None:
        if p.name in _EXCLUSIVE_MAX and v >= p.maximum:
            return f"{p.name} must be below {_num(p.maximum)} (it is a fraction: 0.25 drops a quarter)."
        if p.name not in _EXCLUSIVE_MAX and v > p.maximum:
            return f"{p.name} must be at most {_num(p.maximum)}."
    return None


def _known_name(kind: str, value: str) -> bool:
    import keras

    getter = {"activation": keras.activations.get, "initializer": keras.initializers.get,
              "regularizer": keras.regularizers.get, "constraint": keras.constraints.get}[kind]
    try:
        getter(value)
    except (ValueError, TypeError, KeyError):
        return False
    return True


def validate_param(class_name: str, key: str, value: Any) -> str | None:
    """Why ``value`` is refused for parameter ``key`` of ``class_name``, or None when it is fine.

    The inspector calls this on every edit to show the reason inline, so the
    checks stay cheap and the messages say what to enter instead.
    """
    try:
        spec = layer_spec(class_name)
    except KeyError:
        return f"{class_name} is not a layer NeuralStudio can edit."
    if key == "name":
        if not isinstance(value, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.\-]*$", value):
            return "A layer name uses letters, digits and underscores, starting with a letter."
        return None
    p = spec.param(key)
    if p is None:
        return f"{class_name} has no parameter {key!r}."
    if value is None:
        if p.required:
            return f"{key} is required for {class_name}."
        return None
    kind = p.kind
    if kind == "int":
        if not _is_int(value):
            return f"{key} must be a whole number."
        return _range_problem(p, value)
    if kind == "float":
        if not _is_number(value):
            return f"{key} must be a number."
        return _range_problem(p, float(value))
    if kind == "bool":
        return None if isinstance(value, bool) else f"{key} must be true or false."
    if kind == "choice":
        if value in (p.choices or ()) or (isinstance(value, str) and value.lower() in (p.choices or ())):
            return None
        shown = ", ".join("none" if c is None else str(c) for c in p.choices or ())
        return f"{key} must be one of: {shown}."
    if kind == "tuple":
        n = p.tuple_len or 1
        items = [value] if _is_int(value) else value
        if not isinstance(items, (list, tuple)) or not all(_is_int(i) for i in items):
            return f"{key} must be a whole number or {n} whole numbers, like {_dims([3] * n).replace('x', ', ')}."
        if len(items) != n and not (len(items) == 1):
            return f"{key} needs {n} number{'s' if n > 1 else ''} for {class_name}, not {len(items)}."
        if key not in ("padding_tuple",) and any(i < 1 for i in items):
            return f"{key} must be 1 or more."
        return None
    if kind == "shape":
        if not isinstance(value, (list, tuple)) or not value:
            return f"{key} must be a list of sizes, like 28, 28, 1."
        dims = list(value)
        if key == "batch_shape":
            if len(dims) < 2:
                return "The shape of one example needs at least one size, e.g. 784 or 28, 28, 1."
            dims = dims[1:]
        if key == "target_shape":
            if not all(_is_int(d) and (d > 0 or d == -1) for d in dims) or dims.count(-1) > 1:
                return "target_shape must be positive whole numbers (one may be -1 to infer it)."
            return None
        if not all(d is None or (_is_int(d) and d > 0) for d in dims):
            return f"{key} must be positive whole numbers (None for a size that varies)."
        return None
    if kind in ("activation", "initializer", "regularizer", "constraint"):
        if isinstance(value, dict):
            return None if "class_name" in value else f"{key} is not a valid Keras {kind}."
        if not isinstance(value, str):
            return f"{key} must be the name of a Keras {kind}."
        if not _known_name(kind, value):
            names = [str(c) for c in (p.choices or ()) if c is not None]
            suggestions = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            return f"Keras has no {kind} called {value!r}: use one of {suggestions}."
        return None
    if kind == "str":
        return None if isinstance(value, str) else f"{key} must be text."
    return None
