"""Open the HDF5 (``.h5``) model files of Keras 2 with Keras 3, without changing them.

Most model files people have were written by Keras 2: standalone Keras 2.2/2.3 (the TensorFlow 1.x
era) and tf.keras 2.x.  Their weights load in Keras 3 as they are, but two things in their description
do not (docs/ARCHITECTURE.md, "Traps"):

* **The architecture.**  Keras <= 2.3 saved a ``Sequential`` model as its layers alone, the first one
  carrying ``batch_input_shape`` (the input shape *with* the batch axis) and no ``InputLayer``.  Keras 3
  reads that value as ``input_shape`` and adds a batch axis again, so a convnet fails with "Kernel shape
  must have the same length as input, but received kernel of shape (3, 3, 1, 32) and input of shape
  (None, None, 28, 28, 1)" and a Dense model silently gets an extra axis.  Users hit this with every
  old tutorial file (e.g. https://github.com/murtazahassan/OpenCV-Sudoku-Solver/issues/3, the same error
  on a 28x28 digit model); upstream, the Keras 2 -> Keras 3 ``.h5`` loading bugs are discussed in
  https://github.com/keras-team/keras/pull/19669, and Keras's own translation
  (``keras/src/legacy/saving/saving_utils.py``, ``model_from_config``) only handles ``batch_input_shape``
  on the outermost config.  Keras <= 2.2.2 even stored the layer list without a name.  The fix here
  inserts the ``InputLayer`` Keras 2 implied, built from ``batch_input_shape``.
* **The training settings.**  Compile configs carry arguments Keras 3 removed: ``reduction="auto"`` in a
  loss, ``lr`` and ``decay`` in an optimizer.  They are repaired (``"auto"`` meant
  ``"sum_over_batch_size"``, ``lr`` is ``learning_rate``); a learning-rate decay Keras 3 no longer has is
  left out, with a note for the user.

The translated description goes into a temporary copy (the file's attributes and its weights, copied by
HDF5 itself) that Keras's own loader then opens, with the same ``safe_mode``; the user's file is only
ever read.  A file that needs no translation is opened in place.  Nothing here decides whether a file is
safe: :func:`neuralstudio.ml.model_files.check_model_file` and its ``Lambda`` refusal run first.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuralstudio.core.json_walk import json_objects

H5_SUFFIXES = (".h5", ".hdf5")
_INPUT_LAYER = "InputLayer"
# Keras 2 optimizer arguments Keras 3 dropped (it refuses unknown arguments), and what they did.
_DROPPED_OPTIMIZER_ARGS = {
    "decay": "learning-rate decay",
    "schedule_decay": "learning-rate decay",  # Nadam in Keras 2
    "is_legacy_optimizer": None,  # tf.keras >= 2.11 bookkeeping, no effect on training
}


class TemporaryCopyError(OSError):
    """The temporary copy (or link) a file is opened through could not be written (full disk, no temporary
    folder); ``str()`` is the system's reason, in a few words."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(exc.errno, exc.strerror or " ".join(str(exc).split())[:200] or type(exc).__name__)

    def __str__(self) -> str:
        return str(self.strerror)




def _is_shape(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in value)


def translate_model_config(config: Any) -> tuple[Any, list[str]]:
    """A copy of a Keras 2 ``model_config`` that Keras 3 rebuilds into the same model.

    Every ``Sequential`` in the config, nested ones included, is fixed the same way: a bare layer list
    (Keras <= 2.2.2) gets its ``name``/``layers`` dict, and a first layer with ``batch_input_shape`` and no
    ``InputLayer`` before it gets the ``InputLayer`` Keras 2 created for it (named as Keras 2 named it,
    ``<layer>_input``).  A config Keras 3 already reads comes back equal to the input.

    Args:
        config: the parsed ``model_config`` attribute of an ``.h5`` file.

    Returns:
        The translated config (a new object; ``config`` is not changed) and what was changed, in words
        (empty when nothing needed translating).
    """
    new = copy.deepcopy(config)
    changes: list[str] = []
    sequentials = [obj for obj in json_objects(new) if obj.get("class_name") == "Sequential"]
    for obj in sequentials:
        cfg = obj.get("config")
        if isinstance(cfg, list):
            obj["config"] = cfg = {"name": "sequential", "layers": cfg}
            changes.append("a Sequential model stored as a bare layer list (Keras <= 2.2.2)")
        if not isinstance(cfg, dict):
            continue
        layers = cfg.get("layers")
        if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
            continue
        first = layers[0]
        first_cfg = first.get("config")
        if first.get("class_name") == _INPUT_LAYER or not isinstance(first_cfg, dict):
            continue
        shape = first_cfg.get("batch_input_shape")
        if not _is_shape(shape):
            continue
        del first_cfg["batch_input_shape"]
        dtype = first_cfg.get("dtype")
        name = first_cfg.get("name") if isinstance(first_cfg.get("name"), str) else "layer"
        taken = {str((layer.get("config") or {}).get("name")) for layer in layers if isinstance(layer, dict)
                 and isinstance(layer.get("config"), dict)}
        input_name = f"{name}_input"
        while input_name in taken:
            input_name += "_"
        layers.insert(0, {"class_name": _INPUT_LAYER, "config": {
            "batch_input_shape": list(shape), "dtype": dtype if isinstance(dtype, str) else "float32",
            "sparse": False, "name": input_name}})
        changes.append(f"the input shape {shape} on the first layer '{name}' of a Sequential model (Keras <= 2.3)")
    return new, changes


def repair_training_config(config: Any) -> tuple[Any, bool, list[str]]:
    """A copy of a Keras 2 ``training_config`` without the arguments Keras 3 refuses.

    Args:
        config: the parsed ``training_config`` attribute.

    Returns:
        The repaired config (a new object), whether anything changed, and notes for the user about what
        could not be kept (a learning-rate decay).
    """
    new = copy.deepcopy(config)
    changed = False
    notes: list[str] = []
    optimizer = new.get("optimizer_config") if isinstance(new, dict) else None
    opt_cfg = optimizer.get("config") if isinstance(optimizer, dict) else None
    if isinstance(opt_cfg, dict):
        if "lr" in opt_cfg:
            lr = opt_cfg.pop("lr")
            opt_cfg.setdefault("learning_rate", lr)
            changed = True
        for arg, what in _DROPPED_OPTIMIZER_ARGS.items():
            if arg not in opt_cfg:
                continue
            value = opt_cfg.pop(arg)
            changed = True
            if what and isinstance(value, (int, float)) and value:
                notes.append(f"the optimizer's {what} ({arg}={value:g}) does not exist in Keras 3 and was left out")
    for obj in json_objects(new):  # losses and metrics, nested for models with several outputs
        cfg = obj.get("config")
        if "class_name" in obj and isinstance(cfg, dict) and cfg.get("reduction") == "auto":
            cfg["reduction"] = "sum_over_batch_size"  # what "auto" resolved to outside tf.distribute
            changed = True
    loss = new.get("loss") if isinstance(new, dict) else None
    for obj in json_objects(loss):  # tf.keras wrote its loss classes' wrapped function; Keras 3's take none
        cfg = obj.get("config")
        if obj.get("class_name") not in (None, "LossFunctionWrapper") and isinstance(cfg, dict) and "fn" in cfg:
            del cfg["fn"]
            changed = True
    return new, changed, notes


def saved_by(path: str | os.PathLike[str]) -> str | None:
    """The Keras version an HDF5 model file records (``"2.2.4"``), or None; never raises."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("keras_version")
    except Exception:  # noqa: BLE001 - only decorates a message
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value[:40] if isinstance(value, str) and value else None


def _json_attr(f: Any, name: str) -> Any:
    raw = f.attrs.get(name)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return json.loads(raw) if isinstance(raw, str) else None


@contextlib.contextmanager
def _translated_copy(path: Path, model_config: Any, training_config: Any) -> Iterator[Path]:
    """A temporary ``model.h5``: ``path``'s attributes and weights with the given descriptions.

    ``training_config`` None leaves the training settings (and the optimizer's state) out.
    """
    import h5py

    try:
        folder = tempfile.mkdtemp(prefix="neuralstudio-legacy-")
    except OSError as exc:
        raise TemporaryCopyError(exc) from None
    try:
        target = Path(folder) / "model.h5"
        try:
            with h5py.File(path, "r") as src, h5py.File(target, "w") as dst:
                for key, value in src.attrs.items():
                    if key not in ("model_config", "training_config"):
                        dst.attrs[key] = value
                dst.attrs["model_config"] = json.dumps(model_config).encode("utf-8")
                groups = ["model_weights"]
                if training_config is not None:
                    dst.attrs["training_config"] = json.dumps(training_config).encode("utf-8")
                    groups.append("optimizer_weights")
                for name in groups:
                    if name in src:
                        src.copy(src[name], dst, name=name)
        except OSError as exc:  # the source was just checked: this is the copy that failed (a full disk)
            raise TemporaryCopyError(exc) from None
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def named_as(path: Path, suffix: str) -> Iterator[Path]:
    """``path`` under a name ending in ``suffix``, for a loader that picks the format from the name.

    Keras chooses its zip or HDF5 reader by the file's extension; a file whose extension lies about its
    content is given the right one through a temporary symbolic link (a temporary copy where links
    cannot be made, as on Windows without developer mode).  The user's file is not renamed or changed.
    """
    if path.suffix.lower() == suffix:
        yield path
        return
    try:
        folder = tempfile.mkdtemp(prefix="neuralstudio-open-")
    except OSError as exc:
        raise TemporaryCopyError(exc) from None
    try:
        link = Path(folder) / f"model{suffix}"
        try:
            os.symlink(path.resolve(), link)
        except (OSError, NotImplementedError):
            try:
                shutil.copyfile(path, link)
            except OSError as exc:
                raise TemporaryCopyError(exc) from None
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_h5_model(path: Path, model_config: Any, *, compile: bool, safe_mode: bool) -> tuple[Any, list[str]]:
    """Load an HDF5 model file with Keras 3, translating a Keras 2 description first when needed.

    Args:
        path: the HDF5 file (already checked by ``check_model_file``), whatever its extension.
        model_config: its parsed ``model_config``.
        compile: restore the training settings too; when Keras 3 cannot rebuild them even repaired, the
            model is loaded without them and a note says so.
        safe_mode: Keras's ``safe_mode`` (False only for a file the user trusts).

    Returns:
        The model and notes for the user (what could not be restored); empty when everything was.

    Raises:
        TemporaryCopyError: the translated copy could not be written.
        Exception: whatever Keras raises for a model it cannot rebuild (the caller explains it).
    """
    import h5py
    import keras

    translated, changes = translate_model_config(model_config)
    training, notes = None, []
    repaired = False
    if compile:
        with h5py.File(path, "r") as f:
            training = _json_attr(f, "training_config")
        if isinstance(training, dict):
            training, repaired, notes = repair_training_config(training)
    if not changes and not repaired and path.suffix.lower() in H5_SUFFIXES:
        source: contextlib.AbstractContextManager[Path] = contextlib.nullcontext(path)
    elif not changes and not repaired:
        source = named_as(path, ".h5")
    else:
        source = _translated_copy(path, translated, training if compile else None)
    with source as h5:
        if not compile:
            return keras.saving.load_model(h5, compile=False, safe_mode=safe_mode), []
        try:
            return keras.saving.load_model(h5, compile=True, safe_mode=safe_mode), notes
        except Exception as exc:  # noqa: BLE001 - the training settings may fail in many ways
            model = keras.saving.load_model(h5, compile=False, safe_mode=safe_mode)  # raises if the model fails
            return model, [not_restored(path, exc)]


def keras_reason(exc: BaseException, limit: int = 300) -> str:
    """What went wrong in a Keras exception, in a few words: without the config Keras quotes before it.

    Keras wraps a layer's error as "Error when deserializing class 'Dense' using config={...the whole
    config...}. Exception encountered: <the reason>"; the reason and the class are what a user can act on.
    """
    text = " ".join(str(exc).split())
    if "Exception encountered:" in text:
        reason = text.rsplit("Exception encountered:", 1)[1].strip()
        match = re.search(r"deserializing class '([\w.]+)'|<class '([\w.]+)'> could not be deserialized", text)
        name = (match.group(1) or match.group(2)).rsplit(".", 1)[-1] if match else ""
        text = f"{name}: {reason}" if name and name not in reason else reason
    return text[:limit].rstrip(".")


def not_restored(path: Path, exc: BaseException) -> str:
    """The note for a model whose training settings Keras 3 could not rebuild."""
    text = keras_reason(exc).split(". ")[0][:160] or type(exc).__name__
    return (f"the training settings saved in {path.name} (optimizer, loss, metrics) could not be restored in "
            f"Keras 3 ({text}); the architecture and weights were loaded")
