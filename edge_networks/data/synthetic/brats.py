"""Synthetic BraTS cases: a skull-stripped brain with a glioma, four co-registered MRI contrasts.

Anatomy (phantom): a brain with a folded cortical grey-matter ribbon, sulcal CSF, lateral and third ventricles,
deep grey nuclei and white matter; or (``background=``) a real skull-stripped T1 MRI whose tissues are
classified (3-class k-means on intensity) to derive the other contrasts.

Tumour: nested, irregular compartments -- oedema (label 2) around a tumour core made of an enhancing rim
(label 4) and a necrotic/non-enhancing centre (label 1); about one case in four is a low-grade-like tumour
without enhancement (core = label 1 only). The compartments are nested by construction: ET inside TC inside WT.

Contrasts (relative to white matter, typical of BraTS pre-processed scans): T1 -- WM bright, GM darker, CSF
dark; T1ce -- like T1 with a bright enhancing rim and a dark necrotic centre; T2 -- CSF and oedema bright, WM
dark; FLAIR -- CSF suppressed, oedema brightest. Each contrast gets a smooth tissue texture, partial-volume
blur, its own bias field and Rician noise, and is stored as int16 with 0 outside the brain, 1 mm spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..layouts import BRATS_MODALITIES
from .fields import Grid, bias_field, ellipsoid, irregular_blob, rician_noise, smooth_field

__all__ = [
    "BRATS_SHAPE",
    "TISSUE_CONTRAST",
    "HARD_TUMOUR_CONTRAST",
    "BratsCase",
    "make_brats_case",
    "load_brain_background",
]

BRATS_SHAPE = (240, 240, 155)
BRATS_FOV_MM = (240.0, 240.0, 155.0)

# mean intensity of each tissue per contrast, white matter of T1 = 1
TISSUES = ("csf", "gm", "wm", "oedema", "necrosis", "enhancing")
TISSUE_CONTRAST: dict[str, dict[str, float]] = {
    "flair": {"csf": 0.12, "gm": 0.62, "wm": 0.48, "oedema": 1.05, "necrosis": 0.55, "enhancing": 0.80},
    "t1": {"csf": 0.22, "gm": 0.62, "wm": 1.00, "oedema": 0.55, "necrosis": 0.35, "enhancing": 0.62},
    "t1ce": {"csf": 0.20, "gm": 0.60, "wm": 0.95, "oedema": 0.55, "necrosis": 0.25, "enhancing": 1.45},
    "t2": {"csf": 1.30, "gm": 0.70, "wm": 0.45, "oedema": 1.05, "necrosis": 1.20, "enhancing": 0.72},
}
# --difficulty hard: tumour compartments pulled toward each other and toward normal tissue, so that no single
# intensity threshold separates them (the enhancing rim barely brighter than white matter on T1ce, oedema close
# to grey matter on FLAIR, necrosis close to oedema on T2)
HARD_TUMOUR_CONTRAST: dict[str, dict[str, float]] = {
    "flair": {"oedema": 0.74, "necrosis": 0.62, "enhancing": 0.70},
    "t1": {"oedema": 0.68, "necrosis": 0.55, "enhancing": 0.70},
    "t1ce": {"oedema": 0.70, "necrosis": 0.62, "enhancing": 1.05},
    "t2": {"oedema": 0.82, "necrosis": 0.95, "enhancing": 0.80},
}
_SCALE = 700.0  # stored value of T1 white matter


@dataclass
class BratsCase:
    """One synthetic case: ``images`` per modality (int16), ``seg`` (uint8, 0/1/2/4), ``affine`` (4x4)."""

    images: dict[str, np.ndarray]
    seg: np.ndarray
    affine: np.ndarray


def _phantom_tissues(grid: Grid, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Brain mask and soft tissue fractions (csf, gm, wm) of a procedural brain."""
    s = min(e / f for e, f in zip(grid.extent, BRATS_FOV_MM))  # anatomy scale for other fields of view
    jitter = rng.uniform(0.92, 1.06, 3)
    radii = np.array([68.0, 84.0, 62.0]) * jitter * s
    centre = (0.0, 4.0 * s, -4.0 * s)
    r = ellipsoid(grid, centre, radii)
    r = r + 0.04 * smooth_field(grid, 40.0 * s, rng)
    # flatten the temporal/basal surface a little
    r = np.maximum(r, (centre[2] - 0.55 * radii[2] - grid.axes[2]) / (0.2 * radii[2]) + 0.0)
    brain = r < 1.0
    depth = (1.0 - r) * float(np.mean(radii))  # approx. mm below the brain surface
    # gyri and sulci: sulci are thin sheets along the zero level set of a smooth field, reaching ~15 mm deep,
    # lined by the grey-matter ribbon; a thin CSF layer covers the surface
    folds = smooth_field(grid, 9.0 * s, rng)
    sulcus_depth = (12.0 + 5.0 * smooth_field(grid, 30.0 * s, rng)) * s
    near_sulcus = np.abs(folds)
    sulci = ((near_sulcus < 0.09) & (depth < sulcus_depth)) | (depth < 1.0 * s)
    cortex = (depth < 3.0 * s) | ((near_sulcus < 0.45) & (depth < sulcus_depth + 3.0 * s))
    # lateral ventricles (frontal horns, bodies, occipital horns) and a thin third ventricle
    vent = np.zeros(grid.shape, bool)
    for side in (-1, 1):
        for x, y, z, rx, ry, rz in ((7, 16, 10, 5, 13, 9), (9, 0, 12, 5, 16, 8), (13, -16, 9, 5, 14, 8),
                                    (17, -30, 4, 4, 11, 7)):
            vent |= ellipsoid(grid, (side * x * s, y * s, z * s), np.array([rx, ry, rz]) * s) < 1.0
    vent |= ellipsoid(grid, (0.0, 0.0, -2.0 * s), np.array([1.5, 14.0, 8.0]) * s) < 1.0
    deep_gm = np.zeros(grid.shape, bool)
    for side in (-1, 1):
        deep_gm |= ellipsoid(grid, (side * 18.0 * s, 2.0 * s, 2.0 * s), np.array([8.0, 13.0, 9.0]) * s) < 1.0
        deep_gm |= ellipsoid(grid, (side * 9.0 * s, -10.0 * s, 4.0 * s), np.array([7.0, 10.0, 8.0]) * s) < 1.0
    midline = np.abs(grid.axes[0]) < max(1.0 * s, 0.5 * grid.spacing[0])  # interhemispheric fissure
    csf = brain & (sulci | vent | (midline & (depth < 25.0 * s)))
    gm = brain & ~csf & (cortex | deep_gm)
    wm = brain & ~csf & ~gm
    return brain, {"csf": csf.astype(np.float32), "gm": gm.astype(np.float32), "wm": wm.astype(np.float32)}


def _kmeans_1d(values: np.ndarray, k: int = 3, iters: int = 20) -> np.ndarray:
    centres = np.quantile(values, np.linspace(0.15, 0.85, k))
    for _ in range(iters):
        assign = np.abs(values[:, None] - centres[None]).argmin(1)
        centres = np.array([values[assign == i].mean() if (assign == i).any() else centres[i] for i in range(k)])
    return np.sort(centres)


def load_brain_background(path: str, mask_path: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a skull-stripped T1 MRI (``> 0`` is brain unless ``mask_path`` gives a mask): (t1, mask, affine)."""
    img = nib.as_closest_canonical(nib.load(path))
    t1 = np.asarray(img.dataobj, dtype=np.float32)
    if t1.ndim != 3:
        raise ValueError(f"{path}: background must be a 3D T1 MRI, got shape {t1.shape}")
    if mask_path is not None:
        mask_img = nib.as_closest_canonical(nib.load(mask_path))
        mask = np.asarray(mask_img.dataobj) > 0
        if mask.shape != t1.shape:
            raise ValueError(f"{mask_path}: mask shape {mask.shape} differs from {path} {t1.shape}")
    else:
        mask = t1 > 0
    if mask.sum() < 1000:
        raise ValueError(f"{path}: fewer than 1000 brain voxels; is it skull-stripped?")
    return t1, mask, img.affine


def _fit_to_grid(vol: np.ndarray, mask: np.ndarray, affine: np.ndarray, shape: Sequence[int]):
    """Crop/pad ``vol`` around the brain's bounding-box centre to ``shape``; returns (vol, new affine)."""
    idx = np.argwhere(mask)
    centre = (idx.min(0) + idx.max(0)) // 2
    start = centre - np.asarray(shape) // 2
    out = np.zeros(shape, vol.dtype)
    src, dst = [], []
    for s0, n_out, n_in in zip(start, shape, vol.shape):
        a, b = max(s0, 0), min(s0 + n_out, n_in)
        src.append(slice(a, b))
        dst.append(slice(a - s0, b - s0))
    out[tuple(dst)] = vol[tuple(src)]
    shift = np.eye(4)
    shift[:3, 3] = start
    return out, affine @ shift


def _background_tissues(t1: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    vals = t1[mask]
    c_csf, c_gm, c_wm = _kmeans_1d(vals)
    # soft memberships from the real intensity: piecewise-linear between the class centres
    x = np.clip(t1, c_csf, c_wm)
    gm_w = np.where(x < c_gm, (x - c_csf) / (c_gm - c_csf), (c_wm - x) / (c_wm - c_gm))
    wm_w = np.clip((x - c_gm) / (c_wm - c_gm), 0, 1)
    csf_w = np.clip((c_gm - x) / (c_gm - c_csf), 0, 1)
    m = mask.astype(np.float32)
    return mask, {"csf": csf_w * m, "gm": gm_w * m, "wm": wm_w * m}


def _protrusions(grid: Grid, centre, radius: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` thin finger-like tubes (1-2 mm radius) leaving ``centre`` outward over 1-2 ``radius`` (bool)."""
    out = np.zeros(grid.shape, bool)
    sp = np.asarray(grid.spacing)
    for _ in range(n):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        length = radius * rng.uniform(1.0, 2.0)
        steps = max(int(length / min(sp)), 2)
        bend = np.cumsum(rng.normal(0, 0.04, (steps, 3)), axis=0)
        dirs = direction + bend
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        pts = np.asarray(centre) + np.cumsum(dirs * min(sp), axis=0)
        idx = np.round((pts - np.array([ax.ravel()[0] for ax in grid.axes])) / sp).astype(int)
        ok = np.all((idx >= 0) & (idx < np.array(grid.shape)), axis=1)
        line = np.zeros(grid.shape, bool)
        line[tuple(idx[ok].T)] = True
        r_vox = max(int(round(rng.uniform(1.0, 2.0) / min(sp))), 1)
        out |= ndimage.binary_dilation(line, iterations=r_vox) if r_vox > 0 else line
    return out


def _tumour(
    grid: Grid, brain: np.ndarray, wm: np.ndarray, rng: np.random.Generator, hard: bool = False
) -> dict[str, np.ndarray]:
    """Nested tumour compartments (bool): wt, tc, et, necrosis -- ET and necrosis partition TC. ``hard``: rougher
    shapes, finger-like oedema and enhancing protrusions, a rim of varying thickness."""
    s = min(e / f for e, f in zip(grid.extent, BRATS_FOV_MM))
    candidates = np.argwhere(ndimage.binary_erosion(wm > 0.5, iterations=max(1, int(6 * s / max(grid.spacing)))))
    if len(candidates) == 0:
        candidates = np.argwhere(brain)
    centre_idx = candidates[rng.integers(len(candidates))]
    centre = [float(ax.ravel()[i]) for ax, i in zip(grid.axes, centre_idx)]
    wt_r = rng.uniform(16.0, 30.0) * s
    rough = 0.6 if hard else 0.35
    wt = irregular_blob(grid, centre, wt_r * rng.uniform(0.8, 1.2, 3), rng, roughness=rough)
    if hard:
        wt |= _protrusions(grid, centre, wt_r, rng, int(rng.integers(3, 7)))
    wt &= brain
    tc_r = wt_r * rng.uniform(0.4, 0.65)
    off = rng.normal(0, 0.15 * tc_r, 3)
    tc = irregular_blob(grid, np.add(centre, off), tc_r * rng.uniform(0.85, 1.15, 3), rng, roughness=rough - 0.05)
    if hard:
        tc |= _protrusions(grid, np.add(centre, off), tc_r, rng, int(rng.integers(1, 4)))
    tc &= ndimage.binary_erosion(wt, iterations=max(1, int(round(2 * s / min(grid.spacing)))))
    if not tc.any():  # tiny grids: keep a core
        tc = wt & (ellipsoid(grid, centre, [tc_r] * 3) < 1.0)
    high_grade = rng.random() < 0.75
    if high_grade:
        nec = irregular_blob(grid, np.add(centre, off), tc_r * rng.uniform(0.45, 0.7, 3), rng, roughness=0.3)
        rim = max(1, int(round(rng.uniform(2.0, 4.0) * s / min(grid.spacing))))
        nec &= ndimage.binary_erosion(tc, iterations=rim)
        et = tc & ~nec
    else:
        nec, et = tc.copy(), np.zeros_like(tc)
    return {"wt": wt, "tc": tc, "et": et, "necrosis": nec}


def make_brats_case(
    shape: Sequence[int] = BRATS_SHAPE,
    seed: int | Sequence[int] = 0,
    background: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    difficulty: str = "easy",
) -> BratsCase:
    """Generate one case.

    Args:
        shape: voxels per axis; the field of view stays 240x240x155 mm, so the spacing is 1 mm at the default
            shape and coarser for smaller shapes (the whole brain always fits).
        seed: the case is a deterministic function of ``(shape, seed, background)``.
        background: ``(t1, brain_mask, affine)`` of a real skull-stripped T1 (see :func:`load_brain_background`);
            it is cropped/padded to the BraTS grid at its own spacing and resampled when ``shape`` is smaller.
        difficulty: ``"easy"`` or ``"hard"``: sub-region intensities that overlap each other and normal tissue
            (:data:`HARD_TUMOUR_CONTRAST`), wide partial-volume rims, strong heterogeneity, bias field and noise,
            irregular shapes with thin protrusions -- boundaries are where the work is.

    Returns:
        :class:`BratsCase` with images in :data:`~edge_networks.data.layouts.BRATS_MODALITIES` order.
    """
    if difficulty not in ("easy", "hard"):
        raise ValueError(f"difficulty must be 'easy' or 'hard', got {difficulty!r}")
    hard = difficulty == "hard"
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in shape)
    if background is None:
        spacing = tuple(f / n for f, n in zip(BRATS_FOV_MM, shape))
        grid = Grid(shape, spacing)
        brain, tissue = _phantom_tissues(grid, rng)
        affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
        affine[1, 3] = (shape[1] - 1) * spacing[1]
        real_t1 = None
    else:
        t1, mask, affine = background
        t1, affine = _fit_to_grid(t1, mask, affine, BRATS_SHAPE)
        mask, _ = _fit_to_grid(mask, mask, np.eye(4), BRATS_SHAPE)
        if shape != BRATS_SHAPE:
            zoom = [n / m for n, m in zip(shape, BRATS_SHAPE)]
            t1 = ndimage.zoom(t1, zoom, order=1)
            mask = ndimage.zoom(mask.astype(np.float32), zoom, order=1) > 0.5
            affine = affine @ np.diag([1 / z for z in zoom] + [1.0])
        spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
        grid = Grid(shape, spacing)
        brain, tissue = _background_tissues(t1, mask)
        real_t1 = t1
    tum = _tumour(grid, brain, tissue["wm"], rng, hard)
    # soft compartment fractions (partial volume at the tumour borders)
    sigma = [(1.5 if hard else 0.6) / sp for sp in spacing]
    frac = {
        "oedema": ndimage.gaussian_filter((tum["wt"] & ~tum["tc"]).astype(np.float32), sigma),
        "necrosis": ndimage.gaussian_filter(tum["necrosis"].astype(np.float32), sigma),
        "enhancing": ndimage.gaussian_filter(tum["et"].astype(np.float32), sigma),
    }
    tumour_frac = np.clip(frac["oedema"] + frac["necrosis"] + frac["enhancing"], 0.0, 1.0)
    images = {}
    brain_f = brain.astype(np.float32)
    for mod in BRATS_MODALITIES:
        c = {**TISSUE_CONTRAST[mod], **(HARD_TUMOUR_CONTRAST[mod] if hard else {})}
        if real_t1 is not None:
            # the real anatomy's contrast: map the T1 intensity through the tissue means of this contrast
            t1_norm = real_t1 / (np.percentile(real_t1[brain], 90) + 1e-6)
            keys = np.array([c["csf"], c["gm"], c["wm"]])
            base = np.interp(t1_norm, [0.35, 0.65, 1.0], keys).astype(np.float32) * brain_f
            if mod == "t1":
                base = (t1_norm * c["wm"]).astype(np.float32) * brain_f
        else:
            base = sum(c[t] * tissue[t] for t in ("csf", "gm", "wm"))
        base = base * (1.0 + 0.04 * smooth_field(grid, 6.0, rng))
        lesion = sum(c[t] * frac[t] for t in ("oedema", "necrosis", "enhancing"))
        lesion = lesion * (1.0 + (0.22 if hard else 0.08) * smooth_field(grid, 4.0, rng))
        img = (1.0 - tumour_frac) * base + lesion
        img = ndimage.gaussian_filter(img, [0.5 / sp for sp in spacing])
        img = img * bias_field(grid, rng, strength=0.3 if hard else 0.15)
        img = rician_noise(img, 0.05 if hard else 0.025, rng) * brain_f
        images[mod] = np.clip(np.round(img * _SCALE), 0, 32767).astype(np.int16)
    seg = np.zeros(shape, np.uint8)
    seg[tum["wt"]] = 2
    seg[tum["tc"]] = 1
    seg[tum["et"]] = 4
    return BratsCase(images=images, seg=seg, affine=np.asarray(affine, dtype=np.float64))
