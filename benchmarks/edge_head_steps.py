"""Does EG-CNN's edge head open the tumour's interior as training goes on? (docs/research_notes.md,
"The edge head: a boundary or a blob?"; results: ``benchmarks/results/egcnn_edge_head_steps.json``.)

Trains the ``egcnn_brats`` bundle's own network, loss and training pipeline (``train.json`` + ``cpu_small.json``,
bundle overrides with ``--override KEY=JSON``) on a demo results folder (``make run`` writes ``data/brats2021`` and
``datalist.json`` there), and every ``--eval_every`` steps scores the edge head on the held-out whole volumes
(sliding window) per channel: the share of each region's non-edge voxels predicted as edge, recall on the edge
target, mean logits on the target, inside, deep inside and outside.

Experiment-only patches (``--patch a,b``), none of them in the package:

- ``masked``: the gate without its ``+ e`` residual (``out = w^T(e * alpha)``);
- ``decoder``: every gate reads the decoder's feature map of its resolution instead of the encoder's (SegResNet,
  whose decoder maps have the encoder's channel counts);
- ``headnorm``: the edge head reads the GroupNorm-ed stream features (those the fusion reads);
- ``gradhead``: the edge head reads the stream features and their Sobel gradient magnitudes (with ``headnorm``:
  of the normalised features).

``--override network_def=JSON`` trains another network with the same loss and pipeline (e.g. the 3D
boundary-aware network with three outputs).

    python benchmarks/edge_head_steps.py --data results/demo --out /tmp/A.json --steps 640 --eval_every 160 \
        [--override refine_edges=true 'loss_weights#edge_bce=20.0'] [--patch masked]
    python benchmarks/edge_head_steps.py --data results/demo --out /tmp/demo.json \
        --checkpoint results/demo/models/model.pt   # the demo's own model, per channel
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.inferers import sliding_window_inference
from monai.utils import set_determinism
from scipy import ndimage

B = Path(__file__).resolve().parents[1] / "bundles" / "egcnn_brats" / "configs"


def edge_stats(prob, masks, target):
    """prob, target: (C, *S) arrays; masks (C, *S) region masks. Per-channel + union statistics. Logits are
    recovered from ``prob`` clipped to [1e-7, 1 - 1e-7], so they saturate at about +-16."""
    pred = prob > 0.5
    wt = masks.any(0)
    out = {}
    for c, name in enumerate(("tc", "wt", "et")):
        m = masks[c]
        t = target[c] > 0
        inside_non_edge = m & ~t  # region interior, where the channel's target is 0
        out[f"{name}_interior_fp"] = float(pred[c][inside_non_edge].mean()) if inside_non_edge.any() else float("nan")
        out[f"{name}_recall"] = float(pred[c][t].mean()) if t.any() else float("nan")
        out[f"{name}_prob_interior"] = float(prob[c][inside_non_edge].mean()) if inside_non_edge.any() else float("nan")
        # deep interior: more than 3 voxels from the region's boundary
        deep = ndimage.distance_transform_edt(m) > 3
        out[f"{name}_deep_fp"] = float(pred[c][deep].mean()) if deep.any() else float("nan")
        logit = np.log(np.clip(prob[c], 1e-7, 1 - 1e-7)) - np.log1p(-np.clip(prob[c], 1e-7, 1 - 1e-7))
        outside = ~m & ~t
        for tag, sel in (("rim", t), ("inside", inside_non_edge), ("deep", deep), ("outside", outside)):
            out[f"{name}_logit_{tag}"] = float(logit[sel].mean()) if sel.any() else float("nan")
    u = pred.any(0)
    out["fill"] = float(u[wt].mean())
    out["target_fill"] = float((target > 0).any(0)[wt].mean())
    return out


def apply_patches(patch: str) -> None:
    """Monkey-patch the package for the experiment-only variants named in ``patch`` (comma-separated, see the
    module docstring)."""
    names = patch.split(",") if patch else []
    from edge_networks.nets.blocks import EdgeGatedLayer
    from edge_networks.nets.egcnn import EGCNN

    if "masked" in names:  # the gate without the "+ e" residual: out = w^T(e * alpha)
        def gate_forward(self, e, m):
            return self.w(e * self.attention(e, m))
        EdgeGatedLayer.forward = gate_forward
    if "decoder" in names:  # every gate reads the decoder's map of its resolution (SegResNet)
        from edge_networks.nets.backbones import SegResNetBackbone

        def backbone_forward(self, x):
            x, skips = self.net.encode(x)
            n = len(skips)
            dec = [None] * (n - 1)
            for i, (up, upl) in enumerate(zip(self.net.up_samples, self.net.up_layers)):
                x = upl(up(x) + skips[n - 2 - i])
                dec[n - 2 - i] = x
            return self.net.conv_final(x), dec + [skips[-1]], dec[-1]
        SegResNetBackbone.forward = backbone_forward
    if "headnorm" in names or "gradhead" in names:
        from transforms.edges import sobel_gradient_magnitude

        def streams(self, x):
            # headnorm: the edge head reads the GroupNorm-ed features (those the fusion reads);
            # gradhead: it also reads their Sobel gradient magnitudes (its input width doubles, see main)
            main_logits, skips, first_up = self.main(x)
            e = self.edge_stream(skips, first_up)
            en = self.fuse_norm(e)
            seg = self.fuse(torch.cat([main_logits, en], dim=1))
            h = en if "headnorm" in names else e
            if "gradhead" in names:
                h = torch.cat([h, sobel_gradient_magnitude(h, h.ndim - 2, normalize=True)], 1)
            return seg, self.edge_head(h)
        EGCNN.forward_streams = streams


def bundle_parts(data: str, overrides: list[str], patch: str = "") -> tuple[ConfigParser, torch.nn.Module, object]:
    """The ``egcnn_brats`` bundle (``train.json`` + ``cpu_small.json``) on a demo results folder ``data``, with
    ``KEY=JSON`` overrides: ``(parser, network, loss)``; the ``gradhead`` patch's wider edge head is built here."""
    parser = ConfigParser()
    parser.read_config([str(B / "train.json"), str(B / "cpu_small.json")])
    parser["bundle_root"] = str(B.parent)
    parser["data_list_file_path"] = str(Path(data) / "datalist.json")
    parser["dataset_dir"] = str(Path(data) / "data" / "brats2021")
    for kv in overrides:
        k, v = kv.split("=", 1)
        parser[k] = json.loads(v)
    net = parser.get_parsed_content("network_def")
    if "gradhead" in patch.split(","):
        c = net.edge_head.in_channels
        net.edge_head = torch.nn.Conv3d(2 * c, net.edge_out_channels, kernel_size=1)
    return parser, net, parser.get_parsed_content("loss")


def score_held_out(net: torch.nn.Module, items: list) -> dict:
    """:func:`edge_stats` of ``net``'s edge head on the preprocessed held-out ``items`` (whole volumes, sliding
    window 64^3, overlap 0.5), averaged over the cases (NaN-aware)."""
    from transforms.edges import label_to_edge

    net.eval()
    net.edges_in_eval = True
    stats = []
    with torch.no_grad():
        for it in items:
            img = it["image"][None].as_tensor()
            lab = it["label"].as_tensor().numpy() > 0.5
            out = sliding_window_inference(img, (64, 64, 64), 1, net, overlap=0.5, mode="gaussian")
            prob = torch.sigmoid(out[0, 3:]).numpy()
            tgt = label_to_edge(torch.as_tensor(lab[None]).float(), 3, mode="both")[0].numpy()
            stats.append(edge_stats(prob, lab, tgt))
    net.edges_in_eval = False
    return {k: float(np.nanmean([s[k] for s in stats])) for k in stats[0]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--eval_every", type=int, default=150)
    p.add_argument("--override", nargs="*", default=[])
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patch", default="")
    p.add_argument("--checkpoint", default="", help="score this trained model's edge head once, no training")
    a = p.parse_args()
    apply_patches(a.patch)
    set_determinism(seed=a.seed)
    parser, net, loss_fn = bundle_parts(a.data, a.override + ([f"learning_rate={a.lr}"] if a.lr else []), a.patch)
    opt = torch.optim.Adam(net.parameters(), lr=parser.get_parsed_content("learning_rate"),
                           weight_decay=parser.get_parsed_content("weight_decay"))
    ds = parser.get_parsed_content("train#dataset")
    val_list = json.loads((Path(a.data) / "datalist.json").read_text())["validation"]
    from monai.data import Dataset
    vds = Dataset(val_list, parser.get_parsed_content("validate#preprocessing"))
    vitems = [vds[i] for i in range(len(vds))]
    if a.checkpoint:  # score a trained model (e.g. the demo's models/model.pt) and stop
        ckpt = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(ckpt.get("network", ckpt))
        mean = score_held_out(net, vitems)
        mean["checkpoint"] = str(a.checkpoint)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in mean.items()}), flush=True)
        Path(a.out).write_text(json.dumps({"args": vars(a), "rows": [mean]}, indent=1))
        return 0
    rows = []
    t0 = time.time()
    rng = np.random.default_rng(a.seed)
    step = 0
    losses = []
    while step < a.steps:
        for i in rng.permutation(len(ds)):
            item = ds[int(i)]
            x, y = item["image"][None], item["label"][None]
            net.train()
            pred = net(x.as_tensor() if hasattr(x, "as_tensor") else x)
            loss = loss_fn(pred, y.as_tensor() if hasattr(y, "as_tensor") else y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(dict(loss_fn.last))
            step += 1
            if step % a.eval_every == 0 or step == a.steps:
                mean = score_held_out(net, vitems)
                recent = losses[-a.eval_every:]
                mean["loss"] = {k: float(np.mean([r[k] for r in recent if k in r])) for k in recent[-1]}
                mean["step"] = step
                mean["time_s"] = round(time.time() - t0, 1)
                rows.append(mean)
                print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in mean.items()}),
                      flush=True)
                Path(a.out).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))
            if step >= a.steps:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
