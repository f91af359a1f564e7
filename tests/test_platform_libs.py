"""On a minimal Linux the window needs X11 libraries that PySide6 does not bring: say which, and how to install them."""

from __future__ import annotations

import sys

import pytest

from neuralstudio import platform_libs
from neuralstudio.cli import main


def test_a_missing_library_is_named_with_the_install_command():
    missing = platform_libs.missing_libraries({"libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
                                               "libneuralstudio-nonexistent.so.9": ("x", "y")})
    assert "libneuralstudio-nonexistent.so.9" in missing
    advice = platform_libs.install_advice(["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"])
    assert "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0" in advice
    assert "sudo dnf install libxkbcommon-x11 xcb-util-cursor" in advice


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 libraries are a Linux matter")
def test_gui_refuses_to_start_with_the_advice_instead_of_qts_abort(monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(platform_libs, "missing_libraries", lambda names=None: ["libxcb-cursor.so.0"])
    assert main(["gui"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The window cannot start: Qt's X11 platform needs system libraries")
    assert "sudo apt-get install libxcb-cursor0" in err


def test_offscreen_needs_no_x11_libraries(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert platform_libs.check_window_libraries() is None
