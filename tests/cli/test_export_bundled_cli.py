"""``neuralstudio export models/digits.keras --format F -o PATH`` succeeds and verifies for every format.

The bundled model has the ``cnn-augmented`` architecture: augmentation layers that Keras traces in training
mode unless the export leaves them out, and no run record beside it, so the Python export imports its design
from the model (tests/ml/test_export_templates.py covers the same for models the app trains).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("keras")

from support import skip_unless_exportable  # noqa: E402

from neuralstudio.cli import main  # noqa: E402
from neuralstudio.core.paths import bundled_models_dir  # noqa: E402
from neuralstudio.ml.export_formats import FORMATS  # noqa: E402


def _format_param(name: str) -> object:
    missing = FORMATS[name].missing_packages()
    marks = [pytest.mark.skip(reason=f"needs {', '.join(missing)}: {FORMATS[name].install_hint()}")] if missing else []
    if name in ("python", "inference-script"):  # generated code, the same on every backend
        marks.append(pytest.mark.backend_neutral)
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [_format_param(n) for n in FORMATS])
def test_bundled_model_exports_and_verifies(tmp_path, capsys, fmt):
    skip_unless_exportable(fmt)
    model = bundled_models_dir() / "digits.keras"
    assert model.is_file(), "models/digits.keras is missing: run python tools/train_bundled_model.py"
    f = FORMATS[fmt]
    out = tmp_path / ("digits_" + fmt.replace("-", "_") if f.folder else "digits" + f.suffix)
    rc = main(["export", str(model), "--format", fmt, "--output", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and out.exists()
    ver = data["verification"]
    assert ver["passed"], ver
    assert ver["data"].startswith("MNIST") and ver["agreement"] == 1.0
    assert ver["max_abs_diff"] <= ver["tolerance"]
