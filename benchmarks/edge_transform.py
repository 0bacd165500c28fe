"""Speed of the label-to-edge transform against scipy.ndimage baselines, in one process (medians of repeats).

    python benchmarks/edge_transform.py [--out benchmarks/results/edge_transform.json] [--repeats 7]

Cases: a 3-channel region map (TC/WT/ET of a synthetic BraTS case) of 240x240x155 as numpy (the pipeline's
array transform), and a torch batch 2x3x128^3 (online edge ground truth in a training step).

Baselines, both per channel with scipy.ndimage:
- ``scipy_sobel``: Sobel gradient magnitude over the three axes, edges = non-zero magnitude inside the object
  (the straightforward reading of "edges from a 3D Sobel filter");
- ``scipy_morphology``: ``mask & ~binary_erosion(mask, 3x3x3)`` (the exact same edge set as ours).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from edge_networks.data.synthetic import make_brats_case
from transforms import ConvertToBratsRegions, LabelToEdge


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def scipy_sobel(masks: np.ndarray) -> np.ndarray:
    out = np.zeros(masks.shape, bool)
    for c in range(masks.shape[0]):
        m = masks[c].astype(np.float32)
        mag = sum(ndimage.sobel(m, axis=a, mode="nearest") ** 2 for a in range(m.ndim))
        out[c] = (mag > 0) & masks[c]
    return out


def scipy_morphology(masks: np.ndarray) -> np.ndarray:
    st = np.ones((3,) * (masks.ndim - 1), bool)
    return np.stack([m & ~ndimage.binary_erosion(m, st, border_value=1) for m in masks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "edge_transform.json"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    seg = make_brats_case(seed=0).seg  # 240x240x155, labels 0/1/2/4
    regions = ConvertToBratsRegions()(seg[None]).astype(np.uint8)  # (3, 240, 240, 155) one-hot-like regions
    masks = regions > 0
    rng = np.random.default_rng(0)
    batch_np = np.zeros((2, 3, 128, 128, 128), bool)
    for b in range(2):
        for c in range(3):
            field = ndimage.gaussian_filter(rng.standard_normal((128, 128, 128)).astype(np.float32), 4.0)
            batch_np[b, c] = field > (0.5 + 0.3 * c) * field.std()
    batch = torch.from_numpy(batch_np)

    transform = LabelToEdge()
    batched = LabelToEdge(spatial_dims=3)
    ours_vol = transform(regions)
    assert np.array_equal(ours_vol > 0, scipy_morphology(masks)), "edge set differs from the reference"
    results = {}
    cases = {
        "volume_3x240x240x155_numpy": (lambda: transform(regions), masks),
        "batch_2x3x128^3_torch": (lambda: batched(batch), batch_np.reshape(6, 128, 128, 128)),
    }
    for name, (ours_fn, ref_masks) in cases.items():
        t_ours = median_time(ours_fn, args.repeats)
        t_sobel = median_time(lambda m=ref_masks: scipy_sobel(m), max(3, args.repeats // 2))
        t_morph = median_time(lambda m=ref_masks: scipy_morphology(m), max(3, args.repeats // 2))
        results[name] = {
            "ours_s": round(t_ours, 4),
            "scipy_sobel_s": round(t_sobel, 4),
            "scipy_morphology_s": round(t_morph, 4),
            "speedup_vs_scipy_sobel": round(t_sobel / t_ours, 1),
            "speedup_vs_scipy_morphology": round(t_morph / t_ours, 1),
        }
        print(name, results[name])
    report = {
        "benchmark": "edge_transform",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "processor": platform.processor() or platform.machine()},
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "repeats": args.repeats,
        "target": "at least 10x faster than the scipy baseline",
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
