"""``edge-seg-leaderboard`` / ``python -m edge_networks.leaderboard``: the command line of :func:`run_leaderboard`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from ..bundle.datalists import BUNDLES_ENV, bundles_dir
from ..bundle.flags import parse_overrides
from ..report import write_provenance
from .registry import METHODS, TASKS
from .runner import run_leaderboard

__all__ = ["main"]

USAGE = """\
    edge-seg-leaderboard --task brats|kits|fundus_od [--difficulty hard] [--seeds 3] [--epochs 30] [--cases 24]
        [--shape 96 96 64] [--methods segresnet egcnn_segresnet ...] --out DIR
    edge-seg-leaderboard --task brats|fundus_od --smoke --out DIR     # under 3 minutes on 2 CPU cores
    [--minutes M]  [--roi-size X Y Z]  [--held-out 0.33]  [--set KEY=JSON ...]  [--small]  [--bundles DIR]"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edge-seg-leaderboard", usage=USAGE,
        description="Head-to-head leaderboard: every registered method, trained through its bundle, against its "
                    "plain baseline, on one synthetic dataset.")
    parser.add_argument("--task", choices=sorted(METHODS), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", nargs="+", help="default: every registered method of the task")
    parser.add_argument("--difficulty", choices=("easy", "hard"), default="easy")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (with --minutes: at most)")
    parser.add_argument("--minutes", type=float, help="training time budget per method and seed (stops after the "
                        "last epoch that fits; the table reports the epochs reached)")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--shape", type=int, nargs="+", help="volume x y z, or 2D image height width")
    parser.add_argument("--held-out", type=float, help="fraction of the cases held out (default 0.2)")
    parser.add_argument("--small", action="store_true", help="narrow networks (the bundles' CPU profile widths)")
    parser.add_argument("--roi-size", type=int, nargs="+", help="training crop and inference window (2D: 2 values)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=JSON",
                        help="further bundle overrides for every method, e.g. spacing=[3,3,4.5] num_samples=1")
    parser.add_argument("--smoke", action="store_true",
                        help="the task's smoke pair (a plain network vs its edge method), narrow networks, 8 tiny "
                             "cases, 2 epochs, 1 seed")
    parser.add_argument("--bundles", default=None,
                        help=f"the bundles folder (default: ${BUNDLES_ENV}, else the source checkout's bundles/)")
    args = parser.parse_args(argv)
    try:
        os.environ[BUNDLES_ENV] = str(bundles_dir(args.bundles))  # the bundle processes it starts find them too
    except FileNotFoundError as e:
        parser.error(str(e))
    task = TASKS[args.task]
    if args.smoke:
        smoke = task.smoke
        run_leaderboard(args.task, args.out, args.methods or smoke["methods"], 1, 2, 8, smoke["shape"],
                        args.difficulty, small=True, extra=dict(smoke.get("overrides", {})))
    else:
        extra = {"roi_size": list(args.roi_size)} if args.roi_size else {}
        try:
            extra.update(parse_overrides(args.set))
        except ValueError as e:
            parser.error(str(e))
        run_leaderboard(args.task, args.out, args.methods or list(METHODS[args.task]), args.seeds, args.epochs,
                        args.cases, args.shape, args.difficulty, small=args.small, extra=extra,
                        minutes=args.minutes, val_fraction=args.held_out)
    # the results page (edge-seg-report) shows the folder's command, date and machine from this file
    write_provenance(args.out, shlex.join(["edge-seg-leaderboard", *(sys.argv[1:] if argv is None else argv)]))
    return 0
