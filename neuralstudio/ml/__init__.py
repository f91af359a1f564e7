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
# PyTorch's CPU threads (OpenMP) spin while they wait for work: with another program on a core, a training
# step waits for the thread that is not running (Nielsen's net on PyTorch, 2 busy cores: 114 samples/s
# spinning, 1,195 passive; see ml/backends.cpu_threads_for). Read when PyTorch loads, so set here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
