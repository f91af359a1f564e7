"""Import + rebuild every keras.applications architecture; compare with Keras's own from_config.

For each architecture (weights=None, nothing downloaded) this measures

* ``keras``: ``keras.Model.from_config(model.get_config())``, Keras rebuilding its own model;
* ``ours``: :func:`neuralstudio.ml.importer.graph_from_model` + :func:`neuralstudio.ml.builder.build_model`;

and checks that the rebuilt model has the same layers (class names and configs), output
shape and parameter count and, with the weights copied by layer name, the same outputs on a
random batch.  The goal is ``ours / keras <= 2``.  Times are CPU seconds of this process
(the machine is shared, so wall time measures the neighbours), the best of ``--repeat``
interleaved runs; ``wall`` is the same ratio in wall-clock time.

Usage::

    python tests/benchmarks/bench_import_applications.py [--only MobileNetV2,ResNet50] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _strip(cfg: dict) -> dict:
    cfg = dict(cfg)
    cfg.pop("name", None)
    return cfg


def bench(name: str, repeat: int) -> dict:
    import keras
    import numpy as np

    from neuralstudio.core.errors import UserError
    from neuralstudio.ml.builder import build_model
    from neuralstudio.ml.importer import graph_from_model

    ctor = getattr(keras.applications, name)
    model = ctor(weights=None)
    row: dict = {"name": name, "layers": len(model.layers), "params": model.count_params()}
    try:
        graph_from_model(model)
    except UserError as exc:
        row["keras"] = _timed(lambda: keras.Model.from_config(model.get_config()))
        row["status"] = f"refused: {str(exc)[:90]}"
        return row
    keras_times, times, keras_wall, wall = [], [], [], []
    rebuilt = None
    for _ in range(repeat):  # interleaved, so that load from other processes hits both alike
        w0 = time.perf_counter()
        keras_times.append(_timed(lambda: keras.Model.from_config(model.get_config())))
        keras_wall.append(time.perf_counter() - w0)
        w0, t0 = time.perf_counter(), time.process_time()
        rebuilt = build_model(graph_from_model(model))
        times.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
    t_keras = row["keras"] = min(keras_times)
    row["ours"] = min(times)
    row["wall_ratio"] = min(wall) / min(keras_wall)
    row["ratio"] = row["ours"] / t_keras
    same_layers = [(type(a).__name__, _strip(a.get_config())) for a in model.layers] == [
        (type(b).__name__, _strip(b.get_config())) for b in rebuilt.layers
    ]
    same_shape = tuple(model.output.shape) == tuple(rebuilt.output.shape)
    same_params = model.count_params() == rebuilt.count_params()
    for layer in rebuilt.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    shape = (2, *model.input.shape[1:])
    x = np.random.default_rng(0).random(shape, dtype=np.float32) * 255.0
    same_out = bool(np.allclose(np.asarray(model(x, training=False)), np.asarray(rebuilt(x, training=False)),
                                atol=1e-5, rtol=1e-4))
    ok = same_layers and same_shape and same_params and same_out
    row["status"] = "ok" if ok else (
        f"DIFFERENT layers={same_layers} shape={same_shape} params={same_params} outputs={same_out}")
    return row


def _timed(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> int:
    import keras

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated architecture names")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    names = sorted(n for n in dir(keras.applications) if n[0].isupper() and callable(getattr(keras.applications, n)))
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    print(f"keras {keras.__version__}; CPU seconds, best of {args.repeat}", flush=True)
    print(f"{'model':<20}{'layers':>7}{'params':>12}{'keras':>8}{'ours':>8}{'ratio':>7}{'wall':>6}  result", flush=True)
    worst = 0.0
    bad = 0
    for name in names:
        try:
            row = bench(name, args.repeat)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
            row = {"name": name, "status": f"ERROR {type(exc).__name__}: {str(exc)[:90]}"}
        if "ratio" in row:
            worst = max(worst, row["ratio"])
        if row["status"] != "ok" and not row["status"].startswith("refused"):
            bad += 1
        print(f"{row['name']:<20}{row.get('layers', ''):>7}{row.get('params', ''):>12}"
              f"{row.get('keras', float('nan')):>8.2f}{row.get('ours', float('nan')):>8.2f}"
              f"{row.get('ratio', float('nan')):>7.2f}{row.get('wall_ratio', float('nan')):>6.2f}  {row['status']}",
              flush=True)
        keras.backend.clear_session()
        gc.collect()
    print(f"worst ratio {worst:.2f} (goal <= 2.00); {bad} architecture(s) imported but different", flush=True)
    return 1 if bad or worst > 2 else 0


if __name__ == "__main__":
    sys.exit(main())
