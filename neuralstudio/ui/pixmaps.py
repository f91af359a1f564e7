"""Pixmaps from numpy pixels, made so that Qt never reads freed memory.

Shared by the data preview (``ui/train/data_picker.py``) and the Mistakes gallery
(``ui/train/confusion_view.py``): both show small example images, and both must
dodge the same trap (docs/ARCHITECTURE.md, "Traps": a QImage made from Python
bytes does not keep them alive).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

__all__ = ["thumbnail_pixmap"]


def thumbnail_pixmap(pixels: Any, side: int) -> QPixmap:
    """uint8 ``(h, w)`` or ``(h, w, 3)`` pixels fitted into ``side`` x ``side``: small images scaled up crisp
    (square pixels, as the network saw them), large ones smoothly."""
    import numpy as np

    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if pixels.ndim == 2 else QImage.Format.Format_RGB888
    # QImage only points at the bytes it is given, and the bindings keep no reference to them: they must
    # outlive it until the copy that owns its own. A temporary `pixels.tobytes()` can be freed before
    # `.copy()` reads it (the same use-after-free: PyMuPDF#1210, Pillow#1370). docs/ARCHITECTURE.md, "Traps".
    data = pixels.tobytes()
    image = QImage(data, w, h, w * (1 if pixels.ndim == 2 else 3), fmt).copy()
    del data
    mode = Qt.TransformationMode.FastTransformation if max(h, w) <= side \
        else Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode)
