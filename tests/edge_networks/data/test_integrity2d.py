"""The 2D integrity check names the file and the fault, per format, and lists every bad item in one error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge_networks.data import DatasetIntegrityError, build_datalist, check_case, prepare_datalist, verify_datalist
from edge_networks.data.synthetic.layouts2d import write_2d_dataset
from tests.helpers import asymmetric, write_dicom

FORMATS = ["png", "jpg", "bmp", "gif", "tif", "dcm"]


def _pair(root, fmt, image=None, mask=None):
    """One images_masks item: image ``x.<fmt>``, mask ``x.png``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    a = asymmetric() if image is None else image
    if fmt == "dcm":
        write_dicom(root / "images" / "x.dcm", a.astype(np.uint16))
    else:
        Image.fromarray(a).save(root / "images" / f"x.{fmt}")
    Image.fromarray((asymmetric() > 100).astype(np.uint8) if mask is None else mask).save(root / "masks" / "x.png")
    return build_datalist("images_masks", root)[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_image_is_named(fmt, tmp_path):
    item = _pair(tmp_path, fmt)
    path = tmp_path / "images" / f"x.{fmt}"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    problems = check_case(item, "images_masks").problems
    assert len(problems) == 1 and problems[0].startswith(str(path)) and "unreadable or truncated" in problems[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_image_is_named(fmt, tmp_path):
    item = _pair(tmp_path, fmt, image=np.zeros((30, 50), np.uint8))
    assert check_case(item, "images_masks").problems == [f"{tmp_path / 'images' / f'x.{fmt}'}: empty image (every "
                                                         "pixel is 0)"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_size_mismatch_is_named(fmt, tmp_path):
    item = _pair(tmp_path, fmt, mask=np.zeros((50, 30), np.uint8))  # the transposed size: the classic mistake
    (problem,) = check_case(item, "images_masks").problems
    assert problem.startswith(str(tmp_path / "masks" / "x.png")) and "size 30x50 (WxH) differs" in problem
    assert "50x30" in problem


@pytest.mark.parametrize("fmt", ["png", "bmp", "gif", "tif"])
def test_mask_values_outside_the_convention(fmt, tmp_path):
    """ISIC masks are 0/255: a 0/1 mask (the common export mistake) is named, whatever the file format."""
    write_2d_dataset("dermoscopy", "isic2017", tmp_path, cases=4, size=(16, 20))
    item = build_datalist("isic2017", tmp_path)[0]
    bad = tmp_path / "ISIC-2017_Training_Part1_GroundTruth" / f"{item['case_id']}_segmentation.{fmt}"
    (tmp_path / item["label"]).unlink()
    Image.fromarray((np.arange(320).reshape(16, 20) % 2).astype(np.uint8)).save(bad)
    item["label"] = str(bad)
    (problem,) = check_case(item, "isic2017").problems
    assert problem == f"{bad}: unexpected mask value(s) [1], allowed [0, 255] (isic2017)"


def test_missing_mask_and_every_bad_item_in_one_error(tmp_path):
    write_2d_dataset("fundus", "drive", tmp_path, cases=4, size=(16, 20))
    items = build_datalist("drive", tmp_path)
    vessels, fov = items[0]["label"], items[1]["mask"]
    (tmp_path / vessels).unlink()
    Image.fromarray(np.full((16, 20), 128, np.uint8)).save(fov)
    with pytest.raises(DatasetIntegrityError) as err:
        prepare_datalist("drive", tmp_path, tmp_path / "out.json")
    msg = str(err.value)
    assert "2 case(s) failed" in msg and f"{vessels}: file is missing" in msg
    assert f"{fov}: unexpected mask value(s) [128]" in msg
    assert not (tmp_path / "out.json").exists(), "nothing written when the check fails"
    good, bad = verify_datalist(items, "drive", skip_bad=True)
    assert len(good) == len(items) - 2 and {r.case_id for r in bad} == {items[0]["case_id"], items[1]["case_id"]}


def test_tiff_stacks_of_different_lengths(tmp_path):
    write_2d_dataset("em", "isbi2012_em", tmp_path, cases=8, size=(16, 16))
    labels = tmp_path / "train-labels.tif"
    pages = []
    with Image.open(labels) as im:
        for k in range(im.n_frames - 1):  # one page short
            im.seek(k)
            pages.append(im.copy())
    pages[0].save(labels, save_all=True, append_images=pages[1:])
    items = [it for it in build_datalist("isbi2012_em", tmp_path) if "label" in it]
    problems = check_case(items[0], "isbi2012_em").problems
    assert problems == [f"{labels}: stack of 3 page(s), its image stack {tmp_path / 'train-volume.tif'} has 4"]


def test_missing_image_and_label_on_unlabelled_items(tmp_path):
    item = _pair(tmp_path, "png")
    assert check_case({"case_id": "x", "image": item["image"]}, "images_masks").problems == [
        "datalist item has no 'label'"]
    assert check_case({"case_id": "x", "image": item["image"]}, "images_masks", require_label=False).ok
    gone = {"case_id": "y", "image": str(tmp_path / "images" / "y.png"), "label": item["label"]}
    assert check_case(gone, "images_masks").problems == [f"{tmp_path / 'images' / 'y.png'}: file is missing"]
