"""CE-Net's disc-centred crop: the brightest point after a blur, a fixed window there, inverted by MONAI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Resized

from transforms import BrightestRegionCrop, BrightestRegionCropd, brightest_point


def _photo(w=300, h=200, disc=(220, 60), hot=(20, 180)) -> torch.Tensor:
    """(3, W, H) dim 'fundus' with a bright 30 px disc and a single saturated pixel elsewhere."""
    x, y = np.meshgrid(np.arange(w), np.arange(h), indexing="ij")
    img = 0.2 + 0.1 * np.sin(x / 17.0) * np.cos(y / 13.0)
    img[(x - disc[0]) ** 2 + (y - disc[1]) ** 2 < 15**2] = 0.9
    img[hot] = 5.0  # a reflection: one pixel, brighter than the disc
    return torch.as_tensor(np.stack([img] * 3), dtype=torch.float32)


def test_brightest_point_is_the_blob_not_the_hot_pixel():
    px = brightest_point(_photo())
    assert np.hypot(px[0] - 220, px[1] - 60) <= 4
    big = torch.nn.functional.interpolate(_photo()[None], scale_factor=4, mode="nearest")[0]  # reduced internally
    px = brightest_point(big)
    assert np.hypot(px[0] - 4 * 220, px[1] - 4 * 60) <= 16


@pytest.mark.parametrize(("size", "expected_box"), [
    (100, ((170, 270), (10, 110))),  # centred on the disc
    ((120, 150), ((160, 280), (0, 150))),  # moved inside the image at the top border
    (400, ((0, 300), (0, 200))),  # larger than the image: the whole axis, no padding
])
def test_window_position_and_size(size, expected_box):
    img = MetaTensor(_photo())
    out = BrightestRegionCrop(size)(img)
    (x0, x1), (y0, y1) = expected_box
    assert tuple(out.shape[1:]) == (x1 - x0, y1 - y0)
    # the window's content is the image's at the expected place (up to the blur's 1-2 px rounding)
    found = [(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
             if 0 <= x0 + dx and x1 + dx <= 300 and 0 <= y0 + dy and y1 + dy <= 200
             and torch.equal(out.as_tensor(), img.as_tensor()[:, x0 + dx:x1 + dx, y0 + dy:y1 + dy])]
    assert found, "the window is not where the brightest point puts it"


def test_dict_version_crops_every_key_alike_and_inverts_to_full_size():
    img = MetaTensor(_photo())
    label = MetaTensor((img[:1] > 0.8).float())
    label[0, 20, 180] = 0.0
    pipeline = Compose([BrightestRegionCropd(["image", "label"], roi_size=96), Resized(["image", "label"], (64, 64),
                                                                                      mode=["bilinear", "nearest"])])
    d = pipeline({"image": img, "label": label})
    assert d["image"].shape == (3, 64, 64) and d["label"].shape == (1, 64, 64)
    assert d["label"].sum() > 0.5 * label.sum() * (64 / 96) ** 2  # the disc is inside the window
    d["pred"] = MetaTensor(d["label"].as_tensor().clone())
    inv = Invertd("pred", pipeline, orig_keys="image", nearest_interp=True)(d)["pred"]
    assert inv.shape == (1, 300, 200)
    dice = 2 * (inv * label).sum() / (inv.sum() + label.sum())
    assert dice > 0.9 and inv[0, :100].sum() == 0  # back in place; nothing outside the window
