"""The class names of the data a model was trained on, kept with the model in memory and in its file.

A classifier only predicts an index; what index 3 means ("cat", "Dress", the
digit 4) is known from the training data alone.  The trainer records it here
(:func:`remember_classes`) for the model it returns, and writes it into every
model file it saves (:func:`write_model`, :func:`save_model`), so that Predict,
``neuralstudio predict`` and ``neuralstudio evaluate`` can name what the model
says, also after "Save model" from the Train window or when the file is opened
on another computer.

Where the names live in a file: in a ``.keras`` archive, under the key
``"neuralstudio"`` of its ``metadata.json`` member (Keras writes that member
and never reads it when loading; an extra member would make Keras extract the
whole archive to a temporary folder at every load).  In a legacy ``.h5`` file,
in the root attribute ``neuralstudio``.  Both hold the same JSON object::

    {"class_names": ["cat", "dog"], "data": "pets"}

Files are untrusted (docs/ARCHITECTURE.md, "Untrusted files"): reading runs no
code and nothing Keras does; it parses plain JSON of at most
:data:`MAX_METADATA_BYTES` after checking the archive's directory, and accepts
only what :func:`~neuralstudio.core.class_names.validate_class_names` accepts.
A file with damaged or oversized names reads as a file without names (its
outputs are then numbered), never as an error: the model itself is fine.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuralstudio.core.atomic import atomic_path
from neuralstudio.core.class_names import (
    ClassNamesError,
    clean_class_names,
    data_label,
    validate_class_names,
    validate_data_label,
)
from neuralstudio.core.errors import UserError

KEY = "neuralstudio"
METADATA_MEMBER = "metadata.json"
H5_ATTRIBUTE = "neuralstudio"
#: 10,000 names of 200 characters, each up to 4 bytes of UTF-8, with room for Keras's own few keys.
MAX_METADATA_BYTES = 8 * 2**20 + 64 * 2**10
_MAX_CONTAINERS = 100_000  # JSON objects and lists; the real metadata has three
_MAX_ENTRIES = 1_000  # as ml/model_files.py: a Keras archive has 3 members plus assets
_MAX_DIRECTORY_BYTES = 1_000 * 1_024
_END_RECORD = b"PK\x05\x06"
_END_RECORD_SIZE = 22
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass(frozen=True)
class ModelClasses:
    """What a model's outputs mean: one name per class, and the data set they came from.

    Args:
        names: the class names, indexed by label.
        data: how the training data is named ("Fashion-MNIST", a folder's name), or None when unknown.
    """

    names: tuple[str, ...]
    data: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class_names": list(self.names)}
        if self.data:
            out["data"] = self.data
        return out

    @classmethod
    def from_json(cls, value: Any) -> ModelClasses:
        """Validate a parsed ``{"class_names": [...], "data": "..."}``; :class:`ClassNamesError` if it is not one."""
        if not isinstance(value, dict):
            raise ClassNamesError("the stored class names are not a JSON object")
        names = validate_class_names(value.get("class_names"))
        data = value.get("data")
        return cls(tuple(names), validate_data_label(data) if data is not None else None)


def classes_of_dataset(dataset: Any) -> ModelClasses | None:
    """The :class:`ModelClasses` of a loaded ``Dataset`` (None when it has more names than can be stored)."""
    names = clean_class_names(getattr(dataset, "class_names", ()) or ())
    if not names:
        return None
    return ModelClasses(tuple(names), data_label(getattr(dataset, "name", None)))


# ---------------------------------------------------------------- models in memory
_REMEMBERED: weakref.WeakKeyDictionary[Any, ModelClasses] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def remember_classes(model: Any, classes: ModelClasses | None) -> None:
    """Keep ``classes`` with ``model`` for as long as the model lives (None forgets them).

    A table beside the model rather than an attribute on it: Keras tracks the attributes of a model
    and would try to save a list set on it.  The Train window's "Save model" and Predict's copy of a
    model just trained find the names here.
    """
    with _LOCK:
        if classes is None:
            _REMEMBERED.pop(model, None)
        else:
            _REMEMBERED[model] = classes


def remembered_classes(model: Any) -> ModelClasses | None:
    """What :func:`remember_classes` recorded for ``model``, or None."""
    with _LOCK:
        try:
            return _REMEMBERED.get(model)
        except TypeError:  # an object that cannot be weakly referenced has nothing recorded
            return None


# ---------------------------------------------------------------- writing
def save_model(model: Any, path: str | os.PathLike[str], classes: ModelClasses | None = None) -> None:
    """Save ``model`` atomically with its class names (``classes``, else those remembered for it).

    Args:
        model: the ``keras.Model``.
        path: the target, ending in ``.keras`` (or ``.h5``): the file appears complete or not at all.
        classes: the names to store; by default :func:`remembered_classes`; none stored when there are none.
    """
    p = Path(path)
    if p.suffix.lower() not in _MODEL_SUFFIXES:
        raise UserError(f"Cannot save a model as {p.name}: use a name ending in .keras (or .h5).")
    with atomic_path(p) as tmp:
        write_model(model, tmp, classes)


def write_model(model: Any, path: Path, classes: ModelClasses | None = None) -> None:
    """``model.save(path)`` and the class names into the new file; for a path not yet in place (atomic_path's).

    ``classes`` defaults to the names remembered for ``model``.
    """
    from neuralstudio.ml.backends import keep_tensorflow_out_of_saving

    keep_tensorflow_out_of_saving()  # a JAX or PyTorch run's save would import TensorFlow (6-8 s) for nothing
    model.save(path)
    classes = classes if classes is not None else remembered_classes(model)
    if classes is not None:
        write_classes(path, classes)


def write_classes(path: Path, classes: ModelClasses) -> None:
    """Store ``classes`` in the model file ``path`` that Keras just wrote (replacing any stored before)."""
    payload = classes.to_json()
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "a") as f:
            f.attrs[H5_ATTRIBUTE] = json.dumps(payload, ensure_ascii=False)
        return
    # A zip member cannot be rewritten in place: copy the archive with a new metadata.json (Keras stores its
    # members uncompressed, so this is one sequential copy of the weights). Both archives are closed before the
    # copy replaces the original.
    with atomic_path(path) as out:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
            found = False
            for info in src.infolist():
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.compress_type, copy.external_attr = info.compress_type, info.external_attr
                if info.filename == METADATA_MEMBER:
                    found = True
                    meta = _keras_metadata(src.read(info))
                    meta[KEY] = payload
                    dst.writestr(copy, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
                    continue
                with src.open(info) as r, dst.open(copy, "w", force_zip64=info.file_size > 2**31) as w:
                    shutil.copyfileobj(r, w, 2**20)
            if not found:
                dst.writestr(METADATA_MEMBER, json.dumps({KEY: payload}, ensure_ascii=False).encode("utf-8"))


def _keras_metadata(raw: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


# ---------------------------------------------------------------- reading
def read_classes(path: str | os.PathLike[str]) -> ModelClasses | None:
    """The class names stored in the model file ``path``, or None when it has none (or only damaged ones).

    Safe on any file: nothing is run or inflated beyond :data:`MAX_METADATA_BYTES`, and an archive whose
    directory is larger than a real model's is not opened.  Meant for files that ``load_keras_model``
    has just opened, so an unreadable file is simply None.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
        if head.startswith(b"PK\x03\x04"):
            raw = _read_keras_member(p)
            meta = _parse(raw) if raw is not None else None  # Keras's metadata, ours under KEY
            payload = meta.get(KEY) if isinstance(meta, dict) else None
        elif head.startswith(b"\x89HDF\r\n\x1a\n"):
            raw = _read_h5_attribute(p)
            payload = _parse(raw) if raw is not None else None  # the attribute is ours alone
        else:
            return None
        return ModelClasses.from_json(payload) if payload is not None else None
    except (ClassNamesError, OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, RuntimeError,
            NotImplementedError, struct.error):
        return None


def _parse(raw: bytes) -> Any:
    if len(raw) > MAX_METADATA_BYTES or raw.count(b"{") + raw.count(b"[") > _MAX_CONTAINERS:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def _read_keras_member(p: Path) -> bytes | None:
    """``metadata.json`` of a ``.keras`` archive, at most :data:`MAX_METADATA_BYTES`, or None."""
    if not _small_directory(p):
        return None
    with zipfile.ZipFile(p) as zf:
        try:
            info = zf.getinfo(METADATA_MEMBER)
        except KeyError:
            return None
        if info.file_size > MAX_METADATA_BYTES:
            return None
        with zf.open(info) as fh:
            raw = fh.read(MAX_METADATA_BYTES + 1)  # the declared size may lie: never read past the limit
    return raw if len(raw) <= MAX_METADATA_BYTES else None


def _small_directory(p: Path) -> bool:
    """True when the archive's end record declares a directory a real Keras file could have.

    zipfile reads the whole central directory when it opens an archive: a small file can declare a
    million entries.  Keras writes no archive comment, so the end record is the last 22 bytes; any
    other archive (a comment, zip64) is not read here.
    """
    size = p.stat().st_size
    if size < _END_RECORD_SIZE:
        return False
    with open(p, "rb") as fh:
        fh.seek(size - _END_RECORD_SIZE)
        end = fh.read(_END_RECORD_SIZE)
    if not end.startswith(_END_RECORD):
        return False
    entries, directory_bytes = struct.unpack("<HI", end[10:16])
    return entries <= _MAX_ENTRIES and directory_bytes <= _MAX_DIRECTORY_BYTES


def _read_h5_attribute(p: Path) -> bytes | None:
    """The ``neuralstudio`` root attribute of an HDF5 file, when it is text of at most the limit."""
    import h5py

    with h5py.File(p, "r") as f:
        if H5_ATTRIBUTE not in f.attrs:
            return None
        attr = h5py.h5a.open(f.id, H5_ATTRIBUTE.encode())
        if attr.get_storage_size() > MAX_METADATA_BYTES:
            return None
        value = f.attrs[H5_ATTRIBUTE]
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return value if isinstance(value, bytes) else None


def load_model(path: str | os.PathLike[str], *, trusted: bool = False, compile: bool = False) -> Any:
    """:func:`~neuralstudio.ml.model_files.load_keras_model`, with the file's class names remembered for the model.

    For whoever hands a model opened from a file on to Predict or Export without its path (the main window's
    "Open model", a run chosen in the Train window's runs table): :func:`remembered_classes` then finds them.
    """
    from neuralstudio.ml.model_files import load_keras_model

    model = load_keras_model(path, trusted=trusted, compile=compile)
    remember_classes(model, read_classes(path))
    return model
