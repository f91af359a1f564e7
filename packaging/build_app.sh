#!/usr/bin/env bash
# Build the standalone NeuralStudio app with PyInstaller: dist/NeuralStudio/ (and dist/NeuralStudio.app on macOS).
#
#   packaging/build_app.sh            # from anywhere; uses the python on PATH (or $PYTHON)
#
# The python must have NeuralStudio's dependencies and PyInstaller installed
# (pip install . pyinstaller).  The build ends by running the built app's --self-test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
cd "$ROOT"

"$PYTHON" -c "import PyInstaller" 2>/dev/null || {
    echo "error: PyInstaller is not installed for $PYTHON: run '$PYTHON -m pip install pyinstaller' first." >&2
    exit 1
}
[ -f models/digits.keras ] || {
    echo "error: models/digits.keras is missing: run 'python tools/train_bundled_model.py' first." >&2
    exit 1
}

# PyInstaller's hooks import neuralstudio from the checkout, not from an installed copy.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller \
    packaging/neuralstudio.spec

APP="dist/NeuralStudio/NeuralStudio"
[ -x "$APP" ] || APP="dist/NeuralStudio/NeuralStudio.exe"
echo "== self-test of the built app"
QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" "$APP" --self-test
echo "== built: $ROOT/dist/NeuralStudio ($(du -sh dist/NeuralStudio | cut -f1))"
