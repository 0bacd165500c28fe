"""Can EG-CNN's edge head draw the whole-tumour ring at all? Fit one training crop and watch the interior open.
(docs/research_notes.md, "The edge head: a boundary or a blob?"; results:
``benchmarks/results/egcnn_edge_head_overfit.json``.)

Builds the ``egcnn_brats`` bundle's network and loss (``train.json`` + ``cpu_small.json``, overrides with
``--override KEY=JSON``), takes the first training item of a demo results folder through the bundle's training
pipeline, cuts a ``--size``^3 crop around the whole tumour's centre and trains on that one crop. Every 25 steps it
reports, on the crop itself, ``edge_head_steps.edge_stats`` per channel: the share of the region's voxels off the
channel's edge target that are predicted edge (``interior_fp``), recall on the target, mean logits on the target,
inside, deep inside and outside. A head that can draw the ring on the data it is trained on takes ``interior_fp`` to 0;
how many steps that takes compares settings at a fraction of a full training's cost.

``--patch``: the experiment-only variants of ``edge_head_steps.py`` (e.g. ``headnorm``: the edge head reads the
GroupNorm-ed stream features, those the fusion reads).

    python benchmarks/edge_head_overfit.py --data results/demo --out /tmp/o.json [--steps 150] [--size 48] \
        [--override edge_bce_balanced=false] [--patch headnorm]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from edge_head_steps import apply_patches, bundle_parts, edge_stats  # this folder (sys.path[0] when run as a script)
from monai.utils import set_determinism
from scipy import ndimage


def crop_around(x: torch.Tensor, y: torch.Tensor, channel: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``size``^3 crop of ``x`` and ``y`` ``(1, C, *S)`` centred on the centroid of ``y[:, channel]`` (kept inside)."""
    centre = np.round(ndimage.center_of_mass(y[0, channel].numpy() > 0.5)).astype(int)
    starts = [int(min(max(c - size // 2, 0), s - size)) for c, s in zip(centre, y.shape[2:])]
    sl = (slice(None), slice(None), *[slice(s, s + size) for s in starts])
    return x[sl].contiguous(), y[sl].contiguous()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--override", nargs="*", default=[])
    p.add_argument("--patch", default="")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    apply_patches(a.patch)
    set_determinism(seed=a.seed)
    parser, net, loss_fn = bundle_parts(a.data, a.override, a.patch)
    item = parser.get_parsed_content("train#dataset")[0]
    x, y = crop_around(item["image"][None].as_tensor(), item["label"][None].as_tensor(), 1, a.size)
    from transforms.edges import label_to_edge

    target = label_to_edge(y.float(), 3, mode="both")[0].numpy() > 0
    masks = y[0].numpy() > 0.5
    opt = torch.optim.Adam(net.parameters(), lr=parser.get_parsed_content("learning_rate"))
    rows, t0 = [], time.time()
    for step in range(1, a.steps + 1):
        net.train()
        out = net(x)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 and step != a.steps:
            continue
        prob = torch.sigmoid(out[0, 3:].detach()).numpy()
        row = {"step": step, "time_s": round(time.time() - t0, 1), "loss": dict(loss_fn.last),
               **edge_stats(prob, masks, target),
               "wt_voxels_inside_rim": [int((masks[1] & ~target[1]).sum()), int(target[1].sum())]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        Path(a.out).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
