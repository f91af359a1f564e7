"""Before an experiment starts: how many trials, about how long, and how much memory one trial needs.

The course's experiments are bounded by the machine: the batch size is the hyperparameter that runs out
of memory first, because every layer's activations are kept for the backward pass, per example of the
batch. The estimate is the sum of what one training step holds: the weights, their gradients and the
optimizer's slots (Adam keeps two per weight, momentum one), the activations of a batch (forward values,
their gradients and a working copy: three per element), and the training data in float32. It is an
estimate of NeuralStudio's own arrays, not of the framework's runtime, which is shared by all trials.

The time is the planned epochs times the training examples over a speed measured on this machine
(Measure speed, or the last run), so it says "about" and ignores pruning, which only shortens it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from neuralstudio.core.formatting import format_duration
from neuralstudio.core.memory import memory_budget_bytes
from neuralstudio.core.search_space import ParamSpec, apply_values
from neuralstudio.ml.sweep import SweepSpec

__all__ = ["SweepEstimate", "available_memory_bytes", "estimate_sweep", "trial_memory_bytes"]

_SLOTS = {"sgd": 0, "sgd-momentum": 1, "rmsprop": 1, "adam": 2, "adamw": 2}


@dataclass
class SweepEstimate:
    """What an experiment will cost, and what will not fit.

    ``seconds`` is None when no speed is known; ``too_big`` holds one sentence per setting that needs
    more memory than the computer has free.
    """

    trials: int | None
    seconds: float | None
    peak_bytes: int
    available_bytes: int
    too_big: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The estimate in one line, as the Experiment tab and ``sweep`` print it before starting."""
        trials = f"{self.trials} trial(s)" if self.trials is not None else "as many trials as fit in the time limit"
        when = f", about {format_duration(self.seconds)} in all" if self.seconds is not None else \
            " (no speed measured yet: no time estimate)"
        return f"{trials}{when}; up to {_size(self.peak_bytes)} of memory per trial ({_size(self.available_bytes)} " \
               "free)." + ("".join(" " + t for t in self.too_big))


def estimate_sweep(spec: SweepSpec, *, train_examples: int, samples_per_second: float | None = None,
                   sample_shape: tuple[int, ...] | None = None) -> SweepEstimate:
    """Trials, time and per-trial memory of ``spec`` (``train_examples``: examples in the data before the split)."""
    trials = spec.planned_trials()
    seconds = None
    if samples_per_second and samples_per_second > 0 and trials is not None:
        split = _mean(spec, "validation_split", spec.design.training.validation_split)
        epochs = _mean(spec, "epochs", spec.design.training.epochs)
        seconds = trials * epochs * train_examples * (1 - split) / samples_per_second
    free = available_memory_bytes()
    data_bytes = 4 * train_examples * (math.prod(sample_shape) if sample_shape else 784)
    peak, too_big = 0, []
    for batch in _batch_sizes(spec):
        need = trial_memory_bytes(_largest_design(spec, batch), batch) + data_bytes
        peak = max(peak, need)
        if need > free:
            too_big.append(f"Batch size {batch} needs about {_size(need)} per trial, more than the {_size(free)} "
                           "free: it will not fit; use smaller batches.")
    return SweepEstimate(trials, seconds, peak, free, too_big)


def trial_memory_bytes(design: Any, batch_size: int) -> int:
    """The arrays one training step of ``design`` holds at ``batch_size`` (see the module docstring)."""
    from neuralstudio.ml.builder import analyze

    analysis = analyze(design.graph, build=False)
    params = sum(info.params for info in analysis.infos.values())
    activations = 0
    for info in analysis.infos.values():
        for shape in _shapes(info.output_shape):
            activations += math.prod(d for d in shape[1:] if isinstance(d, int))
    slots = _SLOTS.get(design.training.optimizer, 2)
    return 4 * (params * (2 + slots) + 3 * batch_size * activations)


def available_memory_bytes() -> int:
    """Memory free for training now: the system's available memory where it says, else the file budget."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if hasattr(os, "sysconf"):
        try:
            return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_AVPHYS_PAGES"))
        except (ValueError, OSError):
            pass
    return memory_budget_bytes()


# ----------------------------------------------------------------------------- helpers
def _spec_of(spec: SweepSpec, name: str) -> ParamSpec | None:
    return next((p for p in spec.params if p.name == name), None)


def _mean(spec: SweepSpec, name: str, default: float) -> float:
    p = _spec_of(spec, name)
    if p is None:
        return float(default)
    values = [v for v in p.grid(spec.grid_points) if isinstance(v, (int, float))]
    return sum(values) / len(values) if values else float(default)


def _batch_sizes(spec: SweepSpec) -> list[int]:
    p = _spec_of(spec, "batch_size")
    if p is None:
        return [int(spec.design.training.batch_size)]
    return sorted({int(v) for v in p.grid(spec.grid_points)} | ({int(p.high)} if p.kind == "int" else set()))


def _largest_design(spec: SweepSpec, batch: int) -> Any:
    """The design at the largest value of every numeric layer parameter and depth (the memory's worst case)."""
    values: dict[str, Any] = {}
    for p in spec.params:
        if p.is_setting:
            continue
        options = p.grid(spec.grid_points)
        numeric = [v for v in options if isinstance(v, (int, float)) and not isinstance(v, bool)]
        values[p.name] = max(numeric) if numeric and len(numeric) == len(options) else options[0]
    try:
        return apply_values(spec.design, values)
    except Exception:  # noqa: BLE001 - the checked corners always apply; an odd mix falls back to the design
        return spec.design


def _shapes(shape: Any) -> list[tuple[Any, ...]]:
    if isinstance(shape, tuple):
        return [shape]
    if isinstance(shape, list):
        return [s for s in shape if isinstance(s, tuple)]
    return []


def _size(nbytes: float) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 1024:.0f} KB"


