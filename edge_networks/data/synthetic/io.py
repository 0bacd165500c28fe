"""Writing synthetic cases atomically: a case folder appears complete or not at all."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = ["write_case_folder"]


def write_case_folder(out_dir: str | Path, case_id: str, volumes: Mapping[str, np.ndarray], affine: np.ndarray) -> Path:
    """Write ``volumes`` (file name -> array) as NIfTI files into ``out_dir/case_id``, atomically.

    Files are written into a temporary folder beside the target and renamed into place at the end, so an
    interrupted run leaves no half-written case. An existing case folder of that name is replaced.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / case_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{case_id}.", dir=out_dir))
    try:
        for name, arr in volumes.items():
            img = nib.Nifti1Image(arr, affine)
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            nib.save(img, str(tmp / name))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
