"""Which system libraries the window needs on Linux, and what to install when some are missing.

PySide6's wheel brings Qt but not the X11 libraries its ``xcb`` platform plugin links against. On a
minimal Linux (a fresh Debian/Ubuntu, a container, WSL) ``libxcb-cursor0`` and a few others are not
installed, and Qt then aborts the process with only its generic "Could not load the Qt platform
plugin "xcb"" message. Loading the same libraries first with ``ctypes`` names exactly what is missing
without starting Qt, so ``neuralstudio gui`` and ``--self-test`` can say what to install instead.

The list is the plugin's own (``objdump -p libqxcb.so libQt6XcbQpa.so.6``, PySide6 6.9-6.11).
"""

from __future__ import annotations

import ctypes
import os
import sys

#: shared library -> (Debian/Ubuntu package, Fedora package)
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "mesa-libGL"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}


def uses_xcb() -> bool:
    """Whether Qt would start its X11 plugin here: Linux, and no other platform chosen."""
    if not sys.platform.startswith("linux"):
        return False
    chosen = os.environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return not os.environ.get("WAYLAND_DISPLAY")  # Qt prefers Wayland when a Wayland session is running


def missing_libraries(names: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """The libraries of ``names`` (default: the X11 plugin's) that cannot be loaded."""
    missing = []
    for lib in names or XCB_LIBRARIES:
        try:
            ctypes.CDLL(lib)
        except OSError:
            missing.append(lib)
    return missing


def install_advice(missing: list[str]) -> str:
    """One message: what is missing and the command that installs it (Debian/Ubuntu, Fedora)."""
    debian = sorted({XCB_LIBRARIES.get(m, (m, m))[0] for m in missing})
    fedora = sorted({XCB_LIBRARIES.get(m, (m, m))[1] for m in missing})
    return (f"The window cannot start: Qt's X11 platform needs system libraries that are not installed "
            f"({', '.join(missing)}). Install them with: sudo apt-get install {' '.join(debian)} "
            f"(Debian, Ubuntu) or sudo dnf install {' '.join(fedora)} (Fedora), then start NeuralStudio again. "
            "The command line works without them.")


def check_window_libraries() -> str | None:
    """The advice when the window would fail for missing libraries; None when it can start (or is not X11)."""
    if not uses_xcb():
        return None
    missing = missing_libraries()
    return install_advice(missing) if missing else None
