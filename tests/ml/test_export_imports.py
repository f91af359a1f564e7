"""The import rules the export registry relies on: no cycles inside ``ml``, and a ``--help`` that loads no Keras.

CI runs ``lint-imports`` too (``.ci/run``); running it here (about a second) shows a cycle in the test run of the
change that made it, not only in CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_neutral  # import rules


ROOT = Path(__file__).resolve().parents[2]


def _lint_imports() -> str:
    found = shutil.which("lint-imports") or shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    return found


def test_the_import_contracts_hold():
    """Every contract in pyproject.toml, including "no import cycles inside ml" and the cheap registry."""
    proc = subprocess.run([_lint_imports(), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for name in ("no import cycles inside ml", "the export-format registry is cheap to import"):
        assert f"{name} KEPT" in proc.stdout


def test_the_command_line_help_imports_neither_keras_nor_the_exporter():
    """``neuralstudio --help`` builds the export command from the registry alone."""
    code = ("import sys, neuralstudio.cli\n"
            "neuralstudio.cli.build_parser()\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {'keras', 'tensorflow'}\n"
            "                      or m in {'neuralstudio.ml.export', 'neuralstudio.ml.verify'})))\n"
            "print('registry' if 'neuralstudio.ml.export_formats' in sys.modules else 'no registry')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True)
    heavy, registry = proc.stdout.splitlines()
    assert heavy == "" and registry == "registry"
