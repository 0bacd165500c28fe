"""Writing synthetic data atomically (a case or dataset folder appears complete or not at all), volumes in any
format MONAI reads with their geometry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

from transforms.writers import atomic_folder

__all__ = ["write_volume", "write_case_folder"]


def write_volume(path: str | Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write a volume (``(x, y, z)`` or ``(x, y, z, c)`` channels last) with its RAS ``affine``: NIfTI with nibabel,
    other formats (NRRD, MetaImage) with SimpleITK in ITK's LPS geometry."""
    path = Path(path)
    if path.name.endswith((".nii", ".nii.gz")):
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        nib.save(img, str(path))
        return path
    import SimpleITK as sitk

    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)  # ITK keeps LPS geometry
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    xyz_first = np.ascontiguousarray(np.moveaxis(data, (0, 1, 2), (2, 1, 0)))  # SimpleITK takes (z, y, x[, c])
    img = sitk.GetImageFromArray(xyz_first, isVector=data.ndim == 4)
    img.SetSpacing(spacing.tolist())
    img.SetOrigin(lps[:3, 3].tolist())
    img.SetDirection((lps[:3, :3] / spacing).flatten().tolist())
    sitk.WriteImage(img, str(path), useCompression=True)
    return path


def write_case_folder(out_dir: str | Path, case_id: str, volumes: Mapping[str, np.ndarray], affine: np.ndarray) -> Path:
    """Write ``volumes`` (file name -> array) as NIfTI files into ``out_dir/case_id``, atomically
    (:func:`atomic_folder`): an interrupted run leaves no half-written case; an existing case folder of that name is
    replaced."""
    with atomic_folder(Path(out_dir) / case_id) as tmp:
        for name, arr in volumes.items():
            write_volume(tmp / name, arr, affine)
    return Path(out_dir) / case_id
