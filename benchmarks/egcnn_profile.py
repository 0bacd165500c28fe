"""Where EG-CNN's edge stream spends its time: an operator profile of SegResNet alone and of EG-CNN + SegResNet.

    python benchmarks/egcnn_profile.py [--bf16] [--size 96] [--repeats 5] [--out benchmarks/results/egcnn_profile.json]

Same input as ``benchmarks/egcnn_overhead.py`` (1x4xS^3, ``egcnn_brats`` defaults: init_filters 16, edge_channels 16):
the inference forward pass and the training step (forward, loss, backward, Adam step), profiled with
``torch.profiler`` after a warm-up, the two networks alternately for ``--repeats`` rounds (medians over rounds, so
that drift of the machine's speed hits both). Each ATen operator's *self* CPU time goes into one category --
convolution, normalisation, upsampling, elementwise (activations, sums, products, copies and layout changes),
optimiser, other -- so the categories add up to the step. The edge stream's cost is EG-CNN minus SegResNet.

From those numbers the script also models the step on a CPU with native bfloat16, calibrated by what
``benchmarks/results/egcnn_overhead.json`` measured there on 2026-11-27 (SegResNet's step 2.6x faster under bf16
autocast, the edge stream's extra time unchanged): the backbone's speed-up is put on the convolutions and
normalisations (their speed-up ``s`` solved from this profile), the edge stream's convolutions get the same ``s`` and
its upsampling and elementwise work none, so the EG-CNN/SegResNet ratio becomes ``(B' + Ec/s + Eo) / B'``. It reports
that ratio and how much faster the edge stream's other work would have to become to meet the target. That is a model
of a machine this benchmark did not run on, not a measurement: run it with ``--bf16`` on such a CPU to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from monai.losses import DiceLoss
from torch.profiler import ProfilerActivity, profile

from edge_networks import EGCNN, EGCNNLoss
from edge_networks.bundle import cpu_supports_bf16

HERE = Path(__file__).resolve().parent
CATEGORIES = ("convolution", "normalisation", "upsampling", "elementwise", "optimiser", "other")
_RULES = (  # first match wins: a substring of the ATen operator name in lower case
    ("optimiser", ("_foreach", "adam", "lerp", "addcdiv", "addcmul")),
    ("upsampling", ("upsample", "interpolate", "grid_sampler")),
    ("convolution", ("conv", "mkldnn_convolution")),
    ("normalisation", ("group_norm", "batch_norm", "instance_norm", "layer_norm")),
)
# elementwise and data-movement operators: a whole ``_``-separated word of the name (``sigmoid_backward``, ``_to_copy``)
_ELEMENTWISE = frozenset((
    "add", "mul", "sub", "div", "sigmoid", "relu", "threshold", "cat", "copy", "clone", "contiguous", "fill", "zero",
    "where", "clamp", "neg", "exp", "log", "sum", "mean", "to", "empty", "strided", "view", "reshape", "permute",
    "slice", "select", "narrow", "stack", "max", "min", "abs", "pow", "sqrt", "rsub", "expand", "ones", "zeros",
    "fill_", "resize"))


def category(op: str) -> str:
    """The category of ATen operator ``op`` (e.g. ``aten::upsample_trilinear3d_backward`` -> ``upsampling``)."""
    name = op.lower().removeprefix("aten::")
    for cat, keys in _RULES:
        if any(k in name for k in keys):
            return cat
    if _ELEMENTWISE.intersection(name.split("_")):
        return "elementwise"
    return "other"


def _stepper(edge_stream: bool, mode: str, size: int, bf16: bool) -> Callable[[], None]:
    """One training step or inference pass of SegResNet (``edge_stream=False``) or EG-CNN, warmed up."""
    torch.manual_seed(0)
    net = EGCNN(3, 4, 3, backbone_kwargs={"init_filters": 16}, edge_channels=16, edge_stream=edge_stream)
    x = torch.randn(1, 4, size, size, size)
    y = (torch.rand(1, 3, size, size, size) > 0.7).float()
    loss_fn = EGCNNLoss(3, sigmoid=True) if edge_stream else DiceLoss(sigmoid=True)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    net.train(mode == "train")

    def step() -> None:
        if mode == "infer":
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                net(x)
            return
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss_fn(out.float(), y).backward()
        opt.step()

    step()  # warm-up (oneDNN primitive creation, allocator)
    return step


def _profiled(step: Callable[[], None]) -> tuple[dict[str, float], float]:
    """Self milliseconds per operator and the wall milliseconds of one profiled step."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        step()
        wall = time.perf_counter() - t0
    ops: dict[str, float] = {}
    for ev in prof.key_averages():
        ops[ev.key] = ops.get(ev.key, 0.0) + ev.self_cpu_time_total / 1000.0
    return ops, wall * 1000.0


def _summary(rounds: list[tuple[dict[str, float], float]]) -> dict:
    """Per category, the median over rounds; ``total_ms`` is the median of the rounds' totals."""
    per_round = []
    for ops, wall in rounds:
        ms = dict.fromkeys(CATEGORIES, 0.0)
        for k, v in ops.items():
            ms[category(k)] += v
        per_round.append((ms, wall))
    ops_all: dict[str, list[float]] = {}
    for ops, _ in rounds:
        for k, v in ops.items():
            ops_all.setdefault(k, []).append(v)
    top = sorted(((k, statistics.median(v)) for k, v in ops_all.items()), key=lambda kv: -kv[1])[:12]
    return {"ms": {c: round(statistics.median(r[0][c] for r in per_round), 1) for c in CATEGORIES},
            "total_ms": round(statistics.median(sum(r[0].values()) for r in per_round), 1),
            "wall_ms": round(statistics.median(r[1] for r in per_round), 1),
            "total_ms_rounds": [round(sum(r[0].values()), 1) for r in per_round],
            "top_ops_ms": {k: round(v, 1) for k, v in top}}


def profile_pair(mode: str, size: int, repeats: int, bf16: bool) -> tuple[dict, dict, float]:
    """SegResNet and EG-CNN profiled alternately, ``repeats`` rounds (so drift of the machine's speed hits both):
    their summaries and the median over rounds of the per-round ratio."""
    base_step, eg_step = _stepper(False, mode, size, bf16), _stepper(True, mode, size, bf16)
    base_rounds, eg_rounds = [], []
    for _ in range(repeats):
        base_rounds.append(_profiled(base_step))
        eg_rounds.append(_profiled(eg_step))
    ratios = [sum(e[0].values()) / sum(b[0].values()) for b, e in zip(base_rounds, eg_rounds)]
    return _summary(base_rounds), _summary(eg_rounds), statistics.median(ratios)


def model_ratio(base: dict, egcnn: dict, backbone_speedup: float, target: float) -> dict:
    """EG-CNN/SegResNet ratio on a machine where SegResNet's step is ``backbone_speedup`` times faster, if that
    comes from the convolutions and normalisations alone (their speed-up ``s`` solved from this profile) and the
    edge stream's other work does not speed up; and the speed-up that other work would need to meet ``target``."""
    fast = ("convolution", "normalisation")
    b = base["total_ms"]
    b_conv = sum(base["ms"][k] for k in fast)
    b_rest = b - b_conv
    denominator = b / backbone_speedup - b_rest
    if denominator <= 0:
        return {"backbone_speedup": backbone_speedup, "note": "not modelled: SegResNet's own non-convolution work "
                "exceeds its whole measured step on the faster machine"}
    s = b_conv / denominator
    extra = {k: egcnn["ms"][k] - base["ms"][k] for k in CATEGORIES}
    b_fast = b / backbone_speedup
    e_fast = sum(extra[k] for k in fast) / s
    e_rest = sum(extra[k] for k in CATEGORIES if k not in fast)
    allowed = target * b_fast - b_fast - e_fast  # what the edge stream's other work may cost
    return {"backbone_speedup": round(backbone_speedup, 3), "conv_speedup_solved": round(s, 2),
            "modelled_ratio": round((b_fast + e_fast + e_rest) / b_fast, 3), "target": target,
            "edge_stream_extra_ms": {k: round(v, 1) for k, v in extra.items()},
            "edge_rest_ms": round(e_rest, 1), "edge_rest_allowed_ms": round(allowed, 1),
            "edge_rest_speedup_needed": round(e_rest / allowed, 2) if allowed > 0 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "egcnn_profile.json"))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bf16", action="store_true", help="profile under CPU bf16 autocast (needs native bf16)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if args.bf16 and not cpu_supports_bf16():
        parser.error("this CPU has no native bfloat16: an emulated bf16 profile would say nothing about bf16 machines")
    torch.set_num_threads(args.threads)
    precision = "bf16" if args.bf16 else "float32"
    report: dict = {"benchmark": "egcnn_profile", "precision": precision, "input": [1, 4, *[args.size] * 3],
                    "threads": args.threads, "cpu": platform.processor() or platform.machine(),
                    "cpu_supports_bf16": cpu_supports_bf16(), "torch": torch.__version__}
    previous = json.loads((HERE / "results" / "egcnn_overhead.json").read_text()).get("per_step_96cubed", {})
    for mode, target in (("train", 1.40), ("infer", 1.25)):
        base, eg, ratio = profile_pair(mode, args.size, args.repeats, args.bf16)
        entry = {"segresnet": base, "egcnn": eg, "ratio_profiled": round(ratio, 3),
                 "ratio_wall": round(eg["wall_ms"] / base["wall_ms"], 3)}
        old = previous.get("bf16", {}).get(mode)
        old32 = previous.get("float32", {}).get(mode)
        if not args.bf16 and old and old32:
            # the backbone's bf16 speed-up measured on the bf16 machine, applied to this profile's convolutions
            entry["bf16_model"] = model_ratio(base, eg, old32["segresnet_s"] / old["segresnet_s"], target)
        report[mode] = entry
        print(mode, json.dumps({k: v for k, v in entry.items() if k not in ("segresnet", "egcnn")}), flush=True)
    from transforms.writers import write_json_atomic

    print(f"written {write_json_atomic(args.out, report)}")


if __name__ == "__main__":
    main()
