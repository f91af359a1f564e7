"""What is inside a model file: inputs and outputs, layers, parameters, who saved it, how it was trained.

Used by ``neuralstudio info`` and the model information view.  The file's own
metadata (Keras version, save date, backend) is read from the archive or HDF5
attributes without running anything; the model itself is opened through
:func:`neuralstudio.ml.model_files.load_keras_model`, so the same safety checks
apply (a Lambda layer is refused unless the user trusts the file).  A model
trained by NeuralStudio sits in a run folder beside its ``run.json``; its
per-epoch history and final metrics are read from there.  Both the metadata and
the ``run.json`` are untrusted like the model: they are read with bounded sizes
and depths, and a damaged ``run.json`` only means "no training history", with a
note saying why.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neuralstudio.core.formatting import format_shape, format_value, human_size
from neuralstudio.core.runs import RUN_FILE
from neuralstudio.ml.model_files import load_notes, model_file_format

_MAX_METADATA_BYTES = 1_000_000
_MAX_RUN_FILE_BYTES = 16 * 2**20  # a run keeps at most 4,000 batch points: about 1 MB
_MAX_JSON_DEPTH = 32  # a run record nests 4 deep


@dataclass
class TensorInfo:
    """One model input or output."""

    name: str
    shape: list[int | None]
    dtype: str


@dataclass
class LayerInfo:
    """One layer: its name, Keras class, output shape and parameter count."""

    name: str
    class_name: str
    output_shape: str
    params: int
    trainable: bool


@dataclass
class ModelInfo:
    """Everything :func:`model_info` found out about a model file.

    Args:
        path: the file ("" for a model that is only in memory).
        file_format: ``keras`` (zip archive) or ``h5``.
        file_size: bytes on disk (0 when in memory).
        keras_version: the Keras version that saved the file, when recorded.
        saved: when the file was saved (as Keras wrote it), when recorded.
        backend: the backend that saved an ``.h5`` file, when recorded.
        name: the model's name.
        inputs: the inputs (batch axis first, None = any size).
        outputs: the outputs.
        layers: every layer, in order.
        total_params: all weights.
        trainable_params: weights training changes.
        compiled: the optimizer and loss saved with the model, or {}.
        history: per-epoch metrics of the NeuralStudio run that produced it, or {}.
        run: a summary of that run (id, status, final metrics, data set), or {}.
        notes: what could not be read beside the model (a damaged ``run.json``), for the user.
    """

    path: str
    file_format: str
    file_size: int
    keras_version: str | None
    saved: str | None
    backend: str | None
    name: str
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    layers: list[LayerInfo] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    compiled: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[Any]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["non_trainable_params"] = self.non_trainable_params
        return d

    def format(self) -> str:
        """A plain-text description for the terminal."""
        lines = [f"Model {self.name!r}" + (f" from {self.path}" if self.path else "")]
        if self.path:
            lines.append(f"  file:       {_format_label(self.file_format)}, {human_size(self.file_size)}")
            lines.append(f"  saved by:   Keras {self.keras_version or 'unknown version'}"
                         + (f" on {self.saved}" if self.saved else "")
                         + (f" ({self.backend} backend)" if self.backend else ""))
        for label, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            shown = ", ".join(f"{t.name} {format_shape(t.shape)} {t.dtype}" for t in tensors)
            lines.append(f"  {label + ':':11} {shown}")
        lines.append(f"  parameters: {self.total_params:,} ({self.trainable_params:,} trainable, "
                     f"{self.non_trainable_params:,} non-trainable)")
        if self.compiled:
            lines.append("  compiled:   " + ", ".join(f"{k} {v}" for k, v in self.compiled.items()))
        lines.append("")
        rows = [("layer", "type", "output shape", "params")] + [
            (ly.name, ly.class_name, ly.output_shape, f"{ly.params:,}") for ly in self.layers]
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            lines.append(f"  {r[0]:{w[0]}}  {r[1]:{w[1]}}  {r[2]:{w[2]}}  {r[3]:>{w[3]}}")
        lines.append("")
        if self.history:
            epochs = max((len(v) for v in self.history.values()), default=0)
            plural = "s" if epochs != 1 else ""
            lines.append(f"Training history ({epochs} epoch{plural}, run {self.run.get('id', '?')}, "
                         f"{self.run.get('status', '?')}):")
            keys = list(self.history)
            lines.append("  " + "  ".join(f"{k:>12}" for k in ["epoch", *keys]))
            for i in range(epochs):
                vals = [self.history[k][i] if i < len(self.history[k]) else None for k in keys]
                lines.append("  " + "  ".join(f"{v:>12}" for v in [str(i + 1), *map(format_value, vals)]))
            final = self.run.get("final") or {}
            if final:
                lines.append("  final: " + ", ".join(f"{k} {format_value(v)}" for k, v in final.items()))
        elif any(RUN_FILE in note for note in self.notes):  # a run.json is there but could not be used
            lines.append("Training history: none shown.")
        else:
            lines.append(f"Training history: {NO_HISTORY}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


#: what is said of a model with no run record beside it: saved or exported by NeuralStudio or not, the
#: history lives in the run's folder, not in the model file (it once said "not saved by NeuralStudio")
NO_HISTORY = ("none beside this file. NeuralStudio keeps a run's history in the run's own folder (Train > Runs); "
              "a model saved, exported or copied elsewhere does not carry it.")


def _format_label(fmt: str) -> str:
    return {"keras": "Keras archive (.keras)", "h5": "legacy HDF5 (.h5)"}.get(fmt, fmt)


def file_metadata(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """The Keras version, save date and backend recorded in a model file (without loading the model).

    Whatever is missing or unreadable is None: the metadata only decorates the description.
    """
    p = Path(path)
    if (model_file_format(p) or ("keras" if p.suffix.lower() == ".keras" else "h5")) == "keras":  # by content
        return _zip_metadata(p)
    return _h5_metadata(p)


def _zip_metadata(p: Path) -> dict[str, str | None]:
    meta: dict[str, str | None] = {"keras_version": None, "saved": None, "backend": None}
    try:
        with zipfile.ZipFile(p) as zf, zf.open("metadata.json") as fh:
            raw = fh.read(_MAX_METADATA_BYTES + 1)
        data = _bounded_json(raw, _MAX_METADATA_BYTES) if len(raw) <= _MAX_METADATA_BYTES else None
    except Exception:  # noqa: BLE001 - no metadata.json, or one zipfile cannot unpack (it raises many kinds)
        return meta
    if isinstance(data, dict):
        meta["keras_version"] = _str_or_none(data.get("keras_version"))
        meta["saved"] = _str_or_none(data.get("date_saved"))
    return meta


def _h5_metadata(p: Path) -> dict[str, str | None]:
    import h5py

    meta: dict[str, str | None] = {"keras_version": None, "saved": None, "backend": None}
    try:
        with h5py.File(p, "r") as f:
            for key in ("keras_version", "backend"):
                val = f.attrs.get(key)
                meta[key] = _str_or_none(val.decode("utf-8", "replace") if isinstance(val, bytes) else val)
    except Exception:  # noqa: BLE001 - h5py raises many kinds of error for a malformed file
        pass
    return meta


def _bounded_json(raw: bytes, limit: int) -> Any:
    """``raw`` parsed, or None when it is not JSON, too large, too many objects or too deeply nested to be ours.

    A few megabytes of ``[{},{},...]`` become hundreds of megabytes of objects, and a deep one
    breaks every recursive function that later touches it, so both are refused before or after parsing.
    """
    if len(raw) > limit or raw.count(b"{") + raw.count(b"[") > limit // 32:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError):
        return None
    return data if _json_depth(data) <= _MAX_JSON_DEPTH else None


def _json_depth(data: Any) -> int:
    """How deeply lists and objects nest in ``data`` (0 for a plain value), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, dict):
            obj = list(obj.values())
        if isinstance(obj, list):
            deepest = max(deepest, depth)
            if depth > _MAX_JSON_DEPTH:
                break
            stack.extend((v, depth + 1) for v in obj if isinstance(v, (dict, list)))
    return deepest


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


def _tensor_infos(tensors: Any) -> list[TensorInfo]:
    out = []
    for i, t in enumerate(tensors or []):
        history = getattr(t, "_keras_history", None)  # the layer that makes it reads better than keras_tensor_14
        op = getattr(history, "operation", None)
        name = str(getattr(op, "name", "") or getattr(t, "name", "") or f"tensor_{i}")
        shape = [None if d is None else int(d) for d in t.shape]
        out.append(TensorInfo(name=name, shape=shape, dtype=str(getattr(t, "dtype", "float32"))))
    return out


def _layer_shape(layer: Any) -> str:
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return "?"
    if isinstance(out, (list, tuple)):
        return ", ".join(format_shape([None if d is None else int(d) for d in o.shape]) for o in out)
    return format_shape([None if d is None else int(d) for d in out.shape])


def _run_summary(model_path: Path) -> tuple[dict[str, list[Any]], dict[str, Any], str | None]:
    """History and summary of the NeuralStudio run whose folder holds ``model_path``, if any.

    Returns:
        The history, the summary, and a note for the user when a ``run.json`` is there but damaged.
    """
    from neuralstudio.core.runs import RUN_FILE, RunRecord, RunsError

    run_file = model_path.parent / RUN_FILE
    if not run_file.is_file():
        return {}, {}, None
    damaged = f"the {RUN_FILE} beside the model is damaged, so its training history is not shown"
    try:
        with open(run_file, "rb") as fh:
            raw = fh.read(_MAX_RUN_FILE_BYTES + 1)
    except OSError as exc:
        return {}, {}, f"the {RUN_FILE} beside the model cannot be read ({exc.strerror or exc})"
    if len(raw) > _MAX_RUN_FILE_BYTES:
        return {}, {}, f"the {RUN_FILE} beside the model is too large to be a NeuralStudio run record"
    data = _bounded_json(raw, _MAX_RUN_FILE_BYTES)
    if data is None:
        return {}, {}, damaged
    try:
        rec = RunRecord.from_dict(data, model_path.parent)
        history = rec.history()
    except RunsError as exc:
        return {}, {}, str(exc).rstrip(".")
    except (ValueError, TypeError, OverflowError):
        return {}, {}, damaged
    summary = {"id": rec.id, "created": rec.created, "status": rec.status, "name": rec.name,
               "data": rec.data.get("name"), "final": dict(rec.final)}
    return history, summary, None


def info_from_model(model: Any, path: str | os.PathLike[str] | None = None) -> ModelInfo:
    """Describe an already loaded ``model`` (and its file, when ``path`` is given)."""
    layers = []
    for layer in model.layers:
        layers.append(LayerInfo(name=layer.name, class_name=type(layer).__name__, output_shape=_layer_shape(layer),
                                params=int(layer.count_params()) if layer.built else 0,
                                trainable=bool(layer.trainable)))
    trainable = sum(int(w.numpy().size) if hasattr(w, "numpy") else int(w.size) for w in model.trainable_weights)
    compiled: dict[str, Any] = {}
    if getattr(model, "optimizer", None) is not None and getattr(model, "compiled", False):
        compiled["optimizer"] = type(model.optimizer).__name__
        loss = getattr(model, "loss", None)
        if loss is not None:
            compiled["loss"] = loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)
    info = ModelInfo(path="", file_format="", file_size=0, keras_version=None, saved=None, backend=None,
                     name=str(model.name), inputs=_tensor_infos(model.inputs), outputs=_tensor_infos(model.outputs),
                     layers=layers, total_params=int(model.count_params()), trainable_params=trainable,
                     compiled=compiled)
    if path is not None:
        p = Path(path)
        info.path = str(p)
        info.file_format = model_file_format(p) or ("keras" if p.suffix.lower() == ".keras" else "h5")
        info.file_size = p.stat().st_size
        meta = file_metadata(p)
        info.keras_version, info.saved, info.backend = meta["keras_version"], meta["saved"], meta["backend"]
        info.history, info.run, note = _run_summary(p)
        info.notes = ([note] if note else []) + load_notes(model)
    return info


def model_info(path: str | os.PathLike[str], *, trusted: bool = False) -> ModelInfo:
    """Open the model file at ``path`` safely and describe it.

    Args:
        path: a ``.keras`` or ``.h5`` model file.
        trusted: the user vouches for the file (a Lambda layer is then allowed).

    Raises:
        neuralstudio.ml.model_files.ModelFileError: the file is missing, broken, not a model, or untrusted code.
    """
    from neuralstudio.ml.model_files import load_keras_model

    model = load_keras_model(path, trusted=trusted, compile=True)
    return info_from_model(model, path)
