"""Realistic synthetic BraTS and KiTS cases written in the real datasets' folder layouts.

``python -m edge_networks.data.synthetic brats --out DIR --cases N`` and ``... kits --out DIR --cases N``;
see :mod:`edge_networks.data.synthetic.__main__` and :func:`write_brats_dataset` / :func:`write_kits_dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ..layouts import BRATS_MODALITIES
from .brats import BRATS_SHAPE, BratsCase, load_brain_background, make_brats_case
from .io import write_case_folder
from .kits import KITS_SHAPE, KitsCase, load_ct_background, make_kits_case

__all__ = [
    "BRATS_SHAPE",
    "KITS_SHAPE",
    "BratsCase",
    "KitsCase",
    "make_brats_case",
    "make_kits_case",
    "load_brain_background",
    "load_ct_background",
    "write_brats_dataset",
    "write_kits_dataset",
    "write_layout_dataset",
]


def write_brats_dataset(
    out: str | Path,
    cases: int,
    shape: Sequence[int] = BRATS_SHAPE,
    seed: int = 0,
    background: str | None = None,
    background_mask: str | None = None,
    first_index: int = 0,
    progress: bool = True,
    difficulty: str = "easy",
) -> list[Path]:
    """Write ``cases`` BraTS-2021-layout cases ``BraTS2021_XXXXX/BraTS2021_XXXXX_{flair,t1,t1ce,t2,seg}.nii.gz``.

    Case ``i`` is generated from the seed sequence ``(seed, i)``: the same arguments give the same files.
    ``background``: a skull-stripped T1 NIfTI used as anatomy for every case (tumours differ per case).
    ``difficulty``: ``"hard"`` for overlapping sub-region intensities and thin protrusions (see
    :func:`make_brats_case`).
    """
    bg = load_brain_background(background, background_mask) if background else None
    written = []
    for i in tqdm(range(first_index, first_index + cases), desc="synthetic BraTS", disable=not progress):
        case = make_brats_case(shape, seed=[seed, i], background=bg, difficulty=difficulty)
        case_id = f"BraTS2021_{i:05d}"
        vols = {f"{case_id}_{m}.nii.gz": case.images[m] for m in BRATS_MODALITIES}
        vols[f"{case_id}_seg.nii.gz"] = case.seg
        written.append(write_case_folder(out, case_id, vols, case.affine))
    return written


def write_kits_dataset(
    out: str | Path,
    cases: int,
    shape: Sequence[int] = KITS_SHAPE,
    seed: int = 0,
    background: str | None = None,
    background_labels: str | None = None,
    kidney_labels: Sequence[int] = (2, 3),
    first_index: int = 0,
    progress: bool = True,
    difficulty: str = "easy",
) -> list[Path]:
    """Write ``cases`` KiTS19-layout cases ``case_XXXXX/{imaging,segmentation}.nii.gz`` (see :func:`make_kits_case`).

    ``background`` + ``background_labels``: a real CT and its organ label map, ``kidney_labels`` its kidney values.
    """
    if bool(background) != bool(background_labels):
        raise ValueError("background and background_labels go together (a CT and its kidney label map)")
    bg = load_ct_background(background, background_labels, kidney_labels) if background else None
    written = []
    for i in tqdm(range(first_index, first_index + cases), desc="synthetic KiTS", disable=not progress):
        case = make_kits_case(shape, seed=[seed, i], background=bg, difficulty=difficulty)
        case_id = f"case_{i:05d}"
        vols = {"imaging.nii.gz": case.image, "segmentation.nii.gz": case.seg}
        written.append(write_case_folder(out, case_id, vols, case.affine))
    return written


def write_layout_dataset(layout: str, out: str | Path, cases: int, shape: Sequence[int], seed: int = 0,
                         difficulty: str = "easy") -> list[Path]:
    """A synthetic dataset in ``layout``, whichever generator writes it: the BraTS 2021 or KiTS19 writers for
    volumes (``shape`` ``(x, y, z)``; KiTS ``(z, y, x)``), the 2D generator of the layout
    (:data:`~.layouts2d.KIND_LAYOUTS`, ``shape`` ``(height, width)``) for images. Returns the files or case folders
    written.

    Raises:
        ValueError: no generator writes ``layout``.
    """
    from .layouts2d import KIND_LAYOUTS, write_2d_dataset

    volumes = {"brats2021": write_brats_dataset, "kits19": write_kits_dataset}
    if layout in volumes:
        return volumes[layout](out, cases, shape, seed=seed, progress=False, difficulty=difficulty)
    kind = next((k for k, layouts in KIND_LAYOUTS.items() if layout in layouts), None)
    if kind is None:
        known = sorted({*volumes, *(lay for layouts in KIND_LAYOUTS.values() for lay in layouts)})
        raise ValueError(f"no synthetic generator writes the {layout!r} layout; these do: {known}")
    return write_2d_dataset(kind, layout, out, cases=cases, seed=seed, difficulty=difficulty, size=tuple(shape))
