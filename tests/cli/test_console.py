"""A command prints its own output only; ``--verbose`` adds what TensorFlow and Keras print."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from neuralstudio.cli.console import quiet_console

pytestmark = pytest.mark.backend_neutral  # terminal output


ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "models" / "digits.keras"
NOISE = ("absl", "InitializeLog", "cuda", "cudart", "oneDNN", "UserWarning", "Do not pass")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as in a fresh terminal
    return subprocess.run([sys.executable, "-m", "neuralstudio", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)


def test_info_prints_its_report_and_nothing_of_tensorflow():
    res = _cli("info", str(BUNDLED))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Model "), res.stdout[:200]
    assert res.stderr == "", res.stderr  # not a line of TensorFlow's start-up chatter
    assert not any(word in res.stdout for word in NOISE)


def test_an_error_is_still_one_plain_line_on_stderr(tmp_path):
    res = _cli("info", str(tmp_path / "missing.keras"))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.keras'} does not exist: check the path."]


def test_verbose_may_stand_anywhere_and_lets_the_libraries_talk():
    res = _cli("info", str(BUNDLED), "--verbose")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Model ")


def test_quiet_console_ignores_warnings_and_restores_everything():
    before = list(warnings.filters)
    with quiet_console(verbose=False), warnings.catch_warnings(record=True) as seen:
        warnings.warn("Do not pass an `input_shape`", UserWarning, stacklevel=1)
    assert warnings.filters == before
    assert seen == []  # ignored: never reaches the console
