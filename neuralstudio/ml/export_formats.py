"""The export formats: one registry that the exporter, the verifier, the CLI and the Export dialog all read.

Each :class:`ExportFormat` says everything that is known about a format
without running it: its name, file suffix or folder contents, label and use,
how an export is named by default, which file names it accepts, and its
capabilities (quantisation modes, whether it is built from the design, the
optional packages it needs).  The code that writes a format lives in
:mod:`neuralstudio.ml.export` and the code that checks it in
:mod:`neuralstudio.ml.verify`, each in a table keyed by these names; both
import this module and this module imports neither, so the three stay acyclic
(the ``acyclic_siblings`` contract in ``pyproject.toml``).

This module imports only the standard library and :mod:`neuralstudio.core`:
``neuralstudio --help`` builds the ``export`` command's help from it, and must
not pay for Keras, TensorFlow or numpy (a ``forbidden`` contract in
``pyproject.toml`` keeps it that way).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from neuralstudio.core.errors import UserError


class ExportError(UserError, ValueError):
    """An export that cannot be done (bad format, bad target, missing tool); the message says what to do."""


# The files the folder formats write; the verifier runs the scripts by these names.
PYTHON_SCRIPT = "model.py"
PYTHON_WEIGHTS = "model.weights.h5"
INFERENCE_SCRIPT = "predict.py"
INFERENCE_MODEL = "model.keras"
SAVEDMODEL_MARKER = "saved_model.pb"
PYTHON_CACHE = "__pycache__"  # appears beside a script once it was run

# Suffixes a *model* file may have; stripped to name an export after the model.
_MODEL_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5")


@dataclass(frozen=True)
class ExportFormat:
    """One export format: what it produces, how it is named and what it can do.

    Args:
        name: the ``--format`` value.
        suffix: the extension of the output file, or "" for a folder.
        label: a short human name (File > Export lists these).
        use: which tools read it, in one line (shown in the dialog and ``--help``).
        aliases: other suffixes a file of this format may end in (``.hdf5`` for ``h5``).
        files: for a folder format, the names the export writes at the top of the folder; the first one
            marks a previous export of this kind (docs/ARCHITECTURE.md, "Untrusted files": only such a
            folder is ever replaced).
        byproducts: names that may appear beside ``files`` once the export was used (Python's cache);
            a previous export holding anything outside ``files`` and ``byproducts`` is never replaced.
        quantize: the quantisation modes the format supports (empty: none).
        uses_design: the export is built from the design (the network as drawn), not only the model.
        requires: optional packages the writer needs (import names).
        verify_requires: optional packages the verification needs to run the artifact.
        extra: the ``pip install 'neuralstudio[EXTRA]'`` extra that brings ``requires`` and ``verify_requires``.
        backends: the Keras backends whose exporter writes this format (Keras's own exporters; measured here).
        backend_requires: per backend, the packages its writer needs instead of ``requires`` (ONNX: tf2onnx on
            TensorFlow, jax2onnx on JAX, PyTorch's own ``torch.onnx``).
        unsupported: per backend not in ``backends``, why not, in a sentence that names what to do instead.
    """

    name: str
    suffix: str
    label: str
    use: str
    aliases: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    byproducts: tuple[str, ...] = ()
    quantize: tuple[str, ...] = ()
    uses_design: bool = False
    requires: tuple[str, ...] = ()
    verify_requires: tuple[str, ...] = ()
    extra: str = ""
    backends: tuple[str, ...] = ("tensorflow", "jax", "torch")
    backend_requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unsupported: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.folder != bool(self.files):
            raise ValueError(f"{self.name}: a folder format lists its files, a file format lists none")

    @property
    def folder(self) -> bool:
        """True when the export is a folder rather than one file."""
        return not self.suffix

    @property
    def marker(self) -> str:
        """The file whose presence makes a folder a previous export of this format ("" for a file format)."""
        return self.files[0] if self.files else ""

    @property
    def contents(self) -> frozenset[str]:
        """Every name a previous folder export of this format may hold (and so may be replaced)."""
        return frozenset(self.files) | frozenset(self.byproducts)

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The file suffixes this format accepts, its own first (empty for a folder)."""
        return (self.suffix, *self.aliases) if self.suffix else ()

    # ------------------------------------------------------------------ naming
    def accepts_file_name(self, name: str) -> bool:
        """Whether a file called ``name`` is of this format (Keras and other tools pick the format from the name).

        A name that ends in a longer suffix of another format is that format's, not this one's:
        ``m.weights.h5`` is a weights file, not an ``h5`` model.
        """
        low = name.lower()
        own = [s for s in self.suffixes if low.endswith(s) and low != s]
        if not own:
            return False
        matched = max(own, key=len)
        return not any(low.endswith(s) and len(s) > len(matched)
                       for other in FORMATS.values() if other is not self for s in other.suffixes)

    def default_output(self, model_path: str | os.PathLike[str], quantize: str | None = None) -> Path:
        """Where an export goes when no path is given: beside the model, named after it.

        A folder is ``STEM_FORMAT``; a file is ``STEM[_QUANTIZE]SUFFIX``, or ``STEM_exportSUFFIX`` when
        that would be the model file itself (exporting ``m.keras`` as ``keras`` must not overwrite it).
        """
        src = Path(model_path)
        stem = src.name
        for suf in _MODEL_SUFFIXES:
            if stem.lower().endswith(suf):
                stem = stem[: -len(suf)]
                break
        if self.folder:
            return src.parent / f"{stem}_{self.name.replace('-', '_')}"
        name = stem + (f"_{str(quantize).lower()}" if quantize else "") + self.suffix
        if name.lower() == src.name.lower():
            name = f"{stem}_export{self.suffix}"
        return src.parent / name

    # ------------------------------------------------------------------ capabilities
    def writer_requires(self, backend: str | None = None) -> tuple[str, ...]:
        """The optional packages the writer needs on ``backend`` (the registry's default list when None)."""
        return dict(self.backend_requires).get(backend or "", self.requires)

    def missing_packages(self, *, verify: bool = True, backend: str | None = None) -> list[str]:
        """The optional packages this format needs (to write, and to verify when ``verify``) that are not installed.

        ``importlib.util.find_spec`` finds a package without importing it, so this stays cheap.
        """
        names = self.writer_requires(backend) + (self.verify_requires if verify else ())
        return [n for n in names if importlib.util.find_spec(n) is None]

    def install_hint(self, backend: str | None = None) -> str:
        """``pip install 'neuralstudio[onnx]' (tf2onnx, onnx, onnxruntime)``, or "" when nothing is optional."""
        if not self.extra:
            return ""
        return (f"pip install 'neuralstudio[{self.extra}]' "
                f"({', '.join(self.writer_requires(backend) + self.verify_requires)})")

    def refusal(self, backend: str) -> str | None:
        """Why this format cannot be written on ``backend`` (None when it can): said before anything is done."""
        if backend in self.backends:
            return None
        why = dict(self.unsupported).get(backend, "")
        return (f"The {self.name} export is not available on the {_BACKEND_LABELS.get(backend, backend)} backend"
                + (f": {why}." if why else ".") + " Nothing was written.")

    def require_packages(self, *, verify: bool = True, backend: str | None = None) -> None:
        """Refuse, before anything is written, an export that ``backend`` cannot write or whose optional packages
        are not installed.

        Raises:
            ExportError: the backend has no exporter for it, or a package is missing; the message says what to do.
        """
        if backend is not None and (why := self.refusal(backend)):
            raise ExportError(why)
        missing = self.missing_packages(verify=verify, backend=backend)
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ExportError(f"The {self.name} export needs {' and '.join(missing)}, which {verb} not installed: "
                              f"{self.install_hint(backend)}, then export again.")


_BACKEND_LABELS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("keras", ".keras", "Keras model (.keras)", "Keras 3 / NeuralStudio: keras.saving.load_model"),
        ExportFormat("h5", ".h5", "Legacy Keras HDF5 (.h5)", "older Keras and tf.keras 2.x: load_model('x.h5')",
                     aliases=(".hdf5",)),
        ExportFormat("weights", ".weights.h5", "Weights only (.weights.h5)",
                     "the same architecture in Keras: model.load_weights"),
        ExportFormat("savedmodel", "", "TensorFlow SavedModel (folder)",
                     "TF Serving, tf.saved_model.load, TensorFlow.js converter",
                     files=(SAVEDMODEL_MARKER, "fingerprint.pb", "variables", "assets"),
                     backends=("tensorflow", "jax"),
                     unsupported=(("torch", "Keras writes SavedModels from TensorFlow and JAX models only (its "
                                   "PyTorch path fails on torch.export's shapes). Export onnx or keras instead, "
                                   "or start NeuralStudio with --backend tensorflow and export the .keras file "
                                   "from there"),)),
        ExportFormat("litert", ".tflite", "LiteRT / TensorFlow Lite (.tflite)",
                     "Android, iOS, microcontrollers: the LiteRT interpreter", quantize=("dynamic",),
                     backends=("tensorflow",),
                     unsupported=(("jax", "Keras's LiteRT exporter needs the TensorFlow or PyTorch backend. Save the "
                                   "model as .keras and export it with --backend tensorflow"),
                                  ("torch", "Keras's LiteRT exporter needs the litert-torch package there, which "
                                   "NeuralStudio does not install or verify. Save the model as .keras and export it "
                                   "with --backend tensorflow"))),
        ExportFormat("onnx", ".onnx", "ONNX (.onnx)", "onnxruntime, OpenVINO, TensorRT, other frameworks",
                     requires=("tf2onnx", "onnx"), verify_requires=("onnxruntime",), extra="onnx",
                     backends=("tensorflow", "torch"), backend_requires=(("torch", ("onnx",)),),
                     unsupported=(("jax", "Keras's JAX path (jax2onnx 0.17) wrote a convnet's MaxPool as a node "
                                   "onnxruntime refuses (measured here). Save the model as .keras and export it "
                                   "with --backend tensorflow or torch"),)),
        ExportFormat("python", "", "Python code + weights (folder)",
                     "model.py rebuilds and trains the network in plain Keras, loads the trained weights",
                     files=(PYTHON_SCRIPT, PYTHON_WEIGHTS), byproducts=(PYTHON_CACHE,), uses_design=True),
        ExportFormat("inference-script", "", "Inference script + model (folder)",
                     "predict.py classifies digit images with the model, without NeuralStudio",
                     files=(INFERENCE_SCRIPT, INFERENCE_MODEL), byproducts=(PYTHON_CACHE,)),
    )
}

DEFAULT_FORMAT = "keras"

# Every quantisation mode some format supports, in the order the formats declare them.
QUANTIZE_CHOICES: tuple[str, ...] = tuple(dict.fromkeys(q for f in FORMATS.values() for q in f.quantize))


def format_names() -> str:
    """``keras, h5, ...`` for messages."""
    return ", ".join(FORMATS)


def quantizable_formats() -> str:
    """``the litert format`` (or ``the a and b formats``): the formats that can be quantised, for messages."""
    names = [f.name for f in FORMATS.values() if f.quantize]
    return f"the {' and '.join(names)} format" + ("s" if len(names) > 1 else "")


def get_format(name: str) -> ExportFormat:
    """The format called ``name`` (any case, surrounding spaces ignored).

    Raises:
        ExportError: no such format; the message lists them.
    """
    fmt = FORMATS.get(str(name).strip().lower())
    if fmt is None:
        raise ExportError(f"Unknown export format {name!r}. Choose one of: {format_names()}.")
    return fmt


def check_quantize(fmt: ExportFormat, quantize: str | None) -> str | None:
    """``quantize`` normalised (lower case), or None; refused when unknown or not supported by ``fmt``.

    Raises:
        ExportError: an unknown mode, or one ``fmt`` does not support.
    """
    if quantize is None:
        return None
    mode = str(quantize).lower()
    if mode not in QUANTIZE_CHOICES:
        raise ExportError(f"Unknown quantization {mode!r}; choose one of: {', '.join(QUANTIZE_CHOICES)}.")
    if mode not in fmt.quantize:
        raise ExportError(f"Quantization applies to {quantizable_formats()} only, not {fmt.name}.")
    return mode


def default_output(model_path: str | os.PathLike[str], fmt: str, quantize: str | None = None) -> Path:
    """Where an export in format ``fmt`` goes when no path is given (see :meth:`ExportFormat.default_output`)."""
    return get_format(fmt).default_output(model_path, quantize)
