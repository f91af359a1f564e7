"""Model files as people have them, built by the tests themselves (nothing is downloaded or committed).

:func:`build_corpus` writes into a folder:

* **tf.keras 2.x HDF5 files**, saved by ``tf_keras`` (Keras 2.21, the Keras of TensorFlow 2.x) in a
  child process: ``tf_keras`` is only ever imported there, so it cannot leak into ``neuralstudio`` or
  into the Keras 3 of the test process, and each test run gets the same files.  A Sequential CNN
  compiled with a legacy Adam with ``decay`` and trained one step (so the file has optimizer state too),
  an uncompiled Sequential MLP, a functional model compiled with a loss object (tf.keras writes its
  ``reduction="auto"``), and a model with a ``Lambda`` layer that would leave a file behind if its code
  ever ran.
* **Keras <= 2.3 copies** of them, made with h5py by editing only the JSON attributes, into the layout
  standalone Keras 2.2.4 wrote: no ``InputLayer``, ``batch_input_shape`` on the first layer, no
  ``module`` keys, ``keras_version`` "2.2.4"; the compiled one also gets Keras 2.2.4's optimizer
  arguments (``lr``, ``decay``) and a loss with ``reduction="auto"``.  One copy stores its Sequential as
  a bare layer list, as Keras <= 2.2.2 did.
* **Keras 3 archives** with and without a compile config, one whose compile config Keras 3 refuses.
* **Misnamed files**: HDF5 content named ``.keras``, an archive named ``.h5``.
* **Hostile files**: the Lambda files, and archives whose ``model.weights.npz`` holds a pickle that
  would create a file when unpickled.

Each good model comes with a few inputs and the outputs of the model that wrote it (``<stem>.npz``):
a file opens correctly when it predicts the same outputs.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: a file the hostile models' code creates if it ever runs (a Lambda layer's function, an unpickled object)
SENTINEL = "code-ran.txt"

_TF_KERAS_SCRIPT = textwrap.dedent('''
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tf_keras as k2

    out = sys.argv[1]
    sentinel = os.path.join(out, "code-ran.txt")
    rng = np.random.default_rng(0)
    k2.utils.set_random_seed(0)

    def save(model, stem, x):
        model.save(os.path.join(out, stem + ".h5"))
        np.savez(os.path.join(out, stem + ".npz"), x=x, y=model.predict(x, verbose=0))

    cnn = k2.Sequential([
        k2.layers.Conv2D(4, 3, activation="relu", input_shape=(28, 28, 1), name="conv"),
        k2.layers.MaxPooling2D(2, name="pool"),
        k2.layers.Flatten(name="flat"),
        k2.layers.Dense(10, activation="softmax", name="probs"),
    ], name="digits_cnn")
    cnn.compile(optimizer=k2.optimizers.legacy.Adam(learning_rate=1e-3, decay=1e-4),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cnn.fit(rng.random((16, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 16), epochs=1, batch_size=16,
            verbose=0)
    save(cnn, "cnn_tfkeras", rng.random((4, 28, 28, 1), dtype=np.float32))

    mlp = k2.Sequential([
        k2.layers.Dense(16, activation="relu", input_shape=(784,), name="hidden"),
        k2.layers.Dropout(0.2, name="drop"),
        k2.layers.Dense(10, activation="softmax", name="probs"),
    ], name="digits_mlp")
    save(mlp, "mlp_tfkeras", rng.random((4, 784), dtype=np.float32))

    inp = k2.Input((28, 28), name="pixels")
    h = k2.layers.Flatten(name="flat")(inp)
    h = k2.layers.Dense(8, name="dense")(h)
    h = k2.layers.BatchNormalization(name="norm")(h)
    outp = k2.layers.Dense(10, activation="softmax", name="probs")(k2.layers.Activation("relu", name="act")(h))
    func = k2.Model(inp, outp, name="digits_functional")
    func.compile(optimizer=k2.optimizers.legacy.SGD(learning_rate=0.01, momentum=0.9, decay=1e-3),
                 loss=k2.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    save(func, "functional_tfkeras", rng.random((4, 28, 28), dtype=np.float32))

    lam = k2.Sequential([
        k2.layers.Lambda(lambda t: t * 2.0 + 0.0 * len(open(sentinel, "a").name), input_shape=(4,), name="double"),
        k2.layers.Dense(2, name="out"),
    ], name="with_code")
    lam.save(os.path.join(out, "lambda_tfkeras.h5"))
''')


@dataclass
class Corpus:
    """The files :func:`build_corpus` wrote, by kind; ``reference`` maps a file to its inputs and outputs."""

    folder: Path
    good: dict[str, Path] = field(default_factory=dict)
    hostile: dict[str, Path] = field(default_factory=dict)
    reference: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # everything in the folder once it was built

    @property
    def sentinel(self) -> Path:
        """The file that exists only if code from a hostile file ran."""
        return self.folder / SENTINEL


def write_tf_keras_models(folder: Path, timeout: float = 300) -> None:
    """Save the tf.keras 2.x models with ``tf_keras``, in a child process (see the module docstring)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1",
           "OMP_NUM_THREADS": "2", "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _TF_KERAS_SCRIPT, str(folder)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"tf_keras could not write the legacy models:\n{done.stderr[-4000:]}")
    (folder / SENTINEL).unlink(missing_ok=True)  # the Lambda ran while tf_keras built its model


# ---------------------------------------------------------------- Keras <= 2.3 layout, by editing attributes
def _objects(config: Any) -> list[dict[str, Any]]:
    found, stack = [], [config]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            found.append(obj)
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
    return found


def keras2_model_config(config: dict[str, Any], *, bare_list: bool = False) -> dict[str, Any]:
    """``config`` (a Sequential's ``model_config`` as tf.keras or Keras 3 writes it) as Keras <= 2.3 wrote it.

    The ``InputLayer`` goes, its shape moves to the first layer as ``batch_input_shape``; serialized
    objects lose the ``module``/``registered_name`` keys Keras 2.2 never wrote, and dtype policies become
    plain dtype names.  ``bare_list`` stores the layers as a bare list, as Keras <= 2.2.2 did.
    """
    new = copy.deepcopy(config)
    for obj in _objects(new):
        obj.pop("module", None)
        obj.pop("registered_name", None)
        obj.pop("build_config", None)
        cfg = obj.get("config")
        if isinstance(cfg, dict) and isinstance(cfg.get("dtype"), dict):
            cfg["dtype"] = (cfg["dtype"].get("config") or {}).get("name", "float32")
    layers = new["config"]["layers"]
    if layers and layers[0]["class_name"] == "InputLayer":
        first_input = layers.pop(0)["config"]
        shape = first_input.get("batch_input_shape") or first_input.get("batch_shape")
        layers[0]["config"] = {"name": layers[0]["config"]["name"], "trainable": True,
                               "batch_input_shape": shape, "dtype": "float32",
                               **{k: v for k, v in layers[0]["config"].items()
                                  if k not in ("name", "trainable", "batch_input_shape", "dtype")}}
    for layer in layers[1:]:
        layer["config"].pop("batch_input_shape", None)
    if bare_list:
        new["config"] = layers
    return new


def keras2_training_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a ``training_config``) with the arguments Keras 2.2.4 wrote and Keras 3 refuses."""
    new = copy.deepcopy(config)
    opt = new["optimizer_config"]["config"]
    opt["lr"] = opt.pop("learning_rate")
    opt.setdefault("decay", 1e-4)
    opt.pop("name", None)
    new["loss"] = {"class_name": "SparseCategoricalCrossentropy",
                   "config": {"reduction": "auto", "name": "sparse_categorical_crossentropy", "from_logits": False}}
    new["sample_weight_mode"] = None
    return new


def keras2_copy(src: Path, dst: Path, *, version: str = "2.2.4", bare_list: bool = False) -> Path:
    """A copy of the HDF5 model ``src`` in the Keras <= 2.3 layout (only the JSON attributes are edited)."""
    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        model_config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(keras2_model_config(model_config, bare_list=bare_list)).encode()
        if "training_config" in f.attrs:
            training = json.loads(f.attrs["training_config"])
            f.attrs["training_config"] = json.dumps(keras2_training_config(training)).encode()
        for group in (f, f["model_weights"]):
            group.attrs["keras_version"] = np.bytes_(version)
            group.attrs["backend"] = np.bytes_("tensorflow")
    return dst


# ---------------------------------------------------------------- Keras 3 archives and hostile archives
class _CreatesAFile:
    """Unpickling this creates :data:`SENTINEL`: proof that a pickle in a file was read (code ran)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def pickled_weights_archive(path: Path, sentinel: Path) -> Path:
    """A ``.keras`` archive whose ``model.weights.npz`` holds an object array (a pickle that runs ``open``)."""
    import hostile_models as hm

    buf = io.BytesIO()
    np.savez(buf, **{"layers/dense": np.array([_CreatesAFile(sentinel)], dtype=object),
                     "layers/dense/vars/0": np.zeros((4, 2), np.float32)})
    members = hm.keras_members()[:2] + [hm.Member.stored("model.weights.npz", buf.getvalue())]
    return hm.write_zip(path, members)


def _keras3_models(folder: Path, corpus: Corpus) -> None:
    import keras

    rng = np.random.default_rng(1)
    x = rng.random((4, 28, 28), dtype=np.float32)
    model = keras.Sequential([keras.Input((28, 28), name="pixels"), keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(10, activation="softmax", name="probs")], name="k3")
    y = np.asarray(model(x))
    model.save(folder / "k3_plain.keras")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(folder / "k3_compiled.keras")
    for stem in ("k3_plain", "k3_compiled"):
        corpus.good[f"{stem}.keras"] = folder / f"{stem}.keras"
        corpus.reference[f"{stem}.keras"] = (x, y)
    # A compile config Keras 3 refuses (a loss with tf.keras's reduction="auto"): opens, without it.
    with zipfile.ZipFile(folder / "k3_compiled.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["compile_config"]["loss"] = {"module": "keras.losses", "class_name": "SparseCategoricalCrossentropy",
                                        "config": {"reduction": "auto", "name": "loss", "from_logits": False},
                                        "registered_name": None}
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(folder / "k3_bad_compile.keras", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    corpus.good["k3_bad_compile.keras"] = folder / "k3_bad_compile.keras"
    corpus.reference["k3_bad_compile.keras"] = (x, y)


def build_corpus(folder: Path) -> Corpus:
    """Write every file of the corpus into ``folder`` (about 15 s, most of it TensorFlow starting in the child)."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(folder)
    write_tf_keras_models(folder)
    for stem in ("cnn_tfkeras", "mlp_tfkeras", "functional_tfkeras"):
        corpus.good[f"{stem}.h5"] = folder / f"{stem}.h5"
        with np.load(folder / f"{stem}.npz") as z:
            corpus.reference[f"{stem}.h5"] = (z["x"], z["y"])
    copies = {"cnn_keras224.h5": ("cnn_tfkeras", {}), "mlp_keras224.h5": ("mlp_tfkeras", {}),
              "mlp_keras220.h5": ("mlp_tfkeras", {"version": "2.2.0", "bare_list": True})}
    for name, (stem, kwargs) in copies.items():
        corpus.good[name] = keras2_copy(folder / f"{stem}.h5", folder / name, **kwargs)
        corpus.reference[name] = corpus.reference[f"{stem}.h5"]
    _keras3_models(folder, corpus)
    misnamed = {"cnn_keras224_is_h5.keras": "cnn_keras224.h5", "k3_is_zip.h5": "k3_compiled.keras"}
    for name, source in misnamed.items():
        shutil.copyfile(folder / source, folder / name)
        corpus.good[name] = folder / name
        corpus.reference[name] = corpus.reference[source]
    corpus.hostile["lambda_tfkeras.h5"] = folder / "lambda_tfkeras.h5"
    corpus.hostile["lambda_keras224.h5"] = keras2_copy(folder / "lambda_tfkeras.h5", folder / "lambda_keras224.h5")
    corpus.hostile["pickled.keras"] = pickled_weights_archive(folder / "pickled.keras", corpus.sentinel)
    corpus.hostile["pickled_is_zip.h5"] = pickled_weights_archive(folder / "pickled_is_zip.h5", corpus.sentinel)
    corpus.files = sorted(folder.iterdir())
    return corpus


def pickled_data_npz(path: Path, sentinel: Path) -> Path:
    """An ``.npz`` data file whose ``x_train`` is an object array (a pickle that runs ``open``)."""
    np.savez(path, x_train=np.array([_CreatesAFile(sentinel)] * 4, dtype=object), y_train=np.arange(4))
    return path
