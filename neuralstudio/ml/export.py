"""Export a trained Keras model to the formats other tools read, verified and written atomically.

Every format goes through Keras's own writers where Keras has one
(``model.save``, ``model.save_weights`` and ``model.export`` for SavedModel,
LiteRT and ONNX), never a hand-made converter.  An export is staged next to
its target (a temporary file, or a temporary folder for the folder formats),
checked by :mod:`neuralstudio.ml.verify` against the Keras model on real
images, and only then moved into place: a failed or mismatching export leaves
the previous file or folder exactly as it was.

What the formats are (names, files, naming, capabilities) is declared once in
:mod:`neuralstudio.ml.export_formats`; this module holds one writer per format
(``_WRITERS``), the target checks and the staging.  It imports the verifier,
never the other way round.

TensorFlow itself is imported only inside the LiteRT writer (for the
converter's flags); the other writers reach it through Keras.

The graph formats (SavedModel, LiteRT, ONNX) hold the model's inference graph
(:mod:`neuralstudio.ml.inference_graph`: augmentation, noise and dropout left
out); the formats that keep the whole network (``.keras``, ``.h5``, weights,
the Python code, the inference script's model) keep them, so that training
the export further still augments.  Every format is verified against the model
itself at inference.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralstudio.core.atomic import atomic_path, atomic_write_text
from neuralstudio.core.errors import UserError
from neuralstudio.ml.export_formats import (
    DEFAULT_FORMAT,
    FORMATS,
    INFERENCE_MODEL,
    INFERENCE_SCRIPT,
    PYTHON_SCRIPT,
    PYTHON_WEIGHTS,
    QUANTIZE_CHOICES,
    SAVEDMODEL_MARKER,
    ExportError,
    ExportFormat,
    check_quantize,
    default_output,
    format_names,
    get_format,
)

# The registry's names, re-exported: callers of this module keep importing them from here.
__all__ = [
    "DEFAULT_FORMAT", "FORMATS", "INFERENCE_MODEL", "INFERENCE_SCRIPT", "PYTHON_SCRIPT", "PYTHON_WEIGHTS",
    "QUANTIZE_CHOICES", "SAVEDMODEL_MARKER", "ExportError", "ExportFormat", "ExportResult", "default_output",
    "ensure_called", "export_model", "format_names", "get_format", "inference_script_source", "staged_folder",
    "with_weights_loader",
]


@dataclass
class ExportResult:
    """What an export wrote and how its verification went.

    Args:
        format: the format name.
        path: the file or folder written.
        files: every file written (for a folder, the files inside it).
        quantize: the quantisation used, or None.
        report: the verification report (None when verification was skipped).
    """

    format: str
    path: Path
    files: list[Path] = field(default_factory=list)
    quantize: str | None = None
    report: Any = None

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files if f.exists())


def _check_target(fmt: ExportFormat, target: Path) -> None:
    """Refuse a target whose name or current content does not fit the format."""
    if fmt.folder:
        if target.exists() and not target.is_dir():
            raise ExportError(f"{target} is a file; the {fmt.name} export is a folder: give a folder name.")
        if not target.is_dir() or not any(target.iterdir()):
            return
        # Replacing a folder deletes what is in it: only ever replace a previous export of the same kind,
        # and only when it holds nothing but what that export writes (docs/ARCHITECTURE.md, "Untrusted files").
        if not (target / fmt.marker).exists():
            raise ExportError(
                f"{target} already exists and is not a previous {fmt.name} export (no "
                f"{fmt.marker} in it); choose a new folder name so nothing of yours is replaced."
            )
        others = sorted(p.name for p in target.iterdir() if p.name not in fmt.contents)
        if others:
            listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise ExportError(
                f"{target} is a previous {fmt.name} export but also holds {listed}, which exporting again would "
                "delete: move those files out or choose a new folder name."
            )
        return
    if target.is_dir():
        raise ExportError(f"{target} is a folder; the {fmt.name} export is one file: give a file name "
                          f"ending in {fmt.suffix}.")
    if not fmt.accepts_file_name(target.name):
        raise ExportError(f"The {fmt.name} export needs a file name ending in {fmt.suffix} "
                          f"(Keras and other tools pick the format from it), not {target.name}.")


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a not-yet-existing folder path beside ``target``; swap it in only on success.

    The previous ``target`` folder is moved aside (same file system, so a
    rename), the new one renamed into place, and only then the old one deleted;
    if anything fails before the swap the old folder is untouched, and if the
    swap itself fails the old folder is put back.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    work = holder / target.name
    try:
        yield work
        if not work.is_dir():
            raise ExportError(f"The export wrote no folder for {target.name}.")
        previous = None
        if target.exists():
            previous = holder / ".previous"
            os.replace(target, previous)
        try:
            os.replace(work, target)
        except BaseException:
            if previous is not None:
                os.replace(previous, target)
            raise
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def ensure_called(model: Any) -> None:
    """Call a never-called model once on zeros: Keras's exporters need traced input shapes.

    A model just loaded from a ``.keras`` file has its inputs but has never
    been *called*, and ``model.export`` refuses it ("has never called").
    """
    import numpy as np

    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ExportError("This model has no defined input (it was never built): train it or call it once, "
                          "then export it.")
    if getattr(model, "_called", True):
        return
    import keras

    batch = [np.zeros([1 if d is None else int(d) for d in t.shape], dtype="float32") for t in inputs]
    if keras.backend.backend() == "tensorflow":
        model.predict_on_batch(batch[0] if len(batch) == 1 else batch)
    else:  # JAX's predict_on_batch runs a stateless call that does not mark the model as called
        model(batch[0] if len(batch) == 1 else batch, training=False)


# --------------------------------------------------------------------------- writers
def _write_keras(model: Any, tmp: Path, **_: Any) -> list[Path]:
    from neuralstudio.ml.model_metadata import write_model  # with the class names the model was trained on

    write_model(model, tmp)
    return [tmp]


def _write_h5(model: Any, tmp: Path, **_: Any) -> list[Path]:
    from neuralstudio.ml.model_metadata import write_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns that HDF5 is legacy: the user asked for it
        with _quiet_tf_logs():
            write_model(model, tmp)
    return [tmp]


def _write_weights(model: Any, tmp: Path, **_: Any) -> list[Path]:
    model.save_weights(tmp)
    return [tmp]


def _graph_model(model: Any, *, unroll_recurrent: bool = False) -> Any:
    """The model that the graph formats (SavedModel, LiteRT, ONNX) trace: its inference graph, called once.

    Keras's exporters trace a model without a training flag, and an augmentation layer then augments
    (docs/ARCHITECTURE.md, "Traps"): the graph holds :func:`neuralstudio.ml.inference_graph.inference_model`
    instead, the same layers and weights with the training-only ones left out.
    """
    from neuralstudio.ml.inference_graph import inference_model

    graph = inference_model(model, unroll_recurrent=unroll_recurrent)
    ensure_called(graph)
    return graph


def _write_savedmodel(model: Any, tmp: Path, **_: Any) -> list[Path]:
    from neuralstudio.ml.backends import import_tensorflow

    import_tensorflow()  # on JAX, Keras's exporter starts TensorFlow: without the GPU JAX trains on
    _graph_model(model).export(str(tmp), format="tf_saved_model", verbose=False)
    return sorted(p for p in tmp.rglob("*") if p.is_file())


def _write_litert(model: Any, tmp: Path, *, quantize: str | None = None, **_: Any) -> list[Path]:
    from neuralstudio.ml.backends import import_tensorflow

    tf = import_tensorflow()

    # LiteRT's built-in operations have no loop: recurrent layers over a fixed number of steps are unrolled.
    model = _graph_model(model, unroll_recurrent=True)
    # Built-in operations only: Keras would also allow TensorFlow's own ("select") ops, which the LiteRT
    # interpreter cannot run without the Flex delegate, so such a file could never pass verification.
    kwargs: dict[str, Any] = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize == "dynamic":
        # Dynamic-range quantisation: weights stored as int8, activations stay float (no calibration data needed).
        kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
    try:
        with _quiet_tf_logs():
            model.export(str(tmp), format="litert", verbose=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the converter's error names the ops; anything else is re-raised
        ops = sorted(set(re.findall(r"'tf\.(\w+)'", str(exc))))
        if not ops:
            raise
        raise ExportError(_litert_ops_message(model, ops)) from None
    return [tmp]


def _litert_ops_message(model: Any, ops: list[str]) -> str:
    """Why a model cannot become a LiteRT file, in words: the operations LiteRT lacks and the layers behind them."""
    from neuralstudio.ml.inference_graph import recurrent_loops

    loops = recurrent_loops(model)
    why = (f" They come from {', '.join(loops)}, which loop over sequences of any length: give the Input a fixed "
           "number of steps so that the loop can be unrolled." if loops else "")
    return (f"The litert export cannot hold this model: it needs TensorFlow operations that LiteRT does not have "
            f"built in ({', '.join(ops)}), which the LiteRT interpreter cannot run.{why} Export it as savedmodel "
            "or onnx instead; nothing was written.")


def _write_onnx(model: Any, tmp: Path, **_: Any) -> list[Path]:
    # export_model has checked the registry's optional packages (tf2onnx, onnx) before staging.
    model = _graph_model(model)
    _teach_tf2onnx()
    with warnings.catch_warnings(), _quiet_tf_logs():
        warnings.simplefilter("ignore")  # tf2onnx's numpy-2 shim warns about np.object
        model.export(str(tmp), format="onnx", verbose=False)
    return [tmp]


def _teach_tf2onnx() -> None:
    """Give tf2onnx the TensorFlow operations it lacks and the app's layers use (idempotent).

    ``Erfc``: Keras's exact GELU (the transformer template's MLP) is ``0.5 * x * erfc(-x / sqrt(2))``, and
    tf2onnx 1.17 has no conversion for ``Erfc``; ONNX has ``Erf`` (opset 9), and ``erfc(x) = 1 - erf(x)``.
    A handler tf2onnx gains in a later version is kept.
    """
    import numpy as np
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    if any("Erfc" in ops for domain in tf_op.get_opsets().values() for ops in domain):
        return

    class _Erfc:
        @classmethod
        def version_9(cls, ctx: Any, node: Any, **_: Any) -> None:
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
            node.type = "Erf"
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=dtype))
            ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(node.name),
                                          inputs=[one.output[0], node.output[0]])

    tf_op("Erfc")(_Erfc)


def _write_python(model: Any, tmp: Path, *, design: Any = None, **_: Any) -> list[Path]:
    from neuralstudio.core.design import design_from_dict
    from neuralstudio.ml.codegen import generate_code

    if design is None:
        from neuralstudio.ml.importer import import_model

        design = import_model(model)
    # Only a design that passes the file loader's checks becomes code: one from a run record, from the
    # editor or from an imported model alike (docs/ARCHITECTURE.md, "Untrusted files").
    design = design_from_dict(design.to_dict(), design.name or "the design")
    tmp.mkdir(parents=True)
    model.save_weights(tmp / PYTHON_WEIGHTS)
    atomic_write_text(tmp / PYTHON_SCRIPT, with_weights_loader(generate_code(design)))
    return [tmp / PYTHON_SCRIPT, tmp / PYTHON_WEIGHTS]


_MAIN_GUARD = '\nif __name__ == "__main__":'


def with_weights_loader(code: str) -> str:
    """``code`` (which builds ``model`` on import) plus ``load_trained_model()``, placed before the training section.

    Keras matches a ``.weights.h5`` file to the model by layer order and class, not by
    layer names, so the rebuilt network takes the trained weights even though the
    generated code leaves most layer names to Keras.
    """
    if not re.search(r"^model = ", code, flags=re.MULTILINE):
        raise ExportError("The generated code does not build a module-level `model` to load the weights into; "
                          "please report this as a bug.")
    loader = f'''
# --- Added by NeuralStudio's export: the weights trained in NeuralStudio ({PYTHON_WEIGHTS} beside this file).
WEIGHTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{PYTHON_WEIGHTS}")


def load_trained_model():
    """`model` with the weights trained in NeuralStudio.

    Example:
        from model import load_trained_model
        model = load_trained_model()
        probabilities = model.predict(images)
    """
    model.load_weights(WEIGHTS_FILE)
    return model

'''
    code = code.rstrip("\n") + "\n"
    if not re.search(r"^import os$", code, flags=re.MULTILINE):
        code = code.replace("\nimport keras\n", "\nimport os\n\nimport keras\n", 1)
    if not re.search(r"^import os$", code, flags=re.MULTILINE):
        loader = "\nimport os\n" + loader
    cut = code.rfind(_MAIN_GUARD)
    if cut < 0:
        return code + "\n" + loader.rstrip("\n") + "\n"
    return code[:cut].rstrip("\n") + "\n\n" + loader + code[cut:]


def _write_inference_script(model: Any, tmp: Path, **_: Any) -> list[Path]:
    from neuralstudio.ml.inference import IncompatibleModelError, check_model
    from neuralstudio.ml.model_metadata import write_model

    try:
        reshape = check_model(model)
    except IncompatibleModelError as exc:
        raise ExportError(f"The inference script classifies 28x28 digit images; {exc}") from None
    tmp.mkdir(parents=True)
    write_model(model, tmp / INFERENCE_MODEL)
    atomic_write_text(tmp / INFERENCE_SCRIPT, inference_script_source(reshape))
    return [tmp / INFERENCE_SCRIPT, tmp / INFERENCE_MODEL]


def inference_script_source(reshape: tuple[int, ...]) -> str:
    """The standalone ``predict.py``: NeuralStudio's MNIST preparation copied in, so it needs only Keras and Pillow.

    The preparation functions are copied from :mod:`neuralstudio.ml.preprocess`
    at export time (not re-typed), so the script prepares images exactly as the
    app does.
    """
    from neuralstudio.ml import inference, preprocess

    parts = [inspect.getsource(f) for f in (preprocess._as_float, preprocess._resize, preprocess.ink_bbox,
                                            preprocess.prepare_digit, preprocess.load_gray_image)]
    parts.append(inspect.getsource(inference._softmax))
    parts.append(inspect.getsource(inference.to_probabilities))
    constants = "\n".join(f"{n} = {getattr(preprocess, n)!r}" for n in ("SIZE", "BOX", "INK_THRESHOLD",
                                                                          "MAX_IMAGE_PIXELS"))
    body = "\n\n".join(parts)
    return f'''#!/usr/bin/env python3
"""Classify handwritten digit images with the model exported from NeuralStudio.

Usage:
    python {INFERENCE_SCRIPT} digit.png [more.png ...] [--model {INFERENCE_MODEL}] [--json]

Needs only Keras 3 (with TensorFlow), numpy and Pillow.  Each image is prepared
the way MNIST digits were (cropped to the ink, scaled to 20 px, centred by mass
in a 28x28 frame; dark-on-light photos are inverted), exactly as NeuralStudio
prepares them, then classified.  The model is loaded with Keras's safe mode.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

{constants}
INPUT_SHAPE = {tuple(reshape)!r}  # one prepared 28x28 image, reshaped for the model's input
HERE = os.path.dirname(os.path.abspath(__file__))


class ImageFileError(ValueError):
    """An image that cannot be read as a digit."""


{body}


def prepare_image_file(path):
    """Read an image file and prepare it like MNIST."""
    prepared = prepare_digit(load_gray_image(path))
    if not prepared.any():
        raise ImageFileError(f"{{path}} looks blank: no digit found.")
    return prepared


def main(argv=None):
    parser = argparse.ArgumentParser(description="Classify digit images with a NeuralStudio model.")
    parser.add_argument("images", nargs="+", help="PNG or JPEG images, one digit each")
    parser.add_argument("--model", default=os.path.join(HERE, "{INFERENCE_MODEL}"), help="the .keras model")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.saving.load_model(args.model, compile=False, safe_mode=True)
    status = 0
    for name in args.images:
        try:
            image = prepare_image_file(name)
        except ImageFileError as exc:
            print(f"error: {{exc}}", file=sys.stderr)
            status = 1
            continue
        x = image.reshape((1, *INPUT_SHAPE)).astype(np.float32)
        raw = np.asarray(model.predict_on_batch(x)).reshape(1, -1)
        probs = to_probabilities(raw)[0]
        digit = int(np.argmax(probs))
        if args.json:
            print(json.dumps({{"image": name, "predicted": digit, "confidence": float(probs[digit]),
                              "probabilities": [float(p) for p in probs]}}))
        else:
            print(f"{{name}}: {{digit}} ({{probs[digit]:.1%}})")
    return status


if __name__ == "__main__":
    sys.exit(main())
'''


# One writer per registry format (tests/ml/test_export_formats.py checks that none is missing).
_WRITERS: dict[str, Callable[..., list[Path]]] = {
    "keras": _write_keras,
    "h5": _write_h5,
    "weights": _write_weights,
    "savedmodel": _write_savedmodel,
    "litert": _write_litert,
    "onnx": _write_onnx,
    "python": _write_python,
    "inference-script": _write_inference_script,
}


@contextlib.contextmanager
def _quiet_tf_logs() -> Iterator[None]:
    """Silence absl/TF converter chatter on stderr for the duration (the CLI prints its own report)."""
    import logging

    loggers = [logging.getLogger(n) for n in ("absl", "tensorflow", "tf2onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


# --------------------------------------------------------------------------- public API
def export_model(
    model: Any,
    path: str | os.PathLike[str],
    fmt: str = DEFAULT_FORMAT,
    *,
    quantize: str | None = None,
    design: Any = None,
    verify: bool = True,
    trusted: bool = False,
    samples: int = 64,
) -> ExportResult:
    """Export ``model`` to ``path`` in format ``fmt``, verify it, and only then move it into place.

    Args:
        model: a built ``keras.Model``.
        path: the output file (or folder for the registry's folder formats: ``savedmodel``, ``python``,
            ``inference-script``).
        fmt: a name in :data:`neuralstudio.ml.export_formats.FORMATS`.
        quantize: a mode the format supports (``ExportFormat.quantize``: ``"dynamic"`` for ``litert``).
        design: the :class:`~neuralstudio.core.design.Design` the model was built from (formats whose
            ``uses_design`` is set: ``python``); when None it is recovered from the model.
        verify: compare the artifact with the Keras model before moving it into place
            (see :func:`neuralstudio.ml.verify.verify_export`).
        trusted: the model came from a file the user trusts (Lambda layers may be reloaded).
        samples: how many images verification compares.

    Returns:
        The :class:`ExportResult`, with the verification report.

    Raises:
        ExportError: a bad format, option or target, or a missing optional package.
        neuralstudio.ml.verify.VerificationError: the artifact does not match the model (nothing was moved
            into place; a previous file or folder at ``path`` is unchanged).
    """
    import keras

    f = get_format(fmt)
    if why := f.refusal(keras.backend.backend()):  # first: no other advice matters for this format here
        raise ExportError(why)
    quantize = check_quantize(f, quantize)
    target = Path(path).expanduser()
    _check_target(f, target)
    # a missing converter or runtime is a message before any conversion
    f.require_packages(verify=verify, backend=keras.backend.backend())
    try:
        return _export_staged(model, target, f, quantize=quantize, design=design, verify=verify, trusted=trusted,
                              samples=samples)
    except OSError as exc:  # the folder is read-only, the disk is full, the target vanished
        why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise ExportError(f"Cannot write the export to {target}: {why}. Choose another place or free some "
                          "space; nothing was changed.") from None


def _export_staged(model: Any, target: Path, f: ExportFormat, *, quantize: str | None, design: Any, verify: bool,
                   trusted: bool, samples: int) -> ExportResult:
    """Write the export beside ``target``, verify it, then move it into place (see :func:`export_model`)."""
    writer = _WRITERS[f.name]
    stage = staged_folder(target) if f.folder else atomic_path(target)
    with stage as tmp:
        try:
            files = writer(model, tmp, quantize=quantize, design=design)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a Keras/TF/converter failure becomes a message
            text = " ".join(str(exc).split())[:400]
            raise ExportError(f"The {f.name} export failed: {type(exc).__name__}: {text}") from exc
        report = None
        if verify:
            from neuralstudio.ml.verify import verify_export

            report = verify_export(model, tmp, f.name, quantize=quantize, trusted=trusted, samples=samples)
            report.raise_if_failed()
        rel = [p.relative_to(tmp) for p in files] if f.folder else []
    written = [target / r for r in rel] if f.folder else [target]
    return ExportResult(format=f.name, path=target, files=written, quantize=quantize, report=report)
