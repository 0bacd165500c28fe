"""Short CPU trainings of a 3D BraTS bundle on the main job's synthetic data, in named variants, through the
bundle CLI.

    python benchmarks/bundles_3d_short.py --bundle boundary_aware_brats3d --epochs 30 --jobs 2 \\
        --variant "with edge loss" \\
        --variant "without edge loss" edge_loss_weight=0

Writes a synthetic BraTS-2021-layout dataset (``--cases`` of ``--shape``, the main job's generator and seeded
80/20 split), then for each variant runs ``python -m monai.bundle run training`` with ``train.json`` +
``cpu_small.json`` and the variant's overrides, and ``evaluate.json`` on the held-out cases, timed. ``--jobs 2``
runs two variants at once with one thread each. Writes ``benchmarks/results/<bundle>_short.json``: the command,
date, machine and settings, and per variant its overrides, seconds and every metric of ``metrics.csv`` (the
bundle's docs read their table from it). A variant already in the file with the same overrides is not redone.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bundles_2d_short import _run

from edge_networks.bundle.flags import parse_overrides
from edge_networks.data import prepare_datalist
from edge_networks.data.synthetic import write_brats_dataset
from edge_networks.report import machine

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="a BraTS bundle under bundles/")
    p.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=JSON"),
                   help="a run's name and its overrides (repeat for each run)")
    p.add_argument("--cases", type=int, default=20)
    p.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="variants run at once (one thread each when more than 1)")
    p.add_argument("--work", default=None, help="default: /tmp/<bundle>_short")
    p.add_argument("--out", default=None, help="default: benchmarks/results/<bundle>_short.json")
    a = p.parse_args(argv)
    try:
        variants = {v[0]: parse_overrides(v[1:]) for v in a.variant}
    except ValueError as e:
        p.error(str(e))
    bundle = REPO / "bundles" / a.bundle
    if not (bundle / "configs" / "cpu_small.json").is_file():
        p.error(f"{bundle}: no configs/cpu_small.json")
    work = Path(a.work or f"/tmp/{a.bundle}_short")
    out = Path(a.out or REPO / "benchmarks" / "results" / f"{a.bundle}_short.json")
    datalist = work / "datalist.json"
    if not datalist.exists():
        write_brats_dataset(work / "data", a.cases, a.shape, seed=a.seed)
        prepare_datalist("brats2021", work / "data", datalist, seed=a.seed)
    held_out = len(json.loads(datalist.read_text())["validation"])
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    host = machine()
    results.update({
        "command": shlex.join(["python", "benchmarks/bundles_3d_short.py",
                               *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": {k: v for k, v in host.items() if k != "torch_threads"},  # this process's, not the runs'
        "settings": {"bundle": a.bundle, "data": f"{a.cases} synthetic BraTS-2021-layout cases of "
                     f"{'x'.join(map(str, a.shape))} (the main job's generator, seed {a.seed}), {held_out} held out",
                     "profile": "train.json + cpu_small.json", "epochs": a.epochs, "seed": a.seed,
                     "threads_per_run": 1 if a.jobs > 1 else "all", "runs_at_once": max(1, a.jobs),
                     "precision": "bf16 autocast (the bundles' default on a CPU with native bfloat16) unless a "
                                  "variant sets cpu_bf16" if host["cpu_supports_bf16"] else "float32"},
    })
    todo = {k: v for k, v in variants.items() if results["runs"].get(k, {}).get("overrides") != v}
    env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if a.jobs > 1 else {})}
    cfg = bundle / "configs"

    def one(name: str) -> tuple[str, dict]:
        run = work / "runs" / name.replace(" ", "_")
        run.mkdir(parents=True, exist_ok=True)
        common = ["--bundle_root", str(bundle), "--ckpt_dir", str(run / "models"), "--output_dir", str(run / "eval"),
                  "--data_list_file_path", str(datalist), "--seed", str(a.seed), "--num_workers", "0"]
        for k, v in variants[name].items():
            common += [f"--{k}", json.dumps(v)]
        log = run / "log.txt"
        train_s = _run(["run", "training", "--config_file", f"['{cfg / 'train.json'}','{cfg / 'cpu_small.json'}']",
                        "--epochs", str(a.epochs), *common], log, env=env)
        eval_s = _run(["run", "evaluating", "--config_file",
                       f"['{cfg / 'train.json'}','{cfg / 'cpu_small.json'}','{cfg / 'evaluate.json'}']", *common],
                      log, env=env)
        with open(run / "eval" / "metrics.csv") as f:
            metrics = {k: float(v) for k, v in csv.reader(f)}
        return name, {"overrides": variants[name], "train_s": round(train_s, 1), "evaluate_s": round(eval_s, 1),
                      "metrics": metrics}

    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for name, record in pool.map(one, todo):
            results["runs"][name] = record
            out.write_text(json.dumps(results, indent=2) + "\n")
            print(name, record, flush=True)
    results["runs"] = {k: results["runs"][k] for k in variants} | {
        k: v for k, v in results["runs"].items() if k not in variants}
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
