"""Hostile model files, built byte by byte in a test's folder (nothing binary is committed).

Each builder writes a small file that, to a naive reader, would cost a lot of memory or time,
or would make a library raise something other than a clean error.  The zip writer below writes
the archive structures directly, so that a test can declare sizes, compression methods and
flags that :mod:`zipfile` would never write, and can build a bomb in milliseconds: a deflate
block of repeated data is compressed once and repeated, and the CRC of the whole is computed
by combining CRCs (as zlib's ``crc32_combine`` does) instead of over gigabytes of data.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 2**20
GIB = 2**30
STORED, DEFLATED = 0, 8


# ---------------------------------------------------------------- CRC-32 of repeated data
def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A+B from crc(A), crc(B) and len(B), without the data (zlib's algorithm)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # the first pass makes the one-zero-byte operator
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def crc32_repeated(chunk: bytes, times: int) -> int:
    """The CRC-32 of ``chunk * times``, in O(log times) combinations."""
    result, length = 0, 0
    power_crc, power_len = zlib.crc32(chunk), len(chunk)
    while times:
        if times & 1:
            result = crc32_combine(result, power_crc, power_len) if length else power_crc
            length += power_len
        power_crc = crc32_combine(power_crc, power_crc, power_len)
        power_len *= 2
        times >>= 1
    return result


def deflate_repeated(prefix: bytes, chunk: bytes, times: int, suffix: bytes) -> bytes:
    """A raw deflate stream of ``prefix + chunk * times + suffix``, built from one compressed chunk.

    After a full flush the compressor keeps no history, so every following chunk compresses
    to the same bytes and can simply be repeated.
    """
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    if times and co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH) != block:
        raise AssertionError("the compressed chunk is not repeatable")
    return head + block * times + co.compress(suffix) + co.flush()


# ---------------------------------------------------------------- a raw zip writer
@dataclass
class Member:
    """One archive member exactly as written: ``payload`` is the stored (maybe compressed) bytes."""

    name: str
    payload: bytes
    size: int  # the uncompressed size declared
    crc: int
    method: int = STORED
    flags: int = 0

    @classmethod
    def stored(cls, name: str, data: bytes | str) -> Member:
        raw = data.encode() if isinstance(data, str) else data
        return cls(name, raw, len(raw), zlib.crc32(raw))

    @classmethod
    def deflated(cls, name: str, data: bytes | str) -> Member:
        raw = data.encode() if isinstance(data, str) else data
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        return cls(name, co.compress(raw) + co.flush(), len(raw), zlib.crc32(raw), DEFLATED)

    @classmethod
    def repeated(cls, name: str, chunk: bytes, times: int, prefix: bytes = b"", suffix: bytes = b"") -> Member:
        """A deflated member of ``prefix + chunk * times + suffix`` (a bomb for a large ``times``)."""
        crc = crc32_repeated(chunk, times) if times else 0
        crc = crc32_combine(zlib.crc32(prefix), crc, len(chunk) * times) if prefix else crc
        crc = crc32_combine(crc, zlib.crc32(suffix), len(suffix))
        size = len(prefix) + len(chunk) * times + len(suffix)
        return cls(name, deflate_repeated(prefix, chunk, times, suffix), size, crc, DEFLATED)


def zip_bytes(members: list[Member]) -> bytes:
    """A zip archive of ``members`` (no zip64: each size and the entry count must fit the classic fields)."""
    local, central = [], []
    offset = 0
    for m in members:
        name = m.name.encode()
        fields = struct.pack("<HHHHHIIIHH", 20, m.flags, m.method, 0, 0x21, m.crc & 0xFFFFFFFF,
                             len(m.payload), m.size, len(name), 0)
        header = b"PK\x03\x04" + fields + name
        central.append(b"PK\x01\x02" + struct.pack("<H", 20) + fields
                       + struct.pack("<HHHII", 0, 0, 0, 0, offset) + name)
        local.append(header + m.payload)
        offset += len(header) + len(m.payload)
    cd = b"".join(central)
    count = min(len(members), 0xFFFF)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(cd), offset, 0)
    return b"".join(local) + cd + end


def write_zip(path: Path, members: list[Member]) -> Path:
    path.write_bytes(zip_bytes(members))
    return path


# ---------------------------------------------------------------- a tiny, valid Keras model (no Keras needed)
def tiny_config(name: Any = "tiny", layer_name: Any = "dense", units: Any = 2) -> dict[str, Any]:
    """The config.json Keras 3 writes for ``Model(Input((4,)), Dense(2))`` (trimmed to what it reads)."""
    tensor = {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "dtype": "float32",
                                                           "keras_history": ["x", 0, 0]}}
    return {
        "module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
        "config": {
            "name": name, "trainable": True,
            "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None, "name": "x",
                 "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "x"},
                 "inbound_nodes": []},
                {"module": "keras.layers", "class_name": "Dense", "registered_name": None, "name": layer_name,
                 "config": {"name": layer_name, "trainable": True, "dtype": "float32", "units": units,
                            "activation": "linear", "use_bias": True},
                 "build_config": {"input_shape": [None, 4]},
                 "inbound_nodes": [{"args": [tensor], "kwargs": {}}]},
            ],
            "input_layers": [["x", 0, 0]], "output_layers": [[layer_name, 0, 0]],
        },
        "build_config": {"input_shape": None},
    }


METADATA = json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"})


def tiny_weights_h5(huge_bytes: int = 0) -> bytes:
    """Keras's ``model.weights.h5`` for :func:`tiny_config`; with ``huge_bytes``, its kernel declares that
    much data that was never written (so the file stays small)."""
    import io

    import h5py
    import numpy as np

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        group = f.create_group("layers/dense/vars")
        if huge_bytes:
            group.create_dataset("0", shape=(huge_bytes // 4,), dtype="float32")  # unallocated: stores nothing
        else:
            group["0"] = np.zeros((4, 2), np.float32)
        group["1"] = np.zeros((2,), np.float32)
        f.create_group("vars")
    return buf.getvalue()


def _config_text(config: Any) -> str | bytes:
    """``config`` as the file holds it: text and bytes as they are, anything else as JSON."""
    return config if isinstance(config, (str, bytes)) else json.dumps(tiny_config() if config is None else config)


def keras_members(config: Any = None, weights: bytes | None = None) -> list[Member]:
    """The three members of a Keras archive, stored uncompressed as Keras writes them.

    Args:
        config: the config.json: a dict (written as JSON), or the exact text or bytes.
        weights: the model.weights.h5 bytes (default: the tiny model's).
    """
    text = _config_text(config)
    return [Member.stored("metadata.json", METADATA), Member.stored("config.json", text),
            Member.stored("model.weights.h5", tiny_weights_h5() if weights is None else weights)]


# ---------------------------------------------------------------- the hostile files of the review
def config_bomb(path: Path, mib: int = 180) -> Path:
    """A ~200 kB archive whose config.json inflates to ``mib`` MiB of ``{},`` (millions of empty objects)."""
    chunk = b"{}," * (MIB // 3)
    return write_zip(path, [Member.stored("metadata.json", METADATA),
                            Member.repeated("config.json", chunk, mib, prefix=b"[", suffix=b"{}]"),
                            Member.stored("model.weights.h5", tiny_weights_h5())])


def weights_zip_bomb(path: Path, gib: int = 3) -> Path:
    """A ~3 MB archive whose model.weights.h5 member inflates to ``gib`` GiB of zeros."""
    members = keras_members()[:2] + [Member.repeated("model.weights.h5", bytes(MIB), gib * 1024)]
    return write_zip(path, members)


def weights_shape_bomb(path: Path, gib: int = 3) -> Path:
    """A small archive whose weights file declares a ``gib`` GiB kernel that it never stores."""
    return write_zip(path, keras_members(weights=tiny_weights_h5(huge_bytes=gib * GIB)))


def many_entries(path: Path, count: int = 200_000) -> Path:
    """A valid model followed by ``count`` empty members (Keras extracts them all to a temporary folder)."""
    empty = zlib.crc32(b"")
    extra = [Member(f"assets/e{i}", b"", 0, empty) for i in range(count)]
    return write_zip(path, keras_members() + extra)


def encrypted_config(path: Path) -> Path:
    """config.json flagged as encrypted (zipfile raises RuntimeError: password required)."""
    members = keras_members()
    members[1].flags |= 0x1
    return write_zip(path, members)


def unsupported_compression(path: Path, method: int = 99) -> Path:
    """config.json compressed with a method zipfile cannot read (99 = AES; NotImplementedError)."""
    members = keras_members()
    members[1].method = method
    return write_zip(path, members)


def nested_config(path: Path, depth: int = 100_000) -> Path:
    """config.json of ``depth`` nested lists (RecursionError in a recursive parser)."""
    return write_zip(path, keras_members(config="[" * depth + "]" * depth))


def odd_name_config(path: Path, name: Any) -> Path:
    """A valid model whose name (and its Dense layer's name) is not a string."""
    return write_zip(path, keras_members(config=tiny_config(name=name, layer_name=name)))


def huge_layer_config(path: Path, units: int = 2**31) -> Path:
    """A model whose one Dense layer would have 4 x ``units`` kernel weights: Keras allocates them on loading."""
    return write_zip(path, keras_members(config=tiny_config(units=units)))


def legacy_h5(path: Path, *, keras_version: bytes = b"3.15.1", huge_bytes: int = 0,
              config: Any = None) -> Path:
    """A legacy ``.h5`` model file of :func:`tiny_config` (as ``model.save('m.h5')`` writes it).

    Args:
        keras_version: the bytes recorded as the Keras version.
        huge_bytes: make the kernel declare this much data, never written (a shape bomb).
        config: the model_config attribute: a dict (written as JSON), or the exact text.
    """
    import h5py
    import numpy as np

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = _config_text(config)
        f.attrs["keras_version"] = np.bytes_(keras_version)
        f.attrs["backend"] = np.bytes_(b"tensorflow")
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = [b"x", b"dense"]
        weights.attrs["keras_version"] = np.bytes_(keras_version)
        weights.attrs["backend"] = np.bytes_(b"tensorflow")
        weights.create_group("x").attrs["weight_names"] = []
        dense = weights.create_group("dense")
        dense.attrs["weight_names"] = [b"dense/kernel", b"dense/bias"]
        if huge_bytes:
            dense.create_dataset("dense/kernel", shape=(huge_bytes // 4,), dtype="float32")
        else:
            dense["dense/kernel"] = np.zeros((4, 2), np.float32)
        dense["dense/bias"] = np.zeros((2,), np.float32)
    return path
