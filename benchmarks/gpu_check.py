"""One prepared GPU check: paper-scale training steps with CUDA AMP through each bundle's own trainer, and
whole-volume BraTS inference against the model zoo's SegResNet config.

    python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check.json] [--steps 8] [--bundles ...]
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check.json      # the same code path on a CPU, tiny

Meant for a lent GPU in one call of under 8 minutes (`/work/.library/device`): every 3D bundle and one 2D bundle
(``cenet_drive``) are trained for ``--steps`` iterations (after 2 warm-up iterations) by the bundle's
``train.json`` exactly as ``python -m monai.bundle run training`` builds it -- its network, loss, optimiser, crops,
batch size and augmentation at the paper's settings, ``amp`` on (CUDA), validation off -- on synthetic data in the
bundle's release layout (2 cases at the real datasets' sizes: BraTS 240x240x155, KiTS 96x512x512, DRIVE 584x565).
Reported per bundle: median seconds per training iteration (data wait included) and the peak GPU memory allocated.
Then one 4x240x240x155 volume goes through ``egcnn_brats``'s ``inference.json`` network and sliding-window inferer
(edge stream on) and through the zoo's ``brats_mri_segmentation`` config re-created in
``benchmarks/zoo_brats_mri_segmentation_inference.json``, both with random weights and under CUDA autocast as their
evaluators run them: median seconds of 3 and the peak GPU memory of each. Everything goes to ``--out`` as JSON.

``--dry-run`` runs the same code on whatever device there is (the CPU here) with tiny data, ``cpu_small.json``
merged, 32^3 / 64x64 crops and 1 step, to prove the script works before GPU time is spent on it (tested in
``tests/benchmarks/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUNDLES = ("egcnn_brats", "egcnn_kits", "boundary_aware_brats3d", "cenet_brats3d", "etnet_brats3d", "banet_kits3d",
           "cenet_drive")
SIZES = {"brats2021": (240, 240, 155), "kits19": (96, 512, 512), "drive": (584, 565)}
DRY_SIZES = {"brats2021": (48, 48, 40), "kits19": (24, 64, 64), "drive": (72, 58)}
CASES = {"brats2021": 2, "kits19": 2, "drive": 6}  # DRIVE's 6 images: 3 training, 3 test
WARMUP = 2


def _dataset(layout: str, root: Path, dry: bool) -> Path:
    from edge_networks.data.synthetic import write_brats_dataset, write_kits_dataset
    from edge_networks.data.synthetic.layouts2d import write_2d_dataset

    out = root / layout
    if out.exists():
        return out
    shape = (DRY_SIZES if dry else SIZES)[layout]
    if layout == "brats2021":
        write_brats_dataset(out, CASES[layout], shape, seed=0, progress=False)
    elif layout == "kits19":
        write_kits_dataset(out, CASES[layout], shape, seed=0, progress=False)
    else:
        write_2d_dataset("fundus", layout, out, cases=CASES[layout], size=shape, seed=0)
    return out


def _peak_mib(device) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def train_steps(name: str, data: Path, work: Path, steps: int, dry: bool, workers: int) -> dict:
    """``steps`` timed training iterations (after ``WARMUP``) of bundle ``name``'s own trainer."""
    import torch
    from ignite.engine import Events
    from monai.bundle import ConfigParser

    configs = REPO / "bundles" / name / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json")] + ([str(configs / "cpu_small.json")] if dry else []))
    parser.read_meta(str(configs / "metadata.json"))
    over = {"bundle_root": str(work / name), "dataset_dir": str(data), "epochs": 1, "val_interval": 10**6,
            "num_workers": workers, "train#trainer#epoch_length": WARMUP + steps}
    if dry:
        spatial = len(parser["roi_size"])
        over.update({"roi_size": [32] * 3 if spatial == 3 else [64, 64], "batch_size": 1 if spatial == 3 else 2,
                     "cache_rate": 0.0})
        if parser.get("spacing") is not None:
            over["spacing"] = [6.0, 6.0, 6.0]
        if parser.get("num_samples") is not None:
            over["num_samples"] = 1
    for k, v in over.items():
        parser[k] = v
    device = parser.get_parsed_content("device")
    trainer = parser.get_parsed_content("train#trainer")
    marks: list[float] = []

    def mark(engine) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        marks.append(time.perf_counter())
        if engine.state.iteration == WARMUP:
            _reset_peak(device)

    trainer.add_event_handler(Events.ITERATION_COMPLETED, mark)
    start = time.perf_counter()
    trainer.run()
    per_step = [b - a for a, b in zip(marks[WARMUP - 1:], marks[WARMUP:])]
    return {"s_per_step": round(statistics.median(per_step), 4) if per_step else None, "steps": len(per_step),
            "batch_size": parser["batch_size"], "roi_size": parser["roi_size"],
            "amp": bool(parser.get_parsed_content("amp")), "peak_gpu_mib": _peak_mib(device),
            "parameters": sum(p.numel() for p in parser.get_parsed_content("network_def").parameters()),
            "wall_s": round(time.perf_counter() - start, 1)}


def whole_volume(dry: bool, repeats: int = 3) -> dict:
    """``egcnn_brats`` inference vs the zoo SegResNet config on one BraTS-sized volume, random weights: median
    seconds of ``repeats`` calls after one warm-up call."""
    import torch
    from monai.bundle import ConfigParser

    shape = (1, 4, *(DRY_SIZES if dry else SIZES)["brats2021"])
    results = {"volume": list(shape[1:]), "repeats": repeats}
    configs = {"egcnn_brats": [str(REPO / "bundles" / "egcnn_brats" / "configs" / "inference.json")],
               "zoo_brats_mri_segmentation": [str(REPO / "benchmarks" / "zoo_brats_mri_segmentation_inference.json")]}
    for name, files in configs.items():
        parser = ConfigParser()
        parser.read_config(files)
        if dry:  # one window over the whole tiny volume
            parser["inferer#inferer#roi_size" if name == "egcnn_brats" else "inferer#roi_size"] = list(shape[2:])
            if name != "egcnn_brats":
                parser["network_def#init_filters"] = 8
        device = parser.get_parsed_content("device")
        net = parser.get_parsed_content("network").eval()
        inferer = parser.get_parsed_content("inferer")
        amp = device.type == "cuda"  # both evaluators: amp on a GPU
        x = torch.randn(shape, device=device)
        times = []
        _reset_peak(device)
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            with torch.no_grad(), torch.autocast(device.type, enabled=amp):
                out = inferer(x, net)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first call warms up (cuDNN autotuning, allocator)
                times.append(time.perf_counter() - t0)
        results[name] = {"s_per_volume": round(statistics.median(times), 3), "peak_gpu_mib": _peak_mib(device),
                         "roi_size": list(inferer.inferer.roi_size if hasattr(inferer, "inferer") else
                                          inferer.roi_size),
                         "output_shape": list(out.shape)}
        del net, out, x
    return results


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_check.json"))
    ap.add_argument("--steps", type=int, default=8, help="timed training iterations per bundle (default 8)")
    ap.add_argument("--bundles", nargs="+", default=list(BUNDLES), choices=BUNDLES)
    ap.add_argument("--workers", type=int, default=8, help="data loader workers (default 8; 0 with --dry-run)")
    ap.add_argument("--skip-inference", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="tiny data and crops, 1 step: check the script on a CPU")
    args = ap.parse_args(argv)
    import torch
    from monai.bundle import ConfigParser

    dry = args.dry_run
    steps, workers = (1, 0) if dry else (args.steps, args.workers)
    report = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
              "torch": torch.__version__, "dry_run": dry, "date": time.strftime("%Y-%m-%d %H:%M"),
              "training": {}, "inference": None, "errors": {}}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in args.bundles:
            try:
                layout = ConfigParser.load_config_file(REPO / "bundles" / name / "configs" / "train.json")["layout"]
                data = _dataset(layout, root / "data", dry)
                report["training"][name] = train_steps(name, data, root / "work", steps, dry, workers)
            except Exception as e:  # noqa: BLE001 - one bundle's failure is reported, the others still run
                report["errors"][name] = f"{type(e).__name__}: {e}"
            print(name, report["training"].get(name) or report["errors"][name], flush=True)
        if not args.skip_inference:
            try:
                report["inference"] = whole_volume(dry, repeats=1 if dry else 3)
            except Exception as e:  # noqa: BLE001
                report["errors"]["inference"] = f"{type(e).__name__}: {e}"
            print("inference", report["inference"] or report["errors"]["inference"], flush=True)
    report["total_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.partial")
    tmp_out.write_text(json.dumps(report, indent=2))
    tmp_out.replace(out)
    print(f"wrote {out} in {report['total_s']} s", flush=True)
    return report


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
