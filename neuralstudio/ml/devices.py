"""Which devices TensorFlow sees, why a GPU is not used, and how a run is placed on them.

This is one of the few modules that imports TensorFlow itself (docs/ARCHITECTURE.md, "Decisions":
backend discipline): device listing and ``tf.distribute`` have no Keras API.
TensorFlow is imported inside functions so that importing this module is free.

Device specs (``--device``): ``auto`` (the first GPU if there is one, else the
CPU), ``cpu``, ``gpu`` (= ``gpu:0``), ``gpu:N``, ``all-gpus`` (data-parallel
training on every GPU with ``tf.distribute.MirroredStrategy``) and
``all-cpus`` (the same strategy over every logical CPU device; it exists so that
the distributed path can be tested on a machine without GPUs).
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
    """What ``neuralstudio devices`` prints."""

    tensorflow_version: str
    cuda_build: bool
    cuda_version: str | None
    cudnn_version: str | None
    physical: list[DeviceInfo] = field(default_factory=list)
    logical: list[DeviceInfo] = field(default_factory=list)
    gpu_reason: str | None = None  # why no GPU is used (None when one is)

    @property
    def gpus(self) -> list[DeviceInfo]:
        return [d for d in self.physical if d.kind == "GPU"]

    def format(self) -> str:
        lines = [f"TensorFlow {self.tensorflow_version}"
                 + (f" (CUDA {self.cuda_version}, cuDNN {self.cudnn_version})" if self.cuda_build
                    else " (CPU-only build)")]
        lines.append("Devices:")
        for d in self.physical:
            extra = f"  {d.description}" if d.description else ""
            lines.append(f"  {d.name.replace('/physical_device:', '')}{extra}")
        if len(self.logical) > len(self.physical):
            lines.append(f"Logical devices: {', '.join(d.name for d in self.logical)}")
        if self.gpus:
            lines.append(f"Training uses {self.gpus[0].name.replace('/physical_device:', '')} with --device auto; "
                         "--device all-gpus spreads it over every GPU.")
        else:
            lines.append("No GPU is used: " + (self.gpu_reason or "TensorFlow sees no GPU."))
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
    """List what TensorFlow sees (this initialises TensorFlow)."""
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
    report = DeviceReport(
        tensorflow_version=tf.__version__,
        cuda_build=cuda_build,
        cuda_version=info.get("cuda_version"),
        cudnn_version=info.get("cudnn_version"),
        physical=phys,
        logical=logical,
    )
    if not report.gpus:
        report.gpu_reason = explain_no_gpu(cuda_build)
    return report


def configure_logical_cpus(count: int) -> None:
    """Split the CPU into ``count`` logical devices; must run before TensorFlow initialises.

    Used to exercise ``MirroredStrategy`` without GPUs (see ``all-cpus``).
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as exc:
        raise DeviceError("Logical CPU devices must be configured before TensorFlow starts: "
                          "call configure_logical_cpus() first thing in a fresh process.") from exc


@dataclass
class Placement:
    """Where a run trains: a device scope or a distribution strategy."""

    spec: str
    description: str
    device_name: str | None = None  # for tf.device
    strategy: Any = None  # a tf.distribute.Strategy for all-gpus / all-cpus
    is_gpu: bool = False

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build, compile and fit inside this."""
        if self.strategy is not None:
            with self.strategy.scope():
                yield
        elif self.device_name is not None:
            import tensorflow as tf

            with tf.device(self.device_name):
                yield
        else:
            yield

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync) if self.strategy is not None else 1


def resolve(spec: str = "auto") -> Placement:
    """Turn a ``--device`` value into a :class:`Placement`; raise :class:`DeviceError` if it cannot be used."""
    import tensorflow as tf

    s = (spec or "auto").strip().lower()
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
        idx_text = s.partition(":")[2] or "0"
        if not idx_text.isdigit():
            raise DeviceError(f"--device {spec!r}: write gpu:N with N a GPU number, e.g. gpu:0.")
        idx = int(idx_text)
        if not gpus:
            raise no_gpu(spec)
        if idx >= len(gpus):
            raise DeviceError(f"--device {spec}: there are only {len(gpus)} GPU(s), numbered 0 to "
                              f"{len(gpus) - 1}.")
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
