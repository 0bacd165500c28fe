"""Short CPU trainings of the 2D bundles of one paper on synthetic data (easy and hard), through the bundle CLI.

    python benchmarks/bundles_2d_short.py --family cenet [--out DIR] [--bundles cenet_drive ...]
                                          [--difficulty easy hard] [--epochs 30] [--set roi_size=[256,256]]
    python benchmarks/bundles_2d_short.py --family etnet

For each bundle and difficulty: a synthetic dataset in the bundle's default layout (sizes below, scaled-down
releases), ``python -m monai.bundle run training`` with ``train.json`` + ``cpu_small.json`` (128x128 inputs, batch 4,
30 epochs; CE-Net: Adam 1e-3 with BCE + Dice, the authors' code's choice, since the paper's SGD 4e-3 + Dice from
scratch stayed at empty masks at this budget; ET-Net: the paper's Adam and Lovasz losses at lr 1e-3; BA-Net: its
losses with Adam 1e-3, the authors' code's optimiser, instead of the paper's SGD 1e-4), then
``evaluate.json`` on the validation split (the bundle's own test-time augmentation: CE-Net 8 flips, the others none),
timed. Writes ``results.json`` (every metric of metrics.csv, seconds, images) and ``results.md`` (a table per
bundle) into ``benchmarks/results/<family>_2d_short``. Resumes: a run whose ``metrics.csv`` exists is not redone.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from edge_networks.bundle.flags import parse_overrides
from edge_networks.data.synthetic.layouts2d import write_2d_dataset
from edge_networks.report import machine

REPO = Path(__file__).resolve().parents[1]
# family: {bundle: (generator, layout, images in total, (height, width), extra overrides)}
SETUPS = {
    "cenet": {
        "cenet_fundus_od": ("fundus", "origa", 40, (512, 768), {"disc_crop_size": [200, 200]}),
        "cenet_drive": ("fundus", "drive", 40, (584, 565), {}),
        "cenet_luna2d": ("ct_slice", "luna2d", 40, (256, 256), {}),
        "cenet_em": ("em", "isbi2012_em", 40, (128, 128), {}),
        "cenet_oct": ("oct", "images_masks", 40, (256, 256), {}),
    },
    "etnet": {  # of 60 synthetic REFUGE images: 20 training, 20 validation, 20 unlabelled test (400/400/400)
        "etnet_refuge": ("fundus", "refuge", 60, (514, 532), {"disc_crop_size": [200, 200]}),
        "etnet_drive": ("fundus", "drive", 40, (584, 565), {}),
        "etnet_montgomery": ("cxr", "montgomery", 40, (489, 402), {}),
        "etnet_luna2d": ("ct_slice", "luna2d", 40, (256, 256), {}),
    },
    "banet": {  # BA-Net's output stride 8 costs about 3.3 s per iteration here: fewer images, 15 epochs (--epochs 15)
        # 30 ISIC 2017 images: 22 training, 2 validation, 6 test (2000/150/600)
        "banet_isic": ("dermoscopy", "isic2017", 30, (384, 512), {"val_interval": 5}),
        "banet_polyp": ("endoscopy", "kvasir_seg", 24, (288, 360), {"val_interval": 5}),
        "banet_shenzhen": ("cxr", "shenzhen", 24, (300, 300), {"val_interval": 5}),
        "banet_rim_one": ("fundus", "rim_one_r1", 24, (256, 256), {"val_interval": 5}),
    },
}
TITLES = {"cenet": ("CE-Net", "Adam 1e-3, BCE + Dice", "8-fold flip TTA"),
          "etnet": ("ET-Net", "Adam 1e-3, 0.3 Lovasz seg + 0.7 Lovasz edge", "no TTA"),
          "banet": ("BA-Net", "Adam 1e-3, decoder BCE + 4 stages' segmentation and edge BCE", "no TTA")}


def _run(args: list[str], log: Path, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    with open(log, "a") as f:
        proc = subprocess.run([sys.executable, "-m", "monai.bundle", *args], stdout=f, stderr=subprocess.STDOUT,
                              cwd=REPO, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"bundle command failed (see {log}): {' '.join(args[:3])}")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=list(SETUPS), default="cenet")
    p.add_argument("--out", default=None, help="default: benchmarks/results/<family>_2d_short")
    p.add_argument("--work", default=None, help="default: /tmp/<family>_2d_short")
    p.add_argument("--bundles", nargs="+", default=None, help="default: every bundle of the family")
    p.add_argument("--difficulty", nargs="+", default=["easy", "hard"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=JSON",
                   help="further overrides for every run, e.g. roi_size=[256,256] (recorded with the run)")
    a = p.parse_args(argv)
    try:
        user = parse_overrides(a.set)
    except ValueError as e:
        p.error(str(e))
    setups = SETUPS[a.family]
    a.bundles = a.bundles or list(setups)
    out = Path(a.out or REPO / "benchmarks" / "results" / f"{a.family}_2d_short")
    work = Path(a.work or f"/tmp/{a.family}_2d_short")
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": {}}
    results["machine"] = machine()
    for name in a.bundles:
        kind, layout, cases, size, extra = setups[name]
        extra = {**extra, **user}
        for diff in a.difficulty:
            key = f"{name}/{diff}"
            run = work / name / diff
            if key in results["runs"] and (run / "bundle" / "eval" / "metrics.csv").exists():
                continue
            data = run / "data"
            if not data.exists():
                write_2d_dataset(kind, layout, data, cases=cases, size=size, seed=11, difficulty=diff)
            cfg = REPO / "bundles" / name / "configs"
            common = ["--bundle_root", str(run / "bundle"), "--dataset_dir", str(data), "--num_workers", "0"]
            for k, v in extra.items():
                common += [f"--{k}", repr(v)]
            log = run / "log.txt"
            train_s = _run(["run", "training", "--config_file", f"['{cfg / 'train.json'}','{cfg / 'cpu_small.json'}']",
                            "--epochs", str(a.epochs), *common], log)
            eval_s = _run(["run", "evaluating", "--config_file",
                           f"['{cfg / 'train.json'}','{cfg / 'cpu_small.json'}','{cfg / 'evaluate.json'}']",
                           *common], log)
            with open(run / "bundle" / "eval" / "metrics.csv") as f:
                metrics = {k: float(v) for k, v in csv.reader(f)}
            results["runs"][key] = {"command": " ".join(["python", "benchmarks/bundles_2d_short.py",
                                                         *(argv if argv is not None else sys.argv[1:])]),
                                    "date": time.strftime("%Y-%m-%d"),
                                    "bundle": name, "difficulty": diff, "layout": layout, "images": cases,
                                    "size_hw": list(size), "epochs": a.epochs, "train_s": round(train_s, 1),
                                    "evaluate_s": round(eval_s, 1), "metrics": metrics, "overrides": extra}
            results_path.write_text(json.dumps(results, indent=2))
            print(key, results["runs"][key], flush=True)
    paper, recipe, tta = TITLES[a.family]
    lines = [f"# {paper} 2D bundles: short CPU runs on synthetic data", "",
             f"train.json + cpu_small.json (128x128 unless a run's overrides in results.json say otherwise, batch 4, "
             f"{recipe}), {a.epochs} epochs; evaluate.json "
             f"({tta}) on the validation split; one seed; this machine.", ""]
    for name in setups:
        rows = [r for r in results["runs"].values() if r["bundle"] == name]
        if not rows:
            continue
        names = list(rows[0]["metrics"])
        lines += [f"## {name}", "", "| difficulty | train s | eval s | " + " | ".join(names) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |"]
        for r in rows:
            lines.append(f"| {r['difficulty']} | {r['train_s']} | {r['evaluate_s']} | "
                         + " | ".join(f"{r['metrics'][n]:.3f}" for n in names) + " |")
        lines.append("")
    (out / "results.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
