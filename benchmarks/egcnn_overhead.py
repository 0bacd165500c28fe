"""Cost of EG-CNN's edge stream on the CPU, and whole-volume inference against the model zoo's BraTS bundle.

    python benchmarks/egcnn_overhead.py [--out benchmarks/results/egcnn_overhead.json] [--repeats 5] [--skip-volume]

Part 1 (same inputs, each measurement in a fresh process so that peak memory is its own): SegResNet alone vs
EG-CNN + SegResNet (``egcnn_brats`` defaults: init_filters 16, edge_channels 16) on a 1x4x96^3 input --
training step (forward, loss, backward, Adam step; EGCNNLoss vs Dice), sliding-window inference over a
4x160x160x128 volume with 96^3 windows (overlap 0.25), and peak resident memory. Medians of
``--repeats`` after a warm-up.
Both in float32 and in CPU bf16 autocast (what the bundles use on CPUs that support it).

Part 2: one synthetic 4x240x240x155 case segmented by whole processes (wall time and peak RSS of the process,
median of 3): ``egcnn_brats``'s inference config with its defaults (edge stream included; since 2026-11-28 the
BraTS inference crops to the nonzero box, nnU-Net's crop, and slides whole-plane windows of 64 slices,
``--roi_size "[-1,-1,64]" --sw_overlap 0.25``), against a re-creation of the MONAI model zoo's
``brats_mri_segmentation`` inference config (SegResNet, init_filters 16, one 240x240x160 window, float32), which
cannot be downloaded here; both run with random weights (timing does not depend on them).

CPU bf16 runs only where the CPU has native bfloat16 (``cpu_supports_bf16``): emulated, it is about 100x slower
than float32 and says nothing about a bf16 machine. Without it, the bf16 results already in ``--out`` are kept
and marked as measured elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

WORKER = r"""
import json, resource, sys, time
import numpy as np, torch
from monai.inferers import SlidingWindowInferer
from monai.losses import DiceLoss
from edge_networks import EGCNN, EGCNNLoss
from edge_networks.bundle import AutocastInferer

kind, mode, repeats, bf16 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
torch.manual_seed(0)
net = EGCNN(3, 4, 3, backbone_kwargs={"init_filters": 16}, edge_channels=16, edge_stream=(kind == "egcnn"))
x = torch.randn(1, 4, 96, 96, 96)
y = (torch.rand(1, 3, 96, 96, 96) > 0.7).float()
times = []
if mode == "train":
    net.train()
    loss_fn = EGCNNLoss(3, sigmoid=True)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = loss_fn(out.float(), y)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
else:
    net.eval()
    vol = torch.randn(1, 4, 160, 160, 128)
    inferer = AutocastInferer(SlidingWindowInferer((96, 96, 96), sw_batch_size=1, overlap=0.25), enabled=bf16)
    with torch.no_grad():
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            inferer(vol, net)
            if i:
                times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"median_s": float(np.median(times)), "peak_rss_mb": peak}))
"""


def worker(kind: str, mode: str, repeats: int, bf16: bool) -> dict:
    proc = subprocess.run([sys.executable, "-c", WORKER, kind, mode, str(repeats), "1" if bf16 else "0"],
                          capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


RSS_WRAPPER = (
    "import json, resource, subprocess, sys, time; t0 = time.perf_counter(); "
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode; "
    "print(json.dumps({'rc': rc, 'wall_s': time.perf_counter() - t0, "
    "'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
)


def timed_process(cmd: list[str]) -> dict:
    """Wall time and peak RSS of one whole child process (measured by a fresh wrapper process)."""
    proc = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *cmd], capture_output=True, text=True, cwd=REPO)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"{cmd} failed")
    return {"wall_s": round(res["wall_s"], 2), "peak_rss_mb": round(res["peak_rss_mb"], 1)}


def part1(repeats: int, previous: dict | None = None) -> dict:
    from edge_networks.bundle import cpu_supports_bf16

    results = {}
    for precision, bf16 in (("float32", False), ("bf16", True)):
        if bf16 and not cpu_supports_bf16():
            kept = (previous or {}).get("bf16")
            if kept:
                results["bf16"] = {**kept, "note": "not re-measured: this CPU has no native bfloat16; the "
                                   "numbers are from an earlier run on a CPU that has it"}
            print("bf16 skipped: this CPU has no native bfloat16", flush=True)
            continue
        res = {}
        for mode in ("train", "infer"):
            base = worker("backbone", mode, repeats, bf16)
            eg = worker("egcnn", mode, repeats, bf16)
            res[mode] = {
                "segresnet_s": round(base["median_s"], 3),
                "egcnn_s": round(eg["median_s"], 3),
                "time_ratio": round(eg["median_s"] / base["median_s"], 3),
                "segresnet_peak_rss_mb": round(base["peak_rss_mb"], 1),
                "egcnn_peak_rss_mb": round(eg["peak_rss_mb"], 1),
                "memory_ratio": round(eg["peak_rss_mb"] / base["peak_rss_mb"], 3),
            }
            print(precision, mode, res[mode], flush=True)
        results[precision] = res
    return results


def part2(volume_settings: dict) -> dict:
    from edge_networks.data.synthetic import write_brats_dataset

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_brats_dataset(data, 1, seed=0, progress=False)
        item = {"image": sorted(str(p) for p in (data / "BraTS2021_00000").glob("*.nii.gz") if "seg" not in p.name)}
        # project order FLAIR, T1, T1ce, T2
        order = {"flair": 0, "t1": 1, "t1ce": 2, "t2": 3}
        item["image"].sort(key=lambda p: order[p.split("_")[-1].split(".")[0]])
        torch_cmd = [sys.executable, "-c",
                     "import torch, sys; from edge_networks import EGCNN;"
                     "torch.save(EGCNN(3, 4, 3).state_dict(), sys.argv[1])", str(Path(tmp) / "model.pt")]
        subprocess.run(torch_cmd, check=True, cwd=REPO)
        ours = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
                str(REPO / "bundles" / "egcnn_brats" / "configs" / "inference.json"),
                "--ckpt_dir", tmp, "--output_dir", str(Path(tmp) / "ours"), "--num_workers", "0",
                "--datalist", json.dumps([item])]
        for key, value in volume_settings.items():
            ours += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
        zoo = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
               str(HERE / "zoo_brats_mri_segmentation_inference.json"), "--output_dir", str(Path(tmp) / "zoo"),
               "--datalist", json.dumps([item])]
        for name, cmd in (("zoo_brats_mri_segmentation", zoo), ("egcnn_brats", ours)):
            runs = [timed_process(cmd) for _ in range(3)]
            walls = sorted(r["wall_s"] for r in runs)
            out[name] = {"wall_s_median": walls[1], "wall_s_runs": walls,
                         "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
            print(name, out[name], flush=True)
    config = json.loads((REPO / "bundles" / "egcnn_brats" / "configs" / "inference.json").read_text())
    out["egcnn_settings"] = {**{k: config[k] for k in ("crop_foreground", "size_divisible", "roi_size", "sw_overlap",
                                                        "sw_batch_size")}, **volume_settings}
    ours, zoo_res = out["egcnn_brats"], out["zoo_brats_mri_segmentation"]
    out["time_ratio"] = round(ours["wall_s_median"] / zoo_res["wall_s_median"], 3)
    out["memory_ratio"] = round(ours["peak_rss_mb"] / zoo_res["peak_rss_mb"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "egcnn_overhead.json"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-volume", action="store_true")
    parser.add_argument("--skip-steps", action="store_true", help="keep the per-step results already in --out")
    args = parser.parse_args()
    report = {"benchmark": "egcnn_overhead", "cpu_count": os.cpu_count(),
              "targets": {"train_step_ratio_max": 1.40, "inference_ratio_max": 1.25,
                          "whole_volume": "faster than the zoo config, at most half its peak memory"}}
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    if args.skip_steps and "per_step_96cubed" in previous:
        report["per_step_96cubed"] = previous["per_step_96cubed"]
    else:
        report["per_step_96cubed"] = part1(args.repeats, previous.get("per_step_96cubed"))
    if not args.skip_volume:
        report["whole_volume_240x240x155"] = part2({"num_workers": "0"})  # the inference config's defaults
    elif "whole_volume_240x240x155" in previous:
        report["whole_volume_240x240x155"] = previous["whole_volume_240x240x155"]
    from transforms.writers import write_json_atomic

    print(f"written {write_json_atomic(args.out, report)}")


if __name__ == "__main__":
    main()
