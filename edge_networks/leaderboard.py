"""Head-to-head leaderboard: every registered method, trained through its bundle, against its plain backbone.

    python -m edge_networks.leaderboard --task brats|kits [--difficulty hard] [--seeds 3] [--epochs 30]
        [--cases 24] [--shape 96 96 64] [--methods segresnet egcnn_segresnet ...] --out DIR
    python -m edge_networks.leaderboard --task brats --smoke --out DIR     # under 3 minutes on 2 CPU cores

One synthetic dataset (the task's generator, ``--difficulty``), one split (``prepare_datalist``, seeded), and for
each method and seed the method's bundle configs with overrides (``train.json`` for training,
``inference.json`` on the held-out cases) -- the same epochs, crops, seeds and precision for all; no second
training loop. The written label maps are scored per held-out case and region by :mod:`edge_networks.metrics`:
Dice, HD95 in mm (the image's spacing), boundary F-score at 1 and 2 voxels, and for methods with an edge head
its own F-score at 2 voxels (its saved map, the maximum over its edge channels, at 0.5 against the union of the
regions' Sobel-support edges; the same value on each region's row). Per method: parameters, seconds per
training iteration (wall time over iterations, the final validation included), seconds per whole-volume
inference (edge maps written too where there is an edge head). For every edge method, the paired difference to
its own baseline over (case, seed) pairs with a bootstrap 95 % interval. Writes ``leaderboard.csv`` (one row per
method and region), ``paired.csv``, ``leaderboard.md``, ``leaderboard.json`` and ``per_case.csv``.

Registered methods (``METHODS``): the plain SegResNet, U-Net and V-Net (EG-CNN's bundle with the edge stream
off: exactly MONAI's networks), EG-CNN on each, and the 3D boundary-aware network against its own no-edge-loss
ablation (BraTS); later methods add rows here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from .data import prepare_datalist
from .data.synthetic import write_brats_dataset, write_kits_dataset
from .metrics import boundary_f_score, dice, edge_f_score, hd95

__all__ = ["Method", "METHODS", "run_leaderboard", "paired_bootstrap", "main"]

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


@dataclass(frozen=True)
class Method:
    """A leaderboard entry: a bundle with overrides, the label map it writes, and the entry it is compared with."""

    bundle: str
    overrides: dict = field(default_factory=dict)
    baseline: str | None = None
    writes: str = "brats"  # "brats" (labels 1/2/4), "tc" (1 = tumour core), "kits" (1 kidney, 2 tumour)


_SMALL_BACKBONE = {"segresnet": {"init_filters": 8}, "unet": {"features": [8, 8, 16, 16, 32, 8]}, "vnet": {}}


def _egcnn(bundle: str, writes: str) -> dict[str, Method]:
    out = {}
    for backbone in ("segresnet", "unet", "vnet"):
        plain = {"backbone": backbone, "edge_stream": False}
        out[backbone] = Method(bundle, plain, None, writes)
        out[f"egcnn_{backbone}"] = Method(bundle, {"backbone": backbone}, backbone, writes)
    return out


METHODS: dict[str, dict[str, Method]] = {
    "brats": {
        **_egcnn("egcnn_brats", "brats"),
        "boundary_aware_3d_no_edge_loss": Method("boundary_aware_brats3d", {"edge_loss_weight": 0.0}, None, "tc"),
        "boundary_aware_3d": Method("boundary_aware_brats3d", {}, "boundary_aware_3d_no_edge_loss", "tc"),
    },
    "kits": _egcnn("egcnn_kits", "kits"),
}
REGIONS = {"brats": ("WT", "TC", "ET"), "kits": ("kidney+tumour", "tumour")}


def _regions(label: np.ndarray, writes: str) -> dict[str, np.ndarray]:
    """Region masks of a label map in the convention its bundle writes (ground truth: ``brats`` / ``kits``)."""
    if writes == "brats":
        return {"WT": label > 0, "TC": np.isin(label, (1, 4)), "ET": label == 4}
    if writes == "tc":
        return {"TC": label == 1}
    return {"kidney+tumour": label > 0, "tumour": label == 2}


def paired_bootstrap(diffs: Sequence[float], n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of paired differences and its bootstrap 95 % interval (NaN pairs dropped)."""
    d = np.asarray([x for x in diffs if np.isfinite(x)], dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    means = d[np.random.default_rng(seed).integers(0, d.size, (n, d.size))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _workflow(method: Method, kind: str, root: Path, **extra):
    from monai.bundle import ConfigWorkflow

    configs = BUNDLES / method.bundle / "configs"
    wf = ConfigWorkflow(config_file=str(configs / ("train.json" if kind == "train" else "inference.json")),
                        meta_file=str(configs / "metadata.json"), workflow_type=kind, bundle_root=str(root),
                        num_workers=0, **method.overrides, **extra)
    wf.initialize()
    return wf


# the regions whose edges a bundle's saved edge map (``--save_edges true``: one channel, the maximum over its
# edge channels) covers
EDGE_REGIONS = {"brats": ("TC", "WT", "ET"), "tc": ("TC",)}


def _score(method: Method, task: str, pred: Path, item: dict, edge: Path | None = None) -> dict[str, float]:
    """Per region: Dice, HD95 (mm), boundary F at 1 and 2 voxels; with ``edge`` (the edge head's probability map)
    the edge head's own F-score at 2 voxels against the label's Sobel-support edges (``edge_bf2``)."""
    import torch

    from transforms import label_to_edge

    gt_img = nib.load(item["label"])
    spacing = [float(s) for s in gt_img.header.get_zooms()[:3]]
    gt = _regions(np.asarray(gt_img.dataobj), task)
    pr = _regions(np.asarray(nib.load(str(pred)).dataobj), method.writes)
    out = {}
    for region, p in pr.items():
        g = gt[region]
        out[f"{region}/dice"] = dice(p, g)
        out[f"{region}/hd95_mm"] = hd95(p, g, spacing)
        out[f"{region}/bf1"] = boundary_f_score(p, g, tolerance=1)
        out[f"{region}/bf2"] = boundary_f_score(p, g, tolerance=2)
    if edge is not None and method.writes in EDGE_REGIONS:
        prob = np.asarray(nib.load(str(edge)).dataobj).reshape(gt_img.shape[:3])
        masks = torch.as_tensor(np.stack([gt[r] for r in EDGE_REGIONS[method.writes]])[None])
        ref = label_to_edge(masks, 3, mode="both", merge=True)[0, 0].numpy()  # union of the regions' edges
        out["edges/edge_bf2"] = edge_f_score(prob > 0.5, ref, tolerance=2)
    return out


def run_leaderboard(task: str, out: str | Path, methods: Sequence[str], seeds: int = 1, epochs: int = 10,
                    cases: int = 16, shape: Sequence[int] | None = None, difficulty: str = "easy",
                    small: bool = False, extra: dict | None = None) -> dict:
    """Train and score ``methods`` on one synthetic ``task`` dataset; write the tables; return the summary."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(methods) - set(METHODS[task])
    if unknown:
        raise ValueError(f"unknown {task} method(s) {sorted(unknown)}; registered: {sorted(METHODS[task])}")
    data = out / "data"
    if task == "brats":
        layout = "brats2021"
        write_brats_dataset(data, cases, shape or (96, 96, 64), seed=0, progress=False, difficulty=difficulty)
    else:
        layout = "kits19"
        write_kits_dataset(data, cases, shape or (48, 192, 192), seed=0, progress=False, difficulty=difficulty)
    datalist = prepare_datalist(layout, data, out / "datalist.json", seed=0)
    held_out = datalist["validation"]
    rows, info = [], {}
    for name in methods:
        method = METHODS[task][name]
        over = dict(extra or {})
        if small:
            backbone = method.overrides.get("backbone", "segresnet")
            over.update({"backbone_kwargs": _SMALL_BACKBONE[backbone], "edge_channels": 8}
                        if method.bundle.startswith("egcnn") else
                        {"features": [8, 16, 32, 64], "shape_channels": 8, "aspp_channels": 16})
        for seed in range(seeds):
            root = out / "runs" / f"{name}_seed{seed}"
            t0 = time.perf_counter()
            wf = _workflow(method, "train", root, dataset_dir=str(data),
                           data_list_file_path=str(out / "datalist.json"), epochs=epochs, val_interval=epochs,
                           seed=seed, **over)
            params = sum(p.numel() for p in wf.network_def.parameters())
            wf.run()
            iterations = int(wf.trainer.state.iteration)
            wf.finalize()
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            edges = method.overrides.get("edge_stream", True) and method.writes in EDGE_REGIONS
            wf = _workflow(method, "infer", root, output_dir=str(root / "pred"), save_edges=bool(edges),
                           datalist=[{"image": it["image"]} for it in held_out], **over)
            wf.run()
            wf.finalize()
            infer_s = (time.perf_counter() - t0) / max(len(held_out), 1)
            info[name] = {"params": params, "s_per_iteration": train_s / max(iterations, 1),
                          "s_per_volume": infer_s}
            for item in held_out:
                pred = next((root / "pred").glob(f"{item['case_id']}*_seg.nii.gz"))
                edge = next((p for p in (root / "pred").glob(f"{item['case_id']}*.nii.gz") if p != pred), None)
                rows.append({"method": name, "seed": seed, "case": item["case_id"],
                             **_score(method, task, pred, item, edge if edges else None)})
    return _write_tables(task, out, methods, rows, info, epochs, seeds, difficulty)


def _write_tables(task, out: Path, methods, rows, info, epochs, seeds, difficulty) -> dict:
    keys = sorted({k for r in rows for k in r} - {"method", "seed", "case"})
    with open(out / "per_case.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["method", "seed", "case", *keys])
        w.writeheader()
        w.writerows(rows)
    table = []
    for name in methods:
        mine = [r for r in rows if r["method"] == name]
        for region in REGIONS[task]:
            vals = {m: [r.get(f"{region}/{m}", np.nan) for r in mine] for m in ("dice", "hd95_mm", "bf1", "bf2")}
            vals["edge_bf2"] = [r.get("edges/edge_bf2", np.nan) for r in mine]  # one edge map for all regions
            if all(np.isnan(v) for v in vals["dice"]):
                continue
            table.append({"method": name, "region": region,
                          **{m: float(np.nanmean(v)) if not all(np.isnan(v)) else float("nan")
                             for m, v in vals.items()},
                          "dice_std": float(np.nanstd(vals["dice"])), **info[name]})
    with open(out / "leaderboard.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(table[0]))
        w.writeheader()
        w.writerows(table)
    paired = []
    for name in methods:
        base = METHODS[task][name].baseline
        if base is None or base not in methods:
            continue
        for region in REGIONS[task]:
            key = f"{region}/dice"
            ref = {(r["seed"], r["case"]): r.get(key, np.nan) for r in rows if r["method"] == base}
            diffs = [r.get(key, np.nan) - ref.get((r["seed"], r["case"]), np.nan) for r in rows
                     if r["method"] == name]
            mean, lo, hi = paired_bootstrap(diffs)
            if np.isfinite(mean):
                paired.append({"method": name, "baseline": base, "region": region, "dice_diff": mean,
                               "ci_low": lo, "ci_high": hi, "pairs": int(np.isfinite(diffs).sum())})
    if paired:
        with open(out / "paired.csv", "w", newline="") as f:
            w = csv.DictWriter(f, list(paired[0]))
            w.writeheader()
            w.writerows(paired)
    lines = [f"# Leaderboard: {task}, {difficulty}, {epochs} epochs, {seeds} seed(s)", "",
             "| method | region | Dice | HD95 (mm) | BF@1 | BF@2 | edge head BF@2 | params | s/iter | s/volume |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in table:
        lines.append(f"| {t['method']} | {t['region']} | {t['dice']:.3f} ± {t['dice_std']:.3f} | {t['hd95_mm']:.2f} "
                     f"| {t['bf1']:.3f} | {t['bf2']:.3f} | {t['edge_bf2']:.3f} | {t['params']:,} | "
                     f"{t['s_per_iteration']:.2f} | {t['s_per_volume']:.2f} |")
    if paired:
        lines += ["", "| edge method | vs | region | Dice difference | 95 % bootstrap interval | pairs |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {p['method']} | {p['baseline']} | {p['region']} | {p['dice_diff']:+.3f} | "
                  f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}] | {p['pairs']} |" for p in paired]
    (out / "leaderboard.md").write_text("\n".join(lines) + "\n")
    summary = {"task": task, "difficulty": difficulty, "epochs": epochs, "seeds": seeds, "table": table,
               "paired": paired}
    (out / "leaderboard.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(lines))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_networks.leaderboard", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(METHODS), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", nargs="+", help="default: every registered method of the task")
    parser.add_argument("--difficulty", choices=("easy", "hard"), default="easy")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--shape", type=int, nargs=3)
    parser.add_argument("--small", action="store_true", help="narrow networks (the bundles' CPU profile widths)")
    parser.add_argument("--roi-size", type=int, nargs=3, help="training crop and inference window")
    parser.add_argument("--smoke", action="store_true",
                        help="SegResNet vs EG-CNN, narrow networks, 8 tiny cases, 2 epochs, 1 seed")
    args = parser.parse_args(argv)
    if args.smoke:
        methods = args.methods or ["segresnet", "egcnn_segresnet"]
        shape = (40, 40, 28) if args.task == "brats" else (16, 48, 48)
        extra = {"roi_size": [32, 32, 32]} if args.task == "brats" else {"roi_size": [32, 32, 32],
                                                                         "spacing": [6.0, 6.0, 6.0], "num_samples": 1}
        run_leaderboard(args.task, args.out, methods, 1, 2, 8, shape, args.difficulty, small=True, extra=extra)
        return 0
    extra = {"roi_size": list(args.roi_size)} if args.roi_size else None
    run_leaderboard(args.task, args.out, args.methods or list(METHODS[args.task]), args.seeds, args.epochs,
                    args.cases, args.shape, args.difficulty, small=args.small, extra=extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
