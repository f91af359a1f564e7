"""Retakes the Train workspace screenshots in ``docs/screenshots/`` (run under Xvfb, ~1 min).

Two real runs of Nielsen's network on 3,000 sample images: learning rate 1.0 for
4 epochs, then 3.0 for 8 epochs, shot while it trains (``train-running.png``);
then both runs ticked in the runs table and compared (``train-done.png``).

    xvfb-run -s "-screen 0 1600x1000x24" python tools/screenshot_train.py [OUT_DIR]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NEURALSTUDIO_HOME", tempfile.mkdtemp(prefix="ns-shot-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(out: Path) -> int:
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from neuralstudio.ui.responsiveness import single_threaded_painting

    single_threaded_painting()  # Qt set up as the app sets it up
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from neuralstudio.app import _apply_icon, _apply_style
    from neuralstudio.core.runs import RunsStore
    from neuralstudio.core.templates import load_template
    from neuralstudio.ml.data import Dataset, load_dataset
    from neuralstudio.ui.responsiveness import favor_gui_thread
    from neuralstudio.ui.train.workspace import TrainWorkspace

    _apply_style(app)
    _apply_icon(app)
    favor_gui_thread()
    out.mkdir(parents=True, exist_ok=True)
    full = load_dataset("mnist-sample")
    n = 3000
    data = Dataset(name="MNIST sample (3,000 images)", x_train=full.x_train[:n], y_train=full.y_train[:n],
                   x_test=full.x_test[:500], y_test=full.y_test[:500], class_names=full.class_names)
    ws = TrainWorkspace(runs_store=RunsStore(tempfile.mkdtemp(prefix="ns-shot-runs-")))
    ws.setWindowTitle("NeuralStudio — Train")
    ws.set_dataset(data)
    ws.resize(1400, 880)
    ws.show()
    QTest.qWaitForWindowExposed(ws)
    design = load_template("nielsen-784-30-10")

    def run(lr: float, epochs: int, shoot: bool) -> None:
        design.training = design.training.updated(epochs=epochs, learning_rate=lr)
        ws.set_design(design)
        loop = QEventLoop()
        ws.running_changed.connect(lambda running: None if running else loop.quit())

        def shot() -> None:
            if ws.is_running() and len(ws.plots.loss.train) >= 3:
                ws.grab().save(str(out / "train-running.png"))
                print("saved", out / "train-running.png")
            elif ws.is_running():
                QTimer.singleShot(200, shot)

        if shoot:
            QTimer.singleShot(200, shot)
        QTest.mouseClick(ws.train_button, Qt.MouseButton.LeftButton)
        loop.exec()
        ws.running_changed.disconnect()
        print(ws.last_message)

    run(1.0, 4, shoot=False)
    run(3.0, 8, shoot=True)
    ws.runs_panel.set_ticked([r.id for r in ws.runs_panel.records])
    ws.runs_panel.show_comparison()
    settle = QEventLoop()  # an event loop, not QTest.qWait: that holds the GIL (docs/ARCHITECTURE.md, "Traps")
    QTimer.singleShot(300, settle.quit)
    settle.exec()
    ws.grab().save(str(out / "train-done.png"))
    print("saved", out / "train-done.png")
    ws.request_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots")))
