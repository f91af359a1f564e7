"""Which devices the Keras backend sees, why a GPU is not used, and how a run is placed on them.

Device listing has no Keras API, so each backend is asked its own way (TensorFlow's ``tf.config``,
``jax.devices``, ``torch.cuda``/``torch.backends.mps``); placement is ``tf.device`` on TensorFlow and
``keras.device`` elsewhere, data-parallel training ``tf.distribute.MirroredStrategy`` on TensorFlow and
Keras's distribution API (``DataParallel``) on JAX. The backends are imported inside functions so that
importing this module is free.

Device specs (``--device``): ``auto`` (the first GPU if there is one, else the
CPU), ``cpu``, ``gpu`` (= ``gpu:0``), ``gpu:N``, ``all-gpus`` (data-parallel
training on every GPU with ``tf.distribute.MirroredStrategy``) and
``all-cpus`` (the same strategy over every logical CPU device; it exists so that
the distributed path can be tested on a machine without GPUs). On JAX, ``all-gpus`` and ``all-cpus`` use
Keras's ``DataParallel``; PyTorch trains on one device.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "gpu", "gpu:N", "all-gpus")
GPU_INSTALL_LINUX = 'pip install "neuralstudio[gpu]"'


class DeviceError(UserError, ValueError):
    """A device that does not exist or cannot be used here; the message says what to do."""


@dataclass
class DeviceInfo:
    """One device as TensorFlow names it."""

    name: str  # e.g. "/device:GPU:0"
    kind: str  # "CPU" or "GPU"
    description: str = ""


@dataclass
class DeviceReport:
    """What ``neuralstudio devices`` prints: the devices of the backend Keras runs on, and why no GPU is used."""

    backend: str  # "tensorflow", "jax", "torch"
    backend_version: str
    build: str  # "CUDA 12.5, cuDNN 9", "CPU-only build"...
    physical: list[DeviceInfo] = field(default_factory=list)
    logical: list[DeviceInfo] = field(default_factory=list)
    gpu_reason: str | None = None  # why no GPU is used (None when one is)
    choice_source: str = "default"  # where the backend was chosen (ml/backends.py)
    other_backends: dict[str, bool] = field(default_factory=dict)  # the other backends: installed or not

    @property
    def gpus(self) -> list[DeviceInfo]:
        return [d for d in self.physical if d.kind == "GPU"]

    def format(self) -> str:
        from neuralstudio.ml.backends import label

        chosen = {"--backend": "chosen with --backend", "KERAS_BACKEND": "from KERAS_BACKEND",
                  "settings": "chosen in the app's settings", "default": "the default"}.get(self.choice_source, "")
        lines = [f"Backend: {label(self.backend)} {self.backend_version} ({self.build}; {chosen})"]
        others = [f"{label(b)}" + ("" if ok else " (not installed)") for b, ok in self.other_backends.items()]
        if others:
            lines.append(f"Other backends: {', '.join(others)}; choose one with --backend NAME.")
        lines.append("Devices:")
        for d in self.physical:
            extra = f"  {d.description}" if d.description else ""
            lines.append(f"  {d.name.replace('/physical_device:', '')}{extra}")
        if len(self.logical) > len(self.physical):
            lines.append(f"Logical devices: {', '.join(d.name for d in self.logical)}")
        if self.gpus:
            spread = {"tensorflow": "; --device all-gpus spreads it over every GPU",
                      "jax": "; --device all-gpus spreads it over every GPU"}.get(self.backend, "")
            lines.append(f"Training uses {self.gpus[0].name.replace('/physical_device:', '')} with --device auto"
                         f"{spread}.")
        else:
            lines.append("No GPU is used: " + (self.gpu_reason or "the backend sees no GPU."))
        return "\n".join(lines)


def _cuda_driver_present() -> bool:
    """True when the NVIDIA driver library can be loaded (on Linux and Windows).

    The loader searches the system's library paths itself. ``ctypes.util.find_library`` would
    search the same paths by running ``ldconfig`` and ``gcc`` in subprocesses, which froze the
    Train page for 50+ ms when it looked for a GPU.
    """
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def explain_no_gpu(cuda_build: bool, *, system: str | None = None, driver: bool | None = None,
                   cuda_wheels: bool | None = None) -> str:
    """Why TensorFlow sees no GPU, and which install fixes it.

    Args:
        cuda_build: whether this TensorFlow was built with CUDA.
        system: ``platform.system()`` (for tests).
        driver: whether the NVIDIA driver loads (detected when None).
        cuda_wheels: whether the NVIDIA CUDA/cuDNN pip wheels are installed (detected when None).
    """
    system = system or platform.system()
    if system == "Darwin":
        return ("TensorFlow has no GPU support on macOS that NeuralStudio can use (tensorflow-metal is "
                "unsupported with Keras 3 and this TensorFlow): training runs on the CPU.")
    if system == "Windows":
        return ("TensorFlow >= 2.11 has no native GPU support on Windows. To train on an NVIDIA GPU, install "
                f"NeuralStudio inside WSL2 (Ubuntu) with {GPU_INSTALL_LINUX} and an up-to-date Windows NVIDIA "
                "driver; otherwise training runs on the CPU.")
    if not cuda_build:
        return (f"this TensorFlow is a CPU-only build. On Linux with an NVIDIA GPU, run {GPU_INSTALL_LINUX} "
                "(it installs tensorflow[and-cuda]).")
    if driver is None:
        driver = _cuda_driver_present()
    if not driver:
        return ("no NVIDIA GPU driver was found (no GPU in this machine, or its driver is not installed). "
                "If there is an NVIDIA GPU, install its driver (nvidia-smi must work), then run "
                f"{GPU_INSTALL_LINUX}.")
    if cuda_wheels is None:
        try:
            cuda_wheels = importlib.util.find_spec("nvidia.cudnn") is not None
        except (ImportError, ValueError):
            cuda_wheels = False
    if not cuda_wheels:
        return (f"the NVIDIA driver is installed but the CUDA and cuDNN libraries TensorFlow needs are missing: "
                f"run {GPU_INSTALL_LINUX}.")
    return ("the NVIDIA driver and CUDA libraries are installed but TensorFlow still sees no GPU: check that "
            "nvidia-smi works and that the driver is recent enough for CUDA 12, then reinstall with "
            f"{GPU_INSTALL_LINUX}.")


def device_report() -> DeviceReport:
    """List what the backend Keras runs on sees (this initialises it)."""
    from neuralstudio.ml import backends

    backend = backends.active()
    report = {"jax": _jax_report, "torch": _torch_report}.get(backend, _tf_report)()
    report.choice_source = backends.choice_source()
    report.other_backends = {b: backends.installed(b) for b in backends.BACKENDS if b != backend}
    return report


def _tf_report() -> DeviceReport:
    import tensorflow as tf

    info = dict(tf.sysconfig.get_build_info())
    cuda_build = bool(info.get("is_cuda_build", False))
    phys = []
    for d in tf.config.list_physical_devices():
        desc = ""
        if d.device_type == "GPU":
            with contextlib.suppress(Exception):
                details = tf.config.experimental.get_device_details(d)
                desc = str(details.get("device_name", ""))
        phys.append(DeviceInfo(d.name, d.device_type, desc))
    logical = [DeviceInfo(d.name, d.device_type) for d in tf.config.list_logical_devices()]
    build = (f"CUDA {info.get('cuda_version')}, cuDNN {info.get('cudnn_version')}" if cuda_build
             else "CPU-only build")
    report = DeviceReport("tensorflow", tf.__version__, build, physical=phys, logical=logical)
    if not report.gpus:
        report.gpu_reason = explain_no_gpu(cuda_build)
    return report


def _jax_gpus() -> list[Any]:
    import jax

    try:
        return list(jax.devices("gpu"))
    except RuntimeError:  # no GPU backend in this jaxlib, or no GPU
        return []


def _jax_report() -> DeviceReport:
    import jax

    gpus = _jax_gpus()
    cpus = list(jax.devices("cpu"))
    phys = [DeviceInfo(f"CPU:{d.id}", "CPU") for d in cpus[:1]]
    phys += [DeviceInfo(f"GPU:{i}", "GPU", str(getattr(d, "device_kind", ""))) for i, d in enumerate(gpus)]
    logical = [DeviceInfo(f"CPU:{d.id}", "CPU") for d in cpus] + phys[1:]
    cuda = any(importlib.util.find_spec(name) is not None for name in ("jax_cuda12_plugin", "jax_cuda13_plugin"))
    report = DeviceReport("jax", jax.__version__, "CUDA plugin installed" if cuda else "CPU-only build",
                          physical=phys, logical=logical)
    if not gpus:
        report.gpu_reason = explain_no_gpu_for("jax", cuda)
    return report


def _torch_report() -> DeviceReport:
    import torch

    phys = [DeviceInfo("CPU:0", "CPU")]
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        phys.append(DeviceInfo(f"GPU:{i}", "GPU", torch.cuda.get_device_name(i)))
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if mps:
        phys.append(DeviceInfo("GPU:0", "GPU", "Apple GPU (MPS)"))
    cuda_version = torch.version.cuda
    build = f"CUDA {cuda_version}" if cuda_version else ("MPS" if mps else "CPU-only build")
    report = DeviceReport("torch", torch.__version__.split("+")[0], build, physical=phys, logical=list(phys))
    if len(phys) == 1:
        report.gpu_reason = explain_no_gpu_for("torch", bool(cuda_version))
    return report


#: a PyTorch build with CUDA for Windows and Linux (PyTorch's own index; pip's default on Windows is CPU-only)
TORCH_CUDA_INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cu128"


def explain_no_gpu_for(backend: str, cuda_build: bool, *, system: str | None = None,
                       driver: bool | None = None) -> str:
    """Why ``backend`` uses no GPU here and what to install on this platform (TensorFlow: :func:`explain_no_gpu`).

    The advice per platform: Windows with an NVIDIA GPU, the PyTorch backend with a CUDA build; macOS, PyTorch's
    MPS; Linux, any of the three with its CUDA extra.
    """
    if backend == "tensorflow":
        return explain_no_gpu(cuda_build, system=system, driver=driver)
    system = system or platform.system()
    if driver is None and system != "Darwin":
        driver = _cuda_driver_present()
    if backend == "jax":
        if system == "Darwin":
            return ("JAX has no supported GPU support on macOS: for the Apple GPU choose the PyTorch backend "
                    "(--backend torch), which trains on it through MPS.")
        if system == "Windows":
            return ("JAX has no CUDA build for native Windows: for an NVIDIA GPU choose the PyTorch backend with a "
                    f"CUDA build ({TORCH_CUDA_INSTALL}, then --backend torch), or run inside WSL2.")
        if not driver:
            return ("no NVIDIA GPU driver was found (no GPU in this machine, or its driver is not installed); with "
                    'a GPU and its driver, pip install "neuralstudio[jax-cuda]" gives JAX its CUDA build.')
        if not cuda_build:
            return 'this JAX is a CPU-only build: pip install "neuralstudio[jax-cuda]" adds its CUDA plugin.'
        return ("JAX's CUDA plugin is installed but JAX sees no GPU: check that nvidia-smi works and that the driver "
                'is recent enough, then reinstall with pip install "neuralstudio[jax-cuda]".')
    if system == "Darwin":
        return ("PyTorch sees no Apple GPU (MPS needs Apple silicon or an AMD GPU and macOS 12.3 or newer): training "
                "runs on the CPU.")
    if not driver:
        return ("no NVIDIA GPU driver was found (no GPU in this machine, or its driver is not installed); with a GPU "
                f"and its driver, install a CUDA build of PyTorch: {TORCH_CUDA_INSTALL}.")
    if not cuda_build:
        return f"this PyTorch is a CPU-only build: install its CUDA build with {TORCH_CUDA_INSTALL}."
    return ("this PyTorch has CUDA but sees no GPU: check that nvidia-smi works and that the driver is recent enough "
            f"for its CUDA version, then reinstall with {TORCH_CUDA_INSTALL}.")


def configure_logical_cpus(count: int) -> None:
    """Split the CPU into ``count`` logical devices; must run first thing in a fresh process.

    Used to exercise data-parallel training without GPUs (see ``all-cpus``): TensorFlow's logical devices, or
    on JAX the host platform's device count (an XLA flag read when JAX starts).
    """
    import os

    if os.environ.get("KERAS_BACKEND") == "jax":
        if "jax" in sys.modules:
            raise DeviceError("Logical CPU devices must be configured before JAX starts: call "
                              "configure_logical_cpus() first thing in a fresh process.")
        flag = f"--xla_force_host_platform_device_count={int(count)}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as exc:
        raise DeviceError("Logical CPU devices must be configured before TensorFlow starts: "
                          "call configure_logical_cpus() first thing in a fresh process.") from exc


@dataclass
class Placement:
    """Where a run trains: a device scope or a data-parallel distribution."""

    spec: str
    description: str
    device_name: str | None = None  # for tf.device / keras.device
    strategy: Any = None  # a tf.distribute.Strategy, or a keras.distribution.DataParallel on JAX
    is_gpu: bool = False
    replica_count: int = 1

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build, compile and fit inside this."""
        if self.strategy is not None:
            with self.strategy.scope():
                yield
        elif self.device_name is not None:
            import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                with tf.device(self.device_name):
                    yield
            else:  # JAX ignores tf.device; keras.device places JAX and PyTorch tensors
                with keras.device(self.device_name):
                    yield
        else:
            yield

    @property
    def replicas(self) -> int:
        if self.strategy is not None and hasattr(self.strategy, "num_replicas_in_sync"):
            return int(self.strategy.num_replicas_in_sync)
        return self.replica_count


def resolve(spec: str = "auto") -> Placement:
    """Turn a ``--device`` value into a :class:`Placement`; raise :class:`DeviceError` if it cannot be used."""
    import keras

    backend = keras.backend.backend()
    s = (spec or "auto").strip().lower()
    if s == "gpu:n":
        raise DeviceError(f"--device {spec!r}: write gpu:N with N a GPU number, e.g. gpu:0.")
    if backend == "jax":
        return _resolve_jax(spec, s)
    if backend == "torch":
        return _resolve_torch(spec, s)
    return _resolve_tf(spec, s)


def _gpu_index(spec: str, s: str, count: int, no_gpu: Any) -> int:
    idx_text = s.partition(":")[2] or "0"
    if not idx_text.isdigit():
        raise DeviceError(f"--device {spec!r}: write gpu:N with N a GPU number, e.g. gpu:0.")
    idx = int(idx_text)
    if not count:
        raise no_gpu(spec)
    if idx >= count:
        raise DeviceError(f"--device {spec}: there are only {count} GPU(s), numbered 0 to {count - 1}.")
    return idx


def _resolve_tf(spec: str, s: str) -> Placement:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")

    def no_gpu(what: str) -> DeviceError:
        reason = explain_no_gpu(bool(tf.sysconfig.get_build_info().get("is_cuda_build", False)))
        return DeviceError(f"--device {what} asks for a GPU, but {reason} Use --device cpu or auto.")

    if s == "auto":
        if gpus:
            return Placement(s, f"GPU 0 ({gpus[0].name})", gpus[0].name, is_gpu=True)
        return Placement(s, "CPU")  # no device scope: exactly what plain Keras does
    if s == "cpu":
        return Placement(s, "CPU", cpus[0].name if cpus else "/CPU:0")
    if s == "gpu" or s.startswith("gpu:"):
        idx = _gpu_index(spec, s, len(gpus), no_gpu)
        return Placement(s, f"GPU {idx} ({gpus[idx].name})", gpus[idx].name, is_gpu=True)
    if s == "all-gpus":
        if not gpus:
            raise no_gpu(spec)
        strategy = tf.distribute.MirroredStrategy([d.name for d in gpus])
        return Placement(s, f"{len(gpus)} GPU(s) with MirroredStrategy", strategy=strategy, is_gpu=True)
    if s == "all-cpus":
        if len(cpus) < 2:
            raise DeviceError("--device all-cpus needs several logical CPU devices (configure_logical_cpus).")
        strategy = tf.distribute.MirroredStrategy([d.name for d in cpus])
        return Placement(s, f"{len(cpus)} logical CPUs with MirroredStrategy", strategy=strategy)
    raise DeviceError(f"Unknown device {spec!r}: choose one of {', '.join(DEVICE_CHOICES)}.")


def _data_parallel(devices: list[str], what: str, spec: str, is_gpu: bool) -> Placement:
    """Keras's distribution API (JAX): the batch split over ``devices``, the weights replicated."""
    import keras

    distribution = keras.distribution.DataParallel(devices=devices)
    return Placement(spec, f"{len(devices)} {what} with Keras's DataParallel", strategy=distribution,
                     is_gpu=is_gpu, replica_count=len(devices))


def _resolve_jax(spec: str, s: str) -> Placement:
    import jax

    gpus = _jax_gpus()

    def no_gpu(what: str) -> DeviceError:
        cuda = any(importlib.util.find_spec(n) is not None for n in ("jax_cuda12_plugin", "jax_cuda13_plugin"))
        return DeviceError(f"--device {what} asks for a GPU, but {explain_no_gpu_for('jax', cuda)} "
                           "Use --device cpu or auto.")

    if s == "auto":
        if gpus:
            return Placement(s, f"GPU 0 ({getattr(gpus[0], 'device_kind', 'GPU')})", "gpu:0", is_gpu=True)
        return Placement(s, "CPU")
    if s == "cpu":
        return Placement(s, "CPU", "cpu:0")
    if s == "gpu" or s.startswith("gpu:"):
        idx = _gpu_index(spec, s, len(gpus), no_gpu)
        return Placement(s, f"GPU {idx} ({getattr(gpus[idx], 'device_kind', 'GPU')})", f"gpu:{idx}", is_gpu=True)
    if s == "all-gpus":
        if not gpus:
            raise no_gpu(spec)
        return _data_parallel([f"gpu:{i}" for i in range(len(gpus))], "GPU(s)", s, True)
    if s == "all-cpus":
        cpus = jax.devices("cpu")
        if len(cpus) < 2:
            raise DeviceError("--device all-cpus needs several logical CPU devices (configure_logical_cpus).")
        return _data_parallel([f"cpu:{i}" for i in range(len(cpus))], "logical CPUs", s, False)
    raise DeviceError(f"Unknown device {spec!r}: choose one of {', '.join(DEVICE_CHOICES)}.")


def _resolve_torch(spec: str, s: str) -> Placement:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())

    def no_gpu(what: str) -> DeviceError:
        reason = explain_no_gpu_for("torch", bool(torch.version.cuda))
        return DeviceError(f"--device {what} asks for a GPU, but {reason} Use --device cpu or auto.")

    if s == "auto":  # Keras's own choice on PyTorch: CUDA, else MPS, else the CPU
        if count:
            return Placement(s, f"GPU 0 ({torch.cuda.get_device_name(0)})", "cuda:0", is_gpu=True)
        if mps:
            return Placement(s, "Apple GPU (MPS)", "mps", is_gpu=True)
        return Placement(s, "CPU")
    if s == "cpu":
        return Placement(s, "CPU", "cpu")
    if s == "gpu" or s.startswith("gpu:"):
        if mps and not count and s in ("gpu", "gpu:0"):
            return Placement(s, "Apple GPU (MPS)", "mps", is_gpu=True)
        idx = _gpu_index(spec, s, count, no_gpu)
        return Placement(s, f"GPU {idx} ({torch.cuda.get_device_name(idx)})", f"cuda:{idx}", is_gpu=True)
    if s in ("all-gpus", "all-cpus"):
        raise DeviceError(f"--device {s}: data-parallel training is not available on the PyTorch backend (Keras's "
                          "distribution API supports JAX): choose --backend jax or tensorflow for several devices, "
                          "or one device here.")
    raise DeviceError(f"Unknown device {spec!r}: choose one of {', '.join(DEVICE_CHOICES)}.")
