"""Packaging: the wheel carries every shipped file and works when installed; desktop integration works.

The wheel test is the "done" test of the packaging issue: build the wheel from a
copy of the checkout, check what is inside, install it into a new virtual
environment and run ``neuralstudio --self-test`` from there (templates, data,
bundled model, prediction, main window), proving the installed copy, not the
checkout, is what ran.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import site
import struct
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from neuralstudio import __version__, desktop_integration
from neuralstudio.desktop_integration import (
    APP_ID,
    DESKTOP_FILE,
    ICON_SIZES,
    MIME_ICON,
    MIME_TYPE,
    DesktopIntegrationError,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
ICONS = ROOT / "resources" / "icons"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# --------------------------------------------------------------------------- shipped files
def test_icons_are_rendered_at_every_size_and_in_sync_with_their_sources():
    for name in ("neuralstudio", MIME_ICON):
        source = PACKAGING / "icons" / f"{name}.svg"
        assert (ICONS / f"{name}.svg").read_bytes() == source.read_bytes(), (
            f"resources/icons/{name}.svg differs from packaging/icons/{name}.svg: run packaging/render_icons.py")
        for size in ICON_SIZES:
            assert _png_size(ICONS / f"{name}-{size}.png") == (size, size)


def test_packaging_files_match_what_the_installer_writes():
    """Distribution packagers use packaging/; --install-desktop writes the same texts (Exec filled in)."""
    assert (PACKAGING / DESKTOP_FILE).read_text("utf-8") == desktop_integration.desktop_entry("neuralstudio")
    assert (PACKAGING / "neuralstudio-mime.xml").read_text("utf-8") == desktop_integration.mime_xml()


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli is not installed")
def test_appstream_metainfo_is_valid():
    out = subprocess.run(["appstreamcli", "validate", "--no-net", str(PACKAGING / f"{APP_ID}.metainfo.xml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------- desktop integration
@pytest.fixture
def xdg(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # where xdg-mime default writes
    return data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freedesktop integration is for Linux")
def test_install_desktop_into_a_temporary_xdg_data_home(xdg):
    report = desktop_integration.install()
    assert report.data_home == xdg

    entry = xdg / "applications" / DESKTOP_FILE
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(entry, encoding="utf-8")
    section = parser["Desktop Entry"]
    assert section["Type"] == "Application" and section["Name"] == "NeuralStudio"
    assert section["Icon"] == APP_ID
    assert MIME_TYPE in section["MimeType"].split(";")
    exec_args = shlex.split(section["Exec"])
    assert exec_args[-1] == "%f"
    program = Path(exec_args[0])
    assert program.is_absolute() and program.is_file() and os.access(program, os.X_OK), section["Exec"]

    hicolor = xdg / "icons" / "hicolor"
    for size in ICON_SIZES:
        assert _png_size(hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png") == (size, size)
        assert _png_size(hicolor / f"{size}x{size}" / "mimetypes" / f"{MIME_ICON}.png") == (size, size)
    assert (hicolor / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes() == (ICONS / "neuralstudio.svg").read_bytes()
    assert (xdg / "mime" / "packages" / f"{APP_ID}.xml").is_file()
    assert len(report.written) == 2 * (len(ICON_SIZES) + 1) + 2

    if shutil.which("update-mime-database"):
        # The desktop's MIME database now maps *.nsd to our type: what a file manager uses on double-click.
        assert "update-mime-database" in report.ran, report.summary()
        globs = (xdg / "mime" / "globs2").read_text("utf-8")
        assert f"{MIME_TYPE}:*.nsd" in globs
    else:
        assert "update-mime-database" in report.skipped

    removed = desktop_integration.uninstall()
    assert entry in removed and not entry.exists()
    assert not (hicolor / "48x48" / "apps" / f"{APP_ID}.png").exists()
    if shutil.which("update-mime-database"):
        assert f"{MIME_TYPE}:*.nsd" not in (xdg / "mime" / "globs2").read_text("utf-8")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freedesktop integration is for Linux")
def test_install_desktop_without_the_cache_tools_still_installs(xdg, tmp_path, monkeypatch):
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    report = desktop_integration.install()
    assert report.ran == [] and report.failed == []
    assert {"update-mime-database", "update-desktop-database", "xdg-mime"} <= set(report.skipped)
    assert (xdg / "applications" / DESKTOP_FILE).is_file()
    assert "next login" in report.summary()


def test_exec_arguments_with_spaces_are_quoted_for_the_desktop_entry():
    quote = desktop_integration._quote_exec_arg
    assert quote("/usr/bin/neuralstudio") == "/usr/bin/neuralstudio"
    assert quote("/home/a b/venv/bin/neuralstudio") == '"/home/a b/venv/bin/neuralstudio"'
    assert quote('/odd"$path') == '"/odd\\"\\$path"'


def test_install_desktop_refuses_windows_and_macos_with_advice(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(DesktopIntegrationError, match="packaging/README.md"):
        desktop_integration.install(tmp_path)
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- wheel
def _copy_checkout(dest: Path) -> Path:
    """The checkout without VCS data, caches and earlier build outputs, so the build cannot pick them up."""
    ignore = shutil.ignore_patterns(".git", "build", "dist", "__pycache__", "*.egg-info", ".venv*", "venv*",
                                    ".pytest_cache", ".ruff_cache", ".hypothesis", "runs", "out")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _build_wheel(src: Path, out: Path) -> Path:
    """``pip wheel`` the copy; offline when the test environment already has a new enough setuptools."""
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(out), str(src)]
    try:
        import setuptools

        if int(setuptools.__version__.split(".")[0]) >= 77:  # pyproject's build requirement
            cmd.insert(4, "--no-build-isolation")
    except ImportError:
        pass
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"building the wheel failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    wheels = list(out.glob("neuralstudio-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_contains_shipped_files_and_self_test_passes_in_a_fresh_venv(tmp_path):
    wheel = _build_wheel(_copy_checkout(tmp_path / "src"), tmp_path / "wheels")
    assert wheel.name.startswith(f"neuralstudio-{__version__}-")

    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [f"neuralstudio/resources/templates/{p.name}" for p in (ROOT / "resources" / "templates").glob("*.nsd")]
    wanted += [f"neuralstudio/resources/data/mnist-sample/{p.name}"
               for p in (ROOT / "resources" / "data" / "mnist-sample").iterdir()]
    wanted += [f"neuralstudio/resources/icons/{p.name}" for p in ICONS.iterdir()]
    wanted += ["neuralstudio/resources/__init__.py", "neuralstudio/models/__init__.py",
               "neuralstudio/models/digits.keras"]
    assert len(wanted) > 25
    # Every module of the package, sub-packages included (pyproject lists packages explicitly: a new
    # sub-package must be added there, or the installed app fails with ModuleNotFoundError).
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / "neuralstudio").rglob("*.py")]
    missing_modules = sorted(set(modules) - names)
    assert not missing_modules, (f"missing from {wheel.name}: {missing_modules}: add their packages to "
                                 "[tool.setuptools] packages in pyproject.toml")
    missing = sorted(set(wanted) - names)
    assert not missing, f"missing from {wheel.name}: {missing}"
    assert not any(n.startswith(("tests/", "tools/", "packaging/")) for n in names)

    # A new venv that sees the test environment's installed packages, so TensorFlow (~600 MB)
    # is not downloaded and installed again for every CI run.  `venv --system-site-packages`
    # cannot do this when the test interpreter is itself a venv (it would expose the *base*
    # interpreter's packages), so a .pth file adds the test environment's site-packages as
    # plain paths: its own .pth files (such as an editable install of NeuralStudio) are not
    # processed, and the venv's own site-packages, where the wheel goes, comes first on sys.path.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    venv_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    outer = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (venv_site / "_outer_site_packages.pth").write_text("\n".join(outer) + "\n", encoding="utf-8")
    # --ignore-installed: the outer environment may hold NeuralStudio itself (CI installs it non-editable),
    # and pip must still put the wheel into this venv.
    proc = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--ignore-installed",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    exe = venv / ("Scripts/neuralstudio.exe" if os.name == "nt" else "bin/neuralstudio")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2", NEURALSTUDIO_HOME=str(tmp_path / "home"))
    run = tmp_path / "cwd"
    run.mkdir()
    proc = subprocess.run([str(exe), "--self-test"], capture_output=True, text=True, timeout=600, cwd=run, env=env)
    report = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    assert "Self-test passed" in proc.stdout, report
    package_line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("package:"))
    assert str(venv_site.resolve()) in package_line, f"the checkout, not the installed wheel, ran: {package_line}"
    for check in ("resources", "templates", "model", "predict", "gui"):
        assert f"ok   {check}" in proc.stdout, report
