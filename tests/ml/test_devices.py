"""Device listing, the reasons a GPU is not used, device specs, and MirroredStrategy on two logical CPUs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest

from neuralstudio.ml import devices
from neuralstudio.ml.devices import DeviceError, explain_no_gpu


def test_the_reason_names_the_fix_for_each_case():
    assert 'pip install "neuralstudio[gpu]"' in explain_no_gpu(False, system="Linux")
    assert "CPU-only" in explain_no_gpu(False, system="Linux")
    assert "driver" in explain_no_gpu(True, system="Linux", driver=False)
    missing = explain_no_gpu(True, system="Linux", driver=True, cuda_wheels=False)
    assert "CUDA" in missing and "neuralstudio[gpu]" in missing
    assert "WSL2" in explain_no_gpu(True, system="Windows")
    assert "tensorflow-metal" in explain_no_gpu(False, system="Darwin")


def test_report_lists_the_cpu():
    report = devices.device_report()
    assert any(d.kind == "CPU" for d in report.physical)
    text = report.format()
    assert "CPU:0" in text and report.backend_version in text
    if not report.gpus:
        assert report.gpu_reason and "No GPU is used" in text


def test_device_specs():
    cpu = devices.resolve("cpu")
    assert cpu.strategy is None and cpu.replicas == 1 and not cpu.is_gpu
    auto = devices.resolve("auto")
    assert auto.is_gpu == bool(devices.device_report().gpus)
    with pytest.raises(DeviceError, match="Unknown device"):
        devices.resolve("tpu")
    with pytest.raises(DeviceError, match="gpu:N"):
        devices.resolve("gpu:x")
    torch = keras.backend.backend() == "torch"
    if not devices.device_report().gpus:
        for spec in ("gpu", "gpu:1") if torch else ("gpu", "gpu:1", "all-gpus"):
            with pytest.raises(DeviceError, match="asks for a GPU"):
                devices.resolve(spec)
    if torch:  # Keras's distribution API is JAX's: PyTorch trains on one device, and says so
        for spec in ("all-gpus", "all-cpus"):
            with pytest.raises(DeviceError, match="not available on the PyTorch backend"):
                devices.resolve(spec)
    else:
        with pytest.raises(DeviceError, match="logical CPU"):
            devices.resolve("all-cpus")  # this process has one logical CPU device


MIRRORED = textwrap.dedent("""
    import json, os
    from neuralstudio.ml.devices import configure_logical_cpus, resolve
    configure_logical_cpus(2)  # before TensorFlow starts
    from neuralstudio.core.design import Design
    from neuralstudio.core.graph import Graph
    from neuralstudio.core.training_settings import TrainingSettings
    from neuralstudio.ml.data import Dataset, load_dataset
    from neuralstudio.ml.trainer import Trainer
    ds = load_dataset("mnist-sample")
    ds = Dataset("slice", ds.x_train[:257], ds.y_train[:257], ds.x_test[:128], ds.y_test[:128], ds.class_names)
    g = Graph()
    i = g.add_node("InputLayer", {"batch_shape": [None, 784]})
    h = g.add_node("Dense", {"units": 32, "activation": "relu"})
    o = g.add_node("Dense", {"units": 10, "activation": "softmax"})
    g.connect(i.id, h.id); g.connect(h.id, o.id)
    placement = resolve("all-cpus")
    r = Trainer(Design(graph=g), dataset=ds, device="all-cpus",
                settings=TrainingSettings(epochs=1, batch_size=64, learning_rate=0.01)).run()
    print(json.dumps({"status": r.status, "message": r.message, "replicas": placement.replicas,
                      "strategy": type(placement.strategy).__name__,
                      "device": r.device,
                      "test_accuracy": r.test_accuracy, "train_samples": r.train_samples}))
""")


@pytest.mark.parametrize(("backend", "strategy"), [("tensorflow", "MirroredStrategy"), ("jax", "DataParallel")])
def test_data_parallel_training_on_two_logical_cpus(backend, strategy):
    """all-cpus: TensorFlow's MirroredStrategy, and Keras's distribution API on JAX (the same path as all-gpus)."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    proc = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "finished", out["message"]
    assert out["replicas"] == 2 and out["strategy"] == strategy
    assert "2 logical CPUs" in out["device"] and out["test_accuracy"] > 0.2
    # 231 training examples leave a last batch of 39 that cannot split over 2 replicas: one is dropped
    assert out["train_samples"] == 230
