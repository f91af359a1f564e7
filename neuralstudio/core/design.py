"""The ``.nsd`` design file: a graph, its hyperparameters, its data source and its layout.

Design files are untrusted input (they are shared between students), so the
loader validates everything and raises one error type, :class:`DesignError`,
whose message a person can act on.  Saving is atomic.  ``version`` lets newer
releases read older files: add a migration to ``_MIGRATIONS`` when it changes.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralstudio.core.atomic import atomic_write_text
from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import shorten
from neuralstudio.core.graph import Graph, GraphError
from neuralstudio.core.layer_config import LayerConfigError, check_layer_config
from neuralstudio.core.training_settings import SettingsError, TrainingSettings

FORMAT = "neuralstudio-design"
VERSION = 1
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 20_000
MAX_NAME = 200  # characters in a design's name
MAX_DESCRIPTION = 100_000
DEFAULT_NAME = "untitled"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_design_id() -> str:
    """A fresh identity for a design that starts now (File > New, a template's copy)."""
    return uuid.uuid4().hex


class DesignError(UserError, ValueError):
    """A design file that cannot be opened; the message says what is wrong and where."""


@dataclass
class Design:
    """Everything a design file holds."""

    graph: Graph = field(default_factory=Graph)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    data: dict[str, Any] = field(default_factory=lambda: {"source": "mnist-sample"})
    name: str = DEFAULT_NAME
    description: str = ""
    #: who the design is, whatever its name: runs belong to the design with their id (two copies of one
    #: template, both called "MNIST convnet", do not share runs). Empty: not known (built in code).
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "description": self.description,
            "graph": self.graph.to_dict(),
            "training": self.training.to_dict(),
            "data": dict(self.data),
            "layout": {k: [round(x, 2), round(y, 2)] for k, (x, y) in self.graph.positions.items()},
        }
        if self.id:
            out["id"] = self.id
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, self.dumps())


def _migrate_v0(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (pre-release) kept positions inside nodes; lift them into ``layout``.

    Anything malformed is left where it is for the version-1 checks to refuse with their message.
    """
    layout = data.setdefault("layout", {})
    graph = data.get("graph")
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if isinstance(layout, dict) and isinstance(nodes, list):
        for nd in nodes:
            if isinstance(nd, dict) and "pos" in nd and isinstance(nd.get("id"), str):
                layout[nd["id"]] = nd.pop("pos")
    data["version"] = 1
    return data


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _migrate_v0}


def loads_design(text: str | bytes, source: str = "design") -> Design:
    """Parse design-file text; raise :class:`DesignError` on anything wrong."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DesignError(f"{source} is not a text file (not UTF-8): is it really a .nsd design?") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise DesignError(f"{source} is nested too deeply to be a design file.") from None
    except json.JSONDecodeError as exc:
        raise DesignError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    except ValueError as exc:  # huge integers, NaN
        raise DesignError(f"{source} holds an unusable value: {exc}.") from None
    return design_from_dict(data, source)


def load_design(path: str | os.PathLike[str]) -> Design:
    """Read and validate a design file.

    Only a regular file is read, and never more than :data:`MAX_FILE_BYTES`: a
    "design" that is a link to ``/dev/zero`` or a pipe would otherwise be read forever.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DesignError(f"{p} does not exist.") from None
    except OSError as exc:
        raise DesignError(f"{p} cannot be read: {exc.strerror}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise DesignError(f"{p} is a folder, not a design file.")
    if not stat.S_ISREG(st.st_mode):
        raise DesignError(f"{p} is not a regular file (a device, pipe or socket): choose a .nsd design file.")
    if st.st_size > MAX_FILE_BYTES:
        raise DesignError(f"{p} is {st.st_size / 2**20:.0f} MB: far too large for a design file.")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DesignError(f"{p} cannot be read: {exc.strerror}.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DesignError(f"{p} is larger than {MAX_FILE_BYTES // 2**20} MB: far too large for a design file.")
    design = loads_design(raw, p.name)
    if not design.id:  # a file from before designs had ids: the same file is the same design at every open
        design.id = uuid.uuid5(uuid.NAMESPACE_URL, p.resolve().as_uri()).hex
    return design


def design_from_dict(data: Any, source: str = "design") -> Design:
    if not isinstance(data, dict):
        raise DesignError(f"{source} must hold a JSON object, not {type(data).__name__}.")
    if _depth(data) > MAX_DEPTH:
        raise DesignError(f"{source} is nested too deeply to be a design file.")
    _check_text(data, source)
    if data.get("format") != FORMAT:
        raise DesignError(f"{source} is not a NeuralStudio design (its 'format' is not {FORMAT!r}).")
    version = data.get("version")
    if type(version) is not int:
        raise DesignError(f"{source} has no valid 'version' number.")
    if version > VERSION:
        raise DesignError(
            f"{source} was written by a newer NeuralStudio (design version {version}; this one reads "
            f"up to {VERSION}): update NeuralStudio to open it."
        )
    if version < 0:
        raise DesignError(f"{source} has an invalid version {version}.")
    while version < VERSION:
        data = _MIGRATIONS[version](data)
        version = data["version"]
    graph_data = data.get("graph")
    if not isinstance(graph_data, dict):
        raise DesignError(f"{source} has no 'graph' object.")
    if isinstance(graph_data.get("nodes"), list) and len(graph_data["nodes"]) > MAX_NODES:
        raise DesignError(f"{source} has more than {MAX_NODES} layers.")
    _check_layer_configs(graph_data, source)
    try:
        graph = Graph.from_dict(graph_data)
    except GraphError as exc:
        raise DesignError(f"{source}: {exc}") from None
    layout = data.get("layout", {})
    if not isinstance(layout, dict):
        raise DesignError(f"{source}: 'layout' must be an object.")
    for nid, pos in layout.items():
        if nid not in graph.nodes:
            continue  # stale positions are harmless
        if (not isinstance(pos, list) or len(pos) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           and abs(v) < 1e9 for v in pos)):
            raise DesignError(f"{source}: the position of layer {nid!r} must be two numbers.")
        graph.move_node(nid, (pos[0], pos[1]))
    try:
        training = TrainingSettings.from_dict(data.get("training", {}))
    except (SettingsError, TypeError) as exc:
        raise DesignError(f"{source}: {exc}") from None
    data_cfg = data.get("data", {"source": "mnist-sample"})
    if not isinstance(data_cfg, dict) or not isinstance(data_cfg.get("source", ""), str):
        raise DesignError(f"{source}: 'data' must be an object with a 'source' text.")
    name = data.get("name", DEFAULT_NAME)
    desc = data.get("description", "")
    design_id = data.get("id", "")
    if not isinstance(design_id, str) or (design_id and not _ID.fullmatch(design_id)):
        raise DesignError(f"{source}: the design's 'id' must be up to 64 letters, digits, '-' or '_'.")
    if not isinstance(name, str) or not isinstance(desc, str):
        raise DesignError(f"{source}: 'name' and 'description' must be text.")
    if len(name) > MAX_NAME or len(desc) > MAX_DESCRIPTION:
        raise DesignError(f"{source}: the design's name (at most {MAX_NAME} characters) or description "
                          f"(at most {MAX_DESCRIPTION:,}) is too long.")
    return Design(graph=graph, training=training, data=dict(data_cfg), name=name, description=desc, id=design_id)


def _check_layer_configs(graph_data: dict[str, Any], source: str) -> None:
    """Every layer config holds only what the code generator can write as identifiers and ``repr()``."""
    nodes = graph_data.get("nodes")
    if not isinstance(nodes, list):
        return  # Graph.from_dict refuses it with its own message
    for i, nd in enumerate(nodes):
        if not isinstance(nd, dict) or not isinstance(nd.get("config", {}), dict):
            continue
        label = nd.get("name") if isinstance(nd.get("name"), str) else nd.get("id", f"#{i + 1}")
        try:
            check_layer_config(str(nd.get("class_name")), nd.get("config", {}), shorten(label, 80))
        except LayerConfigError as exc:
            raise DesignError(f"{source}: {exc}") from None


def _check_text(obj: Any, source: str) -> None:
    """Refuse text that cannot be written back: lone UTF-16 surrogates (JSON's ``\\ud800``) are not UTF-8."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            if _SURROGATE.search(o):
                raise DesignError(f"{source} holds text with an invalid character (a lone UTF-16 surrogate, "
                                  f"in {shorten(o, 40)}): the file is damaged.")
        elif isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a design can hold")


def _depth(obj: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(obj, dict):
        return max((_depth(v, level + 1) for v in obj.values()), default=level + 1)
    if isinstance(obj, list):
        return max((_depth(v, level + 1) for v in obj), default=level + 1)
    return level
