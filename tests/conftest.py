"""Shared test setup: offscreen Qt, quiet TensorFlow, a private user-data folder."""

import json
import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ["QT_QPA_PLATFORM"] == "offscreen":
    # The offscreen screen is 800x800 by default, smaller than the window's minimum: give the
    # tests a laptop-sized virtual screen so that geometry behaves as it does for users.
    _screen = os.path.join(tempfile.gettempdir(), "neuralstudio-test-screen.json")
    with open(_screen, "w", encoding="utf-8") as fh:
        json.dump({"screens": [{"name": "laptop", "x": 0, "y": 0, "width": 1600, "height": 1000,
                                "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}, fh)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screen}"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """Runs, settings and autosaves of a test never touch the real user folder."""
    monkeypatch.setenv("NEURALSTUDIO_HOME", str(tmp_path_factory.mktemp("home")))
