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
MAX_IMAGE_PIXELS = 4096 * 4096  # checked before decoding: a small file can declare billions of pixels


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


def load_gray_image(path: str | os.PathLike[str], *, as_stored: bool = False) -> np.ndarray:
    """Read an image file as a float32 grey array in [0, 1] (original size, upright).

    Predicting and training read images through this one function, so that a
    16-bit PNG, a float TIFF or a sideways phone photo means the same in both:

    * The size is checked before any pixel is decoded (opening is lazy): a
      small file can declare billions of pixels.  At most ``MAX_IMAGE_PIXELS``.
    * The EXIF orientation is applied, so a photo taken sideways is upright.
    * Grey levels are scaled by the image's real range, never clipped at 255:
      8-bit images (and colour, palette, 1-bit) by 255; 16-bit ones (``I;16``)
      by 65535; 32-bit integers (``I``) by 65535 too while they stay within
      0..65535 (Pillow and most TIFF writers keep 16-bit data that way), else
      by their own maximum (a 32-bit range of which only the maximum is
      known); negative integers min-max.  Floats (``F``) stay as they are
      within [0, 1], else min-max; NaN and infinite pixels become 0.

    With ``as_stored=False`` (a digit to predict), photos and scans, usually
    dark ink on light paper (the opposite of MNIST), are made white on black:
    transparent pixels count as background, an image whose border is mostly
    light is inverted, the background level (the border's median) is
    subtracted so grey paper becomes black, and the strongest ink is stretched
    to white.  With ``as_stored=True`` (a training image) the grey levels are
    returned as stored, alpha ignored.

    The standalone predict.py that the export writes copies this function's
    source, so everything it needs is inside it.

    Raises:
        ImageFileError: the file is missing, not an image, damaged, or too large.
    """
    import struct
    import warnings

    from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError, WebPImagePlugin  # noqa: F401

    # Decoders for the formats a digit or a training image comes in (those this Pillow has); others are never
    # tried: EPS would run Ghostscript, and each rarely used decoder is more code that a hostile file can reach.
    Image.preinit()  # PNG, JPEG, BMP, GIF, PPM; the TIFF and WebP decoders are registered by their imports above
    formats = [f for f in ("PNG", "JPEG", "BMP", "DIB", "GIF", "WEBP", "TIFF", "PPM") if f in Image.OPEN]
    # What Pillow's decoders raise on damaged or hostile files.
    damaged = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, struct.error,
               ZeroDivisionError, OverflowError)

    def grey_levels(img: Image.Image) -> np.ndarray:
        """The grey levels in [0, 1], scaled by the image's real range (see above)."""
        if img.mode not in ("I", "F") and not img.mode.startswith("I;"):
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        arr = np.asarray(img)
        if arr.dtype.kind == "f":
            arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        lo = float(arr.min()) if arr.size else 0.0
        hi = float(arr.max()) if arr.size else 0.0
        if arr.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
            return arr.astype(np.float32)
        if arr.dtype.kind in "ui" and lo >= 0:
            return (arr.astype(np.float32) / np.float32(max(hi, 65535.0))).astype(np.float32)
        if hi <= lo:
            return np.zeros(arr.shape, np.float32)
        return ((arr.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)

    def digit_levels(img: Image.Image) -> np.ndarray:
        """Grey levels of a digit to predict: transparent pixels take the colour opposite to the ink."""
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            alpha = np.asarray(rgba, dtype=np.float32)[..., 3] / 255.0
            lum = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
            ink_is_dark = float((lum * alpha).sum()) < 0.5 * float(alpha.sum())
            bg = 1.0 if ink_is_dark else 0.0
            return lum * alpha + bg * (1.0 - alpha)
        return grey_levels(img)

    p = Path(path)
    if not p.exists():
        raise ImageFileError(f"{p}: no such image file. Check the path.")
    if p.is_dir():
        raise ImageFileError(f"{p} is a folder; give a PNG or JPEG image file.")
    if not p.is_file():
        raise ImageFileError(f"{p} is not a regular file; give a PNG or JPEG image file.")
    side = int(MAX_IMAGE_PIXELS ** 0.5)
    too_large = f"NeuralStudio reads images of at most {MAX_IMAGE_PIXELS:,} pixels ({side}x{side}): shrink it first."
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; here that is an error like any other.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # "Corrupt EXIF data" and the like: the image is read all the same, or refused with a message.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with Image.open(p, formats=formats) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageFileError(f"{p} is {width}x{height} pixels; {too_large}")
                img.load()
                try:
                    ImageOps.exif_transpose(img, in_place=True)
                except damaged:
                    pass  # unreadable EXIF: keep the pixels as stored rather than refuse the image
                arr = grey_levels(img) if as_stored else digit_levels(img)
    except ImageFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageFileError(f"{p} has far too many pixels; {too_large}") from None
    except UnidentifiedImageError:
        raise ImageFileError(f"{p} cannot be read as an image (not a format NeuralStudio reads); "
                             "use a PNG or JPEG file.") from None
    except damaged as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ImageFileError(f"{p} cannot be read as an image ({reason}); is the file complete? "
                             "Save it again as PNG or JPEG.") from None
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ImageFileError(f"{p} has no pixels.")
    if as_stored:
        return arr

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
