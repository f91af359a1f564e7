"""Keras-facing code: catalog, builder, importer, code generation, data, training, inference.

Importing this package is cheap; Keras and TensorFlow are imported by the
modules that need them.  The environment is prepared here so that every entry
point (CLI, GUI worker thread, tests) gets the same quiet TensorFlow backend.
"""

import os

from neuralstudio.ml import backends as _backends

try:  # --backend, the app's saved choice, else TensorFlow; a bad KERAS_BACKEND is refused by backends.select()
    os.environ.setdefault("KERAS_BACKEND", _backends.requested().name)
except _backends.BackendError:
    pass
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
