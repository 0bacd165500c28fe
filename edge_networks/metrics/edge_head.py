"""Scores of an edge head's saved map: the region masks of a label map, the head's training target (the regions'
Sobel-support edges), and boundary-or-blob scores (:func:`edge_map_scores` on files). The demo, the leaderboard and
the edge-head benchmarks use these."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from transforms import LayoutMask, LoadImage2D, label_to_edge
from transforms.labels import BRATS_CONVENTIONS, KITS_CONVENTION, KITS_REGIONS

from .segmentation2d import edge_map_scores

__all__ = ["region_masks", "read_2d", "edge_target", "score_edge_head"]


def region_masks(label: np.ndarray, writes: str) -> dict[str, np.ndarray]:
    """The region masks of a label map, by the convention its labels follow, with the region names of
    :mod:`transforms.labels`: ``brats`` (:data:`~transforms.labels.BRATS_CONVENTIONS`: WT, TC, ET), ``tc`` (1 = tumour
    core: TC), ``disc`` (a 2D binary target or a written 0/255 mask), ``kits``
    (:data:`~transforms.labels.KITS_CONVENTION`: ``kidneys`` = 1 or 2, ``tumour`` = 2).

    Raises:
        ValueError: an unknown ``writes``.

    >>> sorted(region_masks(np.array([0, 1, 2, 4]), "brats")["TC"].nonzero()[0].tolist())
    [1, 3]
    >>> list(region_masks(np.array([0, 1, 2]), "kits"))
    ['kidneys', 'tumour']
    """
    if writes == "brats":
        conv = BRATS_CONVENTIONS["brats"]
        return {r: np.isin(label, conv[r]) for r in ("WT", "TC", "ET")}
    if writes == "tc":
        return {"TC": label == 1}
    if writes == "disc":  # a 2D task's binary target (LayoutMask) or written 0/255 mask
        return {"disc": label > 0}
    if writes == "kits":
        return {r: np.isin(label, KITS_CONVENTION[r]) for r in KITS_REGIONS}
    raise ValueError(f"unknown label convention {writes!r}; choose one of ['brats', 'tc', 'kits', 'disc']")


def read_2d(path: str | Path, layout: str | None = None) -> np.ndarray:
    """A 2D image file as the bundles read it (``(W, H)``, :class:`transforms.LoadImage2D`); with ``layout``, a
    mask file turned into that layout's binary target (:class:`transforms.LayoutMask`)."""
    img = LoadImage2D()(str(path))
    if layout:
        img = LayoutMask(layout)(img)
    return np.asarray(img)[0] if layout or img.shape[0] == 1 else np.asarray(img)


def edge_target(masks: Sequence[np.ndarray]) -> np.ndarray:
    """An edge head's training target on a whole image: the union of the region masks' Sobel-support edges
    (``label_to_edge(mode="both")``: the voxels on either side of each region's boundary), as a bool array of the
    masks' shape (2D or 3D)."""
    stack = np.stack([np.asarray(m, dtype=bool) for m in masks])
    return label_to_edge(torch.as_tensor(stack[None]), stack.ndim - 1, mode="both", merge=True)[0, 0].numpy() > 0


def score_edge_head(edge: str | Path, label: str | Path, regions: Sequence[str] = ("WT", "TC", "ET"),
                    convention: str = "brats", threshold: float = 0.5, layout: str | None = None) -> dict[str, float]:
    """Score an edge head's saved probability map (one channel, same grid as ``label``) against the label's edges
    (:func:`edge_networks.metrics.edge_map_scores` on the files). With ``layout`` (a 2D task) both are 2D images:
    the map an 8-bit PNG (probability x 255, the bundles' ``split_edges``), the label a mask file read through the
    layout's :class:`transforms.LayoutMask`; distances in pixels.

    Two references: the head's training target, the union of the ``regions``' Sobel-support edges
    (``label_to_edge(mode="both")``: the voxels on either side of each boundary, two voxels thick), and the thin
    boundary, the union of each region's one-voxel inner boundary (``mask & ~erosion(mask)``). On small tumours
    the target itself covers much of the tumour (nested regions, two voxels each), so the thin boundary is the
    stricter test of "a boundary, not a blob".

    Returns:
        ``bf1``, ``bf2``: edge F-score at 1 and 2 voxels against the training target (the leaderboard's
        ``edge_bf2``); ``thin_bf1``, ``thin_bf2``: the same against the thin boundary; ``interior``: the share of
        predicted edge voxels (probability > ``threshold``) more than 2 voxels from every thin boundary (0 for a
        boundary, large for a blob); ``thickness``: predicted edge voxels per thin-boundary voxel (about 2 for a
        perfect copy of the target on large, well separated regions; more for a blob).
    """
    if layout:
        gt = region_masks(read_2d(label, layout), convention)
        prob = read_2d(edge).astype(np.float32) / 255.0
        shape = next(iter(gt.values())).shape
        if prob.shape != shape:
            raise ValueError(f"{edge}: edge map of shape {prob.shape}, ground truth {label} {shape}")
        pred = prob > threshold
    else:
        gt_img = nib.load(str(label))
        gt = region_masks(np.asarray(gt_img.dataobj), convention)
        pred = np.asarray(nib.load(str(edge)).dataobj).reshape(gt_img.shape[:3]) > threshold
    masks = [gt[r] for r in regions]
    return edge_map_scores(pred, masks, edge_target(masks))
