"""Random fields and shapes in physical (mm) coordinates, shared by the BraTS and KiTS phantoms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

__all__ = ["Grid", "smooth_field", "irregular_blob", "bias_field", "rician_noise", "ellipsoid"]


class Grid:
    """Voxel-centre coordinates (mm) of a volume, relative to its centre, with broadcastable axes.

    Args:
        shape: voxels per axis.
        spacing: mm per voxel per axis.
    """

    def __init__(self, shape: Sequence[int], spacing: Sequence[float]):
        self.shape = tuple(int(s) for s in shape)
        self.spacing = tuple(float(s) for s in spacing)
        self.axes = []
        for i, (n, sp) in enumerate(zip(self.shape, self.spacing)):
            view = [1] * len(self.shape)
            view[i] = n
            self.axes.append(((np.arange(n, dtype=np.float32) - (n - 1) / 2.0) * sp).reshape(view))

    @property
    def extent(self) -> tuple[float, ...]:
        """Field of view in mm per axis."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing))


def smooth_field(grid: Grid, corr_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std random field that varies over about ``corr_mm`` millimetres (float32).

    White noise on a coarse lattice (one node per ``corr_mm``), smoothed there and linearly upsampled to the
    grid with torch (multi-threaded): cheap even for 240x240x155 volumes, where spline zooming takes seconds.
    """
    coarse = [max(int(np.ceil(e / corr_mm)) + 3, 4) for e in grid.extent]
    noise = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), 0.7, mode="wrap")
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(grid.shape)]
    t = torch.from_numpy(noise)[None, None]
    field = F.interpolate(t, size=grid.shape, mode=mode, align_corners=True)[0, 0].numpy()
    field -= field.mean()
    field /= field.std() + 1e-6
    return field


def ellipsoid(grid: Grid, centre: Sequence[float], radii: Sequence[float], rotation: np.ndarray | None = None):
    """Normalised radius ``r`` (float32) of an ellipsoid: ``r < 1`` inside. ``rotation``: 3x3 (or 2x2) matrix."""
    rel = [ax - c for ax, c in zip(grid.axes, centre)]
    if rotation is not None:
        rel = [sum(rotation[i, j] * rel[j] for j in range(len(rel))) for i in range(len(rel))]
    return np.sqrt(sum((r / rad) ** 2 for r, rad in zip(rel, radii))).astype(np.float32)


def irregular_blob(
    grid: Grid,
    centre: Sequence[float],
    radii: Sequence[float],
    rng: np.random.Generator,
    roughness: float = 0.25,
    corr_mm: float | None = None,
) -> np.ndarray:
    """Boolean blob: an ellipsoid whose surface is pushed in and out by a smooth random field.

    Args:
        roughness: amplitude of the surface perturbation, as a fraction of the radius.
        corr_mm: scale of the perturbation (default: half the mean radius), giving lobulated, irregular shapes.
    """
    r = ellipsoid(grid, centre, radii)
    corr = corr_mm or max(float(np.mean(radii)) / 2.0, 2 * max(grid.spacing))
    return (r + roughness * smooth_field(grid, corr, rng)) < 1.0


def bias_field(grid: Grid, rng: np.random.Generator, strength: float = 0.15) -> np.ndarray:
    """Multiplicative MRI bias field ``exp(strength * smooth field)``, varying over ~100 mm."""
    return np.exp(strength * smooth_field(grid, 100.0, rng)).astype(np.float32)


def rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude-MRI (Rician) noise: ``|image + n1 + i n2|`` with Gaussian ``n1, n2`` of std ``sigma``."""
    n1 = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    n2 = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.sqrt((image + n1) ** 2 + n2**2)
