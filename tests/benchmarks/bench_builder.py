"""How long a re-analysis of a 200-layer design takes after one parameter edit.

The editor re-runs :func:`neuralstudio.ml.builder.analyze` after every edit, so it must
stay well under the ~300 ms a person notices.  Two 200-layer designs are measured:

* ``dense``: a residual stack of Dense layers (Dense -> Dense -> Add, repeated) on a
  784-feature input;
* ``conv``: a residual stack of convolution blocks (Conv2D -> BatchNormalization ->
  ReLU -> Conv2D -> Add, repeated) on 28x28x1 images.

Every Dense/Conv2D gets its own initializer seed so that no two layers are alike and
the shape cache cannot serve one layer's result to another (the honest worst case).
Plain Keras building the same network layer by layer is timed in the same run so the
ratio is comparable across machines.

Run: ``python tests/benchmarks/bench_builder.py [--layers 200] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _init(seed: int) -> dict:
    return {"class_name": "GlorotUniform", "config": {"seed": seed}, "module": "keras.initializers"}


# One block of each stack: (class, config, feeds the Add from the block input?)
_BLOCKS = {
    "dense": [("Dense", {"units": 64, "activation": "relu"}), ("Dense", {"units": 64})],
    "conv": [("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}), ("BatchNormalization", {}),
             ("ReLU", {}), ("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"})],
}
_STEM = {
    "dense": ([None, 784], ("Dense", {"units": 64, "activation": "relu"})),
    "conv": ([None, 28, 28, 1], ("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"})),
}


def _plan(kind: str, n_layers: int) -> list[tuple[str, dict, str]]:
    """The layers in order as (class, config, role): role 'stem', 'block', 'add', 'head' or 'fill'."""
    block = _BLOCKS[kind]
    plan = [("InputLayer", {"batch_shape": _STEM[kind][0]}, "input"), (*_STEM[kind][1], "stem")]
    head = [("GlobalAveragePooling2D", {}, "head")] if kind == "conv" else []
    head.append(("Dense", {"units": 10, "activation": "softmax"}, "head"))
    while len(plan) + len(block) + 1 + len(head) <= n_layers:
        plan += [(c, dict(cfg), "block") for c, cfg in block]
        plan.append(("Add", {}, "add"))
    while len(plan) + len(head) < n_layers:
        plan.append(("Activation", {"activation": "relu"}, "fill"))
    return plan + head


def make_graph(kind: str, n_layers: int):
    from neuralstudio.core.graph import Graph

    g = Graph()
    seeds = iter(range(1, 10**6))
    prev = block_in = None
    for cls, cfg, role in _plan(kind, n_layers):
        if cls in ("Dense", "Conv2D"):
            cfg["kernel_initializer"] = _init(next(seeds))
        nid = g.add_node(cls, cfg).id
        if prev is not None:
            g.connect(prev, nid)
        if role == "add":
            g.connect(block_in, nid)
        if role in ("stem", "add"):
            block_in = nid
        prev = nid
    return g


def plain_keras(kind: str, n_layers: int):
    import keras

    x = inp = block_in = None
    for cls, cfg, role in _plan(kind, n_layers):
        if cls == "InputLayer":
            x = inp = keras.Input(batch_shape=tuple(cfg["batch_shape"]))
            continue
        layer = getattr(keras.layers, cls)(**cfg)
        x = layer([x, block_in]) if role == "add" else layer(x)
        if role in ("stem", "add"):
            block_in = x
    return keras.Model(inp, x)


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def bench(kind: str, n_layers: int, repeat: int) -> list[tuple[str, float]]:
    from neuralstudio.ml import builder

    g = make_graph(kind, n_layers)
    assert len(g) == n_layers, len(g)
    builder.clear_cache()
    first = builder.analyze(g, build=False)
    assert not first.problems, first.problems
    weighted = [n.id for n in g if n.class_name in ("Dense", "Conv2D")]
    mid = weighted[len(weighted) // 2]
    counter = iter(range(10**6, 2 * 10**6))

    def edit(build: bool):
        # A new value every time, so the edited layer is never served from the cache.
        g.set_param(mid, "kernel_initializer", _init(next(counter)))
        return builder.analyze(g, build=build)

    def cold():
        builder.clear_cache()
        return builder.analyze(g, build=False)

    rows = [
        ("analyze(build=False) after a param edit (editor)", timed(lambda: edit(False), repeat)),
        ("analyze(build=False), empty cache (file just opened)", timed(cold, repeat)),
        ("analyze(build=True) after a param edit (train/export)", timed(lambda: edit(True), repeat)),
        ("plain Keras: same model, layer by layer", timed(lambda: plain_keras(kind, n_layers), repeat)),
    ]
    result = builder.analyze(g)
    assert result.ok, result.problems
    reference = plain_keras(kind, n_layers)
    assert result.model.count_params() == reference.count_params() == result.total_params
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import keras  # noqa: F401 - import time is not what we measure

    from neuralstudio.ml import catalog

    t0 = time.perf_counter()
    catalog.catalog()
    print(f"catalog() first call after importing keras: {(time.perf_counter() - t0) * 1000:.1f} ms "
          f"({len(catalog.catalog())} layers)")
    for kind in ("dense", "conv"):
        rows = bench(kind, args.layers, args.repeat)
        print(f"\n{args.layers}-layer residual {kind} stack, median of {args.repeat} runs")
        print(f"{'what':<56} {'ms':>9}")
        for name, ms in rows:
            print(f"{name:<56} {ms:9.1f}")
        print(f"{'ratio analyze(build=True) / plain Keras':<56} {rows[2][1] / rows[3][1]:9.2f}")


if __name__ == "__main__":
    main()
