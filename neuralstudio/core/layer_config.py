"""What a layer config in a design file may hold, checked without Keras.

A design file is untrusted text, and its layer configs end up in two places
that interpret them: Keras (``from_config``) and the code generator, which
writes them into a Python script.  The generator writes a config key as a
keyword argument, an Input's shape as numbers and a serialized Keras object
(an initializer, a regularizer...) as a call of a Keras class, so a config is
accepted only when every one of those can be written as a plain identifier or
a ``repr()``: keys are identifiers, shapes are positive integers or ``None``,
object references name a class and a ``keras`` module by identifiers alone.
Anything else is refused here, when the file is opened, with a message that
names the layer (see docs/ARCHITECTURE.md, "Untrusted files").
"""

from __future__ import annotations

import keyword
import re
from typing import Any

from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import shorten

MAX_TEXT = 10_000  # characters in one text value of a config: a real one is a name or a short choice
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"keras(\.[A-Za-z_][A-Za-z0-9_]*)*")
_REGISTERED = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(>[A-Za-z_][A-Za-z0-9_]*)?")
SHAPE_KEYS = ("batch_shape", "batch_input_shape", "shape")


class LayerConfigError(UserError, ValueError):
    """A layer config that cannot be used safely; the message names the layer and the value."""


def is_parameter_name(name: Any) -> bool:
    """A name the generated Python can write as a keyword argument: an ASCII identifier, not a keyword,
    not private (no Keras parameter starts with an underscore; ``__class__`` must not pass)."""
    return (isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None and not keyword.iskeyword(name)
            and not name.startswith("_"))


def check_layer_config(class_name: str, config: dict[str, Any], where: str) -> None:
    """Raise :class:`LayerConfigError` unless ``config`` holds only what a design can express.

    Args:
        class_name: the layer's class (decides which keys are shapes).
        config: the layer's ``get_config()`` dict, as read from the file.
        where: the layer's name or id, for the message.
    """
    for key, value in config.items():
        if not is_parameter_name(key):
            raise LayerConfigError(
                f"Layer {where} has a parameter named {shorten(key)}, which is not a Keras parameter name "
                "(letters, digits and underscores only): the design file was damaged or edited by hand."
            )
        if key in SHAPE_KEYS and value is not None:
            _check_shape(value, key, where, batch=key != "shape")
        else:
            _check_value(value, f"{where}.{key}", 0)


def _check_shape(value: Any, key: str, where: str, *, batch: bool) -> None:
    if not isinstance(value, (list, tuple)) or len(value) > 16:
        raise LayerConfigError(f"The {key} of layer {where} must be a list of at most 16 sizes, "
                               f"not {shorten(value)}.")
    for i, d in enumerate(value):
        if d is None:
            continue
        if isinstance(d, bool) or not isinstance(d, int) or d < 1 or d > 2**31:
            what = "the batch size" if batch and i == 0 else f"size {i + 1}"
            raise LayerConfigError(f"The {key} of layer {where} has {shorten(d)} as {what}: a size must be a "
                                   "whole number from 1 up, or null for 'any'.")


def _check_value(value: Any, where: str, depth: int) -> None:
    if depth > 48:
        raise LayerConfigError(f"The parameter {where} is nested too deeply.")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise LayerConfigError(f"The parameter {where} holds {len(value):,} characters of text: "
                                   "far more than any Keras parameter takes.")
    elif isinstance(value, (list, tuple)):  # tuples: a design made in memory (the importer) has them
        for i, v in enumerate(value):
            _check_value(v, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        if "class_name" in value:
            _check_object(value, where, depth)
        for k, v in value.items():
            if not isinstance(k, str) or len(k) > 200:
                raise LayerConfigError(f"The parameter {where} has a key {shorten(k)} that is not a short text.")
            _check_value(v, f"{where}.{k}", depth + 1)
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise LayerConfigError(f"The parameter {where} holds a {type(value).__name__}, which a design cannot hold.")


def _check_object(value: dict[str, Any], where: str, depth: int) -> None:
    """A serialized Keras object: it may only *name* a Keras class, by identifiers."""
    cn, module = value.get("class_name"), value.get("module")
    if not isinstance(cn, str) or _IDENTIFIER.fullmatch(cn) is None:
        raise LayerConfigError(f"The parameter {where} names the class {shorten(cn)}, which is not a class name.")
    if module is not None and (not isinstance(module, str) or _MODULE.fullmatch(module) is None):
        raise LayerConfigError(
            f"The parameter {where} refers to the module {shorten(module)}: a design may only use Keras's own "
            "objects (a module 'keras' or 'keras.something'); the file was damaged or made to run code."
        )
    reg = value.get("registered_name")
    if reg is not None and (not isinstance(reg, str) or _REGISTERED.fullmatch(reg) is None):
        raise LayerConfigError(f"The parameter {where} has an invalid registered_name {shorten(reg)}.")
    cfg = value.get("config")
    if isinstance(cfg, dict):
        for k in cfg:
            if not is_parameter_name(k):
                raise LayerConfigError(f"The parameter {where} ({cn}) has an argument named {shorten(k)}, "
                                       "which is not a parameter name.")
