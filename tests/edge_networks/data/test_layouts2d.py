"""2D layouts: generator -> prepare -> integrity check -> MONAI loading pipeline, for every layout, with the real
releases' split sizes (tiny images); the label-convention transforms on what each release stores."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from monai.transforms import Compose, LoadImaged

from edge_networks.data import build_datalist, prepare_datalist
from edge_networks.data.synthetic.layouts2d import write_2d_dataset
from tests.helpers import REPO
from transforms import (
    BinariseSoftMapd,
    CombineMasksd,
    ConvertToDiscCupd,
    EMMembranesd,
    LoadImage2Dd,
    ThresholdMaskd,
)
from transforms.readers import Image2DReader

# (kind, layout, variant): (training, validation, testing) after `prepare` with its defaults -- the releases'
# official splits (DATASETS_2D.md), else the papers' counts; written out by hand, not read from the generator.
SPLITS = {
    ("fundus", "drive", None): (16, 4, 20),
    ("fundus", "refuge", None): (400, 400, 400),
    ("fundus", "drishti_gs", None): (40, 10, 51),
    ("fundus", "rim_one_r3", None): (99, 60, 0),
    ("fundus", "rim_one_r1", None): (108, 27, 34),
    ("fundus", "origa", None): (260, 65, 325),
    ("fundus", "messidor", None): (768, 192, 240),
    ("cxr", "montgomery", None): (80, 58, 0),
    ("cxr", "shenzhen", None): (452, 114, 96),
    ("dermoscopy", "isic2017", None): (2000, 150, 600),
    ("dermoscopy", "isic2018", None): (2594, 100, 1000),
    ("endoscopy", "kvasir_seg", None): (800, 200, 0),
    ("endoscopy", "cvc_colondb", "png380"): (304, 76, 0),
    ("endoscopy", "cvc_colondb", "bmp300"): (240, 60, 0),
    ("em", "isbi2012_em", None): (24, 6, 30),
    ("ct_slice", "luna2d", None): (213, 54, 0),  # 267 slices split by scan (3 per scan): ET-Net's 214/53 nearest
    ("oct", "images_masks", None): (64, 16, 20),
}
TINY = (16, 20)  # rows, columns

# what a bundle puts after loading, per layout: (label transform, channels of the label after it)
LABELS = {
    "drive": (ThresholdMaskd(["label", "mask"]), 1),
    "refuge": (ConvertToDiscCupd("label"), 2),
    "drishti_gs": (BinariseSoftMapd("label", "all"), 2),
    "montgomery": (CombineMasksd("label"), 1),
    "isbi2012_em": (EMMembranesd("label"), 1),
    "images_masks": (None, 1),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    cache = {}

    def make(kind, layout, variant):
        key = (kind, layout, variant)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"{layout}_{variant}")
            write_2d_dataset(kind, layout, root, None, seed=1, size=TINY, variant=variant)
            cache[key] = root
        return cache[key]

    return make


@pytest.mark.parametrize("key", list(SPLITS), ids=[f"{k[1]}-{k[2]}" if k[2] else k[1] for k in SPLITS])
def test_layout_round_trip(key, datasets):
    kind, layout, variant = key
    root = datasets(*key)
    content = prepare_datalist(layout, root)  # the integrity check runs inside and raises on any fault
    sizes = (len(content["training"]), len(content["validation"]), len(content["testing"]))
    assert sizes == SPLITS[key]
    assert not content["skipped"] and content["spatial_dims"] == 2
    assert not {it["case_id"] for it in content["training"]} & {it["case_id"] for it in content["validation"]}
    groups = {it.get("group") for it in content["validation"]} - {None}
    assert not groups & {it.get("group") for it in content["training"]}, "a scan on both sides of the split"
    item = content["training"][0]
    keys = ["image", "label"] + [k for k in ("mask",) if k in item]
    if "page" in item:  # multi-page TIFF: MONAI's LoadImaged takes no page; the project's loader does
        load = LoadImage2Dd(keys)
    else:
        load = LoadImaged(keys, reader=Image2DReader(), ensure_channel_first=True, image_only=True)
    label_tf, n_label = LABELS.get(layout, (ThresholdMaskd("label"), 1))
    d = Compose([load, *([label_tf] if label_tf else [])])(item)
    image, label = d["image"], d["label"]
    channels = 1 if layout in ("montgomery", "shenzhen", "isbi2012_em", "luna2d") else 3
    if layout == "images_masks":
        channels = 1  # OCT B-scans are grey
    assert image.shape == (channels, TINY[1], TINY[0]), image.shape  # (C, W, H): MONAI's x-first order
    assert label.shape == (n_label, TINY[1], TINY[0])
    values = set(torch.unique(torch.as_tensor(label)).tolist())
    if layout == "images_masks":
        assert values <= set(range(9))  # OCT layer indices
    else:
        assert values <= {0.0, 1.0}
    if layout == "refuge":
        assert (label[1] <= label[0]).all(), "the disc includes the cup"
    if layout == "drive":
        assert (label[0] <= d["mask"][0]).all(), "vessels inside the field of view"


def test_prepare_cli_writes_official_split(datasets, tmp_path):
    root = datasets("fundus", "refuge", None)
    out = tmp_path / "refuge.json"
    proc = subprocess.run([sys.executable, "-m", "edge_networks.data.prepare", "--layout", "refuge", "--root",
                           str(root), "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    content = json.loads(out.read_text())
    assert {it["case_id"][0] for it in content["validation"]} == {"V"}
    assert {it["case_id"][0] for it in content["testing"]} == {"T"} and all("label" not in it
                                                                           for it in content["testing"])
    assert content["label_values"] == [0, 128, 255]


def test_generic_layout_matches_stems_and_list_files(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for stem, mask in (("a", "a_mask.png"), ("b", "b_segmentation.png"), ("c", None)):
        Image.fromarray(np.full((4, 5, 3), 50, np.uint8)).save(tmp_path / "images" / f"{stem}.jpg")
        if mask:
            Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "masks" / mask)
    (tmp_path / "train.txt").write_text("a.jpg\n")
    (tmp_path / "test.txt").write_text("b\n")
    items = {it["case_id"]: it for it in build_datalist("images_masks", tmp_path)}
    assert items["a"]["label"].endswith("a_mask.png") and items["a"]["split"] == "train"
    assert items["b"]["label"].endswith("b_segmentation.png") and items["b"]["split"] == "test"
    assert "label" not in items["c"]


def test_label_transforms_on_release_values():
    refuge = torch.tensor([[[255.0, 128.0, 0.0, 130.0, 2.0]]])  # JPEG-ish neighbours of 128 and 0 too
    disc_cup = ConvertToDiscCupd("label")({"label": refuge})["label"]
    assert disc_cup.tolist() == [[[0, 1, 1, 1, 1]], [[0, 0, 1, 0, 1]]]
    soft = torch.tensor([[[0.0, 64.0, 191.0, 255.0]]])
    assert BinariseSoftMapd("l", "all")({"l": soft})["l"].tolist() == [[[0, 0, 0, 1]]]
    assert BinariseSoftMapd("l", "majority")({"l": soft})["l"].tolist() == [[[0, 0, 1, 1]]]
    assert BinariseSoftMapd("l", "any")({"l": soft})["l"].tolist() == [[[0, 1, 1, 1]]]
    assert BinariseSoftMapd("l", 100)({"l": soft})["l"].tolist() == [[[0, 0, 1, 1]]]
    with pytest.raises(ValueError, match="agreement"):
        BinariseSoftMapd("l", "most")
    lr = torch.tensor([[[255.0, 0.0, 0.0]], [[0.0, 0.0, 255.0]]])
    assert CombineMasksd("l")({"l": lr})["l"].tolist() == [[[1, 0, 1]]]
    jpeg = torch.tensor([[[3.0, 120.0, 135.0, 251.0]]] * 3)  # an RGB JPEG mask
    assert ThresholdMaskd("l")({"l": jpeg})["l"].tolist() == [[[0, 0, 1, 1]]]
    em = torch.tensor([[[255.0, 0.0, 250.0, 5.0]]])  # white interior, black membrane
    assert EMMembranesd("l")({"l": em})["l"].tolist() == [[[0, 1, 0, 1]]]
    np_out = ThresholdMaskd("l")({"l": np.array([[[0, 255]]], np.uint8)})["l"]
    assert isinstance(np_out, np.ndarray) and np_out.tolist() == [[[0, 1]]]
