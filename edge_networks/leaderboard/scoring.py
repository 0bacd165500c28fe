"""Scoring a leaderboard run: a held-out case's written maps against its ground truth, and paired differences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from ..metrics import boundary_f_score, dice, hd95, read_2d, region_masks, score_edge_head
from .registry import TASKS, Method, Task

__all__ = ["score_case", "case_outputs", "paired_bootstrap"]


def paired_bootstrap(diffs: Sequence[float], n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of paired differences and its bootstrap 95 % interval (NaN pairs dropped).

    >>> paired_bootstrap([0.1, 0.1])[0]
    0.1
    """
    d = np.asarray([x for x in diffs if np.isfinite(x)], dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    means = d[np.random.default_rng(seed).integers(0, d.size, (n, d.size))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def score_case(method: Method, task: str, pred: str | Path, item: dict, edge: str | Path | None = None
               ) -> dict[str, float]:
    """Per region: Dice, HD95 (mm; pixels for 2D images), boundary F at 1 and 2 voxels (``<region>/<metric>``);
    with ``edge`` (the edge head's probability map) the edge head's own F-score at 2 voxels against the union of
    the written convention's regions' Sobel-support edges (``edges/edge_bf2``). The ground truth follows the task's
    label convention (a 2D task's mask file read through the layout's :class:`transforms.LayoutMask`), the
    prediction ``method.writes`` (a 2D bundle's 0/255 PNG at the image's size).

    Raises:
        ValueError: the prediction's shape is not the ground truth's (a transposed or resized map is refused).
    """
    t = TASKS[task]
    if t.generator:
        spacing = [1.0, 1.0]
        gt = region_masks(read_2d(item["label"], t.layout), method.writes)
        pr = region_masks(read_2d(pred), method.writes)
    else:
        gt_img = nib.load(item["label"])
        spacing = [float(s) for s in gt_img.header.get_zooms()[:3]]
        gt = region_masks(np.asarray(gt_img.dataobj), t.convention)
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
    if edge is not None:
        regions = tuple(pr)  # the edge map covers the regions of the convention the method writes
        scores = (score_edge_head(edge, item["label"], regions, method.writes, layout=t.layout) if t.generator
                  else score_edge_head(edge, item["label"], regions, t.convention))
        out["edges/edge_bf2"] = scores["bf2"]
    return out


def case_outputs(pred_dir: Path, item: dict, task: Task) -> tuple[Path, Path | None]:
    """A held-out item's label map and (where written) edge map in a run's ``pred`` folder.

    Raises:
        FileNotFoundError: no label map for the item.
    """
    if task.generator:  # <image stem>_seg.png (the 2D bundles' output_stem naming); the edge map <stem>_<postfix>.png
        from transforms.image2d import output_stem

        stem = output_stem(item["image"], item.get("page"))
        found = sorted(pred_dir.glob(f"{stem}_seg.*"))
        if not found:
            raise FileNotFoundError(f"no prediction {stem}_seg.* for {item['image']} in {pred_dir}")
        edge = next((p for p in (pred_dir / f"{stem}_edge.png", pred_dir / f"{stem}_boundary.png") if p.is_file()),
                    None)
        return found[0], edge
    found = sorted(pred_dir.glob(f"{item['case_id']}*_seg.nii.gz"))
    if not found:
        raise FileNotFoundError(f"no prediction {item['case_id']}*_seg.nii.gz in {pred_dir}")
    pred = found[0]
    return pred, next((p for p in sorted(pred_dir.glob(f"{item['case_id']}*.nii.gz")) if p != pred), None)
