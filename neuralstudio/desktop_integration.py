"""Put NeuralStudio in the current user's desktop menu and make ``.nsd`` files open it.

``neuralstudio --install-desktop`` (or ``python -m neuralstudio.desktop_integration``)
writes, under ``$XDG_DATA_HOME`` (``~/.local/share`` by default), the freedesktop
files a Linux desktop reads:

- ``applications/io.github.neuralstudio.NeuralStudio.desktop``: the menu entry,
  whose ``Exec`` is the absolute path of *this* installation's ``neuralstudio``
  command, because a virtual environment's ``bin/`` is usually not on the
  desktop session's ``PATH``;
- ``mime/packages/io.github.neuralstudio.NeuralStudio.xml``: the
  ``application/x-neuralstudio-design`` type for ``*.nsd`` files;
- ``icons/hicolor/<size>/{apps,mimetypes}/...``: the app and document icons
  (PNG at every size, plus the SVG as ``scalable``).

Then it refreshes the desktop's caches with ``update-mime-database``,
``update-desktop-database`` and ``gtk-update-icon-cache`` and makes NeuralStudio
the default for design files with ``xdg-mime``, each only when the tool is
installed: a missing tool only means the desktop picks the change up at the next
login.  No Qt and no Keras here, so it runs in a fraction of a second.

The texts of the entry and the MIME type are built here (the ``Exec`` line has to
be filled in anyway); ``packaging/`` holds the same files for distribution
packagers, and ``tests/test_packaging.py`` checks that the two agree.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuralstudio.core.atomic import atomic_path, atomic_write_text
from neuralstudio.core.errors import UserError
from neuralstudio.core.paths import resources_dir

APP_ID = "io.github.neuralstudio.NeuralStudio"
DESKTOP_FILE = f"{APP_ID}.desktop"
MIME_TYPE = "application/x-neuralstudio-design"
MIME_ICON = MIME_TYPE.replace("/", "-")
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
TOOL_TIMEOUT_S = 30

_DESKTOP_TEMPLATE = """\
[Desktop Entry]
Type=Application
Version=1.5
Name=NeuralStudio
GenericName=Neural Network Designer
Comment=Design, train and explore neural networks visually
Exec={exec_line} %f
Icon={icon}
Terminal=false
Categories=Education;Science;ArtificialIntelligence;Development;
Keywords=neural;network;deep;learning;keras;tensorflow;mnist;machine;
MimeType={mime};
StartupNotify=true
"""

_MIME_XML = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="{MIME_TYPE}">
    <comment>NeuralStudio design</comment>
    <sub-class-of type="application/json"/>
    <generic-icon name="application-x-generic"/>
    <icon name="{MIME_ICON}"/>
    <glob pattern="*.nsd"/>
  </mime-type>
</mime-info>
"""


class DesktopIntegrationError(UserError, OSError):
    """Desktop integration cannot be done here; the message says why and what to do instead."""


@dataclass
class InstallReport:
    """What :func:`install` did, for the one-screen summary the CLI prints."""

    data_home: Path
    exec_line: str
    written: list[Path] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Installed the NeuralStudio menu entry, icons and the .nsd file type under {self.data_home}",
                 f"  {len(self.written)} files written; the menu entry runs: {self.exec_line}"]
        if self.ran:
            lines.append(f"  refreshed: {', '.join(self.ran)}")
        if self.skipped:
            lines.append(f"  not installed here, skipped: {', '.join(self.skipped)} "
                         "(the desktop picks the change up at the next login)")
        for msg in self.failed:
            lines.append(f"  warning: {msg}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- texts
def desktop_entry(exec_line: str = "neuralstudio") -> str:
    """The ``.desktop`` file text whose ``Exec`` runs ``exec_line`` (already quoted) with the file clicked."""
    return _DESKTOP_TEMPLATE.format(exec_line=exec_line, icon=APP_ID, mime=MIME_TYPE)


def mime_xml() -> str:
    """The shared-mime-info XML that declares ``*.nsd`` as :data:`MIME_TYPE`."""
    return _MIME_XML


def _quote_exec_arg(arg: str) -> str:
    """Quote one ``Exec`` argument as the Desktop Entry spec wants (double quotes, few escapes)."""
    if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`%'):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def launch_command() -> list[str]:
    """The command that starts *this* installation of NeuralStudio, as an argument list.

    A frozen (PyInstaller) app is its own executable; otherwise the ``neuralstudio``
    script beside the running interpreter (the one pip installed with this copy),
    else ``<python> -m neuralstudio``.
    """
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    bindir = Path(sys.executable).parent
    for name in ("neuralstudio", "neuralstudio.exe"):
        script = bindir / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [str(Path(sys.executable)), "-m", "neuralstudio"]


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute (as the XDG spec says)."""
    env = os.environ.get("XDG_DATA_HOME", "")
    if env and Path(env).is_absolute():
        return Path(env)
    return Path.home() / ".local" / "share"


# --------------------------------------------------------------------------- install / uninstall
def _planned_icons(base: Path) -> list[tuple[Path, Path]]:
    """(source, destination) pairs for every icon that is installed."""
    icons = resources_dir() / "icons"
    hicolor = base / "icons" / "hicolor"
    pairs: list[tuple[Path, Path]] = []
    for source_name, kind, target_name in (("neuralstudio", "apps", APP_ID),
                                           (MIME_ICON, "mimetypes", MIME_ICON)):
        for size in ICON_SIZES:
            pairs.append((icons / f"{source_name}-{size}.png",
                          hicolor / f"{size}x{size}" / kind / f"{target_name}.png"))
        pairs.append((icons / f"{source_name}.svg", hicolor / "scalable" / kind / f"{target_name}.svg"))
    return pairs


def _check_platform() -> None:
    if sys.platform.startswith(("win", "darwin", "cygwin")):
        raise DesktopIntegrationError(
            "Desktop integration (--install-desktop) is for Linux and other freedesktop.org desktops. "
            "On Windows and macOS build the standalone app (see packaging/README.md) and start it from there."
        )


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    target.chmod(0o644)


def _run_tool(report: InstallReport, name: str, args: list[str]) -> None:
    """Run a desktop cache tool if it is installed; note what happened without ever failing the install."""
    exe = shutil.which(name)
    if exe is None:
        report.skipped.append(name)
        return
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.failed.append(f"{name} could not run ({exc}); the desktop picks the change up at the next login.")
        return
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        report.failed.append(f"{name} exited with {proc.returncode}"
                             + (f": {detail[-1]}" if detail else "")
                             + "; the desktop picks the change up at the next login.")
    else:
        report.ran.append(name)


def install(base: Path | None = None, *, refresh: bool = True) -> InstallReport:
    """Install the menu entry, icons and MIME type for the current user.

    Args:
        base: the XDG data folder to install into; :func:`data_home` by default.
        refresh: run the desktop's cache tools afterwards (when they are installed).

    Raises:
        DesktopIntegrationError: not a freedesktop platform, or a shipped icon is
            missing (a broken installation), or a file cannot be written.
    """
    _check_platform()
    base = Path(base) if base is not None else data_home()
    command = launch_command()
    exec_line = " ".join(_quote_exec_arg(a) for a in command)
    report = InstallReport(data_home=base, exec_line=shlex.join(command))
    icons = _planned_icons(base)
    missing = [str(src) for src, _ in icons if not src.is_file()]
    if missing:
        raise DesktopIntegrationError(
            f"The NeuralStudio icons are missing from this installation ({missing[0]} and "
            f"{len(missing) - 1} more): reinstall NeuralStudio (pip install --force-reinstall neuralstudio)."
        )
    try:
        for src, dst in icons:
            _copy(src, dst)
            report.written.append(dst)
        mime_file = base / "mime" / "packages" / f"{APP_ID}.xml"
        atomic_write_text(mime_file, mime_xml())
        report.written.append(mime_file)
        entry = base / "applications" / DESKTOP_FILE
        atomic_write_text(entry, desktop_entry(exec_line))
        entry.chmod(0o755)  # some desktops only trust executable launchers
        report.written.append(entry)
    except OSError as exc:
        raise DesktopIntegrationError(
            f"Could not write the desktop files under {base} ({exc.strerror or exc}): check that the folder "
            "is writable, or set XDG_DATA_HOME to one that is."
        ) from None
    if refresh:
        _run_tool(report, "update-mime-database", [str(base / "mime")])
        _run_tool(report, "update-desktop-database", [str(base / "applications")])
        hicolor = base / "icons" / "hicolor"
        if (hicolor / "index.theme").exists():  # gtk-update-icon-cache refuses a theme folder without one
            _run_tool(report, "gtk-update-icon-cache", ["-f", "-t", str(hicolor)])
        _run_tool(report, "xdg-mime", ["default", DESKTOP_FILE, MIME_TYPE])
    return report


def uninstall(base: Path | None = None, *, refresh: bool = True) -> list[Path]:
    """Remove what :func:`install` wrote; returns the files removed (missing ones are ignored)."""
    _check_platform()
    base = Path(base) if base is not None else data_home()
    targets = [dst for _, dst in _planned_icons(base)]
    targets += [base / "mime" / "packages" / f"{APP_ID}.xml", base / "applications" / DESKTOP_FILE]
    removed = []
    for path in targets:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
    if refresh:
        report = InstallReport(data_home=base, exec_line="")
        _run_tool(report, "update-mime-database", [str(base / "mime")])
        _run_tool(report, "update-desktop-database", [str(base / "applications")])
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m neuralstudio.desktop_integration [--uninstall]``: the same as ``neuralstudio --install-desktop``."""
    parser = argparse.ArgumentParser(prog="python -m neuralstudio.desktop_integration",
                                     description="Install (or remove) the NeuralStudio menu entry, icons and "
                                                 ".nsd file type for the current user.")
    parser.add_argument("--uninstall", action="store_true", help="remove what an earlier install wrote")
    args = parser.parse_args(argv)
    try:
        if args.uninstall:
            removed = uninstall()
            print(f"Removed {len(removed)} NeuralStudio desktop files from {data_home()}.")
        else:
            print(install().summary())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
