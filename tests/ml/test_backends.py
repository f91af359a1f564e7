"""The backend seam: choosing a backend, what differs between them, one model file on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from neuralstudio.ml import backends
from neuralstudio.ml.backends import BackendError

INSTALLED = [b for b in backends.BACKENDS if backends.installed(b)]


def _child(code: str, backend: str, home: str, *args: str, timeout: float = 300) -> dict:
    """Run ``code`` in a fresh Python on ``backend``; its last printed line as JSON."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", NEURALSTUDIO_HOME=home)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_names_are_normalised_and_unknown_ones_refused():
    assert backends.normalize("PyTorch") == "torch" and backends.normalize(" tf ") == "tensorflow"
    with pytest.raises(BackendError, match="tensorflow, jax, torch"):
        backends.normalize("mxnet")
    assert backends.label("torch") == "PyTorch"


def test_the_flag_wins_over_the_saved_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSTUDIO_HOME", str(tmp_path))
    monkeypatch.setattr(backends, "_ENV_AT_START", None)
    assert backends.requested().source == "default"
    backends.save_choice("jax")
    assert json.loads((tmp_path / backends.CHOICE_FILE).read_text())["backend"] == "jax"
    assert backends.requested() == backends.Choice("jax", "settings")
    assert backends.requested("torch") == backends.Choice("torch", "--backend")
    monkeypatch.setattr(backends, "_ENV_AT_START", "tensorflow")
    assert backends.requested() == backends.Choice("tensorflow", "KERAS_BACKEND")
    backends.save_choice(None)
    assert not (tmp_path / backends.CHOICE_FILE).exists()


def test_a_damaged_choice_file_reads_as_no_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSTUDIO_HOME", str(tmp_path))
    monkeypatch.setattr(backends, "_ENV_AT_START", None)
    for text in ("{not json", '{"backend": "mxnet"}', '["jax"]', '{"backend": 3}'):
        (tmp_path / backends.CHOICE_FILE).write_text(text)
        assert backends.saved_choice() is None and backends.requested().name == "tensorflow"


def test_switching_once_keras_runs_is_refused_with_what_to_do():
    other = next(b for b in backends.BACKENDS if b != keras.backend.backend())
    if not backends.installed(other):
        pytest.skip(f"{other} is not installed")
    with pytest.raises(BackendError, match="restart with --backend"):
        backends.select(other)
    assert backends.select(keras.backend.backend()).name == keras.backend.backend()


def test_a_saved_choice_that_is_not_installed_falls_back_for_the_app_only(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSTUDIO_HOME", str(tmp_path))
    monkeypatch.setattr(backends, "_ENV_AT_START", None)
    backends.save_choice("jax")
    monkeypatch.setattr(backends, "installed", lambda name: name == "tensorflow")
    monkeypatch.setattr(backends, "_running", lambda: None)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(BackendError, match=r'pip install "neuralstudio\[jax\]"'):
        backends.select()
    assert backends.select(fall_back=True) == backends.Choice("tensorflow", "default")
    with pytest.raises(BackendError, match="not installed"):
        backends.select("jax", fall_back=True)  # asked for explicitly: never silently replaced


def test_the_forward_function_matches_a_plain_call_for_any_batch_size():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh"),
                              keras.layers.Dense(3, activation="softmax")])
    fn = backends.forward_function(model, (6,))
    for n in (1, 7):
        x = np.random.default_rng(n).normal(size=(n, 6)).astype("float32")
        np.testing.assert_allclose(fn(x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    model.layers[0].kernel.assign(np.zeros((6, 5), "float32"))  # weights read at each call, not frozen in
    np.testing.assert_allclose(fn(np.ones((2, 6), "float32")), keras.ops.convert_to_numpy(model(np.ones((2, 6)))),
                               rtol=1e-5, atol=1e-6)


def test_the_training_loop_rules_of_the_backend():
    backend = keras.backend.backend()
    assert backends.max_steps_per_execution() == (1 if backend == "torch" else None)
    assert backends.feeds_tf_data() == (backend == "tensorflow")


def test_the_capability_table_covers_every_job_and_format():
    rows = backends.capability_table()
    jobs = [r["job"] for r in rows]
    assert "export savedmodel" in jobs and "training (pause/stop, NaN, early stopping, seeds)" in jobs
    assert all(set(r) == {"job", *backends.BACKENDS} for r in rows)
    by_job = {r["job"]: r for r in rows}
    assert by_job["export savedmodel"]["torch"] == "no" and by_job["export litert"]["jax"] == "no"
    assert by_job["export onnx"]["jax"] == "no" and by_job["export onnx"]["torch"] == "yes (needs onnx)"
    assert "PyTorch" in backends.format_capability_table().splitlines()[0]


def test_an_export_the_backend_cannot_write_is_refused_before_anything_is_written(tmp_path):
    from neuralstudio.ml.export import export_model
    from neuralstudio.ml.export_formats import ExportError, get_format

    backend = keras.backend.backend()
    unsupported = [f for f in ("savedmodel", "litert", "onnx") if get_format(f).refusal(backend)]
    if not unsupported:
        pytest.skip(f"{backend} writes every graph format")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    for name in unsupported:
        target = tmp_path / f"m_{name}"
        with pytest.raises(ExportError, match="not available on the"):
            export_model(model, target, name)
        assert not target.exists() and list(tmp_path.iterdir()) == []


TRAIN_AND_SAVE = """
    import json, sys
    sys.path.insert(0, sys.argv[2])
    import keras, numpy as np
    from support import image_mlp, mnist_slice
    from neuralstudio.ml.trainer import Trainer
    r = Trainer(image_mlp(epochs=2), dataset=mnist_slice(1000, 200), out_path=sys.argv[1]).run()
    x = mnist_slice(1000, 200).x_test[:8]
    np.save(sys.argv[1] + ".out.npy", keras.ops.convert_to_numpy(r.model(x.astype("float32"))))
    print(json.dumps({"status": r.status, "message": r.message}))
"""

OPEN_PREDICT_CONTINUE = """
    import json, sys
    sys.path.insert(0, sys.argv[2])
    import keras, numpy as np
    from support import image_mlp, mnist_slice
    from neuralstudio.ml.model_files import load_keras_model
    from neuralstudio.ml.inference import Predictor
    from neuralstudio.ml.trainer import Trainer
    model = load_keras_model(sys.argv[1])
    ds = mnist_slice(1000, 200)
    x = ds.x_test[:8].astype("float32")
    fast = float(np.max(np.abs(Predictor(model).raw_batch(x) - keras.ops.convert_to_numpy(model(x)))))
    diff = float(np.max(np.abs(keras.ops.convert_to_numpy(model(x)) - np.load(sys.argv[1] + ".out.npy"))))
    r = Trainer(image_mlp(epochs=1), dataset=ds, initial_weights=model.get_weights()).run()
    print(json.dumps({"backend": keras.backend.backend(), "diff": diff, "fast": fast, "status": r.status,
                      "message": r.message, "accuracy": r.test_accuracy}))
"""


@pytest.mark.skipif(len(INSTALLED) < 2, reason="needs a second Keras backend installed")
def test_one_model_file_opens_predicts_the_same_and_trains_on_every_backend(tmp_path):
    """Trained and saved on TensorFlow, the .keras file opens on the others, predicts the same and trains on."""
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = str(tmp_path / "m.keras")
    made = _child(TRAIN_AND_SAVE, "tensorflow", str(tmp_path / "home"), path, tests_dir)
    assert made["status"] == "finished", made["message"]
    for backend in INSTALLED:
        out = _child(OPEN_PREDICT_CONTINUE, backend, str(tmp_path / "home"), path, tests_dir)
        assert out["backend"] == backend
        assert out["diff"] < 1e-5, f"{backend} predicts differently: {out['diff']}"
        assert out["fast"] < 1e-5, f"{backend}'s fast path differs from a plain call: {out['fast']}"
        assert out["status"] == "finished" and out["accuracy"] > 0.6, out  # from the file's weights, not from scratch


@pytest.mark.skipif(not backends.installed("jax"), reason="JAX is not installed")
def test_tensorflow_beside_jax_is_kept_off_the_gpu(tmp_path):
    """The exporters start TensorFlow on JAX too; it must not take the GPU (and its memory) JAX trains on."""
    out = _child("""
        import json
        from neuralstudio.ml.backends import import_tensorflow
        import neuralstudio.ml.backends as b
        tf = import_tensorflow()
        gpus = [d.name for d in tf.config.get_visible_devices("GPU")]
        print(json.dumps({"hidden": b._tf_gpus_hidden, "visible": gpus,
                          "cpu": len(tf.config.get_visible_devices("CPU"))}))
    """, "jax", str(tmp_path))
    assert out == {"hidden": True, "visible": [], "cpu": 1}



@pytest.mark.skipif(not backends.installed("jax"), reason="JAX is not installed")
def test_seeding_and_saving_on_jax_do_not_start_tensorflow(tmp_path):
    """Keras's own set_random_seed and .keras serialiser import TensorFlow whenever it is installed (6-8 s, and
    TensorFlow then may take the GPU); the seam seeds and saves without it: the same seed still gives the same
    weights, and the saved file opens and predicts the same."""
    out = _child("""
        import json, sys
        from pathlib import Path
        import keras, numpy as np
        from neuralstudio.ml import backends
        from neuralstudio.ml.model_metadata import load_model, write_model

        def draw(seed):
            backends.set_random_seed(seed)
            layer = keras.layers.Dense(3)
            layer.build((None, 2))
            return [np.asarray(layer.kernel).round(6).tolist(), float(np.random.rand())]

        same, differs = draw(7) == draw(7), draw(7) != draw(8)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        path = Path(sys.argv[1]) / "m.keras"
        write_model(model, path)
        x = np.ones((2, 4), "float32")
        gap = float(np.abs(np.asarray(load_model(path)(x)) - np.asarray(model(x))).max())
        print(json.dumps({"same": same, "differs": differs, "gap": gap, "tf": "tensorflow" in sys.modules}))
    """, "jax", str(tmp_path), str(tmp_path))
    assert out == {"same": True, "differs": True, "gap": 0.0, "tf": False}


def test_small_steps_train_on_one_cpu_thread_on_pytorch_only():
    """PyTorch's thread team makes a small step slower on two threads than on one (ml/backends.cpu_threads_for);
    the setting is put back after the block, and a large step keeps every thread."""
    small = keras.Sequential([keras.Input((784,)), keras.layers.Dense(30), keras.layers.Dense(10)])
    large = keras.Sequential([keras.Input((784,)), keras.layers.Dense(2048), keras.layers.Dense(10)])
    if backends.active() != "torch":
        with backends.cpu_threads_for(small, 10):
            pass  # nothing to change: TensorFlow and JAX size their pools per op
        return
    import torch

    before = torch.get_num_threads()
    with backends.cpu_threads_for(small, 10):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with backends.cpu_threads_for(large, 128):
        assert torch.get_num_threads() == before
    with backends.cpu_threads_for(small, 10, on_cpu=False):
        assert torch.get_num_threads() == before
    assert os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"  # set by neuralstudio.ml before PyTorch loads
