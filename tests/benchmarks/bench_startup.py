"""Time from process start to the first painted main window (goal: at most 0.5 s).

Runs ``neuralstudio`` in a fresh subprocess several times; the app writes the
wall-clock time of its first paint to a file (``NEURALSTUDIO_BENCH_FIRST_PAINT``)
and exits.  For comparison, the same is measured for a bare PySide6 window and
for ``import keras`` alone (what the window must not wait for).

    python tests/benchmarks/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_QT = """
import os, sys, time
from pathlib import Path
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
w = QLabel("hello")
class F(QObject):
    def eventFilter(self, o, e):
        if e.type() == QEvent.Type.Paint:
            Path(os.environ["NEURALSTUDIO_BENCH_FIRST_PAINT"]).write_text(f"{time.time():.6f}")
            os._exit(0)
        return False
f = F(); w.installEventFilter(f); w.show(); app.exec()
"""


def _first_paint(code: str, env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "paint.txt"
        env = {**env, "NEURALSTUDIO_BENCH_FIRST_PAINT": str(out), "NEURALSTUDIO_HOME": tmp}
        t0 = time.time()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return float(out.read_text()) - t0


def _import_keras(env: dict[str, str]) -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", "import keras"], env=env, check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen" if not env.get("DISPLAY") else env.get("QT_QPA_PLATFORM", ""))
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    app = [_first_paint("from neuralstudio.app import run_app; run_app()", env) for _ in range(args.runs)]
    bare = [_first_paint(BARE_QT, env) for _ in range(args.runs)]
    keras_t = _import_keras(env)
    print(f"{'measure':44} {'median s':>9} {'min s':>7} {'max s':>7}")
    for label, xs in (("NeuralStudio: process start -> first paint", app),
                      ("bare PySide6 label: process start -> paint", bare)):
        print(f"{label:44} {statistics.median(xs):9.3f} {min(xs):7.3f} {max(xs):7.3f}")
    print(f"{'import keras (not waited for), 1 run':44} {keras_t:9.3f}")
    med = statistics.median(app)
    print(f"\nratio app / bare Qt: {med / statistics.median(bare):.2f}x;"
          f" goal <= 0.5 s: {'met' if med <= 0.5 else 'NOT met'} (QPA: {env.get('QT_QPA_PLATFORM') or 'default'})")


if __name__ == "__main__":
    main()
