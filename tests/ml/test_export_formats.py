"""The export-format registry: each format's naming, files and capabilities, and that every format is implemented.

No Keras here: the registry is what ``neuralstudio --help`` reads, and it must stay cheap to import.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from neuralstudio.ml import export_formats as reg
from neuralstudio.ml.export_formats import DEFAULT_FORMAT, FORMATS, ExportError, ExportFormat, get_format

pytestmark = pytest.mark.backend_neutral  # the registry imports no Keras


# name: (folder, quantize modes, uses the design, packages to write, packages to verify, pip extra)
CAPABILITIES = {
    "keras": (False, (), False, (), (), ""),
    "h5": (False, (), False, (), (), ""),
    "weights": (False, (), False, (), (), ""),
    "savedmodel": (True, (), False, (), (), ""),
    "litert": (False, ("dynamic",), False, (), (), ""),
    "onnx": (False, (), False, ("tf2onnx", "onnx"), ("onnxruntime",), "onnx"),
    "python": (True, (), True, (), (), ""),
    "inference-script": (True, (), False, (), (), ""),
}

# name: default output for runs/a/model.keras, and for m.h5 with the format's first quantisation mode (if any)
NAMING = {
    "keras": ("runs/a/model_export.keras", "m.keras"),
    "h5": ("runs/a/model.h5", "m_export.h5"),
    "weights": ("runs/a/model.weights.h5", "m.weights.h5"),
    "savedmodel": ("runs/a/model_savedmodel", "m_savedmodel"),
    "litert": ("runs/a/model.tflite", "m_dynamic.tflite"),
    "onnx": ("runs/a/model.onnx", "m.onnx"),
    "python": ("runs/a/model_python", "m_python"),
    "inference-script": ("runs/a/model_inference_script", "m_inference_script"),
}

# name: (the files a folder export writes, its marker first; everything a previous export may hold)
FOLDER_FILES = {
    "savedmodel": (("saved_model.pb", "fingerprint.pb", "variables", "assets"),
                   {"saved_model.pb", "fingerprint.pb", "variables", "assets"}),
    "python": (("model.py", "model.weights.h5"), {"model.py", "model.weights.h5", "__pycache__"}),
    "inference-script": (("predict.py", "model.keras"), {"predict.py", "model.keras", "__pycache__"}),
}


def test_the_tables_here_cover_exactly_the_registry():
    """A format added to the registry must be given its expected naming and capabilities here too."""
    assert list(CAPABILITIES) == list(FORMATS) == list(NAMING)
    assert set(FOLDER_FILES) == {n for n, f in FORMATS.items() if f.folder}
    assert DEFAULT_FORMAT == "keras" and DEFAULT_FORMAT in FORMATS


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_declares_its_capabilities(name):
    f = FORMATS[name]
    assert f.name == name and f.label and f.use
    assert (f.folder, f.quantize, f.uses_design, f.requires, f.verify_requires, f.extra) == CAPABILITIES[name]
    assert f.folder == (f.suffix == "") and (f.folder or f.suffix.startswith("."))
    if f.extra:
        packages = ", ".join(f.requires + f.verify_requires)
        assert f.install_hint() == f"pip install 'neuralstudio[{f.extra}]' ({packages})"
    else:
        assert f.install_hint() == ""


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_names_its_default_output(name):
    f = FORMATS[name]
    from_keras, from_h5 = NAMING[name]
    assert f.default_output("runs/a/model.keras") == Path(from_keras)
    assert f.default_output("m.h5", f.quantize[0] if f.quantize else None) == Path(from_h5)
    assert reg.default_output("runs/a/model.keras", name.upper()) == Path(from_keras)


def test_a_default_output_never_is_the_model_file_itself():
    for src in ("m.keras", "m.h5", "m.weights.h5", "M.KERAS"):
        for f in FORMATS.values():
            assert f.default_output(src).name.lower() != src.lower()


@pytest.mark.parametrize("name", list(FOLDER_FILES))
def test_each_folder_format_lists_what_it_writes(name):
    f = FORMATS[name]
    files, contents = FOLDER_FILES[name]
    assert f.files == files and f.marker == files[0] and f.contents == contents
    assert f.suffixes == ()


def test_file_formats_list_no_folder_files():
    for f in FORMATS.values():
        if not f.folder:
            assert f.files == () and f.marker == "" and f.suffixes[0] == f.suffix


def test_the_writers_and_verifiers_use_the_registry_file_names():
    assert (reg.PYTHON_SCRIPT, reg.PYTHON_WEIGHTS) == FORMATS["python"].files
    assert (reg.INFERENCE_SCRIPT, reg.INFERENCE_MODEL) == FORMATS["inference-script"].files
    assert reg.SAVEDMODEL_MARKER == FORMATS["savedmodel"].marker


@pytest.mark.parametrize(
    ("name", "accepted", "refused"),
    [
        ("keras", ["m.keras", "M.KERAS"], ["m.h5", ".keras", "m.keras.zip"]),
        ("h5", ["m.h5", "m.HDF5"], ["m.weights.h5", ".h5", ".hdf5", "m.keras"]),
        ("weights", ["m.weights.h5"], ["m.h5", ".weights.h5"]),
        ("litert", ["m.tflite"], ["m.onnx", "m.lite"]),
        ("onnx", ["m.onnx"], ["m.tflite"]),
        ("savedmodel", [], ["m.pb", "m"]),
    ],
)
def test_file_names_each_format_accepts(name, accepted, refused):
    f = FORMATS[name]
    assert all(f.accepts_file_name(n) for n in accepted)
    assert not any(f.accepts_file_name(n) for n in refused)


def test_unknown_format_lists_the_formats():
    with pytest.raises(ExportError) as err:
        get_format("tfjs")
    assert all(name in str(err.value) for name in FORMATS)
    assert get_format(" LiteRT ") is FORMATS["litert"]


def test_quantization_is_checked_against_the_format():
    assert reg.QUANTIZE_CHOICES == ("dynamic",)
    assert reg.check_quantize(FORMATS["litert"], "Dynamic") == "dynamic"
    assert reg.check_quantize(FORMATS["keras"], None) is None
    with pytest.raises(ExportError, match="Unknown quantization 'int4'"):
        reg.check_quantize(FORMATS["litert"], "int4")
    with pytest.raises(ExportError, match="applies to the litert format only, not onnx"):
        reg.check_quantize(FORMATS["onnx"], "dynamic")


def test_missing_optional_packages_are_named_with_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n in {"tf2onnx", "onnxruntime"} else real(n, *a))
    onnx = FORMATS["onnx"]
    assert onnx.missing_packages() == ["tf2onnx", "onnxruntime"]
    assert onnx.missing_packages(verify=False) == ["tf2onnx"]
    with pytest.raises(ExportError, match=r"needs tf2onnx and onnxruntime, which are not installed: pip install "
                                          r"'neuralstudio\[onnx\]' \(tf2onnx, onnx, onnxruntime\)"):
        onnx.require_packages()
    FORMATS["keras"].require_packages()  # nothing optional


def test_a_folder_format_must_list_its_files():
    with pytest.raises(ValueError, match="lists its files"):
        ExportFormat("x", "", "X (folder)", "nothing")
    with pytest.raises(ValueError, match="lists its files"):
        ExportFormat("y", ".y", "Y", "nothing", files=("a",))


def test_every_format_has_a_writer_and_a_verifier():
    """The registry names the formats; export.py writes each one and verify.py checks each one, none left out."""
    from neuralstudio.ml import export, verify

    assert set(export._WRITERS) == set(FORMATS)
    assert set(verify._RUNNERS) | set(verify._OWN_CHECKS) == set(FORMATS)
    assert not set(verify._RUNNERS) & set(verify._OWN_CHECKS)


def test_the_exporter_still_offers_the_registry_names():
    """Callers that import the registry's names from neuralstudio.ml.export get the same objects."""
    from neuralstudio.ml import export

    assert export.FORMATS is FORMATS and export.get_format is get_format and export.ExportError is ExportError
    assert export.default_output is reg.default_output and export.PYTHON_SCRIPT == reg.PYTHON_SCRIPT
