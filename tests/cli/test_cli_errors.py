"""Every failure of a command ends in one plain ``error:`` line and status 1, never a traceback."""

from __future__ import annotations

import errno
import json
import os

import pytest

from neuralstudio.cli import main, os_error_message
from neuralstudio.cli import templates as templates_cmd
from neuralstudio.core.atomic import is_partial_file

pytestmark = pytest.mark.backend_neutral  # argument errors


@pytest.fixture
def design(tmp_path, capsys):
    path = tmp_path / "net.nsd"
    assert main(["new", "-o", str(path)]) == 0
    capsys.readouterr()
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_code_on_a_full_disk_says_so_and_leaves_no_partial_file(design, tmp_path, capsys, monkeypatch):
    def full(_fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "train_net.py"
    assert main(["code", str(design), "-o", str(out)]) == 1
    line = _one_error_line(capsys)
    assert line == f"error: cannot write {out}: the disk is full: free some space and try again."
    assert not out.exists() and not [p for p in tmp_path.iterdir() if is_partial_file(p.name)]


def test_code_into_a_read_only_folder_names_the_file(design, tmp_path, capsys, monkeypatch):
    import tempfile

    def read_only(*_a, **_k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / ".ns-partial-x.py"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "train_net.py"
    assert main(["code", str(design), "-o", str(out)]) == 1
    line = _one_error_line(capsys)
    assert line.startswith(f"error: cannot write {out}: Read-only file system") and "folder you can write" in line


def _failing_command(monkeypatch, exc: BaseException) -> None:
    def boom(_args):
        raise exc

    monkeypatch.setattr(templates_cmd, "run", boom)


@pytest.mark.parametrize(("exc", "want"), [
    (OSError(errno.ENOSPC, "No space left on device"), "error: cannot write a file: the disk is full"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/x.csv"), "error: cannot read /data/x.csv: Permission"),
    (MemoryError(), "error: not enough memory"),
    (RecursionError("maximum recursion depth exceeded"), "error: the input is nested too deeply"),
    (KeyError("x" * 100_000), "error: unexpected failure (KeyError: 'xxx"),
    (ZeroDivisionError("division by zero"), "error: unexpected failure (ZeroDivisionError: division by zero): "
                                            "please report this"),
])
def test_the_last_resort_handler_prints_one_short_line(monkeypatch, capsys, exc, want):
    _failing_command(monkeypatch, exc)
    assert main(["templates"]) == 1
    line = _one_error_line(capsys)
    assert line.startswith(want) and len(line) < 400


def test_neuralstudio_debug_gives_the_traceback(monkeypatch, capsys):
    _failing_command(monkeypatch, ZeroDivisionError("division by zero"))
    monkeypatch.setenv("NEURALSTUDIO_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["templates"])


def test_os_error_message_guesses_the_direction():
    assert os_error_message(OSError(errno.ENOENT, "No such file or directory", "a.nsd")) == \
        "cannot read a.nsd: No such file or directory."
    assert os_error_message(OSError(errno.EFBIG, "File too large"), "big.keras").startswith("cannot write big.keras")


def test_check_of_a_design_with_a_megabyte_name_prints_a_short_error(design, capsys):
    data = json.loads(design.read_text())
    data["graph"]["nodes"][1]["name"] = "a" * 2**20
    design.write_text(json.dumps(data))
    assert main(["check", str(design)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out) + len(captured.err) < 1000, captured.err[:300]
    assert "at most 100" in captured.err


def test_runs_lists_the_good_runs_and_reports_each_damaged_one(tmp_path, capsys):
    from neuralstudio.core.runs import RunsStore

    store = RunsStore(tmp_path / "runs")
    rec = store.create(design={"name": "net"}, hyperparameters={"learning_rate": "fast", "batch_size": [1]})
    rec.status = "finished"
    rec.epochs = [{"epoch": 0, "loss": 0.5}]
    store.save(rec)
    for name, content in (("20990101-000000-aaaa", b"\xff\xfe"), ("20990101-000000-bbbb", b"[" * 100_000)):
        (store.root / name).mkdir()
        (store.root / name / "run.json").write_bytes(content)
    assert main(["runs", "--runs", str(store.root)]) == 0
    captured = capsys.readouterr()
    assert rec.id in captured.out and "2 damaged record(s) skipped" in captured.out
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: skipped a damaged run record") for w in warnings)
    assert "20990101-000000-aaaa" in warnings[0] and "20990101-000000-bbbb" in warnings[1]
    assert main(["runs", "--runs", str(store.root), "show", rec.id]) == 0
    assert "learning_rate=fast" in capsys.readouterr().out


def test_any_command_whose_atomic_write_fails_names_the_target(monkeypatch, capsys, tmp_path):
    """`train --history`, `import -o`... write through core.atomic: the handler in main() names their file."""
    from neuralstudio.core.atomic import atomic_write_text

    target = tmp_path / "history.json"

    def writes(_args):
        atomic_write_text(target, "{}")

    def full(_fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(templates_cmd, "run", writes)
    monkeypatch.setattr(os, "fsync", full)
    assert main(["templates"]) == 1
    assert _one_error_line(capsys) == f"error: cannot write {target}: the disk is full: free some space and try again."
