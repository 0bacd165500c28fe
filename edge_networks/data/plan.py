"""A dataset's fingerprint and the plan a generated bundle takes from it, after nnU-Net's rules.

The fingerprint (:func:`compute_fingerprint`) is measured once on the labelled training cases: each case's voxel
spacing and shape (in RAS axis order, as the bundles resample), the intensities of every image channel inside the
foreground (label > 0; up to ``samples_per_case`` seeded samples per case, pooled: mean, standard deviation,
median, minimum, maximum, 0.5 and 99.5 percentiles), which channels are CT, and the fraction of labelled voxels
of each label value.

The plan (:func:`make_plan`) follows nnU-Net v2's published rules (Isensee et al., Nature Methods 2021, and its
``ExperimentPlanner``):

- **target spacing**: the median spacing per axis; for anisotropic data (the coarsest axis' median spacing more
  than 3 times the finest other axis', and its median voxel count less than a third of the smallest other's),
  that axis takes the 10th percentile of its spacings instead, but never finer than the other axes;
- **normalisation** by channel name, as nnU-Net reads ``channel_names``: ``CT`` -> clip to the foreground's 0.5
  and 99.5 percentiles and z-score with the foreground's mean and standard deviation; ``noNorm`` -> none;
  ``rgb_to_0_1`` -> divide by 255; any other name -> per-image z-score;
- **patch size**: proportional to 1/spacing at a starting volume of 256^3 voxels (2D: 2048^2), clipped to the
  median shape at the target spacing, rounded down to a multiple of 32 (every network's downsampling factor),
  then the axis largest relative to the median shape shrunk by 32 until the patch holds at most ``max_voxels``;
- **2D or 3D**: the dataset's own (2D image files -> 2D networks);
- batch size 2 (3D) or 8 (2D).

Where this differs from nnU-Net: nnU-Net measures shapes after cropping each case to its non-zero region and
estimates the GPU memory of its own U-Net for the patch budget; here shapes are those of the files and the
budget is a voxel count (``max_voxels``: 128^3 in 3D, 512^2 in 2D by default, the shipped bundles' windows), because
the networks differ; nnU-Net's z-score uses the non-zero mask when cropping shrank the images by a quarter or
more, here it always uses the whole image; nnU-Net also plans a 2D configuration for 3D data, here 3D data gets
3D networks.

The result is saved next to the dataset as ``edge_seg_plan.json`` (:func:`load_or_plan`) and reused while the
training cases and settings are the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from .dataset_json import DatasetDescription, dataset_items, read_dataset
from .split import save_datalist

__all__ = ["PLAN_FILE", "compute_fingerprint", "make_plan", "load_or_plan", "normalization_scheme"]

PLAN_FILE = "edge_seg_plan.json"
DIVISOR = 32
ANISO_THRESHOLD = 3.0
DEFAULT_MAX_VOXELS = {2: 512 * 512, 3: 128 * 128 * 128}


def _read_case(item: dict, desc: DatasetDescription) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """``(channels (C, *S), label (*S), spacing)`` of one case, 3D in RAS axis order."""
    if desc.spatial_dims == 2:
        from transforms.image2d import read_image_2d

        img = read_image_2d(item["image"] if isinstance(item["image"], str) else item["image"][0])
        arr = img.array.astype(np.float64)
        channels = np.moveaxis(arr, -1, 0) if arr.ndim == 3 else arr[None]
        label = read_image_2d(item["label"]).array
        label = label[..., 0] if label.ndim == 3 else label
        return channels, label, img.spacing
    from .integrity import read_volume

    problems: list[str] = []
    paths = item["image"] if isinstance(item["image"], list) else [item["image"]]
    vols = [read_volume(p, problems) for p in paths]
    label = read_volume(item["label"], problems)
    if problems:
        raise ValueError("; ".join(problems))
    data = [np.asarray(v.data, dtype=np.float64) for v in vols]
    channels = np.moveaxis(data[0], -1, 0) if data[0].ndim == 4 else np.stack(data)
    spacing = tuple(float(s) for s in np.linalg.norm(label.affine[:3, :3], axis=0))
    return channels, np.asarray(label.data).reshape(label.data.shape[:3]), spacing


def normalization_scheme(channel_name: str) -> str:
    """nnU-Net's scheme for a channel name: ``ct``, ``none`` (``noNorm``), ``rgb`` (``rgb_to_0_1``) or ``zscore``."""
    return {"ct": "ct", "nonorm": "none", "rgb_to_0_1": "rgb"}.get(channel_name.strip().lower(), "zscore")


def compute_fingerprint(desc: DatasetDescription, items: Sequence[dict] | None = None, samples_per_case: int = 10000,
                        seed: int = 1234) -> dict:
    """The fingerprint of the labelled training cases of ``desc`` (``items``: default every labelled case).

    Returns:
        ``{"cases", "spacings", "shapes", "median_spacing", "median_shape", "channels": [{"name", "is_ct",
        "mean", "std", "median", "min", "max", "percentile_00_5", "percentile_99_5"}], "label_fractions":
        {value: fraction of labelled voxels}}``.

    Raises:
        ValueError: no labelled case, or a case that cannot be read.
    """
    items = [it for it in (items if items is not None else dataset_items(desc.root))
             if "label" in it and it.get("split") != "test"]
    if not items:
        raise ValueError(f"{desc.root}: no labelled training case to fingerprint")
    rng = np.random.default_rng(seed)
    spacings, shapes, samples = [], [], [[] for _ in desc.channel_names]
    counts: dict[int, int] = {}
    for item in items:
        channels, label, spacing = _read_case(item, desc)
        spacings.append([float(s) for s in spacing])
        shapes.append([int(s) for s in label.shape])
        fg = label > 0
        for c, values in enumerate(channels[: len(samples)]):
            v = values[fg]
            if v.size > samples_per_case:
                v = rng.choice(v, samples_per_case, replace=False)
            samples[c].append(v)
        values, n = np.unique(np.round(label).astype(np.int64), return_counts=True)
        for value, k in zip(values.tolist(), n.tolist()):
            counts[value] = counts.get(value, 0) + k
    total = sum(counts.values())
    stats = []
    for name, pooled in zip(desc.channel_names, samples):
        v = np.concatenate(pooled) if pooled else np.zeros(0)
        entry: dict = {"name": name, "is_ct": normalization_scheme(name) == "ct", "foreground_voxels": int(v.size)}
        if v.size:
            entry.update(mean=float(v.mean()), std=float(v.std()), median=float(np.median(v)), min=float(v.min()),
                         max=float(v.max()), percentile_00_5=float(np.percentile(v, 0.5)),
                         percentile_99_5=float(np.percentile(v, 99.5)))
        stats.append(entry)
    return {
        "cases": [it["case_id"] for it in items],
        "spacings": spacings,
        "shapes": shapes,
        "median_spacing": np.median(np.array(spacings), axis=0).tolist(),
        "median_shape": np.median(np.array(shapes), axis=0).tolist(),
        "channels": stats,
        "label_fractions": {str(k): counts[k] / total for k in sorted(counts)},
    }


def _target_spacing(spacings: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    target = np.median(spacings, axis=0)
    if len(target) < 3:
        return target
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    target_shape = np.median(shapes, axis=0)
    aniso_spacing = target[worst] > ANISO_THRESHOLD * max(target[others])
    aniso_voxels = target_shape[worst] * ANISO_THRESHOLD < min(target_shape[others])
    if aniso_spacing and aniso_voxels:
        value = float(np.percentile(spacings[:, worst], 10))
        if value < max(target[others]):  # nnU-Net's guard: never finer than the other axes
            value = max(max(target[others]), value) + 1e-5
        target[worst] = value
    return target


def _patch_size(median_shape: np.ndarray, spacing: np.ndarray, max_voxels: int) -> list[int]:
    dims = len(spacing)
    tmp = 1.0 / spacing
    start = 256 ** 3 if dims == 3 else 2048 ** 2
    patch = tmp * (start / np.prod(tmp)) ** (1.0 / dims)
    patch = np.minimum(patch, median_shape)
    patch = np.maximum(DIVISOR, np.floor(patch / DIVISOR) * DIVISOR).astype(int)
    while np.prod(patch) > max_voxels:
        ratio = patch / np.maximum(median_shape, 1)
        ratio[patch <= DIVISOR] = -np.inf  # an axis at the divisor cannot shrink
        if not np.isfinite(ratio).any():
            break
        patch[int(np.argmax(ratio))] -= DIVISOR
    return [int(p) for p in patch]


def make_plan(fingerprint: dict, desc: DatasetDescription, max_voxels: int | None = None) -> dict:
    """The plan of a dataset from its fingerprint (rules: the module docstring).

    Args:
        fingerprint: from :func:`compute_fingerprint`.
        desc: the dataset.
        max_voxels: the most voxels of a training patch. Defaults to 128^3 (3D) or 512^2 (2D).

    Returns:
        ``{"spatial_dims", "spacing" (3D; None in 2D), "patch_size", "median_shape_at_spacing", "batch_size",
        "intensity_schemes": [one per channel, for transforms.NormalizeChannels], "anisotropic"}``.
    """
    dims = desc.spatial_dims
    max_voxels = int(max_voxels or DEFAULT_MAX_VOXELS[dims])
    spacings, shapes = np.array(fingerprint["spacings"], float), np.array(fingerprint["shapes"], float)
    target = _target_spacing(spacings, shapes)
    at_target = np.median(np.round(shapes * spacings / target), axis=0)
    schemes = []
    for ch in fingerprint["channels"]:
        scheme = normalization_scheme(ch["name"])
        if scheme == "ct" and "mean" in ch:
            schemes.append({"scheme": "ct", "lower": ch["percentile_00_5"], "upper": ch["percentile_99_5"],
                            "mean": ch["mean"], "std": ch["std"]})
        else:
            schemes.append({"scheme": "zscore" if scheme == "ct" else scheme})
    return {
        "spatial_dims": dims,
        "spacing": [round(float(s), 6) for s in target] if dims == 3 else None,
        "median_shape_at_spacing": [int(s) for s in at_target],
        "patch_size": _patch_size(at_target, target, max_voxels),
        "max_voxels": max_voxels,
        "batch_size": 2 if dims == 3 else 8,
        "anisotropic": bool(dims == 3 and not np.allclose(target, np.median(spacings, axis=0))),
        "intensity_schemes": schemes,
    }


def load_or_plan(root: str | os.PathLike, max_voxels: int | None = None, recompute: bool = False) -> dict:
    """The fingerprint and plan of the dataset in ``root``, from ``root/edge_seg_plan.json`` when it was made for
    the same training cases and ``max_voxels``, else computed and saved there (atomically).

    Returns:
        ``{"dataset": {"format", "name", "channel_names", "labels", "regions_class_order", "file_ending"},
        "fingerprint": ..., "plan": ...}``.
    """
    desc = read_dataset(root)
    path = desc.root / PLAN_FILE
    items = [it for it in dataset_items(desc.root) if "label" in it and it.get("split") != "test"]
    if path.is_file() and not recompute:
        saved = json.loads(path.read_text())
        if saved.get("fingerprint", {}).get("cases") == [it["case_id"] for it in items] and \
                saved.get("settings", {}).get("max_voxels") == max_voxels:
            return saved
    fingerprint = compute_fingerprint(desc, items)
    content = {
        "dataset": {"format": desc.format, "name": desc.name, "channel_names": list(desc.channel_names),
                    "labels": {k: list(v) if isinstance(v, tuple) else v for k, v in desc.labels.items()},
                    "regions_class_order": list(desc.regions_class_order) if desc.region_based else None,
                    "file_ending": desc.file_ending},
        "settings": {"max_voxels": max_voxels},
        "fingerprint": fingerprint,
        "plan": make_plan(fingerprint, desc, max_voxels),
    }
    save_datalist(path, content)
    return content
