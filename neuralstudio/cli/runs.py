"""``neuralstudio runs``: list the recorded training runs, show one, or compare two."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

ORDER = 47


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runs",
        help="list recorded training runs; `runs show ID`, `runs compare A B`",
        description="List the training runs recorded by `neuralstudio train` and the Train window. "
        "`runs show ID` prints one run, `runs compare A B` shows what differs in hyperparameters and results. "
        "An ID may be abbreviated to any unique prefix, or be `latest`.",
    )
    p.add_argument("--runs", metavar="DIR", help="the runs folder (default: the user data folder)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("action", nargs="?", choices=("list", "show", "compare"), default="list")
    p.add_argument("ids", nargs="*", metavar="ID", help="run id(s): one for show, two for compare")
    p.set_defaults(func=run)


def _pct(v: object) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) else "-"


def _cell(v: Any, width: int = 24) -> str:
    """A table cell from a record value, which may be anything a damaged or hand-edited file holds."""
    from neuralstudio.core.formatting import format_value

    text = format_value(v) if isinstance(v, (int, float, str)) or v is None else "?"
    return text if len(text) <= width else text[: width - 3] + "..."


def _report_damaged(damaged: list) -> None:
    """One line on stderr per run folder that was skipped, so that the listing is complete and honest."""
    for d in damaged:
        print(f"warning: skipped a damaged run record in {d.folder}: {d.reason}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from neuralstudio.core.errors import UserError
    from neuralstudio.core.runs import RunsStore

    store = RunsStore(args.runs)
    if args.action == "list":
        if args.ids:
            raise UserError("`runs` lists all runs; use `runs show ID` for one of them.")
        scan = store.scan()
        runs = scan.records
        _report_damaged(scan.damaged)
        if args.json:
            print(json.dumps([{"id": r.id, "created": r.created, "name": r.name, "status": r.status,
                               "final": r.final, "timing": r.timing, "hyperparameters": r.hyperparameters}
                              for r in runs], sort_keys=True))
            return 0
        if not runs:
            if not scan.damaged:
                print(f"No runs in {store.root} yet: `neuralstudio train design.nsd` records one.")
            return 0
        rows = [("id", "design", "status", "epochs", "optimizer", "lr", "batch", "val acc", "test acc", "seconds")]
        for r in runs:
            h = r.hyperparameters
            rows.append((r.id, r.name[:24], r.status, _cell(r.timing.get("epochs_run", len(r.epochs))),
                         _cell(h.get("optimizer", "-")), _cell(h.get("learning_rate")), _cell(h.get("batch_size")),
                         _pct(r.final.get("val_accuracy")), _pct(r.final.get("test_accuracy")),
                         f"{r.timing['seconds']:.1f}" if isinstance(r.timing.get("seconds"), (int, float)) else "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        skipped = f" ({len(scan.damaged)} damaged record(s) skipped)" if scan.damaged else ""
        print(f"\n{len(runs)} run(s) in {store.root}{skipped}")
        return 0
    if args.action == "show":
        if len(args.ids) != 1:
            raise UserError("`runs show` takes one run id.")
        r = store.get(args.ids[0])
        if args.json:
            print(json.dumps(r.to_dict(), sort_keys=True))
            return 0
        print(f"{r.id}  {r.name}  {r.status}  ({r.created}, {r.device})")
        if r.message:
            print(r.message)
        print("hyperparameters: " + ", ".join(f"{_cell(k, 60)}={_cell(v, 60)}"
                                              for k, v in sorted(r.hyperparameters.items())))
        print("data: " + ", ".join(f"{k}={_cell(r.data[k], 60)}" for k in ("name", "train_samples",
                                                                         "validation_samples", "test_size")
                                   if k in r.data))
        for i, ep in enumerate(r.epochs):
            parts = [f"{k} {ep[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                     if isinstance(ep.get(k), (int, float))]
            number = ep.get("epoch")
            number = int(number) if isinstance(number, int) and 0 <= number < 10**9 else i
            print(f"  epoch {number + 1}: " + "  ".join(parts))
        print("final: " + ", ".join(f"{_cell(k, 60)}={v:.4f}" for k, v in r.final.items()
                                    if isinstance(v, (int, float))))
        if r.model_path:
            print(f"model: {r.model_path}")
        return 0
    if len(args.ids) != 2:
        raise UserError("`runs compare` takes two run ids: `neuralstudio runs compare A B`.")
    cmp = store.compare(args.ids[0], args.ids[1])
    if args.json:
        print(json.dumps({"a": cmp.a.id, "b": cmp.b.id,
                          "differences": [{"section": d.section, "key": d.key, "a": d.a, "b": d.b}
                                          for d in cmp.differences]}, sort_keys=True, default=str))
        return 0
    print(cmp.format())
    return 0
