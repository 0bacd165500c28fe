"""nnU-Net v2 and Decathlon datasets: ``dataset.json`` read and checked, cases listed, splits (``splits_final.json``;
``imagesTs`` never trained on), the integrity check naming each bad file of a broken copy, and the fingerprint and
plan against values computed by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from edge_networks.data import DatasetIntegrityError, prepare_datalist
from edge_networks.data.dataset_json import DatasetJsonError, dataset_items, read_dataset, resolve_layout
from edge_networks.data.plan import PLAN_FILE, compute_fingerprint, load_or_plan, make_plan
from edge_networks.data.synthetic.dataset_json import write_msd_dataset, write_nnunet_dataset
from edge_networks.data.synthetic.io import write_volume


@pytest.fixture(scope="module")
def brain(tmp_path_factory) -> Path:
    """An nnU-Net dataset of four MRI channels with region labels: three training cases and one test case."""
    return write_nnunet_dataset("brain_mri", tmp_path_factory.mktemp("nn") / "Dataset001_Brain", 3, (24, 24, 16),
                                test_cases=1, seed=3)


def _spec(root: Path, **changes) -> Path:
    spec = json.loads((root / "dataset.json").read_text())
    spec.update(changes)
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def test_nnunet_dataset_json_and_cases(brain):
    desc = read_dataset(brain)
    assert desc.format == "nnunet" and desc.channel_names == ("FLAIR", "T1", "T1ce", "T2")
    assert desc.region_based and desc.regions_class_order == (1, 2, 3)
    assert desc.foreground == {"whole tumour": (1, 2, 3), "tumour core": (2, 3), "enhancing tumour": (3,)}
    assert desc.label_values == (0, 1, 2, 3)
    assert desc.output_labels == {0: "background", 1: "whole tumour", 2: "tumour core", 3: "enhancing tumour"}
    items = dataset_items(brain)
    assert [it["case_id"] for it in items] == ["case_000", "case_001", "case_002", "case_003"]
    assert items[0]["image"] == [str(brain / "imagesTr" / f"case_000_{c:04d}.nii.gz") for c in range(4)]
    assert items[0]["label"] == str(brain / "labelsTr" / "case_000.nii.gz")
    assert items[3]["split"] == "test" and "label" not in items[3]  # imagesTs
    assert resolve_layout("nnunet", brain) == desc.layout
    with pytest.raises(ValueError, match="a nnunet dataset, not msd"):
        resolve_layout("msd", brain)


def test_imagests_is_never_trained_on_and_splits_final_is_honoured(brain, tmp_path):
    content = prepare_datalist("nnunet", brain)
    assert [it["case_id"] for it in content["testing"]] == ["case_003"]
    assert "case_003" not in {it["case_id"] for it in content["training"] + content["validation"]}
    assert content["layout"]["name"] == "nnunet" and content["layout"]["modalities"] == ["FLAIR", "T1", "T1ce", "T2"]
    copy = Path(shutil.copytree(brain, tmp_path / "Dataset001_Brain"))
    (copy / "splits_final.json").write_text(json.dumps([{"train": ["case_000", "case_002"], "val": ["case_001"]},
                                                        {"train": ["case_001"], "val": ["case_000", "case_002"]}]))
    content = prepare_datalist("nnunet", copy)
    assert [it["case_id"] for it in content["validation"]] == ["case_001"]
    assert [it["case_id"] for it in content["training"]] == ["case_000", "case_002"]
    (copy / "splits_final.json").write_text(json.dumps({"train": []}))
    with pytest.raises(DatasetJsonError, match="no fold 0 with 'train' and 'val'"):
        dataset_items(copy)


def test_msd_dataset_with_4d_images(tmp_path):
    root = write_msd_dataset("brain_mri", tmp_path / "Task01_Brain", 2, (24, 24, 16), test_cases=1, seed=3)
    desc = read_dataset(root)
    assert desc.format == "msd" and desc.layout.image_ndim == 4 and not desc.region_based
    assert desc.labels == {"background": 0, "oedema": 1, "non-enhancing tumour": 2, "enhancing tumour": 3}
    items = dataset_items(root)
    assert [(it["case_id"], it.get("split")) for it in items] == [("case_000", None), ("case_001", None),
                                                                   ("case_002", "test")]
    assert nib.load(items[0]["image"]).shape == (24, 24, 16, 4)
    content = prepare_datalist("msd", root)  # the integrity check reads 4D images with 4 channels
    assert len(content["training"]) + len(content["validation"]) == 2 and len(content["testing"]) == 1


def test_a_bad_dataset_json_lists_every_fault(brain, tmp_path):
    root = Path(shutil.copytree(brain, tmp_path / "d"))
    spec = json.loads((root / "dataset.json").read_text())
    del spec["regions_class_order"]
    spec["channel_names"] = {"0": "FLAIR", "2": "T2"}
    spec["numTraining"] = 5
    (root / "dataset.json").write_text(json.dumps(spec))
    with pytest.raises(DatasetJsonError) as e:
        read_dataset(root)
    msg = str(e.value)
    assert "channel keys ['0', '2'] are not 0, 1, 2" in msg and "need 'regions_class_order'" in msg
    _spec(root, channel_names={"0": "CT"}, labels={"background": 0, "a": 1, "b": 3}, regions_class_order=None)
    with pytest.raises(DatasetJsonError, match=r"label values \[0, 1, 3\] are not consecutive"):
        read_dataset(root)
    _spec(root, labels={"background": 0, "a": 1, "b": 2})
    with pytest.raises(DatasetJsonError, match="numTraining is 5 but labelsTr holds 3 .nii.gz label"):
        read_dataset(root)
    (root / "dataset.json").write_text("{}")
    with pytest.raises(DatasetJsonError, match="neither nnU-Net v2"):
        read_dataset(root)
    (root / "dataset.json").unlink()
    with pytest.raises(FileNotFoundError, match="dataset.json: missing"):
        read_dataset(root)


def test_the_integrity_check_names_each_bad_file_of_a_broken_copy(brain, tmp_path):
    root = Path(shutil.copytree(brain, tmp_path / "broken"))
    (root / "imagesTr" / "case_000_0002.nii.gz").unlink()  # a missing channel file
    label = nib.load(str(root / "labelsTr" / "case_001.nii.gz"))
    data = np.asarray(label.dataobj).copy()
    data[0, 0, 0] = 7  # a label value dataset.json does not define
    nib.save(nib.Nifti1Image(data, label.affine), str(root / "labelsTr" / "case_001.nii.gz"))
    moved = nib.load(str(root / "imagesTr" / "case_002_0001.nii.gz"))
    shifted = moved.affine.copy()
    shifted[0, 3] += 5.0  # one channel off the others' grid
    nib.save(nib.Nifti1Image(np.asarray(moved.dataobj), shifted), str(root / "imagesTr" / "case_002_0001.nii.gz"))
    blank = root / "imagesTs" / "case_003_0003.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((24, 24, 16), np.float32), nib.load(str(blank)).affine), str(blank))
    with pytest.raises(DatasetIntegrityError) as e:
        prepare_datalist("nnunet", root)
    msg = str(e.value)
    assert f"{root}/imagesTr/case_000_0002.nii.gz: file is missing" in msg
    assert f"{root}/labelsTr/case_001.nii.gz: unexpected label value(s) [7], allowed [0, 1, 2, 3]" in msg
    assert f"{root}/imagesTr/case_002_0001.nii.gz: affine (orientation/origin) differs" in msg
    assert f"{root}/imagesTs/case_003_0003.nii.gz: every voxel is 0 (a blank image" in msg
    assert msg.startswith("4 case(s) failed")


def _write_tiny_ct(root: Path) -> Path:
    """Two hand-made CT cases: A is 4x4x2 at 1x1x3 mm, B 4x4x4 at 1x1x5 mm; foreground values 100/200 (A) and
    300/400 (B), one voxel each, label 1 and 2."""
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    for case, shape, sp, values in (("A", (4, 4, 2), 3.0, (100, 200)), ("B", (4, 4, 4), 5.0, (300, 400))):
        affine = np.diag([1.0, 1.0, sp, 1.0])
        img = np.full(shape, -1000, np.int16)
        lab = np.zeros(shape, np.uint8)
        img[0, 0, 0], img[1, 1, 1] = values
        lab[0, 0, 0], lab[1, 1, 1] = 1, 2
        write_volume(root / "imagesTr" / f"{case}_0000.nrrd", img, affine)
        write_volume(root / "labelsTr" / f"{case}.nrrd", lab, affine)
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {
        "background": 0, "kidney": 1, "tumour": 2}, "numTraining": 2, "file_ending": ".nrrd"}))
    return root


def test_fingerprint_and_plan_against_hand_computed_values(tmp_path):
    root = _write_tiny_ct(tmp_path / "Dataset009_Tiny")
    desc = read_dataset(root)
    fp = compute_fingerprint(desc)
    assert fp["cases"] == ["A", "B"]
    assert fp["spacings"] == [[1.0, 1.0, 3.0], [1.0, 1.0, 5.0]] and fp["shapes"] == [[4, 4, 2], [4, 4, 4]]
    assert fp["median_spacing"] == [1.0, 1.0, 4.0] and fp["median_shape"] == [4.0, 4.0, 3.0]
    (ct,) = fp["channels"]
    # foreground values 100, 200, 300, 400: mean 250, population std sqrt(12500), percentiles by linear interpolation
    assert ct["is_ct"] and ct["foreground_voxels"] == 4
    assert ct["mean"] == 250.0 and ct["std"] == pytest.approx(111.80340, abs=1e-4) and ct["median"] == 250.0
    assert ct["percentile_00_5"] == pytest.approx(101.5) and ct["percentile_99_5"] == pytest.approx(398.5)
    # 96 voxels: 92 background, 2 kidney, 2 tumour
    assert fp["label_fractions"] == {"0": 92 / 96, "1": 2 / 96, "2": 2 / 96}
    plan = make_plan(fp, desc)
    assert plan["spacing"] == [1.0, 1.0, 4.0] and not plan["anisotropic"]
    assert plan["intensity_schemes"] == [{"scheme": "ct", "lower": pytest.approx(101.5),
                                          "upper": pytest.approx(398.5), "mean": 250.0,
                                          "std": pytest.approx(111.80340, abs=1e-4)}]
    # A at 4 mm: 2 * 3 / 4 = 1.5 -> 2 slices; B: 4 * 5 / 4 = 5; the median 3.5; patches never below 32
    assert plan["median_shape_at_spacing"] == [4, 4, 3] and plan["patch_size"] == [32, 32, 32]
    saved = load_or_plan(root)
    assert (root / PLAN_FILE).is_file() and saved["plan"] == json.loads(json.dumps(plan))
    (root / PLAN_FILE).write_text(json.dumps({**saved, "plan": {"marker": 1}}))
    assert load_or_plan(root)["plan"] == {"marker": 1}  # computed once, reused for the same cases and settings
    assert load_or_plan(root, max_voxels=64 ** 3)["plan"]["max_voxels"] == 64 ** 3  # other settings: recomputed


def test_plan_rules_on_an_anisotropic_fingerprint():
    """nnU-Net's rules on thick-slice CT, computed by hand: median spacing (0.75, 0.75, 5) is anisotropic (5 > 3 x
    0.75 and 50 x 3 < 512 voxels), so z takes the 10th percentile of (2.5, 5, 5) = 3.0; shapes at (0.75, 0.75, 3)
    have the median (512, 512, 83); the patch starts at 1/spacing scaled to 256^3 voxels (406, 406, 102), is
    clipped to the median shape and rounded down to multiples of 32 (384, 384, 64), then the axis largest relative
    to the median shape shrinks by 32 until it holds at most 128^3 voxels: (256, 256, 32)."""
    from edge_networks.data.dataset_json import DatasetDescription

    desc = DatasetDescription(Path("/x"), "nnunet", "x", ("CT", "T2"), {"background": 0, "a": 1}, None, ".nii.gz", 3)
    fp = {"spacings": [[0.7, 0.7, 5], [0.8, 0.8, 5], [0.75, 0.75, 2.5]],
          "shapes": [[512, 512, 40], [512, 512, 50], [512, 512, 100]],
          "channels": [{"name": "CT", "mean": 50.0, "std": 10.0, "percentile_00_5": -100.0, "percentile_99_5": 300.0},
                       {"name": "T2"}]}
    plan = make_plan(fp, desc)
    assert plan["spacing"] == [0.75, 0.75, 3.0] and plan["anisotropic"]
    assert plan["median_shape_at_spacing"] == [512, 512, 83]
    assert plan["patch_size"] == [256, 256, 32]
    assert plan["intensity_schemes"][1] == {"scheme": "zscore"}  # any other channel name: per-image z-score
    assert make_plan(fp, desc, max_voxels=96 ** 3)["patch_size"] == [160, 160, 32]


def test_a_dicom_series_folder_is_an_nnunet_channel(tmp_path):
    """A real CT DICOM series (../shared/data/abdomen_ct) stands in for a channel file as the folder
    ``imagesTr/<case>_0000/``; its NIfTI label passes the geometry check against it."""
    from tests.helpers import shared_file

    series = shared_file("abdomen_ct", "ct_dicom")
    seg = nib.load(str(shared_file("abdomen_ct", "example_seg_dicom.nii.gz")))
    root = tmp_path / "Dataset011_Abdomen"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    (root / "imagesTr" / "abd_0000").symlink_to(series, target_is_directory=True)
    label = (np.asarray(seg.dataobj) > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(label, seg.affine), str(root / "labelsTr" / "abd.nii.gz"))
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {
        "background": 0, "organ": 1}, "numTraining": 1, "file_ending": ".nii.gz"}))
    (item,) = dataset_items(root)
    assert item == {"case_id": "abd", "image": str(root / "imagesTr" / "abd_0000"),
                    "label": str(root / "labelsTr" / "abd.nii.gz")}
    content = prepare_datalist("nnunet", root)  # the integrity check reads the series and compares geometry
    assert [it["case_id"] for it in content["training"] + content["validation"]] == ["abd"]
