"""Where CPU bfloat16 autocast gets a convolution's weight gradient wrong, and whether ``cpu_autocast`` fixes it.

    python benchmarks/bf16_conv_grad.py [--out benchmarks/results/bf16_conv_grad.json]

For each convolution shape (2D and 3D; kernel 1, 3, 5; dilation 1, 2; stride 1, 2; input axes of 1 to 8, one axis
or all of them short), three draws of random input, weight and output gradient: the relative error
``|g - g64| / |g64|`` of the forward output, the weight gradient and the input gradient, against float64 from the
same bf16-rounded operands, under plain ``torch.autocast("cpu", torch.bfloat16)`` and under
:func:`edge_networks.bundle.cpu_autocast`. A shape is "wrong" when the largest error exceeds 0.02 (bf16 rounding
gives about 0.002) or is not finite. The result names oneDNN's convolution implementation and the CPU, since the
fault belongs to one kernel (``ONEDNN_MAX_CPU_ISA=AVX2`` selects others).

The guard's cost: one training step (forward, backward) of EG-CNN on SegResNet (``init_filters`` 8, a 64^3 crop,
which has no convolution the guard moves) under plain autocast and under ``cpu_autocast``, alternated, median of
``--repeats``; the ratio is what the torch function mode's per-call dispatch adds.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from edge_networks.bundle import conv_needs_float32, cpu_autocast, cpu_supports_bf16

THRESHOLD = 0.02


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.double()
    return float("inf") if not torch.isfinite(a).all() else float((a - b).norm() / (b.norm() + 1e-30))


def errors(dims: int, shape: list[int], k: int, stride: int, dilation: int, guarded: bool) -> tuple[float, ...]:
    """(forward, weight gradient, input gradient) relative errors of one random draw."""
    fn = F.conv3d if dims == 3 else F.conv2d
    kw = {"stride": stride, "padding": dilation * (k // 2), "dilation": dilation}
    x = torch.randn(1, 32, *shape, requires_grad=True)
    w = (torch.randn(32, 32, *([k] * dims)) * 0.05).requires_grad_(True)
    if guarded:
        with cpu_autocast():
            y = fn(x, w, None, **kw)
    else:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = fn(x, w, None, **kw)
    g = torch.randn(y.shape)
    y.float().backward(g)
    # float64 reference from the operands the bf16 path saw (the guarded path's float32 ones are closer still)
    x64 = x.detach().bfloat16().double().requires_grad_(True)
    w64 = w.detach().bfloat16().double().requires_grad_(True)
    y64 = fn(x64, w64, None, **kw)
    y64.backward(g.bfloat16().double())
    return _rel(y.detach(), y64.detach()), _rel(w.grad, w64.grad), _rel(x.grad, x64.grad)


def conv_implementation() -> str:
    """oneDNN's implementation name for a bf16 3D convolution's weight gradient on this machine."""
    code = ("import torch, torch.nn.functional as F\nx = torch.randn(1, 32, 4, 4, 4, requires_grad=True)\n"
            "w = torch.randn(32, 32, 3, 3, 3, requires_grad=True)\nwith torch.autocast('cpu', dtype=torch.bfloat16):\n"
            "    y = F.conv3d(x, w, padding=1)\ny.float().sum().backward()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "ONEDNN_VERBOSE": "1"}).stdout
    for line in out.splitlines():
        if ",convolution," in line and "backward_weights" in line:
            return line.split(",")[6]
    return "not reported"


def step_overhead(repeats: int) -> dict:
    """Median seconds of one EG-CNN training step under plain autocast and under ``cpu_autocast``, and their ratio."""
    import time

    from edge_networks import EGCNN

    net = EGCNN(3, 4, 3, backbone_kwargs={"init_filters": 8}).train()
    x = torch.randn(1, 4, 64, 64, 64)

    def step(guarded: bool) -> float:
        t0 = time.perf_counter()
        ctx = cpu_autocast() if guarded else torch.autocast("cpu", dtype=torch.bfloat16)
        with ctx:
            out = net(x)
        out.float().mean().backward()
        net.zero_grad()
        return time.perf_counter() - t0

    step(False), step(True)  # warm-up
    plain, guarded = [], []
    for _ in range(repeats):
        plain.append(step(False))
        guarded.append(step(True))
    p, g = sorted(plain)[repeats // 2], sorted(guarded)[repeats // 2]
    return {"plain_autocast_s": p, "cpu_autocast_s": g, "ratio": g / p, "repeats": repeats}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/bf16_conv_grad.json")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows, seen = [], set()
    for dims, k, dilation, stride, s in itertools.product((3, 2), (1, 3, 5), (1, 2), (1, 2), (1, 2, 3, 4, 5, 6, 8)):
        if k == 1 and dilation == 2:
            continue
        for shape in ([s] * dims, [s] + [8] * (dims - 1), [8] * (dims - 1) + [s]):
            if (key := (dims, tuple(shape), k, stride, dilation)) in seen:
                continue
            seen.add(key)
            plain = [max(errors(dims, shape, k, stride, dilation, False)) for _ in range(args.draws)]
            guarded = [max(errors(dims, shape, k, stride, dilation, True)) for _ in range(args.draws)]
            rows.append({"dims": dims, "input": shape, "kernel": k, "stride": stride, "dilation": dilation,
                         "guard_runs_float32": conv_needs_float32(torch.zeros(1, 1, *shape),
                                                                  torch.zeros(1, 1, *([k] * dims)), dilation),
                         "max_rel_err_plain": max(plain), "max_rel_err_cpu_autocast": max(guarded)})
    wrong_plain = [r for r in rows if not r["max_rel_err_plain"] <= THRESHOLD]
    wrong_guarded = [r for r in rows if not r["max_rel_err_cpu_autocast"] <= THRESHOLD]
    result = {
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "cpu_supports_bf16": cpu_supports_bf16(),
                    "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
                    "bf16_conv_backward_weights_impl": conv_implementation()},
        "software": {"torch": torch.__version__, "python": platform.python_version()},
        "settings": {"channels": 32, "draws": args.draws, "threshold": THRESHOLD, "threads": torch.get_num_threads()},
        "shapes": len(rows),
        "wrong_under_plain_autocast": len(wrong_plain),
        "wrong_under_cpu_autocast": len(wrong_guarded),
        "wrong_ones_not_moved_to_float32": [r for r in wrong_plain if not r["guard_runs_float32"]],
        "egcnn_step_64cubed": step_overhead(args.repeats),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(rows)} shapes: {len(wrong_plain)} wrong under plain bf16 autocast, {len(wrong_guarded)} under "
          f"cpu_autocast ({result['machine']['bf16_conv_backward_weights_impl']}); EG-CNN step "
          f"{result['egcnn_step_64cubed']['ratio']:.3f}x plain autocast's time; wrote {args.out}")


if __name__ == "__main__":
    main()
