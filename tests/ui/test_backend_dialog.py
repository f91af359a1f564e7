"""Settings > Keras Backend…: the choice, the measurement in the background, the restart; the Train page's label."""

from __future__ import annotations

import json
import sys
import textwrap
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog
from support import flat_mlp, image_mlp
from window_helpers import close_workspace

from neuralstudio.core.runs import RunsStore
from neuralstudio.ml import backend_speed, backends
from neuralstudio.ml.devices import DeviceInfo, DeviceReport
from neuralstudio.ui.backend_dialog import BackendDialog, restart_app

pytest.importorskip("pytestqt")

#: answers at once, a speed per backend (the real child: tests/ml/test_backend_speed.py)
QUICK_CHILD = textwrap.dedent("""
    import json, os, sys
    assert json.loads(sys.stdin.read())["graph"]["nodes"]
    b = os.environ["KERAS_BACKEND"]
    if b == "torch":
        print("RuntimeError: torch failed here", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"samples_per_second": {"tensorflow": 1000.0, "jax": 4700.0}[b], "device": "CPU"}))
""")
SLOW_CHILD = "import sys, time; sys.stdin.read(); time.sleep(120)"


def _dialog(qtbot, design=None) -> BackendDialog:
    dialog = BackendDialog(lambda: design)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


@pytest.fixture
def all_installed(monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda name: True)


def test_each_backend_has_a_radio_button_with_its_line_and_the_one_in_use_marked(qtbot, monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda name: name != "torch")
    dialog = _dialog(qtbot)
    assert dialog.running == "tensorflow"
    tf, jax, torch = (dialog.radios[b] for b in backends.BACKENDS)
    assert tf.text().startswith("&TensorFlow ") and tf.text().endswith("\u2014 in use") and tf.isChecked()
    assert "in use" not in jax.text() and jax.isEnabled()
    assert not torch.isEnabled()
    assert backends.INSTALL["torch"] in dialog.details["torch"].text()
    assert "no LiteRT/ONNX export" in dialog.details["jax"].text()
    for name, radio in dialog.radios.items():
        assert radio.toolTip() and dialog.details[name].toolTip()
        assert radio.width() >= radio.sizeHint().width(), f"{radio.text()} is clipped"
        label = dialog.details[name]
        assert label.height() >= label.heightForWidth(label.width()), f"{label.text()} is clipped"
    # keyboard: Alt+J checks JAX
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow)
    qtbot.keyClick(dialog, Qt.Key.Key_J, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(jax.isChecked, timeout=2_000)  # a mnemonic "animates" the click: it lands 100 ms later
    assert dialog.chosen() == "jax" and jax.hasFocus()
    assert not dialog.measure_button.isEnabled()  # no design: nothing to measure, and the tip says so
    assert "nothing to measure" in dialog.measure_button.toolTip()


def test_pytorch_says_what_differs_on_it(qtbot, all_installed):
    dialog = _dialog(qtbot)
    text = dialog.details["torch"].text()
    assert "one step per execution" in text and "no SavedModel/LiteRT export" in text and "several GPUs: no" in text


def test_measuring_runs_in_the_background_and_shows_the_table_and_the_sentence(qtbot, all_installed, monkeypatch):
    monkeypatch.setattr(backend_speed, "child_command", lambda: [sys.executable, "-c", QUICK_CHILD])
    dialog = _dialog(qtbot, flat_mlp())
    assert dialog.measure_button.isEnabled()
    qtbot.mouseClick(dialog.measure_button, Qt.MouseButton.LeftButton)
    assert dialog.busy.isVisible() and dialog.stop_button.isVisible() and not dialog.measure_button.isEnabled()
    assert dialog.table.rowCount() == 3 and "Measuring TensorFlow (1 of 3)" in dialog.status_label.text()
    qtbot.waitUntil(lambda: dialog.suggestion_label.text() != "", timeout=60_000)
    assert not dialog.busy.isVisible() and dialog.measure_button.isEnabled()
    rows = [[dialog.table.item(r, c).text() for c in range(4)] for r in range(3)]
    assert rows[0][0] == "TensorFlow (in use)" and rows[0][1] == "1,000" and rows[0][2] == "CPU"
    assert rows[1][1] == "4,700" and rows[2][3] == "RuntimeError: torch failed here"
    assert dialog.suggestion_label.text() == (
        "JAX trains this design 4.7x faster than TensorFlow here (4,700 against 1,000 samples/s, measured just now): "
        "choose it above and press OK (applies at the next start).")
    assert dialog.table.verticalScrollBar().isHidden() or not dialog.table.verticalScrollBar().isVisible()


def test_closing_the_dialog_while_it_measures_kills_the_child(qtbot, all_installed, monkeypatch):
    monkeypatch.setattr(backend_speed, "child_command", lambda: [sys.executable, "-c", SLOW_CHILD])
    dialog = _dialog(qtbot, image_mlp())
    assert dialog.start_measuring()
    qtbot.waitUntil(lambda: dialog._comparison.process is not None, timeout=30_000)
    child = dialog._comparison.process
    thread = dialog._thread
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Rejected
    qtbot.waitUntil(lambda: child.poll() is not None and not thread.is_alive(), timeout=5_000)
    assert backends.saved_choice() is None  # Cancel saves nothing


def test_stop_ends_the_measurement_and_keeps_the_dialog_open(qtbot, all_installed, monkeypatch):
    monkeypatch.setattr(backend_speed, "child_command", lambda: [sys.executable, "-c", SLOW_CHILD])
    dialog = _dialog(qtbot, image_mlp())
    qtbot.mouseClick(dialog.measure_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog._comparison.process is not None, timeout=30_000)
    qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.measure_button.isEnabled(), timeout=5_000)
    assert dialog.isVisible() and dialog.status_label.text() == "Measuring stopped."
    assert dialog.suggestion_label.text() == ""
    assert dialog.table.item(0, 3).text() == "cancelled"


def test_ok_saves_the_choice_and_asks_to_restart_only_when_it_changes(qtbot, all_installed, monkeypatch):
    asked = []
    monkeypatch.setattr(BackendDialog, "ask_restart", staticmethod(lambda _p, name: asked.append(name) or False))
    dialog = _dialog(qtbot)
    restarts = []
    dialog.restart_requested.connect(lambda: restarts.append(1))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert backends.saved_choice() == "tensorflow" and asked == [] and restarts == []

    dialog = _dialog(qtbot)
    dialog.restart_requested.connect(lambda: restarts.append(1))
    dialog.radios["jax"].click()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)  # "Later"
    assert backends.saved_choice() == "jax" and asked == ["jax"] and restarts == [] and not dialog.isVisible()

    monkeypatch.setattr(BackendDialog, "ask_restart", staticmethod(lambda _p, name: True))
    dialog = _dialog(qtbot)
    assert dialog.chosen() == "jax"  # the saved choice is checked; TensorFlow is still the one in use
    assert "in use" in dialog.radios["tensorflow"].text()
    dialog.restart_requested.connect(lambda: restarts.append(1))
    dialog.radios["torch"].click()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)  # "Restart now"
    assert backends.saved_choice() == "torch" and restarts == [1]


def test_the_menu_opens_the_dialog(qtbot, main_window):
    menu = main_window.menu("Settings")
    assert menu is not None
    [action] = [a for a in menu.actions() if a.text() == "Keras &Backend…"]
    assert action.toolTip()
    action.trigger()
    dialog = main_window.backend_dialog
    qtbot.waitExposed(dialog)
    assert dialog.isVisible() and dialog.measure_button.isEnabled()  # the default template: something to measure
    dialog.reject()


def test_restart_closes_the_window_first_and_a_cancelled_close_cancels_it(qtbot, main_window, monkeypatch,
                                                                         tmp_path):
    started = []
    path = tmp_path / "net.nsd"
    assert main_window.save_to(path)
    main_window.doc.mark_modified()  # unsaved changes: closing asks
    asked = []
    monkeypatch.setattr(main_window, "_ask_unsaved", lambda: asked.append(1) or "cancel")
    assert not restart_app(main_window, start=lambda proc: started.append(proc) or (True, 1))
    assert asked == [1] and started == [] and main_window.isVisible()

    monkeypatch.setattr(main_window, "_ask_unsaved", lambda: asked.append(2) or "discard")
    assert restart_app(main_window, start=lambda proc: started.append(proc) or (True, 1))
    assert asked == [1, 2] and not main_window.isVisible()
    [proc] = started
    assert proc.arguments()[-2:] == ["gui", str(path)]  # the design opens again
    assert proc.program().endswith(("neuralstudio", "neuralstudio.exe")) or proc.arguments()[:2] == ["-m",
                                                                                                   "neuralstudio"]
    assert "KERAS_BACKEND" not in proc.processEnvironment().keys()  # the saved choice decides, not this process's


def test_restart_really_starts_the_new_process_detached(qtbot, main_window, monkeypatch, tmp_path):
    """The default start (QProcess.startDetached), with a stand-in program that writes down how it was started."""
    from neuralstudio import desktop_integration

    out = tmp_path / "started.json"
    code = ("import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': os.environ.get('KERAS_BACKEND')}, "
            f"open({str(out)!r}, 'w'))")
    monkeypatch.setattr(desktop_integration, "launch_command", lambda: [sys.executable, "-c", code])
    monkeypatch.setattr(main_window, "_ask_unsaved", lambda: "discard")
    assert restart_app(main_window)
    qtbot.waitUntil(out.exists, timeout=30_000)
    qtbot.waitUntil(lambda: out.read_text().endswith("}"), timeout=5_000)
    started = json.loads(out.read_text())
    assert started["argv"][0] == "gui" and started["env"] is None


def test_the_train_page_shows_the_backend_under_the_device(qtbot, tmp_path):
    import keras  # noqa: F401 - in the app, the KerasLoader has loaded it in the background by now

    from neuralstudio.ui.train.workspace import TrainWorkspace

    ws = TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    try:
        ws.show()
        qtbot.waitExposed(ws)
        label = ws.settings_panel.backend_label
        assert label.text() == "Backend: TensorFlow"  # before the report: what was chosen, no Keras import
        ws.set_design(image_mlp())
        qtbot.waitUntil(lambda: "\u2014" in label.text(), timeout=60_000)
        import tensorflow as tf

        assert label.text().startswith(f"Backend: TensorFlow {tf.__version__} \u2014 ")
        assert "Settings > Keras Backend" in label.toolTip()
        qtbot.waitUntil(lambda: label.width() >= label.sizeHint().width(), timeout=2_000)  # not clipped
        assert label.isVisible() and label.isEnabled()

        report = DeviceReport("jax", "0.10.2", "CPU-only build", physical=[DeviceInfo("CPU:0", "CPU")],
                              gpu_reason="no NVIDIA GPU driver was found.", choice_source="settings")
        ws._on_devices_found(report)
        assert label.text() == "Backend: JAX 0.10.2 \u2014 CPU"
        assert label.toolTip().startswith("Keras trains with JAX 0.10.2 (CPU-only build; chosen in Settings > Keras "
                                          "Backend). No GPU: no NVIDIA GPU driver was found.")
        gpu = DeviceReport("torch", "2.13.0", "CUDA 12.8", choice_source="--backend",
                           physical=[DeviceInfo("CPU:0", "CPU"), DeviceInfo("GPU:0", "GPU", "NVIDIA H200")])
        ws._on_devices_found(gpu)
        assert label.text() == "Backend: PyTorch 2.13.0 \u2014 GPU" and "No GPU" not in label.toolTip()
        assert "GPUs: NVIDIA H200." in label.toolTip()
    finally:
        close_workspace(ws)


def test_device_detection_waits_for_keras_not_tensorflow(qtbot, tmp_path, monkeypatch):
    """On JAX and PyTorch TensorFlow is never imported: the devices are listed once Keras is."""
    from neuralstudio.ui.train import workspace as ws_mod

    asked = []
    monkeypatch.setattr(ws_mod, "_device_report", lambda: asked.append(1) or DeviceReport("jax", "0.10.2", "CPU"))
    ws = ws_mod.TrainWorkspace(runs_store=RunsStore(tmp_path / "runs"))
    try:
        # the workspace sees Keras loaded and no TensorFlow, as on JAX (nothing real is unloaded)
        seen = {"tensorflow": sys.modules.get("tensorflow")}
        monkeypatch.setattr(ws_mod, "sys", SimpleNamespace(modules=seen))
        monkeypatch.setattr(ws_mod, "_preload_training", lambda: None)
        ws._detect_devices()
        qtbot.wait(200)
        assert asked == []  # TensorFlow alone is not Keras: wait
        del seen["tensorflow"]
        seen["keras"] = sys.modules["keras"]
        ws._detect_devices()
        qtbot.waitUntil(lambda: asked == [1], timeout=30_000)
        qtbot.waitUntil(lambda: "JAX" in ws.settings_panel.backend_label.text(), timeout=30_000)
    finally:
        close_workspace(ws)
