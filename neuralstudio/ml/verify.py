"""Check an exported model against the Keras model it came from, with the artifact's own runtime.

An export can go wrong silently: a converter drops an op, quantisation costs
too much accuracy, the generated code builds a slightly different network.
So after every export the artifact is loaded the way its users will load it
(TensorFlow for a SavedModel, the LiteRT interpreter, onnxruntime, a fresh
Python process for the code and the inference script) and fed the same real
MNIST test images as the Keras model; the largest absolute difference of the
outputs and the share of equal predicted classes decide whether it passed.

The reference is always the Keras model itself called with ``training=False``
(what ``predict`` computes), never the inference graph an exporter traced: an
export that left out a layer which is not the identity at inference fails here.

Tolerances: float32 artifacts must match within ``1e-4`` (scaled by the output's
magnitude, so logits of size 30 get 3e-3); dynamic-range quantised ones must
predict the same class for at least 97% of the images.

The file names and formats come from :mod:`neuralstudio.ml.export_formats`;
this module never imports :mod:`neuralstudio.ml.export` (which imports it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuralstudio.core.errors import UserError
from neuralstudio.ml.export_formats import INFERENCE_SCRIPT, PYTHON_SCRIPT, get_format

FLOAT_ATOL = 1e-4
QUANTIZED_MIN_AGREEMENT = 0.97
SUBPROCESS_TIMEOUT_S = 300
SCRIPT_IMAGES = 16  # the inference script is run on this many PNG files


class VerificationError(UserError, RuntimeError):
    """The exported artifact does not behave like the Keras model; ``report`` says by how much."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        super().__init__(f"The {report.format} export FAILED verification: {report.summary()}")


@dataclass
class VerifyReport:
    """How an exported artifact compared with the Keras model.

    Args:
        format: the export format.
        runtime: what ran the artifact (e.g. ``onnxruntime 1.32.0``).
        samples: how many inputs were compared.
        data: what the inputs were, in words.
        max_abs_diff: the largest absolute difference between the two outputs.
        agreement: the share of inputs whose predicted class is the same (1.0 = all).
        tolerance: the largest difference allowed (None when only class agreement counts).
        min_agreement: the smallest agreement allowed.
        passed: True when both criteria hold.
        note: why it failed, or anything else worth knowing.
    """

    format: str
    runtime: str
    samples: int
    data: str
    max_abs_diff: float
    agreement: float
    tolerance: float | None
    min_agreement: float
    passed: bool
    note: str = ""

    def summary(self) -> str:
        """One line: the numbers and the verdict."""
        tol = f" (allowed {self.tolerance:.1e})" if self.tolerance is not None else ""
        verdict = "OK" if self.passed else "FAILED"
        text = (f"{verdict}: {self.runtime} on {self.samples} {self.data}: largest difference "
                f"{self.max_abs_diff:.2e}{tol}, same predicted class for {self.agreement:.1%} "
                f"(at least {self.min_agreement:.0%} needed)")
        return text + (f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def raise_if_failed(self) -> None:
        """Raise :class:`VerificationError` unless the artifact passed."""
        if not self.passed:
            raise VerificationError(self)


# --------------------------------------------------------------------------- inputs and comparison
def _input_shapes(model: Any) -> list[tuple[int | None, ...]]:
    return [tuple(None if d is None else int(d) for d in t.shape[1:]) for t in model.inputs]


def sample_inputs(model: Any, n: int = 64) -> tuple[list[np.ndarray], str]:
    """Real MNIST test images adapted to the model's input, or seeded random inputs when it takes no MNIST image.

    Returns:
        One array per model input, and a description of the data for the report.
    """
    from neuralstudio.ml.data import DataError, adapt_inputs, load_dataset

    shapes = _input_shapes(model)
    if len(shapes) == 1:
        try:
            ds = load_dataset("mnist-sample")
            x = ds.x_test if ds.x_test is not None else ds.x_train
            return [adapt_inputs(np.asarray(x[:n], dtype=np.float32), shapes[0])], "MNIST sample test images"
        except DataError:
            pass
    rng = np.random.default_rng(0)
    xs = [rng.random((n, *[1 if d is None else d for d in s]), dtype=np.float32) for s in shapes]
    return xs, "seeded random inputs (the model does not take 28x28 MNIST images)"


def _flat_outputs(out: Any, n: int) -> list[np.ndarray]:
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o, dtype=np.float64).reshape(n, -1) for o in out]


def _classes(y: np.ndarray) -> np.ndarray:
    return (y[:, 0] > 0.5).astype(int) if y.shape[1] == 1 else np.argmax(y, axis=1)


def compare(
    reference: Any,
    candidate: Any,
    n: int,
    *,
    fmt: str,
    runtime: str,
    data: str,
    quantized: bool = False,
) -> VerifyReport:
    """Compare two sets of model outputs for ``n`` inputs and judge them."""
    ref = _flat_outputs(reference, n)
    got = _flat_outputs(candidate, n)
    note = ""
    if len(ref) != len(got) or any(a.shape != b.shape for a, b in zip(ref, got)):
        shapes = [a.shape for a in ref], [b.shape for b in got]
        return VerifyReport(fmt, runtime, n, data, float("inf"), 0.0, None if quantized else FLOAT_ATOL,
                            QUANTIZED_MIN_AGREEMENT if quantized else 1.0, False,
                            f"the outputs have different shapes (Keras {shapes[0]}, export {shapes[1]})")
    diff = max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(ref, got))
    if not all(np.all(np.isfinite(b)) for b in got):
        diff, note = float("inf"), "the export produced NaN or infinite values"
    agreement = float(np.mean(_classes(ref[0]) == _classes(got[0]))) if n else 1.0
    if quantized:
        tolerance, min_agreement = None, QUANTIZED_MIN_AGREEMENT
        passed = agreement >= min_agreement and np.isfinite(diff)
    else:
        scale = max(1.0, max(float(np.max(np.abs(a))) if a.size else 0.0 for a in ref))
        tolerance, min_agreement = FLOAT_ATOL * scale, 1.0
        # Equal outputs within tolerance can still flip a near-tie; the difference is the criterion.
        passed = diff <= tolerance
        if passed and agreement < 1.0:
            note = "a near-tie flipped a predicted class, within the numeric tolerance"
    if not passed and not note:
        note = ("quantization changed too many predictions; export without --quantize"
                if quantized else "the export computes something different from the Keras model")
    return VerifyReport(fmt, runtime, n, data, diff, agreement, tolerance, min_agreement, bool(passed), note)


def _predict(model: Any, xs: list[np.ndarray]) -> Any:
    """The Keras model's outputs, by a direct call (no predict-function retracing for each batch size)."""
    import keras

    out = model(xs[0] if len(xs) == 1 else xs, training=False)
    if isinstance(out, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)


# --------------------------------------------------------------------------- runners, one per format
def _run_keras_file(path: Path, xs: list[np.ndarray], trusted: bool, **_: Any) -> tuple[Any, str]:
    import keras

    from neuralstudio.ml.model_files import load_keras_model

    loaded = load_keras_model(path, trusted=trusted)
    return _predict(loaded, xs), f"Keras {keras.__version__} load_model"


def _run_weights(path: Path, xs: list[np.ndarray], model: Any, **_: Any) -> tuple[Any, str]:
    import keras

    clone = keras.models.clone_model(model)
    clone.load_weights(path)
    return _predict(clone, xs), f"Keras {keras.__version__} load_weights"


def _run_savedmodel(path: Path, xs: list[np.ndarray], **_: Any) -> tuple[Any, str]:
    from neuralstudio.ml.backends import import_tensorflow

    tf = import_tensorflow()  # on JAX and PyTorch: TensorFlow without the GPU
    loaded = tf.saved_model.load(str(path))
    runtime = f"TensorFlow {tf.__version__} tf.saved_model.load"
    fn = loaded.signatures.get("serving_default")
    names = list(fn.structured_input_signature[1]) if fn is not None else []
    if len(xs) == 1 and len(names) == 1:
        # serving_default is what TF Serving calls.
        out = fn(**{names[0]: tf.constant(xs[0])})
        return [out[k].numpy() for k in sorted(out)], runtime + " (serving_default)"
    out = loaded.serve([tf.constant(x) for x in xs])  # several inputs: Keras's positional endpoint
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])], runtime + " (serve)"


def _litert_interpreter(path: Path) -> tuple[Any, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter  # the maintained LiteRT runtime, when installed

        return Interpreter(model_path=str(path)), "LiteRT interpreter (ai_edge_litert)"
    except ImportError:
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated in favour of ai_edge_litert, still the same runtime
            return tf.lite.Interpreter(model_path=str(path)), f"LiteRT interpreter (TensorFlow {tf.__version__})"


def _run_litert(path: Path, xs: list[np.ndarray], **_: Any) -> tuple[Any, str]:
    interp, runtime = _litert_interpreter(path)
    n = xs[0].shape[0]
    details = interp.get_input_details()
    for d, x in zip(details, xs):
        if tuple(d["shape"]) != x.shape:
            interp.resize_tensor_input(d["index"], list(x.shape))
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), xs):
        interp.set_tensor(d["index"], x.astype(d["dtype"]))
    interp.invoke()
    outs = [interp.get_tensor(d["index"]).reshape(n, -1) for d in interp.get_output_details()]
    return outs, runtime


def _run_onnx(path: Path, xs: list[np.ndarray], **_: Any) -> tuple[Any, str]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"Checking the ONNX export needs onnxruntime: {get_format('onnx').install_hint()}.") from None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(sess.get_inputs(), xs)}
    return sess.run(None, feed), f"onnxruntime {ort.__version__}"


_PYTHON_DRIVER = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("exported_model", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = mod.load_trained_model()
xs = [np.load(p) for p in sys.argv[3:]]
out = model.predict_on_batch(xs[0] if len(xs) == 1 else xs)
outs = out if isinstance(out, (list, tuple)) else [out]
np.savez(sys.argv[2], *[np.asarray(o) for o in outs])
"""


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run_subprocess(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=_subprocess_env(), capture_output=True, text=True,
                              timeout=SUBPROCESS_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} did not finish within {SUBPROCESS_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])[:500]
        raise RuntimeError(f"{what} exited with status {proc.returncode}: {tail}")
    return proc


def _run_python(path: Path, xs: list[np.ndarray], **_: Any) -> tuple[Any, str]:
    """Run the exported ``model.py`` in a new process, after checking that it is the generator's own code.

    The driver is passed with ``-c`` and runs in a folder this function made, so the only folder on the
    child's import path that is not Python's own is that one: nothing is imported from the export folder.
    """
    from neuralstudio.ml.code_check import check_generated_code

    script = path / PYTHON_SCRIPT
    check_generated_code(script.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="ns-verify-") as td:
        tdp = Path(td)
        inputs = []
        for i, x in enumerate(xs):
            np.save(tdp / f"x{i}.npy", x)
            inputs.append(str(tdp / f"x{i}.npy"))
        out_file = tdp / "out.npz"
        _run_subprocess([sys.executable, "-c", _PYTHON_DRIVER, str(script), str(out_file), *inputs],
                        tdp, f"the exported {PYTHON_SCRIPT}")
        with np.load(out_file) as z:
            outs = [z[k] for k in sorted(z.files, key=lambda s: int(s.split("_")[-1]))]
    return outs, f"{PYTHON_SCRIPT} in a new Python process"


def _write_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8), mode="L").save(path)


def _verify_inference_script(model: Any, path: Path, samples: int) -> VerifyReport:
    """Run ``predict.py`` on PNG files of MNIST digits and compare with the model on the same prepared images."""
    from neuralstudio.ml.data import load_dataset
    from neuralstudio.ml.inference import check_model, to_probabilities
    from neuralstudio.ml.preprocess import prepare_image_file

    reshape = check_model(model)
    n = min(samples, SCRIPT_IMAGES)
    ds = load_dataset("mnist-sample")
    images = (ds.x_test if ds.x_test is not None else ds.x_train)[:n]
    with tempfile.TemporaryDirectory(prefix="ns-verify-") as td:
        tdp = Path(td)
        pngs = []
        for i, img in enumerate(images):
            p = tdp / f"digit_{i:02d}.png"
            _write_png(np.asarray(img), p)
            pngs.append(p)
        prepared = np.stack([prepare_image_file(p) for p in pngs]).astype(np.float32)
        reference = to_probabilities(np.asarray(_predict(model, [prepared.reshape((n, *reshape))])).reshape(n, -1))
        try:
            proc = _run_subprocess([sys.executable, str(path / INFERENCE_SCRIPT), "--json", *map(str, pngs)],
                                   tdp, f"the exported {INFERENCE_SCRIPT}")
            rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
            if len(rows) != n:
                raise RuntimeError(f"{INFERENCE_SCRIPT} printed {len(rows)} results for {n} images")
            got = np.asarray([r["probabilities"] for r in rows], dtype=np.float64)
        except (RuntimeError, ValueError, KeyError) as exc:
            return _failed("inference-script", f"{INFERENCE_SCRIPT} in a new Python process", n,
                           "MNIST digits as PNG files", str(exc))
    return compare(reference, got, n, fmt="inference-script", runtime=f"{INFERENCE_SCRIPT} in a new Python process",
                   data="MNIST digits as PNG files")


def _failed(fmt: str, runtime: str, n: int, data: str, why: str) -> VerifyReport:
    return VerifyReport(fmt, runtime, n, data, float("inf"), 0.0, None, 1.0, False, f"could not run it: {why}")


# One check per registry format (tests/ml/test_export_formats.py checks that none is missing): a runner
# loads the artifact with its own runtime and returns its outputs for sample_inputs, which verify_export
# compares with the Keras model's; a format that needs inputs of its own has a whole check instead.
_RUNNERS = {
    "keras": _run_keras_file,
    "h5": _run_keras_file,
    "weights": _run_weights,
    "savedmodel": _run_savedmodel,
    "litert": _run_litert,
    "onnx": _run_onnx,
    "python": _run_python,
}
_OWN_CHECKS = {
    "inference-script": _verify_inference_script,
}


def verify_export(
    model: Any,
    path: str | os.PathLike[str],
    fmt: str,
    *,
    quantize: str | None = None,
    trusted: bool = False,
    samples: int = 64,
) -> VerifyReport:
    """Load the exported artifact with its own runtime and compare it with ``model`` on real images.

    Args:
        model: the Keras model that was exported.
        path: the exported file or folder.
        fmt: its format (a name in :data:`neuralstudio.ml.export_formats.FORMATS`).
        quantize: the quantisation used (judged by class agreement instead of the difference).
        trusted: the ``keras``/``h5`` artifact may be reloaded with Lambda layers.
        samples: how many images to compare.

    Returns:
        The :class:`VerifyReport`; check ``passed`` (or call ``raise_if_failed()``).
    """
    p = Path(path)
    own_check = _OWN_CHECKS.get(fmt)
    if own_check is not None:
        return own_check(model, p, samples)
    runner = _RUNNERS.get(fmt)
    if runner is None:
        get_format(fmt)  # raises the message listing the formats
        raise UserError(f"No verification for the {fmt} format.")
    xs, data = sample_inputs(model, samples)
    n = xs[0].shape[0]
    reference = _predict(model, xs)
    try:
        got, runtime = runner(p, xs, model=model, trusted=trusted)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - an artifact its runtime cannot run is a failed export
        text = " ".join(str(exc).split())[:400]
        return _failed(fmt, f"the {fmt} runtime", n, data, f"{type(exc).__name__}: {text}")
    return compare(reference, got, n, fmt=fmt, runtime=runtime, data=data, quantized=quantize is not None)
