"""Turn a drawn or photographed digit into the 28x28 image an MNIST network expects.

MNIST was made in a particular way (LeCun et al.): each digit was cropped to its
ink, scaled so that its longer side is 20 px (anti-aliased, aspect ratio kept),
and placed in a 28x28 frame so that its centre of mass sits in the middle.  A
network trained on MNIST only recognises digits prepared the same way: a digit
drawn small in a corner of a large canvas, scaled naively to 28x28, is a few
grey pixels the network has never seen.  So the canvas and image files both go
through :func:`prepare_digit`.

Pure numpy and Pillow (no Qt, no Keras), so the CLI, the GUI and the tests share it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neuralstudio.core.errors import UserError

SIZE = 28  # the frame MNIST digits live in
BOX = 20  # the longer side of the digit inside the frame
INK_THRESHOLD = 0.1  # a pixel with at least this share of the brightest ink counts for the bounding box
MAX_IMAGE_PIXELS = 50_000_000  # refuse decompression bombs with a message instead of a warning


class ImageFileError(UserError, ValueError):
    """An image file that cannot be read as a digit."""


def _as_float(gray: np.ndarray) -> np.ndarray:
    """``gray`` as float32 in [0, 1] (uint8 and 0..255 floats are divided by 255)."""
    arr = np.asarray(gray)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., :3].mean(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got an array of shape {arr.shape}")
    out = arr.astype(np.float32, copy=True)
    if np.issubdtype(arr.dtype, np.integer) or (out.size and float(out.max()) > 1.0):
        out /= 255.0
    np.nan_to_num(out, copy=False)
    return np.clip(out, 0.0, 1.0)


def _resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Anti-aliased resize of a float image (Pillow's area-weighted box filter down, bicubic-free up)."""
    from PIL import Image

    img = Image.fromarray(arr.astype(np.float32), mode="F")
    src_h, src_w = arr.shape
    # Shrinking: the box filter averages every source pixel (what anti-aliasing means here).
    # Enlarging a tiny digit: bilinear keeps edges soft without the ringing of Lanczos.
    resample = Image.Resampling.BOX if (height <= src_h and width <= src_w) else Image.Resampling.BILINEAR
    return np.asarray(img.resize((width, height), resample=resample), dtype=np.float32)


def ink_bbox(arr: np.ndarray, threshold: float = INK_THRESHOLD) -> tuple[int, int, int, int] | None:
    """The ``(top, bottom, left, right)`` bounds (exclusive ends) of the ink, or None for a blank image."""
    peak = float(arr.max()) if arr.size else 0.0
    if peak <= 1e-3:
        return None
    mask = arr >= peak * threshold
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def prepare_digit(gray: np.ndarray) -> np.ndarray:
    """Prepare a white-on-black digit image the way MNIST digits were prepared.

    Crop to the ink's bounding box, scale the longer side to 20 px keeping the
    aspect ratio, place the result in a 28x28 frame with its centre of mass at
    the centre, and stretch the values so the strongest ink is 1.

    Args:
        gray: a 2-D array (any size), white (high) ink on a black (low) background;
            uint8 0..255 or float 0..1.

    Returns:
        a ``(28, 28)`` float32 array in [0, 1]; all zeros for a blank image.
    """
    arr = _as_float(gray)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    box = ink_bbox(arr)
    if box is None:
        return out
    top, bottom, left, right = box
    crop = arr[top:bottom, left:right]
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_h = max(1, min(BOX, round(h * scale)))
    new_w = max(1, min(BOX, round(w * scale)))
    small = np.clip(_resize(crop, new_h, new_w), 0.0, None)
    peak = float(small.max())
    if peak <= 0.0:
        return out
    small /= peak  # a thin stroke scaled down is grey; MNIST ink is saturated in the middle of a stroke

    total = float(small.sum())
    ys, xs = np.indices(small.shape, dtype=np.float64)
    com_y = float((ys * small).sum() / total)
    com_x = float((xs * small).sum() / total)
    centre = (SIZE - 1) / 2.0
    # Integer shift so the centre of mass lands in the middle, kept inside the frame.
    top_at = int(np.clip(round(centre - com_y), 0, SIZE - new_h))
    left_at = int(np.clip(round(centre - com_x), 0, SIZE - new_w))
    out[top_at : top_at + new_h, left_at : left_at + new_w] = small
    return np.clip(out, 0.0, 1.0)


def load_gray_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG/JPEG digit as a white-on-black float32 array in [0, 1] (original size).

    Photos and scans are usually dark ink on light paper, the opposite of MNIST,
    so an image whose border is mostly light is inverted.  The background level
    (the border's median) is then subtracted so grey paper becomes black, and
    the strongest ink is stretched to white.
    Transparent pixels count as background.

    Raises:
        ImageFileError: the file is missing, not an image, or too large.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageFileError(f"{p}: no such image file. Check the path.")
    if p.is_dir():
        raise ImageFileError(f"{p} is a folder; give a PNG or JPEG image file.")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(p) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                alpha = np.asarray(rgba, dtype=np.float32)[..., 3] / 255.0
                lum = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
                # Transparent pixels take the colour opposite to the ink so they read as background.
                ink_is_dark = float((lum * alpha).sum()) < 0.5 * float(alpha.sum())
                bg = 1.0 if ink_is_dark else 0.0
                arr = lum * alpha + bg * (1.0 - alpha)
            else:
                arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise ImageFileError(f"{p} is not an image NeuralStudio can read; use a PNG or JPEG file.") from None
    except Image.DecompressionBombError:
        raise ImageFileError(f"{p} is too large ({MAX_IMAGE_PIXELS:,} pixels at most); resize it first.") from None
    except OSError as exc:
        raise ImageFileError(f"{p} could not be read as an image ({exc}); is the file complete?") from None
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ImageFileError(f"{p} has no pixels.")

    border = np.concatenate([arr[0, :], arr[-1, :], arr[:, 0], arr[:, -1]])
    background = float(np.median(border))
    if background > 0.5:
        arr = 1.0 - arr
        background = 1.0 - background
    arr = np.clip(arr - background, 0.0, None)
    peak = float(arr.max())
    if peak > 0.0:
        arr /= peak  # the strongest ink becomes white, as on the canvas
    return arr.astype(np.float32)


def prepare_image_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG/JPEG digit and prepare it like MNIST (see :func:`prepare_digit`).

    Raises:
        ImageFileError: the file cannot be read, or it holds no ink.
    """
    arr = load_gray_image(path)
    prepared = prepare_digit(arr)
    if not prepared.any():
        raise ImageFileError(
            f"{path} looks blank: no digit found (it should be one digit, dark on light or light on dark)."
        )
    return prepared
