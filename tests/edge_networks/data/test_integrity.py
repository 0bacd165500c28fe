"""The integrity check catches a catalogue of broken cases, names the file and the fault."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from edge_networks.data import DatasetIntegrityError, build_datalist, check_case, verify_datalist
from tests.helpers import REPO, SHARED_DATA


def _rewrite(path: Path, fn) -> None:
    """Replace a NIfTI file's array and/or affine: ``fn(data, affine) -> (data, affine)``."""
    img = nib.load(str(path))
    data, affine = fn(np.asarray(img.dataobj), img.affine.copy())
    path.unlink()
    nib.save(nib.Nifti1Image(data, affine), str(path))


def _missing_modality(case: Path, cid: str) -> str:
    (case / f"{cid}_t1ce.nii.gz").unlink()
    return f"{cid}_t1ce.nii.gz: file is missing"


def _shape_mismatch(case: Path, cid: str) -> str:
    _rewrite(case / f"{cid}_t2.nii.gz", lambda d, a: (d[:-2], a))
    return f"{cid}_t2.nii.gz: shape"


def _affine_mismatch(case: Path, cid: str) -> str:
    def shift(d, a):
        a[:3, 3] += 5.0
        return d, a

    _rewrite(case / f"{cid}_seg.nii.gz", shift)
    return f"{cid}_seg.nii.gz: affine"


def _spacing_mismatch(case: Path, cid: str) -> str:
    def zoom(d, a):
        a[:3, :3] *= 1.2
        return d, a

    _rewrite(case / f"{cid}_flair.nii.gz", zoom)
    return f"{cid}_flair.nii.gz: spacing"


def _label_3_in_brats2019(case: Path, cid: str) -> str:
    def put3(d, a):
        d = d.copy()
        d[d == 4] = 3
        d.flat[0] = 3
        return d, a

    _rewrite(case / f"{cid}_seg.nii.gz", put3)
    return f"{cid}_seg.nii.gz: unexpected label value(s) [3]"


def _nan_voxel(case: Path, cid: str) -> str:
    def nan(d, a):
        d = d.astype(np.float32)
        d[5, 5, 5] = np.nan
        return d, a

    _rewrite(case / f"{cid}_t1.nii.gz", nan)
    return f"{cid}_t1.nii.gz: 1 NaN/inf voxel(s)"


def _truncated_gzip(case: Path, cid: str) -> str:
    path = case / f"{cid}_flair.nii.gz"
    raw = path.read_bytes()
    assert gzip.decompress(raw)  # a valid file before
    path.write_bytes(raw[: len(raw) // 2])
    return f"{cid}_flair.nii.gz: unreadable or truncated"


def _four_d(case: Path, cid: str) -> str:
    _rewrite(case / f"{cid}_t2.nii.gz", lambda d, a: (np.stack([d, d], axis=-1), a))
    return f"{cid}_t2.nii.gz: 4D image"


def _not_nifti(case: Path, cid: str) -> str:
    (case / f"{cid}_t1.nii.gz").write_bytes(b"not an image at all")
    return f"{cid}_t1.nii.gz: unreadable"


def _blank_modality(case: Path, cid: str) -> str:
    _rewrite(case / f"{cid}_t1ce.nii.gz", lambda d, a: (np.zeros_like(d), a))
    return f"{cid}_t1ce.nii.gz: every voxel is 0 (a blank image"


FAULTS = [_blank_modality, _missing_modality, _shape_mismatch, _affine_mismatch, _spacing_mismatch,
          _label_3_in_brats2019, _nan_voxel, _truncated_gzip, _four_d, _not_nifti]


@pytest.fixture
def dataset(brats_root, tmp_path) -> Path:
    """A writable BraTS-2019-layout copy of the tiny synthetic cases."""
    (tmp_path / "HGG").mkdir()
    for case in sorted(brats_root.iterdir()):
        shutil.copytree(case, tmp_path / "HGG" / case.name)
    return tmp_path


def test_good_cases_pass(dataset):
    items = build_datalist("brats2019", dataset)
    good, bad = verify_datalist(items, "brats2019")
    assert len(good) == 3 and bad == []


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__.strip("_"))
def test_fault_is_caught_with_file_named(dataset, fault):
    cid = "BraTS2021_00001"
    expected = fault(dataset / "HGG" / cid, cid)
    items = build_datalist("brats2019", dataset)
    report = check_case(next(it for it in items if it["case_id"] == cid), "brats2019")
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems
    # the other cases are still fine, and the error lists only the bad one
    with pytest.raises(DatasetIntegrityError) as err:
        verify_datalist(items, "brats2019")
    assert len(err.value.reports) == 1 and cid in str(err.value) and expected in str(err.value)


def test_skip_bad_reports_and_keeps_good(dataset, tmp_path):
    _label_3_in_brats2019(dataset / "HGG" / "BraTS2021_00000", "BraTS2021_00000")
    _truncated_gzip(dataset / "HGG" / "BraTS2021_00002", "BraTS2021_00002")
    items = build_datalist("brats2019", dataset)
    good, bad = verify_datalist(items, "brats2019", skip_bad=True, num_workers=2, report_path=tmp_path / "r.json")
    assert [it["case_id"] for it in good] == ["BraTS2021_00001"]
    assert sorted(r.case_id for r in bad) == ["BraTS2021_00000", "BraTS2021_00002"]
    assert len(json.loads((tmp_path / "r.json").read_text())["bad"]) == 2


def test_label_3_is_fine_for_brats2023_values(dataset):
    """The same file is valid where label 3 is allowed (checks use the layout's label values)."""
    _label_3_in_brats2019(dataset / "HGG" / "BraTS2021_00001", "BraTS2021_00001")
    item = next(it for it in build_datalist("brats2019", dataset) if it["case_id"] == "BraTS2021_00001")
    assert any("[3]" in p for p in check_case(item, "brats2019").problems)
    assert not any("label value" in p for p in check_case(item, "decathlon").problems if "[3]" in p)


def test_kits_faults(kits_root, tmp_path):
    shutil.copytree(kits_root, tmp_path / "kits")
    seg = tmp_path / "kits" / "case_00001" / "segmentation.nii.gz"
    _rewrite(seg, lambda d, a: (np.where(d == 2, 5, d).astype(np.uint8), a))
    items = build_datalist("kits19", tmp_path / "kits")
    reports = {r.case_id: r for r in (check_case(it, "kits19") for it in items)}
    assert reports["case_00000"].ok
    assert "unexpected label value(s) [5]" in reports["case_00001"].problems[0]


def test_prepare_fails_fast_and_writes_nothing(dataset, tmp_path):
    _missing_modality(dataset / "HGG" / "BraTS2021_00002", "BraTS2021_00002")
    out = tmp_path / "dl.json"
    cmd = [sys.executable, "-m", "edge_networks.data.prepare", "--layout", "brats2019", "--root", str(dataset),
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "BraTS2021_00002_t1ce.nii.gz: file is missing" in proc.stderr
    assert not out.exists()
    proc = subprocess.run(cmd + ["--skip-bad"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(out.read_text())
    assert [s["case_id"] for s in spec["skipped"]] == ["BraTS2021_00002"]
    assert len(spec["training"]) + len(spec["validation"]) == 2


LUNG = SHARED_DATA / "lung_nodule_ct"
DICOM = SHARED_DATA / "abdomen_ct" / "ct_dicom"


@pytest.mark.skipif(not LUNG.is_dir() or not DICOM.is_dir(), reason=f"real scans not found under {SHARED_DATA}")
def test_nrrd_and_dicom_series_are_read_and_their_geometry_checked(tmp_path):
    """The 3D check reads what MONAI's readers read: a real chest CT with its nodule mask in NRRD passes, and so does
    a real DICOM series with a NIfTI label of it (stored in another axis direction: both are compared in RAS). A
    shifted label is caught; a format outside the supported ones is named as such, not as a broken file."""
    for case in ("lung1", "lung2"):
        item = {"case_id": case, "image": str(LUNG / f"{case}_image.nrrd"), "label": str(LUNG / f"{case}_label.nrrd")}
        report = check_case(item, "kits19")
        assert report.ok, report.problems
    seg = nib.load(str(SHARED_DATA / "abdomen_ct" / "example_seg_dicom.nii.gz"))
    label = (np.asarray(seg.dataobj) > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(label, seg.affine), str(tmp_path / "label.nii.gz"))
    item = {"case_id": "dicom", "image": str(DICOM), "label": str(tmp_path / "label.nii.gz")}
    assert check_case(item, "kits19").ok, check_case(item, "kits19").problems
    shifted = seg.affine.copy()
    shifted[:3, 3] += 4.0
    nib.save(nib.Nifti1Image(label, shifted), str(tmp_path / "shifted.nii.gz"))
    report = check_case({**item, "label": str(tmp_path / "shifted.nii.gz")}, "kits19")
    assert any("shifted.nii.gz: affine" in p for p in report.problems), report.problems
    (tmp_path / "scan.xyz").write_bytes(b"\0" * 16)
    report = check_case({"case_id": "x", "image": str(tmp_path / "scan.xyz")}, "kits19", require_label=False)
    assert report.problems == [f"{tmp_path / 'scan.xyz'}: the .xyz format is not supported; supported: NIfTI "
                               "(.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), DICOM (a series "
                               "folder or .dcm)"]
