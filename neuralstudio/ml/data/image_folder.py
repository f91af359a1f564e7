"""A folder with one sub-folder of images per class (the folder name is the class).

Apart because images are read with the same reader as ``predict`` uses
(:func:`neuralstudio.ml.preprocess.load_gray_image`, imported when a folder is
read), and because a folder can hold any number of files of any size: the count
is bounded (:data:`MAX_IMAGES`) and the whole set is checked against the memory
budget from the first image before the rest are decoded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neuralstudio.ml.data.budget import _check_memory
from neuralstudio.ml.data.dataset import DataError, _folder_classes, _list_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGES = 500_000  # a guard against pointing the image-folder loader at a whole disk


def _size(x: np.ndarray) -> str:
    return f"{x.shape[2]}x{x.shape[1]}"


def _read_image_classes(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from ``folder/<class>/*``, as greyscale float32 in [0, 1], their labels and the class names.

    The folder names are the class names; folders named by class numbers ("0" to "9", one perhaps missing)
    keep those numbers as labels (:func:`~neuralstudio.ml.data.dataset._folder_classes`).

    Each image goes through :func:`neuralstudio.ml.preprocess.load_gray_image`
    (the reader ``predict`` uses), which checks its size before decoding it,
    turns it upright from its EXIF orientation and scales 16-bit and float
    images by their real range.  The whole set is checked against the memory
    budget from the first image's size and the number of files, before the
    rest are read.
    """
    folders = sorted(p.name for p in _list_dir(folder) if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise DataError(
            f"{folder} has {len(folders)} class sub-folder{'s' if len(folders) != 1 else ''}: a classifier needs "
            "at least two (one sub-folder of images per class)."
        )
    classes, label_of = _folder_classes(folders)
    files = _image_files(folder, folders, label_of)
    labels = np.asarray([ci for ci, _f in files], dtype=np.int64)
    x: np.ndarray | None = None
    first: dict[tuple[int, int], Path] = {}
    for i, (_ci, f) in enumerate(files):
        arr = _read_training_image(f)
        if x is None:
            _check_memory(len(files) * arr.size * 4, f"The {len(files):,} images of {_size(arr[None])} in {folder}",
                          "use fewer or smaller images.")
            x = np.empty((len(files), *arr.shape), dtype=np.float32)
        first.setdefault(arr.shape, f)
        if arr.shape == x.shape[1:]:
            x[i] = arr
    if len(first) > 1:
        sizes = "; ".join(f"{w}x{h} (e.g. {p.relative_to(folder)})" for (h, w), p in list(first.items())[:4])
        raise DataError(
            f"The images in {folder} have different sizes: {sizes}. Resize them all to one size "
            "(28x28 for MNIST-like digits) before training."
        )
    assert x is not None  # every class folder holds at least one image
    return x, labels, classes


def _image_files(folder: Path, folders: list[str], label_of: dict[str, int]) -> list[tuple[int, Path]]:
    """``(label, file)`` for every image of every class folder, at most :data:`MAX_IMAGES` in all."""
    files: list[tuple[int, Path]] = []
    for cls in folders:
        ci = label_of[cls]
        found = []
        try:
            with os.scandir(folder / cls) as entries:
                for entry in entries:
                    if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                        found.append(folder / cls / entry.name)
                        if len(files) + len(found) > MAX_IMAGES:
                            raise DataError(f"{folder} holds more than {MAX_IMAGES:,} images: use a smaller folder.")
        except OSError as exc:
            raise DataError(f"{folder / cls} cannot be read ({exc.strerror or exc}): check that you may open "
                            "it.") from None
        if not found:
            raise DataError(
                f"The class folder {folder / cls} holds no images ({', '.join(IMAGE_SUFFIXES)}): add some or "
                "remove the folder."
            )
        files.extend((ci, f) for f in sorted(found))
    return files


def _read_training_image(path: Path) -> np.ndarray:
    """One training image as stored (grey levels in [0, 1]); an unreadable or oversized one is a DataError."""
    from neuralstudio.ml.preprocess import ImageFileError, load_gray_image

    try:
        return load_gray_image(path, as_stored=True)
    except ImageFileError as exc:
        raise DataError(f"{exc} Or remove it from the training images.") from None
