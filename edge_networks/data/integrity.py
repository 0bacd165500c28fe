"""Dataset integrity check, run before any training or inference (in the spirit of nnU-Net's verification).

2D layouts are checked by :mod:`.integrity2d` (missing, truncated, empty, size mismatch, mask values, TIFF stacks).

For every case: all files exist and are readable (a truncated ``.nii.gz`` is caught by reading the whole
array), images have the layout's dimensionality, modalities and label share shape, spacing and affine (within
tolerances), no NaN or inf, no blank (constant) image, and the label holds only the layout's label values.
Every fault is reported as ``<file>: <what is wrong>``; all cases are checked before anything is raised, so one run
lists every bad case.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from .layouts import LAYOUTS, get_layout

__all__ = ["CaseReport", "DatasetIntegrityError", "check_case", "read_volume", "verify_datalist"]


class DatasetIntegrityError(ValueError):
    """Raised when cases fail the integrity check; ``reports`` holds every bad case."""

    def __init__(self, reports: Sequence[CaseReport]):
        self.reports = list(reports)
        lines = [f"{len(self.reports)} case(s) failed the dataset integrity check:"]
        for r in self.reports:
            lines.extend(f"  [{r.case_id}] {p}" for p in r.problems)
        super().__init__("\n".join(lines))


@dataclass
class CaseReport:
    """Faults found in one case (empty ``problems``: the case is good)."""

    case_id: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Volume:
    path: str
    shape: tuple[int, ...]
    affine: np.ndarray
    data: np.ndarray


# the 3D formats the check reads: NIfTI with nibabel; the others with MONAI's ITKReader, as the bundles' LoadImaged
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
SUPPORTED_3D = "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), DICOM (a series folder or .dcm)"


def _suffix(p: Path) -> str:
    name = p.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else p.suffix.lower()


def _canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The volume reoriented to RAS (as ``nibabel.as_closest_canonical``): files that store one grid in other axis
    orders or directions (a DICOM series and a NIfTI label of it) compare equal."""
    ornt = nib.orientations.io_orientation(affine)
    to_ras = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))
    if np.array_equal(to_ras, [[0, 1], [1, 1], [2, 1]]):
        return data, affine
    shape = data.shape[:3]
    data = nib.orientations.apply_orientation(data, to_ras)
    return data, affine @ nib.orientations.inv_ornt_aff(to_ras, shape)


def read_volume(path: str, problems: list[str]) -> _Volume | None:
    """A 3D file or DICOM series folder in RAS (``data``, ``affine``, ``shape``, ``path``), or None with the fault
    appended to ``problems`` (missing, unsupported format, unreadable or truncated)."""
    p = Path(path)
    if p.is_dir():  # a DICOM series
        fmt = "itk"
    elif not p.is_file():
        problems.append(f"{path}: file is missing")
        return None
    else:
        suffix = _suffix(p)
        fmt = "nifti" if suffix in NIFTI_SUFFIXES else "itk" if suffix in ITK_SUFFIXES else None
        if fmt is None:
            problems.append(f"{path}: the {suffix or 'suffix-less'} format is not supported; supported: {SUPPORTED_3D}")
            return None
    try:
        if fmt == "nifti":
            img = nib.load(str(p))
            data, affine = np.asanyarray(img.dataobj), np.asarray(img.affine, dtype=np.float64)
        else:  # MONAI's ITK reader: (x, y, z) data and a RAS affine, as nibabel gives them
            from monai.data import ITKReader

            reader = ITKReader()
            data, meta = reader.get_data(reader.read(str(p)))
            affine = np.asarray(meta["affine"], dtype=np.float64)
    except (EOFError, zlib.error, OSError, ValueError, RuntimeError, ImageFileError) as e:
        problems.append(f"{path}: unreadable or truncated file ({type(e).__name__}: {e})")
        return None
    if data.ndim >= 3:
        data, affine = _canonical(data, affine)
    return _Volume(str(p), tuple(int(s) for s in data.shape), affine, data)


def _spatial(vol: _Volume, ndim: int, n_channels: int, problems: list[str]) -> tuple[int, ...] | None:
    shape = vol.shape
    if ndim == 3 and len(shape) == 4 and shape[3] == 1:  # trailing singleton dim: harmless
        shape = shape[:3]
    if len(shape) != ndim:
        problems.append(f"{vol.path}: {len(vol.shape)}D image of shape {vol.shape}, expected {ndim}D")
        return None
    if ndim == 4 and shape[3] != n_channels:
        problems.append(f"{vol.path}: {shape[3]} channels in the 4th dimension, expected {n_channels}")
        return None
    return shape[:3]


def check_case(
    item: dict,
    layout: str,
    affine_atol: float = 1e-3,
    spacing_rtol: float = 1e-3,
    require_label: bool = True,
) -> CaseReport:
    """Check one datalist item of ``layout``; returns its :class:`CaseReport`.

    Args:
        item: ``{"case_id", "image": path or list of paths, "label": path}``.
        layout: a key of :data:`~edge_networks.data.layouts.LAYOUTS`.
        affine_atol: absolute tolerance (mm) on affine entries between the files of a case.
        spacing_rtol: relative tolerance on voxel spacing between the files of a case.
        require_label: a missing ``label`` key is a fault (training); ``False`` for inference.
    """
    lay = get_layout(layout)
    case_id = str(item.get("case_id", item.get("image")))
    if lay.spatial_dims == 2:
        from .integrity2d import check_case_2d

        return CaseReport(case_id, check_case_2d(item, lay, require_label))
    problems: list[str] = []
    images = item.get("image")
    if images is None:
        return CaseReport(case_id, ["datalist item has no 'image'"])
    images = list(images) if isinstance(images, list | tuple) else [images]
    if lay.image_ndim == 3 and len(images) != len(lay.modalities):
        expected = f"{len(lay.modalities)} ({', '.join(lay.modalities)})"
        problems.append(f"{len(images)} image file(s) listed, expected {expected}")
    vols: list[tuple[_Volume, tuple[int, ...]]] = []
    for path in images:
        vol = read_volume(path, problems)
        if vol is None:
            continue
        shape = _spatial(vol, lay.image_ndim, len(lay.modalities), problems)
        if shape is None:
            continue
        if np.issubdtype(vol.data.dtype, np.floating) and not np.isfinite(vol.data).all():
            n_bad = int((~np.isfinite(vol.data)).sum())
            problems.append(f"{path}: {n_bad} NaN/inf voxel(s)")
        elif vol.data.size and vol.data.min() == vol.data.max():
            problems.append(f"{path}: every voxel is {vol.data.flat[0]:g} (a blank image: failed export or "
                            "conversion?)")
        vols.append((vol, shape))
    label = item.get("label")
    label_vol = None
    if label is None:
        if require_label:
            problems.append("datalist item has no 'label'")
    else:
        vol = read_volume(label, problems)
        if vol is not None:
            shape = _spatial(vol, 3, 1, problems)
            if shape is not None:
                problems.extend(_label_values(vol, lay.label_values))
                label_vol = (vol, shape)
    every = vols + ([label_vol] if label_vol else [])
    if len(every) > 1:
        # the reference geometry is the one most files of the case agree on, so the odd file is the one named
        agree = [sum(not _geometry(v, s, r, rs, affine_atol, spacing_rtol) for v, s in every) for r, rs in every]
        ref, ref_shape = every[int(np.argmax(agree))]
        for vol, shape in every:
            if vol is not ref:
                problems.extend(_geometry(vol, shape, ref, ref_shape, affine_atol, spacing_rtol))
    return CaseReport(case_id, problems)


def _geometry(vol: _Volume, shape, ref: _Volume, ref_shape, atol: float, rtol: float) -> list[str]:
    if shape != ref_shape:
        return [f"{vol.path}: shape {shape} differs from {Path(ref.path).name} {ref_shape}"]
    out = []
    sp, ref_sp = np.linalg.norm(vol.affine[:3, :3], axis=0), np.linalg.norm(ref.affine[:3, :3], axis=0)
    if not np.allclose(sp, ref_sp, rtol=rtol, atol=0):
        out.append(f"{vol.path}: spacing {np.round(sp, 4).tolist()} differs from {Path(ref.path).name} "
                   f"{np.round(ref_sp, 4).tolist()}")
    elif not np.allclose(vol.affine, ref.affine, atol=atol, rtol=0):
        diff = float(np.abs(vol.affine - ref.affine).max())
        out.append(f"{vol.path}: affine (orientation/origin) differs from {Path(ref.path).name} by up to {diff:.4g}")
    return out


def _label_values(vol: _Volume, allowed: tuple[int, ...]) -> list[str]:
    data = vol.data
    if np.issubdtype(data.dtype, np.floating):
        if not np.isfinite(data).all():
            return [f"{vol.path}: NaN/inf in the label"]
        if not np.array_equal(data, np.round(data)):
            return [f"{vol.path}: non-integer label values"]
    values = np.unique(data).astype(np.int64)
    bad = sorted(set(values.tolist()) - set(allowed))
    if bad:
        return [f"{vol.path}: unexpected label value(s) {bad}, allowed {list(allowed)}"]
    return []


def _check_star(args) -> CaseReport:
    return check_case(*args)


def verify_datalist(
    items: Sequence[dict],
    layout: str,
    skip_bad: bool = False,
    num_workers: int = 1,
    require_label: bool = True,
    report_path: str | None = None,
) -> tuple[list[dict], list[CaseReport]]:
    """Check every case; raise on faults, or with ``skip_bad`` drop the bad cases and report them.

    Args:
        items: datalist items.
        layout: the dataset layout (sets label values, modalities, dimensionality).
        skip_bad: return the good items instead of raising.
        num_workers: processes reading files in parallel.
        require_label: see :func:`check_case`.
        report_path: write a JSON report of every case's faults there.

    Returns:
        ``(good_items, bad_reports)``.

    Raises:
        DatasetIntegrityError: any case is bad and ``skip_bad`` is False.
    """
    args = [(it, layout, 1e-3, 1e-3, require_label) for it in items]
    if num_workers > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            reports = list(pool.map(_check_star, args))
    else:
        reports = [_check_star(a) for a in args]
    bad = [r for r in reports if not r.ok]
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        with open(report_path, "w") as f:
            json.dump({"checked": len(reports), "bad": [asdict(r) for r in bad]}, f, indent=2)
    if bad and not skip_bad:
        raise DatasetIntegrityError(bad)
    bad_ids = {r.case_id for r in bad}
    return [it for it, r in zip(items, reports) if r.case_id not in bad_ids], bad


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_networks.data.integrity --datalist D.json --layout L``: check a saved datalist."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--datalist", required=True, help="datalist JSON written by edge_networks.data.prepare")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="default: the datalist's 'layout' key")
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--skip-bad", action="store_true", help="report bad cases instead of failing")
    args = parser.parse_args(argv)
    with open(args.datalist) as f:
        spec = json.load(f)
    layout = args.layout or spec.get("layout")
    if layout is None:
        parser.error("the datalist has no 'layout' key; pass --layout")
    items = [it for sec in ("training", "validation") for it in spec.get(sec, [])]
    try:
        good, bad = verify_datalist(items, layout, skip_bad=args.skip_bad, num_workers=args.num_workers)
    except DatasetIntegrityError as e:
        print(e, file=sys.stderr)
        return 1
    for r in bad:
        print(f"skipped [{r.case_id}]: " + "; ".join(r.problems), file=sys.stderr)
    print(f"{len(good)} case(s) passed the integrity check, {len(bad)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
