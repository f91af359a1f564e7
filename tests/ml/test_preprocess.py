"""MNIST-style preparation of drawn digits and image files."""

import numpy as np
import pytest
from PIL import Image

from neuralstudio.core.errors import UserError
from neuralstudio.ml.preprocess import ImageFileError, load_gray_image, prepare_digit, prepare_image_file

pytestmark = pytest.mark.backend_neutral  # image preparation is NumPy and Pillow


def seven(size: int, top: int, left: int, height: int, thickness: int) -> np.ndarray:
    """A crude white-on-black '7' of the given height placed at (top, left) on a size x size canvas."""
    img = np.zeros((size, size), dtype=np.uint8)
    width = int(height * 0.7)
    img[top : top + thickness, left : left + width] = 255
    for k in range(height):
        x = left + width - 1 - int(k * width * 0.6 / height)
        img[top + k, max(left, x - thickness) : x + 1] = 255
    return img


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(x.shape)
    return float((ys * x).sum() / x.sum()), float((xs * x).sum() / x.sum())


def test_blank_gives_zeros():
    out = prepare_digit(np.zeros((280, 280), np.uint8))
    assert out.shape == (28, 28) and out.dtype == np.float32 and not out.any()


def test_crop_scale_and_centre_like_mnist():
    out = prepare_digit(seven(280, 30, 40, 200, 18))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() == pytest.approx(1.0)
    rows = np.flatnonzero(out.max(axis=1) > 0.05)
    cols = np.flatnonzero(out.max(axis=0) > 0.05)
    assert rows[-1] - rows[0] + 1 == 20  # the longer side (height) is 20 px
    assert 12 <= cols[-1] - cols[0] + 1 <= 16  # aspect ratio kept (0.7)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.75 and abs(cx - 13.5) <= 0.75
    assert len(np.unique(out)) > 5  # anti-aliased, not binary


def test_small_off_centre_digit_matches_large_centred_one():
    big = prepare_digit(seven(280, 40, 70, 200, 20))
    small = prepare_digit(seven(280, 200, 200, 60, 6))  # small, in the bottom-right corner
    corner = prepare_digit(seven(280, 2, 2, 80, 8))  # top-left corner
    for other in (small, corner):
        corr = np.corrcoef(big.ravel(), other.ravel())[0, 1]
        assert corr > 0.8, corr


def test_accepts_float_and_any_size():
    img = seven(600, 100, 100, 350, 30).astype(np.float32) / 255.0
    out = prepare_digit(img)
    assert out.shape == (28, 28) and out.max() == pytest.approx(1.0)
    tiny = np.zeros((10, 10), np.float32)
    tiny[2:8, 4] = 1.0  # a 6-px "1" is enlarged to 20 px
    out = prepare_digit(tiny)
    assert (out.max(axis=1) > 0.05).sum() == 20


def test_image_file_dark_on_light_is_inverted(tmp_path):
    light = 255 - seven(200, 20, 30, 150, 14)
    Image.fromarray(light).save(tmp_path / "paper.png")
    Image.fromarray(seven(200, 20, 30, 150, 14)).convert("RGB").save(tmp_path / "screen.jpg", quality=95)
    a = prepare_image_file(tmp_path / "paper.png")
    b = prepare_image_file(tmp_path / "screen.jpg")
    assert a.shape == (28, 28) and a[13, 13] >= 0 and a.max() == pytest.approx(1.0)
    assert a[0, 0] == 0.0  # background is black after inversion
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_grey_paper_background_removed(tmp_path):
    paper = np.full((120, 120), 200, np.uint8)
    paper[20:100, 55:65] = 30  # a dark "1" on grey paper
    Image.fromarray(paper).save(tmp_path / "grey.png")
    gray = load_gray_image(tmp_path / "grey.png")
    assert gray[0, 0] == 0.0 and gray[50, 60] == pytest.approx(1.0)


def test_transparent_png(tmp_path):
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[10:90, 45:55] = (0, 0, 0, 255)  # black ink, transparent elsewhere
    Image.fromarray(rgba, "RGBA").save(tmp_path / "ink.png")
    out = prepare_image_file(tmp_path / "ink.png")
    assert out.max() == pytest.approx(1.0) and out[0, 0] == 0.0


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00truncated"])
def test_unreadable_files_give_clear_errors(tmp_path, content):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    with pytest.raises(ImageFileError) as err:
        prepare_image_file(bad)
    assert isinstance(err.value, UserError)
    assert "bad.png" in str(err.value) and ("PNG or JPEG" in str(err.value) or "read" in str(err.value))


def test_missing_and_blank_files(tmp_path):
    with pytest.raises(ImageFileError, match="no such image file"):
        prepare_image_file(tmp_path / "nope.png")
    Image.fromarray(np.full((50, 50), 255, np.uint8)).save(tmp_path / "white.png")
    with pytest.raises(ImageFileError, match="blank"):
        prepare_image_file(tmp_path / "white.png")
