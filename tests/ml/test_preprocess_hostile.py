"""Hostile, unusual and damaged image files for ``predict``: read right, or refused with an ImageFileError.

The files are generated in the test's folder.  16-bit, 32-bit and float images must mean what they show (not be
clipped at 255), sideways photos must be turned upright from their EXIF orientation, and an image that declares
too many pixels must be refused before it is decoded, checked in a fresh process under an address-space limit.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from neuralstudio.ml.preprocess import MAX_IMAGE_PIXELS, ImageFileError, load_gray_image, prepare_image_file

pytestmark = pytest.mark.backend_neutral  # image preparation is NumPy and Pillow


CAP = 1 << 30  # the address-space limit of the memory-bound cases


def seven(size: int = 200) -> np.ndarray:
    """A white-on-black uint8 '7' on a size x size canvas."""
    img = np.zeros((200, 200), np.uint8)
    img[30:46, 40:160] = 255
    for y in range(30, 180):
        x = int(160 - (y - 30) * 0.45)
        img[y, x - 16 : x] = 255
    return img if size == 200 else np.asarray(Image.fromarray(img).resize((size, size)))


def save(arr: np.ndarray, path: Path, **kwargs) -> Path:
    Image.fromarray(arr).save(path, **kwargs)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_black_png(path: Path, width: int, height: int) -> Path:
    """A black greyscale PNG of any size in a few hundred kB: the deflate block for 1 MiB of zeros (after a full
    flush the compressor restarts) is compressed once and repeated."""
    raw_len = height * (width + 1)
    whole, rest = divmod(raw_len, 1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    deflated = block * whole + comp.compress(bytes(rest)) + comp.flush()
    adler = ((raw_len % 65521) << 16) | 1  # Adler-32 of zeros
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", b"\x78\xda" + deflated + struct.pack(">I", adler)) + png_chunk(b"IEND", b""))
    return path


def run_capped(call: str, *, cap: int = CAP) -> dict:
    """Run ``call`` in a fresh process limited to ``cap`` bytes of address space: outcome, seconds, peak memory."""
    prog = textwrap.dedent(f"""
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
        from neuralstudio.ml import preprocess
        start = time.perf_counter()
        try:
            {call}
            outcome, message = "ok", ""
        except preprocess.ImageFileError as exc:
            outcome, message = "refused", str(exc)
        except BaseException as exc:
            outcome, message = type(exc).__name__, str(exc)[:300]
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(json.dumps({{"outcome": outcome, "message": message, "seconds": time.perf_counter() - start,
                          "vm_peak": int(status["VmPeak"].split()[0]) * 1024,
                          "heavy": sorted(m for m in ("tensorflow", "keras", "PySide6") if m in sys.modules)}}))
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


needs_rlimit = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")


# --------------------------------------------------------------------------- too many pixels
@needs_rlimit
@pytest.mark.parametrize(("side", "needle"), [
    (9_000, "9000x9000 pixels"),  # below Pillow's own limit: the old reader decoded it (with a warning)
    (20_000, "too many pixels"),  # above it: Pillow's DecompressionBombError
])
def test_an_image_with_too_many_pixels_is_refused_before_decoding(tmp_path, side, needle):
    path = write_black_png(tmp_path / "big.png", side, side)
    assert path.stat().st_size < 1_000_000
    result = run_capped(f"preprocess.load_gray_image({str(path)!r})")
    assert result["heavy"] == [], "preprocess must not import TensorFlow, Keras or Qt"
    assert result["outcome"] == "refused", result
    assert needle in result["message"] and "big.png" in result["message"] and "4096x4096" in result["message"]
    assert result["seconds"] < 1.0 and result["vm_peak"] < CAP // 2, result


def test_an_image_at_the_limit_is_read(tmp_path):
    side = int(MAX_IMAGE_PIXELS**0.5)
    gray = load_gray_image(write_black_png(tmp_path / "edge.png", side, side))
    assert gray.shape == (side, side) and gray.dtype == np.float32 and not gray.any()
    with pytest.raises(ImageFileError, match="4097x4096 pixels"):
        load_gray_image(write_black_png(tmp_path / "over.png", side + 1, side))


def test_pillows_bomb_warning_is_not_shown(tmp_path, recwarn):
    with pytest.raises(ImageFileError, match="too many pixels"):
        load_gray_image(write_black_png(tmp_path / "warn.png", 10_000, 10_000))  # between 1x and 2x Pillow's limit
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# --------------------------------------------------------------------------- deeper than 8 bits
def scan(ink: int, paper: int) -> np.ndarray:
    """The '7' as a scan: ``ink`` on ``paper`` grey levels (0-255)."""
    return np.where(seven() > 0, ink, paper).astype(np.uint8)


def test_a_16_bit_digit_is_prepared_like_the_8_bit_one(tmp_path):
    """Grey levels above 255 of 65535 were all clipped to white: the paper became ink, and a '7' a blank page."""
    for ink, paper in ((230, 20), (25, 210)):  # light on dark, and dark on light (inverted)
        eight = prepare_image_file(save(scan(ink, paper), tmp_path / "scan8.png"))
        sixteen = prepare_image_file(save(scan(ink, paper).astype(np.uint16) * 257, tmp_path / "scan16.png"))
        assert Image.open(tmp_path / "scan16.png").mode == "I;16"
        np.testing.assert_allclose(sixteen, eight, atol=1e-5)


def test_16_bit_levels_are_scaled_by_65535(tmp_path):
    levels = np.array([[0, 1000, 30_000, 65_535]], np.uint16)
    got = load_gray_image(save(levels, tmp_path / "l16.png"), as_stored=True)
    np.testing.assert_allclose(got, levels / 65535, rtol=1e-6)
    got = load_gray_image(save(levels, tmp_path / "l16.tif"), as_stored=True)
    np.testing.assert_allclose(got, levels / 65535, rtol=1e-6)


@pytest.mark.parametrize(("values", "expected"), [
    ([0, 1000, 65_535], [0, 1000 / 65535, 1]),  # 16-bit data held in 32 bits: by 65535
    ([0, 50_000, 1_000_000], [0, 0.05, 1]),  # beyond 16 bits: by the maximum
    ([-100, 0, 100], [0, 0.5, 1]),  # negative: min-max
])
def test_32_bit_integer_images_are_scaled_by_their_range(tmp_path, values, expected):
    path = save(np.array([values], np.int32), tmp_path / "i32.tif")
    assert Image.open(path).mode == "I"
    np.testing.assert_allclose(load_gray_image(path, as_stored=True), [expected], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("values", "expected"), [
    ([0.0, 0.25, 1.0], [0.0, 0.25, 1.0]),  # within [0, 1]: as it is
    ([0.0, 50.0, 200.0], [0.0, 0.25, 1.0]),  # beyond: min-max
    ([-1.0, 0.0, 1.0], [0.0, 0.5, 1.0]),
    ([np.nan, 0.5, np.inf], [0.0, 0.5, 0.0]),  # NaN and infinities are 0
    ([7.0, 7.0, 7.0], [0.0, 0.0, 0.0]),  # no contrast at all
])
def test_float_images_are_scaled_by_their_range(tmp_path, values, expected):
    path = save(np.array([values], np.float32), tmp_path / "f.tif")
    assert Image.open(path).mode == "F"
    np.testing.assert_allclose(load_gray_image(path, as_stored=True), [expected], rtol=1e-6)


def test_a_float_digit_in_0_1_is_not_blank(tmp_path):
    """Floats in [0, 1] were rounded to the 8-bit levels 0 and 1: faint ink became nothing."""
    path = save(scan(100, 0).astype(np.float32) / 255, tmp_path / "seven.tif")
    np.testing.assert_allclose(prepare_image_file(path), prepare_image_file(save(scan(100, 0), tmp_path / "s.png")),
                               atol=1e-5)


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "1", "RGBA", "LA", "CMYK"])
def test_8_bit_images_read_as_before(tmp_path, mode):
    """The grey levels of ordinary images are exactly what Pillow's convert("L") / 255 gave."""
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    img.save(path)
    with Image.open(path) as again:
        expected = np.asarray(again.convert("L"), dtype=np.float32) / 255.0
    np.testing.assert_array_equal(load_gray_image(path, as_stored=True), expected)


# --------------------------------------------------------------------------- orientation
def sideways_jpeg(path: Path, orientation: int | None) -> Path:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation  # 6: "rotate 90 degrees clockwise to display"
    Image.fromarray(seven()).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    return path


def test_a_sideways_photo_is_turned_upright(tmp_path):
    upright = prepare_image_file(save(seven(), tmp_path / "upright.jpg", quality=95))
    turned = prepare_image_file(sideways_jpeg(tmp_path / "tagged.jpg", 6))
    untagged = prepare_image_file(sideways_jpeg(tmp_path / "untagged.jpg", None))
    assert np.corrcoef(turned.ravel(), upright.ravel())[0, 1] > 0.95
    assert np.corrcoef(untagged.ravel(), upright.ravel())[0, 1] < 0.6  # the tag is what made the difference


def test_damaged_exif_keeps_the_pixels(tmp_path):
    path = save(seven(), tmp_path / "exif.jpg", quality=95, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    assert prepare_image_file(path).max() == pytest.approx(1.0)


# --------------------------------------------------------------------------- files that are not images
def test_formats_beyond_the_image_ones_are_never_decoded(tmp_path):
    eps = tmp_path / "digit.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n")
    assert Image.open(eps).format == "EPS"  # Pillow would hand this to Ghostscript when loading it
    with pytest.raises(ImageFileError, match="digit.png cannot be read as an image"):
        load_gray_image(eps)


def test_a_pipe_is_not_opened(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageFileError, match="not a regular file"):
        load_gray_image(fifo)


# --------------------------------------------------------------------------- the fuzzer
def _seeds() -> dict[str, bytes]:
    digit = seven(40)
    seeds = {}
    for name, arr, fmt in [("png", digit, "PNG"), ("jpg", digit, "JPEG"), ("gif", digit, "GIF"),
                           ("bmp", digit, "BMP"), ("webp", digit, "WEBP"),
                           ("tif", digit.astype(np.float32) / 255, "TIFF"),
                           ("png16", digit.astype(np.uint16) * 257, "PNG")]:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, fmt)
        seeds[name] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(np.dstack([digit] * 3 + [digit])).save(buf, "PNG")
    seeds["rgba"] = buf.getvalue()
    return seeds


SEEDS = _seeds()
edit = st.tuples(st.sampled_from(["flip", "int", "cut", "insert"]), st.integers(0, 1 << 16), st.integers(0, 2**32 - 1))


def mutate(raw: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(raw)
    for op, pos, value in edits:
        if not out:
            break
        pos %= len(out) if op != "int" else min(len(out), 64)
        if op == "flip":
            out[pos] ^= value % 255 + 1
        elif op == "int":
            out[pos : pos + 4] = struct.pack(">I", value)
        elif op == "cut":
            del out[pos:]
        else:
            out[pos:pos] = bytes([value % 256]) * (1 + value % 7)
    return bytes(out)


png_header = st.tuples(st.integers(0, 2**31), st.integers(0, 2**31), st.sampled_from([1, 2, 4, 8, 16, 3]),
                       st.sampled_from([0, 2, 3, 4, 6, 5]))


@settings(max_examples=90, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data_=st.data())
def test_fuzzed_images_load_or_raise_image_file_error(tmp_path_factory, data_):
    kind = data_.draw(st.sampled_from([*SEEDS, "png-header"]), label="kind")
    if kind == "png-header":
        width, height, depth, colour = data_.draw(png_header, label="ihdr")
        width, height = (width % 5000, height % 5000) if data_.draw(st.booleans(), label="small") else (width, height)
        raw = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
               + png_chunk(b"IDAT", zlib.compress(bytes(data_.draw(st.integers(0, 4096), label="pixels"))))
               + png_chunk(b"IEND", b""))
    else:
        raw = mutate(SEEDS[kind], data_.draw(st.lists(edit, min_size=1, max_size=4), label="edits"))
    path = tmp_path_factory.mktemp("fuzz") / f"image.{kind}"
    path.write_bytes(raw)
    for read in (lambda p: load_gray_image(p, as_stored=True), load_gray_image, prepare_image_file):
        try:
            out = read(path)
        except ImageFileError as exc:
            assert "image." in str(exc)
        else:
            assert out.dtype == np.float32 and out.ndim == 2
            assert np.all((out >= 0) & (out <= 1))
