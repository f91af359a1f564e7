"""``neuralstudio --self-test``: prove, without a screen, that this installation works.

It is what a packager runs after building a wheel or a frozen app, and what a
user runs when the app will not start: it loads the shipped files from wherever
this copy of NeuralStudio is installed (a wheel, a PyInstaller bundle, a source
checkout), so a missing template, icon, data file or model, a broken Keras or Qt,
or a main window that cannot be created shows up as one named failed check.

Checks, in order:

1. resources: the templates, icons, MNIST sample and bundled model are present;
2. templates: every shipped template parses into a design;
3. model: ``models/digits.keras`` loads (safe mode) through the app's loader;
4. predict: MNIST sample test digits, prepared as drawn digits are, are classified
   by the fast :class:`~neuralstudio.ml.inference.Predictor`, and most are right;
5. x11: on Linux, the system libraries Qt's X11 platform needs for a window on the
   screen are installed (``neuralstudio.platform_libs``: what is missing and how to install it);
6. gui: the main window is created, shown (offscreen unless ``QT_QPA_PLATFORM``
   says otherwise), loads Keras in the background, shows the About dialog, and
   shuts down cleanly.

It writes nothing outside a temporary folder (settings, autosave and runs are
redirected) and exits 0 when every check passes, 1 otherwise with the reasons.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

PREDICT_IMAGES = 200
MIN_ACCURACY = 0.9  # the bundled model scores ~98 % on the sample's test split (models/digits.metrics.json)
GUI_TIMEOUT_S = 180.0
MODEL_FILE = "digits.keras"


class CheckFailedError(Exception):
    """A self-test check that did not pass; the message says what is wrong."""


def _check_resources(state: dict[str, Any]) -> str:
    from neuralstudio.core.paths import bundled_models_dir, resources_dir, sample_data_dir, templates_dir

    wanted = {
        "templates": templates_dir(),
        "MNIST sample images": sample_data_dir() / "t10k-images-idx3-ubyte.gz",
        "MNIST sample labels": sample_data_dir() / "t10k-labels-idx1-ubyte.gz",
        "app icon (SVG)": resources_dir() / "icons" / "neuralstudio.svg",
        "app icon (PNG)": resources_dir() / "icons" / "neuralstudio-256.png",
        "bundled model": bundled_models_dir() / MODEL_FILE,
    }
    missing = [f"{what} ({path})" for what, path in wanted.items() if not path.exists()]
    if missing:
        raise CheckFailedError("missing from this installation: " + "; ".join(missing))
    state["model_path"] = wanted["bundled model"]
    return f"shipped files found under {resources_dir()} and {bundled_models_dir()}"


def _check_templates(state: dict[str, Any]) -> str:
    from neuralstudio.core.templates import list_templates, load_template

    infos = list_templates()
    if not infos:
        raise CheckFailedError("no templates found: the installation is incomplete, reinstall NeuralStudio")
    for info in infos:
        design = load_template(info.name)
        if len(design.graph) == 0:
            raise CheckFailedError(f"template {info.name!r} has no layers")
    return f"{len(infos)} templates load ({', '.join(i.name for i in infos)})"


def _check_model(state: dict[str, Any]) -> str:
    from neuralstudio.ml.model_files import load_keras_model

    start = time.perf_counter()
    model = load_keras_model(state["model_path"])
    state["model"] = model
    return f"{MODEL_FILE} loaded in {time.perf_counter() - start:.1f} s ({model.count_params():,} parameters)"


def _check_predict(state: dict[str, Any]) -> str:
    import numpy as np

    from neuralstudio.ml.data import load_dataset
    from neuralstudio.ml.inference import Predictor
    from neuralstudio.ml.preprocess import prepare_digit

    data = load_dataset("mnist-sample")
    if data.x_test is None or data.y_test is None or len(data.x_test) < PREDICT_IMAGES:
        raise CheckFailedError("the MNIST sample has no test split of the expected size")
    images = np.stack([prepare_digit(img) for img in data.x_test[:PREDICT_IMAGES]])
    labels = data.y_test[:PREDICT_IMAGES]
    predictor = Predictor(state["model"])
    first = predictor.predict(images[0])
    start = time.perf_counter()
    probs = predictor.predict_batch(images)
    batch_ms = (time.perf_counter() - start) * 1000
    accuracy = float(np.mean(np.argmax(probs, axis=1) == labels))
    if accuracy < MIN_ACCURACY:
        raise CheckFailedError(f"the bundled model classified only {accuracy:.1%} of {PREDICT_IMAGES} sample test "
                               f"digits correctly (expected at least {MIN_ACCURACY:.0%}): the model file or Keras "
                               "is broken")
    return (f"sample test digit #0 (a {int(labels[0])}) -> {first.digit} ({first.confidence:.1%}); "
            f"{accuracy:.1%} of {PREDICT_IMAGES} test digits right ({batch_ms:.0f} ms for the batch)")


def _check_gui(state: dict[str, Any]) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from neuralstudio.ui.responsiveness import single_threaded_painting

    single_threaded_painting()  # Qt set up as the app sets it up
    try:
        from PySide6.QtCore import QCoreApplication, QSettings
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        raise CheckFailedError(f"PySide6 cannot be imported ({exc}): reinstall PySide6-Essentials") from None

    QCoreApplication.setOrganizationName("NeuralStudio")
    QCoreApplication.setApplicationName("NeuralStudio-self-test")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(Path(state["tmp"]) / "settings"))
    app = QApplication.instance() or QApplication(sys.argv[:1])

    from neuralstudio.ui.about_dialog import AboutDialog
    from neuralstudio.ui.main_window import MainWindow

    start = time.perf_counter()
    window = MainWindow(load_default=True, check_autosave=False)
    try:
        window.show()
        app.processEvents()
        if not window.isVisible():
            raise CheckFailedError("the main window did not show")
        deadline = time.monotonic() + GUI_TIMEOUT_S
        while not window.loader.is_loaded and window.loader.error is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        if window.loader.error is not None:
            raise CheckFailedError(f"the window could not load Keras: {window.loader.error}")
        if not window.loader.is_loaded:
            raise CheckFailedError(f"the window had not loaded Keras after {GUI_TIMEOUT_S:.0f} s")
        ready_s = time.perf_counter() - start
        about = AboutDialog(window)
        about.show()
        app.processEvents()
        about_ok = about.isVisible() and "NeuralStudio" in about.text()
        about.close()
        if not about_ok:
            raise CheckFailedError("the About dialog did not show")
        title = window.windowTitle()
    finally:
        window.shutdown()
        window.close()
        app.processEvents()
    platform_name = app.platformName()
    return (f"main window '{title}' shown ({platform_name}), Keras loaded in it after {ready_s:.1f} s, "
            "About dialog shown")


def _check_x11(_state: dict[str, Any]) -> str:
    from neuralstudio.platform_libs import XCB_LIBRARIES, install_advice, missing_libraries

    if not sys.platform.startswith("linux"):
        return f"not needed on {platform.system()}"
    missing = missing_libraries()
    if missing:
        raise CheckFailedError(install_advice(missing))
    return f"the {len(XCB_LIBRARIES)} system libraries of Qt's X11 platform are installed"


CHECKS: list[tuple[str, Callable[[dict[str, Any]], str], tuple[str, ...]]] = [
    ("resources", _check_resources, ()),
    ("templates", _check_templates, ()),
    ("model", _check_model, ("resources",)),
    ("predict", _check_predict, ("model",)),
    ("x11", _check_x11, ()),
    ("gui", _check_gui, ()),
]


def run_self_test(out: TextIO | None = None) -> int:
    """Run every check, print a short report to ``out`` (stdout); returns 0 when all pass, else 1."""
    out = out or sys.stdout
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import neuralstudio

    frozen = "frozen app" if getattr(sys, "frozen", False) else f"Python {platform.python_version()}"
    print(f"NeuralStudio {neuralstudio.__version__} self-test ({frozen}, {platform.system()} {platform.machine()})",
          file=out)
    print(f"  package: {Path(neuralstudio.__file__).resolve().parent}", file=out)
    passed: set[str] = set()
    failures: list[str] = []
    saved_home = os.environ.get("NEURALSTUDIO_HOME")
    with tempfile.TemporaryDirectory(prefix="neuralstudio-self-test-") as tmp:
        os.environ["NEURALSTUDIO_HOME"] = tmp  # runs, autosave: nothing lands in the user's folder
        state: dict[str, Any] = {"tmp": tmp}
        try:
            for name, check, needs in CHECKS:
                blocked = [n for n in needs if n not in passed]
                if blocked:
                    failures.append(f"{name}: not run because {', '.join(blocked)} failed")
                    print(f"  SKIP {name:<9} needs {', '.join(blocked)}", file=out, flush=True)
                    continue
                start = time.perf_counter()
                try:
                    detail = check(state)
                except CheckFailedError as exc:
                    failures.append(f"{name}: {exc}")
                    print(f"  FAIL {name:<9} {exc}", file=out, flush=True)
                    continue
                except Exception as exc:  # noqa: BLE001 - every failure becomes a line of the report
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
                    print(f"  FAIL {name:<9} {type(exc).__name__}: {exc}", file=out, flush=True)
                    if sys.stderr is not None:  # None in a windowed frozen app
                        traceback.print_exc(file=sys.stderr)
                    continue
                passed.add(name)
                print(f"  ok   {name:<9} {detail} [{time.perf_counter() - start:.1f} s]", file=out, flush=True)
        finally:
            if saved_home is None:
                os.environ.pop("NEURALSTUDIO_HOME", None)
            else:
                os.environ["NEURALSTUDIO_HOME"] = saved_home
    if failures:
        print(f"Self-test FAILED ({len(failures)} of {len(CHECKS)} checks):", file=out)
        for line in failures:
            print(f"  - {line}", file=out)
        return 1
    print(f"Self-test passed: all {len(CHECKS)} checks.", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(run_self_test())
