"""Datalist builders for the real folder layouts, splits and the prepare command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from edge_networks.data import BRATS_MODALITIES, assign_folds, build_datalist, prepare_datalist, split_datalist
from tests.helpers import REPO, TINY_BRATS, to_decathlon
from transforms import ConvertToBratsRegionsd

LOAD = Compose([LoadImaged(["image", "label"], image_only=True), EnsureChannelFirstd(["image", "label"])])


def test_brats2021(brats_root):
    items = build_datalist("brats2021", brats_root)
    assert [it["case_id"] for it in items] == ["BraTS2021_00000", "BraTS2021_00001", "BraTS2021_00002"]
    first = items[0]
    assert [Path(p).name for p in first["image"]] == [f"BraTS2021_00000_{m}.nii.gz" for m in BRATS_MODALITIES]
    d = LOAD(first)
    assert d["image"].shape == (4, *TINY_BRATS) and d["label"].shape == (1, *TINY_BRATS)


def test_brats2019_grade_folders(brats_root, tmp_path):
    for grade, case in (("HGG", "BraTS2021_00000"), ("LGG", "BraTS2021_00001")):
        (tmp_path / grade).mkdir()
        shutil.copytree(brats_root / case, tmp_path / grade / case)
    items = build_datalist("brats2019", tmp_path)
    assert [it["case_id"] for it in items] == ["BraTS2021_00000", "BraTS2021_00001"]
    assert Path(items[1]["label"]).parent.parent.name == "LGG"


def test_brats2023_names(brats_root, tmp_path):
    src = brats_root / "BraTS2021_00000"
    case = tmp_path / "BraTS-GLI-00000-000"
    case.mkdir()
    names = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "seg": "seg"}
    for old, new in names.items():
        os.symlink(src / f"BraTS2021_00000_{old}.nii.gz", case / f"BraTS-GLI-00000-000-{new}.nii.gz")
    (item,) = build_datalist("brats2023", tmp_path)
    suffixes = [Path(p).name.split("-")[-1] for p in item["image"]]
    assert suffixes == ["t2f.nii.gz", "t1n.nii.gz", "t1c.nii.gz", "t2w.nii.gz"]


def test_decathlon_gives_same_channels_and_regions(brats_root, tmp_path):
    root = to_decathlon(brats_root, tmp_path / "Task01_BrainTumour")
    dec_items = build_datalist("decathlon", root)
    brats_items = build_datalist("brats2021", brats_root)
    assert len(dec_items) == 3
    dec = ConvertToBratsRegionsd("label", "decathlon")(LOAD(dec_items[0]))
    bra = ConvertToBratsRegionsd("label", "brats")(LOAD(brats_items[0]))
    assert dec["image"].shape == bra["image"].shape == (4, *TINY_BRATS)
    np.testing.assert_array_equal(dec["image"].numpy(), bra["image"].numpy())
    np.testing.assert_array_equal(dec["label"].numpy(), bra["label"].numpy())
    assert bra["label"].sum() > 0


def test_decathlon_rejects_other_channel_order(brats_root, tmp_path):
    root = to_decathlon(brats_root, tmp_path / "task")
    spec = json.loads((root / "dataset.json").read_text())
    spec["modality"] = {"0": "T1w", "1": "FLAIR", "2": "t1gd", "3": "T2w"}
    (root / "dataset.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="modality order"):
        build_datalist("decathlon", root)


def test_kits19(kits_root):
    items = build_datalist("kits19", kits_root)
    assert [it["case_id"] for it in items] == ["case_00000", "case_00001"]
    assert Path(items[0]["image"]).name == "imaging.nii.gz" and Path(items[0]["label"]).name == "segmentation.nii.gz"


def test_plain_datalist(tmp_path):
    (tmp_path / "a.nii.gz").touch()
    (tmp_path / "dl.json").write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "a.nii.gz"}]}))
    (item,) = build_datalist("datalist", tmp_path / "dl.json")
    assert item["image"] == str(tmp_path / "a.nii.gz") and item["case_id"] == "a"


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_datalist("kits19", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no kits19 case"):
        build_datalist("kits19", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset layout"):
        build_datalist("brats2018", tmp_path)


def test_split_and_folds_deterministic():
    items = [{"case_id": f"c{i:03d}", "image": "x", "label": "y"} for i in range(50)]
    train, val = split_datalist(items, 0.2, seed=3)
    assert len(train) == 40 and len(val) == 10
    assert {it["case_id"] for it in train}.isdisjoint(it["case_id"] for it in val)
    assert split_datalist(list(reversed(items)), 0.2, seed=3) == (train, val)  # scan order does not matter
    assert split_datalist(items, 0.2, seed=4)[1] != val
    folds = assign_folds(items, 5, seed=3)
    assert sorted(np.bincount([it["fold"] for it in folds]).tolist()) == [10] * 5
    assert assign_folds(items, 5, seed=3) == folds


def test_prepare_command_writes_repeatable_json(brats_root, tmp_path):
    out1, out2 = tmp_path / "dl1.json", tmp_path / "dl2.json"
    for out in (out1, out2):
        proc = subprocess.run(
            [sys.executable, "-m", "edge_networks.data.prepare", "--layout", "brats2021", "--root", str(brats_root),
             "--out", str(out), "--folds", "3", "--seed", "1"],
            capture_output=True, text=True, cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr
    assert out1.read_text() == out2.read_text()
    spec = json.loads(out1.read_text())
    assert spec["layout"] == "brats2021" and spec["label_convention"] == "brats"
    assert len(spec["training"]) == 2 and len(spec["validation"]) == 1
    assert sorted(it["fold"] for it in spec["training"] + spec["validation"]) == [0, 1, 2]
    assert prepare_datalist("brats2021", brats_root, num_folds=3, seed=1)["validation"] == spec["validation"]
