"""Open and save Keras model files (``.keras`` and ``.h5``) safely.

Model files are shared between students and downloaded from the web, so they
are untrusted input: a Keras file can carry a ``Lambda`` layer whose Python
code runs when the model is loaded, and a file of a few hundred kilobytes can
be built to make a reader use gigabytes of memory or minutes of time (a
compressed member that inflates a thousandfold, weights that declare far more
data than they store, hundreds of thousands of archive entries).
:func:`check_model_file` therefore inspects the file itself before Keras
sees it, without importing Keras and without reading more than the file's
description: that it exists, is not empty or truncated, is really a Keras
archive or HDF5 model, that every size it declares fits the memory this
computer can spare, and (in :func:`load_keras_model`) that it holds no
``Lambda`` layer.  Keras then loads it with ``safe_mode=True`` unless the user
said they trust the file.  Every failure is a :class:`ModelFileError` whose
message says what is wrong and what to do, never a traceback.

The limits and why they are safe for real models: docs/ARCHITECTURE.md (untrusted model files).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import struct
import tempfile
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from neuralstudio.core.atomic import atomic_path
from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import human_size
from neuralstudio.core.json_walk import json_objects
from neuralstudio.core.memory import memory_budget_bytes

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# What to do about a file that is damaged or that Keras cannot read: the user may only have the file
# (a download, a classmate's model), so the advice never assumes they can save it again themselves.
_NEW_COPY = "download it again, or ask whoever made it for a new copy"
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

# What Keras reads from a .keras archive (keras/src/saving/saving_lib.py): config.json, the weights
# (model.weights.h5, or .npz) and, when there are more than three members, everything else, which it
# extracts to a temporary folder as assets.  metadata.json is only read by `neuralstudio info`.
_CONFIG_MEMBER = "config.json"
_WEIGHTS_H5_MEMBER = "model.weights.h5"
_WEIGHTS_NPZ_MEMBER = "model.weights.npz"
_MAX_ENTRIES = 1_000  # a Keras archive has 3 members plus its assets
_MAX_CENTRAL_DIRECTORY_BYTES = 1_000 * 1_024  # the list of 1,000 entries with long names
_MAX_CONFIG_BYTES = 16 * 2**20  # the description of a 1,000-layer model is about 2 MB
_MAX_CONFIG_CONTAINERS = 1_000_000  # JSON objects and lists: a real layer has 10 to 40
_MAX_LAYERS = 5_000  # the largest Keras applications have about 1,000; Keras needs ~30 ms per layer to load
_BOMB_FLOOR_BYTES = 50 * 2**20  # below this an odd compression ratio costs nothing
_BOMB_RATIO = 200  # Keras stores members uncompressed (1:1); deflate on real weights gives < 10:1
_MAX_H5_OBJECTS = 100_000  # groups and datasets in a weights file
_MIN_H5_OBJECTS = 10_000  # a large model whose config lists no layers (a Keras-hub backbone)
_H5_OBJECTS_PER_LAYER = 25  # Keras writes 3 to 8 (a group, its variables, the optimizer's slots)
_BYTES_PER_WEIGHT = 4  # float32
_END_RECORD = b"PK\x05\x06"
_END_RECORD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_RECORD = b"PK\x06\x06"
_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,)  # bz2 raises OSError
try:
    import bz2  # noqa: F401 - optional in a Python build; zipfile needs it for bzip2 members

    _READABLE_METHODS.add(zipfile.ZIP_BZIP2)
except ImportError:  # pragma: no cover - depends on how Python was built
    pass
try:
    import lzma  # idem for lzma members

    _READABLE_METHODS.add(zipfile.ZIP_LZMA)
    _INFLATE_ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    pass


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


# ---------------------------------------------------------------- memory budget
def memory_budget() -> int:
    """The most memory (bytes) a model file may ask for: the budget of every untrusted file.

    A file whose declared sizes exceed this would push the computer into swapping or be killed
    before Keras could say anything, so it is refused up front instead.
    """
    return memory_budget_bytes()


def _too_big(p: Path, what: str, need: int) -> ModelFileError:
    return ModelFileError(
        f"{p.name} {what} {human_size(need)} of memory to open, more than this computer can spare "
        f"({human_size(memory_budget())}): it is not a model NeuralStudio can open here; use a smaller model "
        "or a computer with more memory."
    )


# ---------------------------------------------------------------- the model description (JSON)
def _describe(head: bytes) -> str:
    """What a file that is not a model is, in words: "is a PNG image, not", or only "is not"."""
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return f"is {what}, not"
    if head.lstrip()[:1] in (b"{", b"["):
        return "is a JSON text file, not"
    return "is not"




def _lambda_layers(config: Any) -> list[str]:
    """Names of the ``Lambda`` layers anywhere in a (nested) model config."""
    found: list[str] = []
    for obj in json_objects(config):
        if obj.get("class_name") == "Lambda":
            cfg = obj.get("config")
            found.append(str(cfg.get("name", "?")) if isinstance(cfg, dict) else "?")
    return found


def _parse_json(p: Path, raw: bytes | str, what: str) -> Any:
    """``raw`` as JSON, refusing a description too large or too deep to be a real one.

    Counting the brackets first keeps millions of empty objects (``[{},{},...]``, a few bytes each
    but about 100 bytes of memory each once parsed) from being built at all.
    """
    damaged = ModelFileError(f"{p.name} has a damaged model description ({what}): {_NEW_COPY}.")
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > _MAX_CONFIG_BYTES:
        raise _config_too_large(p, what, len(raw))
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > _MAX_CONFIG_CONTAINERS:
        raise ModelFileError(
            f"{p.name} has a model description ({what}) of {containers:,} nested objects, far more than any "
            "real model: it was refused. Choose another file."
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelFileError(f"{p.name} has a model description ({what}) nested too deeply to be a real model: "
                             "it was refused. Choose another file.") from None
    except MemoryError:
        raise ModelFileError(f"{p.name} has a model description ({what}) too large to read in the memory "
                             "available: close other programs or choose a smaller model.") from None
    except ValueError:  # UnicodeDecodeError, JSONDecodeError, and an integer of over 4,300 digits
        raise damaged from None


def _config_too_large(p: Path, what: str, size: int) -> ModelFileError:
    return ModelFileError(
        f"{p.name} has a {human_size(size)} model description ({what}); a real one is at most a few MB, so it is "
        "not a real Keras model: choose another file."
    )


def _check_config(p: Path, config: Any) -> int:
    """Refuse a parsed description that is not a model's, has odd names, or too many layers or weights.

    Returns:
        The number of layers it describes (nested models included).
    """
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ModelFileError(f"{p.name} has a damaged model description (it does not describe a Keras model): "
                             f"{_NEW_COPY}.")
    layers = 0
    for obj in json_objects(config):
        if "class_name" in obj and "config" in obj:
            _check_names(p, obj)
        if isinstance(obj.get("layers"), list):
            layers += len(obj["layers"])
    if layers > _MAX_LAYERS:
        raise ModelFileError(f"{p.name} describes {layers:,} layers, more than NeuralStudio opens "
                             f"({_MAX_LAYERS:,}): choose a smaller model.")
    weights = _estimated_weights(config)
    if weights * _BYTES_PER_WEIGHT > memory_budget():
        raise _too_big(p, f"describes a model of about {weights:,} weights, which would need",
                       weights * _BYTES_PER_WEIGHT)
    return layers


def _check_names(p: Path, obj: dict[str, Any]) -> None:
    """A serialized Keras object's type and name must be text: Keras uses them as keys and in messages.

    Only objects Keras wrote (with ``class_name`` and ``config``) are checked, not every dict: a
    tokenizer's vocabulary may well map the word "name" to a number.
    """
    cfg = obj["config"]
    values = [("layer type", obj["class_name"]), ("name", obj.get("name")),
              ("name", cfg.get("name") if isinstance(cfg, dict) else None)]
    for what, value in values:
        if value is not None and not isinstance(value, str):
            raise ModelFileError(
                f"{p.name} has a damaged model description: a {what} in it is a {_json_type(value)} instead of "
                f"text; {_NEW_COPY}."
            )


def _json_type(v: Any) -> str:
    return {dict: "JSON object", list: "list", bool: "true/false value"}.get(type(v), type(v).__name__)


# ---------------------------------------------------------------- a cheap estimate of the weights
def _count(v: Any) -> int:
    """A positive integer from a config, or 0 for anything else (a hostile config can hold anything)."""
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _kernel_volume(cfg: dict[str, Any]) -> int:
    k = cfg.get("kernel_size", 1)
    sizes = [k] if isinstance(k, int) else k if isinstance(k, list) else []
    return math.prod(max(1, _count(s)) for s in sizes)


def _dense_weights(cfg: dict[str, Any], channels: int) -> int:
    return _count(cfg.get("units")) * (channels + 1)


def _embedding_weights(cfg: dict[str, Any], channels: int) -> int:
    return _count(cfg.get("input_dim")) * _count(cfg.get("output_dim"))


def _conv_weights(cfg: dict[str, Any], channels: int) -> int:
    return _kernel_volume(cfg) * channels * _count(cfg.get("filters"))


def _depthwise_weights(cfg: dict[str, Any], channels: int) -> int:
    return _kernel_volume(cfg) * channels * max(1, _count(cfg.get("depth_multiplier")))


def _rnn_weights(gates: int) -> Callable[[dict[str, Any], int], int]:
    def weights(cfg: dict[str, Any], channels: int) -> int:
        units = _count(cfg.get("units"))
        return gates * units * (channels + units + 1)

    return weights


_LAYER_WEIGHTS: dict[str, Callable[[dict[str, Any], int], int]] = {
    "Dense": _dense_weights,
    "Embedding": _embedding_weights,
    "SimpleRNN": _rnn_weights(1),
    "GRU": _rnn_weights(3),
    "LSTM": _rnn_weights(4),
    **dict.fromkeys(("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"),
                    _conv_weights),
    **dict.fromkeys(("DepthwiseConv1D", "DepthwiseConv2D"), _depthwise_weights),
}


def _input_shape(layer: dict[str, Any]) -> list[Any]:
    """The input shape Keras recorded for a layer: its build config, else its first input tensor."""
    build = layer.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None
    if isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape):
        return shape
    nodes = layer.get("inbound_nodes")
    node = nodes[0] if isinstance(nodes, list) and nodes else None
    args = node.get("args") if isinstance(node, dict) else None
    tensor = args[0] if isinstance(args, list) and args else None
    cfg = tensor.get("config") if isinstance(tensor, dict) else None
    shape = cfg.get("shape") if isinstance(cfg, dict) else None
    return shape if isinstance(shape, list) else []


def _estimated_weights(config: Any) -> int:
    """About how many weights the config's layers create (the common layers only; a lower bound).

    Keras creates every variable before it reads the weights file, so a ten-line config that
    asks for a Dense layer of a billion units costs gigabytes however small the file is.
    """
    total = 0
    for layer in json_objects(config):
        estimate = _LAYER_WEIGHTS.get(layer.get("class_name"))  # type: ignore[arg-type]
        cfg = layer.get("config")
        if estimate is None or not isinstance(cfg, dict):
            continue
        shape = _input_shape(layer)
        axis = 1 if cfg.get("data_format") == "channels_first" and len(shape) > 1 else -1
        total += estimate(cfg, _count(shape[axis]) if shape else 0)
    return total


# ---------------------------------------------------------------- the .keras zip archive
def _damaged_zip(p: Path) -> ModelFileError:
    return ModelFileError(
        f"{p.name} is damaged or truncated (its zip archive cannot be read): save or download it again."
    )


def _declared_directory(fh: BinaryIO, size: int) -> tuple[int, int] | None:
    """(entries, bytes) of the archive's central directory as its end record declares them.

    Read before :class:`zipfile.ZipFile` parses the directory, which costs about 12 µs and
    1 kB per entry: 200,000 entries took 2.4 s and 225 MB.  The record is found the way
    zipfile finds it; None when there is none (zipfile then reports the damage).
    """
    fh.seek(max(0, size - _END_RECORD_SIZE))
    record = fh.read(_END_RECORD_SIZE)
    at = size - _END_RECORD_SIZE
    if not (record[:4] == _END_RECORD and record[-2:] == b"\0\0"):
        tail_start = max(0, size - _END_RECORD_SIZE - 0xFFFF)
        fh.seek(tail_start)
        tail = fh.read()
        found = tail.rfind(_END_RECORD)
        if found < 0 or len(tail) - found < _END_RECORD_SIZE:
            return None
        record, at = tail[found:found + _END_RECORD_SIZE], tail_start + found
    entries, directory_bytes = struct.unpack_from("<HI", record, 10)
    if at >= 20:
        fh.seek(at - 20)
        locator = fh.read(20)
        if locator[:4] == _ZIP64_LOCATOR:
            (zip64_at,) = struct.unpack_from("<Q", locator, 8)
            fh.seek(min(zip64_at, size))
            zip64 = fh.read(56)
            if len(zip64) == 56 and zip64[:4] == _ZIP64_END_RECORD:
                entries, directory_bytes = struct.unpack_from("<QQ", zip64, 32)
    return entries, directory_bytes


def _check_directory_size(p: Path, fh: BinaryIO, size: int) -> None:
    declared = _declared_directory(fh, size)
    if declared is not None and (declared[0] > _MAX_ENTRIES or declared[1] > _MAX_CENTRAL_DIRECTORY_BYTES):
        raise _too_many_entries(p)


def _too_many_entries(p: Path) -> ModelFileError:
    return ModelFileError(
        f"{p.name} holds more than {_MAX_ENTRIES:,} files; a Keras model holds three (config.json, "
        "metadata.json, model.weights.h5) and perhaps a few assets, so it is not a real model: choose another file."
    )


def _check_members(p: Path, zf: zipfile.ZipFile) -> None:
    """Refuse what Keras or zipfile would choke on, from the directory alone (nothing is inflated)."""
    infos = zf.infolist()
    if len(infos) > _MAX_ENTRIES:
        raise _too_many_entries(p)
    budget = memory_budget()
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(
                f"{p.name} is password-protected (its member {info.filename!r} is encrypted); Keras models are "
                "never encrypted: ask for a copy saved with model.save('name.keras')."
            )
        if info.compress_type not in _READABLE_METHODS:
            raise ModelFileError(
                f"{p.name} was compressed with a method that cannot be read here (zip method "
                f"{info.compress_type}, in {info.filename!r}): unpack it with the tool that made it, or ask for "
                "a copy saved with model.save('name.keras')."
            )
        if info.file_size > _BOMB_FLOOR_BYTES and info.file_size > _BOMB_RATIO * info.compress_size:
            raise ModelFileError(
                f"{p.name} is a decompression bomb: its member {info.filename!r} takes "
                f"{human_size(info.compress_size)} on disk but would expand to {human_size(info.file_size)}. "
                "It was refused; choose another file."
            )
        total += info.file_size
    if total > budget:
        raise _too_big(p, "would need", total)
    if _CONFIG_MEMBER in zf.NameToInfo and zf.getinfo(_CONFIG_MEMBER).file_size > _MAX_CONFIG_BYTES:
        raise _config_too_large(p, _CONFIG_MEMBER, zf.getinfo(_CONFIG_MEMBER).file_size)


def _read_bounded(p: Path, zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """At most ``limit`` bytes of a member: the size in the directory can lie, so the read is bounded."""
    with zf.open(name) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise _config_too_large(p, name, len(data))
    return data


def _read_keras_config(p: Path) -> Any:
    """The model config inside a ``.keras`` archive, checking that it is one and that it fits in memory."""
    try:
        with open(p, "rb") as fh:
            _check_directory_size(p, fh, os.fstat(fh.fileno()).st_size)
            with zipfile.ZipFile(fh) as zf:
                names = set(zf.namelist())
                if _CONFIG_MEMBER not in names:
                    raise ModelFileError(
                        f"{p.name} is a zip archive but not a Keras model (it has no config.json): "
                        "choose a file saved with model.save('name.keras')."
                    )
                _check_members(p, zf)
                raw = _read_bounded(p, zf, _CONFIG_MEMBER, _MAX_CONFIG_BYTES)
                config = _parse_json(p, raw, _CONFIG_MEMBER)
                layers = _check_config(p, config)
                if _WEIGHTS_H5_MEMBER in names:
                    _check_zip_weights(p, fh, zf, layers)
                elif _WEIGHTS_NPZ_MEMBER in names:
                    _check_zip_npz(p, fh, zf)
                else:
                    raise ModelFileError(f"{p.name} has no weights (model.weights.h5): the save was incomplete; "
                                         f"{_NEW_COPY}.")
                return config
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error, *_INFLATE_ERRORS):
        raise _damaged_zip(p) from None
    except (RuntimeError, NotImplementedError) as exc:  # what zipfile raises for what _check_members missed
        raise ModelFileError(f"{p.name} cannot be unpacked ({_plain(exc)}): save or download it again.") from None
    except OSError as exc:
        raise ModelFileError(f"{p.name} cannot be read ({_plain(exc)}): save or download it again.") from None
    except MemoryError:
        raise ModelFileError(f"{p.name} is too large to inspect in the memory available: close other programs "
                             "or choose a smaller model.") from None


class _MemberWindow(io.RawIOBase):
    """A stored (uncompressed) zip member read in place, with cheap seeks.

    zipfile's own member file restarts from the member's first byte on every backward seek,
    which HDF5 does constantly while reading a file's structure.
    """

    def __init__(self, fh: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._fh, self._start, self._length, self._pos = fh, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self._length - self._pos))
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _stored_member(fh: BinaryIO, info: zipfile.ZipInfo) -> _MemberWindow:
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) < 30 or header[:4] != _ZIP_MAGIC:
        raise zipfile.BadZipFile("bad local header")
    name_length, extra_length = struct.unpack_from("<HH", header, 26)
    return _MemberWindow(fh, info.header_offset + 30 + name_length + extra_length, info.file_size)


def _check_zip_weights(p: Path, fh: BinaryIO, zf: zipfile.ZipFile, layers: int) -> None:
    """Walk the weights file inside the archive (its structure only) and check what it declares."""
    try:
        with _weights_h5(fh, zf) as f:
            _check_h5_datasets(p, f, layers)
    except (ModelFileError, MemoryError, zipfile.BadZipFile, EOFError, *_INFLATE_ERRORS):
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises many kinds of error for a malformed file
        raise ModelFileError(f"{p.name} has damaged weights (model.weights.h5 cannot be read: {_plain(exc)}): "
                             "save or download it again.") from None


@contextlib.contextmanager
def _weights_h5(fh: BinaryIO, zf: zipfile.ZipFile) -> Iterator[Any]:
    """The archive's ``model.weights.h5`` opened with h5py.

    In place when it is stored uncompressed, as Keras writes it; a compressed one (an archive
    zipped again by hand) is unpacked to a temporary file first, because every backward seek in
    a compressed member restarts its decompression from the start.
    """
    import h5py

    info = zf.getinfo(_WEIGHTS_H5_MEMBER)
    if info.compress_type == zipfile.ZIP_STORED:
        with h5py.File(_stored_member(fh, info), "r") as f:
            yield f
        return
    with tempfile.TemporaryDirectory(prefix="neuralstudio-check-") as folder:
        copy = Path(folder) / _WEIGHTS_H5_MEMBER
        with zf.open(_WEIGHTS_H5_MEMBER) as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, 2**20)
        with h5py.File(copy, "r") as f:
            yield f


def _check_zip_npz(p: Path, fh: BinaryIO, zf: zipfile.ZipFile) -> None:
    """The NumPy weights file is itself a zip archive: apply the same directory checks to it, and refuse
    Python objects in it.

    An ``.npy`` array of objects is a pickle: unpickling it can run any code.  Keras reads the arrays with
    ``allow_pickle=False``, so they would fail anyway, but with numpy's own words ("Object arrays cannot be
    loaded when allow_pickle=False"), which suggest passing ``allow_pickle=True``: the refusal says plainly
    what the file holds instead.  Only each array's header is read, never its data.
    """
    info = zf.getinfo(_WEIGHTS_NPZ_MEMBER)
    inner = _stored_member(fh, info) if info.compress_type == zipfile.ZIP_STORED else zf.open(_WEIGHTS_NPZ_MEMBER)
    with zipfile.ZipFile(inner) as npz:
        _check_members(p, npz)
        for member in npz.infolist():
            if member.filename.endswith(".npy") and _npy_holds_objects(p, npz, member):
                raise pickled_objects_error(p, _WEIGHTS_NPZ_MEMBER)


def _npy_holds_objects(p: Path, npz: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    """Whether one ``.npy`` member's header declares Python objects (read as numpy reads it, data untouched)."""
    import numpy as np

    fmt = np.lib.format
    try:
        with npz.open(member) as fh:
            major, _minor = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            _shape, _fortran, dtype = read_header(fh)
    except (ValueError, SyntaxError, OSError, EOFError, zipfile.BadZipFile, *_INFLATE_ERRORS):
        raise ModelFileError(f"{p.name} has damaged weights ({member.filename!r} in {_WEIGHTS_NPZ_MEMBER} is not a "
                             f"readable array): {_NEW_COPY}.") from None
    return bool(dtype.hasobject)


def pickled_objects_error(p: Path, where: str) -> ModelFileError:
    """The refusal of a file that holds pickled Python objects (trusting the file does not change it)."""
    return ModelFileError(
        f"{p.name} contains Python objects (pickled data in {where}) that could run code on this computer if "
        "they were read, so NeuralStudio will not open it (nothing in it was run): ask whoever made it for a copy "
        "saved with Keras's standard model.save('name.keras'), which stores weights as plain numbers."
    )


# ---------------------------------------------------------------- HDF5 (.h5 models and model.weights.h5)
def _check_h5_datasets(p: Path, f: Any, layers: int) -> None:
    """Sum the sizes the file's arrays declare, without reading them, and refuse what cannot be real.

    An HDF5 dataset can declare gigabytes while storing nothing (a fill value, or chunks compressed
    a thousandfold); Keras reads each one whole into memory before it even checks its shape.  The
    walk uses h5py's low-level API (twice as fast as ``visititems``) and stops after a number of
    objects that the model's layers could plausibly need (Keras writes 3 to 8 per layer).
    """
    import h5py

    budget = memory_budget()
    limit = min(_MAX_H5_OBJECTS, max(_MIN_H5_OBJECTS, _H5_OBJECTS_PER_LAYER * layers))
    state = {"objects": 0, "bytes": 0}

    def visit(name: bytes, info: Any) -> None:
        state["objects"] += 1
        if state["objects"] > limit:
            raise ModelFileError(f"{p.name} holds more than {limit:,} weight arrays and groups, far more than its "
                                 f"{layers:,} layers need: it is not a real model. Choose another file.")
        if info.type == h5py.h5o.TYPE_DATASET:
            state["bytes"] += _dataset_bytes(p, h5py.h5d.open(f.id, name), name.decode("utf-8", "replace"))
            if state["bytes"] > budget:
                raise _too_big(p, "has weights that would need", state["bytes"])

    h5py.h5o.visit(f.id, visit, info=True)


def _dataset_bytes(p: Path, ds: Any, name: str) -> int:
    """The bytes one dataset declares, refusing one stored elsewhere or one that stores next to nothing."""
    import h5py

    plist = ds.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL or plist.get_external_count():
        raise ModelFileError(f"{p.name} has weights ('{name}') stored in other files on this computer: "
                             "it was refused. Choose another file.")
    shape = ds.shape
    declared = math.prod(shape) * ds.dtype.itemsize if shape is not None else 0
    stored = ds.get_storage_size()
    if declared > _BOMB_FLOOR_BYTES and declared > _BOMB_RATIO * stored:
        raise ModelFileError(
            f"{p.name} declares weights ('{name}') of {human_size(declared)} but stores only "
            f"{human_size(stored)}: it is damaged or built to exhaust memory, so it was refused. Choose another file."
        )
    return declared


def _h5_text(p: Path, group: Any, attr: str) -> str | None:
    """A text attribute Keras decodes (``keras_version``, ``backend``), refusing one that is not UTF-8."""
    val = group.attrs.get(attr)
    if val is None:
        return None
    if isinstance(val, bytes):
        try:
            return val.decode("utf-8")
        except UnicodeDecodeError:
            what = {"keras_version": "Keras version", "backend": "Keras backend"}.get(attr, attr)
            raise ModelFileError(f"{p.name} is damaged: the {what} it records is not readable text; "
                                 f"{_NEW_COPY}.") from None
    return str(val)


def _read_h5_config(p: Path) -> Any:
    """The model config inside a legacy ``.h5`` file, checking that it is one and that it fits in memory."""
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
            if not isinstance(raw, (bytes, str)):
                raise ModelFileError(f"{p.name} has a damaged model description: {_NEW_COPY}.")
            config = _parse_json(p, raw, "model_config")
            training = f.attrs.get("training_config")
            if isinstance(training, (bytes, str)):
                _parse_json(p, training, "training_config")
            groups = [f] + ([f["model_weights"]] if isinstance(f.get("model_weights"), h5py.Group) else [])
            for group in groups:
                for attr in ("keras_version", "backend"):
                    _h5_text(p, group, attr)
            _check_h5_datasets(p, f, _check_config(p, config))
            return config
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(f"{p.name} is too large to inspect in the memory available: close other programs "
                             "or choose a smaller model.") from None
    except OSError as exc:
        raise ModelFileError(
            f"{p.name} is damaged or truncated (the HDF5 file cannot be read: {str(exc).split(';')[0]}): "
            "save or download it again."
        ) from None
    except Exception as exc:  # noqa: BLE001 - h5py raises many kinds of error for a malformed file
        raise ModelFileError(f"{p.name} is damaged (the HDF5 file cannot be read: {_plain(exc)}): "
                             "save or download it again.") from None


def _plain(exc: BaseException) -> str:
    """An exception as a few words for a message, never empty."""
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def model_file_format(path: str | os.PathLike[str]) -> str | None:
    """What a model file is by its first bytes: ``"keras"`` (zip archive), ``"h5"`` (HDF5), or None.

    The extension is not trusted: people rename files, and a ``.keras`` name on an HDF5 model (or
    ``.h5`` on an archive) is common.  None for a file that cannot be read or is neither.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_HDF5_MAGIC))
    except OSError:
        return None
    return _format_of(head)


def _format_of(head: bytes) -> str | None:
    if head.startswith(_ZIP_MAGIC):
        return "keras"
    if head.startswith(_HDF5_MAGIC):
        return "h5"
    return None


def check_model_file(path: str | os.PathLike[str]) -> tuple[Path, Any]:
    """Check that ``path`` is a readable Keras model file; return it and its model config.

    This reads only the file's description and the structure of its weights,
    never runs or inflates anything in it, and does not import Keras, so it is
    safe (and takes milliseconds) on any file, however hostile.  The format is
    decided by the file's first bytes, not by its extension (see
    :func:`model_file_format`).

    Args:
        path: the ``.keras`` or ``.h5`` file.

    Raises:
        ModelFileError: the file is missing, empty, truncated or not a Keras model, or it declares
            more memory, entries or nesting than a real model (see :func:`memory_budget`).
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
        raise ModelFileError(f"{p.name} is empty (0 bytes): its save or download was interrupted; save or "
                             "download it again.")
    fmt = _format_of(head)
    if fmt == "keras":
        return p, _read_keras_config(p)
    if fmt == "h5":
        return p, _read_h5_config(p)
    if suffix in KERAS_SUFFIXES:
        raise ModelFileError(f"{p.name} {_describe(head)} a Keras model (.keras files are zip archives): "
                             "choose the right file.")
    raise ModelFileError(f"{p.name} {_describe(head)} an HDF5 Keras model: choose the right file.")


def load_keras_model(path: str | os.PathLike[str], *, trusted: bool = False, compile: bool = False) -> Any:
    """Load a ``.keras`` or ``.h5`` model, refusing anything unsafe or broken.

    The file is checked first (:func:`check_model_file`, then the ``Lambda`` refusal); its format is
    taken from its content, whatever its extension.  An HDF5 file written by Keras 2 is translated in
    memory into a description Keras 3 rebuilds (:mod:`neuralstudio.ml.legacy_h5`); the file itself is
    never changed.  Training settings that Keras 3 cannot rebuild do not stop the model from opening:
    it is returned without them, and :func:`load_notes` says so.

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

    from neuralstudio.ml import legacy_h5
    from neuralstudio.ml.builder import keras_graph_recursion

    fmt = model_file_format(p)
    layers = sum(len(obj["layers"]) for obj in json_objects(config) if isinstance(obj.get("layers"), list))
    try:
        with keras_graph_recursion(layers):  # Keras walks a deep model's graph recursively when it rebuilds it
            if fmt == "h5":
                model, notes = legacy_h5.load_h5_model(p, config, compile=compile, safe_mode=not trusted)
            else:
                model, notes = _load_archive(p, compile=compile, safe_mode=not trusted)
    except ModelFileError:
        raise
    except legacy_h5.TemporaryCopyError as exc:
        raise ModelFileError(f"{p.name} could not be opened: NeuralStudio reads it through a temporary copy, "
                             f"which could not be written ({exc}); free some disk space and try again.") from None
    except Exception as exc:  # noqa: BLE001 - every Keras failure becomes a message
        message = _explain_load_error(p, exc, saved_by=legacy_h5.saved_by(p) if fmt == "h5" else None)
        raise (UntrustedCodeError if message.endswith(_TRUST_HINT) else ModelFileError)(message) from None
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{p.name} holds a {type(model).__name__}, not a Keras model.")
    if notes:
        _LOAD_NOTES[model] = list(notes)
    return model


# What could not be restored from the file each model was loaded from, for the user (weak: a model that
# is dropped takes its notes with it).
_LOAD_NOTES: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()


def load_notes(model: Any) -> list[str]:
    """What :func:`load_keras_model` could not restore from the file ``model`` came from, in words.

    Empty for a model opened completely (and for one that did not come from a file).  Today: training
    settings (optimizer, loss) that Keras 3 cannot rebuild, and a Keras 2 learning-rate decay.
    """
    try:
        return list(_LOAD_NOTES.get(model, ()))
    except TypeError:  # an object that cannot be weakly referenced never has notes
        return []


def _load_archive(p: Path, *, compile: bool, safe_mode: bool) -> tuple[Any, list[str]]:
    """Load a zip archive (a ``.keras`` file, whatever its name), and the notes on what was not restored."""
    import keras

    from neuralstudio.ml import legacy_h5

    with legacy_h5.named_as(p, ".keras") as archive:
        if not compile:
            return keras.saving.load_model(archive, compile=False, safe_mode=safe_mode), []
        try:
            return keras.saving.load_model(archive, compile=True, safe_mode=safe_mode), []
        except Exception as exc:  # noqa: BLE001 - a compile config Keras refuses: open the model without it
            model = keras.saving.load_model(archive, compile=False, safe_mode=safe_mode)
            return model, [legacy_h5.not_restored(p, exc)]


def _explain_load_error(p: Path, exc: BaseException, saved_by: str | None = None) -> str:
    """One sentence for the user about a model Keras could not load, and what they can do.

    Args:
        p: the file.
        exc: what Keras raised.
        saved_by: the Keras version an HDF5 file records, when it is one: an old file is named as such.
    """
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return (f"{p.name} could not be opened: there is not enough memory for this model. Close other programs, "
                "or use a smaller model.")
    if not text:  # never "could not be opened as a Keras model: ."
        return (f"{p.name} could not be opened as a Keras model (Keras stopped with {type(exc).__name__} and no "
                "explanation): it may be damaged or saved by an incompatible Keras version; whoever made it can "
                "save it again with model.save('name.keras').")
    if "allow_pickle" in text or "pickle" in text.lower():
        return str(pickled_objects_error(p, "its weights"))
    if "safe_mode" in text or "Lambda" in text:
        return (f"{p.name} holds code (a Lambda layer or a Python function) that Keras runs only for trusted "
                f"files, so it was refused. {_TRUST_HINT}")
    if "Could not locate" in text or "Unknown layer" in text or "custom_objects" in text:
        return (f"{p.name} uses a custom layer or object that is not part of Keras ({text[:200]}): "
                "NeuralStudio opens models made of standard Keras layers only.")
    from neuralstudio.ml.legacy_h5 import keras_reason

    detail = keras_reason(exc)
    if saved_by and not saved_by.startswith("3."):
        return (f"{p.name} was saved by Keras {saved_by}, and Keras 3 cannot rebuild the model it describes "
                f"({detail}): open it with Keras 2 (the tf-keras package) and save it there with "
                "model.save('name.keras'), or ask whoever made it for such a copy.")
    return (f"{p.name} could not be opened as a Keras model ({detail}): it may be damaged or made with a newer "
            f"Keras than this one; {_NEW_COPY}.")


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
