"""Editor timings on big models: open + validate + lay out ResNet50 and NASNetMobile, revalidate after an edit.

Models come from ``keras.applications`` with ``weights=None`` (no download).
For comparison the table also shows plain Keras loading the same file.  With
``--screenshots DIR`` it also saves the Design workspace with the default
template and with ResNet50 open (run it under Xvfb for real fonts:
``xvfb-run -s "-screen 0 1600x1000x24" python tests/benchmarks/bench_editor.py --screenshots docs/screenshots``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _wait(app, cond, timeout=600.0) -> None:  # noqa: ANN001
    end = time.perf_counter() + timeout
    while not cond():
        app.processEvents()
        time.sleep(0.005)
        if time.perf_counter() > end:
            raise TimeoutError("timed out")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--screenshots", type=Path, help="folder for design-default.png and design-resnet50.png")
    ap.add_argument("--models", default="ResNet50,NASNetMobile")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ns-bench-"))
    os.environ["NEURALSTUDIO_HOME"] = str(tmp / "home")

    from PySide6.QtWidgets import QApplication

    from neuralstudio.ui.responsiveness import single_threaded_painting

    single_threaded_painting()  # Qt set up as the app sets it up
    app = QApplication(sys.argv[:1])
    from neuralstudio.app import _apply_style
    from neuralstudio.ui import commands as cmd
    from neuralstudio.ui.editor.layout import auto_layout
    from neuralstudio.ui.main_window import MainWindow

    _apply_style(app)
    w = MainWindow(check_autosave=False)
    w.resize(1600, 1000)
    w.show()
    _wait(app, lambda: w.loader.is_loaded)
    _wait(app, lambda: w.editor.analysis_current)
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
        conv = next(n for n in w.doc.graph if n.class_name == "Conv2D")
        w.scene.select_nodes([conv.id])
        for _ in range(20):
            app.processEvents()
        w.grab().save(str(args.screenshots / "design-default.png"))

    import keras

    rows = []
    for name in args.models.split(","):
        model = getattr(keras.applications, name)(weights=None)
        path = tmp / f"{name}.keras"
        model.save(path)
        n_layers = len(model.layers)
        del model
        t = time.perf_counter()
        keras.saving.load_model(path)
        plain = time.perf_counter() - t

        t = time.perf_counter()
        assert w.open_path(path, confirm=False)
        opened = time.perf_counter() - t
        _wait(app, lambda: w.editor.analysis_current)
        total = time.perf_counter() - t
        g = w.doc.graph
        t = time.perf_counter()
        auto_layout(g)
        lay = time.perf_counter() - t
        # panning: repaint the viewport after scrolling by 40 px steps at 100 % zoom
        w.view.set_zoom(1.0)
        w.view.centerOn(w.scene.nodes[g.topological_order()[len(g) // 2]])
        frames = []
        vbar = w.view.verticalScrollBar()
        for _ in range(30):
            vbar.setValue(vbar.value() + 40)
            t = time.perf_counter()
            w.view.viewport().repaint()
            frames.append(time.perf_counter() - t)
        # revalidate after one parameter edit
        reval = None
        if name == "ResNet50":
            dense = next(n for n in g if n.class_name == "Dense")
            t = time.perf_counter()
            w.editor.push(cmd.SetParamCommand(g, dense.id, "units", 10))
            dense_id = dense.id
            ed = w.editor
            _wait(app, lambda: ed.analysis_current and ed.last_analysis.infos[dense_id].output_shape[-1] == 10)  # noqa: B023
            reval = time.perf_counter() - t
            if args.screenshots:
                w.view.zoom_to_fit()
                w.view.set_zoom(0.55)
                w.view.centerOn(w.scene.nodes[g.topological_order()[12]])
                w.scene.select_nodes([g.topological_order()[2]])
                for _ in range(20):
                    app.processEvents()
                w.grab().save(str(args.screenshots / "design-resnet50.png"))
        rows.append((name, n_layers, len(g), plain, opened, total, lay, statistics.median(frames) * 1000,
                     max(frames) * 1000, reval, len(w.editor.last_analysis.errors),
                     w.editor.last_analysis.total_params))
    w.shutdown()

    print(f"{'model':13} {'keras layers':>12} {'nodes':>6} {'keras load s':>12} {'open+layout s':>13} "
          f"{'+validate s':>11} {'layout s':>8} {'pan frame ms (med/max)':>22} {'revalidate s':>12} {'errors':>6}"
          f" {'params':>11}")
    for r in rows:
        rv = f"{r[9]:.2f}" if r[9] is not None else "-"
        print(f"{r[0]:13} {r[1]:12d} {r[2]:6d} {r[3]:12.2f} {r[4]:13.2f} {r[5]:11.2f} {r[6]:8.3f} "
              f"{r[7]:12.1f} / {r[8]:7.1f} {rv:>12} {r[10]:6d} {r[11]:11,d}")
    print("\nopen+layout: load the file, import it as a graph and lay it out (background thread), show it;"
          "\n+validate: until the background analysis (all shapes and parameter counts) is shown;"
          "\nrevalidate: after changing ResNet50's Dense units, until the new analysis is shown.")


if __name__ == "__main__":
    main()
