"""The runs store: one folder per training run, read by the CLI, the Train window and the plots.

Each run lives in ``<root>/<run id>/`` with a ``run.json`` (what was trained, how,
on what, and what came out) and, once training ends, the trained ``model.keras``.
Everything here is plain JSON so that the store can be read without Keras and
inspected by hand; every write is atomic so that a crash mid-run leaves the
previous, complete ``run.json`` behind.

The files are read as untrusted input: one damaged record is skipped and
reported (:meth:`RunsStore.scan`), never allowed to hide the others.  A process
killed mid-run leaves its record ``running`` and maybe a partial file; the
first use of a store in a process repairs both (:meth:`RunsStore.recover`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from neuralstudio.core.atomic import atomic_write_text, is_partial_file
from neuralstudio.core.errors import UserError
from neuralstudio.core.formatting import format_value
from neuralstudio.core.graph import config_depth
from neuralstudio.core.paths import user_data_dir

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
FORMAT = "neuralstudio-run"
VERSION = 1
#: Per-batch points kept in ``run.json``; beyond this every other point is dropped (and the stride doubles),
#: so a long run keeps its whole shape in a file of bounded size.
MAX_BATCH_POINTS = 4000
#: Largest ``run.json`` read: a real one stays under a few MB (the batch points are bounded above).
MAX_RUN_FILE_BYTES = 64 * 2**20
#: Deepest nesting read: a design's layer configs nest up to 100 levels, inside a few of the record's own.
MAX_RUN_DEPTH = 128
#: A partial file (of a write that never finished) older than this belongs to a process that is gone.
STALE_PARTIAL_SECONDS = 15 * 60
#: A ``running`` record not written for this long is interrupted, even when its process cannot be checked
#: (another computer, an older record without a pid): a run writes its record after every epoch.
STALE_RUNNING_SECONDS = 12 * 3600


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


def _text(value: Any, limit: int = 10_000) -> str:
    """A text field of a record: text as it is (cut to ``limit``), a number in digits, anything else empty."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e18:
        return format_value(value)
    return ""


def _whole(value: Any, default: int, lo: int, hi: int) -> int:
    """A whole-number field: ``value`` when it is one within [lo, hi] (or a float equal to one), else ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return default
    return int(value) if lo <= value <= hi else default


def _points(value: Any) -> list[dict[str, Any]]:
    """Per-epoch or per-batch points: dicts of numbers (or None), whatever else the file holds dropped."""
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, dict):
            out.append({k: v for k, v in item.items()
                        if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))})
    return out


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
        status: ``running``, ``finished``, ``stopped``, ``early_stopped``, ``nan``, ``failed``, or
            ``interrupted`` (its program ended without finishing it, found by :meth:`RunsStore.recover`).
        message: what happened, in words.
        pid: the process that trains the run, so that a later start can tell it has gone.
        host: the computer it runs on (a process id means nothing elsewhere).
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
    pid: int | None = None
    host: str = ""
    folder: Path | None = None
    _batch_counter: int = 0

    @property
    def name(self) -> str:
        name = self.design.get("name")
        return name[:200] if isinstance(name, str) and name else "untitled"

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
        extra = {"pid": self.pid, "host": self.host} if self.pid is not None else {}
        return _finite({
            **extra,
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
        """The record a ``run.json`` holds: every field checked, and coerced to its type or left at its default.

        Raises :class:`RunsError` only when the data is not a run record at all (or one of a newer version).
        """
        where = folder / RUN_FILE if folder else RUN_FILE
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("id"), str):
            raise RunsError(f"{where} is not a NeuralStudio run record.")
        if not 0 < len(data["id"]) <= 200 or "/" in data["id"] or "\\" in data["id"]:
            raise RunsError(f"{where} has an invalid run id.")
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version > VERSION:
            raise RunsError(f"{where} was written by a newer NeuralStudio: update it to read this run.")

        def obj(key: str) -> dict[str, Any]:
            v = data.get(key, {})
            return v if isinstance(v, dict) else {}

        pid = _whole(data.get("pid"), 0, 1, 2**31 - 1)
        return cls(
            id=data["id"],
            created=_text(data.get("created"), 64),
            design=obj("design"),
            hyperparameters=obj("hyperparameters"),
            data=obj("data"),
            device=_text(data.get("device"), 1000),
            epochs=_points(data.get("epochs")),
            batches=_points(data.get("batches")),
            batch_stride=_whole(data.get("batch_stride"), 1, 1, 2**31),
            timing=obj("timing"),
            final=obj("final"),
            status=_text(data.get("status"), 64),
            message=_text(data.get("message")),
            pid=pid or None,
            host=_text(data.get("host"), 255),
            folder=folder,
        )


@dataclass(frozen=True)
class DamagedRun:
    """A run folder whose record cannot be read, and why."""

    folder: Path
    reason: str


@dataclass
class RunsScan:
    """What :meth:`RunsStore.scan` found: the readable runs (oldest first) and the damaged ones."""

    records: list[RunRecord] = field(default_factory=list)
    damaged: list[DamagedRun] = field(default_factory=list)


@dataclass
class Recovery:
    """What :meth:`RunsStore.recover` repaired after a crash."""

    removed: list[Path] = field(default_factory=list)  # partial files of writes that never finished
    interrupted: list[str] = field(default_factory=list)  # ids of runs whose program had ended mid-run


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


# Folders this process has already recovered (see RunsStore.recover).
_RECOVERED: set[str] = set()
_RECOVERED_LOCK = threading.Lock()


def _host() -> str:
    try:
        return socket.gethostname()[:255]
    except OSError:
        return ""


def _remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the partial files in ``folder`` (not its subfolders) that no write has touched for a while."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_partial_file(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_PARTIAL_SECONDS:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _abandoned(rec: RunRecord, path: Path) -> bool:
    """True when nobody is training ``rec`` any more: its process is gone, or it has not been written for hours."""
    try:
        idle = time.time() - path.stat().st_mtime
    except OSError:
        return False
    if idle > STALE_RUNNING_SECONDS:
        return True
    if rec.pid is None or rec.host != _host() or os.name != "posix":
        return False  # nothing to check the process against (on Windows, os.kill(pid, 0) would signal it)
    return not _process_alive(rec.pid, rec.created)


def _process_alive(pid: int, created: str) -> bool:
    """Whether process ``pid`` still runs and is the one that created a record at ``created``.

    After a restart, process ids are handed out again: on Linux a process that started after the
    record was created is another program with the same id.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, under another user
    started = _process_start_time(pid)
    try:
        made = datetime.fromisoformat(created).timestamp()
    except ValueError:
        return True
    return started is None or started <= made + 5


def _process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), on Linux; None elsewhere or when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/stat", encoding="ascii", errors="replace") as fh:
            boot = next(float(line.split()[1]) for line in fh if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


RESULT_KEYS = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "train_accuracy", "train_loss")
TIMING_KEYS = ("epochs_run", "seconds", "samples_per_second")


class RunsStore:
    """A folder of runs.

    Args:
        root: the folder; defaults to :func:`default_runs_dir` (the user data folder).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()
        #: per run folder, what ``scan(reuse=True)`` read last and the run file's (mtime, size, inode) then
        self._scanned: dict[Path, tuple[tuple[int, int, int], RunRecord]] = {}

    # --------------------------------------------------------------- recovery
    def recover(self) -> Recovery:
        """Repair what a killed process left: partial files, and records still ``running`` with nobody running them.

        A partial file is one of :mod:`neuralstudio.core.atomic`'s temporary files not touched for
        :data:`STALE_PARTIAL_SECONDS`.  A record is interrupted when its process is gone from this
        computer, or when it has not been written for :data:`STALE_RUNNING_SECONDS`.  The store does this
        by itself the first time a process uses it (see :meth:`scan`); calling it again is harmless.
        """
        done = Recovery()
        if not self.root.is_dir():
            return done
        folders = [self.root, *self._run_folders()]
        for folder in folders:
            done.removed.extend(_remove_stale_partials(folder))
        for folder in folders[1:]:
            with contextlib.suppress(RunsError, OSError):
                rec = self._read(folder)
                if rec.status == "running" and _abandoned(rec, folder / RUN_FILE):
                    rec.status = "interrupted"
                    rec.message = (f"The run stopped unexpectedly after {len(rec.epochs)} epoch(s): the program "
                                   "training it ended without finishing (closed, killed or crashed).")
                    self.save(rec)
                    done.interrupted.append(rec.id)
        return done

    def _recover_once(self) -> None:
        """Run :meth:`recover` the first time this process uses this folder."""
        try:
            key = str(self.root.resolve())
        except OSError:
            return
        with _RECOVERED_LOCK:
            if key in _RECOVERED:
                return
            _RECOVERED.add(key)
        with contextlib.suppress(OSError):
            self.recover()

    # ----------------------------------------------------------------- writing
    def create(self, *, design: dict[str, Any] | None = None, hyperparameters: dict[str, Any] | None = None,
               data: dict[str, Any] | None = None, device: str = "") -> RunRecord:
        """Start a run: make its folder and write a ``running`` record (with this process's id and computer)."""
        self._recover_once()
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
                        pid=os.getpid(), host=_host(), folder=folder)
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
        """Every readable run, oldest first; damaged records are skipped (:meth:`scan` says which)."""
        return self.scan().records

    def scan(self, *, reuse: bool = False) -> RunsScan:
        """Every readable run, oldest first, and every run folder whose record is damaged, with why.

        A folder without a ``run.json`` is not a run (or one being created) and is not listed.

        Args:
            reuse: read again only the run files that changed since this store's last ``reuse`` scan (another
                modification time, size or inode: records are written by atomic replacement), and hand out the
                records read then for the others: they are shared, so read them and do not change them. The
                Train window's runs table rescans after every run on the GUI thread, where parsing every
                ``run.json`` (each holds its batches' curves) took 25-36 ms for a few dozen runs and grew with
                the store.
        """
        self._recover_once()
        found = RunsScan()
        seen: dict[Path, tuple[tuple[int, int, int], RunRecord]] = {}
        for folder in self._run_folders():
            try:
                key = None
                if reuse:
                    st = (folder / RUN_FILE).stat()
                    key = (st.st_mtime_ns, st.st_size, st.st_ino)
                hit = self._scanned.get(folder)
                record = hit[1] if hit is not None and hit[0] == key else self._read(folder)
                if key is not None:
                    seen[folder] = (key, record)
                found.records.append(record)
            except FileNotFoundError:
                continue
            except OSError as exc:
                found.damaged.append(DamagedRun(folder, f"{folder / RUN_FILE} cannot be read: {exc.strerror}."))
            except RunsError as exc:
                found.damaged.append(DamagedRun(folder, str(exc)))
        if reuse:
            self._scanned = seen  # what is gone is forgotten
        found.records.sort(key=lambda r: (r.created, r.id))
        return found

    def _run_folders(self) -> list[Path]:
        try:
            return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return []

    def get(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id`` or starts with it (unique prefix), or ``latest``."""
        self._recover_once()
        if run_id in ("latest", "last"):
            runs = self.list()
            if not runs:
                raise RunsError(f"There are no runs in {self.root} yet.")
            return runs[-1]
        folder = self.root / run_id
        if run_id and "/" not in run_id and "\\" not in run_id and (folder / RUN_FILE).is_file():
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile: look among the others
                return self._read(folder)
        matches = [r for r in self.list() if r.id.startswith(run_id)] if run_id else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RunsError(f"No run {run_id!r} in {self.root}: `neuralstudio runs` lists them.")
        raise RunsError(f"{run_id!r} matches {len(matches)} runs ({', '.join(r.id for r in matches[:5])}): "
                        "give more of the id.")

    def _read(self, folder: Path) -> RunRecord:
        """The record in ``folder``; raises FileNotFoundError when there is none, RunsError when it is damaged."""
        path = folder / RUN_FILE
        try:
            info = path.stat()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise RunsError(f"{path} cannot be read: {exc.strerror}.") from None
        if not stat.S_ISREG(info.st_mode):
            raise RunsError(f"{path} is not a file.")
        if info.st_size > MAX_RUN_FILE_BYTES:
            raise RunsError(f"{path} is damaged: {info.st_size / 2**20:.0f} MB, larger than any run record "
                            f"({MAX_RUN_FILE_BYTES // 2**20} MB at most).")
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_RUN_FILE_BYTES + 1)
        except OSError as exc:
            raise RunsError(f"{path} cannot be read: {exc.strerror}.") from None
        if len(raw) > MAX_RUN_FILE_BYTES:
            raise RunsError(f"{path} is damaged: larger than any run record.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RunsError(f"{path} is damaged (not UTF-8 text).") from None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise RunsError(f"{path} is damaged (not valid JSON).") from None
        if config_depth(data, MAX_RUN_DEPTH) > MAX_RUN_DEPTH:
            raise RunsError(f"{path} is damaged: nested more than {MAX_RUN_DEPTH} levels deep.")
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

