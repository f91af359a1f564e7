"""Hostile model files: small files built to cost gigabytes or minutes, or to make a library raise.

Every file is generated in tmp_path by :mod:`hostile_models` (nothing binary is committed).  The
memory-bound cases run :func:`check_model_file` in a child process whose address space is capped
at 1.5 GiB, and which imports only ``neuralstudio.ml.model_files`` (no Keras, no TensorFlow): before
the fix, ``neuralstudio info`` used 3.7 to 13 GB and up to 90 s on these files.  The fuzzers at the end check
that any archive or HDF5 file, however mangled, gives a ModelFileError or a config, nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import hostile_models as hm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralstudio.cli import main
from neuralstudio.core.errors import UserError
from neuralstudio.core.runs import RUN_FILE
from neuralstudio.ml import model_files
from neuralstudio.ml.model_files import ModelFileError, check_model_file

pytestmark = pytest.mark.backend_neutral  # files are refused before Keras reads them


CAP_BYTES = int(1.5 * 2**30)
CHECK_SECONDS = 5.0  # each refusal takes milliseconds; the child's imports take about 0.5 s

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
    from neuralstudio.ml.model_files import ModelFileError, check_model_file

    def peak_mb():  # ru_maxrss on Linux keeps the forked parent's peak across exec: read VmHWM
        try:
            with open("/proc/self/status") as fh:
                return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)

    start = time.perf_counter()
    try:
        check_model_file(sys.argv[2])
        outcome, message = "ok", ""
    except ModelFileError as exc:
        outcome, message = "refused", str(exc)
    print(json.dumps({
        "outcome": outcome, "message": message, "seconds": time.perf_counter() - start,
        "max_rss_mb": peak_mb(),
        "keras_imported": any(m.split(".")[0] in ("keras", "tensorflow") for m in sys.modules),
    }))
""")

needs_rlimit = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX only")


def _check_capped(path: Path) -> dict:
    """check_model_file(path) in a child limited to CAP_BYTES of address space; its report."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(CAP_BYTES), str(path)], capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["keras_imported"], "check_model_file must not import Keras or TensorFlow"
    return report


# ---------------------------------------------------------------- memory and time, under a cap
HOSTILE = {
    # name: (builder, words the refusal must contain)
    "config_bomb": (lambda d: hm.config_bomb(d / "config_bomb.keras"), ["decompression bomb", "config.json"]),
    "weights_zip_bomb": (lambda d: hm.weights_zip_bomb(d / "weights.keras"), ["decompression bomb",
                                                                               "model.weights.h5"]),
    "weights_shape_bomb": (lambda d: hm.weights_shape_bomb(d / "shape.keras"), ["declares weights", "stores only"]),
    "h5_shape_bomb": (lambda d: hm.legacy_h5(d / "shape.h5", huge_bytes=3 * hm.GIB), ["declares weights"]),
    "many_entries": (lambda d: hm.many_entries(d / "many.keras"), ["more than 1,000 files"]),
    "lying_sizes": (lambda d: _lying_sizes(d / "lying.keras"), ["damaged or truncated"]),
    "empty_objects": (lambda d: _empty_objects(d / "objects.keras"), ["nested objects"]),
    "nested_config": (lambda d: hm.nested_config(d / "nested.keras"), ["nested too deeply"]),
    "huge_layer": (lambda d: hm.huge_layer_config(d / "huge.keras"), ["weights", "memory"]),
}


def _lying_sizes(path: Path) -> Path:
    """config.json declares 100 bytes but inflates to 180 MiB: the read must stop at what is declared."""
    member = hm.Member.repeated("config.json", b"{}," * (hm.MIB // 3), 180, prefix=b"[", suffix=b"{}]")
    member.size = 100
    return hm.write_zip(path, [member, *hm.keras_members()[2:]])


def _empty_objects(path: Path) -> Path:
    """A 4 MiB config.json of ``{},`` (1.4 million empty objects): small enough to read, too many to build."""
    member = hm.Member.repeated("config.json", b"{}," * (hm.MIB // 3), 4, prefix=b"[", suffix=b"{}]")
    return hm.write_zip(path, [member, *hm.keras_members()[2:]])


@needs_rlimit
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_refused_quickly_in_little_memory(case, tmp_path):
    build, words = HOSTILE[case]
    path = build(tmp_path)
    report = _check_capped(path)
    assert report["outcome"] == "refused", report
    for word in words:
        assert word in report["message"], report["message"]
    assert path.name in report["message"]
    assert report["seconds"] < CHECK_SECONDS, report
    assert report["max_rss_mb"] < 300, report


@needs_rlimit
@pytest.mark.parametrize("name", ["tiny.keras", "tiny.h5", "bundled"])
def test_real_models_pass_under_the_same_cap(name, tmp_path):
    from neuralstudio.core.paths import bundled_models_dir

    if name == "bundled":
        path = bundled_models_dir() / "digits.keras"
    elif name.endswith(".h5"):
        path = hm.legacy_h5(tmp_path / name)
    else:
        path = hm.write_zip(tmp_path / name, hm.keras_members())
    report = _check_capped(path)
    assert report["outcome"] == "ok", report
    assert report["max_rss_mb"] < 200, report


# ---------------------------------------------------------------- each rule, in process
def _refused(path: Path, *words: str) -> str:
    with pytest.raises(ModelFileError) as info:
        check_model_file(path)
    assert isinstance(info.value, UserError)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def test_config_json_over_the_limit_is_refused_before_reading(tmp_path):
    member = hm.Member.repeated("config.json", b" " * hm.MIB, 17)  # compresses 1000:1 but stays under 50 MB
    path = hm.write_zip(tmp_path / "big.keras", [member, *hm.keras_members()[2:]])
    _refused(path, "model description", "not a real Keras model")


def test_total_size_beyond_the_memory_budget(tmp_path, monkeypatch):
    path = hm.write_zip(tmp_path / "m.keras", hm.keras_members())
    check_model_file(path)
    monkeypatch.setattr(model_files, "memory_budget", lambda: 1_000)
    _refused(path, "of memory to open", "more than this computer can spare")


def test_weights_declared_beyond_the_budget_in_a_plain_h5(tmp_path, monkeypatch):
    path = hm.legacy_h5(tmp_path / "m.h5")
    with h5py.File(path, "a") as f:
        f["optimizer_weights/m"] = np.zeros(1_000, np.float32)
    monkeypatch.setattr(model_files, "memory_budget", lambda: 2_000)  # the config's 10 weights fit, not 1,010
    _refused(path, "has weights that would need")


def test_memory_budget_is_at_most_half_the_ram_and_4_gib():
    budget = model_files.memory_budget()
    assert 0 < budget <= 4 * 2**30
    from neuralstudio.core import memory

    ram = memory._physical_memory_bytes()
    assert ram is None or budget <= ram // 2


def test_too_many_layers(tmp_path):
    config = hm.tiny_config()
    config["config"]["layers"] *= 2_600
    _refused(hm.write_zip(tmp_path / "m.keras", hm.keras_members(config=config)), "5,000")


def test_too_many_objects_in_the_weights_file(tmp_path, monkeypatch):
    import io

    monkeypatch.setattr(model_files, "_MIN_H5_OBJECTS", 1_000)  # a 2-layer model; 10,000 would be slow to build
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for i in range(1_100):
            f.create_group(f"g{i}")
    path = hm.write_zip(tmp_path / "m.keras", hm.keras_members(weights=buf.getvalue()))
    _refused(path, "weight arrays and groups")


def test_weights_stored_in_another_file_are_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(bytes(32))
    path = tmp_path / "m.h5"
    hm.legacy_h5(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("model_weights/leak", shape=(8,), dtype="float32", external=[(str(tmp_path / "secret.bin"),
                                                                                       0, 32)])
    _refused(path, "stored in other files")


def test_compressed_weights_member_is_still_walked(tmp_path):
    """An archive zipped again with deflate: the weights are unpacked to a temporary file and checked."""
    good = [hm.Member.deflated(m.name, m.payload) for m in hm.keras_members()]
    check_model_file(hm.write_zip(tmp_path / "ok.keras", good))
    bomb = hm.keras_members(weights=hm.tiny_weights_h5(huge_bytes=3 * hm.GIB))
    bomb = [hm.Member.deflated(m.name, m.payload) for m in bomb]
    _refused(hm.write_zip(tmp_path / "bomb.keras", bomb), "declares weights")


@pytest.mark.parametrize(("build", "words"), [
    (hm.encrypted_config, ["password-protected", "config.json"]),
    (hm.unsupported_compression, ["compressed with a method", "99"]),
    (lambda p: hm.odd_name_config(p, ["a", "b"]), ["name", "list instead of text"]),
    (lambda p: hm.odd_name_config(p, {"a": 1}), ["name", "JSON object instead of text"]),
    (lambda p: hm.write_zip(p, hm.keras_members()[:2]), ["no weights"]),
    (lambda p: hm.write_zip(p, hm.keras_members(config="[1, 2]")), ["does not describe a Keras model"]),
    (lambda p: hm.write_zip(p, hm.keras_members(config='{"class_name": 1' + "0" * 5000 + "}")), ["damaged"]),
    (lambda p: hm.write_zip(p, hm.keras_members(config=b"\xff\xfe{}")), ["damaged"]),
    (lambda p: hm.write_zip(p, hm.keras_members(weights=b"not hdf5" * 10)), ["damaged weights"]),
])
def test_broken_archives_give_one_plain_sentence(tmp_path, build, words):
    message = _refused(build(tmp_path / "m.keras"), *words)
    assert "Traceback" not in message and "\n" not in message


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"keras_version": b"\xff\xfe3.0"}, ["Keras version", "not readable text"]),
    ({"config": hm.tiny_config(name=["x"])}, ["list instead of text"]),
    ({"config": "[" * 50_000 + "]" * 50_000}, ["nested too deeply"]),
])
def test_broken_h5_files_give_one_plain_sentence(tmp_path, kwargs, words):
    _refused(hm.legacy_h5(tmp_path / "m.h5", **kwargs), *words)


def test_file_metadata_never_raises(tmp_path):
    from neuralstudio.ml.model_info import file_metadata

    assert file_metadata(hm.legacy_h5(tmp_path / "m.h5", keras_version=b"\xff3"))["backend"] == "tensorflow"
    assert file_metadata(hm.encrypted_config(tmp_path / "e.keras"))["keras_version"] == "3.15.1"
    members = hm.keras_members()
    members[0] = hm.Member.stored("metadata.json", "[" * 100_000 + "]" * 100_000)
    assert file_metadata(hm.write_zip(tmp_path / "n.keras", members))["keras_version"] is None
    members[0].flags |= 1
    assert file_metadata(hm.write_zip(tmp_path / "x.keras", members)) == {"keras_version": None, "saved": None,
                                                                           "backend": None}


def test_keras_errors_without_text_still_explain(tmp_path):
    explain = model_files._explain_load_error
    message = explain(tmp_path / "m.keras", RuntimeError())
    assert ": ." not in message and "RuntimeError" in message and "save it again" in message
    assert "not enough memory" in explain(tmp_path / "m.keras", MemoryError())
    assert ".." not in explain(tmp_path / "m.keras", ValueError("Bad layer."))


# ---------------------------------------------------------------- the command line: one line, exit 1
def _digit_png(path: Path) -> Path:
    from PIL import Image

    img = np.zeros((120, 120), np.uint8)
    img[15:105, 55:66] = 255
    Image.fromarray(img).save(path)
    return path


CLI_CASES = {
    "encrypted": lambda d: hm.encrypted_config(d / "enc.keras"),
    "method99": lambda d: hm.unsupported_compression(d / "m99.keras"),
    "config_bomb": lambda d: hm.config_bomb(d / "bomb.keras", mib=60),
    "name_list": lambda d: hm.odd_name_config(d / "names.keras", ["a"]),
    "bad_version": lambda d: hm.legacy_h5(d / "version.h5", keras_version=b"\xff\xfe"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
@pytest.mark.parametrize("command", ["info", "import", "predict"])
def test_cli_prints_one_error_line(case, command, tmp_path, capsys):
    path = CLI_CASES[case](tmp_path)
    argv = {"info": ["info", str(path)], "import": ["import", str(path), "-o", str(tmp_path / "x.nsd")],
            "predict": ["predict", str(path), str(_digit_png(tmp_path / "one.png"))]}[command]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and path.name in err[0], err
    assert not (tmp_path / "x.nsd").exists()


# ---------------------------------------------------------------- run.json beside a model (needs Keras)
@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,  # RecursionError in json.loads
    json.dumps({"format": "neuralstudio-run", "version": 1, "id": "r",
                "final": {"deep": json.loads("[" * 40 + "]" * 40)}}).encode(),  # parses, but too deep to use
    b'{"format": "neuralstudio-run", "version": 1, "id": 5}',  # not a run record
    b"{},{}" * 1000,
    b"\xff{",
])
def test_damaged_run_json_means_no_history_with_a_note(tmp_path, raw, capsys):
    pytest.importorskip("keras")
    run = tmp_path / "run-1"
    run.mkdir()
    model = hm.write_zip(run / "model.keras", hm.keras_members())
    (run / RUN_FILE).write_bytes(raw)
    assert main(["info", str(model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["history"] == {} and info["run"] == {}
    assert len(info["notes"]) == 1 and RUN_FILE in info["notes"][0]
    assert main(["info", str(model)]) == 0
    assert "note: " in capsys.readouterr().out


# ---------------------------------------------------------------- train --out net.h5 (needs Keras)
def test_train_out_h5_writes_a_real_hdf5_model(tmp_path, capsys):
    pytest.importorskip("keras")
    from neuralstudio.core.design import Design
    from neuralstudio.core.graph import Graph
    from neuralstudio.core.training_settings import TrainingSettings
    from neuralstudio.ml.model_files import load_keras_model

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.random((64, 28, 28), np.float32), y_train=rng.integers(0, 10, 64),
             x_test=rng.random((16, 28, 28), np.float32), y_test=rng.integers(0, 10, 16))
    g = Graph()
    nodes = [g.add_node("InputLayer", {"batch_shape": [None, 28, 28]}), g.add_node("Flatten", {}),
             g.add_node("Dense", {"units": 10, "activation": "softmax"})]
    for a, b in zip(nodes, nodes[1:]):
        g.connect(a.id, b.id)
    Design(graph=g, name="h5", training=TrainingSettings(epochs=1, batch_size=32)).save(tmp_path / "net.nsd")
    out = tmp_path / "net.h5"
    assert main(["train", str(tmp_path / "net.nsd"), "--data", str(tmp_path / "d.npz"), "--runs",
                 str(tmp_path / "runs"), "--out", str(out), "--json"]) == 0
    assert out.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert load_keras_model(out).count_params() == 28 * 28 * 10 + 10
    assert main(["train", str(tmp_path / "net.nsd"), "--out", str(tmp_path / "net.pt")]) == 1
    assert ".h5" in capsys.readouterr().err


# ---------------------------------------------------------------- fuzzers: only ModelFileError, or a config
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["class_name", "config", "name", "layers", "units", "build_config", "inbound_nodes", "x"]), inner, max_size=4),
    max_leaves=20)
_EXTRA_NAMES = ["config.json", "model.weights.h5", "model.weights.npz", "assets/a.txt", "x/../y", ""]


def _configs() -> st.SearchStrategy[bytes]:
    """A valid config, a mutated valid config, random JSON, or random bytes."""
    valid = json.dumps(hm.tiny_config()).encode()
    mutated = st.tuples(st.integers(0, len(valid) - 1), st.binary(min_size=1, max_size=4)).map(
        lambda cut: valid[:cut[0]] + cut[1] + valid[cut[0] + len(cut[1]):])
    return st.one_of(st.just(valid), mutated, _json_values.map(lambda v: json.dumps(v).encode()),
                     st.binary(max_size=64))


_WEIGHT_FILES = [hm.tiny_weights_h5(), hm.tiny_weights_h5(huge_bytes=2**28), b"\x89HDF\r\n\x1a\n" + bytes(64), b""]


def _member_data(draw: st.DrawFn, name: str) -> bytes:
    if name == "config.json":
        return draw(_configs())
    if name == "model.weights.h5":
        return draw(st.sampled_from(_WEIGHT_FILES))
    if name == "metadata.json":
        return json.dumps(draw(_json_values)).encode()
    return draw(st.binary(max_size=32))


def _mangle(draw: st.DrawFn, member: hm.Member) -> hm.Member:
    """Now and then, a compression method, flags, size or CRC that does not match the data."""
    for field, values in (("method", st.sampled_from([0, 8, 12, 14, 93, 99, 2])), ("flags", st.integers(0, 0xFFFF)),
                          ("size", st.integers(0, 2**32 - 1)), ("crc", st.integers(0, 2**32 - 1))):
        if draw(st.integers(0, 11)) == 0:
            setattr(member, field, draw(values))
    return member


@st.composite
def _archives(draw: st.DrawFn) -> bytes:
    """A Keras archive (each of its members sometimes missing or mangled), extra members, then damage."""
    names = [n for n in ("metadata.json", "config.json", "model.weights.h5") if draw(st.integers(0, 7))]
    names += draw(st.lists(st.sampled_from(_EXTRA_NAMES), max_size=3))
    members = [_mangle(draw, draw(st.sampled_from([hm.Member.stored, hm.Member.deflated]))(n, _member_data(draw, n)))
               for n in names]
    raw = hm.zip_bytes(members)
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "magic"]))
    if damage == "truncate":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif damage == "flip" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    elif damage == "magic":
        raw = draw(st.binary(min_size=4, max_size=4)) + raw[4:]
    return raw


def _returns_or_refuses(path: Path) -> None:
    try:
        check_model_file(path)
    except ModelFileError as exc:
        assert str(exc).strip(), "a refusal needs a message"


@FUZZ
@given(raw=_archives())
def test_fuzz_keras_archives(tmp_path, raw):
    path = tmp_path / "fuzz.keras"
    path.write_bytes(raw)
    _returns_or_refuses(path)


_attr_values = st.one_of(st.binary(max_size=16), st.text(max_size=16), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=True), st.lists(st.integers(0, 255), max_size=4))


@FUZZ
@given(config=_configs(), version=st.binary(max_size=8), extra=st.dictionaries(
    st.sampled_from(["model_config", "training_config", "keras_version", "backend", "layer_names", "x"]),
    _attr_values, max_size=3), on_weights=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 12_000)))
def test_fuzz_h5_files(tmp_path, config, version, extra, on_weights, cut):
    path = hm.legacy_h5(tmp_path / "fuzz.h5", keras_version=version)
    with h5py.File(path, "a") as f:
        try:
            f.attrs["model_config"] = np.bytes_(config)
        except (TypeError, ValueError):
            pass
        target = f["model_weights"] if on_weights else f
        for key, value in extra.items():
            try:
                target.attrs[key] = value
            except (TypeError, ValueError):  # a value h5py cannot store: nothing to test
                pass
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    _returns_or_refuses(path)


def test_fuzz_helpers_build_what_zipfile_reads(tmp_path):
    """The raw zip writer is right: zipfile reads its archives back, CRCs included."""
    path = hm.write_zip(tmp_path / "m.keras", hm.keras_members() + [hm.Member.deflated("a", "hello" * 100)])
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("a") == b"hello" * 100
    member = hm.Member.repeated("b", b"xyz", 1000, prefix=b"<", suffix=b">")
    with zipfile.ZipFile(hm.write_zip(tmp_path / "r.zip", [member])) as zf:
        assert zf.read("b") == b"<" + b"xyz" * 1000 + b">"
