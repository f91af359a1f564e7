"""Open and save Keras model files (``.keras`` and ``.h5``) safely.

Model files are shared between students and downloaded from the web, so they
are untrusted input: a Keras file can carry a ``Lambda`` layer whose Python
code runs when the model is loaded.  :func:`load_keras_model` therefore
checks the file itself first (that it exists, is not empty or truncated, is
really a Keras archive or HDF5 model, and holds no ``Lambda`` layer) and then
lets Keras load it with ``safe_mode=True`` unless the user said they trust
the file.  Every failure is a :class:`ModelFileError` whose message says what
is wrong and what to do, never a Keras traceback.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from neuralstudio.core.atomic import atomic_path
from neuralstudio.core.errors import UserError

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_CONFIG_BYTES = 256 * 2**20  # a config.json this large is not a real model description
_TRUST_HINT = (
    "If you wrote this model yourself, open it again with --trust (command line) or choose "
    "\"Trust and open\" when the app asks; never do so for a file from someone you do not trust."
)
_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
)


class ModelFileError(UserError, ValueError):
    """A model file that cannot be opened; the message says why and what to do."""


class UntrustedCodeError(ModelFileError):
    """The file holds code (a ``Lambda`` layer) and was refused because it is not trusted.

    A distinct class so that the app can ask the user (with a warning) whether to open it
    with ``trusted=True`` instead of only showing the refusal.

    Args:
        message: the refusal, with how to proceed.
        layers: the names of the ``Lambda`` layers found (empty when Keras itself refused).
    """

    def __init__(self, message: str, layers: list[str] | None = None) -> None:
        super().__init__(message)
        self.layers = list(layers or [])

    def what(self) -> str:
        """The code found, in words: "a Lambda layer 'f'", "Lambda layers 'f', 'g'"."""
        if not self.layers:
            return "a Lambda layer or a Python function"
        names = ", ".join(f"'{n}'" for n in self.layers[:5]) + (" ..." if len(self.layers) > 5 else "")
        return f"a Lambda layer {names}" if len(self.layers) == 1 else f"Lambda layers {names}"


def _describe(head: bytes) -> str:
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return what
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON text file"
    return "not a Keras model"


def _lambda_layers(config: Any) -> list[str]:
    """Names of the ``Lambda`` layers anywhere in a (nested) model config."""
    found: list[str] = []
    stack = [config]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            if obj.get("class_name") == "Lambda":
                cfg = obj.get("config")
                found.append(str(cfg.get("name", "?")) if isinstance(cfg, dict) else "?")
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
    return found


def _read_keras_config(p: Path) -> Any:
    """The model config inside a ``.keras`` archive, checking that it is one."""
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise ModelFileError(
                    f"{p.name} is a zip archive but not a Keras model (it has no config.json): "
                    "choose a file saved with model.save('name.keras')."
                )
            info = zf.getinfo("config.json")
            if info.file_size > _MAX_CONFIG_BYTES:
                raise ModelFileError(f"{p.name} has a {info.file_size / 2**20:.0f} MB model description: "
                                     "that is not a real Keras model.")
            raw = zf.read("config.json")
    except zipfile.BadZipFile:
        raise ModelFileError(
            f"{p.name} is damaged or truncated (its zip archive cannot be read): save or download it again."
        ) from None
    except (OSError, EOFError) as exc:
        raise ModelFileError(f"{p.name} cannot be read ({exc}): save or download it again.") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{p.name} has a damaged model description (config.json): save it again.") from None


def _read_h5_config(p: Path) -> Any:
    """The model config inside a legacy ``.h5`` file, checking that it is one."""
    import h5py

    try:
        with h5py.File(p, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                what = "only weights" if "layer_names" in f.attrs or "model_weights" in f else "no Keras model"
                raise ModelFileError(
                    f"{p.name} is an HDF5 file with {what}: NeuralStudio needs a whole model saved with "
                    "model.save('name.keras') (or the legacy model.save('name.h5'))."
                )
    except ModelFileError:
        raise
    except OSError as exc:
        raise ModelFileError(
            f"{p.name} is damaged or truncated (the HDF5 file cannot be read: {str(exc).split(';')[0]}): "
            "save or download it again."
        ) from None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return json.loads(str(raw))
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{p.name} has a damaged model description: save it again.") from None


def check_model_file(path: str | os.PathLike[str]) -> tuple[Path, Any]:
    """Check that ``path`` is a readable Keras model file; return it and its model config.

    This reads only the file's description, never runs anything in it, so it
    is safe on any file.

    Args:
        path: the ``.keras`` or ``.h5`` file.

    Raises:
        ModelFileError: the file is missing, empty, truncated or not a Keras model.
    """
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p} does not exist: check the path.")
    if p.is_dir():
        raise ModelFileError(
            f"{p} is a folder. NeuralStudio opens Keras model files (.keras or .h5); a TensorFlow SavedModel "
            "folder cannot be opened: load it in Keras and save it with model.save('name.keras')."
        )
    suffix = p.suffix.lower()
    if suffix not in KERAS_SUFFIXES + H5_SUFFIXES:
        raise ModelFileError(f"{p.name} is not a .keras or .h5 file: save the model with model.save('name.keras').")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ModelFileError(f"{p} cannot be read: {exc.strerror}.") from None
    if size == 0:
        raise ModelFileError(f"{p.name} is empty (0 bytes): the save was interrupted; save the model again.")
    if suffix in KERAS_SUFFIXES:
        if not head.startswith(_ZIP_MAGIC):
            if head.startswith(_HDF5_MAGIC):
                raise ModelFileError(f"{p.name} is an HDF5 (.h5) file with a .keras name: rename it to .h5.")
            raise ModelFileError(f"{p.name} is {_describe(head)}, not a Keras model (.keras files are zip "
                                 "archives): choose the right file.")
        return p, _read_keras_config(p)
    if not head.startswith(_HDF5_MAGIC):
        if head.startswith(_ZIP_MAGIC):
            raise ModelFileError(f"{p.name} is a zip archive with an .h5 name: if it is a Keras model, "
                                 "rename it to .keras.")
        raise ModelFileError(f"{p.name} is {_describe(head)}, not an HDF5 Keras model: choose the right file.")
    return p, _read_h5_config(p)


def load_keras_model(path: str | os.PathLike[str], *, trusted: bool = False, compile: bool = False) -> Any:
    """Load a ``.keras`` or ``.h5`` model, refusing anything unsafe or broken.

    Args:
        path: the model file.
        trusted: the user vouches for the file: allow ``Lambda`` layers (their
            code runs on loading), i.e. Keras's ``safe_mode=False``.
        compile: also restore the optimizer and loss saved with the model.

    Returns:
        The ``keras.Model``.

    Raises:
        ModelFileError: with a message for the user, for every bad file.
    """
    p, config = check_model_file(path)
    if not trusted:
        lambdas = _lambda_layers(config)
        if lambdas:
            names = ", ".join(lambdas[:5]) + (" ..." if len(lambdas) > 5 else "")
            raise UntrustedCodeError(
                f"{p.name} contains a Lambda layer ({names}): its Python code would run on this computer "
                f"when the model is opened, so it was refused. {_TRUST_HINT}",
                lambdas,
            )
    import keras

    try:
        model = keras.saving.load_model(p, compile=compile, safe_mode=not trusted)
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - every Keras failure becomes a message
        message = _explain_load_error(p, exc)
        raise (UntrustedCodeError if message.endswith(_TRUST_HINT) else ModelFileError)(message) from None
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{p.name} holds a {type(model).__name__}, not a Keras model.")
    return model


def _explain_load_error(p: Path, exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if "safe_mode" in text or "Lambda" in text:
        return (f"{p.name} holds code (a Lambda layer or a Python function) that Keras runs only for trusted "
                f"files, so it was refused. {_TRUST_HINT}")
    if "Could not locate" in text or "Unknown layer" in text or "custom_objects" in text:
        return (f"{p.name} uses a custom layer or object that is not part of Keras ({text[:200]}): "
                "NeuralStudio opens models made of standard Keras layers only.")
    return f"{p.name} could not be opened as a Keras model: {text[:300]}. Save it again with model.save('name.keras')."


def save_keras_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Save ``model`` atomically: the file appears complete or not at all.

    The temporary file keeps the extension because Keras picks the format
    (``.keras`` zip archive or legacy ``.h5``) from it.

    Args:
        model: the ``keras.Model`` to save.
        path: the target file, ending in ``.keras`` (or ``.h5``).
    """
    p = Path(path)
    if p.suffix.lower() not in KERAS_SUFFIXES + H5_SUFFIXES:
        raise ModelFileError(f"Cannot save a model as {p.name}: use a name ending in .keras (or .h5).")
    with atomic_path(p) as tmp:
        model.save(tmp)
