"""Synthetic datasets in nnU-Net v2's raw format and the Medical Segmentation Decathlon's
(:mod:`edge_networks.data.dataset_json`), from the project's realistic generators:

- ``brain_mri``: 3D, four MRI channels (FLAIR, T1, T1ce, T2) and nnU-Net's BraTS region labels (Dataset137's
  convention: 1 oedema, 2 non-enhancing core, 3 enhancing; regions whole tumour [1, 2, 3], tumour core [2, 3],
  enhancing tumour [3]); in MSD form the plain labels (MSD has no regions);
- ``ct``: 3D abdominal CT in HU with plain labels 1 kidney, 2 tumour;
- ``rgb2d``: 2D RGB dermoscopy photographs with plain labels 1 lesion.

Any 3D file ending MONAI writes (``.nii.gz``, ``.nrrd``, ``.mha``, ...); 2D files are PNG.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from transforms.writers import atomic_folder

from .io import write_volume

__all__ = ["KINDS", "write_nnunet_dataset", "write_msd_dataset"]

KINDS = ("brain_mri", "ct", "rgb2d")
_BRATS_TO_NNUNET = {2: 1, 1: 2, 4: 3}  # oedema, non-enhancing core, enhancing (nnU-Net's Dataset137)


def _case(kind: str, shape: Sequence[int], seed: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(channels, label, affine) of one case; 2D: channels ``[(H, W, 3)]``, label ``(H, W)``, affine None."""
    if kind == "brain_mri":
        from .brats import make_brats_case

        case = make_brats_case(shape, seed=seed)
        seg = np.zeros(case.seg.shape, np.uint8)
        for old, new in _BRATS_TO_NNUNET.items():
            seg[case.seg == old] = new
        return [case.images[m] for m in ("flair", "t1", "t1ce", "t2")], seg, case.affine
    if kind == "ct":
        from .kits import make_kits_case

        case = make_kits_case(shape, seed=seed)
        return [case.image], case.seg.astype(np.uint8), case.affine
    if kind == "rgb2d":
        from .images2d import dermoscopy

        case = dermoscopy(int(shape[0]), int(shape[1]), np.random.default_rng(list(seed)))
        return [case.image], next(iter(case.masks.values())).astype(np.uint8), None
    raise ValueError(f"unknown synthetic kind {kind!r}; choose one of {list(KINDS)}")


def _spec_labels(kind: str, regions: bool) -> tuple[dict, dict]:
    """(nnU-Net labels, channel names) of a kind."""
    if kind == "brain_mri":
        labels = {"background": 0, "whole tumour": [1, 2, 3], "tumour core": [2, 3], "enhancing tumour": 3} if regions \
            else {"background": 0, "oedema": 1, "non-enhancing tumour": 2, "enhancing tumour": 3}
        return labels, {"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"}
    if kind == "ct":
        return {"background": 0, "kidney": 1, "tumour": 2}, {"0": "CT"}
    return {"background": 0, "lesion": 1}, {"0": "R", "1": "G", "2": "B"}


def _write_2d(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(str(path))


def write_nnunet_dataset(kind: str, out: str | Path, cases: int, shape: Sequence[int], test_cases: int = 0,
                         file_ending: str = ".nii.gz", seed: int = 0, regions: bool = True) -> Path:
    """An nnU-Net v2 raw dataset of ``cases`` training and ``test_cases`` test cases of ``kind`` in ``out``.

    Args:
        kind: one of :data:`KINDS`.
        out: the dataset folder (``DatasetXXX_Name``); replaced if it exists.
        cases: labelled training cases (``imagesTr``, ``labelsTr``).
        shape: voxels per axis (``brain_mri`` ``(x, y, z)``, ``ct`` ``(z, y, x)``) or ``(height, width)``.
        test_cases: unlabelled cases in ``imagesTs``. Defaults to 0.
        file_ending: 3D file format. Defaults to ``".nii.gz"`` (2D: always ``.png``).
        seed: case ``i`` comes from ``(seed, i)``. Defaults to 0.
        regions: ``brain_mri``: nnU-Net's region-based labels (else the plain labels). Defaults to True.

    Returns:
        ``out``.
    """
    out = Path(out)
    ending = ".png" if kind == "rgb2d" else file_ending
    labels, channels = _spec_labels(kind, regions)

    def write(root: Path) -> None:
        for folder in ("imagesTr", "labelsTr", "imagesTs"):
            (root / folder).mkdir()
        for i in range(cases + test_cases):
            images, label, affine = _case(kind, shape, (seed, i))
            test = i >= cases
            case = f"case_{i:03d}"
            for c, image in enumerate(images):
                target = root / ("imagesTs" if test else "imagesTr") / f"{case}_{c:04d}{ending}"
                _write_2d(target, image) if affine is None else write_volume(target, image, affine)
            if not test:
                target = root / "labelsTr" / f"{case}{ending}"
                _write_2d(target, label) if affine is None else write_volume(target, label, affine)
        spec = {"name": out.name, "channel_names": channels, "labels": labels, "numTraining": cases,
                "file_ending": ending}
        if kind == "brain_mri" and regions:
            spec["regions_class_order"] = [1, 2, 3]
        (root / "dataset.json").write_text(json.dumps(spec, indent=2))

    with atomic_folder(out) as tmp:
        write(tmp)
    return out


def write_msd_dataset(kind: str, out: str | Path, cases: int, shape: Sequence[int], test_cases: int = 0,
                      file_ending: str = ".nii.gz", seed: int = 0) -> Path:
    """A Medical Segmentation Decathlon dataset (``TaskXX_Name``) of ``kind`` in ``out``: several channels are
    stacked into one 4D file, channels last, as the Decathlon stores them; MSD labels are plain (no regions).
    Arguments as :func:`write_nnunet_dataset`."""
    out = Path(out)
    ending = ".png" if kind == "rgb2d" else file_ending
    labels, channels = _spec_labels(kind, regions=False)

    def write(root: Path) -> None:
        for folder in ("imagesTr", "labelsTr", "imagesTs"):
            (root / folder).mkdir()
        training, test = [], []
        for i in range(cases + test_cases):
            images, label, affine = _case(kind, shape, (seed, i))
            name = f"case_{i:03d}{ending}"
            folder = "imagesTs" if i >= cases else "imagesTr"
            if affine is None:
                _write_2d(root / folder / name, images[0])
            else:
                data = images[0] if len(images) == 1 else np.stack(images, axis=-1)
                write_volume(root / folder / name, data, affine)
            if i >= cases:
                test.append(f"./imagesTs/{name}")
                continue
            _write_2d(root / "labelsTr" / name, label) if affine is None else \
                write_volume(root / "labelsTr" / name, label, affine)
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        spec = {"name": out.name, "modality": channels, "labels": {str(v): k for k, v in labels.items()},
                "numTraining": cases, "numTest": test_cases, "training": training, "test": test}
        (root / "dataset.json").write_text(json.dumps(spec, indent=2))

    with atomic_folder(out) as tmp:
        write(tmp)
    return out
