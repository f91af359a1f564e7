"""Shared test setup: offscreen Qt, quiet TensorFlow, a private user-data folder."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """Runs, settings and autosaves of a test never touch the real user folder."""
    monkeypatch.setenv("NEURALSTUDIO_HOME", str(tmp_path_factory.mktemp("home")))
