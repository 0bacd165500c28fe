"""Synthetic KiTS19 cases: an arterial-phase abdominal CT in HU with kidneys and renal tumours.

Phantom anatomy per case (random sizes and positions): body outline with subcutaneous fat and the abdominal
wall, visceral fat, liver (patient's right, upper slices), spine (cortical and cancellous bone, spinal canal),
psoas muscles, aorta and IVC, bowel loops with air, and two bean-shaped kidneys with enhancing cortex, medulla
and renal sinus fat. One or two tumours (heterogeneous, sometimes with a necrotic centre) grow inside a kidney
and may bulge out of it, as renal tumours do. Labels: 0 background, 1 kidney, 2 tumour.

With ``background=`` the anatomy comes from a real CT with kidney labels: a tumour is inserted inside one
kidney, and a random smooth deformation and flips give variety.

Geometry follows KiTS19's NIfTI files: int16 HU arrays with the slice axis first, ``(Z, Y, X)``, and an affine
that maps index axis 0 to the patient's superior-inferior direction. Default 512x512 in-plane at 0.78 mm and
3 mm slices; smaller shapes keep the field of view (coarser spacing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from .fields import Grid, ellipsoid, irregular_blob, smooth_field

__all__ = ["KITS_SHAPE", "KitsCase", "make_kits_case", "load_ct_background", "kits_affine"]

KITS_SHAPE = (96, 512, 512)  # (Z, Y, X), as KiTS19 stores it
KITS_SPACING = (3.0, 0.78125, 0.78125)
HU = {"air": -1000, "fat": -100, "muscle": 50, "liver": 90, "bowel": 30, "cortex": 180, "medulla": 90,
      "sinus": -40, "aorta": 280, "ivc": 140, "cancellous": 250, "cortical": 700, "canal": 15}


@dataclass
class KitsCase:
    """One case: ``image`` (int16 HU, (Z, Y, X)), ``seg`` (uint8 0/1/2), ``affine`` (4x4, KiTS19-style)."""

    image: np.ndarray
    seg: np.ndarray
    affine: np.ndarray


def kits_affine(spacing_zyx: Sequence[float]) -> np.ndarray:
    """KiTS19-style affine for a ``(Z, Y, X)`` array: axis 0 -> inferior, axis 1 -> posterior, axis 2 -> left."""
    sz, sy, sx = spacing_zyx
    return np.array([[0, 0, -sx, 0], [0, -sy, 0, 0], [-sz, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def _tumours(grid: Grid, kidney: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Tumour mask: blobs centred inside ``kidney``, allowed to bulge out by about a third of their radius."""
    tumour = np.zeros(grid.shape, bool)
    inside = np.argwhere(kidney)
    if len(inside) == 0:
        return tumour
    for _ in range(n):
        c = inside[rng.integers(len(inside))]
        centre = [float(ax.ravel()[i]) for ax, i in zip(grid.axes, c)]
        radius = rng.uniform(9.0, 28.0)
        blob = irregular_blob(grid, centre, radius * rng.uniform(0.85, 1.15, 3), rng, roughness=0.2)
        reach = ndimage.binary_dilation(kidney, iterations=max(1, int(round(0.35 * radius / min(grid.spacing)))))
        tumour |= blob & reach
    return tumour


def _tumour_hu(
    grid: Grid, tumour: np.ndarray, rng: np.random.Generator, kidney_hu: float | None = None
) -> np.ndarray:
    """Tumour HU; ``kidney_hu`` (hard mode): centred on the kidney's own mean, heterogeneous, so parenchyma and
    tumour overlap."""
    if kidney_hu is not None:
        hu = kidney_hu + rng.uniform(-15, 15) + 40 * smooth_field(grid, 4.0, rng)
    else:
        hu = rng.uniform(70, 130) + 20 * smooth_field(grid, 6.0, rng)
    if rng.random() < 0.5:  # necrotic centre
        dist = ndimage.distance_transform_edt(tumour, sampling=grid.spacing)
        hu = np.where(dist > 0.6 * dist.max(), 25.0 + 8 * smooth_field(grid, 4.0, rng), hu)
    return hu.astype(np.float32)


def _phantom(grid: Grid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(HU float32, kidney mask) of a procedural abdomen on a (Z, Y, X) grid (z: superior +, y: anterior +)."""
    z, y, x = grid.axes
    zext = grid.extent[0]
    body_r = ellipsoid(grid, (0.0, 10.0, 0.0), (1e6, rng.uniform(105, 125), rng.uniform(150, 175)))
    body_r = body_r + 0.015 * smooth_field(grid, 60.0, rng)
    body = body_r < 1.0
    hu = np.full(grid.shape, float(HU["air"]), np.float32)
    hu[body] = HU["fat"]
    wall = (body_r < 0.88) & (body_r > 0.80)
    hu[wall] = HU["muscle"]
    inner = body_r < 0.80
    hu[inner] = HU["fat"] + 10
    # bowel loops with air pockets (anterior half)
    bowel = inner & (smooth_field(grid, 18.0, rng) > 0.55) & (y > -20)
    hu[bowel] = HU["bowel"]
    hu[bowel & (smooth_field(grid, 8.0, rng) > 1.2)] = HU["air"] + 50
    # liver: patient's right (x < 0 in these coordinates), upper part of the volume
    liver = ellipsoid(grid, (0.30 * zext, 10.0, -70.0), (0.45 * zext, 75.0, 70.0)) < 1.0
    hu[liver & inner] = HU["liver"]
    # spine, canal, psoas, aorta, IVC
    spine_y = -60.0
    vb = ellipsoid(grid, (0.0, spine_y, 0.0), (1e6, 17.0, 20.0))
    hu[vb < 1.0] = HU["cortical"]
    hu[vb < 0.85] = HU["cancellous"]
    canal = ellipsoid(grid, (0.0, spine_y - 27.0, 0.0), (1e6, 8.0, 9.0)) < 1.0
    hu[ellipsoid(grid, (0.0, spine_y - 27.0, 0.0), (1e6, 13.0, 14.0)) < 1.0] = HU["cortical"]
    hu[canal] = HU["canal"]
    for side in (-1, 1):
        hu[ellipsoid(grid, (0.0, spine_y + 5.0, side * 38.0), (1e6, 16.0, 13.0)) < 1.0] = HU["muscle"]
    hu[ellipsoid(grid, (0.0, spine_y + 30.0, 12.0), (1e6, 11.0, 11.0)) < 1.0] = HU["aorta"]
    hu[ellipsoid(grid, (0.0, spine_y + 30.0, -22.0), (1e6, 12.0, 14.0)) < 1.0] = HU["ivc"]
    # kidneys: bean shapes with cortex, medulla and a medial sinus
    kidney = np.zeros(grid.shape, bool)
    for side in (-1, 1):
        zc = rng.uniform(-0.12, 0.12) * zext + (8.0 if side < 0 else 0.0)
        centre = (zc, spine_y + rng.uniform(-5, 10), side * rng.uniform(68, 82))
        radii = (rng.uniform(48, 60), rng.uniform(24, 30), rng.uniform(22, 28))
        a = np.deg2rad(rng.uniform(10, 25)) * side
        rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        r = ellipsoid(grid, centre, radii, rot)
        hilum = ellipsoid(grid, (centre[0], centre[1] + 4.0, centre[2] - side * radii[2] * 0.9), (20.0, 10.0, 12.0))
        organ = (r < 1.0) & (hilum > 1.0)
        sinus = (r < 0.55) & organ
        medulla = (r < 0.8) & organ & ~sinus & (smooth_field(grid, 6.0, rng) > -0.3)
        hu[organ] = HU["cortex"]
        hu[medulla] = HU["medulla"]
        hu[sinus] = HU["sinus"]
        kidney |= organ & ~sinus
    return hu, kidney


def load_ct_background(ct_path: str, seg_path: str, kidney_labels: Sequence[int] = (2, 3)):
    """Read a real CT and its organ labels: (HU float32, kidney mask, affine), in RAS-closest orientation."""
    ct_img = nib.as_closest_canonical(nib.load(ct_path))
    seg_img = nib.as_closest_canonical(nib.load(seg_path))
    ct = np.asarray(ct_img.dataobj, dtype=np.float32)
    seg = np.asarray(seg_img.dataobj)
    if ct.shape != seg.shape:
        raise ValueError(f"{seg_path}: label shape {seg.shape} differs from the CT {ct_path} {ct.shape}")
    if not np.allclose(ct_img.affine, seg_img.affine, atol=1e-3):
        raise ValueError(f"{seg_path}: label affine differs from the CT {ct_path}")
    kidney = np.isin(seg, list(kidney_labels))
    if not kidney.any():
        raise ValueError(f"{seg_path}: no voxel with kidney label(s) {list(kidney_labels)}")
    return ct, kidney, ct_img.affine


def _deform(vol: np.ndarray, disp: list[np.ndarray], order: int, cval: float) -> np.ndarray:
    coords = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in vol.shape], indexing="ij")
    return ndimage.map_coordinates(vol, [c + d for c, d in zip(coords, disp)], order=order, mode="constant", cval=cval)


def make_kits_case(
    shape: Sequence[int] = KITS_SHAPE,
    seed: int | Sequence[int] = 0,
    background: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    difficulty: str = "easy",
) -> KitsCase:
    """Generate one case.

    Args:
        shape: ``(Z, Y, X)`` voxels; the field of view stays 288 x 400 x 400 mm (KiTS-like spacing at the default).
        seed: the case is a deterministic function of ``(shape, seed, background)``.
        background: ``(HU, kidney_mask, affine)`` of a real CT (see :func:`load_ct_background`), in RAS (X, Y, Z)
            order; its grid and spacing are kept (``shape`` is ignored) and it is written slice-axis first.
        difficulty: ``"hard"``: tumour HU centred on the kidney's own mean and heterogeneous, 2 mm partial-volume
            rims, twice the noise -- the tumour boundary is ambiguous to intensity alone.
    """
    if difficulty not in ("easy", "hard"):
        raise ValueError(f"difficulty must be 'easy' or 'hard', got {difficulty!r}")
    hard = difficulty == "hard"
    rng = np.random.default_rng(seed)
    if background is None:
        shape = tuple(int(v) for v in shape)
        spacing = tuple(s * n0 / n for s, n0, n in zip(KITS_SPACING, KITS_SHAPE, shape))
        grid = Grid(shape, spacing)
        hu, kidney = _phantom(grid, rng)
        # the phantom is built with z superior+ and y anterior+; KiTS index axes 0 and 1 run the other way
        hu, kidney = np.ascontiguousarray(hu[::-1, ::-1]), np.ascontiguousarray(kidney[::-1, ::-1])
    else:
        ct, kid, affine = background
        # RAS (X, Y, Z) -> KiTS (Z, Y, X), flipped to run superior->inferior, anterior->posterior, right->left
        ct = np.ascontiguousarray(np.flip(ct.transpose(2, 1, 0), axis=(0, 1, 2)))
        kid = np.ascontiguousarray(np.flip(kid.transpose(2, 1, 0), axis=(0, 1, 2)))
        sp = np.linalg.norm(affine[:3, :3], axis=0)
        spacing = (float(sp[2]), float(sp[1]), float(sp[0]))
        grid = Grid(ct.shape, spacing)
        # smooth random deformation (up to ~2 voxels) and random left-right / craniocaudal flips
        disp = [2.0 * smooth_field(grid, 40.0, rng) for _ in range(3)]
        ct = _deform(ct, disp, order=1, cval=-1024.0)
        kid = _deform(kid.astype(np.float32), disp, order=1, cval=0.0) > 0.5
        for ax in (0, 2):
            if rng.random() < 0.5:
                ct, kid = np.flip(ct, ax), np.flip(kid, ax)
        hu, kidney = np.ascontiguousarray(ct), np.ascontiguousarray(kid)
    # tumours in one kidney (KiTS cases have one affected kidney, sometimes several lesions)
    lab, n = ndimage.label(kidney)
    sizes = ndimage.sum(kidney, lab, range(1, n + 1))
    components = [i + 1 for i in np.argsort(sizes)[::-1][:2] if sizes[i] > 0]
    target = lab == components[rng.integers(len(components))] if components else kidney
    tumour = _tumours(grid, target, rng, n=1 if rng.random() < 0.8 else 2)
    t_frac = ndimage.gaussian_filter(tumour.astype(np.float32), [(2.0 if hard else 0.7) / s for s in spacing])
    kidney_hu = float(hu[kidney & ~tumour].mean()) if hard and (kidney & ~tumour).any() else None
    hu = (1 - t_frac) * hu + t_frac * _tumour_hu(grid, tumour, rng, kidney_hu)
    hu = ndimage.gaussian_filter(hu, [0.4 / s for s in spacing])
    hu = hu + rng.normal(0.0, 25.0 if hard else 12.0, hu.shape).astype(np.float32)
    image = np.clip(np.round(hu), -1024, 3071).astype(np.int16)
    seg = np.zeros(grid.shape, np.uint8)
    seg[kidney] = 1
    seg[tumour] = 2
    return KitsCase(image=image, seg=seg, affine=kits_affine(spacing))
