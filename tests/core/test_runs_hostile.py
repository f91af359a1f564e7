"""The runs store against damaged records and crashed processes: one bad file never hides the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralstudio.core import runs as runs_mod
from neuralstudio.core.atomic import PARTIAL_PREFIX, atomic_path, atomic_write_text, is_partial_file
from neuralstudio.core.runs import RUN_FILE, RunRecord, RunsError, RunsStore


def _good(store: RunsStore) -> RunRecord:
    rec = store.create(design={"name": "net"}, hyperparameters={"optimizer": "adam", "learning_rate": 0.01})
    rec.add_epoch({"epoch": 0, "loss": 0.5})
    rec.status = "finished"
    store.save(rec)
    return rec


def _record_json(**changes) -> dict:
    data = {"format": "neuralstudio-run", "version": 1, "id": "20240101-000000-beef", "created": "2024-01-01T00:00:00",
            "status": "finished"}
    data.update(changes)
    return data


def _damage(root, name: str, content: bytes):
    folder = root / name
    folder.mkdir()
    (folder / RUN_FILE).write_bytes(content)
    return folder


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


DAMAGE = {
    "invalid-utf8": b'{"format": "neuralstudio-run", "id": "\xff\xfe"}',
    "not-json": b"{not json",
    "deep-nesting": _nested(100_000),
    "deep-but-parsable": json.dumps(_record_json(design={"x": json.loads(_nested(300).decode())})).encode(),
    "wrong-format": json.dumps({"format": "something else"}).encode(),
    "newer-version": json.dumps(_record_json(version=99)).encode(),
    "bool-version": json.dumps(_record_json(version=True, id="x/../../y")).encode(),
}


def test_each_kind_of_damage_is_skipped_and_reported_while_good_runs_stay_listed(tmp_path):
    store = RunsStore(tmp_path)
    good = _good(store)
    for name, content in DAMAGE.items():
        _damage(tmp_path, f"20990101-000000-{name}", content)
    (tmp_path / "stray-folder").mkdir()  # no run.json: not a run, not reported
    scan = store.scan()
    assert [r.id for r in scan.records] == [good.id]
    assert sorted(d.folder.name for d in scan.damaged) == sorted(f"20990101-000000-{n}" for n in DAMAGE)
    for d in scan.damaged:
        assert str(d.folder) in d.reason and len(d.reason) < 400
    assert [r.id for r in store.list()] == [good.id]


def test_a_huge_record_is_refused_without_being_read(tmp_path, monkeypatch):
    monkeypatch.setattr(runs_mod, "MAX_RUN_FILE_BYTES", 1000)
    store = RunsStore(tmp_path)
    folder = _damage(tmp_path, "20990101-000000-huge", json.dumps(_record_json(message="x" * 5000)).encode())
    scan = store.scan()
    assert [d.folder for d in scan.damaged] == [folder] and "larger than any run record" in scan.damaged[0].reason


def test_wrong_field_types_are_coerced_not_fatal(tmp_path):
    store = RunsStore(tmp_path)
    fields = dict(batch_stride="x", created=["no"], device={"a": 1}, status=7, message=None, pid="me",
                  host=12, design={"name": ["not", "text"]}, hyperparameters=[1, 2], timing="fast",
                  epochs=[{"epoch": "first", "loss": "low", "accuracy": 0.5}, "junk", 3],
                  batches={"not": "a list"}, final=None)
    _damage(tmp_path, "20240101-000000-beef", json.dumps(_record_json(**fields)).encode())
    rec = store.scan().records[0]
    assert rec.batch_stride == 1 and rec.created == "" and rec.device == "" and rec.status == "7"
    assert rec.pid is None and rec.host == "12" and rec.name == "untitled" and rec.hyperparameters == {}
    assert rec.epochs == [{"accuracy": 0.5}] and rec.batches == [] and rec.final == {} and rec.timing == {}
    for stride, want in ((1e300, 1), (2.5, 1), (True, 1), (-4, 1), (8.0, 8), (2**40, 1)):
        assert RunRecord.from_dict(_record_json(batch_stride=stride)).batch_stride == want
    json.dumps(rec.to_dict(), allow_nan=False)  # and it saves again as standard JSON


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
_FIELDS = ("id", "created", "design", "hyperparameters", "data", "device", "epochs", "batches", "batch_stride",
           "timing", "final", "status", "message", "pid", "host", "version")


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=8))
def test_from_dict_coerces_or_refuses_any_field(fields):
    try:
        rec = RunRecord.from_dict(_record_json(**fields))
    except RunsError:
        return
    assert isinstance(rec.batch_stride, int) and rec.batch_stride >= 1
    assert all(isinstance(v, str) for v in (rec.created, rec.device, rec.status, rec.message, rec.host, rec.name))
    assert rec.pid is None or isinstance(rec.pid, int)
    json.dumps(rec.to_dict(), allow_nan=False)
    rec.history()
    rec.add_batch({"loss": 1.0})


def test_get_of_a_damaged_run_is_a_runs_error(tmp_path):
    store = RunsStore(tmp_path)
    _damage(tmp_path, "20990101-000000-dead", b"\xff")
    with pytest.raises(RunsError, match="not UTF-8"):
        store.get("20990101-000000-dead")


# ------------------------------------------------------------------ recovery
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _running(store: RunsStore, **changes) -> RunRecord:
    rec = store.create(design={"name": "net"})
    for k, v in changes.items():
        setattr(rec, k, v)
    store.save(rec)
    return rec


def _age(path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_create_records_the_process_and_computer(tmp_path):
    rec = RunsStore(tmp_path).create()
    data = json.loads((rec.folder / RUN_FILE).read_text())
    assert data["pid"] == os.getpid() and data["host"] == runs_mod._host() and data["status"] == "running"


@pytest.mark.skipif(os.name != "posix", reason="process ids are checked on POSIX systems")
def test_recover_marks_runs_of_dead_processes_interrupted_and_keeps_live_ones(tmp_path):
    store = RunsStore(tmp_path)
    dead = _running(store, pid=_dead_pid())
    mine = _running(store)  # this process: alive
    elsewhere = _running(store, pid=_dead_pid(), host="another-computer")  # cannot be checked from here
    old_elsewhere = _running(store, pid=1, host="another-computer")
    _age(old_elsewhere.folder / RUN_FILE, 13 * 3600)
    legacy = _running(store, pid=None)
    _age(legacy.folder / RUN_FILE, 13 * 3600)
    done = store.recover()
    assert sorted(done.interrupted) == sorted([dead.id, old_elsewhere.id, legacy.id])
    status = {r.id: r for r in RunsStore(tmp_path).list()}
    assert status[dead.id].status == "interrupted" and "stopped unexpectedly" in status[dead.id].message
    assert status[mine.id].status == "running" and status[elsewhere.id].status == "running"
    assert store.recover().interrupted == []  # nothing left to do


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process start times are read from /proc")
def test_a_reused_process_id_does_not_keep_a_run_alive(tmp_path):
    store = RunsStore(tmp_path)
    rec = _running(store, pid=os.getpid(), created="2000-01-01T00:00:00+00:00")  # this process started later
    assert store.recover().interrupted == [rec.id]


def test_stale_partial_files_are_removed_on_the_first_use_of_a_store(tmp_path):
    rec = RunsStore(tmp_path).create()  # (the first use of tmp_path happened here)
    stale = rec.folder / f"{PARTIAL_PREFIX}model.abcd1234.keras"
    fresh = rec.folder / f"{PARTIAL_PREFIX}run.wxyz9876.json"
    at_root = tmp_path / f"{PARTIAL_PREFIX}x.12345678.json"
    lookalike = rec.folder / "model.keras"
    for p in (stale, fresh, at_root, lookalike):
        p.write_bytes(b"partial")
    for p in (stale, at_root, lookalike):
        _age(p, 3600)
    (rec.folder / f"{PARTIAL_PREFIX}dir.12345678").mkdir()  # a folder, not one of our files
    _age(rec.folder / f"{PARTIAL_PREFIX}dir.12345678", 3600)
    runs_mod._RECOVERED.clear()  # as a new process would
    scan = RunsStore(tmp_path).scan()
    assert [r.id for r in scan.records] == [rec.id]
    assert not stale.exists() and not at_root.exists()
    assert fresh.exists() and lookalike.exists() and (rec.folder / f"{PARTIAL_PREFIX}dir.12345678").is_dir()


def test_atomic_writes_use_the_recognisable_prefix_and_leave_nothing(tmp_path):
    seen = []
    with atomic_path(tmp_path / ("long" * 60 + ".keras")) as tmp:
        seen.append(tmp.name)
        tmp.write_bytes(b"zip")
    assert is_partial_file(seen[0]) and seen[0].endswith(".keras") and len(seen[0]) < 120
    atomic_write_text(tmp_path / "a.json", "{}")
    assert not [p for p in tmp_path.iterdir() if is_partial_file(p.name)]


# ------------------------------------------------------------ the Train window
def test_the_runs_panel_shows_the_good_runs_and_a_note_for_the_damaged_one(qtbot, tmp_path):
    pytest.importorskip("PySide6")
    from neuralstudio.ui.train.runs_panel import RunsPanel

    store = RunsStore(tmp_path)
    good = _good(store)
    good.hyperparameters["learning_rate"] = "<b>" + "x" * 10_000  # a hand-edited record: shown as text, cut short
    store.save(good)
    _damage(tmp_path, "20990101-000000-dead", b'{"format": "neuralstudio-run", "batch_stride": "x", \xff')
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_store(store, None)
    assert panel.table.rowCount() == 1 and panel.records[0].id == good.id
    assert panel.table.item(0, 3).text().startswith("<b>xxx") and len(panel.table.item(0, 3).text()) <= 40
    assert panel.damaged_label.text() == "1 damaged run record skipped: 20990101-000000-dead"
    assert not panel.damaged_label.isHidden() and "not UTF-8" in panel.damaged_label.toolTip()
    (tmp_path / "20990101-000000-dead" / RUN_FILE).unlink()
    panel.reload()
    assert panel.damaged_label.isHidden() and panel.table.rowCount() == 1
