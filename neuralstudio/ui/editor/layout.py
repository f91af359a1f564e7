"""Auto-layout: layered, top to bottom, with barycenter crossing reduction.

Pure Python (no Qt) so that a 771-layer import can be laid out in the
background thread together with the import itself.

Steps (Sugiyama style): assign each layer call to a row by longest path from
the inputs; insert virtual nodes on edges that skip rows so long edges take
part in ordering; order each row by the barycenter of the neighbours in the
row above, then below, for a few sweeps; place rows top to bottom, centred,
with each real node pulled toward its parents where there is room.
"""

from __future__ import annotations

from neuralstudio.core.graph import Graph

NODE_W = 210.0
NODE_H = 78.0
COL_GAP = 40.0
ROW_GAP = 54.0


def auto_layout(graph: Graph, sweeps: int = 4) -> dict[str, tuple[float, float]]:
    """Positions (top-left corners) for every node of ``graph``; the graph is not changed."""
    try:
        order = graph.topological_order()
    except Exception:  # noqa: BLE001 - a cycle: keep insertion order
        order = list(graph.nodes)
    if not order:
        return {}
    preds: dict[str, list[str]] = {n: [] for n in order}
    for e in graph.edges:
        if e.dst in preds and e.src in preds:
            preds[e.dst].append(e.src)
    rank: dict[str, int] = {}
    for n in order:
        rank[n] = 1 + max((rank[p] for p in preds[n] if p in rank), default=-1)

    # Virtual nodes: every edge spans exactly one row afterwards.
    up: dict[str, list[str]] = {n: [] for n in order}
    down: dict[str, list[str]] = {n: [] for n in order}
    rows: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    for n in order:
        rows[rank[n]].append(n)
    vcount = 0
    for dst in order:
        for src in preds[dst]:
            prev = src
            for r in range(rank[src] + 1, rank[dst]):
                v = f"\0v{vcount}"
                vcount += 1
                rank[v] = r
                rows[r].append(v)
                up[v], down[v] = [prev], []
                down.setdefault(prev, []).append(v)
                prev = v
            down.setdefault(prev, []).append(dst)
            up[dst].append(prev)

    index = {n: i for row in rows for i, n in enumerate(row)}

    def sort_row(row: list[str], neighbours: dict[str, list[str]]) -> list[str]:
        def key(n: str) -> tuple[float, int]:
            ns = neighbours.get(n, [])
            bc = sum(index[m] for m in ns) / len(ns) if ns else float(index[n])
            return (bc, index[n])
        new = sorted(row, key=key)
        for i, n in enumerate(new):
            index[n] = i
        return new

    for _ in range(sweeps):
        for r in range(1, len(rows)):
            rows[r] = sort_row(rows[r], up)
        for r in range(len(rows) - 2, -1, -1):
            rows[r] = sort_row(rows[r], down)

    # Coordinates: centre each row, then pull nodes toward their parents' mean x without overlap.
    step = NODE_W + COL_GAP

    def w(n: str) -> float:
        return 24.0 if n.startswith("\0") else step

    x: dict[str, float] = {}
    for r, row in enumerate(rows):
        width = sum(w(n) for n in row)
        acc = -width / 2
        for n in row:
            x[n] = acc + w(n) / 2
            acc += w(n)
        if r == 0:
            continue
        desired = {}
        for n in row:
            ps = up.get(n, [])
            desired[n] = sum(x[p] for p in ps) / len(ps) if ps else x[n]
        # left-to-right pass keeps order and spacing, as close to desired as allowed
        placed: list[float] = []
        for i, n in enumerate(row):
            want = desired[n]
            if placed:
                want = max(want, placed[-1] + (w(row[i - 1]) + w(n)) / 2)
            placed.append(want)
        # shift the whole row so its mean offset from desired is zero
        shift = sum(desired[n] - p for n, p in zip(row, placed, strict=True)) / len(row)
        shift = min(shift, 0.0) if shift < 0 else shift
        for n, p in zip(row, placed, strict=True):
            x[n] = p + shift
    # x holds centres; positions are top-left corners
    return {n: (round(x[n] - NODE_W / 2, 1), round(rank[n] * (NODE_H + ROW_GAP), 1)) for n in order}
