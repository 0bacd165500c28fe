"""The main job (``make run``): EG-CNN on a synthetic BraTS dataset, end to end, on the CPU, in minutes.

    python -m edge_networks.demo [--out results/demo] [--cases 20] [--shape 96 96 64] [--epochs 25] [--long]

1. writes a synthetic BraTS-2021-layout dataset and a checked datalist (80/20 split);
2. trains the ``egcnn_brats`` bundle with its small CPU profile (``configs/cpu_small.json``) through
   ``python -m monai.bundle run training``, on 64x64x48 crops in channels-last layout, Adam 2e-3, printing each
   epoch with an estimate of the time left; with the plain BCE in the edge loss (``--edge_bce_balanced false``)
   unless ``--paper-edge-loss``: on these crops, where a few percent of the voxels are edges, the paper's
   class-balanced BCE weighs an edge voxel many times a non-edge voxel, so its head calls every voxel an edge
   whose chance of being one passes those few percent (research notes, "The edge head: a boundary or a blob?");
3. evaluates the best checkpoint on the held-out cases (``evaluate.json``: Dice and HD95 per region);
4. segments the held-out volumes (``inference.json``, with edge maps);
5. writes PNG overlays (image, ground truth, prediction, predicted edges, the edges' training target), a metrics
   table (also printed) and ``summary.json`` (settings, metrics, timings, the date, the machine and the command).

``--long`` is the earlier default: 80 epochs on 64^3 crops at Adam 1e-3, several times longer. Everything
lands in ``--out``; the path is printed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from edge_networks.bundle.datalists import bundles_dir
from edge_networks.data import prepare_datalist
from edge_networks.data.synthetic import write_brats_dataset
from edge_networks.metrics import edge_target, region_masks, score_edge_head
from edge_networks.report import machine
from edge_networks.visualize import overlay, save_montage, to_uint8

_EPOCH_DONE = re.compile(r"SupervisedTrainer - INFO - Epoch\[(\d+)\] Complete\.")


def _bundle(args: Sequence[str], log: Path, epochs: int | None = None) -> float:
    """Run ``python -m monai.bundle ...``, teeing its output to ``log``; returns seconds taken. With ``epochs`` (a
    training run), each finished epoch prints the time so far and an estimate of the time left."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "monai.bundle", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            done = _EPOCH_DONE.search(line) if epochs else None
            if done:
                epoch, elapsed = int(done.group(1)), time.perf_counter() - t0
                left = elapsed / epoch * (epochs - epoch)
                print(f"training: epoch {epoch}/{epochs} done, {elapsed / 60:.1f} min so far, about "
                      f"{left / 60:.1f} min left", flush=True)
            elif "Metrics --" in line or "writing:" in line or "Error" in line:
                print(line.rstrip(), flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"monai.bundle {args[0]} failed; see {log}")
    return time.perf_counter() - t0


# the default run: small enough to finish in minutes on 2 cores (research notes: "The main job"); --long: the
# earlier 80-epoch run
QUICK = {"cases": 20, "shape": [96, 96, 64], "epochs": 25, "val_interval": 5, "roi_size": [64, 64, 48],
         "learning_rate": 0.002}
LONG = {"cases": 20, "shape": [96, 96, 64], "epochs": 80, "val_interval": 10, "roi_size": [64, 64, 64],
        "learning_rate": 0.001}


def _ras(path: str | Path) -> np.ndarray:
    return np.asarray(nib.as_closest_canonical(nib.load(str(path))).dataobj)


def _overlays(items: list[dict], pred_dir: Path, png: Path) -> None:
    rows = []
    for item in items:
        case = item["case_id"]
        gt = _ras(item["label"])
        pred = _ras(pred_dir / f"{case}_seg.nii.gz")
        edge = _ras(pred_dir / f"{case}_edge.nii.gz")
        flair, t1ce = _ras(item["image"][0]).astype(np.float32), _ras(item["image"][2]).astype(np.float32)
        z = int(np.nonzero((gt > 0).any(axis=(0, 1)))[0].mean()) if (gt > 0).any() else gt.shape[2] // 2

        def sl(v, z=z):
            return np.ascontiguousarray(np.rot90(v[:, :, z])[:, ::-1])

        target = edge_target(list(region_masks(gt, "brats").values()))
        rows.append((f"{case} z={z}: FLAIR | T1ce | ground truth | prediction | edge probability | edge target", [
            overlay(to_uint8(sl(flair))), overlay(to_uint8(sl(t1ce))),
            overlay(to_uint8(sl(t1ce)), sl(gt)), overlay(to_uint8(sl(t1ce)), sl(pred)),
            overlay(to_uint8(sl(edge), 0.0, 1.0)), overlay(to_uint8(sl(target.astype(np.float32)), 0.0, 1.0)),
        ]))
    save_montage(rows, png, scale=3)


def _metrics(eval_dir: Path) -> dict[str, float]:
    with open(eval_dir / "metrics.csv") as f:
        return {row[0]: float(row[1]) for row in csv.reader(f) if len(row) >= 2}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_networks.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results/demo", help="results folder")
    parser.add_argument("--cases", type=int, default=None, help=f"synthetic cases (default {QUICK['cases']})")
    parser.add_argument("--shape", type=int, nargs=3, default=None,
                        help=f"voxels per case, x y z (default {' '.join(map(str, QUICK['shape']))})")
    parser.add_argument("--epochs", type=int, default=None, help=f"training epochs (default {QUICK['epochs']})")
    parser.add_argument("--val-interval", type=int, default=None,
                        help=f"validate every N epochs (default {QUICK['val_interval']})")
    parser.add_argument("--roi-size", type=int, nargs=3, default=None,
                        help=f"training crop and inference window (default {' '.join(map(str, QUICK['roi_size']))})")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help=f"Adam's learning rate (default {QUICK['learning_rate']})")
    parser.add_argument("--long", action="store_true",
                        help="the longer run: " + ", ".join(f"{k} {v}" for k, v in LONG.items()) +
                             " (several times longer; its results: docs/results.md, main_job)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--float32", action="store_true",
                        help="float32 even on a CPU with native bfloat16 (where the bundles use bf16 autocast)")
    parser.add_argument("--bundles", default=None,
                        help="the bundles folder (default: $EDGE_SEG_BUNDLES, else the source checkout's bundles/)")
    parser.add_argument("--paper-edge-loss", action="store_true",
                        help="train with the paper's class-balanced BCE in the edge loss (the bundle's default); "
                             "the demo's default is the plain BCE, with which the whole-tumour edge channel opens the "
                             "tumour's core on the demo's data")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    preset = LONG if args.long else QUICK
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        bundle = bundles_dir(args.bundles) / "egcnn_brats"
    except FileNotFoundError as e:
        parser.error(str(e))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    t0 = time.perf_counter()
    data_dir = out / "data" / "brats2021"
    write_brats_dataset(data_dir, args.cases, args.shape, seed=args.seed)
    datalist = prepare_datalist("brats2021", data_dir, out / "datalist.json", seed=args.seed)
    timings["data_s"] = time.perf_counter() - t0
    print(f"datalist: {len(datalist['training'])} training / {len(datalist['validation'])} held-out cases, "
          "integrity check passed")

    configs = bundle / "configs"
    common = ["--bundle_root", str(bundle), "--ckpt_dir", str(out / "models"), "--output_dir", str(out / "eval"),
              "--data_list_file_path", str(out / "datalist.json"), "--seed", str(args.seed)]
    common += ["--roi_size", json.dumps(list(args.roi_size))] + (["--cpu_bf16", "false"] if args.float32 else [])
    train_cfg = f"['{configs / 'train.json'}','{configs / 'cpu_small.json'}']"
    print(f"training egcnn_brats: {args.epochs} epochs of {len(datalist['training'])} crops of "
          f"{'x'.join(map(str, args.roi_size))} (log: {out / 'train.log'})", flush=True)
    timings["train_s"] = _bundle(["run", "training", "--config_file", train_cfg, "--epochs", str(args.epochs),
                                  "--val_interval", str(args.val_interval), "--learning_rate", str(args.learning_rate),
                                  "--channels_last", "true",
                                  "--edge_bce_balanced", "true" if args.paper_edge_loss else "false", *common],
                                 out / "train.log", epochs=args.epochs)
    eval_cfg = f"['{configs / 'train.json'}','{configs / 'cpu_small.json'}','{configs / 'evaluate.json'}']"
    timings["evaluate_s"] = _bundle(["run", "--config_file", eval_cfg, *common], out / "evaluate.log")
    held_out = datalist["validation"]
    infer_cfg = f"['{configs / 'inference.json'}','{configs / 'cpu_small.json'}']"
    timings["inference_s"] = _bundle(
        ["run", "--config_file", infer_cfg, "--bundle_root", str(bundle), "--ckpt_dir", str(out / "models"),
         "--output_dir", str(out / "predictions"), "--save_edges", "true",
         "--roi_size", json.dumps(list(args.roi_size)), *(["--cpu_bf16", "false"] if args.float32 else []),
         "--datalist", json.dumps([{"image": it["image"]} for it in held_out])],
        out / "inference.log",
    )
    _overlays(held_out, out / "predictions", out / "overlays.png")

    metrics = _metrics(out / "eval")
    # the edge head's own output: a boundary or a blob? (scores: edge_networks.metrics.score_edge_head)
    heads = [score_edge_head(out / "predictions" / f"{it['case_id']}_edge.nii.gz", it["label"]) for it in held_out]
    edge_head = {k: float(np.nanmean([h[k] for h in heads])) for k in heads[0]} if heads else {}
    rows = [("region", "Dice", "HD95 (mm)")]
    for region in ("wt", "tc", "et"):
        rows.append((region.upper(), f"{metrics.get(f'val_dice_{region}', float('nan')):.3f}",
                     f"{metrics.get(f'val_hd95_{region}', float('nan')):.2f}"))
    rows.append(("mean", f"{metrics.get('val_mean_dice', float('nan')):.3f}", ""))
    table = "\n".join(f"| {a:<6} | {b:>6} | {c:>9} |" for a, b, c in rows)
    if edge_head:
        table += ("\n\nedge head (probability > 0.5, mean over held-out cases): "
                  f"F@2 vs its Sobel target {edge_head['bf2']:.3f}, F@1 / F@2 vs the thin region boundaries "
                  f"{edge_head['thin_bf1']:.3f} / {edge_head['thin_bf2']:.3f}, share more than 2 voxels from every "
                  f"boundary {edge_head['interior']:.3f}, voxels per boundary voxel {edge_head['thickness']:.2f}, "
                  f"share of the tumour covered {edge_head['fill']:.2f} (by its training target "
                  f"{edge_head['target_fill']:.2f}), share of the tumour's core (off the target) called edge "
                  f"{edge_head['core_fp']:.2f}")
    summary = {"command": " ".join(["python -m edge_networks.demo", *(argv if argv is not None else sys.argv[1:])]),
               "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(), "float32": args.float32,
               "cases": args.cases, "shape": args.shape, "epochs": args.epochs, "roi_size": args.roi_size,
               "learning_rate": args.learning_rate,
               "edge_bce": "class-balanced (paper)" if args.paper_edge_loss else "plain",
               "held_out_cases": [it["case_id"] for it in held_out], "metrics": metrics, "edge_head": edge_head,
               "timings_s": {k: round(v, 1) for k, v in timings.items()},
               "wall_s": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "metrics.md").write_text(table + "\n")
    print(f"\nheld-out metrics ({len(held_out)} cases, EG-CNN + SegResNet, {args.epochs} epochs on CPU):\n{table}")
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(f"results: {out}  (overlays.png, predictions/, eval/metrics.csv, summary.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
