"""The Keras backend NeuralStudio runs on, and everything that differs between backends.

Keras 3 runs the same models on TensorFlow, JAX and PyTorch, but fixes the backend for a process when it is
first imported (``KERAS_BACKEND``). Most of NeuralStudio is backend-neutral Keras; what is not lives here,
so that the rest of ``ml`` asks this module instead of testing ``keras.backend.backend()`` itself:

- **which backend** (:func:`select`): ``--backend`` on the command line, else ``KERAS_BACKEND``, else the
  choice saved in the app's settings (:func:`save_choice`), else TensorFlow; refused with the install line
  when it is not installed, and refused when Keras already runs another one;
- **the fast forward function** (:func:`forward_function`): one compiled call per batch, never
  ``model.predict`` per stroke (a ``tf.function`` on TensorFlow, ``jax.jit`` over ``stateless_call`` on JAX,
  a plain call under ``torch.no_grad`` on PyTorch), and its sibling that also scores each batch with the model's
  loss, as Keras's test step does (:func:`scoring_function`, the trainer's end-of-run test pass);
- **what the training loop may do** (:func:`max_steps_per_execution`: PyTorch runs one step per execution;
  :func:`feeds_tf_data`: only TensorFlow reads the trainer's ``tf.data`` pipeline, the others get arrays);
- **TensorFlow on another backend** (:func:`import_tensorflow`): TensorFlow is still used there for the
  SavedModel and LiteRT exporters and device listing, and must not take the GPU the backend trains on
  (it reserves nearly all of its memory when it initialises);
- **seeds and saving without TensorFlow** (:func:`set_random_seed`, :func:`keep_tensorflow_out_of_saving`: Keras
  imports TensorFlow for both whenever it is installed, on every backend);
- **CPU threads** (:func:`cpu_threads_for`: PyTorch's thread team slows small steps down);
- **memory between runs** (:func:`release_memory`).

Gradients per backend are in ``ml/gradients.py``, devices per backend in ``ml/devices.py``. Importing this
module imports neither Keras nor any backend.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuralstudio.core.errors import UserError

__all__ = [
    "BACKENDS", "BackendError", "Choice", "active", "capability_table", "choice_source", "cpu_threads_for", "current",
    "feeds_tf_data",
    "format_capability_table", "forward_function", "import_tensorflow", "installed", "keep_tensorflow_out_of_saving",
    "label",
    "max_steps_per_execution", "normalize", "release_memory", "requested", "save_choice", "saved_choice",
    "scoring_function", "select", "set_random_seed", "sync_variables",
]

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
_LABELS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "job": "Job"}
_ALIASES = {"tf": "tensorflow", "pytorch": "torch"}
#: what installs each backend beside NeuralStudio (the extras of pyproject.toml)
INSTALL = {"tensorflow": 'pip install "neuralstudio"', "jax": 'pip install "neuralstudio[jax]"',
           "torch": 'pip install "neuralstudio[torch]"'}
#: where the app keeps the backend chosen in its settings (read before Keras is imported, so not QSettings)
CHOICE_FILE = "backend.json"

#: KERAS_BACKEND as the process started with it, before ``neuralstudio.ml`` sets its default
_ENV_AT_START = os.environ.get("KERAS_BACKEND")


class BackendError(UserError, ValueError):
    """A backend that does not exist, is not installed, or cannot be switched to now; the message says why."""


@dataclass(frozen=True)
class Choice:
    """The backend to run on and where that choice came from (for ``neuralstudio devices`` and the app)."""

    name: str
    source: str  # "--backend", "KERAS_BACKEND", "settings" or "default"


def label(name: str) -> str:
    """The backend's name as people write it: "TensorFlow", "JAX", "PyTorch"."""
    return _LABELS.get(name, name)


def normalize(name: str) -> str:
    """``name`` as Keras spells it ("tensorflow", "jax", "torch"); "tf" and "pytorch" are accepted too."""
    key = str(name or "").strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BACKENDS:
        raise BackendError(f"Unknown backend {name!r}: NeuralStudio trains with {', '.join(BACKENDS)}.")
    return key


def installed(name: str) -> bool:
    """Whether the backend's package is installed (without importing it)."""
    try:
        return importlib.util.find_spec(normalize(name)) is not None
    except (ImportError, ValueError):
        return False


# ----------------------------------------------------------------------------- the choice
def _choice_path() -> Any:
    from neuralstudio.core.paths import user_data_dir

    return user_data_dir() / CHOICE_FILE


def saved_choice() -> str | None:
    """The backend chosen in the app's settings, or None (no choice, or a damaged file: then the default)."""
    try:
        raw = _choice_path().read_text(encoding="utf-8")[:1000]
        value = json.loads(raw).get("backend")
        return normalize(value) if isinstance(value, str) else None
    except (OSError, ValueError, AttributeError):
        return None


def save_choice(name: str | None) -> None:
    """Keep ``name`` as the backend of the next start (None forgets the choice); written atomically."""
    from neuralstudio.core.atomic import atomic_write_text

    path = _choice_path()
    if name is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"backend": normalize(name)}) + "\n")


def requested(flag: str | None = None) -> Choice:
    """The backend asked for: ``flag`` (``--backend``), else ``KERAS_BACKEND``, else the saved choice, else
    TensorFlow."""
    if flag:
        return Choice(normalize(flag), "--backend")
    if _ENV_AT_START:
        return Choice(normalize(_ENV_AT_START), "KERAS_BACKEND")
    saved = saved_choice()
    if saved:
        return Choice(saved, "settings")
    return Choice(DEFAULT, "default")


_selected: Choice | None = None


def select(flag: str | None = None, *, fall_back: bool = False) -> Choice:
    """Make the requested backend (:func:`requested`) the one Keras will use; call before Keras is imported.

    Args:
        flag: the ``--backend`` value, if any.
        fall_back: when the choice saved in the settings is not installed (any more), use TensorFlow rather
            than refusing (the app must start); an explicit ``--backend``/``KERAS_BACKEND`` is always refused.

    Raises:
        BackendError: unknown or not installed, or Keras already runs on another backend in this process.
    """
    global _selected
    choice = requested(flag)
    if not installed(choice.name):
        if fall_back and choice.source == "settings":
            choice = Choice(DEFAULT, "default")
        else:
            raise BackendError(f"The {label(choice.name)} backend is not installed: {INSTALL[choice.name]} "
                               f"(asked for by {choice.source}).")
    running = _running()
    if running is not None and running != choice.name:
        raise BackendError(f"Keras already runs on {label(running)} in this process; the backend can only be "
                           f"chosen before Keras starts (restart with --backend {choice.name}).")
    os.environ["KERAS_BACKEND"] = choice.name
    _selected = choice
    return choice


def choice_source() -> str:
    """Where the backend in use was chosen ("--backend", "KERAS_BACKEND", "settings", "default")."""
    if _selected is not None and _selected.name == active():
        return _selected.source
    return "KERAS_BACKEND" if _ENV_AT_START else "default"


def _running() -> str | None:
    """The backend of the Keras already imported in this process, or None when Keras is not imported."""
    if "keras" not in sys.modules:
        return None
    with contextlib.suppress(Exception):
        return str(sys.modules["keras"].backend.backend())
    return None


def current() -> str:
    """The backend Keras runs on or will run on, without importing Keras (what :func:`select` set)."""
    return _running() or os.environ.get("KERAS_BACKEND") or DEFAULT


def active() -> str:
    """The backend Keras runs on (imports Keras)."""
    import keras

    return str(keras.backend.backend())


# ----------------------------------------------------------------------------- what differs in training
def max_steps_per_execution() -> int | None:
    """The most training steps one execution may run (None: no limit). Keras's PyTorch trainer runs one."""
    return 1 if active() == "torch" else None


def feeds_tf_data() -> bool:
    """Whether the trainer feeds ``fit`` its own ``tf.data`` pipeline (``ml/input_pipeline.py``).

    Only on TensorFlow: the pipeline exists to avoid two TensorFlow traps (a GIL-held copy, tf.data's
    autotuning stall). On JAX and PyTorch ``fit`` reads NumPy arrays directly (Keras slices them itself),
    with no tf.data in between and no TensorFlow in the training loop.
    """
    return active() == "tensorflow"


def sync_variables(model: Any) -> None:
    """Make the model's variables current before a batch callback reads or assigns them.

    On JAX, ``fit`` keeps the weights, the optimizer's variables (its learning rate too) and the metrics in its own
    state between steps and writes them back only at the epoch's end: mid-epoch, ``get_weights`` reads stale (or
    purged) values and an assigned learning rate never reaches the step. ``jax_state_sync`` writes the state back
    and makes the next step read the variables again. Elsewhere this does nothing.
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy, Keras's global seed generator and the backend, as ``keras.utils.set_random_seed`` does,
    without importing TensorFlow on the other backends.

    Keras's own function seeds TensorFlow whenever it is installed (for tf.data pipelines), so on JAX or PyTorch
    it imports TensorFlow (6-8 s here) and lets it initialise the GPUs the run is about to use (see
    :func:`import_tensorflow`). Only TensorFlow runs read the trainer's tf.data pipeline (:func:`feeds_tf_data`);
    a TensorFlow that is already imported is still seeded.
    """
    import keras

    if active() == "tensorflow":
        keras.utils.set_random_seed(int(seed))
        return
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    seed = int(seed)
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)  # recreated from the seed
    random.seed(seed)
    np.random.seed(seed)
    if "tensorflow" in sys.modules:
        import_tensorflow().random.set_seed(seed)
    if active() == "torch":
        import torch

        torch.manual_seed(seed)


class _OnlyOnceImported:
    """Keras's lazy ``tensorflow`` module, but "available" only once something else has imported TensorFlow.

    Keras's serialiser asks ``tf.available and isinstance(obj, tf.TensorShape)`` for every value of a config it
    saves; ``available`` imports TensorFlow when it is installed (6-8 s here, at the end of a JAX or PyTorch run,
    when the model is saved). No value can be a TensorFlow object before TensorFlow is imported, so the
    answer is the same without the import.
    """

    def __init__(self, lazy: Any) -> None:
        self._lazy = lazy

    @property
    def available(self) -> bool:
        return "tensorflow" in sys.modules and bool(self._lazy.available)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lazy, name)


def keep_tensorflow_out_of_saving() -> None:
    """On JAX and PyTorch, let Keras save models without importing TensorFlow (see :class:`_OnlyOnceImported`;
    docs/ARCHITECTURE.md, "Traps"). Called before every save (``ml/model_metadata.write_model``); idempotent."""
    if active() == "tensorflow":
        return
    from keras.src.saving import serialization_lib  # the .keras serialiser; the legacy .h5 one also decodes
    # TensorFlow objects (TensorShape in old files), which does need TensorFlow: left alone

    if not isinstance(serialization_lib.tf, _OnlyOnceImported):
        serialization_lib.tf = _OnlyOnceImported(serialization_lib.tf)


#: below this many parameters x batch size a training step is too small to share between CPU threads: PyTorch's
#: handing each op to a second thread costs more than the op (measured here, Nielsen's 784-30-10 at batch 10:
#: 4,146 samples/s on one thread, 1,195 on two, 114 on two when the threads spin; mnist-cnn at batch 128,
#: 2.9e7, gains from the second thread)
SMALL_STEP = 2_000_000


@contextlib.contextmanager
def cpu_threads_for(model: Any, batch_size: int, *, on_cpu: bool = True) -> Any:
    """Within the block, train ``model`` on as many CPU threads as its steps can use.

    Only PyTorch needs it: its intra-op threads (OpenMP) are a fixed team that every op wakes, so a small
    step on two threads runs several times slower than on one, and collapses when another program holds a
    core (the team waits for the thread that is not running). TensorFlow and JAX size their thread pools per op.
    ``OMP_WAIT_POLICY=PASSIVE`` (set in ``neuralstudio/ml/__init__.py``) keeps waiting threads from spinning.
    """
    if not on_cpu or active() != "torch":
        yield
        return
    import torch

    before = torch.get_num_threads()
    small = model.count_params() * max(1, int(batch_size)) < SMALL_STEP
    if small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def release_memory() -> None:
    """Hand back what the backend caches for a finished run (PyTorch's CUDA cache); nothing elsewhere."""
    if active() == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- TensorFlow beside another backend
_tf_gpus_hidden = False


def import_tensorflow() -> Any:
    """``tensorflow``, with its GPUs hidden from it when Keras runs on another backend.

    The exporters (SavedModel, LiteRT) and the device listing use TensorFlow on every backend; left alone,
    TensorFlow would initialise every GPU and reserve nearly all of its memory for itself, next to the JAX or
    PyTorch run that actually uses it. Visible devices can only be set before TensorFlow initialises, so every
    module that may import TensorFlow on another backend imports it through here.
    """
    global _tf_gpus_hidden
    import tensorflow as tf

    if not _tf_gpus_hidden and active() != "tensorflow":
        with contextlib.suppress(RuntimeError, ValueError):  # already initialised: too late, nothing to do
            tf.config.set_visible_devices([], "GPU")
        _tf_gpus_hidden = True
    return tf


# ----------------------------------------------------------------------------- the fast forward function
def forward_function(model: Any, input_shape: tuple[int | None, ...], *, to_numpy: bool = True
                     ) -> Callable[[Any], Any]:
    """A compiled ``x -> model(x, training=False)`` for batches of any size: no data pipeline, no callbacks.

    ``model.predict`` rebuilds its data pipeline and callbacks on every call (~35 ms against ~0.4 ms,
    docs/ARCHITECTURE.md, "Traps"); Predict, the confusion matrix and the views of the inside call this. The
    result is NumPy (``to_numpy``; a list for a model with several outputs), else the backend's own tensors.

    - TensorFlow: a ``tf.function`` with a batch-free input signature (one trace for every batch size).
    - JAX: ``jax.jit`` over ``model.stateless_call``, the weights passed in at each call, so a model whose
      weights change later is still read as it is now; it compiles once per batch size.
    - PyTorch: a plain call under ``torch.no_grad()``: no autograd graph is recorded.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, *input_shape), tf.float32)

        @tf.function(input_signature=[spec], reduce_retracing=True)
        def tf_call(x: Any) -> Any:
            return model(x, training=False)

        return (lambda x: _numpy(tf_call(x))) if to_numpy else tf_call
    if backend == "jax":
        import jax

        @jax.jit
        def jax_call(trainable: Any, non_trainable: Any, x: Any) -> Any:
            out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return out

        def call(x: Any) -> Any:
            out = jax_call([v.value for v in model.trainable_variables],
                           [v.value for v in model.non_trainable_variables], x)
            return _numpy(out) if to_numpy else out

        return call
    if backend == "torch":
        import torch

        def torch_call(x: Any) -> Any:
            with torch.no_grad():
                out = model(x, training=False)
            return _numpy(out) if to_numpy else out

        return torch_call
    return lambda x: _numpy(model(x, training=False)) if to_numpy else model(x, training=False)


def _numpy(out: Any) -> Any:
    import keras

    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)


def scoring_function(model: Any, step: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A compiled ``(x, y) -> step(x, y)`` (NumPy out) for a ``step`` that calls ``model(x, training=False)`` and
    scores the output against ``y`` with the model's own ``compute_loss``: Keras's test step, with the outputs.

    The trainer's end-of-run test pass (``Trainer._evaluate``) takes each batch's outputs and its loss from one
    call. The loss must be computed in the same traced call as the output: on TensorFlow, Keras's crossentropy
    reads the logits behind a softmax or sigmoid output from the symbolic tensor (``_keras_logits``), so a loss
    recomputed from the outputs afterwards differs wherever a probability saturates; and the losses the layers
    add while called (activity regularisers) exist only inside the call. :func:`forward_function` returns the
    outputs alone, so it cannot serve.

    - TensorFlow: a ``tf.function`` whose signature (batch dimension free) is taken from the first call: one trace.
    - JAX: ``jax.jit`` with the weights passed in at each call; ``step`` runs in a ``StatelessScope`` over them
      that collects the losses the layers add, as ``stateless_call`` does. It compiles once per batch size.
    - PyTorch: a plain call under ``torch.no_grad()``.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        traced: list[Any] = []

        def tf_score(x: Any, y: Any) -> Any:
            if not traced:
                specs = [tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in (x, y)]
                fn = tf.function(step, input_signature=specs, reduce_retracing=True)
                fn.get_concrete_function(*specs)  # traced here, not by a call: every run's step shares its code,
                traced.append(fn)  # and TensorFlow warns of "retracing" when calls of one code trace often
            return _numpy(traced[0](x, y))

        return tf_score
    if backend == "jax":
        import jax

        @jax.jit
        def jax_call(trainable: Any, non_trainable: Any, x: Any, y: Any) -> Any:
            mapping = [*zip(model.trainable_variables, trainable), *zip(model.non_trainable_variables, non_trainable)]
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
                return step(x, y)

        def jax_score(x: Any, y: Any) -> Any:
            return _numpy(jax_call([v.value for v in model.trainable_variables],
                                   [v.value for v in model.non_trainable_variables], x, y))

        return jax_score
    if backend == "torch":
        import torch

        def torch_score(x: Any, y: Any) -> Any:
            with torch.no_grad():
                return _numpy(step(x, y))

        return torch_score
    return lambda x, y: _numpy(step(x, y))


# ----------------------------------------------------------------------------- what works where
#: every job on each backend, as tested here (tests/ml and tests/cli run on TensorFlow and JAX in CI, PyTorch by
#: tools/backend_check.py): "yes", how it is done, or "no" and why. Export rows come from the format registry.
_JOBS: tuple[tuple[str, dict[str, str]], ...] = (
    ("design checks, import, code generation", {"tensorflow": "yes", "jax": "yes", "torch": "yes"}),
    ("training (pause/stop, NaN, early stopping, seeds)",
     {"tensorflow": "yes", "jax": "yes", "torch": "yes, one step per execution"}),
    ("live plots in the Train window", {"tensorflow": "yes", "jax": "yes", "torch": "yes"}),
    ("Predict's fast path", {"tensorflow": "tf.function", "jax": "jax.jit", "torch": "call under no_grad"}),
    ("gradients: per-layer signals, saliency",
     {"tensorflow": "GradientTape", "jax": "jax.grad", "torch": "torch.autograd"}),
    ("experiments, learning-rate finder", {"tensorflow": "yes", "jax": "yes", "torch": "yes"}),
    ("several GPUs (--device all-gpus)",
     {"tensorflow": "MirroredStrategy", "jax": "Keras DataParallel", "torch": "no: one device"}),
)


def capability_table() -> list[dict[str, str]]:
    """One row per job (and per export format): ``{"job": ..., "tensorflow": ..., "jax": ..., "torch": ...}``."""
    from neuralstudio.ml.export_formats import FORMATS

    rows = [{"job": job, **cells} for job, cells in _JOBS]
    for f in FORMATS.values():
        cells = {}
        for b in BACKENDS:
            if b not in f.backends:
                cells[b] = "no"
            else:
                needs = f.writer_requires(b)
                cells[b] = f"yes (needs {', '.join(needs)})" if needs else "yes"
        rows.append({"job": f"export {f.name}", **cells})
    return rows


def format_capability_table() -> str:
    """:func:`capability_table` as aligned text for ``neuralstudio devices --capabilities``."""
    rows = capability_table()
    heads = ["job", *BACKENDS]
    widths = [max(len(label(h)), *(len(r[h]) for r in rows)) for h in heads]
    line = "  ".join(label(h).ljust(w) for h, w in zip(heads, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(r[h].ljust(w) for h, w in zip(heads, widths)) for r in rows]
    return "\n".join(x.rstrip() for x in out)
