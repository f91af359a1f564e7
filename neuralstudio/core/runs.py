"""The runs store: one folder per training run, read by the CLI, the Train window and the plots.

Each run lives in ``<root>/<run id>/`` with a ``run.json`` (what was trained, how,
on what, and what came out) and, once training ends, the trained ``model.keras``.
Everything here is plain JSON so that the store can be read without Keras and
inspected by hand; every write is atomic so that a crash mid-run leaves the
previous, complete ``run.json`` behind.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from neuralstudio.core.atomic import atomic_write_text
from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import format_value
from neuralstudio.core.paths import user_data_dir

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
FORMAT = "neuralstudio-run"
VERSION = 1
#: Per-batch points kept in ``run.json``; beyond this every other point is dropped (and the stride doubles),
#: so a long run keeps its whole shape in a file of bounded size.
MAX_BATCH_POINTS = 4000


class RunsError(UserError, ValueError):
    """A run that does not exist, is ambiguous or cannot be read."""


def default_runs_dir() -> Path:
    """Where runs go unless ``--runs DIR`` says otherwise."""
    return user_data_dir() / "runs"


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: store them as None so that the file stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


@dataclass
class RunRecord:
    """Everything recorded about one training run (the content of ``run.json``).

    Args:
        id: folder name, sortable by creation time.
        created: ISO 8601 UTC time of creation.
        design: the design snapshot (``Design.to_dict()``) that was trained.
        hyperparameters: the effective ``TrainingSettings.to_dict()`` plus device and precision.
        data: a description of the data set (name, sizes, classes).
        device: what the run trained on, in words.
        epochs: per-epoch metrics, one dict per epoch (``loss``, ``accuracy``, ``val_*``, ``seconds``).
        batches: per-batch points ``{"step", "epoch", "batch", "loss", "accuracy", "samples", "time"}``.
        timing: ``seconds``, ``samples_per_second``, ``train_samples``...
        final: final metrics (``test_loss``, ``test_accuracy``, ``val_loss``, ``val_accuracy``...).
        status: ``running``, ``finished``, ``stopped``, ``early_stopped``, ``nan`` or ``failed``.
        message: what happened, in words.
    """

    id: str
    created: str
    design: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    epochs: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    batch_stride: int = 1
    timing: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    message: str = ""
    folder: Path | None = None
    _batch_counter: int = 0

    @property
    def name(self) -> str:
        return str(self.design.get("name") or "untitled")

    @property
    def model_path(self) -> Path | None:
        """The saved model, when the run wrote one."""
        if self.folder is None:
            return None
        p = self.folder / MODEL_FILE
        return p if p.exists() else None

    def add_batch(self, point: dict[str, Any]) -> None:
        """Record one batch point, keeping at most :data:`MAX_BATCH_POINTS` by thinning evenly."""
        self._batch_counter += 1
        if (self._batch_counter - 1) % self.batch_stride:
            return
        self.batches.append(dict(point))
        if len(self.batches) > MAX_BATCH_POINTS:
            self.batches = self.batches[::2]
            self.batch_stride *= 2

    def add_epoch(self, metrics: dict[str, Any]) -> None:
        self.epochs.append(dict(metrics))

    def history(self) -> dict[str, list[Any]]:
        """Per-epoch metrics as Keras-style lists (``{"loss": [...], "val_loss": [...]}``)."""
        keys: list[str] = []
        for ep in self.epochs:
            keys.extend(k for k in ep if k not in keys and k != "epoch")
        return {k: [ep.get(k) for ep in self.epochs] for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return _finite({
            "format": FORMAT,
            "version": VERSION,
            "id": self.id,
            "created": self.created,
            "design": self.design,
            "hyperparameters": self.hyperparameters,
            "data": self.data,
            "device": self.device,
            "epochs": self.epochs,
            "batches": self.batches,
            "batch_stride": self.batch_stride,
            "timing": self.timing,
            "final": self.final,
            "status": self.status,
            "message": self.message,
        })

    @classmethod
    def from_dict(cls, data: Any, folder: Path | None = None) -> RunRecord:
        where = folder / RUN_FILE if folder else RUN_FILE
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("id"), str):
            raise RunsError(f"{where} is not a NeuralStudio run record.")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise RunsError(f"{where} was written by a newer NeuralStudio: update it to read this run.")

        def obj(key: str) -> dict[str, Any]:
            v = data.get(key, {})
            return v if isinstance(v, dict) else {}

        def lst(key: str) -> list[dict[str, Any]]:
            v = data.get(key, [])
            return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []

        rec = cls(
            id=data["id"],
            created=str(data.get("created", "")),
            design=obj("design"),
            hyperparameters=obj("hyperparameters"),
            data=obj("data"),
            device=str(data.get("device", "")),
            epochs=lst("epochs"),
            batches=lst("batches"),
            batch_stride=max(1, int(data.get("batch_stride", 1) or 1)),
            timing=obj("timing"),
            final=obj("final"),
            status=str(data.get("status", "")),
            message=str(data.get("message", "")),
            folder=folder,
        )
        return rec


@dataclass
class Difference:
    """One value that differs between two runs."""

    section: str  # "hyperparameters", "data", "design" or "results"
    key: str
    a: Any
    b: Any


@dataclass
class Comparison:
    """What differs between run ``a`` and run ``b``, and what is the same."""

    a: RunRecord
    b: RunRecord
    differences: list[Difference]
    same_hyperparameters: list[str]

    def format(self) -> str:
        """A plain-text table for the terminal."""
        lines = [f"A: {self.a.id}  ({self.a.name}, {self.a.status})",
                 f"B: {self.b.id}  ({self.b.name}, {self.b.status})", ""]
        rows = [(d.section, d.key, format_value(d.a), format_value(d.b)) for d in self.differences]
        if rows:
            w = [max(len(r[i]) for r in [("", "setting", "A", "B"), *rows]) for i in range(4)]
            lines.append(f"{'':{w[0]}}  {'setting':{w[1]}}  {'A':>{w[2]}}  {'B':>{w[3]}}")
            for sec, key, va, vb in rows:
                lines.append(f"{sec:{w[0]}}  {key:{w[1]}}  {va:>{w[2]}}  {vb:>{w[3]}}")
        else:
            lines.append("The two runs have the same settings and results.")
        if self.same_hyperparameters:
            lines.append("")
            lines.append("same: " + ", ".join(self.same_hyperparameters))
        return "\n".join(lines)


RESULT_KEYS = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "train_accuracy", "train_loss")
TIMING_KEYS = ("epochs_run", "seconds", "samples_per_second")


class RunsStore:
    """A folder of runs.

    Args:
        root: the folder; defaults to :func:`default_runs_dir` (the user data folder).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    # ----------------------------------------------------------------- writing
    def create(self, *, design: dict[str, Any] | None = None, hyperparameters: dict[str, Any] | None = None,
               data: dict[str, Any] | None = None, device: str = "") -> RunRecord:
        """Start a run: make its folder and write a ``running`` record."""
        now = datetime.now(timezone.utc)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunsError(f"Cannot create the runs folder {self.root}: {exc.strerror}. "
                            "Choose another one with --runs DIR.") from None
        for _ in range(100):
            run_id = now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
            folder = self.root / run_id
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of a random suffix
            raise RunsError(f"Could not create a new run folder in {self.root}.")
        rec = RunRecord(id=run_id, created=now.isoformat(timespec="microseconds"), design=dict(design or {}),
                        hyperparameters=dict(hyperparameters or {}), data=dict(data or {}), device=device,
                        folder=folder)
        self.save(rec)
        return rec

    def save(self, record: RunRecord) -> None:
        """Write ``run.json`` atomically (called at creation, after each epoch and at the end)."""
        if record.folder is None:
            record.folder = self.root / record.id
        atomic_write_text(record.folder / RUN_FILE,
                          json.dumps(record.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n")

    def model_file(self, record: RunRecord) -> Path:
        """Where the run's model goes (write it through ``atomic_path``)."""
        folder = record.folder if record.folder is not None else self.root / record.id
        return folder / MODEL_FILE

    # ----------------------------------------------------------------- reading
    def list(self) -> list[RunRecord]:
        """Every readable run, oldest first; unreadable folders are skipped."""
        if not self.root.is_dir():
            return []
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                out.append(self._read(folder))
            except RunsError:
                continue
        out.sort(key=lambda r: (r.created, r.id))
        return out

    def get(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id`` or starts with it (unique prefix), or ``latest``."""
        if run_id in ("latest", "last"):
            runs = self.list()
            if not runs:
                raise RunsError(f"There are no runs in {self.root} yet.")
            return runs[-1]
        folder = self.root / run_id
        if run_id and "/" not in run_id and "\\" not in run_id and (folder / RUN_FILE).is_file():
            return self._read(folder)
        matches = [r for r in self.list() if r.id.startswith(run_id)] if run_id else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RunsError(f"No run {run_id!r} in {self.root}: `neuralstudio runs` lists them.")
        raise RunsError(f"{run_id!r} matches {len(matches)} runs ({', '.join(r.id for r in matches[:5])}): "
                        "give more of the id.")

    def _read(self, folder: Path) -> RunRecord:
        path = folder / RUN_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            raise RunsError(f"{path} cannot be read.") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise RunsError(f"{path} is damaged (not valid JSON).") from None
        return RunRecord.from_dict(data, folder)

    def compare(self, a: str | RunRecord, b: str | RunRecord) -> Comparison:
        """What differs in hyperparameters, data and results between two runs."""
        ra = a if isinstance(a, RunRecord) else self.get(a)
        rb = b if isinstance(b, RunRecord) else self.get(b)
        diffs: list[Difference] = []
        same: list[str] = []
        for key in sorted(set(ra.hyperparameters) | set(rb.hyperparameters)):
            va, vb = ra.hyperparameters.get(key), rb.hyperparameters.get(key)
            if va != vb:
                diffs.append(Difference("hyperparameters", key, va, vb))
            else:
                same.append(f"{key}={format_value(va)}")
        for key in ("name", "source", "train_size", "test_size", "train_samples", "validation_samples"):
            va, vb = ra.data.get(key), rb.data.get(key)
            if va != vb:
                diffs.append(Difference("data", key, va, vb))
        if ra.design.get("graph") != rb.design.get("graph"):
            diffs.append(Difference("design", "network", ra.name, rb.name if rb.name != ra.name else
                                    f"{rb.name} (changed)"))
        if ra.device != rb.device:
            diffs.append(Difference("device", "device", ra.device, rb.device))
        for key in RESULT_KEYS:
            va, vb = ra.final.get(key), rb.final.get(key)
            if va is not None or vb is not None:
                diffs.append(Difference("results", key, va, vb))
        for key in TIMING_KEYS:
            va, vb = ra.timing.get(key), rb.timing.get(key)
            if va is not None or vb is not None:
                diffs.append(Difference("results", key, va, vb))
        if ra.status != rb.status:
            diffs.append(Difference("results", "status", ra.status, rb.status))
        return Comparison(ra, rb, diffs, same)

