"""A check that generated Keras code holds only what the code generator writes.

The code generator (:mod:`neuralstudio.ml.codegen`) turns an untrusted design
into Python that people run and that the Python export runs to verify itself.
It writes values only as ``repr()`` and names only as validated identifiers;
this module is the second line of defence behind that rule: it parses the
generated source and refuses any construct the generator never emits (a
lambda, a comprehension, an import other than Keras's), any attribute that is
private or is not a real Keras path, and any name the module does not define
itself.  A design that slipped code past the escaping would therefore fail
here, before the code is shown, written or run (docs/ARCHITECTURE.md,
"Untrusted files").
"""

from __future__ import annotations

import ast
from typing import Any

from neuralstudio.core.errors import UserError

_NODE_TYPES = (
    ast.Module, ast.Expr, ast.Constant, ast.Import, ast.ImportFrom, ast.alias, ast.Assign, ast.Name, ast.Load,
    ast.Store, ast.Attribute, ast.Call, ast.keyword, ast.List, ast.Tuple, ast.Dict, ast.UnaryOp, ast.USub,
    ast.BinOp, ast.Div, ast.Subscript, ast.Slice, ast.Starred, ast.FunctionDef, ast.arguments, ast.Return,
    ast.If, ast.Compare, ast.Eq, ast.Raise, ast.JoinedStr, ast.FormattedValue,
)
_IMPORTS = {"keras", "os"}
_BUILTINS = {"float", "print", "SystemExit", "__name__", "__file__"}
_OS_PATHS = {("os", "path"), ("os", "path", "join"), ("os", "path", "dirname"), ("os", "path", "abspath")}
# Methods the generated script calls on its own objects (the model, the data arrays).
_METHODS = {"compile", "fit", "summary", "evaluate", "input_shape", "load_weights", "reshape", "astype"}


class UnsafeCodeError(UserError, ValueError):
    """Generated code with a construct the generator does not write: the design is refused, nothing runs."""


def check_generated_code(source: str) -> None:
    """Raise :class:`UnsafeCodeError` unless ``source`` uses only the generator's own vocabulary.

    Args:
        source: a script from :func:`neuralstudio.ml.codegen.generate_code`
            (possibly with the export's weights loader added).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise UnsafeCodeError(f"The generated code is not valid Python ({exc}): the design cannot be "
                              "written as code.") from None
    defined = set(_IMPORTS) | {"layers"} | _BUILTINS
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            defined.add(node.name)
    for node in ast.walk(tree):
        why = _refusal(node, defined)
        if why:
            line = getattr(node, "lineno", "?")
            raise UnsafeCodeError(f"The generated code was refused (line {line}: {why}): the design holds values "
                                  "that are not plain Keras settings, so no code was written or run.")


def _refusal(node: ast.AST, defined: set[str]) -> str | None:
    if not isinstance(node, _NODE_TYPES):
        return f"a {type(node).__name__}, which the generator never writes"
    if isinstance(node, ast.Import):
        bad = [a.name for a in node.names if a.name not in _IMPORTS or a.asname]
        return f"an import of {bad[0]}" if bad else None
    if isinstance(node, ast.ImportFrom):
        ok = node.module == "keras" and not node.level and all(a.name == "layers" and not a.asname for a in node.names)
        return None if ok else f"an import from {node.module}"
    if isinstance(node, ast.FunctionDef):
        a = node.args
        if node.decorator_list or a.args or a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg:
            return f"a function {node.name} with arguments or decorators"
    if isinstance(node, ast.Name) and node.id not in defined:
        return f"the name {node.id!r}, which the code does not define"
    if isinstance(node, ast.keyword) and node.arg is None:
        return "a ** argument"
    if isinstance(node, ast.Attribute):
        return _attribute_refusal(node)
    if isinstance(node, ast.Subscript):
        ok = isinstance(node.slice, (ast.Constant, ast.Slice)) and all(
            isinstance(part, ast.Constant) or part is None
            for part in ((node.slice,) if isinstance(node.slice, ast.Constant)
                         else (node.slice.lower, node.slice.upper, node.slice.step)))
        return None if ok else "an index that is not a number"
    return None


def _attribute_refusal(node: ast.Attribute) -> str | None:
    if node.attr.startswith("_"):
        return f"the private attribute {node.attr!r}"
    chain = _chain(node)
    if chain is not None and "src" in chain:
        return "Keras's internal keras.src package"
    if chain is None or chain[0] not in ("keras", "layers", "os"):
        return None if node.attr in _METHODS else f"the attribute {node.attr!r}"
    if chain[0] == "os":
        return None if tuple(chain) in _OS_PATHS else f"{'.'.join(chain)}"
    import keras

    obj: Any = keras.layers if chain[0] == "layers" else keras
    for part in chain[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return f"{'.'.join(chain)}, which is not part of Keras"
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    if not str(module).startswith("keras"):
        return f"{'.'.join(chain)}, which is not Keras's own"
    return None


def _chain(node: ast.Attribute) -> list[str] | None:
    """``keras.layers.Dense`` -> ``["keras", "layers", "Dense"]``; None when the root is not a name."""
    parts: list[str] = []
    cur: ast.AST = node
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    if not isinstance(cur, ast.Name):
        return None
    parts.append(cur.id)
    return parts[::-1]
