"""``neuralstudio lr-find net.nsd``: the learning-rate range test (Smith, 2017) from the command line.

Trains the design briefly with a learning rate that grows exponentially from ``--min-lr`` to
``--max-lr`` (one mini-batch per step), prints the smoothed loss against the rate as a small table with
bars (every ~10th step), and the suggested rate with the ``train`` command that uses it. Nothing is
recorded or saved: the model trained by the sweep is thrown away. With ``--json`` only one JSON
object is printed, as the last line of stdout. The first Ctrl+C ends the sweep after the current
step and reports what it found; a second one aborts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from neuralstudio.cli.terminal import StatusLine, stop_on_first_interrupt

ORDER = 46  # right after train

#: rows of the printed table: about this many, evenly spread over the steps run
TABLE_ROWS = 10
#: width of the loss bars, in characters
BAR_WIDTH = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lr-find",
        help="find a learning rate: train briefly at growing rates and suggest where the loss falls fastest",
        description="Leslie Smith's learning-rate range test: train the design for a few steps with a learning "
        "rate that grows exponentially from --min-lr to --max-lr, show how the loss responds, and suggest the "
        "rate where it fell fastest. The design's optimizer, loss, batch size and seed are used; nothing is "
        "recorded or saved.",
    )
    p.add_argument("design", help="the .nsd design file")
    p.add_argument("--data", help="data set name or path (default: the design's own, usually mnist-sample)")
    p.add_argument("--min-lr", type=float, default=1e-6, help="the first learning rate (default 1e-6)")
    p.add_argument("--max-lr", type=float, default=10.0, help="the last learning rate (default 10)")
    p.add_argument("--steps", type=int, default=100, help="mini-batches to train (default 100)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the design's own)")
    p.add_argument("--seed", type=int, help="random seed (default: the design's own)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, gpu or gpu:N")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.design import load_design
    from neuralstudio.core.errors import UserError
    from neuralstudio.ml.lr_find import find_learning_rate
    from neuralstudio.ml.trainer import TrainControl

    design = load_design(args.design)
    control = TrainControl()
    progress = _Progress(sys.stderr, args.steps, enabled=sys.stderr.isatty() and not args.json)
    with stop_on_first_interrupt(control, "Stopping after this step (Ctrl+C again to abort)..."):
        result = find_learning_rate(design, args.data, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps,
                                    batch_size=args.batch_size, seed=args.seed, device=args.device,
                                    control=control, on_step=progress.on_step)
    progress.clear()
    if not result.ok:
        raise UserError(result.message)
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
        return 0
    print(f"Learning-rate range test: {result.steps_run} of {result.steps} steps from {_lr(result.min_lr)} to "
          f"{_lr(result.max_lr)}, batch {result.batch_size}, {result.seconds:.1f} s.")
    for line in table(result):
        print(line)
    print(result.message)
    if result.suggested_lr is not None:
        print(f"suggested learning rate: {_lr(result.suggested_lr)}")
        print(f"use it: neuralstudio train {args.design} --learning-rate {_lr(result.suggested_lr)}")
    return 0


def table(result: Any) -> list[str]:
    """About :data:`TABLE_ROWS` rows of step, learning rate, smoothed loss and a bar; the suggestion marked.

    The bars span the smoothed losses' own range (lowest to highest), so the fall and the rise show
    whatever the loss's scale; the step that diverged is left out of that range (it can be a hundred times
    the rest) and its bar ends in ``>``. The row nearest the suggested rate ends in ``<- suggested``.
    """
    n = len(result.lrs)
    if not n:
        return []
    every = max(1, round(n / TABLE_ROWS))
    rows = sorted(set(range(0, n, every)) | {n - 1})
    marked = None
    if result.suggested_lr is not None:
        marked = min(rows, key=lambda i: abs(math.log10(result.lrs[i]) - math.log10(result.suggested_lr)))
    ranged = result.smoothed[:-1] if result.diverged_at is not None and n > 2 else result.smoothed
    values = [v for v in ranged if math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or 1.0
    lines = [f"{'step':>5}  {'learning rate':>13}  {'loss':>9}  {'smoothed':>9}"]
    for i in rows:
        s = result.smoothed[i]
        bar = "#" * (1 + round((BAR_WIDTH - 1) * min(1.0, (s - lo) / span))) + (">" if s > hi else "")
        note = "  <- suggested" if i == marked else ""
        lines.append(f"{i + 1:>5}  {_lr(result.lrs[i]):>13}  {result.losses[i]:>9.4f}  {s:>9.4f}  "
                     f"{bar:<{BAR_WIDTH + 1}}{note}".rstrip())
    return lines


def _lr(x: float) -> str:
    from neuralstudio.ml.lr_find import format_lr

    return format_lr(x)


class _Progress:
    """``step 12/100  lr 3.2e-5  loss 2.29`` on one terminal line, redrawn at most 10 times a second."""

    def __init__(self, stream: Any, steps: int, enabled: bool) -> None:
        self.steps, self.enabled = steps, enabled
        self.line = StatusLine(stream, enabled)
        self._last = 0.0

    def on_step(self, step: int, lr: float, loss: float, smoothed: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.1:
            return
        self._last = now
        self.line.write(f"step {step + 1}/{self.steps}  learning rate {_lr(lr)}  loss {smoothed:.4f}")

    def clear(self) -> None:
        self.line.clear()
