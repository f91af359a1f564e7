"""Hostile and damaged data files: each is refused with a DataError that names the file, quickly and in bounded memory.

Every hostile file is generated in the test's folder (nothing binary is committed), cheaply: gzip members and
deflate blocks of zeros are compressed once and repeated, so a file that inflates to gigabytes takes milliseconds
to write.  The memory-bound cases run the loader in a fresh process under an address-space limit
(:data:`CAP`) that the old loaders went past and the fixed ones stay far below.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from neuralstudio.ml import data
from neuralstudio.ml.data import DataError, load_dataset

pytestmark = pytest.mark.backend_neutral  # data sources are NumPy


CAP = 1 << 30  # the address-space limit of the memory-bound cases
GIB = 1 << 30


# --------------------------------------------------------------------------- hostile file builders
def idx_header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def write_idx_gz_bomb(path: Path, dims: tuple[int, ...]) -> Path:
    """A gzipped IDX file whose zeros really inflate to what its header declares: 1,000 times its size."""
    block = 16 << 20
    member = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    whole, rest = divmod(int(np.prod(dims, dtype=object)), block)
    with path.open("wb") as fh:
        fh.write(gzip.compress(idx_header(dims), mtime=0))
        for _ in range(whole):
            fh.write(member)
        fh.write(gzip.compress(bytes(rest), mtime=0))
    return path


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08, gz: bool = True) -> Path:
    raw = idx_header(arr.shape, code) + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return path


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header, as numpy writes it."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def deflate_zeros(prefix: bytes, zeros: int) -> bytes:
    """Raw deflate of ``prefix`` and ``zeros`` zero bytes, written in milliseconds: after a full flush the
    compressor restarts, so the block for 1 MiB of zeros is the same every time and can be repeated."""
    mib = 1 << 20
    whole, rest = divmod(zeros, mib)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    if whole == 0:
        return comp.compress(prefix) + comp.compress(bytes(rest)) + comp.flush()
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(mib)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.compress(bytes(rest)) + comp.flush()
    return head + block * whole + tail


def crc32_zeros(prefix: bytes, zeros: int) -> int:
    crc = zlib.crc32(prefix)
    chunk = bytes(64 << 20)
    while zeros:
        n = min(zeros, len(chunk))
        crc = zlib.crc32(chunk[:n] if n < len(chunk) else chunk, crc)
        zeros -= n
    return crc


def zip_member(zf: zipfile.ZipFile, name: str, compressed: bytes, crc: int, size: int) -> None:
    """Add an already deflated member (zipfile itself would inflate gigabytes to write it)."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.fp.seek(zf.start_dir)  # where the next member goes (over the old central directory when appending)
    info.header_offset = zf.start_dir
    info.CRC, info.compress_size, info.file_size = crc, len(compressed), size
    info.flag_bits = 0
    zf.fp.write(info.FileHeader(zip64=False))
    zf.fp.write(compressed)
    zf.start_dir = zf.fp.tell()
    zf.filelist.append(info)
    zf.NameToInfo[name] = info
    zf._didModify = True


def write_npz_bomb(path: Path, n: int, side: int = 28, *, true_crc: bool = True) -> Path:
    """An .npz whose x_train really inflates to ``n`` zero images (1,000 times the file's size)."""
    header = npy_header("|u1", (n, side, side))
    zeros = n * side * side
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("y_train.npy", _npy_bytes(np.arange(n % 1000 + 2) % 2))
        crc = crc32_zeros(header, zeros) if true_crc else 0
        zip_member(zf, "x_train.npy", deflate_zeros(header, zeros), crc, len(header) + zeros)
    return path


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def write_npz_members(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png_bomb(path: Path, width: int, height: int) -> Path:
    """A black greyscale PNG of any size in a few hundred kB (its zeros deflate 1,000 to 1)."""
    raw_len = height * (width + 1)  # a filter byte and the pixels of each row
    adler = ((raw_len % 65521) << 16) | 1  # Adler-32 of zeros
    idat = b"\x78\xda" + deflate_zeros(b"", raw_len) + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
                     + png_chunk(b"IEND", b""))
    return path


def image_folder(root: Path) -> Path:
    """An image folder with the two class sub-folders ``a`` and ``b``, empty."""
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
    return root


def run_capped(call: str, *, cap: int = CAP, timeout: float = 120) -> dict:
    """Run ``call`` (an expression using ``data`` and ``preprocess``) in a fresh process limited to ``cap`` bytes of
    address space; returns the outcome, the seconds it took, and the peak memory."""
    prog = textwrap.dedent(f"""
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
        from neuralstudio.ml import data, preprocess
        start = time.perf_counter()
        try:
            {call}
            outcome, message = "ok", ""
        except (data.DataError, preprocess.ImageFileError) as exc:
            outcome, message = "refused", str(exc)
        except BaseException as exc:
            outcome, message = type(exc).__name__, str(exc)[:300]
        seconds = time.perf_counter() - start
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))  # peaks since exec (not rusage's)
        print(json.dumps({{"outcome": outcome, "message": message, "seconds": seconds,
                          "peak_rss": int(status["VmHWM"].split()[0]) * 1024,
                          "vm_peak": int(status["VmPeak"].split()[0]) * 1024,
                          "heavy": sorted(m for m in ("tensorflow", "keras", "PySide6") if m in sys.modules)}}))
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_refused_cheaply(result: dict, *needles: str) -> None:
    assert result["heavy"] == [], "the loaders must not import TensorFlow, Keras or Qt"
    assert result["outcome"] == "refused", result
    for needle in needles:
        assert needle in result["message"], result["message"]
    assert result["seconds"] < 3.0, result
    assert result["vm_peak"] < CAP // 2, result  # the process stays far below the cap, not just under it


needs_rlimit = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")


# --------------------------------------------------------------------------- memory-bound cases, under a cap
@needs_rlimit
def test_idx_gzip_bomb_is_refused_from_its_header(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    n = 1_913_000  # 1.5 GB of pixels in a 1.5 MB file; its float32 copy would be 6 GB more
    bomb = write_idx_gz_bomb(folder / "train-images-idx3-ubyte.gz", (n, 28, 28))
    write_idx_gz_bomb(folder / "train-labels-idx1-ubyte.gz", (n,))
    assert bomb.stat().st_size < 2_000_000
    result = run_capped(f"data.load_dataset({str(folder)!r})")
    assert_refused_cheaply(result, "train-images-idx3-ubyte.gz", "(1913000, 28, 28)", "of memory",
                           "smaller part of the data")


@needs_rlimit
def test_npz_bomb_is_refused_before_anything_is_inflated(tmp_path):
    bomb = write_npz_bomb(tmp_path / "bomb.npz", 2_600_000)  # 2 GB of zeros in a 2 MB file
    assert bomb.stat().st_size < 2_500_000
    with zipfile.ZipFile(bomb) as zf:
        assert zf.getinfo("x_train.npy").file_size > 2 * 10**9
    result = run_capped(f"data.load_dataset({str(bomb)!r})")
    assert_refused_cheaply(result, "bomb.npz", "of memory")


@needs_rlimit
def test_npy_header_declaring_a_huge_shape_is_refused_from_the_header_alone(tmp_path):
    path = write_npz_members(tmp_path / "shape.npz", {
        "x_train.npy": npy_header("|u1", (10**12, 28, 28)) + bytes(784),
        "y_train.npy": _npy_bytes(np.array([0, 1])),
    })
    result = run_capped(f"data.load_dataset({str(path)!r})")
    assert_refused_cheaply(result, "x_train in shape.npz", "(1000000000000, 28, 28)")


@needs_rlimit
def test_png_bomb_in_an_image_folder_is_a_message_not_a_traceback(tmp_path):
    root = image_folder(tmp_path / "imgs")
    write_png_bomb(root / "a" / "huge.png", 20_000, 20_000)  # 400 million pixels; Pillow raises DecompressionBomb
    Image.new("L", (28, 28)).save(root / "b" / "0.png")
    result = run_capped(f"data.load_dataset({str(root)!r})")
    assert_refused_cheaply(result, "huge.png", "too many pixels", "4096x4096")


@needs_rlimit
def test_large_images_below_pillows_limit_are_refused_before_decoding(tmp_path):
    root = image_folder(tmp_path / "imgs")
    for cls in ("a", "b"):
        for i in range(2):  # 81 million pixels each: Pillow decodes these without a word
            write_png_bomb(root / cls / f"{i}.png", 9_000, 9_000)
    result = run_capped(f"data.load_dataset({str(root)!r})")
    assert_refused_cheaply(result, "9000x9000 pixels")


@needs_rlimit
def test_csv_with_a_giant_row_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("label,p\n0,1\n1," + "10," * 12_000_000 + "0\n")  # 36 MB: a third row of 12 million cells
    result = run_capped(f"data.load_dataset({str(path)!r})")
    assert_refused_cheaply(result, "wide.csv", "a row of more than 1,048,576 pixel values")


@needs_rlimit
def test_the_cap_leaves_room_for_real_data(tmp_path):
    """The same cap is no obstacle to loading the bundled sample (10,000 MNIST images)."""
    result = run_capped("ds = data.load_dataset('mnist-sample'); assert ds.x_train.shape == (8000, 28, 28)")
    assert result["outcome"] == "ok", result
    budget = run_capped("assert data.memory_budget_bytes() == " + str(CAP // 2))
    assert budget["outcome"] == "ok", budget


def test_memory_budget_is_at_most_4_gib_and_positive():
    budget = data.memory_budget_bytes()
    assert 0 < budget <= 4 * GIB


def test_the_memory_check_names_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(data.budget, "memory_budget_bytes", lambda: 10_000)  # looked up where _check_memory is
    x = np.zeros((20, 28, 28), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(20) % 2)
    with pytest.raises(DataError, match=r"The arrays in d.npz would take 76.8 kB of memory, more than the 9.8 kB"):
        load_dataset(str(tmp_path / "d.npz"))


# --------------------------------------------------------------------------- IDX
def idx_folder(tmp_path: Path, images: bytes | None = None, labels: bytes | None = None, gz: bool = True) -> Path:
    folder = tmp_path / "idx"
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    x = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x, gz=gz)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", np.arange(6, dtype=np.uint8) % 2, gz=gz)
    if images is not None:
        (folder / f"train-images-idx3-ubyte{ext}").write_bytes(images)
    if labels is not None:
        (folder / f"train-labels-idx1-ubyte{ext}").write_bytes(labels)
    return folder


def test_idx_with_extra_data_is_refused(tmp_path):
    raw = idx_header((6, 4, 4)) + bytes(96) + b"extra"
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz says it holds .* but has more data"):
        load_dataset(str(idx_folder(tmp_path, images=gzip.compress(raw))))
    with pytest.raises(DataError, match="train-images-idx3-ubyte says it holds .* 101 bytes of data"):
        load_dataset(str(idx_folder(tmp_path / "raw", images=raw, gz=False)))


def test_idx_declaring_more_than_a_gzip_file_can_hold_is_refused(tmp_path):
    raw = idx_header((100_000, 28, 28)) + bytes(10)
    with pytest.raises(DataError, match="more than a gzip file of .* can hold: the file is damaged"):
        load_dataset(str(idx_folder(tmp_path, images=gzip.compress(raw))))


def test_idx_damaged_gzip_streams_are_messages(tmp_path):
    good = gzip.compress(idx_header((6, 4, 4)) + bytes(range(96)), mtime=0)
    corrupt_deflate = good[:12] + bytes(b ^ 0xFF for b in good[12:30]) + good[30:]  # zlib.error
    bad_crc = good[:-8] + b"\0\0\0\0" + good[-4:]
    for i, damaged in enumerate([corrupt_deflate, bad_crc, good[:25], b"\x1f\x8b" + bytes(20)]):
        with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
            load_dataset(str(idx_folder(tmp_path / str(i), images=damaged)))


def test_idx_declaring_more_dimensions_than_numpy_has_is_refused(tmp_path):
    raw = struct.pack(">BBBB", 0, 0, 0x08, 255) + struct.pack(">255I", 0, *[1] * 254)  # 255 dims, zero values
    with pytest.raises(DataError, match="its header declares 255 dimensions"):
        load_dataset(str(idx_folder(tmp_path, images=raw, gz=False)))


def test_idx_big_endian_values_are_read_right(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    x = (np.arange(6 * 4 * 4, dtype=np.int32) * 2).reshape(6, 4, 4)
    write_idx(folder / "train-images-idx3-ubyte.gz", x, code=0x0C)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(6, dtype=np.uint8) % 2)
    read = data.read_idx(folder / "train-images-idx3-ubyte.gz")
    assert read.dtype == np.dtype("=i4") and read.flags.writeable
    np.testing.assert_array_equal(read, x)


# --------------------------------------------------------------------------- NPZ
@pytest.mark.parametrize(("y", "message"), [
    (np.array(5), "y_train in d.npz is a single value"),
    (np.zeros(0), "x_train in d.npz has 6 examples but y_train has 0 labels"),
])
def test_npz_with_0d_or_empty_labels_gives_a_message(tmp_path, y, message):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((6, 4, 4)), y_train=y)
    with pytest.raises(DataError, match=message):
        load_dataset(str(tmp_path / "d.npz"))


def test_npz_damage_is_a_message_naming_the_file(tmp_path):
    np.savez_compressed(tmp_path / "good.npz", x_train=np.arange(600).reshape(6, 10, 10) % 255,
                        y_train=np.arange(6) % 2)
    good = (tmp_path / "good.npz").read_bytes()
    flipped = bytearray(good)
    for i in range(60, 90):
        flipped[i] ^= 0x5A  # inside the first member's deflate data
    cases = {"cut.npz": good[: len(good) // 2], "flipped.npz": bytes(flipped),
             "no_directory.npz": good[: good.rfind(b"PK\x01\x02")], "tail.npz": good[:-10]}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(DataError, match=name.replace(".", r"\.")):
            load_dataset(str(tmp_path / name))


@pytest.mark.parametrize("method", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2, 99])
def test_npz_member_with_damaged_or_unknown_compression_is_a_message(tmp_path, method):
    members = {"x_train.npy": _npy_bytes(np.zeros((4, 2, 2))), "y_train.npy": _npy_bytes(np.arange(4) % 2)}
    good = write_npz_members(tmp_path / "ok.npz", members, method=zipfile.ZIP_STORED)
    raw = bytearray(good.read_bytes())
    for sig, field in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # the method, in the local and central headers
        at = raw.find(sig)
        raw[at + field : at + field + 2] = struct.pack("<H", method)
    (tmp_path / "method.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="method.npz is not a valid .npz file"):
        load_dataset(str(tmp_path / "method.npz"))


def test_npz_member_whose_zip_entry_lies_about_its_size_is_refused(tmp_path):
    path = tmp_path / "lie.npz"
    header = npy_header("|u1", (2_000_000, 28, 28))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("y_train.npy", _npy_bytes(np.array([0, 1])))
        zip_member(zf, "x_train.npy", deflate_zeros(header, 1000), 0, len(header) + 2_000_000 * 784)
    with pytest.raises(DataError, match="x_train in lie.npz is damaged: its zip entry says"):
        load_dataset(str(path))


def test_npz_other_members_are_never_read(tmp_path):
    """A bomb or a pickle beside the arrays NeuralStudio uses costs nothing: only those arrays are read."""
    path = write_npz_members(tmp_path / "extra.npz", {
        "x_train.npy": _npy_bytes(np.zeros((10, 4, 4), np.uint8)),
        "y_train.npy": _npy_bytes(np.arange(10) % 2),
        "notes": b"x" * 1000,
        "pickled.npy": _npy_bytes(np.array([{"a": 1}], dtype=object)),
    })
    header = npy_header("|u1", (3_000_000, 28, 28))
    with zipfile.ZipFile(path, "a") as zf:
        zip_member(zf, "bomb.npy", deflate_zeros(header, 3_000_000 * 784), 0, len(header) + 3_000_000 * 784)
    ds = load_dataset(str(path))
    assert len(ds.x_train) + len(ds.x_test) == 10


def test_npz_members_that_are_not_arrays_or_are_pickles_are_refused(tmp_path):
    write_npz_members(tmp_path / "raw.npz", {"x_train": b"\x00" * 100, "y_train.npy": _npy_bytes(np.arange(2))})
    with pytest.raises(DataError, match="x_train in raw.npz is not a numpy array"):
        load_dataset(str(tmp_path / "raw.npz"))
    write_npz_members(tmp_path / "obj.npz", {"x_train.npy": npy_header("|O", (2, 2)) + b"\x80" * 32,
                                             "y_train.npy": _npy_bytes(np.arange(2))})
    with pytest.raises(DataError, match=r"contains Python objects \(x_train is pickled data\) that could run code "
                                         r"on this computer.*nothing in it was run"):
        load_dataset(str(tmp_path / "obj.npz"))
    write_npz_members(tmp_path / "v3.npz", {"x_train.npy": b"\x93NUMPY\x03\x00" + bytes(60),
                                            "y_train.npy": _npy_bytes(np.arange(2))})
    with pytest.raises(DataError, match="version 3.0"):
        load_dataset(str(tmp_path / "v3.npz"))


def test_npz_with_other_compression_still_loads(tmp_path):
    x = np.arange(8 * 9, dtype=np.uint8).reshape(8, 3, 3)
    write_npz_members(tmp_path / "bz.npz", {"x_train.npy": _npy_bytes(x), "y_train.npy": _npy_bytes(np.arange(8) % 2)},
                      method=zipfile.ZIP_BZIP2)
    ds = load_dataset(str(tmp_path / "bz.npz"))
    assert ds.x_train.shape[1:] == (3, 3)


def test_keras_cache_that_is_a_bomb_is_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    write_npz_bomb(tmp_path / "datasets" / "mnist.npz", 2_000_000, true_crc=False)
    with pytest.raises(DataError, match="mnist.npz is damaged or not the Keras MNIST file .*delete it"):
        load_dataset("mnist")


# --------------------------------------------------------------------------- CSV
def test_csv_with_very_many_columns_is_read_whole(tmp_path):
    ncols = 250_000  # the header alone is 2 MB, more than the first megabyte the old reader looked at
    header = "label," + ",".join(f"pixel{i}" for i in range(ncols))
    rows = [f"{i % 2}," + ",".join(["7"] * ncols) for i in range(5)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    ds = load_dataset(str(path))
    assert ds.x_train.shape == (4, 500, 500) and ds.num_classes == 2
    assert np.allclose(ds.x_train, 7 / 255)


def test_csv_with_an_overlong_field_is_a_message(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("label,p\n0,1\n1," + "x" * 200_000 + "\n")
    with pytest.raises(DataError, match=r"long.csv has a value of more than 131,072 characters .*quote"):
        load_dataset(str(path))
    path.write_text('label,p\n0,1\n1,"2\n' + "3,4\n" * 50_000)  # a quote never closed swallows the rest
    with pytest.raises(DataError, match=r"long.csv has a value of more than 131,072 characters"):
        load_dataset(str(path))


def test_csv_with_an_overlong_label_is_a_message(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("label,p\ncat,1\n" + "d" * 5000 + ",2\n")
    with pytest.raises(DataError, match="Row 3 of label.csv has a label of 5,000 characters"):
        load_dataset(str(path))


def test_csv_line_endings_bom_and_quotes_still_load(tmp_path):
    path = tmp_path / "win.csv"
    rows = ["label,a,b"] + [f'{i % 2},"{i}",{i * 2}' for i in range(10)]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    ds = load_dataset(str(path))
    assert ds.x_train.shape == (8, 2) and ds.class_names == ["0", "1"]
    path.write_bytes(b"label,a\n0,1\n1,\xff\xfe\n")
    with pytest.raises(DataError, match="win.csv is not a UTF-8 text file"):
        load_dataset(str(path))


def test_csv_text_labels_use_bounded_memory_per_row(tmp_path):
    path = tmp_path / "named.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i + 1},{'cat' if i % 2 else 'dog'}\n" for i in range(50)))
    ds = load_dataset(str(path))
    assert ds.class_names == ["cat", "dog"] and len(ds.x_train) + len(ds.x_test) == 50


def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_dataset(str(fifo))


# --------------------------------------------------------------------------- image folders
def test_16_bit_images_in_a_folder_are_scaled_not_clipped(tmp_path):
    root = image_folder(tmp_path / "imgs")
    for ci, cls in enumerate(("a", "b")):
        for j in range(5):
            Image.fromarray(np.full((8, 8), 10_000 + 20_000 * ci, np.uint16)).save(root / cls / f"{j}.png")
    ds = load_dataset(str(root))
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    np.testing.assert_allclose(x[:, 3, 3], (10_000 + 20_000 * y) / 65535, rtol=1e-6)  # not 1.0 (clipped at 255)


def test_sideways_photos_in_a_folder_are_turned_upright(tmp_path):
    root = image_folder(tmp_path / "imgs")
    upright = np.zeros((20, 12), np.uint8)
    upright[2:6, :] = 255  # a bar at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    for cls in ("a", "b"):
        for j in range(3):
            Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(root / cls / f"{j}.jpg", exif=exif,
                                                                               quality=95)
    ds = load_dataset(str(root))
    assert ds.x_train.shape[1:] == (20, 12)  # height and width as displayed
    assert ds.x_train[:, 3].mean() > 0.9 and ds.x_train[:, 15].mean() < 0.1


def test_an_unreadable_image_in_a_folder_names_the_file(tmp_path):
    root = image_folder(tmp_path / "imgs")
    for cls in ("a", "b"):
        Image.new("L", (8, 8)).save(root / cls / "0.png")
    good = (root / "a" / "0.png").read_bytes()
    (root / "b" / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="cut.png cannot be read as an image"):
        load_dataset(str(root))


def test_the_folder_loader_and_predict_share_one_reader(tmp_path, monkeypatch):
    from neuralstudio.ml import preprocess

    root = image_folder(tmp_path / "imgs")
    for cls in ("a", "b"):
        for j in range(3):
            Image.new("L", (8, 8), 40).save(root / cls / f"{j}.png")
    calls = []
    real = preprocess.load_gray_image
    monkeypatch.setattr(preprocess, "load_gray_image", lambda p, **kw: calls.append(kw) or real(p, **kw))
    load_dataset(str(root))
    assert calls == [{"as_stored": True}] * 6


# --------------------------------------------------------------------------- the fuzzer
def _seed_files() -> dict[str, dict[str, bytes]]:
    """One small valid example of every format, as {file name: bytes}."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 6, 6), dtype=np.uint8)
    y = (np.arange(8) % 2).astype(np.uint8)
    idx_x, idx_y = idx_header(x.shape) + x.tobytes(), idx_header(y.shape) + y.tobytes()
    npz, npz_c = io.BytesIO(), io.BytesIO()
    np.savez(npz, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    np.savez_compressed(npz_c, x_train=x, y_train=y, class_names=np.array(["no", "yes"]))
    csv_text = "label," + ",".join(f"p{i}" for i in range(9)) + "\n"
    csv_text += "".join(f"{['cat', 'dog'][i % 2]}," + ",".join(str(v) for v in x[i, :3, :3].ravel()) + "\n"
                        for i in range(8))
    seeds = {
        "idx-gz": {"train-images-idx3-ubyte.gz": gzip.compress(idx_x, mtime=0),
                   "train-labels-idx1-ubyte.gz": gzip.compress(idx_y, mtime=0)},
        "idx-raw": {"train-images-idx3-ubyte": idx_x, "train-labels-idx1-ubyte": idx_y},
        "npz": {"d.npz": npz.getvalue()},
        "npz-compressed": {"d.npz": npz_c.getvalue()},
        "csv": {"d.csv": csv_text.encode()},
    }
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif")):
        files = {}
        for i in range(4):
            buf = io.BytesIO()
            Image.fromarray(x[i]).save(buf, fmt)
            files[f"{'ab'[i % 2]}/{i}.{ext}"] = buf.getvalue()
        seeds[f"images-{ext}"] = files
    buf = io.BytesIO()
    Image.fromarray(x[0].astype(np.uint16) * 257).save(buf, "PNG")
    seeds["images-png16"] = {"a/0.png": buf.getvalue(), "b/1.png": buf.getvalue()}
    return seeds


SEEDS = _seed_files()

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("int"), st.integers(0, 64), st.sampled_from([0, 1, 255, 2**16, 2**31 - 1, 2**32 - 1])),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.integers(0, 255)),
)


def mutate(raw: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(raw)
    for op, pos, value in edits:
        if not out:
            break
        pos %= len(out)
        if op == "flip":
            out[pos] ^= value
        elif op == "int":
            out[pos : pos + 4] = struct.pack(">I", value)
        elif op == "cut":
            del out[pos:]
        else:
            out[pos:pos] = bytes([value]) * (1 + value % 7)
    return bytes(out)


npy_descr = st.sampled_from(["|u1", "<f4", ">i4", "<f8", "|b1", "<c8", "<U3", "|S2", "|V4", "|O", "<M8[s]", "<u2"])
npy_shape = st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**40), st.integers(-3, -1)), max_size=4).map(tuple)
csv_cell = st.one_of(st.sampled_from(["0", "1", "255", "0.5", "-1", "nan", "inf", "1e999", "x", '"', '""', "",
                                      " ", "label", '"a,b"', "\t", "\x00", "é", "1_0"]),
                     st.integers(-300, 300).map(str))


@settings(max_examples=90, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data_=st.data())
def test_fuzzed_files_load_or_raise_data_error(tmp_path_factory, data_):
    kind = data_.draw(st.sampled_from([*SEEDS, "npy-header", "csv-text"]), label="kind")
    folder = tmp_path_factory.mktemp("fuzz")
    if kind == "npy-header":
        header = npy_header(data_.draw(npy_descr, label="descr"), data_.draw(npy_shape, label="shape"))
        payload = bytes(data_.draw(st.integers(0, 512), label="payload"))
        files = {"d.npz": _zip_bytes({"x_train.npy": header + payload, "y_train.npy": _npy_bytes(np.arange(8) % 2)})}
    elif kind == "csv-text":
        rows = data_.draw(st.lists(st.lists(csv_cell, min_size=1, max_size=6), max_size=8), label="rows")
        files = {"d.csv": "\n".join(",".join(r) for r in rows).encode()}
    else:
        files = dict(SEEDS[kind])
        name = data_.draw(st.sampled_from(sorted(files)), label="file")
        files[name] = mutate(files[name], data_.draw(st.lists(mutation, min_size=1, max_size=4), label="edits"))
    for name, raw in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)
    target = folder / next(iter(files)) if len(files) == 1 and not kind.startswith("images") else folder
    try:
        ds = load_dataset(str(target))
    except DataError as exc:
        assert str(exc)
    else:
        assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
        assert np.all((ds.x_train >= 0) & (ds.x_train <= 1))


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return buf.getvalue()
