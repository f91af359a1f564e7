"""Render the hand-drawn SVG icons in ``packaging/icons/`` to the PNG sizes desktops want.

One command, from the repository root::

    python packaging/render_icons.py

It writes ``resources/icons/<name>.svg`` (a copy of the source) and
``resources/icons/<name>-<size>.png`` for every size in :data:`SIZES`; those files
ship in the wheel and the frozen app, are the window icon at run time, and are
what ``neuralstudio --install-desktop`` copies into the user's hicolor icon theme.
Rendering uses PySide6's own QtSvg (already a dependency), offscreen, so no extra
tool is needed.  Run it again after editing an SVG; the PNGs are committed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "packaging" / "icons"
TARGET = ROOT / "resources" / "icons"
NAMES = ["neuralstudio", "application-x-neuralstudio-design"]
SIZES = [16, 32, 48, 64, 128, 256, 512]


def render(svg: Path, png: Path, size: int) -> None:
    """Render ``svg`` into a square ``size`` x ``size`` PNG with a transparent background."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG: fix it and run this script again.")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    if not image.save(str(png), "PNG"):
        raise SystemExit(f"Could not write {png}: check that the folder is writable.")


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # fonts for the <text> in the document icon
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        svg = SOURCES / f"{name}.svg"
        shutil.copyfile(svg, TARGET / svg.name)
        for size in SIZES:
            render(svg, TARGET / f"{name}-{size}.png", size)
        print(f"{name}: {', '.join(str(s) for s in SIZES)} px -> {TARGET}")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
