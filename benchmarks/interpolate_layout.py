"""EG-CNN with its upsampling in channels-last layout (``blocks.interpolate_to`` on the CPU) vs the default layout,
against SegResNet alone: float32, 1x4x96^3, the egcnn_brats widths, in one process (medians of 3 after a warm-up).

    python benchmarks/interpolate_layout.py [--out benchmarks/results/interpolate_layout.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.nets import SegResNet

import edge_networks.nets.blocks as blocks
import edge_networks.nets.egcnn as egcnn
from edge_networks import EGCNN


def default_layout(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``interpolate_to`` before the channels-last change."""
    if x.shape[2:] == like.shape[2:]:
        return x
    return F.interpolate(x, size=like.shape[2:], mode="trilinear", align_corners=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "interpolate_layout.json"))
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(1, 4, 96, 96, 96)
    nets = {"segresnet": (SegResNet(3, 16, 4, 3), None), "egcnn_default_layout": (EGCNN(3, 4, 3), default_layout)}
    nets["egcnn_channels_last"] = (nets["egcnn_default_layout"][0], blocks.interpolate_to)

    def infer(net):
        net.eval()
        with torch.no_grad():
            net(x)

    def train(net):
        net.train()
        net(x).mean().backward()
        net.zero_grad()

    report = {"input": [1, 4, 96, 96, 96], "dtype": "float32", "threads": torch.get_num_threads()}
    for mode, step in (("infer", infer), ("train", train)):
        times: dict[str, list[float]] = {}
        for rep in range(4):
            for name, (net, fn) in nets.items():
                if fn is not None:
                    egcnn.interpolate_to = fn
                t = time.perf_counter()
                step(net)
                if rep:
                    times.setdefault(name, []).append(time.perf_counter() - t)
        med = {k: statistics.median(v) for k, v in times.items()}
        report[mode] = {k: {"s": round(v, 3), "ratio_to_segresnet": round(v / med["segresnet"], 3)}
                        for k, v in med.items()}
        print(mode, report[mode], flush=True)
    net = nets["egcnn_default_layout"][0].eval()
    with torch.no_grad():
        egcnn.interpolate_to = default_layout
        a = net(x)
        egcnn.interpolate_to = blocks.interpolate_to
        b = net(x)
    report["max_abs_output_difference"] = (a - b).abs().max().item()
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
