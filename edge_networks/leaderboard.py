"""Head-to-head leaderboard: every registered method, trained through its bundle, against its plain backbone.

    python -m edge_networks.leaderboard --task brats|kits|fundus_od [--difficulty hard] [--seeds 3] [--epochs 30]
        [--cases 24] [--shape 96 96 64] [--methods segresnet egcnn_segresnet ...] --out DIR
    python -m edge_networks.leaderboard --task brats|fundus_od --smoke --out DIR     # under 3 minutes on 2 CPU cores
    [--minutes M]  [--roi-size X Y Z]  [--held-out 0.33]  [--set KEY=JSON ...]  [--small]

One synthetic dataset (the task's generator, ``--difficulty``), one split (``prepare_datalist``, seeded), and for
each method and seed the method's bundle configs with overrides (``train.json`` for training,
``inference.json`` on the held-out cases) -- the same epochs, crops, seeds and precision for all; no second
training loop. The held-out cases are the release's labelled test images where the layout has them (ORIGA's
Set B), else the validation split. The written label maps are scored per held-out case and region by
:mod:`edge_networks.metrics`: Dice, HD95 in mm (the image's spacing; pixels for 2D images), boundary F-score at 1
and 2 voxels, and for methods with an edge head its own F-score at 2 voxels (its saved map, the maximum over its
edge channels, at 0.5 against the union of the regions' Sobel-support edges; the same value on each region's row;
2D images: the map written as an 8-bit PNG, see :func:`edge_split`).
Per method: parameters, seconds per training iteration (wall time over iterations, the final validation included),
seconds per whole-volume inference (edge maps written too where there is an edge head), and peak memory of training
and of inference (:class:`PeakMemory`). For every edge method, the paired difference to its own baseline over
(case, seed) pairs with a bootstrap 95 % interval. Writes ``leaderboard.csv`` (one row per method and region),
``paired.csv``, ``leaderboard.md``, ``leaderboard.json``, ``per_case.csv``, ``leaderboard.png``
(:func:`plot_leaderboard`) and ``montage.png`` (one held-out case segmented by every method, with the 3D edge heads'
and 2D edge heads' maps).

Registered methods (``METHODS``, tasks in ``TASKS``):

- ``brats``, ``kits``: the plain SegResNet, U-Net, V-Net and CE-Net (EG-CNN's bundle with the edge stream off:
  exactly MONAI's networks, and CE-Net in 3D), EG-CNN on each; for BraTS also the boundary-aware network against its
  own no-edge-loss ablation, in 3D and in 2D on axial slices (the paper's setting; the 2D network runs slice by
  slice over the same volumes and is scored on the same 3D label maps), and CE-Net and EG-CNN on CE-Net in 2D on the
  same slices. CE-Net needs crops divisible by 32 (2D slices are resized up to the next multiple).
- ``fundus_od`` (optic disc, synthetic ORIGA photographs): through the ``cenet_fundus_od`` bundle's pipeline (disc
  window, resize, 8-fold flip TTA, PNG masks at the photograph's size; ``--small``: its ``cpu_small`` profile),
  the plain 2D U-Net and CE-Net, EG-CNN on each, and the 2D boundary-aware network against its ablation
  (:func:`_image2d`), ET-Net and BA-Net against their ablations; every edge head's map is written and scored.

Later methods add rows here.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from .bundle.datalists import BUNDLES_ENV, bundles_dir
from .data import prepare_datalist
from .data.synthetic import write_brats_dataset, write_kits_dataset
from .data.synthetic.layouts2d import write_2d_dataset
from .metrics import boundary_f_score, dice, hd95, read_2d, region_masks, score_edge_head

__all__ = ["Method", "METHODS", "run_leaderboard", "paired_bootstrap", "PeakMemory",
           "plot_leaderboard", "write_montage", "main"]

BUNDLES_2D = ("boundary_aware_brats",)  # 2D networks on slices


@dataclass(frozen=True)
class Method:
    """A leaderboard entry: a bundle with overrides, the label map it writes, and the entry it is compared with."""

    bundle: str
    overrides: dict = field(default_factory=dict)
    baseline: str | None = None
    writes: str = "brats"  # "brats" (labels 1/2/4), "tc" (1 = tumour core), "kits" (1 kidney, 2 tumour), "disc"
    edges: bool | None = None  # trained with edge supervision; None: unless the overrides turn the edge stream or
    # the edge loss off (``edge_stream``, ``edge_loss_weight``)

    @property
    def has_edges(self) -> bool:
        if self.edges is not None:
            return self.edges
        return bool(self.overrides.get("edge_stream", True) and self.overrides.get("edge_loss_weight", 1.0))


def edge_split(activation: str = "sigmoid", png: bool = False) -> list[dict]:
    """An inference ``split_edges`` chain for a network given whole in a method's overrides (its own bundle's
    chain may expect other channels): the network's ``edges_in_eval`` output ``cat([seg, edge], 0)`` is split
    into the segmentation (the first ``@out_channels`` channels) and one edge probability map -- ``"sigmoid"``:
    the maximum over the edge channels' sigmoids (EG-CNN, the boundary-aware network, BA-Net); ``"softmax"``: the
    edge class of a two-class edge head (ET-Net) -- inverted to the image's grid and written as
    ``<case>_edge``: a float32 NIfTI for volumes, an 8-bit PNG (probability x 255) for 2D images.

    >>> [t["_target_"] for t in edge_split()]
    ['CopyItemsd', 'Lambdad', 'Lambdad', 'Invertd', 'SaveImaged']
    """
    if activation not in ("sigmoid", "softmax"):
        raise ValueError(f"activation must be 'sigmoid' or 'softmax', got {activation!r}")
    prob = ("$lambda x: torch.sigmoid(x[@out_channels:].float()).amax(dim=0, keepdim=True)" if activation == "sigmoid"
            else "$lambda x: torch.softmax(x[@out_channels:].float(), 0)[1:2]")
    writer = ({"writer": "transforms.writers.AtomicPILWriter", "output_ext": ".png",
               "output_dtype": "$numpy.uint8", "scale": 255} if png else
              {"writer": "transforms.readers.NibabelWriterKeepGeometry", "output_dtype": "$numpy.float32"})
    return [{"_target_": "CopyItemsd", "keys": "pred", "names": "edge"},
            {"_target_": "Lambdad", "keys": "pred", "func": "$lambda x: x[:@out_channels]"},
            {"_target_": "Lambdad", "keys": "edge", "func": prob},
            {"_target_": "Invertd", "keys": "edge", "transform": "@preprocessing", "orig_keys": "image",
             "nearest_interp": False, "to_tensor": True},
            {"_target_": "SaveImaged", "keys": "edge", "output_dir": "@output_dir", "output_postfix": "edge",
             "separate_folder": False, "resample": False, "print_log": False,
             "output_name_formatter": "$edge_networks.bundle.case_name_formatter(@layout)", **writer}]


def _with_edge_map(overrides: dict, activation: str = "sigmoid", png: bool = False) -> dict:
    """``overrides`` (with a ``network_def`` given whole) made to write the edge head's map at inference: the
    network returns its edge logits in evaluation when ``save_edges`` is set (the leaderboard sets it for
    inference; ``train.json`` has no ``save_edges``, so it defaults to false here), and :func:`edge_split`."""
    net = {**overrides["network_def"], "edges_in_eval": "$edge_networks.bundle.flag(@save_edges)"}
    return {**overrides, "network_def": net, "save_edges": False, "split_edges": edge_split(activation, png)}


# CE-Net's widths are the paper's (ResNet-34) in every profile; GroupNorm for 3D batches of one or two crops
_CENET = {"norm": ["group", {"num_groups": 8}]}
_SMALL_BACKBONE = {"segresnet": {"init_filters": 8}, "unet": {"features": [8, 8, 16, 16, 32, 8]}, "vnet": {},
                   "cenet": _CENET}


# 2D CE-Net on the boundary-aware bundle's T1ce slices (tumour core): its network and a sigmoid Dice loss, or
# EG-CNN on CE-Net with EG-CNN's loss (one region); "edge_stream": False marks a method without an edge head
_CENET_2D = {"network_def": {"_target_": "edge_networks.CENet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                             "norm": ["group", {"num_groups": 8}]},
             "loss": {"_target_": "DiceLoss", "sigmoid": True, "squared_pred": True}}
_EGCNN_CENET_2D = {"network_def": {"_target_": "edge_networks.EGCNN", "spatial_dims": 2, "in_channels": 1,
                                   "out_channels": 1, "backbone": "cenet", "backbone_kwargs": _CENET,
                                   "edges_in_eval": "$edge_networks.bundle.flag(@save_edges)"},
                   "loss": {"_target_": "edge_networks.EGCNNLoss", "out_channels": 1, "sigmoid": True},
                   "save_edges": False}  # train.json has no save_edges; inference sets it


def _etnet(bundle: str, writes: str, spatial_dims: int, in_channels, out_channels, suffix: str = "",
           norm="batch", png: bool = False) -> dict[str, Method]:
    """ET-Net and the paper's ablation without its EGM (Table 4), through ``bundle``'s pipeline, both with ET-Net's
    loss (0.3 Lovász seg + 0.7 Lovász-Softmax edge; the segmentation term alone without the EGM). Its 2-class edge
    head's edge class is written (:func:`edge_split`, ``png`` for 2D images) and scored."""
    def method(edge: bool, baseline):
        net = {"_target_": "edge_networks.ETNet", "spatial_dims": spatial_dims, "in_channels": in_channels,
               "out_channels": out_channels, "norm": norm, "edge_module": edge}
        loss = {"_target_": "edge_networks.ETNetLoss", "out_channels": out_channels, "sigmoid": True}
        over = {"network_def": net, "loss": loss}
        return Method(bundle, _with_edge_map(over, "softmax", png) if edge else over, baseline, writes, edges=edge)

    return {f"etnet{suffix}_no_edge": method(False, None), f"etnet{suffix}": method(True, f"etnet{suffix}_no_edge")}


def _banet(bundle: str, writes: str, spatial_dims: int, in_channels, out_channels, suffix: str = "",
           norm="batch", sigmoid=True, png: bool = False) -> dict[str, Method]:
    """BA-Net and the paper's "baseline" (Table IV: the encoder, ASPP and decoder without PEE, mini-MTL and CFF),
    through ``bundle``'s pipeline, both with BA-Net's loss (the decoder's BCE alone for the baseline, which has no
    stage outputs). Its finest stage's edge map is written (:func:`edge_split`, ``png`` for 2D images) and
    scored."""
    def method(edge: bool, baseline):
        net = {"_target_": "edge_networks.BANet", "spatial_dims": spatial_dims, "in_channels": in_channels,
               "out_channels": out_channels, "norm": norm, "pee": edge, "mtl": edge, "cff": edge}
        loss = {"_target_": "edge_networks.BANetLoss", "out_channels": out_channels, "sigmoid": sigmoid}
        over = {"network_def": net, "loss": loss}
        return Method(bundle, _with_edge_map(over, "sigmoid", png) if edge else over, baseline, writes, edges=edge)

    return {f"banet{suffix}_baseline": method(False, None), f"banet{suffix}": method(True, f"banet{suffix}_baseline")}


def _egcnn(bundle: str, writes: str) -> dict[str, Method]:
    out = {}
    for backbone in ("segresnet", "unet", "vnet", "cenet"):
        kwargs = {"backbone_kwargs": _CENET} if backbone == "cenet" else {}
        plain = {"backbone": backbone, "edge_stream": False, **kwargs}
        out[backbone] = Method(bundle, plain, None, writes)
        out[f"egcnn_{backbone}"] = Method(bundle, {"backbone": backbone, **kwargs}, backbone, writes)
    return out


def _image2d(bundle: str, writes: str) -> dict[str, Method]:
    """The methods of a 2D image task, trained through that task's CE-Net bundle (its data pipeline, crop, resize,
    flip TTA and PNG output): the plain 2D U-Net (MONAI's ``BasicUNet``) and CE-Net (the bundle's own network),
    EG-CNN on each, the 2D boundary-aware network against its no-edge-loss ablation, and ET-Net against its no-EGM
    ablation, BA-Net against its baseline without PEE, mini-MTL and CFF. Each pair shares one segmentation loss, so
    that a difference is the edges': EG-CNN's loss (squared Dice, the CE-Net paper's loss too; the plain member gets
    its Dice term alone), the boundary-aware loss with the edge weight 1 or 0, ET-Net's loss (its Lovász
    segmentation term alone without the EGM), BA-Net's loss (its decoder BCE alone for the baseline)."""
    io = {"spatial_dims": 2, "in_channels": "@image_channels", "out_channels": "@out_channels"}
    egcnn_loss = {"_target_": "edge_networks.EGCNNLoss", "out_channels": "@out_channels", "sigmoid": "@sigmoid"}

    def egcnn(backbone: str, edges: bool) -> dict:
        kwargs = {"norm": "@norm"} if backbone == "cenet" else {"features": [32, 32, 64, 128, 256, 32]}
        return {"network_def": {"_target_": "edge_networks.EGCNN", **io, "backbone": backbone,
                                "backbone_kwargs": kwargs, "edge_stream": edges, "edge_channels": 16},
                "loss": egcnn_loss}

    ba = {"network_def": {"_target_": "edge_networks.BoundaryAwareNet", **io, "features": [16, 32, 64, 128],
                          "shape_channels": 16, "aspp_channels": 32},
          "loss": {"_target_": "edge_networks.BoundaryAwareLoss", "edge_dice_weight": 0.5, "edge_bce_weight": 0.1,
                   "out_channels": "@out_channels", "sigmoid": "@sigmoid"}}
    return {
        "unet": Method(bundle, egcnn("unet", False), None, writes, edges=False),
        "egcnn_unet": Method(bundle, _with_edge_map(egcnn("unet", True), png=True), "unet", writes, edges=True),
        # the bundle's own CENet with EG-CNN's Dice term
        "cenet": Method(bundle, {"loss": egcnn_loss}, None, writes, edges=False),
        "egcnn_cenet": Method(bundle, _with_edge_map(egcnn("cenet", True), png=True), "cenet", writes, edges=True),
        "boundary_aware_no_edge_loss": Method(bundle, {**ba, "loss": {**ba["loss"], "edge_weight": 0.0}}, None, writes,
                                              edges=False),
        "boundary_aware": Method(bundle, _with_edge_map({**ba, "loss": {**ba["loss"], "edge_weight": 1.0}}, png=True),
                                 "boundary_aware_no_edge_loss", writes, edges=True),
        **_etnet(bundle, writes, 2, "@image_channels", "@out_channels", png=True),
        **_banet(bundle, writes, 2, "@image_channels", "@out_channels", png=True),
    }


@dataclass(frozen=True)
class Task:
    """A leaderboard task: its synthetic data (the 3D writers, or a 2D generator ``kind`` in ``layout``), the regions
    scored, the default and ``--smoke`` data shapes, and overrides every method gets (before ``--set``).
    ``shape`` is ``(x, y, z)`` for volumes and ``(height, width)`` for 2D images; 2D distances are in pixels."""

    layout: str
    regions: tuple[str, ...]
    shape: tuple[int, ...]
    smoke_shape: tuple[int, ...]
    smoke_extra: dict = field(default_factory=dict)
    kind: str | None = None  # the 2D generator (``write_2d_dataset``); None: a 3D task
    extra: dict = field(default_factory=dict)
    disc_window: float | None = None  # the disc crop (``disc_crop_size``) as a fraction of the image height

    def defaults(self, shape: Sequence[int]) -> dict:
        """Overrides every method gets on data of ``shape`` (before the user's)."""
        out = dict(self.extra)
        if self.disc_window:
            side = int(round(self.disc_window * shape[0]))
            out["disc_crop_size"] = [side, side]
        return out

    @property
    def spatial_dims(self) -> int:
        return 2 if self.kind else 3

    @property
    def unit(self) -> str:
        return "px" if self.kind else "mm"


TASKS: dict[str, Task] = {
    "brats": Task("brats2021", ("WT", "TC", "ET"), (96, 96, 64), (40, 40, 28), {"roi_size": [32, 32, 32]}),
    "kits": Task("kits19", ("kidney+tumour", "tumour"), (48, 192, 192), (16, 48, 48),
                 {"roi_size": [32, 32, 32], "spacing": [6.0, 6.0, 6.0], "num_samples": 1}),
    # ORIGA-layout photographs, 512x768 by default; the disc window scaled from the paper's 800 px of 2048 rows
    "fundus_od": Task("origa", ("disc",), (512, 768), (256, 384), {"roi_size": [64, 64]}, kind="fundus",
                      disc_window=800 / 2048),
}

METHODS: dict[str, dict[str, Method]] = {
    "brats": {
        **_egcnn("egcnn_brats", "brats"),
        "boundary_aware_3d_no_edge_loss": Method("boundary_aware_brats3d", {"edge_loss_weight": 0.0}, None, "tc"),
        "boundary_aware_3d": Method("boundary_aware_brats3d", {}, "boundary_aware_3d_no_edge_loss", "tc"),
        # the 2D network on axial slices (the paper's setting), run slice by slice over the same whole volumes
        "boundary_aware_2d_no_edge_loss": Method("boundary_aware_brats", {"edge_loss_weight": 0.0}, None, "tc"),
        "boundary_aware_2d": Method("boundary_aware_brats", {}, "boundary_aware_2d_no_edge_loss", "tc"),
        # CE-Net in 2D (the paper's network) and EG-CNN on it, on the same slices, loss and schedule
        "cenet_2d": Method("boundary_aware_brats", {**_CENET_2D, "edge_stream": False}, None, "tc"),
        "egcnn_cenet_2d": Method("boundary_aware_brats", _EGCNN_CENET_2D, "cenet_2d", "tc"),
        # ET-Net in 2D on the same slices and in 3D on EG-CNN's region pipeline (ResNet-50: not run on the CPU)
        **_etnet("boundary_aware_brats", "tc", 2, 1, 1, "_2d", ["group", {"num_groups": 8}]),
        **_etnet("egcnn_brats", "brats", 3, 4, 3, "_3d", ["group", {"num_groups": 8}]),
        # BA-Net in 2D on the slices and in 3D (ResNet-50 at output stride 8: not run on the CPU)
        **_banet("boundary_aware_brats", "tc", 2, 1, 1, "_2d", ["group", {"num_groups": 8}]),
        **_banet("egcnn_brats", "brats", 3, 4, 3, "_3d", ["group", {"num_groups": 8}]),
    },
    "kits": {**_egcnn("egcnn_kits", "kits"),
             **_banet("egcnn_kits", "kits", 3, 1, 3, "_3d", ["group", {"num_groups": 8}], sigmoid=False)},
    "fundus_od": _image2d("cenet_fundus_od", "disc"),
}
# the methods trained with edge supervision (the plot colours them)
METHOD_HAS_EDGES = {name for task in METHODS.values() for name, m in task.items() if m.has_edges}
REGIONS = {name: task.regions for name, task in TASKS.items()}


def paired_bootstrap(diffs: Sequence[float], n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of paired differences and its bootstrap 95 % interval (NaN pairs dropped)."""
    d = np.asarray([x for x in diffs if np.isfinite(x)], dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    means = d[np.random.default_rng(seed).integers(0, d.size, (n, d.size))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _workflow(method: Method, kind: str, root: Path, **extra):
    from monai.bundle import ConfigWorkflow

    configs = bundles_dir() / method.bundle / "configs"
    wf = ConfigWorkflow(config_file=str(configs / ("train.json" if kind == "train" else "inference.json")),
                        meta_file=str(configs / "metadata.json"), workflow_type=kind, bundle_root=str(root),
                        num_workers=0, **{**method.overrides, **extra})
    wf.initialize()
    return wf


# the regions whose edges a bundle's saved edge map (``--save_edges true``: one channel, the maximum over its
# edge channels) covers
EDGE_REGIONS = {"brats": ("TC", "WT", "ET"), "tc": ("TC",), "disc": ("disc",), "kits": ("kidney+tumour", "tumour")}


def _score(method: Method, task: str, pred: Path, item: dict, edge: Path | None = None) -> dict[str, float]:
    """Per region: Dice, HD95 (mm; pixels for 2D images), boundary F at 1 and 2 voxels; with ``edge`` (the edge
    head's probability map) the edge head's own F-score at 2 voxels against the label's Sobel-support edges
    (``edge_bf2``). A 2D task's ground truth is its mask file through the layout's :class:`transforms.LayoutMask`,
    the prediction the bundle's 0/255 PNG at the image's size."""
    t = TASKS[task]
    if t.kind:
        spacing = [1.0, 1.0]
        gt = region_masks(read_2d(item["label"], t.layout), method.writes)
        pr = region_masks(read_2d(pred), method.writes)
    else:
        gt_img = nib.load(item["label"])
        spacing = [float(s) for s in gt_img.header.get_zooms()[:3]]
        gt = region_masks(np.asarray(gt_img.dataobj), task)
        pr = region_masks(np.asarray(nib.load(str(pred)).dataobj), method.writes)
    out = {}
    for region, p in pr.items():
        g = gt[region]
        if p.shape != g.shape:
            raise ValueError(f"{pred}: prediction of shape {p.shape}, ground truth {item['label']} {g.shape}")
        out[f"{region}/dice"] = dice(p, g)
        out[f"{region}/hd95_{t.unit}"] = hd95(p, g, spacing)
        out[f"{region}/bf1"] = boundary_f_score(p, g, tolerance=1)
        out[f"{region}/bf2"] = boundary_f_score(p, g, tolerance=2)
    if edge is not None and method.writes in EDGE_REGIONS:
        regions = EDGE_REGIONS[method.writes]
        out["edges/edge_bf2"] = (score_edge_head(edge, item["label"], regions, method.writes, layout=t.layout)
                                 if t.kind else score_edge_head(edge, item["label"], regions, task))["bf2"]
    return out


class PeakMemory:
    """Peak memory of a phase, in MiB: on CUDA ``torch.cuda.max_memory_allocated`` (tensors only); on the CPU the
    peak resident set size of this process above its size when the phase began (after ``gc`` and glibc's
    ``malloc_trim``), sampled every ``interval`` s from ``/proc/self/statm`` (Linux; elsewhere ``nan``).

    >>> with PeakMemory() as mem:
    ...     x = np.ones((64, 1024, 1024), np.float32)  # 256 MiB
    >>> mem.mib > 200
    True
    """

    def __init__(self, interval: float = 0.02):
        self.interval, self.mib = interval, float("nan")

    @staticmethod
    def _rss() -> int | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self):
        import torch

        self._cuda = torch.cuda.is_available()
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        gc.collect()
        try:  # hand freed heap back to the system, so that an earlier phase's freed memory is not reused unseen
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self._base = self._rss()
        self._peak = self._base
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(self.interval):
                rss = self._rss()
                if rss is not None:
                    self._peak = max(self._peak, rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        if self._base is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch

        if self._cuda:
            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self._base) / 2**20
            return False
        if self._base is None:
            return False
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss() or 0)
        self.mib = (self._peak - self._base) / 2**20
        return False


def _time_budget(wf, minutes: float) -> None:
    """Stop ``wf``'s trainer after the last epoch that fits in ``minutes`` (from the mean epoch time so far)."""
    from ignite.engine import Events

    start = time.perf_counter()

    def check(engine):
        elapsed = time.perf_counter() - start
        if elapsed * (engine.state.epoch + 1) / engine.state.epoch > minutes * 60:
            engine.terminate()

    wf.trainer.add_event_handler(Events.EPOCH_COMPLETED, check)


def run_leaderboard(task: str, out: str | Path, methods: Sequence[str], seeds: int = 1, epochs: int = 10,
                    cases: int = 16, shape: Sequence[int] | None = None, difficulty: str = "easy",
                    small: bool = False, extra: dict | None = None, minutes: float | None = None,
                    montage: bool = True, val_fraction: float | None = None) -> dict:
    """Train and score ``methods`` on one synthetic ``task`` dataset; write the tables, the plot and the montage;
    return the summary.

    Args:
        task: ``"brats"`` or ``"kits"`` (the keys of ``METHODS``).
        out: output folder (the data, every run, and the tables).
        methods: entries of ``METHODS[task]``.
        seeds: seeds 0 .. seeds - 1 per method (the split and the data do not change with it).
        epochs: training epochs, the same for every method; with ``minutes`` the most any method may run.
        cases: synthetic cases generated (split by ``prepare_datalist``: the validation part is held out).
        shape: volume shape (default 96x96x64 BraTS, 48x192x192 KiTS).
        difficulty: the generator's ``"easy"`` or ``"hard"`` mode.
        small: narrow networks (the bundles' CPU widths).
        extra: further overrides for every method (for example ``roi_size``; 2D methods get the first two values).
        minutes: a training time budget per method and seed instead of a fixed epoch count: each stops after the
            last epoch that fits, and the table says how many epochs it reached.
        montage: write ``montage.png`` (one held-out case segmented by every method, seed 0).
        val_fraction: the held-out fraction of the cases (default: the layout's, 0.2).
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(methods) - set(METHODS[task])
    if unknown:
        raise ValueError(f"unknown {task} method(s) {sorted(unknown)}; registered: {sorted(METHODS[task])}")
    data = out / "data"
    t = TASKS[task]
    layout = t.layout
    shape = tuple(shape or t.shape)
    if len(shape) != t.spatial_dims:
        raise ValueError(f"{task}: shape {list(shape)} needs {t.spatial_dims} values "
                         f"({'height, width' if t.kind else 'x, y, z'})")
    # a second call on the same folder resumes: the data is kept, finished runs (run.json) are not trained again
    setting = {"task": task, "cases": cases, "shape": list(shape), "difficulty": difficulty, "epochs": epochs,
               "small": small, "extra": extra or {}, "minutes": minutes, "val_fraction": val_fraction}
    setting = json.loads(json.dumps(setting))  # as saved: tuples become lists
    saved = out / "setting.json"
    if saved.is_file() and json.loads(saved.read_text()) != setting:
        raise ValueError(f"{out} holds a leaderboard with other settings ({saved}: {saved.read_text().strip()}); "
                         "use a new --out folder")
    if not saved.is_file() or not (out / "datalist.json").is_file():
        if t.kind:
            write_2d_dataset(t.kind, layout, data, cases=cases, seed=0, difficulty=difficulty, size=shape)
        else:
            writer = write_brats_dataset if task == "brats" else write_kits_dataset
            writer(data, cases, shape, seed=0, progress=False, difficulty=difficulty)
        saved.write_text(json.dumps(setting))
    datalist = prepare_datalist(layout, data, out / "datalist.json", seed=0, val_fraction=val_fraction)
    # scored on the release's labelled test images where it has them (ORIGA's Set B, the papers' test split), else on
    # the validation cases (which, then, also pick nothing: one validation at the end of training)
    held_out = [it for it in datalist.get("testing", []) if "label" in it] or datalist["validation"]
    rows, info = [], {}
    for name in methods:
        method = METHODS[task][name]
        over = {**t.defaults(shape), **(extra or {})}
        two_d = method.bundle in BUNDLES_2D
        if two_d:  # whole axial slices at the volume's own in-plane size (no resampling)
            over["roi_size"] = list(shape[:2])
            if "cenet" in name:  # CE-Net needs sizes divisible by 32: the slices are resized up to that
                over["roi_size"] = [-(-s // 32) * 32 for s in shape[:2]]
        if t.kind:  # a 2D image bundle: its own widths; small: its cpu_small profile (128x128, Adam 1e-3, batch 4)
            if small:
                profile = json.loads((bundles_dir() / method.bundle / "configs" / "cpu_small.json").read_text())
                skip = ("epochs", "val_interval", "num_workers")  # the leaderboard's own
                over = {**{k: v for k, v in profile.items() if k not in skip}, **over}
        elif small and "network_def" in method.overrides:  # a network given whole: the paper's widths
            pass
        elif small:
            backbone = method.overrides.get("backbone", "segresnet")
            over.update({"backbone_kwargs": _SMALL_BACKBONE[backbone], "edge_channels": 8}
                        if method.bundle.startswith("egcnn") else
                        {"features": [8, 16, 32, 64], "shape_channels": 8, "aspp_channels": 16})
        for seed in range(seeds):
            root = out / "runs" / f"{name}_seed{seed}"
            edges = method.has_edges and method.writes in EDGE_REGIONS  # its edge head's map is written
            done = root / "run.json"
            if done.is_file():
                info.setdefault(name, []).append(json.loads(done.read_text()))
            else:
                info.setdefault(name, []).append(_train_and_infer(method, root, data, out, held_out, epochs, seed,
                                                                  over, minutes, bool(edges)))
                done.write_text(json.dumps(info[name][-1]))
            for item in held_out:
                pred, edge = _outputs(root / "pred", item, t)
                rows.append({"method": name, "seed": seed, "case": item["case_id"],
                             **_score(method, task, pred, item, edge if edges else None)})
    info = {name: {k: (float(np.median([r[k] for r in runs])) if k != "params" else runs[0][k]) for k in runs[0]}
            for name, runs in info.items()}
    summary = _write_tables(task, out, methods, rows, info, epochs, seeds, difficulty, minutes)
    plot_leaderboard(summary, out / "leaderboard.png")
    if montage and held_out:
        write_montage(task, out, methods, held_out[0])
    return summary


def _outputs(pred_dir: Path, item: dict, task: Task) -> tuple[Path, Path | None]:
    """A held-out item's label map and (where written) edge map in a run's ``pred`` folder."""
    if task.kind:  # <image stem>_seg.png (the 2D bundles' output_stem naming)
        from .data.image2d import output_stem

        stem = output_stem(item["image"], item.get("page"))
        found = sorted(pred_dir.glob(f"{stem}_seg.*"))
        if not found:
            raise FileNotFoundError(f"no prediction {stem}_seg.* for {item['image']} in {pred_dir}")
        edge = pred_dir / f"{stem}_edge.png"  # written only where the method has an edge head
        return found[0], edge if edge.is_file() else None
    pred = next(pred_dir.glob(f"{item['case_id']}*_seg.nii.gz"))
    return pred, next((p for p in pred_dir.glob(f"{item['case_id']}*.nii.gz") if p != pred), None)


def _train_and_infer(method: Method, root: Path, data: Path, out: Path, held_out: list, epochs: int, seed: int,
                     over: dict, minutes: float | None, edges: bool) -> dict:
    """One run: train through the bundle's ``train.json``, segment ``held_out`` with ``inference.json``; returns
    the run's cost (parameters, epochs reached, s/iteration, s/volume, peak memory)."""
    t0 = time.perf_counter()
    wf = _workflow(method, "train", root, dataset_dir=str(data),
                   data_list_file_path=str(out / "datalist.json"), epochs=epochs, val_interval=epochs,
                   seed=seed, **over)
    params = sum(p.numel() for p in wf.network_def.parameters())
    if minutes:
        _time_budget(wf, minutes)
    with PeakMemory() as train_mem:  # the training loop and its validation
        wf.run()
        reached = int(wf.trainer.state.epoch)
        if reached < epochs:  # stopped by the budget: the one validation saves model.pt
            wf.parser.get_parsed_content("validate#evaluator").run(reached)
    iterations = int(wf.trainer.state.iteration)
    wf.finalize()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    wf = _workflow(method, "infer", root, output_dir=str(root / "pred"), save_edges=edges,
                   datalist=[{k: it[k] for k in ("image", "page") if k in it} for it in held_out], **over)
    with PeakMemory() as infer_mem:
        wf.run()
    wf.finalize()
    infer_s = (time.perf_counter() - t0) / max(len(held_out), 1)
    return {"params": params, "epochs": reached, "s_per_iteration": train_s / max(iterations, 1),
            "s_per_volume": infer_s, "train_peak_mib": train_mem.mib, "infer_peak_mib": infer_mem.mib}


def _write_tables(task, out: Path, methods, rows, info, epochs, seeds, difficulty, minutes=None) -> dict:
    unit = TASKS[task].unit
    keys = sorted({k for r in rows for k in r} - {"method", "seed", "case"})
    with open(out / "per_case.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["method", "seed", "case", *keys])
        w.writeheader()
        w.writerows(rows)
    table = []
    for name in methods:
        mine = [r for r in rows if r["method"] == name]
        for region in REGIONS[task]:
            vals = {m: [r.get(f"{region}/{m}", np.nan) for r in mine]
                    for m in ("dice", f"hd95_{unit}", "bf1", "bf2")}
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
    budget = f"up to {epochs} epochs in {minutes:g} min per run" if minutes else f"{epochs} epochs"
    lines = [f"# Leaderboard: {task}, {difficulty}, {budget}, {seeds} seed(s)", "",
             f"| method | region | Dice | HD95 ({unit}) | BF@1 | BF@2 | edge head BF@2 | params | epochs | s/iter "
             "| s/volume | train peak MiB | inference peak MiB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in table:
        lines.append(f"| {t['method']} | {t['region']} | {t['dice']:.3f} ± {t['dice_std']:.3f} "
                     f"| {t[f'hd95_{unit}']:.2f} "
                     f"| {t['bf1']:.3f} | {t['bf2']:.3f} | {t['edge_bf2']:.3f} | {t['params']:,} | {t['epochs']:g} | "
                     f"{t['s_per_iteration']:.2f} | {t['s_per_volume']:.2f} | {t['train_peak_mib']:.0f} | "
                     f"{t['infer_peak_mib']:.0f} |")
    if paired:
        lines += ["", "| edge method | vs | region | Dice difference | 95 % bootstrap interval | pairs |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {p['method']} | {p['baseline']} | {p['region']} | {p['dice_diff']:+.3f} | "
                  f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}] | {p['pairs']} |" for p in paired]
    (out / "leaderboard.md").write_text("\n".join(lines) + "\n")
    summary = {"task": task, "difficulty": difficulty, "epochs": epochs, "minutes": minutes, "seeds": seeds,
               "table": table, "paired": paired}
    (out / "leaderboard.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(lines))
    return summary


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _has_edges(task: str | None, name: str) -> bool:
    if task in METHODS and name in METHODS[task]:
        return METHODS[task][name].has_edges
    return name in METHOD_HAS_EDGES


def plot_leaderboard(summary: dict, path: str | Path) -> Path:
    """Bar chart of the leaderboard: per region, each method's mean Dice (bar, grey for methods without an edge
    loss or stream, blue with), its standard deviation over (case, seed) (whisker) and boundary F at 2 voxels
    (orange dot). Drawn with Pillow, which the project already uses, rather than a plotting library."""
    from PIL import Image, ImageDraw

    table = summary["table"]
    regions = list(dict.fromkeys(t["region"] for t in table))
    per_region = {r: [t for t in table if t["region"] == r] for r in regions}
    bar, gap, left, top, plot_h = 22, 36, 50, 48, 260
    label_h = int(6.5 * max(len(t["method"]) for t in table)) + 8
    width = max(left + sum(len(rows) * bar + gap for rows in per_region.values()) + 20, 560)
    img = Image.new("RGB", (width, top + plot_h + label_h + 30), "white")
    d = ImageDraw.Draw(img)
    small, big = _font(11), _font(13)
    budget = (f"<= {summary['epochs']} epochs in {summary['minutes']:g} min" if summary.get("minutes")
              else f"{summary['epochs']} epochs")
    d.text((8, 6), f"{summary['task']} ({summary['difficulty']}), {budget}, {summary['seeds']} seed(s)",
           fill="black", font=big)
    d.text((8, 24), "Dice: bars (blue: edge supervision, grey: none), whisker +-1 sd; orange dot: boundary F@2",
           fill=(60, 60, 60), font=small)
    y = lambda v: top + plot_h * (1 - v)  # noqa: E731
    for tick in np.linspace(0, 1, 6):
        d.line([(left - 4, y(tick)), (width - 10, y(tick))], fill=(225, 225, 225))
        d.text((14, y(tick) - 6), f"{tick:.1f}", fill="black", font=small)
    x = left + gap // 2
    for region, rows in per_region.items():
        d.text((x, top + plot_h + 4), region, fill="black", font=big)
        for row in rows:
            colour = (70, 120, 200) if _has_edges(summary.get("task"), row["method"]) else (160, 160, 160)
            dice_v = float(row["dice"]) if np.isfinite(row["dice"]) else 0.0
            d.rectangle([x + 2, y(dice_v), x + bar - 3, y(0)], fill=colour)
            if np.isfinite(row["dice_std"]):
                lo, hi = max(dice_v - row["dice_std"], 0), min(dice_v + row["dice_std"], 1)
                d.line([(x + bar // 2, y(lo)), (x + bar // 2, y(hi))], fill="black", width=1)
            if np.isfinite(row["bf2"]):
                cy = y(row["bf2"])
                d.ellipse([x + bar // 2 - 3, cy - 3, x + bar // 2 + 3, cy + 3], fill=(240, 140, 20))
            label = Image.new("RGB", (label_h, bar - 4), "white")
            ld = ImageDraw.Draw(label)  # right-aligned, so that the rotated name ends under its bar
            ld.text((label_h - ld.textlength(row["method"], font=small) - 2, 2), row["method"], fill="black",
                    font=small)
            img.paste(label.rotate(90, expand=True), (x + 2, top + plot_h + 22))
            x += bar
        x += gap
    path = Path(path)
    img.save(path)
    return path


def write_montage(task: str, out: Path, methods: Sequence[str], item: dict, seed: int = 0) -> Path | None:
    """``montage.png``: one held-out case, the axial slice with the most foreground; the image and the ground
    truth, then per method its label map and (where it has an edge head) its edge probability map."""
    from .visualize import overlay, save_montage, to_uint8

    t = TASKS[task]
    if t.kind:
        return _montage_2d(t, out, methods, item, seed)
    gt = np.asarray(nib.load(item["label"]).dataobj)
    images = item["image"] if isinstance(item["image"], (list, tuple)) else [item["image"]]
    image = np.asarray(nib.load(images[0]).dataobj, dtype=np.float32)  # FLAIR (BraTS layouts list it first), CT
    if image.ndim == 4:
        image = image[..., -1]
    axis = 0 if task == "kits" else 2  # KiTS 2019 stores the slices first
    z = int(np.argmax((gt > 0).sum(axis=tuple(a for a in range(3) if a != axis))))
    take = lambda v: np.rot90(np.take(v, z, axis=axis))  # noqa: E731
    gray = to_uint8(take(image))
    rows = [("image | ground truth", [gray, overlay(gray, take(gt))])]
    for name in methods:
        pred_dir = out / "runs" / f"{name}_seed{seed}" / "pred"
        preds = sorted(pred_dir.glob(f"{item['case_id']}*.nii.gz"))
        seg = next((p for p in preds if p.name.endswith("_seg.nii.gz")), None)
        if seg is None:
            continue
        tiles = [overlay(gray, take(np.asarray(nib.load(seg).dataobj)))]
        for p in preds:
            if p != seg:
                edge = np.asarray(nib.load(p).dataobj, dtype=np.float32).reshape(gt.shape)
                tiles.append(to_uint8(take(edge), 0.0, 1.0))
        rows.append((name + (" | edge head" if len(tiles) > 1 else ""), tiles))
    return save_montage(rows, out / "montage.png", scale=2)


def _montage_2d(task: Task, out: Path, methods: Sequence[str], item: dict, seed: int) -> Path:
    """The 2D montage: the photograph (its green channel, where the disc and vessels show best) with the ground
    truth, then each method's mask and, where it has an edge head, that head's probability map, all cropped to the
    ground truth's bounding box with a margin of its size."""
    from .visualize import overlay, save_montage, to_uint8

    image = read_2d(item["image"])
    gray_full = image[1] if image.ndim == 3 and image.shape[0] >= 3 else image.reshape(image.shape[-2:])
    gt = read_2d(item["label"], task.layout) > 0
    box = np.argwhere(gt)
    if box.size:  # the structure and a margin as large as itself
        lo, hi = box.min(0), box.max(0) + 1
        lo, hi = np.maximum(lo - (hi - lo), 0), np.minimum(hi + (hi - lo), gt.shape)
    else:
        lo, hi = np.zeros(2, int), np.array(gt.shape)
    crop = lambda v: v[lo[0]:hi[0], lo[1]:hi[1]].T  # (W, H) -> (H, W), as the photograph  # noqa: E731
    gray = to_uint8(crop(gray_full))
    tiles = [("image", gray), ("ground truth", overlay(gray, crop(gt.astype(np.uint8))))]
    for name in methods:
        try:
            pred, edge = _outputs(out / "runs" / f"{name}_seed{seed}" / "pred", item, task)
        except FileNotFoundError:
            continue
        tiles.append((name, overlay(gray, crop((read_2d(pred) > 0).astype(np.uint8)))))
        if edge is not None:  # the edge head's probability map
            tiles.append((f"{name} edge head", crop(read_2d(edge)).astype(np.uint8)))
    per_row = 4  # a grid, each row titled by its tiles' names
    rows = [(" | ".join(n for n, _ in tiles[i:i + per_row]), [t for _, t in tiles[i:i + per_row]])
            for i in range(0, len(tiles), per_row)]
    return save_montage(rows, out / "montage.png", scale=2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_networks.leaderboard", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(METHODS), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", nargs="+", help="default: every registered method of the task")
    parser.add_argument("--difficulty", choices=("easy", "hard"), default="easy")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (with --minutes: at most)")
    parser.add_argument("--minutes", type=float, help="training time budget per method and seed (stops after the "
                        "last epoch that fits; the table reports the epochs reached)")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--shape", type=int, nargs="+", help="volume x y z, or 2D image height width")
    parser.add_argument("--held-out", type=float, help="fraction of the cases held out (default 0.2)")
    parser.add_argument("--small", action="store_true", help="narrow networks (the bundles' CPU profile widths)")
    parser.add_argument("--roi-size", type=int, nargs="+", help="training crop and inference window (2D: 2 values)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=JSON",
                        help="further bundle overrides for every method, e.g. spacing=[3,3,4.5] num_samples=1")
    parser.add_argument("--smoke", action="store_true",
                        help="SegResNet vs EG-CNN, narrow networks, 8 tiny cases, 2 epochs, 1 seed")
    parser.add_argument("--bundles", default=None,
                        help=f"the bundles folder (default: ${BUNDLES_ENV}, else the source checkout's bundles/)")
    args = parser.parse_args(argv)
    try:
        os.environ[BUNDLES_ENV] = str(bundles_dir(args.bundles))  # the bundle processes it starts find them too
    except FileNotFoundError as e:
        parser.error(str(e))
    task = TASKS[args.task]
    if args.smoke:
        methods = args.methods or (["unet", "egcnn_unet"] if task.kind else ["segresnet", "egcnn_segresnet"])
        run_leaderboard(args.task, args.out, methods, 1, 2, 8, task.smoke_shape, args.difficulty, small=True,
                        extra=dict(task.smoke_extra))
        return 0
    extra = {"roi_size": list(args.roi_size)} if args.roi_size else {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=JSON")
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value  # a plain string
    run_leaderboard(args.task, args.out, args.methods or list(METHODS[args.task]), args.seeds, args.epochs,
                    args.cases, args.shape, args.difficulty, small=args.small, extra=extra, minutes=args.minutes,
                    val_fraction=args.held_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
